"""Reading per-op latency lookup tables (the search never measures: it only reads)."""

import json
import os

TABLE_SCHEMA_VERSION = 1
BUILD_HINT = ("measure a table for this search configuration on the target device with "
              "bin/latency_table --mode=build (same op sets, widths, target resolution "
              "and batch)")


class LatencyTableError(ValueError):
    """A latency table is missing, malformed, or lacks an entry the search needs."""


def op_key(op_set, op, c_in, c_out, height, width, stride):
    """The table key of one op at one input shape ("op_set/op|Cin|Cout|HxW|s")."""
    return f"{op_set}/{op}|{c_in}|{c_out}|{height}x{width}|s{stride}"


class LatencyTable:
    """Per-op latencies (milliseconds) measured on one device, read from JSON.

    The file records how it was measured (device, TensorFlow version, dtype, batch,
    threads, date) and one entry per key of `op_key`. A lookup miss is an error that names
    the key and the command that measures it; there is no fallback value.

    Args:
        entries: {key: milliseconds}.
        meta: The measurement record.
        path: Where the table was read from (for messages).
    """

    def __init__(self, entries, meta, path="<memory>"):
        self.entries = dict(entries)
        self.meta = dict(meta)
        self.path = path

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
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except json.JSONDecodeError as e:
            raise LatencyTableError(f"latency table {path} is not valid JSON ({e})") from e
        if not isinstance(data, dict) or data.get("schema_version") != TABLE_SCHEMA_VERSION:
            raise LatencyTableError(
                f"latency table {path}: schema_version must be {TABLE_SCHEMA_VERSION}; "
                f"rebuild it ({BUILD_HINT})")
        entries = data.get("entries")
        if not isinstance(entries, dict) or not all(
                isinstance(v, (int, float)) and v >= 0 for v in entries.values()):
            raise LatencyTableError(f"latency table {path}: 'entries' must map keys to "
                                    "non-negative milliseconds")
        meta = {k: v for k, v in data.items() if k != "entries"}
        return cls(entries, meta, path)

    def lookup(self, key):
        """Milliseconds of `key`; LatencyTableError naming the key when it is missing."""
        try:
            return float(self.entries[key])
        except KeyError:
            raise LatencyTableError(
                f"latency table {self.path} has no entry {key!r} (device "
                f"{self.meta.get('device', '?')}): {BUILD_HINT}") from None
