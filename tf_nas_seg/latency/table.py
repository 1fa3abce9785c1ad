"""Latency lookup tables: keys, the versioned JSON file, and its one strict reader.

The search never measures: it only reads. `bin/latency_table --mode=build` writes a table
(see `tf_nas_seg.latency`), the search reads it through `LatencyTable.load`, and a key
the search needs but the table lacks is an error naming the key and the command.

Keys (one format for every kind of entry, so a miss always reads the same way):

    "<namespace>/<name>|<C_in>|<C_out>|<H>x<W>|s<stride>|d<dilation>"

- candidate ops: namespace = op set, name = op, H x W = the op's input size (`op_key`);
- fixed layers (stem convs, 1x1 preprocessing, factorized reduce, node sums,
  concatenations, resizes, classifier): namespace "fixed" (`fixed_key`); a name may
  carry what else fixes the layer's cost (`concat3`, `resize_to_360x480`);
- CAS whole networks for c_o = c'_o - c'_id (`network_key`): "network/<op set>/<op>|
  <layout signature>|<H>x<W>".

Entries are milliseconds of one call of the layer compiled alone, minus the fixed cost
of calling a compiled function (`call_overhead_ms` in the file, added once per network by
`LatencyTable.network_overhead_ms`), so that sums of entries are network latencies.
"""

import datetime
import json
import math
import os

from tf_nas_seg.space.genotype import write_json_atomic
from tf_nas_seg.utils.json_files import read_json
from tf_nas_seg.errors import ConfigError, UserError, brief

TABLE_SCHEMA_VERSION = 3
BUILD_HINT = ("measure a table for this search configuration on the target device with "
              "bin/latency_table --mode=build (same op sets, widths, target resolution "
              "and batch)")
NETWORK_HINT = ("measure the CAS whole-network costs with bin/latency_table "
                "--mode=network (same settings and --table)")
# Measurement settings a table records; a build resumes only with identical ones.
SETTINGS_FIELDS = ("device", "device_type", "tensorflow", "dtype", "batch",
                   "intra_op_threads", "inter_op_threads", "layer_repeats", "space")
# What a table must share with the search that reads it: the machine, the TensorFlow
# version and the space (resolution included). The other settings change how the
# figures were taken, not what they describe.
IDENTITY_FIELDS = ("device", "device_type", "tensorflow", "space")


class LatencyTableError(UserError):
    """A latency table is missing, malformed, or lacks an entry the search needs."""


_DILATIONS = {}


def op_dilation(op_set, op):
    """Dilation rate of candidate `op` of `op_set` (1 for ops without one)."""
    if (op_set, op) not in _DILATIONS:
        from tf_nas_seg.ops.op_set import get_op_set

        layer = get_op_set(op_set).build(op, 8, 1, affine=True)
        _DILATIONS[(op_set, op)] = int(getattr(layer, "dilation_rate", 1))
    return _DILATIONS[(op_set, op)]


def _key(namespace, name, c_in, c_out, height, width, stride, dilation):
    return (f"{namespace}/{name}|{int(c_in)}|{int(c_out)}|{int(height)}x{int(width)}"
            f"|s{int(stride)}|d{int(dilation)}")


def op_key(op_set, op, c_in, c_out, height, width, stride, dilation=None):
    """Key of candidate `op` of `op_set` on a height x width x c_in input.

    Args:
        op_set: Op set name.
        op: Op name.
        c_in: Input channels.
        c_out: Output channels.
        height: Input height.
        width: Input width.
        stride: 1 or 2.
        dilation: Dilation rate; default the op's own (`op_dilation`).

    Returns:
        "op_set/op|Cin|Cout|HxW|sS|dD".
    """
    if dilation is None:
        dilation = op_dilation(op_set, op)
    return _key(op_set, op, c_in, c_out, height, width, stride, dilation)


def fixed_key(name, c_in, c_out, height, width, stride=1, dilation=1):
    """Key of a fixed (not searched) layer on a height x width x c_in input."""
    return _key("fixed", name, c_in, c_out, height, width, stride, dilation)


def network_key(op_set, op, signature, height, width):
    """Key of a CAS whole network with `op` of `op_set` on every searched edge."""
    return f"network/{op_set}/{op}|{signature}|{int(height)}x{int(width)}"


class LatencyTable:
    """Per-layer latencies (milliseconds) measured on one device.

    The file records how it was measured (device, TensorFlow version, dtype, batch,
    threads, date, the search space) and one entry per key. A lookup miss is an error
    that names the key and the command that measures it; there is no fallback value.

    Args:
        entries: {key: milliseconds}.
        meta: The measurement record (every top-level field of the file but entries).
        path: Where the table was read from or is written to (for messages).
    """

    def __init__(self, entries, meta, path="<memory>"):
        self.entries = dict(entries)
        self.meta = dict(meta)
        self.path = path

    @classmethod
    def create(cls, settings, path):
        """An empty table with measurement `settings` (see SETTINGS_FIELDS)."""
        missing = [k for k in SETTINGS_FIELDS if k not in settings]
        if missing:
            raise ConfigError(f"table settings lack {missing}")
        meta = {"schema_version": TABLE_SCHEMA_VERSION, **settings,
                "created": _now(), "call_overhead_ms": 0.0, "build_seconds": 0.0}
        return cls({}, meta, path)

    @classmethod
    def load(cls, path):
        """Reads and validates a table file."""
        if not path:
            raise LatencyTableError(
                "cost 'latency' reads per-op latencies from a lookup table, and no table "
                f"was given: pass --latency_table=PATH ({BUILD_HINT}), or search with "
                "--cost=params or --cost=macs")
        if not os.path.exists(path):
            raise LatencyTableError(f"latency table {path} does not exist: {BUILD_HINT}")
        data = read_json(path, LatencyTableError, f"rebuild it ({BUILD_HINT})")
        if not isinstance(data, dict) or data.get("schema_version") != TABLE_SCHEMA_VERSION \
                or isinstance(data.get("schema_version"), bool):
            version = data.get("schema_version") if isinstance(data, dict) else None
            raise LatencyTableError(
                f"latency table {path}: schema_version must be {TABLE_SCHEMA_VERSION}, "
                f"got {brief(version)}; rebuild it ({BUILD_HINT})")
        entries = data.get("entries")
        if not isinstance(entries, dict) or not all(
                _number(v, 0, MAX_MS) for v in entries.values()):
            raise LatencyTableError(f"latency table {path}: 'entries' must map keys to "
                                    f"non-negative milliseconds (finite, at most "
                                    f"{MAX_MS:g}); rebuild it ({BUILD_HINT})")
        if not _number(data.get("call_overhead_ms", 0.0), 0, MAX_MS):
            raise LatencyTableError(f"latency table {path}: 'call_overhead_ms' must be a "
                                    f"non-negative number (finite, at most {MAX_MS:g})")
        fit = data.get("calibration")
        if fit is not None and not (
                isinstance(fit, dict) and _number(fit.get("offset_ms"), -MAX_MS, MAX_MS)
                and _number(fit.get("scale"), 0, MAX_SCALE) and fit["scale"] > 0):
            raise LatencyTableError(f"latency table {path}: 'calibration' must hold a "
                                    f"'scale' in (0, {MAX_SCALE:g}] and an 'offset_ms'; "
                                    "recalibrate with bin/latency_table --mode=calibrate")
        for field, (kind, words) in _SETTING_TYPES.items():
            value = data.get(field)
            if value is not None and not (
                    isinstance(value, kind) and not isinstance(value, bool)
                    and (kind is not int or value >= 0)):
                raise LatencyTableError(f"latency table {path}: '{field}' must be {words}, "
                                        f"got {brief(value)}; rebuild it ({BUILD_HINT})")
        meta = {k: v for k, v in data.items() if k != "entries"}
        return cls(entries, meta, path)

    def save(self, path=None):
        """Writes the table atomically (temp file + rename)."""
        path = path or self.path
        self.meta["updated"] = _now()
        write_json_atomic(path, {**self.meta, "entries": dict(sorted(self.entries.items()))})
        return path

    def settings(self):
        """The measurement settings (SETTINGS_FIELDS) this table was built with."""
        return {k: self.meta.get(k) for k in SETTINGS_FIELDS}

    def lookup(self, key):
        """Milliseconds of `key`; LatencyTableError naming the key when it is missing."""
        try:
            return float(self.entries[key])
        except KeyError:
            hint = NETWORK_HINT if key.startswith("network/") else BUILD_HINT
            raise LatencyTableError(
                f"latency table {self.path} has no entry {key!r} (device "
                f"{self.meta.get('device', '?')}): {hint}") from None

    @property
    def network_overhead_ms(self):
        """Cost of running one compiled network, counted once per network."""
        return float(self.meta.get("call_overhead_ms", 0.0))

    @property
    def calibration(self):
        """(scale, offset_ms): measured ~ offset + scale * (sum of entries + overhead).

        Fitted by `bin/latency_table --mode=calibrate` on whole networks of the space
        (what layers timed alone miss: memory traffic between layers, a network's fixed
        costs); (1, 0) for an uncalibrated table.
        """
        fit = self.meta.get("calibration") or {}
        return float(fit.get("scale", 1.0)), float(fit.get("offset_ms", 0.0))

    def predict(self, keys, calibrated=True):
        """Predicted latency (ms) of a network made of the layers `keys`, run as one."""
        total = self.network_overhead_ms + sum(self.lookup(k) for k in keys)
        if not calibrated:
            return total
        scale, offset = self.calibration
        return offset + scale * total


# What a loaded table may hold: a day is 8.6e7 ms, and a calibration scales a sum by a
# few tenths, so values beyond these are a damaged file (and sums of them overflow).
MAX_MS = 1e9
MAX_SCALE = 1e3
# The types of the measurement settings a table records (checked when present).
_COUNT = (int, "a non-negative integer")
_SETTING_TYPES = {"device": (str, "a string"), "device_type": (str, "a string"),
                  "tensorflow": (str, "a string"), "dtype": (str, "a string"),
                  "batch": _COUNT, "intra_op_threads": _COUNT, "inter_op_threads": _COUNT,
                  "layer_repeats": _COUNT, "space": (dict, "an object")}


def _number(value, lower=-math.inf, upper=math.inf):
    """A finite int or float (not a bool, not NaN) in [lower, upper]."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and lower <= value <= upper)


def setting_differences(recorded, expected, prefix=""):
    """[(field, recorded value, expected value)] where `recorded` differs from `expected`.

    Only the fields of `expected` count; one whose expected value is None is not needed
    by the reader and matches anything (a CAS backbone search reads a table that also
    holds the multi-scale cell). Nested objects (the space, its layout) are compared
    field by field, so each difference is named ("space.layout.channels"). Values are
    compared as JSON (a tuple equals the list a file holds).

    Args:
        recorded: A table's settings (`LatencyTable.settings()`).
        expected: What the reader needs (e.g. this machine's device and the search's space).
        prefix: Prepended to the field names.
    """
    expected = json.loads(json.dumps(expected))
    recorded = recorded if isinstance(recorded, dict) else {}
    found = []
    for key, want in expected.items():
        have = recorded.get(key)
        if want is None:
            continue
        if isinstance(want, dict) and isinstance(have, dict):
            found += setting_differences(have, want, f"{prefix}{key}.")
        elif have != want:
            found.append((f"{prefix}{key}", have, want))
    return found


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
