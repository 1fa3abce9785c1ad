"""One config mechanism: typed dataclasses whose fields define the absl flags.

Each field carries its help text, bounds and choices, so `--help`, validation and the
JSON config written to a run directory can never disagree.
"""

import dataclasses
import typing
from tf_nas_seg.errors import ConfigError

from absl import flags


def setting(default, help, lower=None, upper=None, choices=None):  # noqa: A002 (absl name)
    """A dataclass field that is also an absl flag.

    Args:
        default: Default value.
        help: Full-sentence help text.
        lower: Inclusive lower bound of a numeric flag.
        upper: Inclusive upper bound of a numeric flag.
        choices: Allowed values of a string flag.
    """
    return dataclasses.field(default=default, metadata={
        "help": help, "lower": lower, "upper": upper, "choices": choices})


def define_flags(config_cls, flag_values=flags.FLAGS, skip=()):
    """Defines one absl flag per field of `config_cls` (skipping names already defined)."""
    hints = typing.get_type_hints(config_cls)
    for field in dataclasses.fields(config_cls):
        if field.name in skip or field.name in flag_values:
            continue
        meta, kind, default = field.metadata, hints[field.name], field.default
        kwargs = {"flag_values": flag_values}
        if kind is bool:
            flags.DEFINE_bool(field.name, default, meta["help"], **kwargs)
        elif kind is int:
            flags.DEFINE_integer(field.name, default, meta["help"], lower_bound=meta["lower"],
                                 upper_bound=meta["upper"], **kwargs)
        elif kind is float:
            flags.DEFINE_float(field.name, default, meta["help"], lower_bound=meta["lower"],
                               upper_bound=meta["upper"], **kwargs)
        elif kind is tuple or typing.get_origin(kind) is tuple:
            flags.DEFINE_list(field.name, list(default), meta["help"], **kwargs)
        elif meta["choices"]:
            flags.DEFINE_enum(field.name, default, list(meta["choices"]), meta["help"],
                              **kwargs)
        else:
            flags.DEFINE_string(field.name, default, meta["help"], **kwargs)
    # Older flag names (a class attribute FLAG_ALIASES = {old: new}) keep flagfiles working.
    for old, new in getattr(config_cls, "FLAG_ALIASES", {}).items():
        if old not in flag_values and new in flag_values:
            flags.DEFINE_alias(old, new, flag_values=flag_values)


def config_from_flags(config_cls, flag_values=flags.FLAGS, **overrides):
    """Builds a `config_cls` from parsed flags (and keyword overrides)."""
    values = {f.name: flag_values[f.name].value for f in dataclasses.fields(config_cls)
              if f.name in flag_values}
    for f in dataclasses.fields(config_cls):
        if isinstance(values.get(f.name), list):  # list flags are tuples in configs
            values[f.name] = tuple(values[f.name])
    values.update(overrides)
    return config_cls(**values)


def validate_config(config):
    """Checks bounds and choices of a config built without absl (e.g. in tests)."""
    for field in dataclasses.fields(config):
        meta, value = field.metadata, getattr(config, field.name)
        if meta.get("lower") is not None and value < meta["lower"]:
            raise ConfigError(f"{field.name}={value} is below its lower bound {meta['lower']}")
        if meta.get("upper") is not None and value > meta["upper"]:
            raise ConfigError(f"{field.name}={value} is above its upper bound {meta['upper']}")
        if meta.get("choices") and value not in meta["choices"]:
            raise ConfigError(f"{field.name}={value!r} must be one of {list(meta['choices'])}")
