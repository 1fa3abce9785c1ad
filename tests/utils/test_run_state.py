"""check_or_write_config: what a resumed run may and may not change."""

import json

import pytest

from tf_nas_seg.utils.run_state import check_or_write_config


class _Mismatch(ValueError):
    pass


def _saved(tmp_path, config):
    (tmp_path / "config.json").write_text(json.dumps(config))


def test_first_call_writes_the_config(tmp_path):
    check_or_write_config(str(tmp_path), {"lr": 0.1}, (), _Mismatch)
    assert json.loads((tmp_path / "config.json").read_text()) == {"lr": 0.1}


def test_changed_setting_is_refused_and_named(tmp_path):
    _saved(tmp_path, {"lr": 0.1, "seed": 0})
    with pytest.raises(_Mismatch, match=r"lr: 0.1 -> 0.2"):
        check_or_write_config(str(tmp_path), {"lr": 0.2, "seed": 0}, (), _Mismatch)


def test_resumable_setting_may_change(tmp_path):
    _saved(tmp_path, {"lr": 0.1, "iterations": 10})
    check_or_write_config(str(tmp_path), {"lr": 0.1, "iterations": 20}, ("iterations",),
                          _Mismatch)
    assert json.loads((tmp_path / "config.json").read_text())["iterations"] == 20


def test_setting_added_by_a_newer_version_resumes_at_its_default(tmp_path):
    _saved(tmp_path, {"lr": 0.1})
    defaults = {"lr": 0.01, "schedule": "poly"}
    check_or_write_config(str(tmp_path), {"lr": 0.1, "schedule": "poly"}, (), _Mismatch,
                          defaults=defaults)


def test_setting_added_by_a_newer_version_refused_off_its_default(tmp_path):
    _saved(tmp_path, {"lr": 0.1})
    defaults = {"lr": 0.01, "schedule": "poly"}
    with pytest.raises(_Mismatch, match=r"schedule: None -> 'cosine'"):
        check_or_write_config(str(tmp_path), {"lr": 0.1, "schedule": "cosine"}, (),
                              _Mismatch, defaults=defaults)


def test_setting_dropped_from_the_saved_run_is_refused(tmp_path):
    _saved(tmp_path, {"lr": 0.1, "schedule": "cosine"})
    with pytest.raises(_Mismatch, match="schedule"):
        check_or_write_config(str(tmp_path), {"lr": 0.1}, (), _Mismatch,
                              defaults={"lr": 0.1})


@pytest.mark.parametrize("mode", ["on", "off", "auto"])
def test_set_graph_optimizer_applies_the_mode(mode):
    import tensorflow as tf

    from tf_nas_seg.utils.run_state import set_graph_optimizer

    before = tf.config.optimizer.get_experimental_options()
    try:
        applied = set_graph_optimizer(mode)
        expected = mode if mode != "auto" else (
            "on" if tf.config.list_physical_devices("GPU") else "off")
        assert applied == expected
        options = tf.config.optimizer.get_experimental_options()
        assert options.get("disable_meta_optimizer", False) == (expected == "off")
    finally:
        tf.config.optimizer.set_experimental_options(
            {"disable_meta_optimizer": before.get("disable_meta_optimizer", False)})


def test_set_graph_optimizer_refuses_an_unknown_mode():
    from tf_nas_seg.utils.run_state import set_graph_optimizer

    with pytest.raises(ValueError, match="auto, on or off"):
        set_graph_optimizer("fast")


def test_graph_optimizer_block_restores_the_previous_setting():
    import tensorflow as tf

    from tf_nas_seg.utils.run_state import graph_optimizer

    def disabled():
        return tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer",
                                                                  False)

    before = disabled()
    try:
        with graph_optimizer("off") as applied:
            assert applied == "off" and disabled()
        assert disabled() == before
        with pytest.raises(RuntimeError):
            with graph_optimizer("off"):
                raise RuntimeError("the search failed")
        assert disabled() == before
    finally:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": before})


def test_run_lock_refuses_a_second_holder_and_names_the_first(tmp_path):
    from tf_nas_seg.utils.run_state import RunLock

    with RunLock(tmp_path, "bin/search", RuntimeError):
        with pytest.raises(RuntimeError, match=r"in use by bin/search \(pid \d+, started"):
            with RunLock(tmp_path, "bin/train", RuntimeError):
                pass
    with RunLock(tmp_path, "bin/train", RuntimeError):  # released on exit
        pass


def test_run_lock_of_a_file_locks_its_dot_lock(tmp_path):
    from tf_nas_seg.utils.run_state import RunLock

    table = tmp_path / "table.json"
    with RunLock(table, "bin/latency_table", RuntimeError, is_file=True):
        assert (tmp_path / "table.json.lock").exists()
        with pytest.raises(RuntimeError, match="table.json is in use"):
            with RunLock(table, "bin/latency_table", RuntimeError, is_file=True):
                pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    import signal
    import subprocess
    import sys

    from tf_nas_seg.utils.run_state import RunLock

    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from tf_nas_seg.utils.run_state import RunLock\n"
         f"with RunLock({str(tmp_path)!r}, 'bin/search', RuntimeError):\n"
         "    print('held', flush=True)\n"
         "    time.sleep(120)\n"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RuntimeError, match="in use by bin/search"):
            with RunLock(tmp_path, "bin/search", RuntimeError):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    with RunLock(tmp_path, "bin/search", RuntimeError):
        pass


def _checkpoints(tmp_path, steps=(1, 2, 3)):
    import keras

    from tf_nas_seg.utils.run_state import VariableCheckpoint

    v = keras.Variable([0.0, 0.0])
    ckpt = VariableCheckpoint([v], str(tmp_path / "ckpt"), max_to_keep=5,
                              error_cls=RuntimeError)
    for step in steps:
        v.assign([float(step), -float(step)])
        ckpt.save(step)
    return tmp_path / "ckpt"


def _fresh(directory, shape=(2,)):
    import keras

    from tf_nas_seg.utils.run_state import VariableCheckpoint

    v = keras.Variable(keras.ops.zeros(shape))
    return v, VariableCheckpoint([v], str(directory), max_to_keep=5,
                                 error_cls=RuntimeError)


@pytest.mark.parametrize("damage", ["truncate_data", "delete_data", "garble_index"])
def test_a_corrupt_newest_checkpoint_falls_back_to_the_one_before(tmp_path, damage,
                                                                 caplog):
    import keras

    directory = _checkpoints(tmp_path)
    data = directory / "ckpt-3.data-00000-of-00001"
    if damage == "truncate_data":
        data.write_bytes(data.read_bytes()[:3])
    elif damage == "delete_data":
        data.unlink()
    else:
        (directory / "ckpt-3.index").write_bytes(b"not an index")
    v, ckpt = _fresh(directory)
    assert ckpt.restore()
    assert int(ckpt.step) == 2
    assert keras.ops.convert_to_numpy(v).tolist() == [2.0, -2.0]
    assert "ckpt-3 is unreadable" in caplog.text and "using the one before" in caplog.text


def test_no_readable_checkpoint_is_a_clear_error(tmp_path):
    directory = _checkpoints(tmp_path, steps=(1, 2))
    for path in directory.glob("ckpt-*.index"):
        path.write_bytes(b"garbage")
    _, ckpt = _fresh(directory)
    with pytest.raises(RuntimeError, match="no readable checkpoint .*ckpt-2, ckpt-1.*"
                                           "delete that directory to start the run over"):
        ckpt.restore()


def test_a_checkpoint_of_another_model_is_refused_not_skipped(tmp_path):
    directory = _checkpoints(tmp_path, steps=(1,))
    _, ckpt = _fresh(directory, shape=(3,))
    with pytest.raises(RuntimeError, match=r"does not match this model \(variable 0"):
        ckpt.restore()


def test_another_models_checkpoint_is_refused_when_the_error_is_a_value_error(tmp_path):
    import keras

    from tf_nas_seg.errors import UserError  # a ValueError, as SearchError and TrainError
    from tf_nas_seg.utils.run_state import VariableCheckpoint

    directory = _checkpoints(tmp_path, steps=(1,))
    ckpt = VariableCheckpoint([keras.Variable(keras.ops.zeros((3,)))], str(directory),
                              error_cls=UserError)
    with pytest.raises(UserError, match="does not match this model"):
        ckpt.restore()


def _three(directory, unsaved):
    import keras

    from tf_nas_seg.utils.run_state import VariableCheckpoint

    variables = [keras.Variable(keras.ops.zeros((2,))) for _ in range(3)]
    skipped = [variables[i] for i in unsaved]
    return variables, VariableCheckpoint(variables, str(directory), error_cls=RuntimeError,
                                         unsaved=skipped)


def test_unsaved_variables_are_left_out_and_the_others_keep_their_keys(tmp_path):
    import keras
    import tensorflow as tf

    variables, ckpt = _three(tmp_path, unsaved=[1])
    for i, v in enumerate(variables):
        v.assign([float(i + 1), -float(i + 1)])
    ckpt.save(7)
    keys = {name for name, _ in tf.train.list_variables(ckpt.manager.latest_checkpoint)}
    assert {"state/v00000/.ATTRIBUTES/VARIABLE_VALUE",
            "state/v00002/.ATTRIBUTES/VARIABLE_VALUE"} <= keys
    assert not any(k.startswith("state/v00001") for k in keys)
    fresh, again = _three(tmp_path, unsaved=[1])
    assert again.restore() and int(again.step) == 7
    values = [keras.ops.convert_to_numpy(v).tolist() for v in fresh]
    assert values == [[1.0, -1.0], [0.0, 0.0], [3.0, -3.0]]  # the unsaved one untouched


def test_a_checkpoint_that_holds_the_unsaved_variables_still_restores(tmp_path):
    """Written before they were left out: every value read, none refused."""
    import keras

    variables, ckpt = _three(tmp_path, unsaved=[])
    for i, v in enumerate(variables):
        v.assign([float(i + 1), -float(i + 1)])
    ckpt.save(3)
    fresh, again = _three(tmp_path, unsaved=[0, 1])
    assert again.restore() and int(again.step) == 3
    assert [keras.ops.convert_to_numpy(v).tolist() for v in fresh] == [
        [1.0, -1.0], [2.0, -2.0], [3.0, -3.0]]
    again.save(4)  # and the next checkpoint leaves them out
    fresh, third = _three(tmp_path, unsaved=[0, 1])
    assert third.restore() and int(third.step) == 4
    assert [keras.ops.convert_to_numpy(v).tolist() for v in fresh] == [
        [0.0, 0.0], [0.0, 0.0], [3.0, -3.0]]
