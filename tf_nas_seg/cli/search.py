"""`bin/search`: run (or resume) an architecture search into --run_dir.

Examples:
    bin/search --flagfile=configs/demo.cfg --run_dir=runs/demo
    bin/search --flagfile=configs/demo_autortnet.cfg --run_dir=runs/demo_autortnet
    bin/search --flagfile=configs/cityscapes.cfg --data_dir=/data/cityscapes \
        --run_dir=runs/cityscapes_backbone
"""

import json
import os
import sys

from absl import app, logging

from tf_nas_seg.cli.common import begin, parse_flags, restart_without_onednn, user_error
from tf_nas_seg.errors import UserError
from tf_nas_seg.search.search_config import SearchConfig
from tf_nas_seg.utils.flag_fields import config_from_flags, define_flags

define_flags(SearchConfig)


def main(argv):
    begin(argv, logging.INFO)
    from tf_nas_seg.search.search_runner import run_search

    try:
        config = config_from_flags(SearchConfig)
        if config.method == "autortnet":
            restart_without_onednn("AutoRTNet search")
        summary = run_search(config)
    except UserError as e:
        return user_error(e)
    run_dir = os.path.abspath(config.run_dir)
    if summary["status"] != "completed":
        print(f"search stopped at iteration {summary['iterations_done']} of "
              f"{summary['iterations']}; rerun the same command to resume from "
              f"{run_dir}/checkpoints", file=sys.stderr)
        return 3
    derived = summary["derived"]
    extra = {}
    if "depths" in summary:
        extra = {"depths": summary["depths"], "expected_depths": summary["expected_depths"]}
        if "derived_predicted_cost" in summary:
            predicted = summary["derived_predicted_cost"]
            extra["predicted_cost"] = f"{predicted['value']:.6g} {predicted['unit']}"
    print(json.dumps({
        "genotype": os.path.join(run_dir, "genotype.json"),
        "summary": os.path.join(run_dir, "search_summary.json"),
        "wall_time_seconds": summary["wall_time_seconds"],
        "arch_miou": summary["final"]["arch_miou"],
        "derived_params": derived["params"],
        "derived_gmacs": round(derived["macs"] / 1e9, 4),
        "at": f"{derived['height']}x{derived['width']}",
        **extra,
    }, indent=2))
    return 0


def run():
    """Entry point of bin/search and of the `tf-nas-seg-search` console script."""
    app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
    run()
