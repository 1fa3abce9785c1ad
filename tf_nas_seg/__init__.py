"""tf_nas_seg: architecture search for real-time semantic segmentation (Keras 3 / TF)."""

__version__ = "0.1.0"
