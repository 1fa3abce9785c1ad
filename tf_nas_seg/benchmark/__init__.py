"""Latency, throughput and efficiency of segmentation networks in every format (`bin/benchmark`)."""

from tf_nas_seg.benchmark.benchmark_runner import (BenchmarkError, environment, markdown_table,
                                                   parse_resolutions, run_benchmark)
from tf_nas_seg.benchmark.timing import matmul_peak_gflops
from tf_nas_seg.utils.timing import latency_stats, time_calls

__all__ = ["BenchmarkError", "environment", "latency_stats", "markdown_table",
           "matmul_peak_gflops", "parse_resolutions", "run_benchmark", "time_calls"]
