"""The CAS supernet: searched backbone cells, then a searched multi-scale cell."""

import keras

from tf_nas_seg.networks.cas_layout import CASLayout
from tf_nas_seg.networks.plan import cas_plan, run_plan
from tf_nas_seg.networks.stem import normalization_layer
from tf_nas_seg.ops.op_set import get_op_set
from tf_nas_seg.search.bilevel_search_model import BilevelSearchModel
from tf_nas_seg.space.genotype import Genotype, derive_cell, num_edges
from tf_nas_seg.space.relaxation import ArchitectureRelaxation
from tf_nas_seg.utils.numeric import softmax
from tf_nas_seg.errors import ConfigError

STAGES = ("backbone", "multiscale")


class CASSupernet(BilevelSearchModel):
    """CAS Fig. 3 with a mixed op on every edge.

    Stage "backbone" searches the normal and reduction cells (logits `alpha_normal`,
    `alpha_reduce`, each shared by all cells of its type) with the classifier on the last
    cell. Stage "multiscale" fixes the backbone to `backbone_genotype` and searches the
    multi-scale cell (`alpha_multiscale`), as the paper searches them separately.

    Args:
        num_classes: Output classes.
        layout: A `CASLayout`.
        stage: "backbone" or "multiscale".
        backbone_op_set: Op set of the backbone cells (default CAS O_b; "darts" for the
            DARTS comparison).
        multiscale_op_set: Op set of the multi-scale cell.
        backbone_genotype: The derived backbone (`Genotype`), required for "multiscale".
        relaxation: "softmax" (CAS) or a Gumbel mode.
        seed: Seed of the logit initialisation and of the Gumbel noise.
        ignore_label: Label ignored by losses and metrics.
    """

    def __init__(self, num_classes, layout=None, stage="backbone",
                 backbone_op_set="cas_backbone", multiscale_op_set="cas_multiscale",
                 backbone_genotype=None, relaxation="softmax", seed=0, ignore_label=255,
                 **kwargs):
        super().__init__(num_classes=num_classes, ignore_label=ignore_label, **kwargs)
        if stage not in STAGES:
            raise ConfigError(f"stage must be one of {STAGES}, got {stage!r}")
        if stage == "multiscale" and backbone_genotype is None:
            raise ConfigError("stage 'multiscale' searches the multi-scale cell on a fixed "
                             "backbone: pass the genotype.json of a backbone search "
                             "(--backbone_genotype)")
        self.layout = layout or CASLayout()
        self.stage = stage
        self.backbone_op_set = backbone_op_set
        self.multiscale_op_set = multiscale_op_set
        self.backbone_genotype = backbone_genotype
        self.seed = int(seed)
        self.relax = ArchitectureRelaxation(relaxation, seed=seed, name="relaxation")
        self.normalize = normalization_layer()
        search_backbone = stage == "backbone"
        steps = self.layout.steps
        if not search_backbone:
            normal = backbone_genotype.cell("normal")
            self.backbone_op_set = normal.op_set
            steps = len(normal.nodes)
        self.plan = self.network_plan()
        layers = self.plan.build_layers()
        self.stem = layers["stem"]
        self.cells = [layers[cell.name] for cell in self.plan.cells]
        self.ms_cell = None
        if search_backbone:
            n_ops = len(get_op_set(self.backbone_op_set).ops)
            self.alpha_normal = self.add_arch_logits("alpha_normal",
                                                     (num_edges(steps), n_ops), seed)
            self.alpha_reduce = self.add_arch_logits("alpha_reduce",
                                                     (num_edges(steps), n_ops), seed + 1)
        else:
            self.ms_cell = layers["ms_cell"]
            n_ops = len(get_op_set(multiscale_op_set).ops)
            self.alpha_multiscale = self.add_arch_logits(
                "alpha_multiscale", (num_edges(self.layout.ms_steps), n_ops), seed + 2)
        self.head = layers["head"]

    def network_plan(self, height=None, width=None):
        """The supernet's NetworkPlan at an input size (None: dynamic)."""
        normal = reduce = None
        if self.stage == "multiscale":
            normal = self.backbone_genotype.cell("normal")
            reduce = self.backbone_genotype.cell("reduce")
        return cas_plan(self.layout, self.num_classes, height, width, self.backbone_op_set,
                        self.multiscale_op_set if self.stage == "multiscale" else None,
                        normal, reduce)

    def layers_by_name(self):
        """{plan name: layer} of the stem, cells, multi-scale cell and head."""
        # Not kept as an attribute: a dict of layers would be tracked a second time.
        parts = [self.stem, *self.cells, self.head]
        if self.ms_cell is not None:
            parts.append(self.ms_cell)
        return {layer.name: layer for layer in parts}

    def relaxations(self):
        return [self.relax]

    def op_weights(self, training=None):
        """{cell type: relaxed op weights} for one forward pass (one sample per type)."""
        if self.stage == "backbone":
            return {"normal": self.relax(self.alpha_normal, training=training),
                    "reduce": self.relax(self.alpha_reduce, training=training)}
        return {"multiscale": self.relax(self.alpha_multiscale, training=training)}

    def call(self, images, training=None):
        return run_plan(self.plan, self.layers_by_name(), self.normalize(images), images,
                        self.op_weights(training), training=training)

    def cell_logits(self):
        """{cell type: (logit variable, op set name, steps)} of the searched cells."""
        if self.stage == "backbone":
            steps = self.layout.steps
            return {"normal": (self.alpha_normal, self.backbone_op_set, steps),
                    "reduce": (self.alpha_reduce, self.backbone_op_set, steps)}
        return {"multiscale": (self.alpha_multiscale, self.multiscale_op_set,
                               self.layout.ms_steps)}

    def derive(self, k=2):
        """The genotype of the current logits (argmax op per edge, top-k edges per node).

        In stage "multiscale" the fixed backbone cells are carried over, so the result
        describes the whole network.
        """
        cells = {}
        if self.stage == "multiscale":
            cells["normal"] = self.backbone_genotype.cell("normal")
            cells["reduce"] = self.backbone_genotype.cell("reduce")
        for cell_type, (logits, op_set, steps) in self.cell_logits().items():
            cells[cell_type] = derive_cell(softmax(keras.ops.convert_to_numpy(logits)),
                                           op_set, steps, k=k)
        if self.stage == "backbone" and self.backbone_op_set == "darts":
            method = "darts"
        else:
            method = "cas"
        return Genotype.create(method, cells, macro={"layout": self.layout.to_json()})

