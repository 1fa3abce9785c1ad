"""`bin/sweep`: the trade-off study of both papers, for any data set and device.

For each method and lambda a latency-cost search, then every searched network, random
networks of the same spaces and hand-designed peers retrained with one recipe, timed
together and put in one table and one Pareto plot (mIoU against measured latency).
"""
from tf_nas_seg.utils.lazy import lazy_exports

# Exported names and the modules that define them, imported on first use
# (tf_nas_seg/utils/lazy.py): the commands check their flags before TensorFlow loads.
_EXPORTS = {
    "RandomArch": "tf_nas_seg.sweep.random_archs",
    "SamplingError": "tf_nas_seg.sweep.random_archs",
    "sample_random_archs": "tf_nas_seg.sweep.random_archs",
    "SweepConfig": "tf_nas_seg.sweep.sweep_config",
    "SweepError": "tf_nas_seg.sweep.sweep_runner",
    "SweepRunner": "tf_nas_seg.sweep.sweep_runner",
    "run_sweep": "tf_nas_seg.sweep.sweep_runner",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
