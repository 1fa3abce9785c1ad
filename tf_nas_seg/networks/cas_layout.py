"""The macro structure of CAS networks, shared by the supernet and derived networks."""

import dataclasses

from tf_nas_seg.ops.macs import out_size


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
            raise ValueError(f"layout must be a non-empty string of N and R, got "
                             f"{self.layout!r}")
        if not 0 <= self.low_level_cell < len(self.layout):
            raise ValueError(f"low_level_cell={self.low_level_cell} must index a cell of "
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
        return 4 * 2 ** self.layout.count("R")

    def shapes(self, height, width, multiplier):
        """(h, w, c) of the stem output and of every cell output for an input size.

        Args:
            height: Input image height.
            width: Input image width.
            multiplier: Output channels of a cell per node channel (nodes concatenated).

        Returns:
            (stem_shape, [cell_output_shape, ...]).
        """
        h, w = out_size(out_size(height, 2), 2), out_size(out_size(width, 2), 2)
        stem = (h, w, self.stem_channels)
        outputs = []
        for spec in self.cells():
            if spec.reduction:
                h, w = out_size(h, 2), out_size(w, 2)
            outputs.append((h, w, spec.channels * multiplier))
        return stem, outputs

    def to_json(self):
        return dataclasses.asdict(self)


def walk_cell_shapes(cells, stem_shape, ms_cell=None, low_level_cell=0):
    """The (h, w, c) input shapes of every cell of a CAS network, in order.

    Args:
        cells: Backbone `Cell` layers in order.
        stem_shape: (h, w, c) of the stem output.
        ms_cell: The multi-scale cell, or None.
        low_level_cell: Index of the backbone cell feeding the multi-scale cell.

    Returns:
        ([(cell, s0_shape, s1_shape), ...] including the multi-scale cell if any,
        (h, w, c) of the features the head classifies).
    """
    s0 = s1 = stem_shape
    visits, outputs = [], []
    for cell in cells:
        visits.append((cell, s0, s1))
        h, w = s1[0], s1[1]
        if cell.reduction:
            h, w = out_size(h, 2), out_size(w, 2)
        s0, s1 = s1, (h, w, cell.output_channels)
        outputs.append(s1)
    features = s1
    if ms_cell is not None:
        low = outputs[low_level_cell]
        visits.append((ms_cell, low, s1))
        features = (low[0], low[1], ms_cell.output_channels)
    return visits, features
