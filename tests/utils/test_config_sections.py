"""The commands' configs are composed from shared sections: one declaration per setting."""

import dataclasses

import pytest

from tf_nas_seg import config_sections as sections
from tf_nas_seg.cli.benchmark import BenchmarkConfig
from tf_nas_seg.cli.evaluate import EvaluateConfig
from tf_nas_seg.data.augment_config import AugmentConfig
from tf_nas_seg.errors import ConfigError
from tf_nas_seg.latency.config import LatencyTableConfig
from tf_nas_seg.search.search_config import SearchConfig
from tf_nas_seg.sweep.sweep_config import SweepConfig
from tf_nas_seg.train.train_config import TrainConfig

COMMANDS = {
    SearchConfig: (sections.SpaceSection, sections.DataSection, sections.AugmentSection,
                   sections.RunSection, sections.DistributeSection),
    TrainConfig: (sections.DataSection, sections.AugmentSection, sections.RunSection,
                  sections.DistributeSection),
    EvaluateConfig: (sections.DataSection, sections.SeedSection),
    BenchmarkConfig: (sections.DeviceSection,),
    LatencyTableConfig: (sections.SpaceSection, sections.ClassesSection,
                         sections.SeedSection, sections.DeviceSection,
                         sections.DiskSection),
    SweepConfig: (sections.ThreadsSection, sections.DiskSection),
}
# The only section fields a command redeclares, each for another default or help.
OVERRIDES = {TrainConfig: {"scale_min", "scale_max", "checkpoint_every"},
             BenchmarkConfig: {"device", "threads"},
             SearchConfig: {"threads"}}  # one intra-op thread (docs/DESIGN.md, "Threads")


def _fields(cls):
    return {f.name: f for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("command", list(COMMANDS), ids=lambda c: c.__name__)
def test_each_command_takes_its_sections_fields_from_the_section(command):
    mine = _fields(command)
    for section in COMMANDS[command]:
        assert issubclass(command, section)
        for name, field in _fields(section).items():
            if name in OVERRIDES.get(command, ()):
                assert mine[name].metadata["help"], name
                continue
            # the same declaration object: same default, help, bounds, choices
            assert mine[name].metadata is field.metadata, (command.__name__, name)
            assert mine[name].default == field.default, (command.__name__, name)


def test_shared_settings_have_one_name_across_commands():
    data = set(_fields(sections.DataSection))
    assert data <= set(_fields(SearchConfig)) & set(_fields(TrainConfig))
    assert data <= set(_fields(EvaluateConfig))
    space = set(_fields(sections.SpaceSection))
    assert space <= set(_fields(SearchConfig)) & set(_fields(LatencyTableConfig))
    assert "device" in _fields(BenchmarkConfig) and "device" in _fields(LatencyTableConfig)


def test_latency_table_config_has_no_search_only_settings():
    fields = set(_fields(LatencyTableConfig))
    for search_only in ("lr", "batch_size", "data_dir", "cost_lambda", "run_dir", "flip"):
        assert search_only not in fields


@pytest.mark.parametrize("config_cls", [SearchConfig, TrainConfig])
@pytest.mark.parametrize("pair", ["crop", "resize"])
def test_a_half_set_size_pair_is_refused(config_cls, pair):
    with pytest.raises(ConfigError, match=f"--{pair}_height=64 and --{pair}_width=0"):
        config_cls(**{f"{pair}_height": 64})


def test_augment_config_is_built_in_one_place():
    config = TrainConfig(crop_height=64, crop_width=96, resize_height=80,
                         resize_width=120, flip=False)
    assert config.augment_config() == AugmentConfig(flip=False, scale_range=(0.5, 2.0),
                                                    crop_size=(64, 96), resize=(80, 120))
    assert SearchConfig().augment_config() == AugmentConfig(flip=True, scale_range=None)
    with pytest.raises(ConfigError, match="--scale_min=2.0 is above --scale_max=1.5"):
        SearchConfig(scale_min=2.0, scale_max=1.5)


def test_older_flag_names_still_parse_as_aliases():
    from absl import flags

    from tf_nas_seg.sweep.sweep_config import SweepConfig
    from tf_nas_seg.utils.flag_fields import config_from_flags, define_flags

    values = flags.FlagValues()
    define_flags(BenchmarkConfig, flag_values=values)
    define_flags(SweepConfig, flag_values=values)
    values(["prog", "--resolutions=64x128,32x48", "--sweep_dir=/tmp/s", "--resolution=8x8"])
    assert config_from_flags(BenchmarkConfig, values).sizes == ("64x128", "32x48")
    sweep = config_from_flags(SweepConfig, values)
    assert (sweep.run_dir, sweep.size) == ("/tmp/s", "8x8")


def test_a_run_saved_under_older_setting_names_resumes(tmp_path):
    import json

    from tf_nas_seg.sweep.sweep_config import RESUMABLE_CHANGES, SweepConfig
    from tf_nas_seg.utils.run_state import check_or_write_config

    current = SweepConfig(run_dir=str(tmp_path), size="360x480").to_json()
    old = {("sweep_dir" if k == "run_dir" else "resolution" if k == "size" else k): v
           for k, v in current.items()}
    (tmp_path / "config.json").write_text(json.dumps(old))
    check_or_write_config(str(tmp_path), current, RESUMABLE_CHANGES, ConfigError,
                          renamed=SweepConfig.RENAMED)  # no error: the same settings
    assert json.loads((tmp_path / "config.json").read_text())["size"] == "360x480"
    changed = {**current, "size": "720x960"}
    with pytest.raises(ConfigError, match="size: '360x480' -> '720x960'"):
        check_or_write_config(str(tmp_path), changed, RESUMABLE_CHANGES, ConfigError,
                              renamed=SweepConfig.RENAMED)


def test_the_search_defaults_to_one_intra_op_thread():
    assert SearchConfig().threads == 1 and TrainConfig().threads == 0
    assert SearchConfig(threads=0).threads == 0
