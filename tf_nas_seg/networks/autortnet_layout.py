"""The macro structure of AutoRTNet, shared by the supernet, derived networks and costs."""

import dataclasses

from tf_nas_seg.space.aggregation_cell import AGGREGATION_EDGES, AGGREGATION_OUTPUTS  # noqa: F401
from tf_nas_seg.space.aggregation_cell import check_aggregation
from tf_nas_seg.space.genotype import CellGenotype, GenotypeError
from tf_nas_seg.errors import ConfigError, brief
from tf_nas_seg.networks.cas_layout import (MAX_CELLS, MAX_CHANNELS, MAX_STEPS,
                                            layout_from_json)
from tf_nas_seg.utils.flag_fields import setting, validate_config


# AutoRTNet applies "the multi-scale module of CAS" after the aggregation cell without
# searching it. This fixed CAS multi-scale cell (O_ms ops) mixes local detail (3x3,
# rate-2 convs) with wide context (rate-8 conv, 16x16 residual SPP); input 0 is the
# aggregation output (stride 8), input 1 the last hyper-cell (stride 32, upsampled).
DEFAULT_MULTISCALE = CellGenotype.from_json({
    "op_set": "cas_multiscale",
    "nodes": [[["conv_3x3", 0], ["dil_conv_3x3_r8", 1]],
              [["dil_conv_3x3_r2", 0], ["spp_16", 2]],
              [["conv_3x3", 2], ["skip_connect", 3]]],
    "concat": [2, 3, 4]}, where="DEFAULT_MULTISCALE")


def scale_channels(channels, multiplier):
    """Channels times a width multiplier, rounded, at least 1."""
    return max(1, int(round(channels * multiplier)))


@dataclasses.dataclass(frozen=True)
class AutoRTNetLayout:
    """Sizes of an AutoRTNet supernet (SPEC.md section 4; all settings).

    Attributes:
        hyper_cells: Initial cells per hyper-cell (a reduction cell, then normal cells);
            the paper starts from (5, 10, 10).
        channels: Output channels of the two stride-2 stem convs (the paper's initial
            channel number, 8).
        channel_growth: Factor of the node channels at each reduction (paper: read as 3,
            the factor is garbled in the text).
        steps: Intermediate nodes per cell (paper: 2).
        agg_channels: Width of every node of the aggregation cell.
        ms_channels: Node channels of the multi-scale module.
    """

    hyper_cells: tuple = (5, 10, 10)
    channels: int = setting(8, "Stem output channels.", 1, MAX_CHANNELS)
    channel_growth: int = setting(3, "Channel factor per reduction.", 1, 16)
    steps: int = setting(2, "Intermediate nodes per cell.", 1, MAX_STEPS)
    agg_channels: int = setting(32, "Aggregation node width.", 1, MAX_CHANNELS)
    ms_channels: int = setting(32, "Multi-scale module channels.", 1, MAX_CHANNELS)

    def __post_init__(self):
        cells = self.hyper_cells
        if (not isinstance(cells, (tuple, list)) or len(cells) != 3
                or any(isinstance(c, bool) or not isinstance(c, int) or not 1 <= c <= MAX_CELLS
                       for c in cells)):
            raise ConfigError(f"hyper_cells must be three cell counts in [1, {MAX_CELLS}] "
                              f"(one per hyper-cell, e.g. 5,10,10), got {brief(cells)}")
        object.__setattr__(self, "hyper_cells", tuple(cells))
        validate_config(self)  # the other fields' types and bounds

    def node_channels(self, hyper_cell, multiplier=1.0):
        """Node channels of the cells of hyper-cell `hyper_cell` (0-based)."""
        return scale_channels(self.channels * self.channel_growth ** (hyper_cell + 1),
                              multiplier)

    def to_json(self):
        data = dataclasses.asdict(self)
        data["hyper_cells"] = list(self.hyper_cells)
        return data

    @classmethod
    def from_json(cls, data):
        """The layout a file records (ConfigError naming a missing or wrong field)."""
        return layout_from_json(cls, data)


def parse_hyper_cells(text):
    """'5,10,10' -> (5, 10, 10), with an error that says what is expected."""
    try:
        cells = tuple(int(part) for part in str(text).split(","))
    except ValueError:
        cells = ()
    if len(cells) != 3 or any(c < 1 for c in cells):
        raise ConfigError(f"--hyper_cells must be three comma-separated cell counts >= 1 "
                         f"(e.g. 5,10,10), got {text!r}")
    return cells


def autortnet_spec(genotype):
    """(layout, depths, aggregation dict) of an AutoRTNet genotype, validated.

    Raises:
        GenotypeError: naming the field that is missing or wrong.
    """
    if genotype.method != "autortnet":
        raise GenotypeError(f"an AutoRTNet network needs a genotype of method "
                            f"'autortnet', got {genotype.method!r}; build it with the "
                            "builder of its method")
    macro = genotype.macro_dict
    for key in ("layout", "depths", "aggregation"):
        if key not in macro:
            raise GenotypeError(f"macro.{key}: missing (an AutoRTNet genotype.json written "
                                "by bin/search --method=autortnet has it)")
    try:
        layout = AutoRTNetLayout.from_json(macro["layout"])
    except (TypeError, ValueError, KeyError) as e:
        raise GenotypeError(f"macro.layout: {e}") from e
    depths = macro["depths"]
    if (not isinstance(depths, list) or len(depths) != len(layout.hyper_cells)
            or any(isinstance(d, bool) or not isinstance(d, int) for d in depths)
            or any(not 1 <= d <= n for d, n in zip(depths, layout.hyper_cells))):
        raise GenotypeError(f"macro.depths: expected one depth per hyper-cell, each in "
                            f"[1, cells of that hyper-cell {list(layout.hyper_cells)}], "
                            f"got {brief(depths)}")
    aggregation = macro["aggregation"]
    if not isinstance(aggregation, dict) or not all(
            k in aggregation for k in ("op_set", "edges", "outputs", "ops")):
        raise GenotypeError("macro.aggregation: expected an object with op_set, edges, "
                            "outputs and ops")
    try:
        check_aggregation(aggregation)
    except ValueError as e:
        raise GenotypeError(f"macro.aggregation: {e}") from None
    for h in range(len(depths)):
        for cell_type in (f"reduce_{h + 1}", f"normal_{h + 1}"):
            genotype.cell(cell_type)
    genotype.cell("multiscale")
    return layout, list(depths), aggregation
