"""The search space: relaxations, mixed ops, cells and genotypes."""

from tf_nas_seg.space.cell import Cell
from tf_nas_seg.space.genotype import (CellGenotype, Edge, Genotype, GenotypeError,
                                       derive_cell, num_edges)
from tf_nas_seg.space.mixed_op import MixedOp
from tf_nas_seg.space.multi_scale_cell import MultiScaleCell
from tf_nas_seg.space.relaxation import ArchitectureRelaxation, gumbel_softmax
