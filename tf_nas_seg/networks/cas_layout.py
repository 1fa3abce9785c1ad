"""The macro structure of CAS networks, shared by the supernet and derived networks."""

import dataclasses
import math

from tf_nas_seg.networks.stem import STEM_STRIDES
from tf_nas_seg.errors import ConfigError, brief
from tf_nas_seg.utils.flag_fields import setting, validate_config

# Sanity bounds of a layout read from a file (the flags' own bounds are tighter; a
# width multiplier may scale channels past them).
MAX_CHANNELS = 2 ** 16
MAX_STEPS = 64
MAX_CELLS = 256


def layout_from_json(cls, data):
    """`cls(**data)` for a layout dataclass, with a ConfigError (not a TypeError) for
    data that is not an object or names a field the layout does not have."""
    if not isinstance(data, dict):
        raise ConfigError(f"expected an object of {cls.__name__} fields, got {brief(data)}")
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} fields {brief(unknown)}; it has "
                          f"{[f.name for f in dataclasses.fields(cls)]}")
    return cls(**data)


def genotype_layout(genotype):
    """The CASLayout a CAS or DARTS genotype records in macro.layout (defaults where it
    records none); GenotypeError naming macro.layout when it is malformed."""
    from tf_nas_seg.space.genotype import GenotypeError

    try:
        return CASLayout.from_json(genotype.macro_dict.get("layout", {}))
    except ConfigError as e:
        raise GenotypeError(f"macro.layout: {e}") from None


@dataclasses.dataclass(frozen=True)
class CellSpec:
    """One backbone cell: its type, channels and whether it or its predecessor reduces."""

    index: int
    cell_type: str  # "normal" or "reduce"
    channels: int
    reduction: bool
    reduction_prev: bool


@dataclasses.dataclass(frozen=True)
class CASLayout:
    """Backbone and multi-scale cell sizes (CAS Fig. 3).

    Attributes:
        layout: One letter per backbone cell, N (normal) or R (reduction); CAS does not
            state the order, "NNRNNRNN" fits its caption (see SPEC.md section 3).
        channels: Node channels of the first cells, doubled at each reduction.
        stem_channels: Output channels of the 3-conv stem (strides 2, 1, 2).
        steps: Intermediate nodes per backbone cell (CAS: N = 6 nodes -> 3).
        low_level_cell: Backbone cell whose output is the MSCell's low-level input
            (CAS: the second normal cell, index 1 with the default layout).
        ms_channels: Node channels of the multi-scale cell.
        ms_steps: Intermediate nodes of the multi-scale cell (CAS: N = 9 -> 6).
    """

    layout: str = setting("NNRNNRNN", "Backbone cells, N or R.")
    channels: int = setting(16, "Node channels of the first cells.", 1, MAX_CHANNELS)
    stem_channels: int = setting(48, "Stem output channels.", 1, MAX_CHANNELS)
    steps: int = setting(3, "Intermediate nodes per backbone cell.", 1, MAX_STEPS)
    low_level_cell: int = setting(1, "Cell feeding the multi-scale cell.", 0, MAX_CELLS)
    ms_channels: int = setting(32, "Multi-scale cell node channels.", 1, MAX_CHANNELS)
    ms_steps: int = setting(6, "Multi-scale cell intermediate nodes.", 1, MAX_STEPS)

    def __post_init__(self):
        validate_config(self)  # types and bounds: a layout may come from a genotype file
        if (not self.layout or len(self.layout) > MAX_CELLS
                or set(self.layout) - {"N", "R"}):
            raise ConfigError(f"layout must be a non-empty string of N and R (at most "
                              f"{MAX_CELLS} cells), got {brief(self.layout)}")
        if not 0 <= self.low_level_cell < len(self.layout):
            raise ConfigError(f"low_level_cell={self.low_level_cell} must index a cell of "
                             f"layout {self.layout!r}")

    @classmethod
    def from_json(cls, data):
        """The layout a file records (ConfigError naming a missing or wrong field)."""
        return layout_from_json(cls, data)

    def cells(self):
        """Returns the CellSpec of every backbone cell, in order."""
        specs, channels, prev_reduction = [], self.channels, False
        for i, letter in enumerate(self.layout):
            reduction = letter == "R"
            if reduction:
                channels *= 2
            specs.append(CellSpec(i, "reduce" if reduction else "normal", channels,
                                  reduction, prev_reduction))
            prev_reduction = reduction
        return specs

    @property
    def output_stride(self):
        return math.prod(STEM_STRIDES) * 2 ** self.layout.count("R")

    def to_json(self):
        return dataclasses.asdict(self)
