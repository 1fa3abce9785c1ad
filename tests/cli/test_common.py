"""The start and the error report every command's `main` shares."""

import pytest
from absl import app, logging

from tf_nas_seg.cli.common import begin, user_error
from tf_nas_seg.errors import ConfigError


def test_begin_refuses_positional_arguments_and_names_them():
    with pytest.raises(app.UsageError, match=r"unexpected arguments \['extra'\]"):
        begin(["bin/train", "extra"])


def test_begin_sets_the_log_level():
    before = logging.get_verbosity()
    try:
        begin(["bin/train"], logging.WARNING)
        assert logging.get_verbosity() == logging.WARNING
    finally:
        logging.set_verbosity(before)


def test_user_error_prints_the_message_without_traceback_and_exits_2(capsys):
    assert user_error(ConfigError("--lr=-1 is below 0; pass a positive rate")) == 2
    err = capsys.readouterr().err
    assert err == "error: --lr=-1 is below 0; pass a positive rate\n"


def _run_restart(tmp_path, env_value):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if env_value is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = env_value
    script = ("import os, sys\n"
              "print('run', os.environ.get('TF_ENABLE_ONEDNN_OPTS'), sys.argv[1:], flush=True)\n"
              "from tf_nas_seg.cli.common import restart_without_onednn\n"
              "restart_without_onednn('test')\n"
              "print('kept', os.environ['TF_ENABLE_ONEDNN_OPTS'])\n")
    path = tmp_path / "command.py"
    path.write_text(script)
    out = subprocess.run([sys.executable, str(path), "--flag=1"], env=env, text=True,
                         capture_output=True, timeout=120, check=True)
    return out.stdout.splitlines()


def test_restart_without_onednn_reexecutes_once_with_the_same_arguments(tmp_path):
    assert _run_restart(tmp_path, None) == ["run None ['--flag=1']", "run 0 ['--flag=1']", "kept 0"]


def test_restart_without_onednn_keeps_a_setting_the_user_chose(tmp_path):
    assert _run_restart(tmp_path, "1") == ["run 1 ['--flag=1']", "kept 1"]


def test_train_reads_the_method_of_a_genotype_file(tmp_path):
    from tf_nas_seg.cli.train import _genotype_method

    path = tmp_path / "genotype.json"
    path.write_text('{"method": "autortnet"}')
    assert _genotype_method(str(path)) == "autortnet"
    path.write_text("[1, 2]")
    assert _genotype_method(str(path)) is None  # run_training names the problem
    assert _genotype_method(str(tmp_path / "missing.json")) is None
    assert _genotype_method("") is None


@pytest.mark.parametrize("command", ["search", "train", "sweep", "latency_table",
                                     "evaluate"])
def test_a_flagfile_with_an_unknown_flag_is_refused_naming_it(command, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    flagfile = tmp_path / "typo.cfg"
    flagfile.write_text("--chanels=8\n")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, str(root / "bin" / command),
                          f"--flagfile={flagfile}"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 1
    assert "Unknown command line flag 'chanels'" in out.stderr
    assert "Traceback" not in out.stderr


def test_no_command_imports_tensorflow_before_its_flags_are_checked():
    """A typo in a flag is reported in a fraction of a second, not after the ~6 s
    TensorFlow import: every command module imports TensorFlow and Keras lazily."""
    import subprocess
    import sys

    code = ("import importlib, pkgutil, sys, tf_nas_seg.cli as cli\n"
            "for m in pkgutil.iter_modules(cli.__path__):\n"
            "    importlib.import_module('tf_nas_seg.cli.' + m.name)\n"
            "    heavy = sorted({'tensorflow', 'keras'} & set(sys.modules))\n"
            "    assert not heavy, (m.name, heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
