"""The AutoRTNet supernet: hyper-cells that search depth and downsampling, and the
aggregation cell, searched jointly with Gumbel-softmax samples."""

import numpy as np
from keras import ops

from tf_nas_seg.networks.autortnet_layout import DEFAULT_MULTISCALE, AutoRTNetLayout
from tf_nas_seg.networks.plan import autortnet_plan
from tf_nas_seg.networks.stem import normalization_layer
from tf_nas_seg.ops.op_set import get_op_set
from tf_nas_seg.search.bilevel_search_model import BilevelSearchModel
from tf_nas_seg.space.genotype import Genotype, derive_cell, num_edges
from tf_nas_seg.space.hyper_cell import HyperCell
from tf_nas_seg.space.relaxation import RELAXATIONS, ArchitectureRelaxation
from tf_nas_seg.utils.numeric import softmax
from tf_nas_seg.errors import ConfigError

CELL_OP_SET = "autortnet_cell"
AGGREGATION_OP_SET = "aggregation"
EXIT_GROUP = "beta"


class AutoRTNetSupernet(BilevelSearchModel):
    """AutoRTNet Fig. 2: two stem convs, three hyper-cells, the aggregation cell, the
    multi-scale module and the classifier, with every searched choice relaxed.

    Logits: `alpha_reduce_h` and `alpha_normal_h` per hyper-cell h (the normal cells of
    one hyper-cell share theirs), `beta_h` (one exit logit per cell of hyper-cell h, in
    the freezable group "beta"), `alpha_aggregation` (one row per aggregation edge).
    Op weights are drawn by `relaxation` (Gumbel by default), exits by
    `exit_relaxation`: with "gumbel_hard" the cells after the sampled exit are not run.
    At inference (`training=False`) the op weights are the softmax probabilities and
    the exit is the argmax of beta (pruned).

    Args:
        num_classes: Output classes.
        layout: An `AutoRTNetLayout`.
        relaxation: Relaxation of the op choices ("gumbel", "gumbel_hard", "softmax").
        exit_relaxation: Relaxation of the exit choices.
        temperature: Initial Gumbel temperature (a schedule drives it).
        seed: Seed of the logit initialisation and of the Gumbel noise.
        ignore_label: Label ignored by losses and metrics.
    """

    def __init__(self, num_classes, layout=None, relaxation="gumbel",
                 exit_relaxation="gumbel_hard", temperature=3.0, seed=0, ignore_label=255,
                 **kwargs):
        super().__init__(num_classes=num_classes, ignore_label=ignore_label, **kwargs)
        for name, value in (("relaxation", relaxation), ("exit_relaxation",
                                                         exit_relaxation)):
            if value not in RELAXATIONS:
                raise ConfigError(f"{name} must be one of {RELAXATIONS}, got {value!r}")
        self.layout = layout or AutoRTNetLayout()
        self.relaxation = relaxation
        self.exit_relaxation = exit_relaxation
        self.seed = int(seed)
        self.relax = ArchitectureRelaxation(relaxation, temperature, seed=seed,
                                            name="relaxation")
        self.exit_relax = ArchitectureRelaxation(exit_relaxation, temperature,
                                                 seed=seed + 7919, name="exit_relaxation")
        lay = self.layout
        self.normalize = normalization_layer()
        # The deepest network's plan: every cell position of every hyper-cell.
        self.plan = self.network_plan()
        self.stem0, self.stem1 = self.plan.stem.build_layers()
        groups = self.plan.hyper_cells()
        count = len(groups)
        self.hyper_cells = [
            HyperCell(cells[0].op_set, cells[0].steps, cells[0].channels, len(cells),
                      reduction_prev=cells[0].reduction_prev,
                      align_previous=h < count - 1, name=f"hyper_cell_{h + 1}")
            for h, cells in enumerate(groups)]
        self.aggregation = self.plan.aggregation.build_layer()
        self.ms_cell = self.plan.ms_cell.build_layer()
        self.head = self.plan.head.build_layer()
        n_ops = len(get_op_set(CELL_OP_SET).ops)
        edges = num_edges(lay.steps)
        self.alpha_reduce, self.alpha_normal, self.betas = [], [], []
        for h in range(count):
            self.alpha_reduce.append(self.add_arch_logits(
                f"alpha_reduce_{h + 1}", (edges, n_ops), seed + 10 * h + 1))
            self.alpha_normal.append(self.add_arch_logits(
                f"alpha_normal_{h + 1}", (edges, n_ops), seed + 10 * h + 2))
            self.betas.append(self.add_arch_logits(
                f"beta_{h + 1}", (lay.hyper_cells[h],), seed + 10 * h + 3,
                group=EXIT_GROUP))
        self.alpha_aggregation = self.add_arch_logits(
            "alpha_aggregation",
            (self.aggregation.num_edges, len(get_op_set(AGGREGATION_OP_SET).ops)),
            seed + 99)
        # Sum of the sampled depths and number of samples since the last reset: the
        # per-epoch record of sampled depth (AutoRTNet Fig. 5).
        self.depth_sum = self.add_weight(name="sampled_depth_sum", shape=(count,),
                                         initializer="zeros", trainable=False)
        self.depth_count = self.add_weight(name="sampled_depth_count", shape=(),
                                           initializer="zeros", trainable=False)

    def network_plan(self, height=None, width=None, depths=None):
        """The NetworkPlan of the supernet's deepest network (or of `depths`) at an input
        size (None: dynamic), with search cells."""
        return autortnet_plan(self.layout, self.num_classes, height, width, depths,
                              cell_op_set=CELL_OP_SET,
                              aggregation_op_set=AGGREGATION_OP_SET)

    # Relaxed choices ----------------------------------------------------------------
    def relaxations(self):
        """The op and the exit relaxations (one temperature schedule drives both)."""
        return [self.relax, self.exit_relax]

    def epoch_metrics(self):
        """The depth record, then the temperature."""
        return {**self.depth_record(), **super().epoch_metrics()}

    def exit_weights(self, training=None):
        """Per hyper-cell exit weights z, and whether they are one-hot (prunable)."""
        if not training:
            return ([ops.one_hot(ops.argmax(b), b.shape[0], dtype=b.dtype)
                     for b in self.betas], True)
        return ([self.exit_relax(b, training=True) for b in self.betas],
                self.exit_relaxation == "gumbel_hard")

    def call(self, images, training=None):
        relax = self.relax
        exits, hard = self.exit_weights(training)
        x = self.normalize(images)
        s0 = self.stem0(x, training=training)
        s1 = self.stem1(s0, training=training)
        outputs = []
        for h, hyper_cell in enumerate(self.hyper_cells):
            s0, s1 = hyper_cell(s0, s1, relax(self.alpha_reduce[h], training=training),
                                relax(self.alpha_normal[h], training=training), exits[h],
                                hard=hard, training=training)
            outputs.append(s1)
        if training:
            depth = ops.stack([ops.cast(ops.argmax(z), "float32") + 1.0 for z in exits])
            self.depth_sum.assign(self.depth_sum + depth)
            self.depth_count.assign(self.depth_count + 1.0)
        features = self.aggregation(outputs, relax(self.alpha_aggregation,
                                                   training=training), training=training)
        features = self.ms_cell(features, outputs[-1], training=training)
        return self.head(features, images)

    # Records ------------------------------------------------------------------------
    def reset_depth_record(self):
        self.depth_sum.assign(ops.zeros_like(self.depth_sum))
        self.depth_count.assign(0.0)

    def depth_record(self):
        """{depth_h, expected_depth_h, sampled_depth_h} for every hyper-cell h (1-based).

        depth: argmax of beta (what `derive` returns); expected: sum_k P(exit k) * (k+1);
        sampled: mean depth of the training samples since `reset_depth_record` (NaN if
        none).
        """
        record = {}
        sums = ops.convert_to_numpy(self.depth_sum)
        count = float(ops.convert_to_numpy(self.depth_count))
        for h, beta in enumerate(self.betas):
            p = softmax(ops.convert_to_numpy(beta))
            record[f"depth_{h + 1}"] = int(np.argmax(p)) + 1
            record[f"expected_depth_{h + 1}"] = float(np.sum(p * np.arange(1, len(p) + 1)))
            record[f"sampled_depth_{h + 1}"] = (float(sums[h]) / count if count
                                                else float("nan"))
        return record

    def cell_logits(self):
        """{cell type: (logit variable, op set name, steps)} of the searched DAG cells."""
        result = {}
        for h in range(len(self.hyper_cells)):
            result[f"reduce_{h + 1}"] = (self.alpha_reduce[h], CELL_OP_SET, self.layout.steps)
            result[f"normal_{h + 1}"] = (self.alpha_normal[h], CELL_OP_SET, self.layout.steps)
        return result

    def arch_panels(self):
        """{title: (probabilities [rows, choices], column names, row names)} to draw."""
        panels = super().arch_panels()
        panels["aggregation"] = (
            softmax(ops.convert_to_numpy(self.alpha_aggregation)),
            get_op_set(AGGREGATION_OP_SET).ops,
            [f"{s}->{t} s{st}" for s, t, st in self.aggregation.edge_list])
        width = max(self.layout.hyper_cells)
        exits = np.zeros((len(self.betas), width))
        for h, beta in enumerate(self.betas):
            p = softmax(ops.convert_to_numpy(beta))
            exits[h, :len(p)] = p
        panels["exits"] = (exits, [f"depth {k + 1}" for k in range(width)],
                           [f"hyper-cell {h + 1}" for h in range(len(self.betas))])
        return panels

    # Derivation ---------------------------------------------------------------------
    def derive(self, k=2):
        """The genotype of the current logits.

        Depth of hyper-cell h = argmax(beta_h) + 1; each cell type by the DARTS rule
        (argmax op per edge without `zero`, top-k edges per node); the aggregation cell
        keeps every edge with its argmax op; the fixed multi-scale cell is recorded.
        """
        cells = {}
        for cell_type, (logits, op_set, steps) in self.cell_logits().items():
            cells[cell_type] = derive_cell(softmax(ops.convert_to_numpy(logits)), op_set,
                                           steps, k=k)
        cells["multiscale"] = DEFAULT_MULTISCALE
        return Genotype.create("autortnet", cells, macro=derive_macro(
            self.layout, [ops.convert_to_numpy(b) for b in self.betas],
            ops.convert_to_numpy(self.alpha_aggregation), self.aggregation))


def derive_macro(layout, betas, aggregation_logits, aggregation):
    """The macro of an AutoRTNet genotype (a pure function of the logits).

    Args:
        layout: The `AutoRTNetLayout` searched.
        betas: Exit logits per hyper-cell.
        aggregation_logits: [edges, ops] logits of the aggregation cell.
        aggregation: The searched `AggregationCell` (its DAG).

    Returns:
        {"layout", "depths", "aggregation"} as JSON-ready data.
    """
    names = get_op_set(AGGREGATION_OP_SET).ops
    chosen = np.argmax(np.asarray(aggregation_logits), axis=1)
    return {"layout": layout.to_json(),
            "depths": [int(np.argmax(np.asarray(b))) + 1 for b in betas],
            "aggregation": {"op_set": AGGREGATION_OP_SET,
                            "edges": [list(e) for e in aggregation.edge_list],
                            "outputs": list(aggregation.outputs),
                            "ops": [names[i] for i in chosen]}}
