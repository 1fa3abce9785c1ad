"""The search space: relaxations, mixed ops, cells and genotypes."""

import importlib

# Exported names and the modules that define them, imported on first use (PEP 562) so
# that importing one light module of this package (its config, say) does not import
# TensorFlow: the commands parse and check their flags before loading it.
_EXPORTS = {
    "Cell": "tf_nas_seg.space.cell",
    "CellGenotype": "tf_nas_seg.space.genotype",
    "Edge": "tf_nas_seg.space.genotype",
    "Genotype": "tf_nas_seg.space.genotype",
    "GenotypeError": "tf_nas_seg.space.genotype",
    "derive_cell": "tf_nas_seg.space.genotype",
    "num_edges": "tf_nas_seg.space.genotype",
    "MixedOp": "tf_nas_seg.space.mixed_op",
    "MultiScaleCell": "tf_nas_seg.space.multi_scale_cell",
    "ArchitectureRelaxation": "tf_nas_seg.space.relaxation",
    "gumbel_softmax": "tf_nas_seg.space.relaxation",
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
