"""Search methods: what `bin/search` needs from CAS and AutoRTNet, behind one contract.

A `SearchMethod` supplies, from a `SearchConfig`: its layout, its supernet (a
`BilevelSearchModel`), its cost model, the cost of a derived network, its per-epoch
schedule, extra figures and summary fields, and the search-space description its latency
table records. `SearchRunner` asks the registry (`get_method(config.method)`) and never
tells methods apart itself. A new method registers a subclass with `register_method`.
"""

import abc

from tf_nas_seg.errors import ConfigError, UserError
from tf_nas_seg.networks.cas_network import count_trainable_params

METHODS = {}


class SearchError(UserError):
    """A search cannot start as configured; the message says what to change."""


class SearchMethod(abc.ABC):
    """One search method (see the module docstring)."""

    name = None

    @abc.abstractmethod
    def layout(self, config):
        """The method's layout dataclass from the config (and, for CAS's multi-scale
        stage, the backbone genotype's recorded layout)."""

    @abc.abstractmethod
    def build_supernet(self, config, layout, info):
        """The supernet (unbuilt) for the data set `info` (classes, ignore label)."""

    @abc.abstractmethod
    def cost_model(self, supernet, config, height, width):
        """The cost model of config.cost (not "none") at the target size."""

    @abc.abstractmethod
    def derived_macs(self, genotype, model, layout, num_classes, height, width):
        """MACs of the derived network `model` built from `genotype`."""

    @abc.abstractmethod
    def build_derived(self, genotype, layout, num_classes, height, width):
        """The derived network's Keras model at height x width."""

    @abc.abstractmethod
    def latency_space(self, search, num_classes, multiscale=True):
        """The search-space dict a latency table for this search records.

        Args:
            search: A config with the space section (`SearchConfig`,
                `LatencyTableConfig`).
            num_classes: Classifier outputs.
            multiscale: Whether CAS's multi-scale cell is priced (CAS only).
        """

    def latency_table(self, supernet, config, height, width):
        """The checked --latency_table of a latency cost (None for other costs): a table
        for another device, TensorFlow version, resolution or space is refused unless
        --allow_foreign_table (`latency_space.search_table`)."""
        if config.cost != "latency":
            return None
        from tf_nas_seg.search.latency_space import search_table

        return search_table(config, supernet.num_classes, height, width)

    def derived_cost(self, genotype, layout, num_classes, height, width):
        """{"params", "macs", "height", "width"} of the derived network."""
        net = self.build_derived(genotype, layout, num_classes, height, width)
        return {"params": count_trainable_params(net),
                "macs": self.derived_macs(genotype, net, layout, num_classes, height,
                                          width),
                "height": height, "width": width}

    def stage(self, config):
        """The stage the summary records (None for single-stage methods)."""
        return None

    def start_epoch(self, model, config, epoch, fresh):
        """Per-epoch schedule beyond the temperature (AutoRTNet: the beta warm-up)."""

    def epoch_figures(self, history, plots_dir, layout, config):
        """{name: png path} of method-specific figures drawn at each epoch's end."""
        return {}

    def summary(self, model, genotype, layout):
        """Method-specific fields of search_summary.json."""
        return {}


def register_method(method):
    METHODS[method.name] = method
    return method


def get_method(name):
    """The registered SearchMethod `name`; ConfigError naming the registered ones."""
    if name not in METHODS:
        raise ConfigError(f"unknown search method {name!r}; registered: {sorted(METHODS)}")
    return METHODS[name]


class CASMethod(SearchMethod):
    """CAS: backbone cells, then the multi-scale cell on the fixed backbone."""

    name = "cas"

    def layout(self, config):
        c = config
        if c.stage == "multiscale" and c.backbone_genotype:
            return self._backbone_layout(c)
        return self._config_layout(c)

    @staticmethod
    def _backbone_layout(c):
        """The backbone genotype's recorded layout, with the multi-scale settings."""
        import dataclasses

        from tf_nas_seg.networks.cas_layout import genotype_layout
        from tf_nas_seg.space.genotype import Genotype

        backbone = Genotype.load(c.backbone_genotype)
        return dataclasses.replace(genotype_layout(backbone), ms_channels=c.ms_channels,
                                   ms_steps=c.ms_steps)

    @staticmethod
    def _config_layout(c):
        from tf_nas_seg.networks.cas_layout import CASLayout

        return CASLayout(layout=c.layout, channels=c.channels,
                         stem_channels=c.stem_channels, steps=c.steps,
                         low_level_cell=c.low_level_cell, ms_channels=c.ms_channels,
                         ms_steps=c.ms_steps)

    def build_supernet(self, config, layout, info):
        from tf_nas_seg.search.cas_supernet import CASSupernet
        from tf_nas_seg.space.genotype import Genotype

        c = config
        backbone = None
        if c.stage == "multiscale":
            if not c.backbone_genotype:
                raise SearchError("--stage=multiscale needs --backbone_genotype, the "
                                  "genotype.json of a finished backbone search")
            backbone = Genotype.load(c.backbone_genotype)
        return CASSupernet(info.num_classes, layout, stage=c.stage,
                           backbone_op_set=c.backbone_op_set, backbone_genotype=backbone,
                           relaxation=c.relaxation, seed=c.seed,
                           ignore_label=info.ignore_label, name="cas_supernet")

    def cost_model(self, supernet, config, height, width):
        from tf_nas_seg.search.cost_model import cas_cost_model

        return cas_cost_model(supernet, config.cost, height, width, mode=config.cost_mode,
                              latency_table=self.latency_table(supernet, config, height,
                                                               width))

    def build_derived(self, genotype, layout, num_classes, height, width):
        from tf_nas_seg.networks.cas_network import build_cas_network

        return build_cas_network(genotype, num_classes, layout, input_shape=(height, width,
                                                                              3))

    def derived_macs(self, genotype, model, layout, num_classes, height, width):
        from tf_nas_seg.networks.cas_network import cas_network_macs

        return cas_network_macs(model, layout, height, width)

    def stage(self, config):
        return config.stage

    def latency_space(self, search, num_classes, multiscale=True):
        return {"method": search.method, "backbone_op_set": search.backbone_op_set,
                "multiscale_op_set": "cas_multiscale" if multiscale else None,
                # As bin/search's multi-scale stage: the backbone's recorded layout.
                "layout": (self._backbone_layout(search) if search.backbone_genotype
                           else self._config_layout(search)).to_json(),
                "num_classes": num_classes,
                "height": search.target_height, "width": search.target_width}


class AutoRTNetMethod(SearchMethod):
    """AutoRTNet: cells, hyper-cell depths and the aggregation cell, jointly."""

    name = "autortnet"

    def layout(self, config):
        from tf_nas_seg.networks.autortnet_layout import AutoRTNetLayout, parse_hyper_cells

        c = config
        return AutoRTNetLayout(hyper_cells=parse_hyper_cells(c.hyper_cells),
                               channels=c.channels, channel_growth=c.channel_growth,
                               steps=c.steps, agg_channels=c.agg_channels,
                               ms_channels=c.ms_channels)

    def build_supernet(self, config, layout, info):
        from tf_nas_seg.search.autortnet_supernet import AutoRTNetSupernet

        c = config
        return AutoRTNetSupernet(info.num_classes, layout, relaxation=c.relaxation,
                                 exit_relaxation=c.exit_relaxation,
                                 temperature=c.temperature_start, seed=c.seed,
                                 ignore_label=info.ignore_label, name="autortnet_supernet")

    def cost_model(self, supernet, config, height, width):
        from tf_nas_seg.search.autortnet_cost_model import autortnet_cost_model

        return autortnet_cost_model(supernet, config.cost, height, width,
                                    latency_table=self.latency_table(supernet, config,
                                                                     height, width))

    def build_derived(self, genotype, layout, num_classes, height, width):
        from tf_nas_seg.networks.autortnet_network import build_autortnet_network

        return build_autortnet_network(genotype, num_classes, input_shape=(height, width, 3))

    def derived_macs(self, genotype, model, layout, num_classes, height, width):
        from tf_nas_seg.networks.autortnet_network import autortnet_network_macs

        return autortnet_network_macs(genotype, num_classes, height, width)

    def start_epoch(self, model, config, epoch, fresh):
        from tf_nas_seg.search.autortnet_supernet import EXIT_GROUP

        model.set_arch_group_trainable(EXIT_GROUP, epoch >= config.beta_warmup_epochs)
        if fresh:
            model.reset_depth_record()

    def epoch_figures(self, history, plots_dir, layout, config):
        import os

        from tf_nas_seg.viz.figures import draw_depths

        return {"depths": draw_depths(history, os.path.join(plots_dir, "depths.png"),
                                      layout.hyper_cells, config.beta_warmup_epochs)}

    def summary(self, model, genotype, layout):
        """Chosen and expected depths, and the cost predicted for the derived network
        (for --cost=latency: the table's prediction of all its layers)."""
        record = model.depth_record()
        count = len(layout.hyper_cells)
        result = {"depths": genotype.macro_dict["depths"],
                  "expected_depths": [round(record[f"expected_depth_{h + 1}"], 4)
                                      for h in range(count)],
                  "initial_cells": list(layout.hyper_cells)}
        cost_model = model.cost_model
        if cost_model is not None:
            latency = cost_model.kind == "latency"
            result["derived_predicted_cost"] = {
                "value": cost_model.cost_of(genotype),
                "unit": cost_model.unit, "kind": cost_model.kind,
                "covers": ("every layer the derived network runs (the table's "
                           "calibrated prediction), the aggregation cell's ops included"
                           if latency else
                           "stem, kept cells, aggregation input projections, multi-scale "
                           "module, head (not the aggregation cell's searched edges)")}
        return result

    def latency_space(self, search, num_classes, multiscale=True):
        del multiscale  # AutoRTNet's multi-scale module is fixed and always priced
        from tf_nas_seg.latency.autortnet_profile import autortnet_space

        return autortnet_space(self.layout(search), num_classes, search.target_height,
                               search.target_width)


class DartsMethod(CASMethod):
    """DARTS (Liu et al., ICLR 2019) on segmentation: DARTS's 8 ops, softmax relaxation.

    The cells are searched in CAS's network (stem, backbone cells, head; the backbone
    stage only), so DARTS and CAS differ only in the op set and the cost term: the
    baseline a CAS search is compared with. `--second_order` gives DARTS's unrolled
    gradient. Its latency tables are CAS tables of the DARTS op set (a table built
    with `--method=cas --backbone_op_set=darts` serves it, and the other way round).
    """

    name = "darts"

    def build_supernet(self, config, layout, info):
        if config.stage != "backbone":
            raise SearchError("--method=darts searches the backbone cells only; for a "
                              "multi-scale stage on a DARTS backbone use --method=cas "
                              "--stage=multiscale --backbone_genotype=GENOTYPE.json")
        if config.backbone_op_set != "darts":  # SearchConfig sets it; a hand-made config
            raise SearchError("--method=darts uses the DARTS op set; pass "
                              "--backbone_op_set=darts (or leave it unset)")
        return super().build_supernet(config, layout, info)

    def latency_space(self, search, num_classes, multiscale=True):
        space = super().latency_space(search, num_classes, multiscale)
        return {**space, "method": "cas", "backbone_op_set": "darts"}


register_method(CASMethod())
register_method(AutoRTNetMethod())
register_method(DartsMethod())
