"""utils/timing: the timing loop and the garbage-collector pause of a search start."""

import gc

import pytest

from tf_nas_seg.utils.timing import gc_paused, time_calls


def test_time_calls_runs_warmup_then_timed_calls():
    calls = []
    times = time_calls(lambda: calls.append(1), runs=3, warmup=2)
    assert len(calls) == 5 and len(times) == 3 and all(t >= 0 for t in times)


@pytest.mark.parametrize("enabled_before", [True, False])
def test_gc_paused_turns_collection_off_and_restores_it(enabled_before):
    (gc.enable if enabled_before else gc.disable)()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert gc.isenabled() == enabled_before
        with pytest.raises(RuntimeError), gc_paused():
            raise RuntimeError("the step failed")
        assert gc.isenabled() == enabled_before
    finally:
        gc.enable()

