"""The full fault-injection run: SIGKILL every long command at many points, feed bad input.

    python benchmarks/fault_injection.py [--seed=0] [--quick] [--json=report.json]

Part 1, kills: each command runs on tiny bundled (synthetic) data, is SIGKILLed at
random points after its first checkpoint (a search, a training), saved chunk (a latency
table build) or timing round (a validation), or in the middle of its work (a
calibration), rerun after each kill, and finally run to its end. Then:

- search and training must end bit-identical to an uninterrupted run with the same
  seed (checkpointed state, history, genotype, summary less its timings);
- a table build must hold the same keys and settings as an uninterrupted build, and
  every entry saved before a kill, unchanged (entries are timings: no two builds agree);
- a validation must keep every timing round saved before a kill;
- a calibration killed before it finishes must leave the table as it was;
- after every kill, every JSON file in the run directory must parse (atomic writes).

Part 2, bad input: every bad input of issue 15 (data, genotypes, latency tables,
flagfiles, hostile .keras files, SavedModel inputs, a second process on a run directory,
a full disk, a diverging loss) is tried once and its error line printed.

Prints a summary (faults injected, survived, bad inputs tried, anything lost) and exits
1 if anything was lost or a bad input was not refused with its expected message.
"""

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tests.reliability import kill_harness as harness  # noqa: E402

# Longer than the tests' runs, so that a chain of kills fits before the end.
SEARCH = tuple(a for a in harness.SEARCH_ARGS if not a.startswith("--iterations")) + (
    "--iterations=16",)
TRAIN = tuple(a for a in harness.TRAIN_ARGS if not a.startswith("--iterations")) + (
    "--iterations=32",)
TABLE = tuple(a.replace("--layout=NR", "--layout=NRNR").replace("--steps=1", "--steps=2")
              for a in harness.TABLE_ARGS)  # 86 layers: 4 saved chunks


def log(message):
    print(message, file=sys.stderr, flush=True)


def broken_json(folder):
    """JSON files under `folder` that do not parse (a half-written file)."""
    bad = []
    for path in Path(folder).rglob("*.json"):
        try:
            json.loads(path.read_text())
        except (OSError, ValueError):
            bad.append(str(path))
    return bad


class Kills:
    """Runs kill chains and counts faults injected, survived and lost."""

    def __init__(self, work, rng):
        self.work = Path(work)
        self.rng = rng
        self.records = []  # one per injected kill
        self.lost = []  # what a chain lost

    def _chain(self, name, argv, ready_for, kills, check_after_kill=None):
        """Kills `argv` up to `kills` times (ready_for(i) gives the i-th readiness test),
        then runs it to its end; returns the final CompletedProcess."""
        records = []
        for i in range(kills):
            ready, delay, where = ready_for(i)
            result = harness.kill_at(argv, ready, delay)
            if not result["killed"]:
                log(f"{name}: kill {i + 1} not injected (the command ended first, "
                    f"exit {result['returncode']})")
                break
            record = {"command": name, "kill": i + 1, "where": where(),
                      "seconds_after_start": result["seconds"],
                      "broken_json": broken_json(self.folder_of(argv))}
            if check_after_kill is not None:
                record.update(check_after_kill())
            log(f"{name}: kill {i + 1} at {record['where']} ({result['seconds']} s)")
            records.append(record)
        final = harness.run(argv)
        for record in records:
            record["resumed_to_the_end"] = final.returncode == 0
        self.records += records
        if final.returncode != 0:
            self.lost.append(f"{name}: the final rerun failed (exit {final.returncode}): "
                             f"{final.stderr.strip().splitlines()[-1:]}")
        for record in records:
            if record["broken_json"]:
                self.lost.append(f"{name}: half-written JSON after kill {record['kill']}: "
                                 f"{record['broken_json']}")
        return final, records

    @staticmethod
    def folder_of(argv):
        for arg in argv:
            for flag in ("--run_dir=", "--out=", "--table="):
                if arg.startswith(flag):
                    path = Path(arg[len(flag):])
                    return path if flag == "--run_dir=" else path.parent
        raise ValueError(argv)

    def run_chain(self, tool, args, kind, kills):
        """search / train: kills after random checkpoints; compared with a clean run."""
        reference, killed = self.work / f"{kind}_reference", self.work / f"{kind}_killed"
        started = time.monotonic()
        done = harness.run(harness.command(tool, *args, f"--run_dir={reference}"))
        if done.returncode != 0:
            raise RuntimeError(f"the uninterrupted {kind} failed: {done.stderr[-2000:]}")
        state = {"last": 0}

        def ready_for(_):
            target = state["last"] + self.rng.randint(1, 2)

            def ready(_log):
                return harness.checkpoint_step(killed) >= target

            def where():
                state["last"] = harness.checkpoint_step(killed)
                return f"after checkpoint {state['last']} (+{delay:.2f} s)"

            delay = self.rng.uniform(0.0, 0.25)  # a step takes ~0.1 s after tracing
            return ready, delay, where

        _, records = self._chain(kind, harness.command(tool, *args, f"--run_dir={killed}"),
                                 ready_for, kills)
        problems = harness.compare_runs(kind, reference, killed)
        for record in records:
            record["equal_to_uninterrupted"] = not problems
        self.lost += [f"{kind}: {p}" for p in problems]
        log(f"{kind}: {len(records)} kills, resumed result "
            f"{'equal' if not problems else problems} ({time.monotonic() - started:.0f} s)")

    def table_chain(self, kills):
        """Latency table build: kills during the first chunk and after saved chunks."""
        reference, killed = self.work / "table_reference.json", self.work / "table.json"
        started = time.monotonic()
        done = harness.run(harness.command("latency_table", *TABLE, f"--table={reference}"))
        if done.returncode != 0:
            raise RuntimeError(f"the uninterrupted table build failed: {done.stderr[-2000:]}")
        state = {"saved": -1, "at_kill": []}

        def ready_for(i):
            if i == 0:  # in the first chunk, nothing saved yet
                ready = lambda log: "distinct layers in the space" in log  # noqa: E731
            else:
                need = state["saved"] + 1

                def ready(_log):
                    return len(harness.table_entries(killed)) >= need

            delay = self.rng.uniform(0.0, 1.5)

            def where():
                entries = harness.table_entries(killed)
                state["saved"] = len(entries)
                state["at_kill"].append(dict(entries))
                return f"{len(entries)} entries saved (+{delay:.2f} s)"

            return ready, delay, where

        _, records = self._chain("table build", harness.command(
            "latency_table", *TABLE, f"--table={killed}"), ready_for, kills)
        final = harness.table_entries(killed)
        problems = harness.compare_tables(reference, killed)
        for record, at_kill in zip(records, state["at_kill"]):
            lost = harness.lost_entries(at_kill, final)
            record["entries_lost"] = len(lost)
            problems += [f"lost {k} after kill {record['kill']}" for k in lost]
        self.lost += [f"table build: {p}" for p in problems]
        log(f"table build: {len(records)} kills, {len(final)} entries, "
            f"{'nothing lost' if not problems else problems} "
            f"({time.monotonic() - started:.0f} s)")
        return reference

    def validate_chain(self, table, kills):
        """Validation: kills after saved timing rounds; the rounds must be kept."""
        out = self.work / "validate" / "report.json"
        out.parent.mkdir(exist_ok=True)
        # rounds of ~0.6 s (3 networks x 1.6 s / 8 rounds): a kill lands inside one
        argv = harness.command("latency_table", *harness.VALIDATE_ARGS, "--network_passes=8",
                               "--network_seconds=1.6", "--max_repeats=100000",
                               f"--table={table}", f"--out={out}")
        state = {"rounds": 0, "at_kill": []}

        def timing():
            try:
                return json.loads(out.read_text()).get("timing") or {}
            except (OSError, ValueError):
                return {}

        def ready_for(_):
            need = state["rounds"] + 1
            delay = self.rng.uniform(0.0, 0.3)

            def where():
                saved = timing()
                state["rounds"] = saved.get("passes_done", 0)
                state["at_kill"].append(saved)
                return f"{state['rounds']} timing rounds saved (+{delay:.2f} s)"

            return (lambda _log: timing().get("passes_done", 0) >= need), delay, where

        started = time.monotonic()
        _, records = self._chain("validate", argv, ready_for, kills)
        final = json.loads(out.read_text())
        problems = [] if final.get("status") == "complete" else ["the report is not complete"]
        for record, saved in zip(records, state["at_kill"]):
            kept = all(final["timing"]["times_ms"][g][:len(times)] == times
                       for g, times in enumerate(saved.get("times_ms", [])))
            record["rounds_kept"] = kept
            if not kept:
                problems.append(f"timing rounds saved before kill {record['kill']} changed")
        self.lost += [f"validate: {p}" for p in problems]
        log(f"validate: {len(records)} kills, {'nothing lost' if not problems else problems}"
            f" ({time.monotonic() - started:.0f} s)")

    def calibrate_chain(self, table, kills):
        """Calibration: killed while timing; the table must be left as it was (or, if
        the kill came after the calibration was saved, be calibrated, its entries as
        they were)."""
        copy = self.work / "calibrate" / "table.json"
        copy.parent.mkdir(exist_ok=True)
        shutil.copy(table, copy)
        before = json.loads(copy.read_text())
        argv = harness.command("latency_table", *harness.CALIBRATE_ARGS, "--network_passes=8",
                               "--calibration_archs=6", f"--table={copy}")

        def ready_for(_):
            delay = self.rng.uniform(0.0, 0.3)
            return ((lambda log: "round 1/" in log), delay,
                    lambda: f"while timing networks (+{delay:.2f} s)")

        def table_intact():
            after = json.loads(copy.read_text())
            if after == before:
                return {"table_after_kill": "unchanged"}
            calibrated = (after["entries"] == before["entries"]
                          and isinstance(after.get("calibration"), dict))
            return {"table_after_kill": "calibrated (the kill came after its save)"
                    if calibrated else "changed"}

        started = time.monotonic()
        _, records = self._chain("calibrate", argv, ready_for, kills, table_intact)
        after = json.loads(copy.read_text())
        problems = [f"the table changed under kill {r['kill']}" for r in records
                    if r["table_after_kill"] == "changed"]
        if after["entries"] != before["entries"] or "calibration" not in after:
            problems.append("the rerun did not calibrate the same entries")
        self.lost += [f"calibrate: {p}" for p in problems]
        log(f"calibrate: {len(records)} kills, {'nothing lost' if not problems else problems}"
            f" ({time.monotonic() - started:.0f} s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill points")
    parser.add_argument("--quick", action="store_true",
                        help="one kill per command (5 in all), for a smoke test")
    parser.add_argument("--only", choices=("kills", "bad_inputs"), default=None)
    parser.add_argument("--json", default="", help="also write the report here")
    parser.add_argument("--work_dir", default="", help="keep the runs here (default: a "
                        "temporary folder, removed)")
    args = parser.parse_args()
    counts = {"search": 6, "train": 6, "table": 4, "validate": 4, "calibrate": 2}
    if args.quick:
        counts = dict.fromkeys(counts, 1)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="fault_injection_"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    kills = Kills(work, random.Random(args.seed))
    bad = []
    try:
        if args.only in (None, "kills"):
            kills.run_chain("search", SEARCH, "search", counts["search"])
            kills.run_chain("train", TRAIN, "train", counts["train"])
            table = kills.table_chain(counts["table"])
            kills.validate_chain(table, counts["validate"])
            kills.calibrate_chain(table, counts["calibrate"])
        if args.only in (None, "bad_inputs"):
            from benchmarks import fault_inputs

            bad = fault_inputs.try_all(work / "bad_inputs", log)
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    refused = [b for b in bad if b["refused"]]
    by_command = {}
    for record in kills.records:
        by_command[record["command"]] = by_command.get(record["command"], 0) + 1
    survived = [r for r in kills.records if r["resumed_to_the_end"] and not r["broken_json"]]
    report = {
        "faults_injected": len(kills.records), "kills_by_command": by_command,
        "survived": len(survived), "lost": kills.lost,
        "bad_inputs_tried": len(bad), "bad_inputs_refused_as_expected": len(refused),
        "bad_inputs": bad, "kills": kills.records,
        "seconds": round(time.monotonic() - started),
    }
    print(f"faults injected: {len(kills.records)} SIGKILLs "
          f"({', '.join(f'{k} {v}' for k, v in by_command.items())}); survived "
          f"(resumed to the end, no half-written file): {len(survived)}")
    print(f"lost: {kills.lost or 'nothing'}")
    print(f"bad inputs tried: {len(bad)}; refused with the expected message: {len(refused)}")
    for b in bad:
        print(f"  [{'ok' if b['refused'] else 'UNEXPECTED'}] {b['input']}: {b['error']}")
    print(f"wall time: {report['seconds']} s")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 1 if kills.lost or len(refused) != len(bad) else 0


if __name__ == "__main__":
    sys.exit(main())
