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
