"""Validating a table against measured whole networks: figures, plot, resumption."""

import json
import os

import numpy as np
import pytest

from tf_nas_seg.latency.validation import (rank, sample_architectures, spearman,
                                                   summarize, validate_table)

from tests.latency.helpers import fast_timer, synthetic_table


def test_spearman_averages_tied_ranks():
    np.testing.assert_allclose(rank([10, 20, 20, 5]), [2, 3.5, 3.5, 1])
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # hand-computed: ranks (1, 2.5, 2.5, 4) vs (1, 3, 2, 4) -> 0.9486832980505138
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(0.9486832980505138)


def test_summary_figures():
    summary = summarize([110, 95, 50], [100, 100, 100])
    assert summary["mape_pct"] == pytest.approx((10 + 5 + 50) / 3)
    assert summary["within_10pct"] == pytest.approx(2 / 3)
    assert summary["num_archs"] == 3
    assert summarize([1, 1, 1], [1, 2, 3])["spearman"] is None  # undefined, not NaN


def test_sampled_architectures_span_cheap_to_expensive(tiny_table):
    table = _synthetic(tiny_table)
    archs = sample_architectures(table, 6, seed=0)
    predicted = [p for _, p in archs]
    assert len(archs) == 6 and predicted == sorted(predicted)
    assert predicted[-1] > 1.2 * predicted[0]
    again = sample_architectures(table, 6, seed=0)
    assert [g for g, _ in again] == [g for g, _ in archs]  # resumable: same sample


def test_validation_on_a_tiny_space_gives_finite_figures_and_a_plot(tiny_table, tmp_path):
    out = str(tmp_path / "report.json")
    lines = []
    table = _synthetic(tiny_table)  # distinct predictions; the measurements are real
    report = validate_table(table, fast_timer(), 1, 3, 0, out, lines.append,
                            passes=1)
    saved = json.loads(open(out).read())
    assert saved["status"] == "complete" and saved["summary"] == report["summary"]
    for field in ("mape_pct", "spearman", "within_10pct"):
        assert np.isfinite(report["summary"][field]), field
    rows = saved["architectures"]
    assert len(rows) == 3 and all(r["measured_ms"] > 0 and r["predicted_ms"] > 0
                                  for r in rows)
    # the synthetic table is uncalibrated: both summaries read the same predictions
    assert all(r["uncalibrated_ms"] == r["predicted_ms"] for r in rows)
    assert saved["summary_uncalibrated"] == saved["summary"]
    with open(report["plot"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.splitext(report["plot"])[0] == os.path.splitext(out)[0]
    # rerunning finds every network measured and measures none again
    lines.clear()
    again = validate_table(table, fast_timer(), 1, 3, 0, out, lines.append,
                           passes=1)
    assert not lines and again["architectures"] == rows


def _synthetic(tiny_table, path=None):
    return synthetic_table(tiny_table, path)


def test_calibration_fits_a_linear_map_and_predictions_use_it(tiny_table, tmp_path,
                                                              monkeypatch):
    import tf_nas_seg.latency.validation as validation
    from tf_nas_seg.latency.table import LatencyTable

    table = _synthetic(tiny_table, str(tmp_path / "t.json"))
    profile = validation.get_profile("cas")

    def measured_as(scale, offset):
        def fake(table_, genotypes, timer, batch, passes, seed=0, state=None,
                 on_pass=None):
            results = []
            for g in genotypes:
                keys = [e.key for e in profile.network_entries(table_.meta["space"], g)]
                results.append({"median_ms": offset + scale * table_.predict(keys, False)})
            return results
        return fake

    monkeypatch.setattr(validation, "measure_networks", measured_as(1.5, 2.0))
    fit = validation.calibrate_table(table, fast_timer(), 1, 4, 0, lambda _: None)
    assert fit["scale"] == pytest.approx(1.5, rel=1e-4)
    assert [n["measured_ms"] for n in fit["networks"]] == pytest.approx(
        [2.0 + 1.5 * n["table_sum_ms"] for n in fit["networks"]], abs=1e-3)
    assert fit["offset_ms"] == pytest.approx(2.0, abs=1e-3)
    assert fit["fit_mape_pct"] == pytest.approx(0.0, abs=0.01)
    loaded = LatencyTable.load(table.path)
    assert loaded.calibration == (fit["scale"], fit["offset_ms"])
    keys = list(table.entries)[:5]
    raw = loaded.predict(keys, calibrated=False)
    assert loaded.predict(keys) == pytest.approx(fit["offset_ms"] + fit["scale"] * raw)
    monkeypatch.setattr(validation, "measure_networks", measured_as(-1.0, 100.0))
    with pytest.raises(ValueError, match="no positive relation"):
        validation.calibrate_table(table, fast_timer(), 1, 4, 0, lambda _: None)
    # the calibration networks come from another stream than the validation sample
    calibration = sample_architectures(table, 3, 0, stream=1)
    held_out = sample_architectures(table, 3, 0)
    assert not {json.dumps(g.to_json()) for g, _ in calibration} & {
        json.dumps(g.to_json()) for g, _ in held_out}


def test_interrupted_validation_resumes_at_the_next_round(tiny_table, tmp_path):
    out = str(tmp_path / "report.json")
    table = _synthetic(tiny_table)

    def stop_after_first_round(line):
        if line.startswith("round 1/2"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        validate_table(table, fast_timer(), 1, 3, 0, out, stop_after_first_round, passes=2)
    partial = json.loads(open(out).read())
    assert partial["status"] == "partial" and partial["timing"]["passes_done"] == 1
    first_round = [len(t) for t in partial["timing"]["times_ms"]]
    assert all(n > 0 for n in first_round)
    lines = []
    report = validate_table(table, fast_timer(), 1, 3, 0, out, lines.append, passes=2)
    assert lines[0].startswith("resuming") and not any(l.startswith("round 1/") for l in lines)
    # the first round's times are kept and the second round's added
    assert all(r["runs"] > n for r, n in zip(report["architectures"], first_round))
    assert report["status"] == "complete" and report["timing"]["passes_done"] == 2


def test_session_calibration_is_fitted_on_disjoint_networks_timed_alongside(
        tiny_table, tmp_path, monkeypatch):
    import tf_nas_seg.latency.validation as validation

    out = str(tmp_path / "report.json")
    table = _synthetic(tiny_table)
    timed = []

    def measured_as_2_plus_1_5_sum(table_, genotypes, timer, batch, passes, seed=0,
                                   state=None, on_pass=None, max_rounds=0):
        # the synthetic table's sums have no relation to real timings: script them
        timed.append(len(genotypes))
        state = {"passes_done": passes,
                 "times_ms": [[2.0 + 1.5 * validation._table_sum(table_, g)]
                              for g in genotypes]}
        on_pass(state)

    monkeypatch.setattr(validation, "measure_networks", measured_as_2_plus_1_5_sum)
    report = validate_table(table, fast_timer(), 1, 3, 0, out, lambda _: None, passes=1,
                            session_calibration_archs=3)
    assert timed == [6]  # validated and calibration networks in the same rounds
    assert report["calibration"]["scale"] == pytest.approx(1.5, rel=1e-4)
    assert report["summary"]["mape_pct"] == pytest.approx(0.0, abs=0.01)
    assert len(report["architectures"]) == 3 and len(report["genotypes"]) == 6
    validated = {json.dumps(r["genotype"], sort_keys=True) for r in report["architectures"]}
    calibration_nets = {json.dumps(g, sort_keys=True) for g in report["genotypes"][3:]}
    assert not validated & calibration_nets
    fit = report["calibration"]
    assert fit["session"] and fit["num_networks"] == 3 and len(fit["networks"]) == 3
    assert fit["networks"] and all(n["measured_ms"] > 0 for n in fit["networks"])
    for row in report["architectures"]:
        assert row["predicted_ms"] == pytest.approx(
            fit["offset_ms"] + fit["scale"] * row["uncalibrated_ms"], abs=1e-3)
        # the synthetic table has no stored calibration: identity
        assert row["stored_calibration_ms"] == row["uncalibrated_ms"]
    assert report["summary_stored_calibration"] == report["summary_uncalibrated"]
    assert "calibration" not in table.meta  # validation never writes the table


def test_max_rounds_leaves_a_partial_report_the_next_call_completes(tiny_table, tmp_path):
    out = str(tmp_path / "report.json")
    table = _synthetic(tiny_table)
    first = validate_table(table, fast_timer(), 1, 3, 0, out, lambda _: None, passes=2,
                           max_rounds=1)
    assert first["status"] == "partial" and first["timing"]["passes_done"] == 1
    assert "summary" not in first
    second = validate_table(table, fast_timer(), 1, 3, 0, out, lambda _: None, passes=2,
                            max_rounds=1)
    assert second["status"] == "complete" and second["timing"]["passes_done"] == 2
