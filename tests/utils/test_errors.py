"""Errors a user can fix are UserErrors and print as one line; bugs keep their traceback."""

import importlib
import inspect
import pkgutil

import pytest

import tf_nas_seg
from tf_nas_seg.cli import plot as plot_cli
from tf_nas_seg.errors import ConfigError, UserError
from tf_nas_seg.viz import redraw as redraw_module

# Module names whose import needs an optional dependency that a test machine may lack.
_OPTIONAL = ("onnx",)


def _error_classes():
    found = {}
    for info in pkgutil.walk_packages(tf_nas_seg.__path__, "tf_nas_seg."):
        # The CLIs define absl flags (importing two defines some twice) and no errors.
        if any(part in info.name for part in _OPTIONAL) or info.name.startswith(
                "tf_nas_seg.cli"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, ValueError)
                    and obj.__module__ == info.name):
                found[f"{info.name}.{name}"] = obj
    return found


def test_every_value_error_the_package_defines_is_a_user_error():
    classes = _error_classes()
    assert len(classes) >= 14  # GenotypeError, DatasetError, LatencyTableError, ...
    assert [name for name, cls in classes.items() if not issubclass(cls, UserError)] == []


def test_settings_out_of_range_are_config_errors():
    from tf_nas_seg.networks.autortnet_layout import parse_hyper_cells
    from tf_nas_seg.networks.cas_layout import CASLayout
    from tf_nas_seg.ops.op_set import get_op_set

    with pytest.raises(ConfigError, match="NNX"):
        CASLayout(layout="NNX")
    with pytest.raises(ConfigError, match="three comma-separated"):
        parse_hyper_cells("5,10")
    with pytest.raises(ConfigError, match="unknown op set 'nope'"):
        get_op_set("nope")


def test_a_command_prints_a_user_error_and_exits_2(monkeypatch, capsys):
    def fail(path):
        raise redraw_module.PlotError(f"{path}: nothing here")

    monkeypatch.setattr(redraw_module, "redraw", fail)
    assert plot_cli.main(["plot", "some/dir"]) == 2
    assert capsys.readouterr().err == "error: some/dir: nothing here\n"


def test_a_bug_keeps_its_traceback(monkeypatch):
    def bug(path):
        raise ValueError("an internal invariant broke")

    monkeypatch.setattr(redraw_module, "redraw", bug)
    with pytest.raises(ValueError, match="internal invariant"):
        plot_cli.main(["plot", "some/dir"])
