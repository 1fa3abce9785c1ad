"""Layers of several inputs go through the shared layer test like every op."""

from tests.layer_test_helper import run_layer_test
from tf_nas_seg.networks.stem import SegmentationHead
from tf_nas_seg.ops.op_set import get_op_set
from tf_nas_seg.space.aggregation_cell import AGGREGATION_EDGES, AggregationCell


def test_fixed_aggregation_cell_through_layer_test(tmp_path):
    ops = get_op_set("aggregation").ops
    chosen = [ops[(i % (len(ops) - 1)) + 1] for i in range(len(AGGREGATION_EDGES))]
    cell = AggregationCell("aggregation", 8, ops=chosen)
    # Three branch ends of 8 channels, at the size of the first (stride-8) input.
    assert cell.output_channels == 24
    assert cell.node_shapes([(16, 16), (8, 8), (4, 4)])[6] == (4, 4)
    run_layer_test(lambda: AggregationCell("aggregation", 8, ops=chosen),
                   [(16, 16, 6), (8, 8, 7), (4, 4, 9)], (16, 16, 24), tmp_path,
                   call=lambda layer, xs, **kw: layer(list(xs), **kw))


def test_segmentation_head_through_layer_test(tmp_path):
    """Features at a quarter of the image size; logits come back at the image size."""
    head = SegmentationHead(5)
    assert head.compute_output_shape((2, 4, 6, 8), (2, 16, 24, 3)) == (2, 16, 24, 5)
    assert head.count_macs((4, 6, 8)) == 4 * 6 * 8 * 5
    run_layer_test(lambda: SegmentationHead(5), [(4, 6, 8), (16, 24, 3)], (16, 24, 5),
                   tmp_path)
