"""Layers of several inputs go through the shared layer test like every op."""

from tests.layer_test_helper import run_layer_test
from tf_nas_seg.networks.stem import SegmentationHead
from tf_nas_seg.ops.op_set import get_op_set
from tf_nas_seg.space.aggregation_cell import AGGREGATION_EDGES, AggregationCell


def test_fixed_aggregation_cell_through_layer_test(tmp_path):
    ops = get_op_set("aggregation").ops
    chosen = [ops[(i % (len(ops) - 1)) + 1] for i in range(len(AGGREGATION_EDGES))]
    run_layer_test(lambda: AggregationCell("aggregation", 8, ops=chosen),
                   [(16, 16, 6), (8, 8, 7), (4, 4, 9)], (16, 16, 24), tmp_path,
                   call=lambda layer, xs, **kw: layer(list(xs), **kw))


def test_segmentation_head_through_layer_test(tmp_path):
    """Features at a quarter of the image size; logits come back at the image size."""
    run_layer_test(lambda: SegmentationHead(5), [(4, 6, 8), (16, 24, 3)], (16, 24, 5),
                   tmp_path)
