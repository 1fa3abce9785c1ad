"""The macro structure of CAS networks, shared by the supernet and derived networks."""

import dataclasses
import math

from tf_nas_seg.networks.stem import STEM_STRIDES
from tf_nas_seg.errors import ConfigError


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

    layout: str = "NNRNNRNN"
    channels: int = 16
    stem_channels: int = 48
    steps: int = 3
    low_level_cell: int = 1
    ms_channels: int = 32
    ms_steps: int = 6

    def __post_init__(self):
        if not self.layout or set(self.layout) - {"N", "R"}:
            raise ConfigError(f"layout must be a non-empty string of N and R, got "
                             f"{self.layout!r}")
        if not 0 <= self.low_level_cell < len(self.layout):
            raise ConfigError(f"low_level_cell={self.low_level_cell} must index a cell of "
                             f"layout {self.layout!r}")

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
