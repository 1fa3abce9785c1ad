"""`bin/sweep`: the trade-off study of both papers, for any data set and device.

For each method and lambda a latency-cost search, then every searched network, random
networks of the same spaces and hand-designed peers retrained with one recipe, timed
together and put in one table and one Pareto plot (mIoU against measured latency).
"""
import importlib

# Exported names and the modules that define them, imported on first use (PEP 562) so
# that importing one light module of this package (its config, say) does not import
# TensorFlow: the commands parse and check their flags before loading it.
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


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
