"""One config mechanism: typed dataclasses whose fields define the absl flags.

Each field carries its help text, bounds and choices, so `--help`, validation and the
JSON config written to a run directory can never disagree.
"""

import dataclasses
import functools
import math
import typing

from tf_nas_seg.errors import ConfigError, brief

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


def parse_flag_argv(argv, flag_values=flags.FLAGS):
    """Parses `argv` into `flag_values` as absl does (an unknown or malformed flag is
    its `flags.Error`), a flagfile that is not UTF-8 text included: absl lets that
    UnicodeDecodeError through, here it is a `flags.Error` naming the file.

    Returns:
        The arguments absl leaves (the program name and any positional ones).
    """
    try:
        return flag_values(argv)
    except UnicodeDecodeError as e:
        named = [a.split("=", 1)[1] for a in argv if a.startswith("--flagfile=")]
        bad = [path for path in named if not _utf8(path)] or named
        raise flags.Error(f"flagfile {', '.join(bad) or '?'} is not UTF-8 text (byte "
                          f"{e.object[e.start:e.start + 1]!r} at position {e.start}); "
                          "save it as UTF-8") from None


def _utf8(path):
    try:
        with open(path, encoding="utf-8") as f:
            f.read()
        return True
    except (OSError, UnicodeDecodeError):
        return False


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
    """Checks types, bounds and choices of a config built without absl (in tests, or
    from a run's config.json), so that a wrong value is a ConfigError naming the field,
    never a TypeError deeper in. A list given for a tuple field becomes a tuple."""
    hints = _type_hints(type(config))
    for field in dataclasses.fields(config):
        meta, value = field.metadata, getattr(config, field.name)
        if "help" not in meta:
            continue  # not a setting (a layout's own tuple field, say)
        value = _checked_type(field.name, hints.get(field.name), value)
        object.__setattr__(config, field.name, value)
        if meta.get("lower") is not None and value < meta["lower"]:
            raise ConfigError(f"{field.name}={value} is below its lower bound {meta['lower']}")
        if meta.get("upper") is not None and value > meta["upper"]:
            raise ConfigError(f"{field.name}={value} is above its upper bound {meta['upper']}")
        if meta.get("choices") and value not in meta["choices"]:
            raise ConfigError(f"{field.name}={brief(value)} must be one of "
                              f"{list(meta['choices'])}")


@functools.lru_cache(maxsize=None)
def _type_hints(config_cls):
    return typing.get_type_hints(config_cls)


_KINDS = {bool: "true or false", int: "an integer", float: "a finite number",
          str: "a string", tuple: "a list of strings"}


def _checked_type(name, kind, value):
    """`value` if it has the field's type (a list of strings for a tuple field becomes
    a tuple); ConfigError naming the field and the type otherwise."""
    if kind is None:
        return value
    if kind is tuple or typing.get_origin(kind) is tuple:
        kind = tuple
        ok = isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value)
        value = tuple(value) if ok else value
    elif kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
              and math.isfinite(value))
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ConfigError(f"{name}={brief(value)} must be {_KINDS.get(kind, kind.__name__)}")
    return value

