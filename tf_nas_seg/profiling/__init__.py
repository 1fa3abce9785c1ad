"""Latency profiling: measuring lookup tables on the target device and validating them.

The table format and its reader live in `tf_nas_seg.search.latency_table` (the search
only reads); this package measures (`table_builder`), enumerates what to measure per
search method (`space_profile`, `cas_profile`) and checks tables against whole derived
networks (`table_validation`).
"""
