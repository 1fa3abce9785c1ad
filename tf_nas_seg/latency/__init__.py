"""Latency lookup tables: keys, the table file, what to measure, timing, building, checking.

- `table`: the keys (`op_key`, `fixed_key`, `network_key`), the versioned JSON file and
  its one strict reader, `LatencyTable` (what the search reads);
- `layer_entry`, `plan_entries`: the entries of a network plan (one walker);
- `profiles`, `cas_profile`, `autortnet_profile`: what each search method's space holds
  (`get_profile(method)`);
- `timer`: compiled-function timing; `builder`: measuring a table; `validation`:
  calibrating and validating it against whole derived networks; `config`: the settings.

Dependencies go one way: `tf_nas_seg.search` reads this package, never the reverse
(`tests/latency/test_dependencies.py`).
"""
