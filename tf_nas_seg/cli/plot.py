"""`bin/plot`: redraw every figure of a run directory, a sweep or a latency report.

Examples:
    bin/plot runs/demo                      # a search: cells, op weights, progress
    bin/plot runs/demo/train                # a training run: loss and val mIoU
    bin/plot ~/runs/camvid_study            # a sweep: Pareto plot and every point
    bin/plot reports/camvid_360x480_cpu.json
"""

import json
import sys

from absl import app

from tf_nas_seg.cli.common import parse_flags, user_error
from tf_nas_seg.errors import UserError


def main(argv):
    if len(argv) != 2:
        raise app.UsageError("give one path: bin/plot RUN_DIR (a search, training or "
                             "sweep directory, or a latency validation report JSON)")
    from tf_nas_seg.viz.redraw import redraw

    try:
        written = redraw(argv[1])
    except UserError as e:
        return user_error(e)
    if not written:
        print(f"error: {argv[1]} has no figures to draw yet (no history, genotype or "
              "results written so far)", file=sys.stderr)
        return 2
    print(json.dumps({"figures": written}, indent=2))
    return 0


def run():
    """Entry point of bin/plot and of the `tf-nas-seg-plot` console script."""
    app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
    run()
