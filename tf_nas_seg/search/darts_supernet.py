"""The DARTS CIFAR-10 search network on the shared machinery, for head-to-head timing."""

from keras import layers, ops

from tf_nas_seg.ops.batch_norm import BatchNorm
from tf_nas_seg.ops.op_set import get_op_set
from tf_nas_seg.search.bilevel_search_model import BilevelSearchModel
from tf_nas_seg.space.cell import Cell
from tf_nas_seg.space.genotype import Genotype, derive_cell, num_edges
from tf_nas_seg.space.relaxation import ArchitectureRelaxation
from tf_nas_seg.utils.numeric import softmax


class DartsSupernet(BilevelSearchModel):
    """DARTS (Liu et al., 2019) `cnn/model_search.py` Network, built from this library.

    Stem: 3x3 conv to 3C channels + BN; `layers` cells with reductions at layers // 3
    and 2 * layers // 3; global average pooling and a linear classifier. It exists so
    that the bilevel step of tf_nas_seg can be timed against the DARTS reference on the
    same machine (benchmarks/search_step.py); segmentation search uses CASSupernet.

    Args:
        num_classes: Classes (10 for CIFAR-10).
        channels: Initial channels C (16 in DARTS).
        num_cells: Cells (8 in DARTS search).
        steps: Intermediate nodes per cell (4 in DARTS).
        stem_multiplier: Stem channels = stem_multiplier * C (3 in DARTS).
        seed: Seed of the logit initialisation.
    """

    def __init__(self, num_classes=10, channels=16, num_cells=8, steps=4,
                 stem_multiplier=3, seed=0, **kwargs):
        super().__init__(num_classes=num_classes, ignore_label=-1, **kwargs)
        self.steps = steps
        self.relax = ArchitectureRelaxation("softmax", name="relaxation")
        self.stem_conv = layers.Conv2D(stem_multiplier * channels, 3, padding="same",
                                       use_bias=False, name="stem_conv")
        self.stem_bn = BatchNorm(name="stem_bn")
        self.cells = []
        c, prev_reduction = channels, False
        for i in range(num_cells):
            reduction = i in (num_cells // 3, 2 * num_cells // 3)
            if reduction:
                c *= 2
            self.cells.append(Cell("darts", steps, c, reduction, prev_reduction,
                                   name=f"cell_{i}"))
            prev_reduction = reduction
        self.pool = layers.GlobalAveragePooling2D(name="pool")
        self.classifier = layers.Dense(num_classes, name="classifier")
        n_ops = len(get_op_set("darts").ops)
        self.alpha_normal = self.add_arch_logits("alpha_normal", (num_edges(steps), n_ops),
                                                 seed)
        self.alpha_reduce = self.add_arch_logits("alpha_reduce", (num_edges(steps), n_ops),
                                                 seed + 1)

    def relaxations(self):
        return [self.relax]

    def cell_logits(self):
        """{cell type: (logit variable, op set name, steps)} of the searched cells."""
        return {"normal": (self.alpha_normal, "darts", self.steps),
                "reduce": (self.alpha_reduce, "darts", self.steps)}

    def derive(self, k=2):
        """The genotype of the current logits (DARTS rule: top-k edges per node)."""
        cells = {t: derive_cell(softmax(ops.convert_to_numpy(v)), op_set, steps, k=k)
                 for t, (v, op_set, steps) in self.cell_logits().items()}
        return Genotype.create("darts", cells)

    def call(self, images, training=None):
        normal = self.relax(self.alpha_normal, training=training)
        reduce = self.relax(self.alpha_reduce, training=training)
        s0 = s1 = self.stem_bn(self.stem_conv(images), training=training)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, reduce if cell.reduction else normal,
                              training=training)
        return self.classifier(self.pool(s1))
