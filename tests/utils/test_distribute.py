"""tf.distribute: strategy choice, sharded input streams, global-batch losses, and (slow)
whole runs on two logical devices and two worker processes compared with one device.

The slow tests start new processes (`tests/distributed_worker.py`): logical devices and
a cluster server can only be set up before TensorFlow starts, and a process holds one
multi-worker strategy for its life.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from tf_nas_seg import data
from tf_nas_seg.data.pipeline import stream_dataset
from tf_nas_seg.errors import ConfigError
from tf_nas_seg.train.ohem import SegmentationLoss
from tf_nas_seg.utils.distribute import (Distribution, DistributedError, free_local_ports,
                                        cross_replica_sum, make_distribution,
                                        read_tf_config, worker_failure)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = os.path.join(ROOT, "tests", "distributed_worker.py")
# float32 over a few steps (sums over replicas are taken in another order, synchronised
# batch norm computes the variance as E[x^2] - E[x]^2): measured ~1e-6.
TOLERANCE = 1e-4


# TF_CONFIG and the strategy choice ---------------------------------------------------
def _tf_config(index=0, workers=("127.0.0.1:1", "127.0.0.1:2"), kind="worker"):
    return {"TF_CONFIG": json.dumps({"cluster": {"worker": list(workers)},
                                     "task": {"type": kind, "index": index}})}


def test_tf_config_is_read_and_checked():
    assert read_tf_config({}) is None
    assert read_tf_config(_tf_config(1))["task"]["index"] == 1
    for bad, words in (({"TF_CONFIG": "{not json"}, "not JSON"),
                       ({"TF_CONFIG": '{"cluster": {}}'}, "'worker' list"),
                       (_tf_config(2), "outside the 2 worker"),
                       (_tf_config(0, ("a:1", "a:1")), "twice")):
        with pytest.raises(ConfigError, match=words):
            read_tf_config(bad)


def test_multi_worker_without_tf_config_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match="TF_CONFIG.*--strategy=mirrored"):
        make_distribution("multi_worker", environ={})


def test_one_device_is_the_default_strategy_and_global_batches_must_divide():
    dist = make_distribution("one_device", environ={})
    assert dist.strategy is tf.distribute.get_strategy()
    assert (dist.num_replicas, dist.is_chief, dist.distributed) == (1, True, False)
    assert dist.per_replica_batch(5) == 5

    class Two:
        num_replicas_in_sync = 2

    two = Distribution(Two(), "mirrored")
    assert two.per_replica_batch(8) == 4
    with pytest.raises(ConfigError, match="--batch_size=5.*2 replicas.*4 or 6"):
        two.per_replica_batch(5)


def test_sum_over_one_replica_adds_nothing():
    x = tf.constant([1.0, 2.0])
    assert cross_replica_sum(x) is x


def test_a_lost_worker_is_a_clear_error_and_other_errors_are_not():
    class Two:
        num_replicas_in_sync = 2

    dist = Distribution(Two(), "multi_worker", task=("worker", 0), num_workers=2)
    error = tf.errors.UnavailableError(None, None, "Collective ops is aborted by: task 1 "
                                       "stopped sending heartbeats")
    lost = worker_failure(error, dist, last_checkpoint=7)
    assert isinstance(lost, DistributedError)
    text = str(lost)
    assert "lost contact with another worker" in text and "heartbeats" in text
    assert "restart every worker" in text and "iteration 7" in text
    assert worker_failure(ValueError("x"), dist, 7) is None
    one = Distribution(tf.distribute.get_strategy(), "one_device")
    assert worker_failure(error, one, 7) is None


# Input shards -------------------------------------------------------------------------
def _batches(dataset):
    return [(i.numpy(), l.numpy()) for i, l in dataset]


def test_replica_shards_of_both_search_splits_make_up_their_global_batches():
    source = data.make_street_scenes(num_images=24, height=32, width=32, num_classes=4,
                                     seed=3)
    weights_src, arch_src, _ = data.search_split(source, seed=0)
    augment = data.AugmentConfig(flip=True, scale_range=(0.75, 1.25), crop_size=(32, 32))
    for seed, src in ((0, weights_src), (1, arch_src)):
        kwargs = dict(batch_size=4, seed=seed, start_batch=1, num_batches=4,
                      augment=augment)
        whole = _batches(stream_dataset(src, **kwargs))
        # Two workers of one replica each, and one worker with both replicas.
        first = _batches(stream_dataset(src, replicas=(0, 1, 2), **kwargs))
        second = _batches(stream_dataset(src, replicas=(1, 1, 2), **kwargs))
        both = _batches(stream_dataset(src, replicas=(0, 2, 2), **kwargs))
        assert len(whole) == len(first) == len(second) == 4 and len(both) == 8
        for k, (images, labels) in enumerate(whole):
            assert first[k][0].shape[0] == 2
            np.testing.assert_array_equal(np.concatenate([first[k][0], second[k][0]]),
                                          images)
            np.testing.assert_array_equal(np.concatenate([first[k][1], second[k][1]]),
                                          labels)
            np.testing.assert_array_equal(both[2 * k][0], first[k][0])
            np.testing.assert_array_equal(both[2 * k + 1][0], second[k][0])
    # The two splits never share an image: each stream reads only its own source.
    assert not set(weights_src.names) & set(arch_src.names)


def test_uneven_replica_shards_are_refused():
    source = data.make_street_scenes(num_images=8, height=32, width=32, num_classes=4)
    with pytest.raises(data.DatasetError, match="evenly"):
        stream_dataset(source, batch_size=3, seed=0, start_batch=0, num_batches=1,
                       replicas=(0, 1, 2))


# Global-batch losses ------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["ce", "ohem"])
@pytest.mark.parametrize("weighted", [False, True])
def test_loss_terms_summed_over_halves_give_the_whole_batch_loss(mode, weighted):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, (4, 8, 8)).astype("int32")
    labels[0, :3] = 255
    logits = rng.normal(size=(4, 8, 8, 4)).astype("float32")
    loss = SegmentationLoss(mode, threshold=1.0, min_kept=0.0,
                            class_weights=[0.5, 1.0, 2.0, 1.5] if weighted else None)
    whole = float(loss(labels, logits))
    halves = [loss.terms(labels[i:i + 2], logits[i:i + 2]) for i in (0, 2)]
    weight = sum(float(w) for _, w in halves)
    shared = sum(float(loss.combine(t, weight)) for t, _ in halves)
    np.testing.assert_allclose(shared, whole, rtol=1e-6)
    np.testing.assert_allclose(float(loss.combine(*loss.terms(labels, logits))), whole,
                               rtol=1e-7)


# Whole runs in other processes --------------------------------------------------------
def _env(**extra):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2",
               TF_ENABLE_ONEDNN_OPTS=os.environ.get("TF_ENABLE_ONEDNN_OPTS", "0"))
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _run(kind, run_dir, out, *flags, timeout=900):
    done = subprocess.run([sys.executable, WORKER, kind, str(run_dir), str(out), *flags],
                          env=_env(), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _start_workers(kind, run_dir, out_prefix, *flags):
    ports = free_local_ports(2)
    workers = [f"127.0.0.1:{p}" for p in ports]
    procs = []
    for index in range(2):
        env = _env(**_tf_config(index, workers))
        procs.append(subprocess.Popen(
            [sys.executable, WORKER, kind, str(run_dir), f"{out_prefix}{index}.npz",
             "--strategy=multi_worker", *flags], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    return procs


def _finish(procs, timeout):
    outputs = []
    deadline = time.monotonic() + timeout
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            outputs.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return outputs


def _load(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def _differences(a, b):
    """Max abs difference of the architecture logits and of the float variables."""
    arch = max((float(np.max(np.abs(a[k] - b[k]))) for k in a if k.startswith("arch/")),
               default=0.0)
    weights = max(float(np.max(np.abs(a[k].astype(np.float64) - b[k])))
                  for k in a if k.startswith("v") and a[k].dtype.kind == "f")
    ints = [k for k in a if k.startswith("v") and a[k].dtype.kind != "f"
            and not np.array_equal(a[k], b[k])]
    return arch, weights, ints


def _report(name, figures):
    print(f"{name}: {json.dumps(figures)}")
    path = os.environ.get("DISTRIBUTED_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"test": name, **figures}) + "\n")


@pytest.fixture(scope="module")
def one_device_search(tmp_path_factory):
    root = tmp_path_factory.mktemp("one")
    _run("search", root / "run", root / "one.npz", "--strategy=one_device")
    return _load(root / "one.npz")


@pytest.fixture(scope="module")
def genotype(one_device_search, tmp_path_factory):
    """The genotype the one-device search derived (a CAS network to train)."""
    runs = [p for p in tmp_path_factory.getbasetemp().glob("one*/run/genotype.json")]
    return str(runs[0])


@pytest.mark.slow  # two searches, one traced per replica (~2-5 min on 2 cores)
def test_two_logical_devices_make_the_same_search_updates_as_one(one_device_search,
                                                                tmp_path):
    result = _run("search", tmp_path / "run", tmp_path / "two.npz", "--strategy=mirrored",
                  "--cpu_devices=2")
    two = _load(tmp_path / "two.npz")
    assert result["replicas"] == 2 and two["replicas_agree"] == 1.0
    arch, weights, ints = _differences(one_device_search, two)
    _report("mirrored_vs_one_device_search", {"arch_max_abs": arch,
                                              "weights_max_abs": weights})
    assert not ints  # step counters, seeds
    assert arch < TOLERANCE and weights < TOLERANCE
    # and the architecture did move, so equality is not that of untouched logits
    moved = max(float(np.max(np.abs(v))) for k, v in two.items() if k.startswith("arch/"))
    assert moved > 100 * TOLERANCE
    summary = json.loads((tmp_path / "run" / "search_summary.json").read_text())
    assert summary["distribution"] == {"strategy": "mirrored", "replicas": 2,
                                       "workers": 1, "batch_norm": "sync"}


@pytest.mark.slow  # two trainings, one on two logical devices (~2-4 min on 2 cores)
def test_two_logical_devices_make_the_same_training_updates_as_one(genotype, tmp_path):
    # NOTE: a searched network (its stem standardises the input), plain cross-entropy
    # (OHEM picks its hard pixels per replica). The Fast-SCNN-style peer reads raw
    # 0..255 pixels into its first batch norm, whose gradient is then a difference of
    # large sums: one device with and without oneDNN differs by ~3e-4 relative there.
    flags = ("--peer=", f"--genotype={genotype}", "--loss=ce", "--width_multiplier=1.0")
    _run("train", tmp_path / "one", tmp_path / "one.npz", "--strategy=one_device", *flags)
    result = _run("train", tmp_path / "two", tmp_path / "two.npz", "--strategy=mirrored",
                  "--cpu_devices=2", *flags)
    one, two = _load(tmp_path / "one.npz"), _load(tmp_path / "two.npz")
    assert result["replicas"] == 2 and two["replicas_agree"] == 1.0
    _, weights, ints = _differences(one, two)
    _report("mirrored_vs_one_device_train", {"weights_max_abs": weights})
    assert not ints and weights < TOLERANCE


@pytest.mark.slow  # a 2-replica search stopped and resumed on one device, and back
def test_a_search_resumes_on_another_number_of_replicas(one_device_search, tmp_path):
    flags = {"one_device": ["--strategy=one_device"],
             "mirrored": ["--strategy=mirrored", "--cpu_devices=2"]}
    for first, then in (("mirrored", "one_device"), ("one_device", "mirrored")):
        run = tmp_path / first
        stopped = _run("search", run, tmp_path / "a.npz", *flags[first],
                       "--stop_after_iterations=2")
        assert stopped["status"] == "interrupted" and stopped["iterations"] == 2
        resumed = _run("search", run, tmp_path / f"{first}.npz", *flags[then])
        assert resumed["status"] == "completed" and resumed["iterations"] == 3
        arch, weights, ints = _differences(one_device_search,
                                           _load(tmp_path / f"{first}.npz"))
        _report(f"resume_{first}_then_{then}", {"arch_max_abs": arch,
                                                "weights_max_abs": weights})
        assert not ints and arch < TOLERANCE and weights < TOLERANCE


@pytest.mark.slow  # two worker processes, a search and a training (~3-8 min on 2 cores)
def test_two_workers_search_and_train_in_lockstep(one_device_search, tmp_path):
    started = time.monotonic()
    for kind in ("search", "train"):
        run = tmp_path / kind
        outputs = _finish(_start_workers(kind, run, tmp_path / f"{kind}_"), timeout=900)
        for code, out, err in outputs:
            assert code == 0, err[-3000:]
            assert json.loads(out.strip().splitlines()[-1])["status"] == "completed"
        chief, other = (_load(tmp_path / f"{kind}_{i}.npz") for i in range(2))
        # identical on both workers, bit for bit (the same all-reduced updates)
        assert sorted(chief) == sorted(other)
        for key in chief:
            np.testing.assert_array_equal(chief[key], other[key], err_msg=key)
        # only the chief wrote the run directory
        assert (run / "checkpoints").is_dir()
        assert sorted(os.listdir(run / "workers")) == ["worker-1"]
        assert os.listdir(run / "workers" / "worker-1") == [".lock"]
        if kind == "search":
            arch, weights, _ = _differences(one_device_search, chief)
            checksum = float(sum(np.sum(v, dtype=np.float64) for k, v in chief.items()
                                 if k.startswith("v") and v.dtype.kind == "f"))
            _report("two_workers_vs_one_device_search",
                    {"arch_max_abs": arch, "weights_max_abs": weights,
                     "weight_checksum": checksum})
            assert arch < TOLERANCE and weights < TOLERANCE
    _report("two_workers_wall_seconds", {"seconds": round(time.monotonic() - started, 1)})


@pytest.mark.slow  # two workers, one killed; then both restarted (~3-6 min on 2 cores)
def test_a_killed_worker_makes_the_other_fail_clearly_and_a_rerun_resumes(tmp_path):
    run = tmp_path / "run"
    flags = ("--iterations=40",)
    procs = _start_workers("train", run, tmp_path / "w", *flags)
    try:
        deadline = time.monotonic() + 600
        while not list((run / "checkpoints").glob("ckpt-2.index")):
            assert time.monotonic() < deadline, "no checkpoint within 600 s"
            assert all(p.poll() is None for p in procs), procs[0].stderr.read()[-2000:]
            time.sleep(0.5)
        procs[1].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        (code, _, err), _ = _finish(procs, timeout=300)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    waited = time.monotonic() - killed
    _report("killed_worker_detected_seconds", {"seconds": round(waited, 1)})
    assert code == 2, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: lost contact with another worker"), last
    assert "restart every worker" in last
    # rerunning both resumes from the chief's last checkpoint and finishes
    outputs = _finish(_start_workers("train", run, tmp_path / "r", "--iterations=40",
                                     "--stop_after_iterations=3"), timeout=900)
    for code, out, err in outputs:
        assert code == 0, err[-3000:]
        assert "resumed from" in err
        result = json.loads(out.strip().splitlines()[-1])
        assert result["status"] == "interrupted" and result["iterations"] >= 2 + 3


def test_recompute_edges_on_several_replicas_is_refused_with_the_fix(tmp_path):
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bin", "search"),
         f"--flagfile={os.path.join(ROOT, 'configs', 'demo.cfg')}", "--iterations=1",
         "--strategy=mirrored", "--cpu_devices=2", "--recompute_edges",
         f"--run_dir={tmp_path / 'run'}"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "--recompute_edges is not supported with several replicas" in done.stderr
    assert "run without it, or on one device" in done.stderr
