"""Property-based fuzzing of the parsers of user files and settings.

Genotype JSON (objects and files), latency-table files, the typed configs' validation
and flagfiles are fed malformed and hostile input (unknown ops, wrong node counts, wrong
types, huge integers, NaN and infinities, deep nesting, huge strings, bytes that are not
UTF-8). The property: every input either parses into a valid object or raises a
`UserError` with a non-empty message, never another exception (a TypeError, KeyError,
RecursionError or AttributeError is a bug: the command would print a traceback instead
of saying what is wrong with the file).

Flagfiles keep absl's own error for an unknown or malformed flag (`flags.Error`, which
every command prints as one line and exits 1, see tests/cli/test_common.py).
"""

import copy
import dataclasses
import json
import math
import os
import typing

import pytest
from absl import flags
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.networks.genotypes import covering_autortnet_genotype, covering_genotype
from tf_nas_seg.errors import UserError
from tf_nas_seg.latency.table import LatencyTable
from tf_nas_seg.space.genotype import Genotype

FAST = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 200)), deadline=None,
                derandomize="FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])
DEEP = 100_000  # far beyond Python's recursion limit

# JSON values, with the hostile ones among them.
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats()
           | st.text(max_size=20)
           | st.sampled_from([10 ** 30, -(2 ** 63), 2 ** 64, float("nan"), float("inf"),
                              -float("inf"), -1, 0, 1e308, "x" * 100_000, "\udcff", ""]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                      max_leaves=12)


def _deep_list(depth=DEEP):
    value = []
    for _ in range(depth):
        value = [value]
    return value


def _deep_dict(depth=DEEP):
    value = {}
    for _ in range(depth):
        value = {"a": value}
    return value


# Built once (0.2 s each) and shared: the parsers only read them.
DEEP_VALUES = st.sampled_from([_deep_list(), _deep_dict()])
HOSTILE = VALUES | DEEP_VALUES


def _paths(doc, prefix=()):
    """Every path into `doc` (bounded depth: the mutations below keep it so)."""
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, prefix + (key,))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            found += _paths(value, prefix + (i,))
    return found


def _parent(doc, path):
    for key in path[:-1]:
        doc = doc[key]
    return doc


@st.composite
def mutated(draw, documents, deep=True, under=()):
    """A valid document with 1-3 of its parts replaced, removed, duplicated or added,
    and (with `deep`) perhaps one part replaced by a structure nested 100,000 deep.
    `under`: mutate only the part at that path (e.g. a genotype's macro)."""
    doc = copy.deepcopy(draw(st.sampled_from(documents)))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p[:len(under)] == under and len(p) > len(under)]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        if not path:
            doc = draw(VALUES)
            break
        parent, key = _parent(doc, path), path[-1]
        action = draw(st.sampled_from(["replace", "remove", "duplicate", "add"]))
        if action == "replace":
            parent[key] = draw(VALUES)
        elif action == "remove":
            del parent[key]
        elif action == "duplicate" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(VALUES)
        else:
            parent.append(draw(VALUES))
        if not isinstance(doc, (dict, list)):
            break
    if deep and isinstance(doc, (dict, list)) and draw(st.integers(0, 9)) == 0:
        path = draw(st.sampled_from(_paths(doc)[1:] or [None]))
        if path is not None:  # the last change: nothing walks the deep part after it
            _parent(doc, path)[path[-1]] = draw(DEEP_VALUES)
    return doc


def _near_valid_genotypes():
    docs = [covering_genotype().to_json(), covering_genotype("darts").to_json(),
            covering_genotype(multiscale=False).to_json(),
            covering_autortnet_genotype().to_json()]
    # unknown ops and wrong node counts are among the mutations; these name them
    unknown_op = copy.deepcopy(docs[0])
    unknown_op["cells"]["normal"]["nodes"][0][0][0] = "conv_99x99"
    extra_node = copy.deepcopy(docs[0])
    extra_node["cells"]["normal"]["nodes"].append([["conv_3x3", 7], ["conv_3x3", 0]])
    return docs + [unknown_op, extra_node]


GENOTYPE_DOCS = _near_valid_genotypes()


def _user_error_or(parse, value):
    """parse(value), or None when it raised a UserError with a message (the property)."""
    try:
        return parse(value)
    except UserError as e:
        assert str(e).strip(), f"{type(e).__name__} without a message"
        assert len(str(e)) < 5000, f"a {len(str(e))}-character message"
        return None


def _use_genotype(genotype):
    """What the commands do with a parsed genotype: check it, plan its network."""
    from tf_nas_seg.networks.builder import check_genotype
    from tf_nas_seg.networks.plan import genotype_plan

    assert Genotype.from_json(genotype.to_json()) == genotype  # a round trip
    check_genotype(genotype)
    plan = genotype_plan(genotype, 4, (64, 64, 3))
    assert plan.head.num_classes == 4


# Genotypes ---------------------------------------------------------------------------
@FAST
@given(doc=mutated(GENOTYPE_DOCS))
def test_a_mutated_genotype_parses_or_is_a_user_error(doc):
    genotype = _user_error_or(Genotype.from_json, doc)
    if genotype is not None:
        _user_error_or(_use_genotype, genotype)


@FAST
@given(doc=mutated(GENOTYPE_DOCS, under=("macro",)))
def test_a_genotype_with_a_mutated_macro_parses_or_is_a_user_error(doc):
    """The macro (CAS layout; AutoRTNet layout, depths, aggregation) is read when the
    network is planned: wrong types, sizes and indices there are GenotypeErrors too."""
    genotype = _user_error_or(Genotype.from_json, doc)
    if genotype is not None:
        _user_error_or(_use_genotype, genotype)


@FAST
@given(doc=mutated(GENOTYPE_DOCS, under=("cells",)))
def test_a_genotype_with_mutated_cells_parses_or_is_a_user_error(doc):
    genotype = _user_error_or(Genotype.from_json, doc)
    if genotype is not None:
        _user_error_or(_use_genotype, genotype)


@FAST
@given(doc=HOSTILE)
def test_any_json_value_as_a_genotype_parses_or_is_a_user_error(doc):
    _user_error_or(Genotype.from_json, doc)


FILE_CONTENTS = [
    b"", b"{", b"null", b"[]", b"\xff\xfe\x00not utf-8", b"\x80" * 10,
    b"{\"schema_version\": 1, \"method\": \"cas\", \"cells\": " + b"[" * DEEP + b"]" * DEEP
    + b"}",
    b"[" * DEEP + b"]" * DEEP,
    b"{\"a\":" * DEEP + b"1" + b"}" * DEEP,
    b"{\"schema_version\": " + b"9" * 5000 + b"}",
    b"{\"schema_version\": 1e999999}",
    b"{\"schema_version\": NaN, \"x\": Infinity}",
    "{\"schema_version\": 1, \"method\": \"cas\", \"cells\": {\"normal\": \"\u00e9\"}}"
    .encode("latin-1"),
]


@FAST
@given(content=st.sampled_from(FILE_CONTENTS) | st.binary(max_size=200)
       | mutated(GENOTYPE_DOCS, deep=False).map(
           lambda d: json.dumps(d, allow_nan=True).encode("utf-8", "surrogatepass"))
       | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_a_genotype_file_with_any_bytes_loads_or_is_a_user_error(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("g") / "genotype.json"
    path.write_bytes(content)
    genotype = _user_error_or(Genotype.load, str(path))
    if genotype is not None:
        _user_error_or(_use_genotype, genotype)


def test_a_genotype_path_that_is_a_directory_or_unreadable_is_a_user_error(tmp_path):
    for path in (tmp_path, tmp_path / "missing.json"):
        assert _user_error_or(Genotype.load, str(path)) is None


# Latency tables ----------------------------------------------------------------------
def _table_doc():
    from tests.latency.helpers import tiny_space

    return {"schema_version": 3, "device": "cpu:test", "device_type": "CPU",
            "tensorflow": "2.21.0", "dtype": "float32", "batch": 1, "intra_op_threads": 2,
            "inter_op_threads": 1, "layer_repeats": 8, "space": tiny_space(),
            "call_overhead_ms": 0.1, "calibration": {"scale": 1.1, "offset_ms": 0.5},
            "entries": {"fixed/stem|3|8|32x48|s2|d1": 0.25, "cas_backbone/conv_3x3|4|4|8x12"
                        "|s1|d1": 0.5}}


TABLE_DOCS = [_table_doc()]


def _use_table(table):
    """What the search, the benchmark and the sweep read from a loaded table."""
    assert all(math.isfinite(v) and v >= 0 for v in table.entries.values())
    assert math.isfinite(table.network_overhead_ms) and table.network_overhead_ms >= 0
    scale, offset = table.calibration
    assert math.isfinite(scale) and scale > 0 and math.isfinite(offset)
    settings_ = table.settings()
    for name in ("device", "device_type", "tensorflow", "dtype"):
        assert settings_[name] is None or isinstance(settings_[name], str), name
    assert settings_["space"] is None or isinstance(settings_["space"], dict)
    for key in table.entries:
        assert math.isfinite(table.predict([key]))


@FAST
@given(content=st.sampled_from(FILE_CONTENTS) | st.binary(max_size=200)
       | mutated(TABLE_DOCS, deep=False).map(
           lambda d: json.dumps(d, allow_nan=True).encode("utf-8", "surrogatepass")))
def test_a_latency_table_file_with_any_content_loads_or_is_a_user_error(tmp_path_factory,
                                                                       content):
    path = tmp_path_factory.mktemp("t") / "table.json"
    path.write_bytes(content)
    table = _user_error_or(LatencyTable.load, str(path))
    if table is not None:
        _use_table(table)


def test_a_table_path_that_is_a_directory_is_a_user_error(tmp_path):
    assert _user_error_or(LatencyTable.load, str(tmp_path)) is None


# Typed configs -------------------------------------------------------------------------
def _configs():
    from tf_nas_seg.cli.benchmark import BenchmarkConfig
    from tf_nas_seg.cli.evaluate import EvaluateConfig
    from tf_nas_seg.latency.config import LatencyTableConfig
    from tf_nas_seg.search.search_config import SearchConfig
    from tf_nas_seg.sweep.sweep_config import SweepConfig
    from tf_nas_seg.train.train_config import TrainConfig

    return [SearchConfig, TrainConfig, EvaluateConfig, BenchmarkConfig, LatencyTableConfig,
            SweepConfig]


CONFIGS = _configs()


def _check_valid_config(config):
    """Every field has its declared type, within its bounds and choices."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value, kind, meta = getattr(config, field.name), hints[field.name], field.metadata
        if kind is bool:
            assert isinstance(value, bool), field.name
        elif kind is int:
            assert isinstance(value, int) and not isinstance(value, bool), field.name
        elif kind is float:
            assert isinstance(value, (int, float)) and not isinstance(value, bool)
            assert math.isfinite(value), field.name
        elif kind is str:
            assert isinstance(value, str), field.name
        else:
            assert isinstance(value, tuple) and all(isinstance(v, str) for v in value)
        if meta.get("lower") is not None:
            assert value >= meta["lower"], field.name
        if meta.get("upper") is not None:
            assert value <= meta["upper"], field.name
        if meta.get("choices"):
            assert value in meta["choices"], field.name


@st.composite
def config_values(draw):
    cls = draw(st.sampled_from(CONFIGS))
    names = [f.name for f in dataclasses.fields(cls)]
    chosen = draw(st.lists(st.sampled_from(names), max_size=4, unique=True))
    return cls, {name: draw(VALUES) for name in chosen}


@FAST
@given(case=config_values())
def test_a_config_with_any_field_values_is_valid_or_a_config_error(case):
    cls, values = case
    config = _user_error_or(lambda v: cls(**v), values)
    if config is not None:
        _check_valid_config(config)


# Flagfiles -----------------------------------------------------------------------------
FLAG_LINES = st.sampled_from([
    "--lr=0.1", "--lr=abc", "--lr=nan", "--lr=1e999", "--iterations=99999999999999999999",
    "--nosuch_flag=1", "--no_such", "--flip", "--noflip", "--flip=maybe", "--layout=",
    "--method=enas", "--channels=-3", "--crop_height=64", "--seed=" + "9" * 5000,
    "--run_dir=" + "r" * 10_000, "--data_dir=\x00", "-x", "lr=1", "--", "# comment", "",
    "--flagfile=/nonexistent/flags.cfg", "--hyper_cells=1,2", "--size=10x", "\ud800"])


@FAST
@given(lines=st.lists(FLAG_LINES | st.text(max_size=30), max_size=5),
       cls=st.sampled_from(CONFIGS[:2]))
def test_a_flagfile_with_any_lines_parses_or_is_a_clear_error(tmp_path_factory, lines, cls):
    """What every command does with --flagfile: absl parses it into the config's flags,
    then the config checks the values. An unknown or malformed flag is absl's one-line
    error (flags.Error); a value out of range a ConfigError."""
    from tf_nas_seg.utils.flag_fields import config_from_flags, define_flags, parse_flag_argv

    path = tmp_path_factory.mktemp("f") / "flags.cfg"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass"))
    values = flags.FlagValues()
    define_flags(cls, flag_values=values)
    try:
        parse_flag_argv(["command", f"--flagfile={path}"], values)
    except flags.Error as e:
        assert str(e).strip()
        return
    config = _user_error_or(lambda v: config_from_flags(cls, v), values)
    if config is not None:
        _check_valid_config(config)


@pytest.mark.parametrize("content", [b"--lr=0.1\n\xff\xfe--noflip\n", b"\x80\x81"])
def test_a_flagfile_that_is_not_utf8_is_a_clear_error(tmp_path, content):
    from tf_nas_seg.search.search_config import SearchConfig
    from tf_nas_seg.utils.flag_fields import define_flags, parse_flag_argv

    path = tmp_path / "flags.cfg"
    path.write_bytes(content)
    values = flags.FlagValues()
    define_flags(SearchConfig, flag_values=values)
    with pytest.raises(flags.Error, match=r"flagfile .*flags.cfg is not UTF-8 text"):
        parse_flag_argv(["command", f"--flagfile={path}"], values)


def test_every_command_reports_a_flagfile_that_is_not_utf8_in_one_line(tmp_path, capsys):
    """The commands' flag parser (cli/common.parse_flags): absl's one-line error, exit 1."""
    from tf_nas_seg.cli.common import parse_flags

    path = tmp_path / "typo.cfg"
    path.write_bytes(b"--lr=0.1\n\xe9t\xe9\n")
    with pytest.raises(SystemExit) as exit_:
        parse_flags(["bin/search", f"--flagfile={path}"])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"FATAL Flags parsing error: flagfile {path} is not UTF-8 text")
    assert "Traceback" not in err
