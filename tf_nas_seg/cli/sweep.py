"""`bin/sweep`: search at several lambdas, retrain, time and compare with random
architectures and hand-designed peers, all with one recipe (resumable).

Examples:
    bin/sweep --flagfile=configs/camvid_study.cfg --data_dir=../shared/datasets/camvid \
        --run_dir=~/runs/camvid_study
    bin/sweep --methods=cas --lambdas=0.005,0.02 --random=5 --peers=fast_scnn \
        --cas_flagfile=configs/camvid.cfg --train_flagfile=configs/camvid_train.cfg \
        --data_dir=../shared/datasets/camvid --run_dir=runs/cas_sweep
    bin/sweep --run_dir=~/runs/camvid_study --pack=studies/camvid  # carry it elsewhere
"""

import json
import os
import sys

from absl import app, flags, logging

from tf_nas_seg.cli.common import begin, parse_flags, user_error
from tf_nas_seg.errors import UserError
from tf_nas_seg.sweep.sweep_config import SweepConfig
from tf_nas_seg.utils.flag_fields import config_from_flags, define_flags

define_flags(SweepConfig)
flags.DEFINE_string("pack", "", "Run nothing: copy what the sweep in --run_dir has finished "
                    "(tables, searches, trainings with their final models, benchmark, "
                    "results) into this directory, itself a sweep directory that resumes "
                    "anywhere (no checkpoints of finished runs, no TensorBoard files). May "
                    "run while the sweep runs.")
flags.DEFINE_bool("pack_unfinished", False, "With --pack: also copy the searches and "
                  "trainings that have started and not finished, with their latest "
                  "checkpoint, so they resume from it on the other machine.")
flags.DEFINE_float("pack_max_checkpoint_mib", 16.0, "With --pack_unfinished: leave out a "
                   "started run whose latest checkpoint is larger (a search's supernet "
                   "checkpoint is tens of MiB), so the pack stays small enough to commit.",
                   lower_bound=0.0)


def main(argv):
    begin(argv, logging.INFO)
    try:
        config = config_from_flags(SweepConfig)
    except UserError as e:  # a setting out of its bounds or choices, named
        return user_error(e)
    # after the settings are checked: a bad one is reported before TensorFlow loads
    from tf_nas_seg.sweep import run_sweep
    if flags.FLAGS.pack:
        from tf_nas_seg.sweep.pack import pack_sweep

        if not config.run_dir:
            print("error: --pack needs --run_dir, the sweep to pack", file=sys.stderr)
            return 2
        try:
            packed = pack_sweep(config.run_dir, flags.FLAGS.pack,
                                unfinished=flags.FLAGS.pack_unfinished,
                                max_checkpoint_mib=flags.FLAGS.pack_max_checkpoint_mib)
        except UserError as e:
            return user_error(e)
        print(json.dumps(packed, indent=2))
        return 0
    try:
        results = run_sweep(config.replace(run_dir=os.path.expanduser(config.run_dir)))
    except UserError as e:
        return user_error(e)
    sweep_dir = os.path.abspath(os.path.expanduser(config.run_dir))
    with open(os.path.join(sweep_dir, "results.md"), encoding="utf-8") as f:
        print(f.read())
    print(json.dumps({"status": results["status"],
                      "results": os.path.join(sweep_dir, "results.json"),
                      "table": os.path.join(sweep_dir, "results.md"),
                      "plot": results.get("plot"),
                      "compute_seconds": results["compute_seconds"]}, indent=2))
    if results["status"] == "interrupted":
        print("the sweep stopped; rerun the same command to resume it", file=sys.stderr)
        return 3
    return 0


def run():
    """Entry point of bin/sweep and of the `tf-nas-seg-sweep` console script."""
    app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
    run()
