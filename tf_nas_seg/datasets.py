"""The data sets every command accepts, declared once (no TensorFlow import here, so
config modules and flag definitions can use it)."""

# Names of `--dataset` for bin/search, bin/train, bin/evaluate and the sweep.
DATASET_NAMES = ("synthetic", "camvid", "cityscapes", "cityscapes_tfds")

# Classes of the real data sets (synthetic: --synthetic_classes); checked against
# tf_nas_seg.data.dataset_info by tests/data/test_dataset_registry.py.
DATASET_CLASSES = {"camvid": 11, "cityscapes": 19, "cityscapes_tfds": 19}
