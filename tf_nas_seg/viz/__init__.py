"""Figures people would rather look at than JSON: cells, weights, search progress."""

from tf_nas_seg.viz.figures import draw_arch_weights, draw_cell, draw_search_progress
