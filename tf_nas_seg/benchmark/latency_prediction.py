"""What a latency lookup table predicts for a derived network (beside the measured time)."""

import tensorflow as tf

from tf_nas_seg.ops.macs import out_size
from tf_nas_seg.search.latency_table import op_key


def _cells(layer):
    from tf_nas_seg.space.cell import Cell

    if isinstance(layer, Cell):
        yield layer
    for child in getattr(layer, "layers", []) or []:
        if child is not layer:
            yield from _cells(child)


def predict_latency_ms(model, table, height, width):
    """The sum of the table's entries for the searched edges of `model` at (height, width).

    This is what the search's latency cost reads (`cost_model.edge_costs`): one entry per
    kept edge of every fixed cell, keyed by op set, op, channels, input size and stride.
    The stem, cell preprocessing and head are not in the table, so the prediction is
    expected to be below the measured time; their ratio is the table's calibration.

    Args:
        model: A Keras model built from a genotype (CAS or DARTS cells).
        table: A `LatencyTable`.
        height: Input height.
        width: Input width.

    Returns:
        (milliseconds, number of entries read); (None, 0) for a network without cells.

    Raises:
        LatencyTableError: an entry is missing (the message names it).
    """
    cells = [c for c in _cells(model) if c.genotype is not None]
    if not cells:
        return None, 0
    shapes = {}
    originals = {}
    for cell in cells:
        originals[cell] = cell.call

        def recording(s0, s1, *args, _cell=cell, **kwargs):
            shapes[_cell] = (tuple(s0.shape[1:]), tuple(s1.shape[1:]))
            return originals[_cell](s0, s1, *args, **kwargs)

        cell.call = recording
    try:
        spec = tf.TensorSpec((1, height, width, 3), tf.float32)
        tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    finally:
        for cell in cells:
            del cell.call  # back to the class's method
    total, entries = 0.0, 0
    for cell in cells:
        s0, s1 = shapes[cell]
        h, w = s1[0], s1[1]
        if cell.reduction:
            h, w = out_size(h, 2), out_size(w, 2)
        node_shape = (h, w, cell.channels)
        for j, node in enumerate(cell.genotype.nodes):
            for edge in node:
                shape = cell.edge_shape(edge.source, node_shape, s0, s1)
                stride = cell._stride(edge.source)
                total += table.lookup(op_key(cell.op_set, edge.op, shape[2], shape[2],
                                             shape[0], shape[1], stride))
                entries += 1
    return total, entries
