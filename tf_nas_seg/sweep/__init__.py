"""`bin/sweep`: the trade-off study of both papers, for any data set and device.

For each method and lambda a latency-cost search, then every searched network, random
networks of the same spaces and hand-designed peers retrained with one recipe, timed
together and put in one table and one Pareto plot (mIoU against measured latency).
"""

from tf_nas_seg.sweep.random_archs import RandomArch, SamplingError, sample_random_archs
from tf_nas_seg.sweep.sweep_config import SweepConfig
from tf_nas_seg.sweep.sweep_runner import SweepError, SweepRunner, run_sweep

__all__ = ["RandomArch", "SamplingError", "SweepConfig", "SweepError", "SweepRunner",
           "run_sweep", "sample_random_archs"]
