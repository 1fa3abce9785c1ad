"""Runs an architecture search into a run directory, resumably and reproducibly."""

import contextlib
import json
import math
import os
import platform
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tf_nas_seg.search.cost_model import UNITS
from tf_nas_seg.search.methods import SearchError, get_method
from tf_nas_seg.search.search_config import RESUMABLE_CHANGES, SearchConfig
from tf_nas_seg.ops.batch_norm import synchronize_batch_norms
from tf_nas_seg.utils.distribute import (Distribution, ReducedAdam, check_workers_agree,
                                        lock_directory, make_distribution,
                                        worker_failures_reported)
from tf_nas_seg.utils.background import OneAtATime
from tf_nas_seg.utils.json_files import read_json
from tf_nas_seg.utils.fused_sgd import FusedSGD
from tf_nas_seg.utils.run_state import (NonfiniteSteps, RunLock, StopSignals,
                                       VariableCheckpoint, check_or_write_config,
                                       configure_tensorflow, graph_optimizer,
                                       record_skipped_examples)
from tf_nas_seg.space.genotype import write_json_atomic
from tf_nas_seg.space.temperature_schedule import TemperatureSchedule
from tf_nas_seg.viz.figures import draw_arch_weights, draw_cell, draw_search_progress
from tf_nas_seg.utils.progress import ProgressBar
from tf_nas_seg.utils.timing import gc_paused


class SearchRunner:
    """Owns one search: data, supernet, optimizers, checkpoints, logs and outputs.

    Everything the run needs to continue is a function of the global iteration count
    and the checkpointed variables (weights, logits, BN statistics, optimizer slots,
    Gumbel noise state, the epoch's metric accumulators): the data streams of every
    epoch are pure functions of (seed, epoch), so a resumed run sees the same batches
    it would have seen uninterrupted.

    With several replicas (`--strategy`, `utils/distribute.py`) the step runs in
    `strategy.run` on each replica's share of the global batch of both splits; only the
    chief writes the run directory, the other workers compute in lockstep.

    Args:
        config: A SearchConfig.
    """

    def __init__(self, config: SearchConfig):
        if not config.run_dir:
            raise SearchError("--run_dir is required: the directory where the search "
                              "writes its checkpoints, logs and genotype")
        self.config = config
        self.method = get_method(config.method)
        self.run_dir = os.path.abspath(config.run_dir)
        # run() sets the configured one (it must exist before any TF op); until then,
        # one device.
        self.dist = Distribution(tf.distribute.get_strategy(), "one_device")
        self._figures = None  # run() sets the drawing thread (OneAtATime)
        self._epoch_figures = None  # the last epoch's figures, until _start_figures

    # Set-up -----------------------------------------------------------------------
    def _check_or_write_config(self):
        if not self.dist.is_chief:
            return  # the chief checks it; check_workers_agree compares the workers
        check_or_write_config(self.run_dir, self.config.to_json(), RESUMABLE_CHANGES,
                              SearchError, defaults=SearchConfig().to_json())

    def _configure_tensorflow(self):
        configure_tensorflow(self.config.seed, self.config.deterministic, self.config.threads)

    def _load_data(self):
        from tf_nas_seg import data

        c = self.config
        if c.dataset == "synthetic":
            source = data.make_street_scenes(num_images=c.synthetic_images,
                                             height=c.synthetic_height,
                                             width=c.synthetic_width,
                                             num_classes=c.synthetic_classes, seed=c.seed)
        else:
            # The official val split is never used by the search.
            source = data.open_split(
                c.dataset, c.data_dir, "train", tfds_manual_dir=c.tfds_manual_dir,
                image_size=(c.resize_height, c.resize_width) if c.resize_height else None,
                tfds_max_gib=c.tfds_max_gib, skip_bad=c.skip_bad_examples)
        self.skipped_examples = record_skipped_examples(
            self.run_dir, {"train": getattr(source, "skipped", ())})
        weights_src, arch_src, record = data.search_split(source, seed=c.seed)
        self.dist.per_replica_batch(c.batch_size)
        for name, src in (("weights", weights_src), ("architecture", arch_src)):
            if len(src) < c.batch_size:
                raise SearchError(
                    f"the {name} split has {len(src)} images, fewer than --batch_size="
                    f"{c.batch_size}; lower --batch_size or use more data")
        self.info = source.info
        self.weights_src = weights_src.cache_in_memory()
        self.arch_src = arch_src.cache_in_memory()
        if self.dist.is_chief:
            write_json_atomic(os.path.join(self.run_dir, "search_split.json"), record)
        self.augment = c.augment_config()
        crop, resize = self.augment.crop_size, self.augment.resize
        if crop:
            self.input_hw = crop
        elif resize:
            self.input_hw = resize
        else:
            size = weights_src.image_size
            if size is None:
                raise SearchError("images of this data set differ in size: set "
                                  "--crop_height/--crop_width or --resize_height/"
                                  "--resize_width so batches have one shape")
            self.input_hw = tuple(size)

    def _build_supernet(self):
        self.layout = self.method.layout(self.config)
        return self.method.build_supernet(self.config, self.layout, self.info)

    def _build_model(self):
        with self.dist.strategy.scope(), gc_paused():
            self._build_model_in_scope()
        synchronize_batch_norms(self.model, self.config.batch_norm == "sync")

    def _build_model_in_scope(self):
        c = self.config
        model = self._build_supernet()
        h, w = self.input_hw
        model.build((1, h, w, 3))  # every weight, by one eager forward pass
        model.set_recompute_edges(c.recompute_edges)
        self.target_hw = (c.target_height or h, c.target_width or w)
        cost_model = None
        if c.cost != "none":
            cost_model = self.method.cost_model(model, c, *self.target_hw)
        if c.lr_schedule == "cosine":
            schedule = keras.optimizers.schedules.CosineDecay(
                c.lr, decay_steps=c.iterations, alpha=c.lr_min / c.lr if c.lr else 0.0)
        else:
            schedule = keras.optimizers.schedules.PolynomialDecay(
                c.lr, decay_steps=c.iterations, end_learning_rate=0.0, power=c.lr_power)
        model.configure_search(
            weight_optimizer=FusedSGD(schedule, momentum=c.momentum, name="weight_sgd"),
            arch_optimizer=ReducedAdam(c.arch_lr, beta_1=c.arch_beta1,
                                       beta_2=c.arch_beta2, name="arch_adam"),
            cost_model=cost_model, cost_lambda=c.cost_lambda, weight_decay=c.weight_decay,
            arch_weight_decay=c.arch_weight_decay, grad_clip_norm=c.grad_clip,
            second_order=c.second_order, cost_form=c.cost_form,
            cost_exponent=c.cost_exponent, cost_target=c.cost_target,
            bn_running_stats=c.bn_running_stats)
        self.temperature = TemperatureSchedule(c.temperature_start, c.temperature_end,
                                               c.temperature_schedule)
        self.model = model
        self.cost_unit = UNITS[c.cost][0] if c.cost != "none" else ""

    def _build_checkpoint(self):
        m = self.model
        # The search's variables in construction order, then the optimizers' slots: the
        # same checkpoint layout bin/train writes (utils/run_state.VariableCheckpoint).
        variables = (list(m.variables) + list(m.weight_optimizer.variables)
                     + list(m.arch_optimizer.variables))
        # Batch-norm moving statistics that the search neither reads nor updates (the
        # default, --nobn_running_stats) are not saved: in the CAS demo supernet they
        # are 2,222 of the 5,376 variables, and each costs a read at every checkpoint.
        # The epoch's metric accumulators are saved too: a run resumed mid-epoch then
        # reports the epoch's means over all its steps, as an uninterrupted run does.
        self.state = VariableCheckpoint(variables, os.path.join(self.run_dir, "checkpoints"),
                                        max_to_keep=3, error_cls=SearchError, optional={
                                            f"metric{i:03d}": v for i, v in
                                            enumerate(m.metrics_variables)},
                                        unsaved=m.unused_variables())
        self.global_step = self.state.step
        # A skipped step also leaves the epoch's metric accumulators as they were.
        self.nonfinite = NonfiniteSteps(self.run_dir, self.state.saved_variables
                                        + list(m.metrics_variables),
                                        self.config.skip_nonfinite_steps,
                                        self.config.max_skipped_steps, SearchError)

    # Data streams -----------------------------------------------------------------
    def _stream(self, source, seed, start_batch, num_batches):
        """Batches `start_batch ..` over consecutive epochs of `source`, one pipeline."""
        from tf_nas_seg.data import batch_stream

        return batch_stream(source, batch_size=self.config.batch_size, seed=seed,
                            start_batch=start_batch, augment=self.augment,
                            num_batches=num_batches, strategy=self.dist.strategy)

    # Outputs ----------------------------------------------------------------------
    def _derived_cost(self, genotype):
        return self.method.derived_cost(genotype, self.layout, self.info.num_classes,
                                        *self.target_hw)

    def _write_epoch_outputs(self, epoch, metrics, writer):
        """Writes the epoch's genotype, history and scalars, and keeps its figures for
        `_start_figures` to hand to the drawing thread after the checkpoint."""
        genotype = self.model.derive()
        genotype.save(os.path.join(self.run_dir, "genotypes", f"epoch_{epoch:04d}.json"))
        plots = os.path.join(self.run_dir, "plots")
        panels = {k: (np.asarray(p), list(o), list(e))
                  for k, (p, o, e) in self.model.arch_panels().items()}
        # The op probabilities behind that figure, so bin/plot can redraw it from files.
        write_json_atomic(os.path.join(plots, "arch_weights.json"), {
            "epoch": epoch, "panels": {k: {"probabilities": p.tolist(), "ops": o,
                                           "edges": e}
                                       for k, (p, o, e) in panels.items()}})
        metrics = {**metrics, **self.model.epoch_metrics()}
        self.history = [h for h in self.history if h["epoch"] < epoch] + [
            dict(epoch=epoch, step=int(self.global_step), **metrics)]
        write_json_atomic(os.path.join(self.run_dir, "history.json"), self.history)
        step = int(self.global_step)
        with writer.as_default(step=step):
            for name, value in metrics.items():
                tf.summary.scalar(f"epoch/{name}", value)
            for cell_type, (probs, ops_, labels) in panels.items():
                for e, label in enumerate(labels):
                    for o, op in enumerate(ops_):
                        tf.summary.scalar(f"alpha_{cell_type}/{label}/{op}", probs[e, o])
            tf.summary.text("genotype", json.dumps(genotype.to_json()))
        writer.flush()
        cells = {t: genotype.cell(t) for t in self.model.cell_logits()}
        history = [dict(h) for h in self.history]
        # drawn after the epoch's checkpoint (`_start_figures`): the checkpoint is
        # Python work too, and drawing beside it slowed it more than it saved
        self._epoch_figures = lambda: self._draw_epoch_figures(epoch, cells, panels,
                                                               history, writer, step)
        return genotype

    def _start_figures(self):
        """Hands the epoch's figures to the drawing thread (they overlap the next epoch's
        steps, which release the GIL in their compiled function)."""
        figures, self._epoch_figures = self._epoch_figures, None
        if figures is not None:
            self._figures.submit(figures)

    def _draw_epoch_figures(self, epoch, cells, panels, history, writer, step):
        """The epoch's figures (cells, op probabilities, progress, the method's) as PNG
        files and TensorBoard images. Runs on the drawing thread, from copies."""
        plots = os.path.join(self.run_dir, "plots")
        images = {}
        for cell_type, cell in cells.items():
            images[cell_type] = draw_cell(cell, os.path.join(plots, f"cell_{cell_type}.png"),
                                          title=f"{cell_type} cell, epoch {epoch}")
        images["arch_weights"] = draw_arch_weights(
            panels, os.path.join(plots, "arch_weights.png"))
        images.update(self.method.epoch_figures(history, plots, self.layout, self.config))
        images["progress"] = draw_search_progress(
            history, os.path.join(plots, "search_progress.png"), self.cost_unit)
        with writer.as_default(step=step):
            for name, path in images.items():
                png = tf.io.decode_png(tf.io.read_file(path), channels=3)
                tf.summary.image(f"plots/{name}", png[None], max_outputs=1)
        writer.flush()

    # Main loop --------------------------------------------------------------------
    def run(self):
        """Runs (or resumes) the search; returns the summary dict it writes.

        If interrupted (SIGINT, SIGTERM or --stop_after_iterations) it checkpoints and
        returns a summary with status "interrupted"; the same command resumes.
        Grappler is set by --graph_optimizer for the run and restored after it.
        """
        c = self.config
        # Threads and the strategy's devices exist only before TensorFlow starts.
        self._configure_tensorflow()
        self.dist = make_distribution(c.strategy, c.cpu_devices, c.collective_timeout)
        logging.info("%s", self.dist.describe())
        if self.dist.distributed and c.recompute_edges:
            raise SearchError("--recompute_edges is not supported with several replicas "
                              "yet (each replica's recomputed pass repeats the synchronised "
                              "batch norms' all-reduces; untested, and its trace took over "
                              "10 minutes at the demo size on 2 logical CPUs); run without "
                              "it, or on one device")
        if self.dist.distributed and (c.skip_nonfinite_steps or c.second_order):
            raise SearchError("--skip_nonfinite_steps and --second_order are not supported "
                              "with several replicas yet (the snapshot does not restore "
                              "the replicas' metric accumulators; the unrolled step is "
                              "untested there); run without them, or on one device")
        with RunLock(lock_directory(self.run_dir, self.dist), "bin/search", SearchError,
                     min_free_mib=self.config.min_free_mib), \
                graph_optimizer(self.config.graph_optimizer) as applied, \
                OneAtATime("figures") as self._figures:
            logging.info("graph optimizer (Grappler): %s (--graph_optimizer=%s)", applied,
                         self.config.graph_optimizer)
            return self._run()

    def _run(self):
        c = self.config
        os.makedirs(self.run_dir, exist_ok=True)
        self._check_or_write_config()
        self._load_data()
        self._build_model()
        self._build_checkpoint()
        resumed = self.state.restore()
        check_workers_agree(self.dist, {k: v for k, v in c.to_json().items()
                                        if k not in RESUMABLE_CHANGES},
                            int(self.global_step))
        self.nonfinite.resume(int(self.global_step))
        history_path = os.path.join(self.run_dir, "history.json")
        self.history = []
        if resumed and self.dist.is_chief:
            self.history = read_json(history_path, SearchError,
                                     "delete it; the checkpoint holds the run") or []
        model, bs = self.model, c.batch_size
        per_epoch = len(self.weights_src) // bs
        total_epochs = math.ceil(c.iterations / per_epoch)
        start = int(self.global_step)
        logging.info("search: %d iterations, %d per epoch (%d epochs), input %s, %d + %d "
                     "images (weights + architecture)", c.iterations, per_epoch,
                     total_epochs, self.input_hw, len(self.weights_src), len(self.arch_src))

        # NOTE: two functions, not one with a tf.cond: with the cond the first call of
        # the step took several times longer to optimise. The weights-only function is
        # traced only if a warm-up is configured (each trace of the supernet costs
        # about a minute on 2 cores).
        # One step for one device and many: strategy.run on each replica's share (the
        # default strategy calls it directly), then the metrics' global values.
        strategy = self.dist.strategy

        def step_function(update):
            def step(w, a):
                strategy.run(lambda w, a: model.train_step((w, a), update_arch=update),
                             args=(w, a))
                return {m.name: m.result() for m in model.metrics}
            # NOTE: autograph off: the step has no tensor-dependent Python control flow,
            # and converting each of its thousands of calls cost seconds of the trace.
            return tf.function(step, autograph=False)

        steps = {update: step_function(update) for update in (True, False)}
        self.step_functions = steps  # tests count their traces
        writer = (tf.summary.create_file_writer(os.path.join(self.run_dir, "tensorboard"))
                  if self.dist.is_chief else tf.summary.create_noop_writer())
        weights_stream = self._stream(self.weights_src, c.seed, start, c.iterations - start)
        arch_start = max(0, start - c.arch_start_iteration)
        arch_stream = self._stream(self.arch_src, c.seed + 1, arch_start,
                                   max(0, c.iterations - c.arch_start_iteration - arch_start))
        stop_at = c.iterations
        if c.stop_after_iterations:
            stop_at = min(stop_at, start + c.stop_after_iterations)
        step = start
        traced = set()
        # a dead peer worker may surface in the step, a checkpoint or the input
        reported = worker_failures_reported(self.dist, lambda: int(self.state.step.numpy()))
        with StopSignals() as signals, reported:
            while step < stop_at and signals.received is None:
                epoch = step // per_epoch
                epoch_end = min((epoch + 1) * per_epoch, c.iterations)
                fresh = step == epoch * per_epoch
                if fresh:  # mid-epoch (resumed), the checkpoint's accumulators go on
                    for metric in model.metrics:
                        metric.reset_state()
                self._start_epoch(epoch, total_epochs, fresh=fresh)
                bar = ProgressBar(epoch_end - epoch * per_epoch,
                                  stateful_metrics=["w_loss", "a_ce", "a_miou", "cost"],
                                  unit_name="it")
                bar.update(step - epoch * per_epoch)
                logging.info("epoch %d/%d", epoch + 1, total_epochs)
                logs, step_times = {}, []
                while step < min(epoch_end, stop_at) and signals.received is None:
                    tick = time.perf_counter()
                    w_batch = next(weights_stream)
                    update_arch = step >= c.arch_start_iteration
                    a_batch = next(arch_stream) if update_arch else w_batch
                    self.nonfinite.before_step()
                    # the first call of each step function traces and optimises it
                    first = update_arch not in traced
                    with gc_paused() if first else contextlib.nullcontext():
                        logs = steps[update_arch](w_batch, a_batch)
                    traced.add(update_arch)
                    step += 1
                    values = {k: float(v) for k, v in logs.items()}
                    if not self._check_finite(values, step, update_arch):
                        # skipped: the metrics are the epoch's means before this step
                        logs = {m.name: m.result() for m in model.metrics}
                        values = {k: float(v) for k, v in logs.items()}
                    self.global_step.assign(step)
                    step_times.append(time.perf_counter() - tick)
                    bar.update(step - epoch * per_epoch, [
                        ("w_loss", values["weight_loss"]), ("a_ce", values["arch_ce"]),
                        ("a_miou", values["arch_miou"]), ("cost", values["expected_cost"])])
                    if step % c.log_every == 0:
                        with writer.as_default(step=step):
                            for name, value in values.items():
                                tf.summary.scalar(f"step/{name}", value)
                            tf.summary.scalar("step/learning_rate", float(
                                model.weight_optimizer.learning_rate))
                    # NOTE: not at the epoch's last step: its checkpoint follows the
                    # epoch's outputs, so that a run killed in between redoes them. Saved
                    # before them, a kill there lost the epoch's history entry for good.
                    if (c.checkpoint_every and step % c.checkpoint_every == 0
                            and step != epoch_end):
                        self._save(step)
                if step == epoch_end:
                    metrics = {k: float(v) for k, v in logs.items()}
                    # Wall time of the epoch's first and median iteration (data, step
                    # and logging): a stall at epoch starts shows as first >> median.
                    metrics["first_step_seconds"] = step_times[0]
                    metrics["median_step_seconds"] = float(np.median(step_times))
                    metrics["skipped_steps"] = self.nonfinite.count(epoch * per_epoch,
                                                                    epoch_end)
                    genotype = (self._write_epoch_outputs(epoch, metrics, writer)
                                if self.dist.is_chief else model.derive())
                    self._save(step)
                    self._start_figures()
                    logging.info("epoch %d: %s genotype %s", epoch + 1, metrics,
                                 json.dumps(genotype.to_json()["cells"]))
        self._figures.wait()  # the last epoch's figures, before the summary says done
        if step < c.iterations:
            self._save(step)
            summary = {"status": "interrupted", "iterations_done": step,
                       "iterations": c.iterations,
                       "skipped_nonfinite_steps": self.nonfinite.summary(),
                       "resume": "rerun the same command to continue"}
            if self.dist.is_chief:
                write_json_atomic(os.path.join(self.run_dir, "search_summary.json"),
                                  summary)
            return summary
        return self._finish()

    def _save(self, step):
        """Checkpoints into the run directory (the chief).

        NOTE: the checkpoint holds the epoch's metric accumulators, which are summed
        over the replicas when read (sync-on-read variables): across workers that read
        is a collective every worker must join. So the other workers write the same
        checkpoint in lockstep into a scratch directory of their own, removed at once
        (what TensorFlow's multi-worker guide does); only the chief's is kept.
        """
        if self.dist.is_chief:
            self.state.save(step)
        elif self.dist.num_workers > 1:
            import shutil

            scratch = os.path.join(lock_directory(self.run_dir, self.dist), "scratch")
            self.state.step.assign(step)
            self.state.checkpoint.write(os.path.join(scratch, "ckpt"))
            shutil.rmtree(scratch, ignore_errors=True)

    def _check_finite(self, values, step, update_arch):
        """False when the step's weight loss, expected cost or (when the architecture is
        updated) architecture loss is NaN or infinite and the step was skipped
        (--skip_nonfinite_steps); without that setting such a step stops the search,
        keeping the last checkpoint (`NonfiniteSteps`)."""
        names = ["weight_loss", "expected_cost"] + (["arch_loss"] if update_arch else [])
        weights = "--lr (the weights' learning rate) or --grad_clip"
        arch = "--arch_lr, or --cost_lambda if the cost term dominates"
        return self.nonfinite.check(step, {n: values[n] for n in names},
                                    int(self.state.step.numpy()),
                                    {"weight_loss": weights, "expected_cost": arch,
                                     "arch_loss": arch})

    def _start_epoch(self, epoch, total_epochs, fresh):
        """Per-epoch schedules: Gumbel temperature, beta warm-up, depth record."""
        c = self.config
        model = self.model
        if model.stochastic_relaxation():
            model.set_temperature(self.temperature(epoch, total_epochs))
        self.method.start_epoch(model, c, epoch, fresh)

    def _finish(self):
        genotype = self.model.derive()
        if not self.dist.is_chief:
            return {"status": "completed", "iterations": int(self.global_step),
                    "genotype": genotype.to_json(), "worker": list(self.dist.task)}
        genotype.save(os.path.join(self.run_dir, "genotype.json"))
        last = self.history[-1] if self.history else {}
        probs = {v.name: keras.ops.convert_to_numpy(keras.ops.softmax(v, axis=-1))
                 for v in self.model.arch_variables}
        cost_model = self.model.cost_model
        summary = {
            "status": "completed",
            "method": self.config.method,
            "stage": self.method.stage(self.config),
            "iterations": int(self.global_step),
            "epochs": len(self.history),
            "wall_time_seconds": round(self.state.elapsed_seconds(), 2),
            "skipped_nonfinite_steps": self.nonfinite.summary(),
            "skipped_bad_examples": self.skipped_examples,
            "final": {k: last.get(k) for k in ("weight_loss", "arch_loss", "arch_ce",
                                               "arch_miou")},
            "cost": None if cost_model is None else {
                "kind": cost_model.kind, "mode": cost_model.mode, "unit": cost_model.unit,
                "lambda": self.config.cost_lambda, "form": self.config.cost_form,
                "target": self.config.cost_target or None,
                "expected": cost_model.numpy(probs)},
            "derived": self._derived_cost(genotype),
            "genotype": genotype.to_json(),
            **self.method.summary(self.model, genotype, self.layout),
            "dataset": {"name": self.info.name, "num_classes": self.info.num_classes,
                        "weights_images": len(self.weights_src),
                        "architecture_images": len(self.arch_src),
                        "input_size": list(self.input_hw)},
            "distribution": {"strategy": self.dist.kind,
                             "replicas": self.dist.num_replicas,
                             "workers": self.dist.num_workers,
                             "batch_norm": (self.config.batch_norm
                                            if self.dist.distributed else "one replica")},
            "environment": {"tensorflow": tf.__version__, "keras": keras.__version__,
                            "python": platform.python_version(),
                            "machine": platform.machine(), "cpus": os.cpu_count(),
                            "intra_op_threads":
                                tf.config.threading.get_intra_op_parallelism_threads()},
        }
        write_json_atomic(os.path.join(self.run_dir, "search_summary.json"), summary)
        return summary

def run_search(config):
    """Runs or resumes the search `config` describes; returns its summary dict."""
    return SearchRunner(config).run()
