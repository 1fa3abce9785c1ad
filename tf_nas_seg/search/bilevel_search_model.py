"""The bilevel search step shared by every supernet (CAS, AutoRTNet, DARTS)."""

import abc

import keras
from keras import ops

from tf_nas_seg.errors import ConfigError
from tf_nas_seg.ops.op_set import get_op_set
from tf_nas_seg.utils.distribute import (ReducedGradients, cross_replica_sum,
                                        num_replicas_in_sync)
from tf_nas_seg.utils.graph_constants import graph_constant
from tf_nas_seg.utils.numeric import softmax
from tf_nas_seg.losses import masked_cross_entropy, masked_cross_entropy_terms


class BilevelSearchModel(keras.Model, metaclass=abc.ABCMeta):
    """A supernet whose `train_step` alternates an architecture and a weight update.

    Subclasses create their architecture logits with `add_arch_logits` and implement
    `call` and `expected_cost`. Weight variables and architecture variables are disjoint
    lists, each updated only by its own optimizer:

    - architecture step (DARTS order: first) on a batch of the architecture split:
      minimise L_val + cost_lambda * cost (or FBNet's L_val * cost_lambda *
      log(cost) ** cost_exponent, or the budget form L_val + cost_lambda *
      max(0, cost - cost_target)) with `arch_optimizer` (Adam); first order
      (xi = 0) by default, or second order: the unrolled DARTS gradient with a
      finite-difference Hessian-vector product (`second_order=True`);
    - weight step on a batch of the weights split: minimise L_train with
      `weight_optimizer` (SGD with momentum and a poly schedule), coupled L2 weight
      decay as PyTorch's SGD applies it (the papers' settings), gradient clipping.

    Logits added with a `group` can be frozen as a group (`set_arch_group_trainable`):
    their update is multiplied by a non-trainable 0/1 variable, so freezing needs no
    retrace and a checkpoint restores it (AutoRTNet freezes its exit logits during
    warm-up).

    Call `configure_search` before training.

    Distributed (`tf.distribute`, the step run in `strategy.run` on several replicas):
    each replica computes its share of the global batch's mean cross-entropy (its sum
    over pixels divided by the global batch's labelled-pixel count) and its gradients;
    `_loss_and_grads` sums both over the replicas, so everything after it (cost term,
    decay, clipping, both optimizers' updates, the Hessian-vector product) works on
    the global values and is the same on every replica. The optimizers must then be
    `ReducedGradients` ones (which do not sum again).
    """

    COST_FORMS = ("additive", "fbnet", "budget", "target")

    # Height and width of the zeros `build` runs when the input shape leaves them open.
    BUILD_SIZE = 64

    def __init__(self, num_classes, ignore_label=255, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.ignore_label = int(ignore_label)
        self._arch_logits = []
        self._arch_group_of = {}
        self._arch_group_scale = {}
        self.search_configured = False
        self.cost_model = None
        self._grad_fn = None
        self.weight_loss_tracker = keras.metrics.Mean(name="weight_loss")
        self.arch_loss_tracker = keras.metrics.Mean(name="arch_loss")
        self.arch_ce_tracker = keras.metrics.Mean(name="arch_ce")
        self.cost_tracker = keras.metrics.Mean(name="expected_cost")
        self.arch_miou = keras.metrics.MeanIoU(num_classes=self.num_classes,
                                               ignore_class=self.ignore_label,
                                               sparse_y_pred=False, name="arch_miou")

    def build(self, input_shape):
        """Creates every weight with one eager forward pass on zeros of `input_shape`
        (batch 1; open height and width: BUILD_SIZE), inference mode, nothing updated.

        NOTE: without a `build` of its own, Keras builds a subclassed model by tracing
        `call` on symbolic inputs (`compute_output_spec`, where every weight's
        initializer is also traced) and then running it: for a supernet of thousands
        of layers that trace costs more than the forward pass itself (the CAS demo
        supernet: 13.6 s to build, 6.1 s with this; the same weights, since the
        initializers run in the same order). Call `build((1, height, width, 3))`
        rather than the model on zeros, which would run the pass twice.
        """
        import tensorflow as tf

        shape = [1] + [self.BUILD_SIZE if d is None else int(d) for d in input_shape[1:]]
        with tf.init_scope():
            self.call(tf.zeros(shape, "float32"), training=False)
            _drop_eager_kernels(tf)

    # Architecture variables -------------------------------------------------------

    def add_arch_logits(self, name, shape, seed, group=None):
        """Creates one logit tensor shared by all cells of a type (DARTS init 1e-3 N(0,1)).

        Args:
            name: Variable name (the key of its probabilities and cost matrix).
            shape: [rows, choices].
            seed: Initialisation seed.
            group: Optional name of a group that `set_arch_group_trainable` can freeze.
        """
        variable = self.add_weight(
            name=name, shape=shape, trainable=True,
            initializer=keras.initializers.RandomNormal(stddev=1e-3, seed=seed))
        self._arch_logits.append(variable)
        if group is not None:
            if group not in self._arch_group_scale:
                self._arch_group_scale[group] = self.add_weight(
                    name=f"{group}_enabled", shape=(), trainable=False,
                    initializer=keras.initializers.Constant(1.0))
            self._arch_group_of[id(variable)] = group
        return variable

    def set_arch_group_trainable(self, group, trainable):
        """Freezes (False) or releases (True) the logits added with `group`."""
        if group not in self._arch_group_scale:
            raise ValueError(f"no architecture logits in group {group!r}; groups: "
                             f"{sorted(self._arch_group_scale)}")
        self._arch_group_scale[group].assign(1.0 if trainable else 0.0)

    def arch_group_trainable(self, group):
        return bool(float(keras.ops.convert_to_numpy(self._arch_group_scale[group])) > 0)

    def set_recompute_edges(self, recompute):
        """Recomputes (True) every search edge's candidate ops in the backward pass
        instead of keeping their activations (`MixedOp.recompute`): less memory, one
        more forward pass of the edges per gradient. Set before the step is traced."""
        from tf_nas_seg.space.mixed_op import MixedOp

        edges = [layer for layer in self._flatten_layers(include_self=False)
                 if isinstance(layer, MixedOp)]
        for layer in edges:
            layer.recompute = bool(recompute)
        return len(edges)

    def unused_variables(self):
        """Variables the search steps neither read nor write: the moving statistics of
        batch norms that normalise with batch statistics (`configure_search`'s
        bn_running_stats=False, the default). A checkpoint need not hold them."""
        from tf_nas_seg.ops.batch_norm import BatchNorm

        return [v for layer in self._flatten_layers(include_self=False)
                if isinstance(layer, BatchNorm) and not layer.track_running_stats
                and layer.built
                for v in (layer.moving_mean, layer.moving_variance)]

    @property
    def arch_variables(self):
        """The architecture logits (alpha, and beta for AutoRTNet)."""
        return list(self._arch_logits)

    @property
    def weight_variables(self):
        """Every trainable variable that is not an architecture logit."""
        arch = {id(v) for v in self._arch_logits}
        return [v for v in self.trainable_variables if id(v) not in arch]

    def arch_probabilities(self):
        """{logit name: softmax probabilities}: what the expected cost is taken over."""
        return {v.name: ops.softmax(v, axis=-1) for v in self._arch_logits}

    def expected_cost(self):
        """Expected cost of the relaxed architecture (a scalar tensor, natural units).

        With a `CostModel` set by `configure_search`, the sum over logit tensors of
        cost matrix * probabilities plus the fixed cost (CAS eq. 5-6); zero without one.
        """
        if self.cost_model is None:
            return ops.zeros(())
        return self.cost_model(self.arch_probabilities())

    # The contract every supernet keeps (what SearchRunner calls) ------------------
    @abc.abstractmethod
    def cell_logits(self):
        """{cell type: (logit variable, op set name, steps)} of the searched DAG cells."""

    @abc.abstractmethod
    def derive(self, k=2):
        """The genotype of the current logits."""

    def relaxations(self):
        """The ArchitectureRelaxation layers whose temperature a schedule drives."""
        return []

    def stochastic_relaxation(self):
        """Whether any choice is sampled (Gumbel), so a temperature schedule applies."""
        return any(r.mode != "softmax" for r in self.relaxations())

    def set_temperature(self, value):
        """Sets the temperature of every relaxation."""
        for relaxation in self.relaxations():
            relaxation.temperature.assign(float(value))

    def arch_panels(self):
        """{title: (probabilities [rows, choices], column names, row names)} to draw."""
        panels = {}
        for cell_type, (logits, op_set, steps) in self.cell_logits().items():
            labels = [f"{i}->{j}" for j in range(steps) for i in range(j + 2)]
            panels[cell_type] = (softmax(ops.convert_to_numpy(logits)),
                                 get_op_set(op_set).ops, labels)
        return panels

    def epoch_metrics(self):
        """Scalars recorded in history.json at each epoch's end (the temperature)."""
        relaxations = self.relaxations()
        if not relaxations:
            return {}
        return {"temperature": float(ops.convert_to_numpy(relaxations[0].temperature))}

    # Configuration ----------------------------------------------------------------
    def configure_search(self, weight_optimizer, arch_optimizer, cost_model=None,
                         cost_lambda=0.0,
                         weight_decay=5e-4, arch_weight_decay=1e-3, grad_clip_norm=5.0,
                         second_order=False, unrolled_lr=None, cost_form="additive",
                         cost_exponent=0.6, cost_target=0.0, bn_running_stats=False):
        """Sets the two optimizers and the search hyper-parameters.

        Args:
            weight_optimizer: Optimizer of `weight_variables` (SGD in both papers).
            arch_optimizer: Optimizer of `arch_variables` (Adam).
            cost_model: A `CostModel` giving the expected cost, or None.
            cost_lambda: Weight of the cost term in the architecture loss.
            weight_decay: Coupled L2 on the weights (added to their gradients).
            arch_weight_decay: Coupled L2 on the architecture logits.
            grad_clip_norm: Global-norm clip of weight gradients; 0 disables.
            second_order: Unrolled DARTS gradient instead of the first-order one.
            unrolled_lr: Learning rate xi of the virtual step; default: the weight
                optimizer's current learning rate (DARTS).
            cost_form: "additive" (CE + lambda * cost: CAS eq. 5, AutoRTNet eq. 8) or
                "fbnet" (CE * lambda * log(cost) ** cost_exponent, FBNet; the cost is
                clamped at 1.0001 of its unit so the log stays positive).
            cost_exponent: Exponent of the log cost in the "fbnet" form.
            cost_target: The budget of the "budget" form, in the cost's unit: the cost
                term is cost_lambda * max(0, cost - cost_target), so it pushes only
                while the expected cost is over budget and leaves the choice to the
                cross-entropy below it. The "target" form holds the expected cost at
                cost_target from both sides: cost_lambda * |cost - cost_target| (the
                absolute-value reward of TuNAS, Bender et al. 2020), so the search
                spends the budget instead of drifting below it.
            bn_running_stats: Keep updating the batch-norm moving statistics of the
                supernet's layers. Both steps normalise with batch statistics and the
                search never evaluates the supernet at inference, so by default they
                are off (`BatchNorm.track_running_stats`), which takes two stateful ops
                per layer and forward pass out of the step.
        """
        if cost_form not in self.COST_FORMS:
            raise ConfigError(f"cost_form must be one of {self.COST_FORMS}, got "
                             f"{cost_form!r}")
        self.cost_form = cost_form
        self.cost_exponent = float(cost_exponent)
        if cost_form in ("budget", "target") and not cost_target > 0:
            raise ConfigError(f"cost_form={cost_form!r} needs a cost_target > 0 (the budget in "
                              f"the cost's unit), got {cost_target!r}")
        self.cost_target = float(cost_target)
        self.weight_optimizer = weight_optimizer
        self.cost_model = cost_model
        self.arch_optimizer = arch_optimizer
        self.cost_lambda = float(cost_lambda)
        self.weight_decay = float(weight_decay)
        self.arch_weight_decay = float(arch_weight_decay)
        self.grad_clip_norm = float(grad_clip_norm)
        self.second_order = bool(second_order)
        self.unrolled_lr = unrolled_lr
        self.bn_running_stats = bool(bn_running_stats)
        from tf_nas_seg.ops.batch_norm import BatchNorm

        for layer in self._flatten_layers(include_self=False):
            if isinstance(layer, BatchNorm):
                layer.track_running_stats = self.bn_running_stats
        if num_replicas_in_sync() > 1:
            for optimizer in (weight_optimizer, arch_optimizer):
                if not isinstance(optimizer, ReducedGradients):
                    raise ConfigError(
                        f"{type(optimizer).__name__} would sum the gradients over the "
                        "replicas a second time; on several replicas use optimizers "
                        "mixing in utils.distribute.ReducedGradients (FusedSGD, "
                        "ReducedAdam)")
        self.weight_optimizer.build(self.weight_variables)
        self.arch_optimizer.build(self.arch_variables)
        self.search_configured = True

    @property
    def metrics(self):
        return [self.weight_loss_tracker, self.arch_loss_tracker, self.arch_ce_tracker,
                self.cost_tracker, self.arch_miou]

    # Steps ------------------------------------------------------------------------
    def _loss_and_grads(self, images, labels):
        """Cross-entropy, logits, and its gradients w.r.t. (weights, arch logits).

        NOTE: Both steps (and all four gradient evaluations of the second-order step)
        call this one `tf.function`, so the supernet's forward and backward graphs are
        traced once instead of once per step; tracing a supernet with thousands of
        layers dominates start-up time. Gradients a caller does not use (the weights'
        in the architecture step) are pruned by Grappler after the call is inlined.
        """
        if num_replicas_in_sync() > 1:
            # NOTE: not the nested tf.function: the cross-replica sums (and synchronised
            # batch norm) cannot run inside a function nested in `strategy.run`, so on
            # several replicas each step traces its forward pass itself.
            ce, logits, grads = self._loss_and_grads_fn()(images, labels)
            ce, grads = cross_replica_sum([ce, grads])
        else:
            if self._grad_fn is None:
                import tensorflow as tf

                self._grad_fn = tf.function(self._loss_and_grads_fn(), autograph=False)
            ce, logits, grads = self._grad_fn(images, labels)
        n = len(grads) - len(self._arch_logits)
        return ce, logits, grads[:n], grads[n:]

    def _loss_and_grads_fn(self):
        """(images, labels) -> (this replica's share of the mean CE, logits, gradients)."""
        import tensorflow as tf

        variables = self.weight_variables + self.arch_variables

        def loss_and_grads(images, labels):
            # The global batch's labelled pixels; with one replica, this batch's.
            total_valid = cross_replica_sum(
                ops.sum(ops.cast(ops.not_equal(ops.cast(labels, "int32"),
                                               self.ignore_label), "float32")))
            with tf.GradientTape() as tape:
                logits = self(images, training=True)
                total, _ = masked_cross_entropy_terms(labels, logits, self.ignore_label)
                ce = total / ops.maximum(total_valid, 1.0)
            grads = tape.gradient(ce, variables)
            n = len(self.weight_variables)
            # A logit the network never reads (the shared normal-cell logits of an
            # AutoRTNet hyper-cell that has a single cell) has no gradient: zero.
            # An unused weight stays an error; it would point at a wiring bug.
            grads = ([_dense(g) for g in grads[:n]]
                     + [ops.zeros_like(v) if g is None else _dense(g)
                        for g, v in zip(grads[n:], variables[n:])])
            return ce, logits, grads

        return loss_and_grads

    def _cost_and_grads(self):
        """Expected cost and its gradient w.r.t. the architecture logits."""
        import tensorflow as tf

        arch = self.arch_variables
        with tf.GradientTape() as tape:
            cost = self.expected_cost()
        if self.cost_model is None:
            return cost, [ops.zeros_like(v) for v in arch]
        # A cost need not reach every logit (AutoRTNet's aggregation cell has none).
        return cost, [ops.zeros_like(v) if g is None else _dense(g)
                      for g, v in zip(tape.gradient(cost, arch), arch)]

    def _combine(self, ce, d_arch, cost, d_cost):
        """Architecture loss and its gradients from CE and cost and their gradients."""
        lam = self.cost_lambda
        if self.cost_form == "additive" or self.cost_model is None:
            return ce + lam * cost, [a + lam * c for a, c in zip(d_arch, d_cost)]
        if self.cost_form == "budget":
            # L = CE + lam * max(0, c - T); dL = dCE + lam * [c > T] * dc.
            over = ops.maximum(cost - self.cost_target, 0.0)
            active = lam * ops.cast(cost > self.cost_target, cost.dtype)
            return ce + lam * over, [a + active * c for a, c in zip(d_arch, d_cost)]
        if self.cost_form == "target":
            # L = CE + lam * |c - T|; dL = dCE + lam * sign(c - T) * dc.
            gap = cost - self.cost_target
            pull = lam * ops.sign(gap)
            return ce + lam * ops.abs(gap), [a + pull * c for a, c in zip(d_arch, d_cost)]
        # FBNet: L = CE * lam * log(c) ** g; dL = dCE * lam * log(c) ** g
        #                                       + CE * lam * g * log(c) ** (g - 1) / c * dc.
        clamped = ops.maximum(cost, 1.0001)
        inside = ops.cast(cost > 1.0001, cost.dtype)
        log_c = ops.log(clamped)
        factor = lam * ops.power(log_c, self.cost_exponent)
        d_factor = (lam * self.cost_exponent * ops.power(log_c, self.cost_exponent - 1.0)
                    / clamped * inside)
        grads = [a * factor + ce * d_factor * c for a, c in zip(d_arch, d_cost)]
        return ce * factor, grads

    def _arch_gradients_first_order(self, arch_batch):
        ce, logits, _, d_arch = self._loss_and_grads(*arch_batch)
        cost, d_cost = self._cost_and_grads()
        loss, grads = self._combine(ce, d_arch, cost, d_cost)
        return grads, loss, ce, cost, logits

    def _arch_gradients_second_order(self, weight_batch, arch_batch):
        # DARTS eq. (7)-(8): grad_alpha L_val(w', alpha) - xi * HVP, w' = w - xi * dw.
        weights = self.weight_variables
        xi = (self.unrolled_lr if self.unrolled_lr is not None
              else self.weight_optimizer.learning_rate)
        backup = [ops.copy(v) for v in weights]
        _, _, w_grads, _ = self._loss_and_grads(*weight_batch)
        momentum = getattr(self.weight_optimizer, "momentum", 0.0)
        velocities = self._velocities(weights)
        for v, g, m in zip(weights, w_grads, velocities):
            step = xi * (g + self.weight_decay * v)
            if m is not None and momentum:
                # Keras SGD velocity m = momentum * m - lr * g, so momentum * m is the
                # momentum part of the next update (DARTS's momentum buffer term).
                v.assign(v + momentum * m - step)
            else:
                v.assign(v - step)
        ce, logits, d_w, d_arch = self._loss_and_grads(*arch_batch)
        cost, d_cost = self._cost_and_grads()
        loss, d_arch = self._combine(ce, d_arch, cost, d_cost)
        norm = ops.sqrt(sum(ops.sum(ops.square(g)) for g in d_w))
        eps = 0.01 / ops.maximum(norm, 1e-12)
        for v, b, g in zip(weights, backup, d_w):
            v.assign(b + eps * g)
        _, _, _, g_pos = self._loss_and_grads(*weight_batch)
        for v, b, g in zip(weights, backup, d_w):
            v.assign(b - eps * g)
        _, _, _, g_neg = self._loss_and_grads(*weight_batch)
        for v, b in zip(weights, backup):
            v.assign(b)
        grads = [a - xi * (p - n) / (2.0 * eps) for a, p, n in zip(d_arch, g_pos, g_neg)]
        return grads, loss, ce, cost, logits

    def _velocities(self, weights):
        optimizer = self.weight_optimizer
        if not getattr(optimizer, "momentums", None):
            return [None] * len(weights)
        return [optimizer.momentums[optimizer._get_variable_index(v)] for v in weights]

    def arch_step(self, weight_batch, arch_batch):
        """One architecture update; returns (loss, ce, cost, logits) on the arch batch."""
        if self.second_order:
            grads, loss, ce, cost, logits = self._arch_gradients_second_order(
                weight_batch, arch_batch)
        else:
            grads, loss, ce, cost, logits = self._arch_gradients_first_order(arch_batch)
        arch = self.arch_variables
        grads = [g + self.arch_weight_decay * v for g, v in zip(grads, arch)]
        grads = [g * self._arch_group_scale[self._arch_group_of[id(v)]]
                 if id(v) in self._arch_group_of else g for g, v in zip(grads, arch)]
        self.arch_optimizer.apply(grads, arch)
        return loss, ce, cost, logits

    def weight_step(self, weight_batch):
        """One weight update on a batch of the weights split; returns the loss."""
        import tensorflow as tf

        weights = self.weight_variables
        loss, _, grads, _ = self._loss_and_grads(*weight_batch)
        # One constant for all variables, not one each (utils/graph_constants.py), and
        # TensorFlow's product, not Keras's (its dtype promotion in Python cost ~2.7 ms
        # a variable to trace: 4.2 s of the CAS demo step's 21 s).
        grads = [g + graph_constant(tf, self.weight_decay, v.dtype) * tf.convert_to_tensor(v)
                 for g, v in zip(grads, weights)]
        if self.grad_clip_norm <= 0:
            self.weight_optimizer.apply(grads, weights)
            return loss
        # The global-norm clip as tf.clip_by_global_norm computes it (the same scale),
        # applied as one factor of the learning rate where the optimizer can
        # (FusedSGD.scaled_gradients) instead of a product and an identity per variable.
        norm = tf.linalg.global_norm(grads)
        clip = graph_constant(tf, self.grad_clip_norm, norm.dtype)
        # (norm - norm): a non-finite norm makes the scale, and so the update, NaN
        scale = clip * tf.math.minimum(1.0 / norm, 1.0 / clip) + (norm - norm)
        scaled = getattr(self.weight_optimizer, "scaled_gradients", None)
        if scaled is None:
            self.weight_optimizer.apply([g * tf.cast(scale, g.dtype) for g in grads], weights)
        else:
            with scaled(scale):
                self.weight_optimizer.apply(grads, weights)
        return loss

    def train_step(self, data, update_arch=True):
        """data = ((weight_images, weight_labels), (arch_images, arch_labels)).

        Args:
            data: The two batches.
            update_arch: Python bool; False gives a weights-only (warm-up) step.
        """
        if not self.search_configured:
            raise RuntimeError("call configure_search(...) before training the supernet")
        weight_batch, arch_batch = data

        if update_arch:
            arch_loss, arch_ce, _, logits = self.arch_step(weight_batch, arch_batch)
            self.arch_loss_tracker.update_state(arch_loss)
            self.arch_ce_tracker.update_state(arch_ce)
            self.arch_miou.update_state(arch_batch[1], logits)
        self.cost_tracker.update_state(self.expected_cost())
        self.weight_loss_tracker.update_state(self.weight_step(weight_batch))
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        images, labels = data
        logits = self(images, training=False)
        self.arch_ce_tracker.update_state(
            masked_cross_entropy(labels, logits, self.ignore_label))
        self.arch_miou.update_state(labels, logits)
        return {m.name: m.result() for m in (self.arch_ce_tracker, self.arch_miou)}


def _dense(grad):
    """Gradients of gathered variables may be IndexedSlices; make them dense."""
    import tensorflow as tf

    if isinstance(grad, tf.IndexedSlices):
        return tf.convert_to_tensor(grad)
    if grad is None:
        raise ValueError("a variable got no gradient: it is not used by the loss")
    return grad


def _drop_eager_kernels(tf):
    """Frees the kernels TensorFlow cached for the eager build pass.

    NOTE: eager execution keeps every op's kernel (with oneDNN, its primitives and
    their buffers) in a per-process cache, one per op signature, for the next eager
    call; a supernet's build pass runs thousands of distinct ones once and never again.
    Freed before the search step is traced and run, that memory is reused by them: the
    DARTS-equivalent step's peak RSS fell by ~166 MiB (benchmarks/README.md). The
    cache is TensorFlow's own (no public API): a later eager call rebuilds what it
    needs; a TensorFlow without it is left as it is.
    """
    if not tf.executing_eagerly():
        return
    try:
        from tensorflow.python.eager import context
    except ImportError:
        return
    clear = getattr(context.context(), "clear_kernel_cache", None)
    if clear is not None:
        clear()
