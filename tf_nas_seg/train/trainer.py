"""Trains a derived (or hand-designed) network into a run directory, resumably."""

import json
import os
import platform

import keras
import tensorflow as tf
from absl import logging

from tf_nas_seg.errors import UserError
from tf_nas_seg.networks.builder import build_network
from tf_nas_seg.networks.cas_network import count_trainable_params
from tf_nas_seg.networks.model_macs import count_model_macs
from tf_nas_seg.space.genotype import Genotype, write_json_atomic
from tf_nas_seg.train import class_weights as class_weighting
from tf_nas_seg.train.ohem import SegmentationLoss
from tf_nas_seg.train.train_config import RESUMABLE_CHANGES, TrainConfig
from tf_nas_seg.utils.json_files import read_json
from tf_nas_seg.utils.atomic import atomic_output
from tf_nas_seg.ops.batch_norm import synchronize_batch_norms
from tf_nas_seg.utils.distribute import (Distribution, check_workers_agree,
                                        cross_replica_sum, lock_directory,
                                        make_distribution, worker_failures_reported)
from tf_nas_seg.utils.fused_sgd import FusedSGD
from tf_nas_seg.utils.run_state import (NonfiniteSteps, RunLock, StopSignals,
                                       VariableCheckpoint, check_or_write_config,
                                       configure_tensorflow, record_skipped_examples)
from tf_nas_seg.viz.figures import draw_training_curves
from tf_nas_seg.utils.progress import ProgressBar


class TrainError(UserError):
    """Training cannot start as configured; the message says what to change."""


def save_model_atomic(model, path):
    """Saves a `.keras` model via a temp file and an atomic rename."""
    with atomic_output(path, suffix=".keras") as tmp:
        model.save(tmp)
    return path


def load_sources(config):
    """(train source, val source) of a TrainConfig's data set."""
    from tf_nas_seg import data

    c = config
    if c.dataset == "synthetic":
        make = lambda n, split: data.make_street_scenes(  # noqa: E731
            num_images=n, height=c.synthetic_height, width=c.synthetic_width,
            num_classes=c.synthetic_classes, seed=c.seed, split=split)
        # Each split name draws its own scenes; the same name gives the same scenes.
        return (make(c.synthetic_images, c.train_split),
                make(c.synthetic_val_images, c.val_split))
    # Only a tfds split (held in memory) is resized while read; validation keeps the
    # native size, as it does for the other data sets.
    train = data.open_split(
        c.dataset, c.data_dir, c.train_split, tfds_manual_dir=c.tfds_manual_dir,
        image_size=(c.resize_height, c.resize_width) if c.resize_height else None,
        tfds_max_gib=c.tfds_max_gib, skip_bad=c.skip_bad_examples)
    val = data.open_split(c.dataset, c.data_dir, c.val_split,
                          tfds_manual_dir=c.tfds_manual_dir, tfds_max_gib=c.tfds_max_gib,
                          skip_bad=c.skip_bad_examples)
    return train, val


class Trainer:
    """Owns one training run: data, network, optimizer, checkpoints, logs and outputs.

    The run directory holds config.json, checkpoints/ (exact resume: weights, BN
    statistics, optimizer slots, step and best score), tensorboard/, best.keras (best
    validation mIoU so far), model.keras (final weights), history.json, plots/,
    train_summary.json and, with --class_weights, class_weights.json (the loss's class
    weights and the label counts behind them, read back on resume).

    With several replicas (`--strategy`) the step runs in `strategy.run` on each
    replica's share of the global batch; the loss and gradients are summed over the
    replicas before the update (`SegmentationLoss.terms`), and only the chief writes
    the run directory and evaluates.

    Args:
        config: A TrainConfig.
    """

    def __init__(self, config: TrainConfig):
        if not config.run_dir:
            raise TrainError("--run_dir is required: the directory where training writes "
                             "its checkpoints, logs and models")
        if bool(config.genotype) == bool(config.peer):
            raise TrainError("pass exactly one of --genotype (the genotype.json of a search) "
                             "and --peer (a hand-designed network, e.g. fast_scnn)")
        self.config = config
        self.run_dir = os.path.abspath(config.run_dir)
        self.predictor = None  # built at the first evaluation, reused by the others
        # run() sets the configured one (it must exist before any TF op); until then,
        # one device.
        self.dist = Distribution(tf.distribute.get_strategy(), "one_device")

    # Set-up -----------------------------------------------------------------------
    def _configure_tensorflow(self):
        keras.mixed_precision.set_global_policy(self.config.precision)

    def _load_data(self):

        c = self.config
        train, val = load_sources(c)
        self.skipped_examples = record_skipped_examples(
            self.run_dir, {c.train_split: getattr(train, "skipped", ()),
                           c.val_split: getattr(val, "skipped", ())})
        self.info = train.info
        self.dist.per_replica_batch(c.batch_size)
        if len(train) < c.batch_size:
            raise TrainError(f"the {c.train_split} split has {len(train)} images, fewer than "
                             f"--batch_size={c.batch_size}; lower --batch_size")
        self.train_src = train.cache_in_memory()
        self.val_src = val
        self.augment = c.augment_config()
        self.input_hw = self.augment.output_size(train.image_size)
        if self.input_hw is None:
            raise TrainError("training images differ in size: set --crop_height/--crop_width"
                             " or --resize_height/--resize_width so batches have one shape")

    def _load_class_weights(self):
        """Sets `self.class_weights` (a record or None): read from the run or computed.

        The weights are counted once, over the training split's labels as stored, and
        written to RUN_DIR/class_weights.json; a resumed run reads that file instead.
        """
        c = self.config
        self.class_weights = None
        if c.class_weights == "none":
            return
        path = os.path.join(self.run_dir, class_weighting.FILE_NAME)
        if os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as f:
                    record = json.load(f)
                class_weighting.check_class_weights(record, c.class_weights,
                                                    self.info.class_names, path)
            except (OSError, ValueError) as e:
                raise TrainError(f"cannot use {path} ({e}); delete it to recount the "
                                 "class weights, or pass a new --run_dir") from None
            logging.info("class weights (%s) read from %s", c.class_weights, path)
        else:
            record = class_weighting.compute_class_weights(self.train_src, c.class_weights,
                                                           c.train_split)
            if self.dist.is_chief:
                write_json_atomic(path, record)
            logging.info("class weights (%s) of %d %s images written to %s",
                         c.class_weights, record["num_images"], c.train_split, path)
        logging.info("class weights: %s", class_weighting.describe(record))
        self.class_weights = record

    def _class_weights_summary(self):
        """The `class_weights` entry of train_summary.json (None when unweighted)."""
        record = self.class_weights
        if record is None:
            return None
        return {"method": record["method"],
                "file": os.path.join(self.run_dir, class_weighting.FILE_NAME),
                "weights": dict(zip(record["class_names"], record["weights"])),
                "absent_classes": record["absent_classes"]}

    def _build_model(self):
        with self.dist.strategy.scope():
            self._build_model_in_scope()
        synchronize_batch_norms(self.model, self.config.batch_norm == "sync")

    def _build_model_in_scope(self):
        c = self.config
        genotype = Genotype.load(c.genotype) if c.genotype else None
        self.genotype = genotype
        self.model = build_network(genotype, self.info.num_classes, peer=c.peer or None,
                                   method=c.method or None, width_multiplier=c.width_multiplier)
        schedule = keras.optimizers.schedules.PolynomialDecay(
            c.lr, decay_steps=c.iterations, end_learning_rate=0.0, power=c.lr_power)
        optimizer = FusedSGD(schedule, momentum=c.momentum, name="sgd")
        if c.precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(self.model.trainable_variables)
        self.optimizer = optimizer
        weights = None if self.class_weights is None else self.class_weights["weights"]
        self.loss = SegmentationLoss(c.loss, self.info.ignore_label, c.ohem_threshold,
                                     c.ohem_min_kept, class_weights=weights)
        self.best_miou = tf.Variable(-1.0, dtype=tf.float64, trainable=False, name="best")
        self.best_step = tf.Variable(-1, dtype=tf.int64, trainable=False, name="best_step")
        # Sum and count of the losses since the last evaluation (the history's train
        # loss), checkpointed so that a resumed run reports what an uninterrupted one does.
        self.loss_sum = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="loss_sum")
        self.loss_count = tf.Variable(0, dtype=tf.int64, trainable=False, name="loss_count")
        self.state = VariableCheckpoint(
            list(self.model.variables) + list(optimizer.variables),
            os.path.join(self.run_dir, "checkpoints"), error_cls=TrainError,
            extra={"best_miou": self.best_miou, "best_step": self.best_step,
                   "loss_sum": self.loss_sum, "loss_count": self.loss_count})
        self.nonfinite = NonfiniteSteps(self.run_dir, self.state.variables,
                                        c.skip_nonfinite_steps, c.max_skipped_steps,
                                        TrainError)

    def _make_train_step(self):
        model, optimizer, loss_fn = self.model, self.optimizer, self.loss
        weights = model.trainable_variables
        decay = self.config.weight_decay
        scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        strategy = self.dist.strategy
        replicas = self.dist.num_replicas

        def replica_step(images, labels):
            with tf.GradientTape() as tape:
                logits = model(images, training=True)
                total_loss, weight = loss_fn.terms(labels, logits)
                # This replica's share of the global batch's loss (divided by the global
                # total of the pixel weights), so the replicas' shares sum to it.
                loss = loss_fn.combine(total_loss, cross_replica_sum(weight))
                total = loss
                if decay:
                    penalty = 0.5 * decay * tf.add_n(
                        [tf.reduce_sum(tf.square(tf.cast(w, tf.float32))) for w in weights])
                    total += penalty / replicas  # summed over the replicas below
                if scaled:
                    total = optimizer.scale_loss(total)
            grads = tape.gradient(total, weights)
            loss, grads = cross_replica_sum([loss, grads])
            optimizer.apply(grads, weights)
            return loss

        @tf.function
        def train_step(images, labels):
            losses = strategy.run(replica_step, args=(images, labels))
            return strategy.experimental_local_results(losses)[0]

        return train_step

    # Evaluation -------------------------------------------------------------------
    def _evaluate(self, overlays=0):
        from tf_nas_seg.evaluation import Predictor, evaluate_source

        c = self.config
        size = (c.eval_height, c.eval_width) if c.eval_height else None
        # One predictor for the run: a new one per evaluation traced the network again.
        if self.predictor is None:
            self.predictor = Predictor.from_model(self.model)
        return evaluate_source(self.predictor, self.val_src, size=size,
                               batch_size=1 if self.val_src.image_size is None else 4,
                               max_images=c.val_max_images, overlays=overlays,
                               overlay_dir=os.path.join(self.run_dir, "plots"),
                               progress=False)

    def _record_eval(self, step, loss, writer, overlays=0):
        scores = self._evaluate(overlays)
        miou = scores["miou"]
        logging.info("step %d: val mIoU %.4f (pixel accuracy %.4f)", step, miou,
                     scores["pixel_accuracy"])
        with writer.as_default(step=step):
            tf.summary.scalar("val/miou", miou)
            tf.summary.scalar("val/pixel_accuracy", scores["pixel_accuracy"])
            for name, iou in scores["per_class_iou"].items():
                if iou is not None:
                    tf.summary.scalar(f"val_iou/{name}", iou)
        previous = self.history[-1]["step"] if self.history else 0
        self.history.append({"step": step, "train_loss": loss, "val_miou": miou,
                             "skipped_steps": self.nonfinite.count(previous, step)})
        if miou > float(self.best_miou.numpy()):
            self.best_miou.assign(miou)
            self.best_step.assign(step)
            save_model_atomic(self.model, os.path.join(self.run_dir, "best.keras"))
        return scores

    # Main loop --------------------------------------------------------------------
    def run(self):
        """Trains (or resumes); returns the summary dict written to train_summary.json.

        If interrupted (SIGINT, SIGTERM or --stop_after_iterations) it checkpoints and
        returns a summary with status "interrupted"; the same command resumes.
        A second process on the same run directory is refused (`RunLock`).
        """
        c = self.config
        # Threads and the strategy's devices exist only before TensorFlow starts.
        configure_tensorflow(c.seed, c.deterministic, c.threads)
        self.dist = make_distribution(c.strategy, c.cpu_devices, c.collective_timeout)
        logging.info("%s", self.dist.describe())
        if self.dist.distributed and (c.skip_nonfinite_steps
                                      or c.precision == "mixed_float16"):
            raise TrainError("--skip_nonfinite_steps and --precision=mixed_float16 (loss "
                             "scaling) are not supported with several replicas; use "
                             "--precision=mixed_bfloat16 or float32, without "
                             "--skip_nonfinite_steps, or run on one device")
        with RunLock(lock_directory(self.run_dir, self.dist), "bin/train", TrainError,
                     min_free_mib=self.config.min_free_mib):
            return self._run()

    def _run(self):
        from tf_nas_seg.data import batch_stream

        c = self.config
        if self.dist.is_chief:
            check_or_write_config(self.run_dir, c.to_json(), RESUMABLE_CHANGES, TrainError,
                                  defaults=TrainConfig().to_json())
        self._configure_tensorflow()  # the precision policy; run() did the rest
        try:
            self._load_data()
            self._load_class_weights()
            self._build_model()
        finally:
            keras.mixed_precision.set_global_policy("float32")
        resumed = self.state.restore()
        check_workers_agree(self.dist, {k: v for k, v in c.to_json().items()
                                        if k not in RESUMABLE_CHANGES},
                            int(self.state.step.numpy()))
        self.nonfinite.resume(int(self.state.step.numpy()))
        history_path = os.path.join(self.run_dir, "history.json")
        self.history = []
        if resumed and self.dist.is_chief:
            self.history = read_json(history_path, TrainError,
                                     "delete it; the checkpoint holds the run") or []
        start = int(self.state.step.numpy())
        self.history = [h for h in self.history if h["step"] <= start]
        logging.info("training %s: %d iterations from %d, batch %d of %s, %d train / %d val "
                     "images", self.model.name, c.iterations, start, c.batch_size,
                     self.input_hw, len(self.train_src), len(self.val_src))
        train_step = self.train_step_function = self._make_train_step()
        writer = (tf.summary.create_file_writer(os.path.join(self.run_dir, "tensorboard"))
                  if self.dist.is_chief else tf.summary.create_noop_writer())
        stream = batch_stream(self.train_src, batch_size=c.batch_size, seed=c.seed,
                              start_batch=start, augment=self.augment,
                              num_batches=c.iterations - start,
                              strategy=self.dist.strategy)
        stop_at = c.iterations
        if c.stop_after_iterations:
            stop_at = min(stop_at, start + c.stop_after_iterations)
        bar = ProgressBar(c.iterations, stateful_metrics=["loss", "lr"], unit_name="it")
        bar.update(start)
        step = start
        # a dead peer worker may surface in the step, a checkpoint or the input
        reported = worker_failures_reported(self.dist, lambda: int(self.state.step.numpy()))
        with StopSignals() as signals, reported:
            while step < stop_at and signals.received is None:
                images, labels = next(stream)
                self.nonfinite.before_step()
                loss = float(train_step(images, labels))
                step += 1
                counted = self.nonfinite.check(
                    step, {"loss": loss}, int(self.state.step.numpy()),
                    {"loss": "--lr (or use --precision=float32)"})
                if counted:  # a skipped step's loss stays out of the history's mean
                    self.loss_sum.assign_add(loss)
                    self.loss_count.assign_add(1)
                lr = float(keras.ops.convert_to_numpy(self.optimizer.learning_rate))
                if counted:
                    bar.update(step, [("loss", loss), ("lr", lr)])
                if counted and step % c.log_every == 0:
                    with writer.as_default(step=step):
                        tf.summary.scalar("train/loss", loss)
                        tf.summary.scalar("train/learning_rate", lr)
                evaluate_now = c.eval_every and step % c.eval_every == 0 and step < c.iterations
                if evaluate_now and self.dist.is_chief:
                    self._record_eval(step, self._mean_loss(), writer)
                    self._write_history()
                if evaluate_now or step % c.checkpoint_every == 0:
                    self._save(step)
        writer.flush()
        if not self.dist.is_chief:
            return {"status": "completed" if step == c.iterations else "interrupted",
                    "iterations": step, "worker": list(self.dist.task)}
        if step < c.iterations:
            self.state.save(step)
            self._write_history()
            summary = {"status": "interrupted", "iterations_done": step,
                       "iterations": c.iterations,
                       "skipped_nonfinite_steps": self.nonfinite.summary(),
                       "resume": "rerun the same command to continue",
                       "class_weights": self._class_weights_summary()}
            write_json_atomic(os.path.join(self.run_dir, "train_summary.json"), summary)
            return summary
        return self._finish(step, self._mean_loss(), writer)

    def _save(self, step):
        """Checkpoints (the chief only: the other workers hold the same variables)."""
        if self.dist.is_chief:
            self.state.save(step)

    def _mean_loss(self):
        """Mean training loss since the last evaluation (None if no step ran); resets."""
        count = int(self.loss_count.numpy())
        mean = float(self.loss_sum.numpy()) / count if count else None
        self.loss_sum.assign(0.0)
        self.loss_count.assign(0)
        return mean

    def _write_history(self):
        write_json_atomic(os.path.join(self.run_dir, "history.json"), self.history)
        if self.history:
            draw_training_curves(self.history,
                                 os.path.join(self.run_dir, "plots", "training.png"))

    def _finish(self, step, loss, writer):
        c = self.config
        if self.history and self.history[-1]["step"] == step:  # rerun of a finished run
            previous = self.history.pop()
            loss = previous["train_loss"] if loss is None else loss
        final = self._record_eval(step, loss, writer, overlays=c.overlays)
        self.state.save(step)
        self._write_history()
        final_path = save_model_atomic(self.model, os.path.join(self.run_dir, "model.keras"))
        with writer.as_default(step=step):
            for path in final["overlays"]:
                png = tf.io.decode_png(tf.io.read_file(path), channels=3)
                tf.summary.image(f"predictions/{os.path.basename(path)}", png[None])
        writer.flush()
        h, w = self.input_hw
        summary = {
            "status": "completed",
            "network": self.model.name,
            "genotype": os.path.abspath(c.genotype) if c.genotype else None,
            "peer": c.peer or None,
            "iterations": step,
            "wall_time_seconds": round(self.state.elapsed_seconds(), 2),
            "skipped_nonfinite_steps": self.nonfinite.summary(),
            "skipped_bad_examples": self.skipped_examples,
            "model": final_path,
            "best_model": os.path.join(self.run_dir, "best.keras"),
            "best_val_miou": float(self.best_miou.numpy()),
            "best_step": int(self.best_step.numpy()),
            "final_val": {k: final[k] for k in ("miou", "pixel_accuracy", "per_class_iou",
                                                "num_images")},
            "class_weights": self._class_weights_summary(),
            "params": count_trainable_params(self.model),
            "macs": {"train_size": [h, w], "value": count_model_macs(self.model, h, w)},
            "dataset": {"name": self.info.name, "num_classes": self.info.num_classes,
                        "class_names": list(self.info.class_names),
                        "train_split": c.train_split, "train_images": len(self.train_src),
                        "val_split": c.val_split, "val_images": final["num_images"]},
            "environment": {"tensorflow": tf.__version__, "keras": keras.__version__,
                            "python": platform.python_version(),
                            "machine": platform.machine(), "cpus": os.cpu_count(),
                            "precision": c.precision},
            "distribution": {"strategy": self.dist.kind,
                             "replicas": self.dist.num_replicas,
                             "workers": self.dist.num_workers,
                             "batch_norm": (c.batch_norm if self.dist.distributed
                                            else "one replica")},
        }
        write_json_atomic(os.path.join(self.run_dir, "train_summary.json"), summary)
        return summary


def run_training(config):
    """Runs or resumes the training `config` describes; returns its summary dict."""
    return Trainer(config).run()
