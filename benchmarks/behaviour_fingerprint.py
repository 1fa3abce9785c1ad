"""Prints a fingerprint of what the code computes, to show that a refactor changed nothing.

    python benchmarks/behaviour_fingerprint.py > before.json   # on the old commit
    python benchmarks/behaviour_fingerprint.py > after.json    # on the new one
    diff before.json after.json                                 # empty: same behaviour

For CAS (with and without the multi-scale cell, CAS and DARTS op sets) and AutoRTNet
(the paper's layout and a small one), at the demo and the study resolutions, it hashes:

- the latency profile: every supernet entry (key, input shapes, edge reference), in
  order, the whole-network keys, and for seeded random genotypes the genotype JSON and
  its network entries;
- derived networks built from those genotypes with a fixed Keras seed: layer and weight
  paths, initial weight values, the output on a fixed image, MACs and parameters;
- supernets built with a fixed seed (CAS backbone and multi-scale stages, AutoRTNet):
  weight paths and values, the inference output, the derived genotype, and the cost
  model's matrices and fixed cost for params, MACs and latency (on a table of made-up
  values for every key the profile lists, calibrated).

Everything runs on CPU in float32; hashes are of exact bytes, so compare two runs on one
machine (kernels differ across CPUs; the profile and genotype hashes do not).
`--profiles_only` prints only the machine-independent part (profiles and genotypes, no
Keras model), which `tests/networks/test_fingerprint.py` compares with the committed
`benchmarks/fingerprint_profiles.json`.
"""

import hashlib
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tf_nas_seg.networks.autortnet_layout import AutoRTNetLayout  # noqa: E402
from tf_nas_seg.networks.autortnet_network import autortnet_network_macs  # noqa: E402
from tf_nas_seg.networks.builder import build_network  # noqa: E402
from tf_nas_seg.networks.cas_layout import CASLayout  # noqa: E402
from tf_nas_seg.networks.cas_network import cas_network_macs, count_trainable_params  # noqa: E402,E501
from tf_nas_seg.latency.autortnet_profile import autortnet_space  # noqa: E402
from tf_nas_seg.latency.profiles import get_profile  # noqa: E402
from tf_nas_seg.search.autortnet_cost_model import autortnet_cost_model  # noqa: E402
from tf_nas_seg.search.autortnet_supernet import AutoRTNetSupernet  # noqa: E402
from tf_nas_seg.search.cas_supernet import CASSupernet  # noqa: E402
from tf_nas_seg.search.cost_model import cas_cost_model  # noqa: E402
from tf_nas_seg.latency.table import LatencyTable  # noqa: E402

CLASSES = 11
SMALL_CAS = CASLayout(layout="NRNRN", channels=8, stem_channels=12, steps=2,
                      low_level_cell=1, ms_channels=8, ms_steps=3)
SMALL_AUTORTNET = AutoRTNetLayout(hyper_cells=(2, 3, 2), channels=4, channel_growth=2,
                                  steps=2, agg_channels=8, ms_channels=8)


def digest(value):
    """Short sha256 of JSON-able data or of an array's bytes."""
    if isinstance(value, np.ndarray):
        data = value.tobytes() + str(value.shape).encode() + str(value.dtype).encode()
    else:
        data = json.dumps(value, sort_keys=True, default=str).encode()
    return hashlib.sha256(data).hexdigest()[:16]


def entries_digest(entries):
    return {"count": len(entries),
            "hash": digest([(e.key, [list(s) for s in e.input_shapes],
                             None if e.edge is None else [e.edge.cell_type, e.edge.row,
                                                          e.edge.op_index])
                            for e in entries])}


def cas_space(layout, backbone, multiscale, height, width):
    return {"method": "cas", "backbone_op_set": backbone,
            "multiscale_op_set": "cas_multiscale" if multiscale else None,
            "layout": layout.to_json(), "num_classes": CLASSES, "height": height,
            "width": width}


def spaces():
    return {
        "cas_360x480": cas_space(CASLayout(), "cas_backbone", True, 360, 480),
        "cas_nomsc_64x128": cas_space(CASLayout(), "cas_backbone", False, 64, 128),
        "darts_small_64x128": cas_space(SMALL_CAS, "darts", False, 64, 128),
        "cas_small_61x97": cas_space(SMALL_CAS, "cas_backbone", True, 61, 97),
        "autortnet_360x480": autortnet_space(AutoRTNetLayout(), CLASSES, 360, 480),
        "autortnet_small_64x128": autortnet_space(SMALL_AUTORTNET, CLASSES, 64, 128),
        "autortnet_small_61x97": autortnet_space(SMALL_AUTORTNET, CLASSES, 61, 97),
    }


def weights_digest(model):
    paths = [v.path for v in model.weights]
    values = np.concatenate([np.ravel(keras.ops.convert_to_numpy(v)).astype(np.float64)
                             for v in model.weights])
    return {"paths": digest(paths), "count": len(paths), "values": digest(values)}


def image(height, width):
    return np.random.default_rng(1).uniform(0, 255, (1, height, width, 3)).astype(
        np.float32)


def output_digest(model, height, width, **kwargs):
    out = np.asarray(keras.ops.convert_to_numpy(model(image(height, width), **kwargs)))
    return {"hash": digest(out), "mean": float(out.mean())}


def profile_fingerprint(name, space, networks):
    profile = get_profile(space["method"])
    result = {"supernet": entries_digest(profile.supernet_entries(space)),
              "whole_networks": digest(sorted(
                  (k, g.to_json()) for k, g in profile.whole_networks(space).items())),
              "samples": []}
    rng = np.random.default_rng(0)
    for i in range(4):
        genotype = profile.sample_genotype(space, rng)
        sample = {"genotype": digest(genotype.to_json()),
                  "entries": entries_digest(profile.network_entries(space, genotype))}
        if networks and i < 2:
            h, w = space["height"], space["width"]
            keras.utils.set_random_seed(0)
            model = build_network(genotype, CLASSES, input_shape=(h, w, 3))
            if genotype.method == "autortnet":
                macs = autortnet_network_macs(genotype, CLASSES, h, w)
            else:
                macs = cas_network_macs(model, CASLayout(**space["layout"]), h, w)
            sample.update({"layers": digest([layer.name for layer in model.layers]),
                           "weights": weights_digest(model),
                           "output": output_digest(model, h, w, training=False),
                           "macs": int(macs), "params": count_trainable_params(model)})
            keras.backend.clear_session()
        result["samples"].append(sample)
    return result


def fake_table(entries):
    values = {e.key: (int(hashlib.sha256(e.key.encode()).hexdigest()[:6], 16) % 997) / 97.0
              for e in entries}
    return LatencyTable(values, {"call_overhead_ms": 0.5,
                                 "calibration": {"scale": 0.9, "offset_ms": -1.5}})


def cost_digest(model):
    data = model.to_json()
    return digest(data)


def supernet_fingerprint(model, height, width, cost, table=None):
    keras.utils.set_random_seed(0)
    model(image(height, width), training=False)
    result = {"weights": weights_digest(model),
              "output": output_digest(model, height, width, training=False),
              "genotype": digest(model.derive().to_json())}
    for kind in ("params", "macs") + (("latency",) if table is not None else ()):
        result[f"cost_{kind}"] = cost_digest(cost(model, kind, table))
    return result


def supernets():
    result = {}
    small = cas_space(SMALL_CAS, "cas_backbone", True, 61, 97)
    profile = get_profile("cas")
    table = fake_table(profile.supernet_entries(small))
    table.entries.update({k: 1.0 + i / 10 for i, k in enumerate(profile.whole_networks(
        small))})

    def cas_cost(mode):
        return lambda m, kind, t: cas_cost_model(m, kind, 61, 97, mode=mode,
                                                 latency_table=t)

    keras.utils.set_random_seed(0)
    backbone = CASSupernet(CLASSES, SMALL_CAS, seed=3, name="cas_supernet")
    result["cas_backbone"] = supernet_fingerprint(backbone, 61, 97, cas_cost("per_op"),
                                                  table)
    result["cas_backbone_casmode"] = {
        k: cost_digest(cas_cost_model(backbone, k, 61, 97, mode="cas",
                                      latency_table=table if k == "latency" else None))
        for k in ("params", "macs", "latency")}
    genotype = backbone.derive()
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    ms = CASSupernet(CLASSES, SMALL_CAS, stage="multiscale", backbone_genotype=genotype,
                     seed=3, name="cas_supernet")
    result["cas_multiscale"] = supernet_fingerprint(ms, 61, 97, cas_cost("per_op"), table)
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    darts = CASSupernet(CLASSES, SMALL_CAS, backbone_op_set="darts", seed=5,
                        name="cas_supernet")
    result["darts"] = supernet_fingerprint(darts, 64, 128, cas_cost("per_op"))
    keras.backend.clear_session()

    space = autortnet_space(SMALL_AUTORTNET, CLASSES, 61, 97)
    table = fake_table(get_profile("autortnet").supernet_entries(space))
    keras.utils.set_random_seed(0)
    model = AutoRTNetSupernet(CLASSES, SMALL_AUTORTNET, seed=3, name="autortnet_supernet")
    result["autortnet"] = supernet_fingerprint(
        model, 61, 97, lambda m, kind, t: autortnet_cost_model(m, kind, 61, 97,
                                                               latency_table=t), table)
    keras.backend.clear_session()
    return result


def main():
    profiles_only = "--profiles_only" in sys.argv
    result = {"profiles": {name: profile_fingerprint(name, space, not profiles_only and (
        space["height"] < 100))
        for name, space in spaces().items()}}
    if not profiles_only:
        result["supernets"] = supernets()
    json.dump(result, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
