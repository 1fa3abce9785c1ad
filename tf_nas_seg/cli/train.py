"""`bin/train`: train (or resume training) a searched or hand-designed network.

Examples:
    bin/train --genotype=runs/demo/genotype.json --run_dir=runs/demo_train \
        --flagfile=configs/demo_train.cfg
    bin/train --flagfile=configs/camvid_train.cfg --genotype=runs/camvid/genotype.json \
        --data_dir=../shared/datasets/camvid --run_dir=runs/camvid_train
    bin/train --flagfile=configs/camvid_train.cfg --peer=fast_scnn \
        --data_dir=../shared/datasets/camvid --run_dir=runs/camvid_fast_scnn
"""

import json
import sys

from absl import app, logging

from tf_nas_seg.cli.common import begin, parse_flags, restart_without_onednn, user_error
from tf_nas_seg.errors import UserError
from tf_nas_seg.train.train_config import TrainConfig
from tf_nas_seg.utils.flag_fields import config_from_flags, define_flags

define_flags(TrainConfig)


def main(argv):
    begin(argv, logging.INFO)
    from tf_nas_seg.train.trainer import run_training

    try:
        config = config_from_flags(TrainConfig)
        if _genotype_method(config.genotype) == "autortnet":
            restart_without_onednn("training an AutoRTNet network")
        summary = run_training(config)
    except UserError as e:
        return user_error(e)
    if summary["status"] != "completed":
        print(f"training stopped at iteration {summary['iterations_done']} of "
              f"{summary['iterations']}; rerun the same command to resume",
              file=sys.stderr)
        return 3
    print(json.dumps({
        "model": summary["model"], "best_model": summary["best_model"],
        "val_miou": round(summary["final_val"]["miou"], 4),
        "best_val_miou": round(summary["best_val_miou"], 4),
        "params": summary["params"], "wall_time_seconds": summary["wall_time_seconds"],
    }, indent=2))
    return 0


def _genotype_method(path):
    """The search method a genotype file names, or None (no file, or one that run_training
    will refuse with its own message)."""
    if not path:
        return None
    try:
        with open(path) as f:
            return json.load(f).get("method")
    except (OSError, ValueError, AttributeError):
        return None


def run():
    """Entry point of bin/train and of the `tf-nas-seg-train` console script."""
    app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
    run()
