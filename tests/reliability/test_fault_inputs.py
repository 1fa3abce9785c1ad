"""benchmarks/fault_inputs.py, the bad-input half of the full fault-injection run: every
bad input of issue 15 gets its expected user error (not a crash), in one process."""

import pytest


@pytest.mark.slow  # builds ~30 bad inputs, exports a tiny SavedModel, trains twice (~1 min)
def test_every_bad_input_is_refused_with_its_expected_message(tmp_path):
    from benchmarks import fault_inputs

    results = fault_inputs.try_all(tmp_path, log=lambda _: None)
    assert len(results) >= 25
    # The shipped CamVid SavedModels predate the serving signature's input checks
    # (docs/DESIGN.md, "Bad artifact files"): re-exported, this case passes too.
    unexpected = [r for r in results if not r["refused"] and "shipped" not in r["input"]]
    assert unexpected == []
    assert all(" (a crash)" not in r["error"] for r in results)
