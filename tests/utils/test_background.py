"""OneAtATime: the search's drawing thread."""

import threading

import pytest

from tf_nas_seg.utils.background import OneAtATime


def test_tasks_run_in_order_off_the_caller_thread_and_leaving_waits_for_the_last():
    done, threads = [], set()
    release = threading.Event()

    def task(i):
        def run():
            if i == 2:
                release.wait(timeout=30)
            threads.add(threading.current_thread().name)
            done.append(i)
        return run

    with OneAtATime("figures") as worker:
        for i in range(3):
            worker.submit(task(i))
        assert done == [0, 1]  # submit waited for the previous task, not the last
        release.set()
    assert done == [0, 1, 2]  # leaving waited for it
    assert len(threads) == 1
    name = threads.pop()
    assert name.startswith("figures") and name != threading.current_thread().name


def test_a_failed_task_is_raised_by_the_next_wait_and_not_lost_on_leaving():
    def fail():
        raise OSError("disk full")

    with OneAtATime("figures") as worker:
        worker.submit(fail)
        with pytest.raises(OSError, match="disk full"):
            worker.wait()
        worker.wait()  # raised once
    with pytest.raises(OSError, match="disk full"):
        with OneAtATime("figures") as worker:
            worker.submit(fail)
    # another error leaving the block is not masked by the task's
    with pytest.raises(KeyError):
        with OneAtATime("figures") as worker:
            worker.submit(fail)
            raise KeyError("the caller's own error")
