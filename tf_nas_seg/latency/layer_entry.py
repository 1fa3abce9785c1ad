"""One measurable layer of a network: its table key, how to build it, its input shapes."""

import dataclasses
import inspect
from typing import Callable, Optional


@dataclasses.dataclass(frozen=True)
class EdgeRef:
    """Where a searched edge's cost goes in the cost model.

    Attributes:
        cell_type: Logit tensor's cell type ("normal", "reduce", "multiscale", ...).
        row: Edge row of that tensor.
        op_index: Column of the op; None for a layer every op of the edge pays (the
            multi-scale cell's per-edge 1x1 projection), added to every non-none column.
    """

    cell_type: str
    row: int
    op_index: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class LayerEntry:
    """A layer the table measures, or that a network's prediction sums.

    Attributes:
        key: Table key (`tf_nas_seg.latency.table.op_key` / `fixed_key`).
        factory: Zero-argument callable returning a fresh callable `f(*inputs)` (a Keras
            layer or a function of `keras.ops`); it is built on symbolic inputs, then
            compiled as a `tf.function` and timed in inference mode.
        input_shapes: One (height, width, channels) per input, without the batch.
        edge: For a candidate op of a searched edge, where its cost goes; None for
            layers whose cost is fixed.
    """

    key: str
    factory: Callable = dataclasses.field(compare=False, repr=False)
    input_shapes: tuple = ()
    edge: Optional[EdgeRef] = None


def inference_call(layer):
    """`f(*inputs)` calling `layer` in inference mode (training=False where it takes it)."""
    if not hasattr(layer, "call"):
        return layer
    if "training" in inspect.signature(layer.call).parameters:
        return lambda *xs: layer(*xs, training=False)
    return lambda *xs: layer(*xs)


def dedupe(entries):
    """Entries with distinct keys, first occurrence kept, order preserved."""
    seen, result = set(), []
    for entry in entries:
        if entry.key not in seen:
            seen.add(entry.key)
            result.append(entry)
    return result
