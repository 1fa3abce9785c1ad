"""Running a search or a training on several devices or machines with tf.distribute.

`bin/search` and `bin/train` run one step function for every setting of `--strategy`:
the step runs in `strategy.run` (the default strategy's, which calls it directly, for
one device), reduces what it computed with `cross_replica_sum` (nothing to reduce on
one replica), and applies the optimizers' updates from the global gradients. So one
device and several give the same updates for the same global batch (within float32
rounding), and every replica holds the same architecture logits and weights.

* `make_distribution` turns `--strategy` (with `TF_CONFIG` for several machines) into
  a `Distribution`: the strategy, the replica and worker counts and whether this
  process is the chief (the one that writes the run directory).
* `cross_replica_sum` all-reduces tensors across the replicas of a step.
* `ReducedGradients` is mixed into the optimizers: their gradients arrive already
  summed, so Keras must not sum them again.
* `worker_failure` turns what TensorFlow raises when a peer worker dies or stops
  answering into a `DistributedError` that says so and how to resume.

Keras 3's `fit` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585); the
custom loops of the search and training do not use it.
"""

import contextlib
import json
import os
import socket

import keras
from absl import logging

from tf_nas_seg.config_sections import STRATEGIES
from tf_nas_seg.errors import ConfigError, UserError


class DistributedError(UserError):
    """A distributed run cannot start (TF_CONFIG, devices) or lost a worker."""


def read_tf_config(environ=None):
    """The parsed `TF_CONFIG` environment variable, or None when unset or empty.

    Raises:
        ConfigError: It is not a JSON object with a `cluster` holding a `worker` list
            and a `task` with `type` and `index`.
    """
    raw = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
    if not raw:
        return None
    fix = ('e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
           '"task": {"type": "worker", "index": 0}}\' (see docs/DISTRIBUTED.md)')
    try:
        config = json.loads(raw)
    except ValueError as e:
        raise ConfigError(f"TF_CONFIG is not JSON ({e}); {fix}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    workers = cluster.get("worker") if isinstance(cluster, dict) else None
    if (not isinstance(workers, list) or not workers or not isinstance(task, dict)
            or task.get("type") not in ("worker", "chief")
            or not isinstance(task.get("index"), int)):
        raise ConfigError("TF_CONFIG needs a cluster with a 'worker' list of host:port and "
                          f"a task {{'type': 'worker' or 'chief', 'index': N}}; {fix}")
    members = list(workers) + list(cluster.get("chief", []))
    if task["index"] >= len(cluster.get(task["type"], [])):
        raise ConfigError(f"TF_CONFIG task index {task['index']} is outside the "
                          f"{len(cluster.get(task['type'], []))} {task['type']} "
                          f"addresses of its cluster; {fix}")
    if len(set(members)) != len(members):
        raise ConfigError(f"TF_CONFIG lists an address twice ({members}); every worker "
                          "needs its own host:port")
    return config


class Distribution:
    """A strategy and what the run needs to know about it.

    Attributes:
        strategy: The `tf.distribute.Strategy` the steps run under.
        kind: "one_device", "mirrored" or "multi_worker" (what "auto" resolved to).
        num_replicas: Replicas in sync (the global batch is split over them).
        num_workers: Processes taking part (1 unless multi_worker).
        task: (type, index) of this process in TF_CONFIG; ("worker", 0) otherwise.
        is_chief: Whether this process writes the run directory (checkpoints, logs,
            results); the others compute in lockstep and write nothing there.
    """

    def __init__(self, strategy, kind, task=("worker", 0), num_workers=1, is_chief=True):
        self.strategy = strategy
        self.kind = kind
        self.num_replicas = int(strategy.num_replicas_in_sync)
        self.num_workers = int(num_workers)
        self.task = task
        self.is_chief = bool(is_chief)

    @property
    def distributed(self):
        """More than one replica: the steps reduce across them."""
        return self.num_replicas > 1

    def per_replica_batch(self, global_batch, flag="--batch_size"):
        """The batch each replica computes; ConfigError unless it divides evenly."""
        if global_batch % self.num_replicas:
            low = global_batch - global_batch % self.num_replicas
            raise ConfigError(
                f"{flag}={global_batch} (the global batch) does not divide into "
                f"{self.num_replicas} replicas; use a multiple of {self.num_replicas} "
                f"(e.g. {max(low, self.num_replicas)} or "
                f"{low + self.num_replicas})")
        return global_batch // self.num_replicas

    def describe(self):
        text = (f"--strategy={self.kind}: {self.num_replicas} replica(s) on "
                f"{self.num_workers} worker(s)")
        if self.num_workers > 1:
            text += f", this is {self.task[0]} {self.task[1]}"
            text += " (chief)" if self.is_chief else ""
        return text


def make_distribution(kind="auto", cpu_devices=0, collective_timeout=0.0, environ=None):
    """The `Distribution` for `--strategy=kind`. Call it before TensorFlow has run any op
    (logical devices and the cluster server can only be set up then).

    Args:
        kind: "auto" (multi_worker when TF_CONFIG names several workers, else mirrored
            when there are several GPUs, else one_device), "one_device", "mirrored" (all
            local GPUs, or `cpu_devices` logical CPUs without GPUs) or "multi_worker"
            (MultiWorkerMirroredStrategy over the TF_CONFIG cluster).
        cpu_devices: Split the CPU into this many logical devices (0 or 1: don't).
        collective_timeout: Seconds a collective may wait for the other workers before
            it fails (multi_worker); 0: no limit (a dead worker is still detected by
            the strategy's health checks).
        environ: Environment to read TF_CONFIG from (default `os.environ`).

    Raises:
        ConfigError: An unknown kind, multi_worker without TF_CONFIG, or a malformed
            TF_CONFIG.
    """
    import tensorflow as tf

    if kind not in STRATEGIES:
        raise ConfigError(f"--strategy={kind!r} must be one of {list(STRATEGIES)}")
    tf_config = read_tf_config(environ)
    workers = 0
    if tf_config:
        workers = len(tf_config["cluster"]["worker"]) + len(tf_config["cluster"].get(
            "chief", []))
    if cpu_devices > 1:
        _split_cpu(tf, cpu_devices)
    gpus = tf.config.list_physical_devices("GPU")
    if kind == "auto":
        kind = ("multi_worker" if workers > 1 else
                "mirrored" if len(gpus) > 1 or cpu_devices > 1 else "one_device")
    if kind == "one_device":
        return Distribution(tf.distribute.get_strategy(), kind)
    if kind == "mirrored":
        if gpus:
            devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        else:
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        if len(devices) < 2:
            logging.warning("--strategy=mirrored found one device (%s); set --cpu_devices "
                            "to split a CPU into several", devices)
        return Distribution(tf.distribute.MirroredStrategy(devices), kind)
    if not tf_config:
        raise ConfigError("--strategy=multi_worker needs the TF_CONFIG environment variable "
                          "describing the cluster and this worker's place in it (see "
                          "docs/DISTRIBUTED.md); for one machine use --strategy=mirrored")
    options = tf.distribute.experimental.CommunicationOptions(
        timeout_seconds=collective_timeout or None)
    strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    task = (tf_config["task"]["type"], tf_config["task"]["index"])
    has_chief = bool(tf_config["cluster"].get("chief"))
    is_chief = task[0] == "chief" or (not has_chief and task == ("worker", 0))
    return Distribution(strategy, kind, task=task, num_workers=workers, is_chief=is_chief)


def _split_cpu(tf, count):
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
    except RuntimeError:
        configured = tf.config.get_logical_device_configuration(cpu)
        if configured is None or len(configured) != count:
            raise DistributedError(
                f"--cpu_devices={count}: TensorFlow's devices were set up before the "
                "strategy; start a new process (this only works at start-up)") from None


def num_replicas_in_sync():
    """Replicas of the step being traced (1 outside a strategy)."""
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None:  # cross-replica context
        return tf.distribute.get_strategy().num_replicas_in_sync
    return context.num_replicas_in_sync


def cross_replica_sum(values):
    """Sums a tensor (or a list of tensors) over the replicas of the running step.

    Called in a replica context (inside `strategy.run`); with one replica it returns
    `values` unchanged and adds nothing to the graph, so a single-device step is the
    same graph it was without distribution. The sum is differentiable.
    """
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return values
    return context.all_reduce(tf.distribute.ReduceOp.SUM, values)


def first_replica(value):
    """The first local replica's value of a `strategy.run` result (the same on all
    replicas for the values the steps return)."""
    import tensorflow as tf

    return tf.nest.map_structure(
        lambda v: tf.distribute.get_strategy().experimental_local_results(v)[0]
        if hasattr(v, "values") else v, value)


class ReducedGradients:
    """Mixin for Keras optimizers: the gradients given to `apply` are already the sums
    over all replicas.

    NOTE: Keras's TensorFlow optimizer all-reduces the gradients it is given in a
    replica context. The search and training steps reduce them themselves, first,
    because what they do next needs the global gradient: coupled weight decay is
    added once (not once per replica), the global-norm clip sees the global norm, and
    the search's cost term and architecture weight decay are added to the global
    cross-entropy gradient once. Summing again here would multiply every update by
    the replica count.
    """

    def _all_reduce_sum_gradients(self, grads_and_vars):
        return list(grads_and_vars)


@keras.saving.register_keras_serializable(package="tf_nas_seg")
class ReducedAdam(ReducedGradients, keras.optimizers.Adam):
    """`keras.optimizers.Adam` for gradients already summed over the replicas (the
    search's architecture optimizer); identical to Adam on one replica."""


def worker_failure(error, distribution, last_checkpoint):
    """A `DistributedError` for what a collective raised when a worker died or stalled,
    or None when `error` is not such an error (or the run is on one worker).

    Args:
        error: The exception a step raised.
        distribution: The run's `Distribution`.
        last_checkpoint: Iteration of the last checkpoint (what a rerun resumes from).
    """
    import tensorflow as tf

    if distribution is None or distribution.num_workers < 2:
        return None
    lost = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
            tf.errors.CancelledError, tf.errors.AbortedError, tf.errors.InternalError,
            tf.errors.FailedPreconditionError)
    if not isinstance(error, lost):
        return None
    detail = (str(getattr(error, "message", error)).strip().splitlines() or [""])[0]
    return DistributedError(
        f"lost contact with another worker of the {distribution.num_workers}-worker run "
        f"(this is {distribution.task[0]} {distribution.task[1]}): "
        f"{type(error).__name__}: {detail[:300]}. A worker stopped or the network failed; "
        f"restart every worker with the same command and TF_CONFIG to resume from the "
        f"last checkpoint (iteration {last_checkpoint})")


@contextlib.contextmanager
def worker_failures_reported(distribution, last_checkpoint):
    """Inside, an `OpError` that says a peer worker died or stalled, raised anywhere (a
    step, a checkpoint, the input pipeline, an eager all-reduce), becomes the
    `DistributedError` of `worker_failure`; any other error passes unchanged.

    Args:
        distribution: The run's `Distribution`.
        last_checkpoint: A callable giving the iteration of the last checkpoint.
    """
    import tensorflow as tf

    try:
        yield
    except tf.errors.OpError as e:
        lost = worker_failure(e, distribution, last_checkpoint())
        if lost is None:
            raise
        raise lost from None


def lock_directory(run_dir, distribution):
    """The directory whose lock this process holds: the run directory for the chief,
    `RUN_DIR/workers/TYPE-INDEX` (created, holding only the lock) for the other workers,
    which share the run directory but never write it."""
    if distribution.is_chief:
        return run_dir
    path = os.path.join(run_dir, "workers", "{}-{}".format(*distribution.task))
    os.makedirs(path, exist_ok=True)
    return path


def check_workers_agree(distribution, settings, step):
    """Refuses a multi-worker run whose workers were given different settings or
    resumed from different checkpoints (a worker that cannot see the chief's run
    directory starts from 0), instead of letting them silently compute different things.

    Args:
        distribution: The run's `Distribution`.
        settings: The config (JSON-able) that must be the same on every worker.
        step: The iteration this worker resumed from.

    Raises:
        DistributedError: They differ.
    """
    import hashlib

    import tensorflow as tf

    if distribution.num_workers < 2:
        return
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).digest()
    mine = [float(int.from_bytes(digest[:3], "big")), float(step)]
    strategy = distribution.strategy

    @tf.function
    def gather():
        def replica():
            value = tf.constant(mine, tf.float64)
            return cross_replica_sum([value, value * value])
        return strategy.run(replica)

    total, squares = (v.numpy() for v in first_replica(gather()))
    n = distribution.num_replicas
    differ = [name for name, t, s in zip(("settings", "resumed iteration"), total, squares)
              if n * s != t * t]
    if differ:
        raise DistributedError(
            f"the workers of this run differ in {' and '.join(differ)} (this worker: "
            f"iteration {step}). Start every worker with the same command and flags, and "
            "give them one --run_dir on a file system they all see (the chief writes it, "
            "every worker resumes from its checkpoints)")


def free_local_ports(count):
    """`count` TCP ports on 127.0.0.1 that were free a moment ago, for a TF_CONFIG of
    local workers (tests, benchmarks/distributed.py). All are held open together, so
    they are distinct; another process may still take one before the workers bind."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()
