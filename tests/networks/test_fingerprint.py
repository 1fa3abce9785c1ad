"""Latency-table keys and sampled genotypes are what they were (a refactor guard).

`benchmarks/fingerprint_profiles.json` holds hashes of every supernet entry (key, input
shapes, edge reference), the whole-network keys, and seeded random genotypes with their
network entries, for CAS, DARTS and AutoRTNet spaces at several sizes. They depend on no
CPU kernel, so they are equal on every machine; a change to them changes every latency
table a user has measured. If a change is intended, regenerate the file with
`python benchmarks/behaviour_fingerprint.py --profiles_only` and say why in the commit.
"""

import importlib.util
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _fingerprint_module():
    spec = importlib.util.spec_from_file_location(
        "behaviour_fingerprint", ROOT / "benchmarks" / "behaviour_fingerprint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_profiles_and_genotypes_match_the_committed_fingerprint():
    module = _fingerprint_module()
    expected = json.loads((ROOT / "benchmarks" / "fingerprint_profiles.json").read_text())
    for name, space in module.spaces().items():
        got = module.profile_fingerprint(name, space, networks=False)
        assert got == expected["profiles"][name], (
            f"{name}: latency entries or sampled genotypes changed; see this test's "
            "docstring")
