"""The search space: relaxations, mixed ops, cells and genotypes."""

from tf_nas_seg.utils.lazy import lazy_exports

# Exported names and the modules that define them, imported on first use
# (tf_nas_seg/utils/lazy.py): the commands check their flags before TensorFlow loads.
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

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
