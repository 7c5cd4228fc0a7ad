"""Bernoulli-Bernoulli Restricted Boltzmann Machine as a Keras 3 model.

Energy of a joint configuration (v, h), v in {0,1}^D, h in {0,1}^H::

    E(v, h) = - v . b - h . c - v^T W h

with ``W`` (D, H) = ``W``, ``b`` (D,) = ``visible_bias``, ``c`` (H,) = ``hidden_bias``.
Marginalising the hidden units gives the free energy::

    F(v) = - v . b - sum_j softplus(c_j + v . W[:, j]),   p(v) = exp(-F(v)) / Z.

Training follows the contrastive-divergence recipe of Hinton's "A Practical Guide to
Training Restricted Boltzmann Machines" (2010): statistics use hidden *probabilities*,
the Markov chain is driven by *sampled* states, gradients are averaged over the batch
(so the learning rate does not depend on the batch size), and L2 weight decay applies
to the weights only, never to the biases.  ``persistent=True`` gives PCD (Tieleman 2008):
the negative chains are model state (a non-trainable weight), so they survive
``save``/``load`` together with the random-number generator state.  Two ways to make
those chains mix faster, both model state too:

* fast weights (FPCD, Tieleman & Hinton 2009): the chains sample from the model with
  parameters theta + theta_fast; theta_fast follows the same gradient with its own
  learning rate and shrinks by ``fast_decay`` every update, pushing the chains away
  from modes they have just visited;
* parallel tempering (Desjardins et al. 2010; Salakhutdinov 2009): ``n_temperatures``
  chains per particle on the path of AIS from the base-rate model (beta = 0) to the RBM
  (beta = 1), equally spaced in beta, each moved by one tempered Gibbs sweep per step,
  then neighbours swap states with the Metropolis probability
  min(1, p*_i(x_j) p*_j(x_i) / (p*_i(x_i) p*_j(x_j))) (even pairs on even updates, odd
  pairs on odd ones); the statistics come from the beta = 1 chains.

``hidden_units="gaussian"`` makes the hidden units linear with unit-variance Gaussian
noise (Hinton & Salakhutdinov 2006's code layer, their ``rbmhidlinear.m``): the energy
gains ``|h|^2 / 2``, p(h | v) = N(c + v W, I), and the CD statistics use the means
c + v W where Bernoulli units use probabilities (``dbn.ops``).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from dbn import distribute
from dbn import validation as check
from dbn.progress import Bar, chunks
from dbn.estimation.exact import exact_log_partition
from dbn.ops import (bernoulli, free_energy_of, gaussian, hidden_means, log_p_star,
                     logit_base_rate, matmul, path_statistics, tempered_gibbs_step)
from dbn.training.configs import RBM_CONSTRAINTS, VISIBLE_DATA  # noqa: F401 (re-exported)
from dbn.training.configs import check_sampler_options

SAVE_SUFFIXES = (".keras",)
SAVE_WEIGHTS_SUFFIXES = (".weights.h5",)

# Batches per tf.data element when ``fit`` is given an array (dbn.data.pipeline.to_dataset;
# the value train_rbm uses, dbn.training.pretrain.BATCHES_PER_ELEMENT).
ARRAY_BATCHES_PER_ELEMENT = 50

# Marker of the in-graph data check of ``train_step``; ``fit`` turns the TensorFlow
# error carrying it into a ValueError.
_BATCH_CHECK = "dbn.RBM batch check"



class DivergenceError(RuntimeError):
    """Training produced non-finite weights or metrics."""


# --------------------------------------------------------------------------- model
@keras.saving.register_keras_serializable(package="dbn")
class RBM(keras.Model):
    """Bernoulli-Bernoulli RBM trained by CD-k or persistent CD.

    Parameters
    ----------
    n_hidden : int
        Number of hidden units H (>= 1).
    k : int, default 1
        Gibbs steps per update (CD-k / PCD-k), >= 1.
    persistent : bool, default False
        Persistent contrastive divergence: the negative chains carry over between
        updates instead of restarting at the data.
    n_chains : int, default 100
        Number of persistent chains (PCD only), >= 1.
    weight_decay : float, default 0.0
        L2 cost on ``W`` only, finite and >= 0 (Hinton uses 2e-4 for classifier
        features; density models score better without it).
    sparsity_target, sparsity_cost, sparsity_decay : float
        Hinton's sparsity target (guide, section 11): a running estimate q of each
        hidden unit's mean activation is pushed towards the target with gradient
        ``sparsity_cost * (q - target)`` on the hidden bias and the weights.
        ``sparsity_target`` in (0, 1) or None (off), ``sparsity_cost`` >= 0,
        ``sparsity_decay`` (the running estimate's decay) in [0, 1); all finite.
    visible_data : {"binary", "probabilities"}, default "binary"
        What ``fit`` accepts: exactly binary data, or values in [0, 1] used as
        probabilities (Hinton's grey-level MNIST, hidden probabilities of a lower
        DBN layer).  Every batch is checked, also those of a ``tf.data`` stream.
    n_labels : int, default 0
        The last ``n_labels`` visible units form one softmax group (a one-hot label,
        Hinton, Osindero & Teh 2006): they are sampled jointly from
        softmax(visible_bias + W h) instead of independently.  ``classify`` picks the
        label of lowest free energy.  >= 0, and less than the number of visible units.
    seed : int >= 0 or None
        Seeds the weight initialiser and the sampler (whose state is saved).
    fast_learning_rate : float > 0 or None, default None
        FPCD: the learning rate of the fast weights (None: off).  Needs ``persistent``.
    fast_decay : float in [0, 1), default 0.95
        Factor the fast weights shrink by at every update (Tieleman & Hinton: 19/20).
    n_temperatures : int >= 1, default 1
        Parallel tempering with this many temperatures per chain (1: off).  Needs
        ``persistent``; not together with fast weights.  The base-rate model at
        beta = 0 takes its visible biases from the data on the first ``fit``.
    hidden_units : {"bernoulli", "gaussian"}, default "bernoulli"
        Binary stochastic hidden units, or linear ones with unit-variance Gaussian noise
        (not with parallel tempering, a label group or a sparsity target).  ``transform``
        returns E[h | v]: probabilities, or the linear means c + v W.
    precision : {"float32", "bfloat16"}, default "float32"
        Precision of the matrix products of training (CD/PCD; ``dbn.ops.matmul``): the
        weights, their updates and every statistic stay float32.  Inference (transform,
        free energy, sampling, likelihoods) is always float32.

    Integers may be numpy integers (stored as Python ints); bools are not integers.
    Every bad argument raises ValueError naming it.

    Examples
    --------
    >>> rbm = RBM(500, k=1, seed=0)
    >>> rbm.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.5))
    >>> rbm.fit(x_train, epochs=10, batch_size=100, callbacks=[MomentumSchedule()])
    """

    def __init__(
        self,
        n_hidden,
        *,
        k=1,
        persistent=False,
        n_chains=100,
        weight_decay=0.0,
        sparsity_target=None,
        sparsity_cost=0.0,
        sparsity_decay=0.95,
        visible_data="binary",
        n_labels=0,
        seed=None,
        fast_learning_rate=None,
        fast_decay=0.95,
        n_temperatures=1,
        hidden_units="bernoulli",
        precision="float32",
        **kwargs,
    ):
        given = dict(n_hidden=n_hidden, k=k, persistent=persistent, n_chains=n_chains,
                     weight_decay=weight_decay, sparsity_target=sparsity_target,
                     sparsity_cost=sparsity_cost, sparsity_decay=sparsity_decay,
                     visible_data=visible_data, n_labels=n_labels, seed=seed,
                     fast_learning_rate=fast_learning_rate, fast_decay=fast_decay,
                     n_temperatures=n_temperatures, hidden_units=hidden_units,
                     precision=precision)
        args = {name: RBM_CONSTRAINTS[name](name, value) for name, value in given.items()}
        check_sampler_options(args)
        if args["n_temperatures"] > 1 and args["n_labels"]:
            raise ValueError(f"n_temperatures={args['n_temperatures']} with n_labels="
                             f"{args['n_labels']}: parallel tempering of a label group is not "
                             "implemented; allowed: n_temperatures=1")
        super().__init__(**kwargs)
        self.n_hidden = args["n_hidden"]
        self.k = args["k"]
        self.persistent = args["persistent"]
        self.n_chains = args["n_chains"]
        self.weight_decay = float(args["weight_decay"])
        self.sparsity_target = args["sparsity_target"]
        self.sparsity_cost = float(args["sparsity_cost"])
        self.sparsity_decay = float(args["sparsity_decay"])
        self.visible_data = args["visible_data"]
        self.n_labels = args["n_labels"]
        self.seed = args["seed"]
        self.fast_learning_rate = args["fast_learning_rate"]
        self.fast_decay = float(args["fast_decay"])
        self.n_temperatures = args["n_temperatures"]
        self.hidden_units = args["hidden_units"]
        self.precision = args["precision"]
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_error")
        self.free_energy_tracker = keras.metrics.Mean(name="free_energy")

    # ---------------------------------------------------------------- keras plumbing
    def build(self, input_shape):
        n_visible = int(input_shape[-1])
        if n_visible <= self.n_labels:
            raise ValueError(f"n_labels={self.n_labels} must be less than the number of visible "
                             f"units ({n_visible}): the label group is the last n_labels of them")
        self.W = self.add_weight(
            shape=(n_visible, self.n_hidden),
            initializer=keras.initializers.RandomNormal(0.0, 0.01, seed=self.seed),
            name="W",
        )
        self.visible_bias = self.add_weight(
            shape=(n_visible,), initializer="zeros", name="visible_bias"
        )
        self.hidden_bias = self.add_weight(
            shape=(self.n_hidden,), initializer="zeros", name="hidden_bias"
        )
        # Sampler state [seed, counter] as a weight, so save/load resumes the stream.
        seed = self.seed if self.seed is not None else np.random.randint(2**31 - 1)
        self.sampler_state = self._add_replica_local(
            shape=(2,),
            dtype="int64",
            initializer=keras.initializers.Constant([seed, 0]),
            name="sampler_state",
        )
        if self.persistent:
            self.persistent_chains = self._add_replica_local(
                shape=(self.n_chains, n_visible),
                initializer="zeros",
                    name="persistent_chains",
            )
        if self.fast_learning_rate is not None:
            self.fast_parameters = [
                self._add_replica_local(shape=shape, initializer="zeros", name=name)
                for shape, name in (((n_visible, self.n_hidden), "fast_W"),
                                    ((n_visible,), "fast_visible_bias"),
                                    ((self.n_hidden,), "fast_hidden_bias"))]
        if self.n_temperatures > 1:
            # Chains at beta_0 .. beta_{M-2}; the beta = 1 chains are persistent_chains.
            self.tempered_chains = self._add_replica_local(
                shape=(self.n_temperatures - 1, self.n_chains, n_visible), initializer="zeros",
                name="tempered_chains")
            self.base_visible_bias = self.add_weight(
                shape=(n_visible,), initializer="zeros", trainable=False, name="base_visible_bias")
        if self.sparsity_target is not None:
            self.mean_activation = self._add_replica_local(
                shape=(self.n_hidden,),
                initializer=keras.initializers.Constant(self.sparsity_target),
                    name="mean_activation",
            )

    def _add_replica_local(self, *, shape, initializer, name, dtype=None):
        """``add_weight`` for state that training updates inside a replica (sampler
        counter, PCD and tempered chains, fast weights, running mean activation): one
        copy per replica under tf.distribute (written there without a merge, which an
        in-graph Gibbs loop could not hold), kept equal by the update
        (``dbn.distribute``); reads outside the replicas (save, sampling) take the first
        replica's copy, writes outside (load, initialisation) set every copy.  Without a
        strategy it is an ordinary non-trainable weight."""
        with keras.name_scope(self.name, caller=self):
            variable = keras.Variable(
                initializer=keras.initializers.get(initializer), shape=shape,
                dtype=dtype or self.variable_dtype, trainable=False, name=name,
                synchronization="on_read", aggregation="only_first_replica")
        self._track_variable(variable)
        return variable

    @property
    def n_visible(self):
        return int(self.W.shape[0])

    def get_config(self):
        config = super().get_config()
        config.update({name: getattr(self, name) for name in RBM_CONSTRAINTS})
        return config

    @property
    def metrics(self):
        return [self.reconstruction_tracker, self.free_energy_tracker]

    def call(self, inputs):
        return self._hidden_means(tf.cast(inputs, self.compute_dtype))

    # ---------------------------------------------------------------- sampling
    def _next_key(self):
        """The next key of the sampler stream (this replica's, under tf.distribute)."""
        return distribute.replica_key(self.sampler_state.assign_add(tf.constant([0, 1], tf.int64)))

    def _uniform(self, shape):
        return tf.random.stateless_uniform(shape, seed=self._next_key())

    def _bernoulli(self, p):
        return bernoulli(p, self._uniform(tf.shape(p)))

    def _hidden_means(self, v, parameters=None, precision="float32"):
        """E[h | v] (n, H) for visible states v (n, D): probabilities or linear means."""
        W, _, hidden_bias = parameters or self._parameters()
        return hidden_means(v, W, hidden_bias, self.hidden_units, precision)

    def _sample_hidden(self, mean):
        """Hidden states around E[h | v] ``mean`` (n, H): Bernoulli, or mean + N(0, 1)."""
        if self.hidden_units == "gaussian":
            return gaussian(mean, tf.random.stateless_normal(tf.shape(mean), seed=self._next_key(),
                                                              dtype=mean.dtype))
        return self._bernoulli(mean)

    def _free_energy(self, v):
        return free_energy_of(v, self.W, self.visible_bias, self.hidden_bias, self.hidden_units)

    def _parameters(self):
        return self.W, self.visible_bias, self.hidden_bias

    def _negative_parameters(self):
        """The parameters the persistent chains sample from: theta + theta_fast (FPCD)."""
        if self.fast_learning_rate is None:
            return self._parameters()
        return tuple(p + f for p, f in zip(self._parameters(), self.fast_parameters))

    def _visible_probs(self, h, parameters=None, precision="float32"):
        """p(v | h) for hidden states h (n, H): sigmoid units, softmax label group."""
        W, visible_bias, _ = parameters or self._parameters()
        x = matmul(h, W, transpose_b=True, precision=precision) + visible_bias
        if not self.n_labels:
            return tf.sigmoid(x)
        K = self.n_labels
        return tf.concat([tf.sigmoid(x[:, :-K]), tf.nn.softmax(x[:, -K:])], axis=1)

    def _sample_visible(self, pv, clamp=None):
        """Binary visible states from p(v | h) (n, D); the label group is one-hot,
        or replaced by ``clamp`` (n, n_labels) when given."""
        if not self.n_labels:
            return self._bernoulli(pv)
        K = self.n_labels
        features = self._bernoulli(pv[:, :-K])
        if clamp is None:
            u = self._uniform(tf.shape(pv[:, :1]))
            index = tf.reduce_sum(tf.cast(tf.cumsum(pv[:, -K:], axis=1) < u, tf.int32), axis=1)
            clamp = tf.one_hot(tf.minimum(index, K - 1), K, dtype=pv.dtype)
        return tf.concat([features, clamp], axis=1)

    def _gibbs_from_hidden_probs(self, ph, steps, parameters=None):
        """Run ``steps`` >= 1 Gibbs steps h -> v -> h starting from E[h] ``ph`` (n, H)
        (probabilities, or linear means), with the model's parameters or ``parameters``
        (W, visible_bias, hidden_bias).

        Returns the last visible sample v (n, D), its E[h | v] (n, H) and the visible
        probabilities of the first step (n, D).
        """
        parameters = parameters or self._parameters()
        precision = self.precision  # only training runs chains through here

        def step(ph):
            pv = self._visible_probs(self._sample_hidden(ph), parameters, precision)
            v = self._sample_visible(pv)
            return v, self._hidden_means(v, parameters, precision), pv

        v, ph, pv_first = step(ph)
        if steps > 1:
            v, ph = tf.while_loop(
                lambda i, v, ph: i < steps,
                lambda i, v, ph: (i + 1, *step(ph)[:2]),
                (tf.constant(1), v, ph),
            )[1:]
        return v, ph, pv_first

    def contrastive_divergence(self, v0):
        """CD-k / PCD-k update direction for a batch ``v0`` (B, D).

        Returns the gradients of the *negative* log-likelihood approximation, one
        per trainable variable in the order ``(W, visible_bias, hidden_bias)``, all
        averaged over the batch (positive phase) and over the chains (negative
        phase), plus the per-pixel reconstruction error of the batch.  Side effects:
        advances the sampler, the persistent chains (PCD) and the running mean
        activation (sparsity target).

        Under tf.distribute (R > 1 replicas, ``v0`` this replica's share of the global
        batch) each replica returns its share of the global-batch gradient (sums over its
        rows divided by the global row counts; weight decay and sparsity terms divided
        by R), so the sum the optimizer takes over the replicas is the gradient of the
        global batch; PCD runs this replica's shard of the chains (``dbn.distribute``).
        """
        v0 = tf.cast(v0, self.compute_dtype)
        precision = self.precision
        replicas = distribute.num_replicas()
        # bfloat16: W rounded once per update, not once per product.
        rounded = None if precision == "float32" else (
            tf.cast(self.W, tf.bfloat16), self.visible_bias, self.hidden_bias)
        ph0 = self._hidden_means(v0, rounded, precision)
        if self.persistent:
            if self.n_temperatures > 1:
                vk = self._tempered_negative_phase()
            else:
                negative = self._negative_parameters()
                chains = distribute.shard(self.persistent_chains.value)
                start = self._hidden_means(chains, negative, precision)
                vk = self._gibbs_from_hidden_probs(start, self.k, negative)[0]
                self.persistent_chains.assign(distribute.all_gather(vk))
            # Statistics of the model itself (not of theta + theta_fast).
            phk = self._hidden_means(vk, precision=precision)
            reconstruction = self._visible_probs(self._sample_hidden(ph0), precision=precision)
        else:
            vk, phk, reconstruction = self._gibbs_from_hidden_probs(ph0, self.k, rounded)
        # Row counts of the global batch and chains (the local ones with one replica).
        n_pos, n_neg = distribute.global_sum(
            (tf.cast(tf.shape(v0)[0], v0.dtype), tf.cast(tf.shape(vk)[0], v0.dtype)))

        def mean(x, n):  # this replica's share of a column mean over the global rows
            return tf.reduce_mean(x, 0) if replicas == 1 else tf.reduce_sum(x, 0) / n

        # <v h>_model - <v h>_data as one matmul over the stacked phases (faster on CPU).
        grad_W = matmul(tf.concat([vk / n_neg, -v0 / n_pos], 0), tf.concat([phk, ph0], 0),
                        transpose_a=True, precision=precision)
        grad_vb = mean(vk, n_neg) - mean(v0, n_pos)
        grad_hb = mean(phk, n_neg) - mean(ph0, n_pos)
        if self.fast_learning_rate is not None:
            # theta_fast <- decay theta_fast - lr_fast * (the CD statistic, no weight cost).
            for fast, grad in zip(self.fast_parameters,
                                  distribute.global_sum((grad_W, grad_vb, grad_hb))):
                fast.assign(self.fast_decay * fast - self.fast_learning_rate * grad)
        if self.weight_decay:
            grad_W += (self.weight_decay / replicas if replicas > 1 else self.weight_decay) * self.W
        if self.sparsity_target is not None:
            q = self.sparsity_decay * self.mean_activation + (
                1.0 - self.sparsity_decay
            ) * distribute.global_sum(mean(ph0, n_pos))
            self.mean_activation.assign(q)
            penalty = self.sparsity_cost * (q - self.sparsity_target)
            if replicas > 1:
                penalty /= replicas
            grad_hb += penalty
            grad_W += distribute.global_sum(mean(v0, n_pos))[:, None] * penalty[None, :]
        if replicas == 1:
            error = tf.reduce_mean(tf.square(v0 - reconstruction))
        else:  # per row: the tracker weighs replicas by their rows (none for an empty share)
            error = tf.reduce_mean(tf.square(v0 - reconstruction), axis=1)
        return (grad_W, grad_vb, grad_hb), error

    def _betas(self):
        return tf.linspace(tf.constant(0.0, self.compute_dtype), 1.0, self.n_temperatures)

    def _tempered_negative_phase(self):
        """Parallel tempering: ``k`` tempered Gibbs sweeps of every chain, then one round
        of swaps between neighbouring temperatures (even or odd pairs, alternating with
        the update count).  Updates the chains; returns the beta = 1 states (n, D)."""
        M, n = self.n_temperatures, self.n_chains // distribute.num_replicas()
        W, b, c = self._parameters()
        b_base = self.base_visible_bias
        betas = self._betas()
        chains = tf.concat([distribute.shard(self.tempered_chains.value, axis=1),
                            distribute.shard(self.persistent_chains.value)[None]], 0)  # (M, n, D)
        v = tf.reshape(chains, (M * n, -1))
        beta = tf.repeat(betas, n)[:, None]

        def sweep(i, v):
            x32 = tf.matmul(v, W) + c
            return i + 1, tempered_gibbs_step(x32, beta, W, b, b_base,
                                              self._uniform(tf.shape(x32)), self._uniform(tf.shape(v)))

        v = tf.while_loop(lambda i, v: i < self.k, sweep, (tf.constant(0), v))[1]
        chains = tf.reshape(v, (M, n, -1))
        vb, vb0, x32 = (tf.reshape(t, (M, n, *t.shape[1:])) for t in path_statistics(v, W, b, c, b_base))
        x = tf.cast(x32, tf.float64)
        betas64 = tf.cast(betas, tf.float64)

        def log_p(i, beta):  # log p*_beta of the chains at temperature index i: (n,)
            return log_p_star(vb[i], vb0[i], x[i], beta)

        # log r of swapping temperatures i and i + 1, for i = 0 .. M - 2: (M - 1, n).
        log_r = tf.stack([log_p(i + 1, betas64[i]) + log_p(i, betas64[i + 1])
                          - log_p(i, betas64[i]) - log_p(i + 1, betas64[i + 1])
                          for i in range(M - 1)])
        optimizer = getattr(self, "optimizer", None)  # none before compile: even pairs only
        parity = tf.cast(optimizer.iterations % 2 if optimizer is not None else 0, tf.int32)
        pair = tf.range(M - 1)[:, None] % 2 == parity  # non-overlapping pairs this update
        accept = tf.logical_and(pair, tf.math.log(tf.cast(self._uniform(tf.shape(log_r)), tf.float64)) < log_r)
        none = tf.zeros((1, n), tf.bool)
        from_above = tf.concat([accept, none], 0)[:, :, None]  # (M, n, 1): take chain i + 1
        from_below = tf.concat([none, accept], 0)[:, :, None]  # take chain i - 1
        above = tf.concat([chains[1:], chains[-1:]], 0)
        below = tf.concat([chains[:1], chains[:-1]], 0)
        chains = tf.where(from_above, above, tf.where(from_below, below, chains))
        self.tempered_chains.assign(distribute.all_gather(chains[:-1], axis=1))
        self.persistent_chains.assign(distribute.all_gather(chains[-1]))
        return chains[-1]

    def _update(self, v0):
        grads, error = self.contrastive_divergence(v0)
        self.optimizer.apply_gradients(zip(grads, [self.W, self.visible_bias, self.hidden_bias]))
        self.reconstruction_tracker.update_state(error)

    def _assert_valid_batch(self, v):
        """``v`` with an in-graph check (one cheap pass, any rank) that every value is
        0 or 1 (``visible_data="binary"``) or finite in [0, 1] ("probabilities")."""
        x = tf.cast(v, self.compute_dtype)
        if self.visible_data == "binary":
            ok = tf.reduce_all(tf.logical_or(tf.equal(x, 0), tf.equal(x, 1)))
            what = "binary: a value other than 0 or 1"
        else:  # NaN fails both comparisons
            ok = tf.reduce_all(tf.logical_and(x >= 0, x <= 1))
            what = "probabilities: a value outside [0, 1] or NaN"
        assertion = tf.debugging.Assert(ok, [f"{_BATCH_CHECK}: batch is not {what}"],
                                        name="check_batch")
        with tf.control_dependencies([assertion]):
            return tf.identity(v)

    def train_step(self, data):
        """One CD update per batch (B, D), or one per batch of a stack (s, B, D) of
        batches (``dbn.data.to_dataset(batches_per_element=s)``), looped in-graph.

        Every element is checked first, in-graph: a batch that does not match
        ``visible_data`` stops ``fit`` with a ValueError before it is trained on."""
        v0 = data[0] if isinstance(data, tuple) else data
        v0 = self._assert_valid_batch(v0)
        if v0.shape.rank == 3:
            tf.while_loop(lambda i: i < tf.shape(v0)[0],
                          lambda i: (self._update(v0[i]), i + 1)[1], [tf.constant(0)])
        else:
            self._update(v0)
        return self._logs({"reconstruction_error": self.reconstruction_tracker.result()})

    def test_step(self, data):
        v = tf.cast(data[0] if isinstance(data, tuple) else data, self.compute_dtype)
        pv = self._visible_probs(self._sample_hidden(self._hidden_means(v)))
        # Per row under tf.distribute (replicas weighed by their rows), as in training.
        self.reconstruction_tracker.update_state(
            tf.reduce_mean(tf.square(v - pv), axis=None if distribute.num_replicas() == 1 else 1))
        self.free_energy_tracker.update_state(self._free_energy(v))
        return self._logs({m.name: m.result() for m in self.metrics})

    def _logs(self, values):
        """The step's logs; shape (1,) under MultiWorkerMirroredStrategy, where Keras 3
        (3.15) reduces them with ``strategy.reduce("MEAN", v, axis=0)``, which fails on
        scalars (keras-team/keras#20585)."""
        if distribute.is_multi_worker(self.distribute_strategy):
            return {name: tf.reshape(value, [1]) for name, value in values.items()}
        return values

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Keras' symbolic build before ``fit``/``evaluate``, skipped when ``fit`` has
        already built the model and its optimizer.  Under tf.distribute it would read
        (and so reshuffle) one batch of the dataset first, and under
        MultiWorkerMirroredStrategy it fails in Keras 3.15 (keras-team/keras#20585)."""
        if self.built and getattr(self, "optimizer", None) is not None and self.optimizer.built:
            return None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    # ---------------------------------------------------------------- training
    def initialize_from_data(self, x):
        """Build for ``x`` (n, D) and set the visible biases to the logits of its
        pixel means; PCD chains start as samples of that base-rate model.  ``x`` must
        be non-empty and match ``visible_data``."""
        x = self._check_visible(x, "x", allow_empty=False)
        if not self.built:
            self.build((None, x.shape[1]))
        self.visible_bias.assign(logit_base_rate(x))
        if self.persistent:
            base_rate = self._visible_probs(tf.zeros((self.n_chains, self.n_hidden)))
            self.persistent_chains.assign(self._sample_visible(base_rate))
        if self.n_temperatures > 1:
            self.base_visible_bias.assign(logit_base_rate(x))
            base_rate = tf.sigmoid(tf.broadcast_to(self.base_visible_bias, self.tempered_chains.shape))
            self.tempered_chains.assign(self._bernoulli(base_rate))
        return self

    def compile(self, *args, jit_compile=False, **kwargs):
        """Keras ``compile``, never with XLA: ``jit_compile`` True raises ValueError
        ("auto", Keras' default, means False here).  XLA drops the in-graph check of every
        batch (``tf.debugging.Assert`` is a no-op under XLA), and on CPU it ran the CD-1
        epoch several times slower than oneDNN (``experiments/benchmark_cd.py``, dbn_xla)."""
        if jit_compile not in (False, "auto"):
            raise ValueError(f"jit_compile={jit_compile!r}: allowed: False or 'auto' (an RBM trains "
                             "without XLA, which would skip its check of every batch)")
        super().compile(*args, jit_compile=False, **kwargs)

    def compile_from_config(self, config):
        """Compile on load with the saved settings (Keras skips this for a model whose
        ``compile`` is overridden): the loaded RBM has its optimizer, whose state (momentum
        velocities, iteration count) the loader then restores, so training continues
        exactly as the saved model would have."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def fit(self, x=None, y=None, *, validation_data=None, callbacks=None, **kwargs):
        """Keras ``fit`` with input checks, Hinton's initialisation on first use, a
        divergence guard, and the free-energy gap when ``validation_data`` is given.

        ``x`` is a non-empty array (n, D) or a ``tf.data.Dataset`` of such batches
        (or of stacks (s, B, D) of them); its values must match ``visible_data``
        (exactly 0/1, or finite in [0, 1]).  An array is checked whole before any
        work; a dataset's first examples are checked before any work and *every*
        batch in-graph before it is trained on (a bad batch stops ``fit`` with a
        ValueError; the batches before it have been trained on).  The first call
        on an unbuilt model initialises the visible biases from the data (for a
        dataset, from up to 60,000 of its examples).

        Raises
        ------
        ValueError
            For bad data (empty, wrong shape, NaN/inf, outside [0, 1], not binary for
            ``visible_data="binary"``), bad ``epochs``/``batch_size``/``initial_epoch``,
            or an uncompiled model.
        """
        if getattr(self, "optimizer", None) is None:
            raise ValueError("RBM.fit needs a compiled model: call rbm.compile(optimizer=...) first")
        if y is not None:
            raise ValueError("y: an RBM is trained on x alone (unsupervised), so labels would be "
                             "ignored; allowed: y=None (for a label group: n_labels, one-hot "
                             "labels as the last columns of x)")
        if self.jit_compile:  # set after compile: XLA would skip the check of every batch
            raise ValueError(f"jit_compile={self.jit_compile!r}: an RBM trains without XLA (allowed: False)")
        for name, low in (("epochs", 1), ("initial_epoch", 0), ("batch_size", 1),
                          ("steps_per_epoch", 1)):
            if kwargs.get(name) is not None:
                kwargs[name] = check.check_int(name, kwargs[name], low=low)
        if x is None or isinstance(x, (str, bytes)):
            raise ValueError(f"x={x!r} must be an array (n, D) or a tf.data.Dataset of batches")
        val = None
        if validation_data is not None:
            val = self._check_visible(_first_examples(validation_data, None, "validation_data"),
                                      "validation_data", allow_empty=False)
        # Examples needed: all (up to 60,000) to initialise, as many as the validation set
        # for the free-energy gap, else the first batch (the rest is checked in-graph).
        if not isinstance(x, tf.data.Dataset):
            self._check_visible(x, "x", allow_empty=False)  # whole array; Keras gets x as given
        distributed = not distribute.is_default(self.distribute_strategy)
        if distributed:
            self._check_distributable(x, self.distribute_strategy.num_replicas_in_sync)
        needed = 60_000 if not self.built else (len(val) if val is not None else 1)
        sample = self._check_visible(_first_examples(x, needed, "x"), "x", allow_empty=False)
        with distribute.scope(self.distribute_strategy):  # variables made here belong to the strategy
            if not self.built:
                self.initialize_from_data(sample)
            if self.optimizer is not None and not self.optimizer.built:
                self.optimizer.build(self.trainable_variables)  # no variable creation in-graph
        callbacks = list(callbacks or [])
        guard = [_DivergenceGuard()]
        if val is not None:
            rng = np.random.default_rng(0)
            reference = sample[rng.permutation(len(sample))[: len(val)]]
            guard.insert(0, _FreeEnergyGap(reference))
        if (isinstance(x, np.ndarray) and y is None and kwargs.get("steps_per_epoch") is None
                and not kwargs.get("validation_split") and kwargs.get("shuffle", True) in (True, False)):
            # An array takes train_rbm's fast path: stacks of batches looped in-graph
            # (pipeline.to_dataset), reshuffled every epoch by a seed of this model and the
            # first epoch, instead of one Keras step per batch (measured 1.4-2.5 s against
            # 1.1 s per 60,000-image epoch of CD-1 784x500 on 2 cores).
            from dbn.data.pipeline import to_dataset

            # Under tf.distribute one batch per element: the replicas split each global
            # batch, and the optimizer's merge cannot sit in an in-graph loop.
            x = to_dataset(x, batch_size=kwargs.pop("batch_size", None) or 32,
                           shuffle=bool(kwargs.pop("shuffle", True)),
                           seed=(self.seed or 0) + int(kwargs.get("initial_epoch", 0)),
                           batches_per_element=1 if distributed else ARRAY_BATCHES_PER_ELEMENT)
            kwargs["shuffle"] = False
        try:
            return super().fit(
                x, y, validation_data=validation_data, callbacks=guard + callbacks, **kwargs
            )
        except tf.errors.InvalidArgumentError as err:
            if _BATCH_CHECK not in str(err):
                raise
            raise ValueError(
                f"x: a batch of the training data is not valid for visible_data="
                f"{self.visible_data!r} ({'exactly 0 or 1' if self.visible_data == 'binary' else 'finite values in [0, 1]'} "
                "allowed); training stopped before that batch (the batches before it were "
                "trained on). Binarize the data (dbn.data.binarize), scale it to [0, 1] "
                "or pass visible_data='probabilities'"
            ) from err

    def _check_distributable(self, x, replicas):
        """ValueError, before any work, for what cannot train under a tf.distribute
        strategy of ``replicas`` replicas: PCD chains that do not split evenly, a dataset
        of stacked batches (s, B, D), Keras' in-graph steps loop."""
        if (self.steps_per_execution or 1) > 1:
            raise ValueError(f"steps_per_execution={self.steps_per_execution}: under a tf.distribute "
                             "strategy compile with steps_per_execution=1 (Keras' in-graph steps loop "
                             "fails there: 'You must feed a value for placeholder tensor', TF 2.21)")
        if self.persistent and self.n_chains % replicas:
            raise ValueError(f"n_chains={self.n_chains} must be a multiple of the {replicas} "
                             "replicas of the tf.distribute strategy (each runs an equal shard)")
        if isinstance(x, tf.data.Dataset):
            spec = x.element_spec[0] if isinstance(x.element_spec, tuple) else x.element_spec
            if spec.shape.rank == 3:
                raise ValueError(f"x: a dataset of stacked batches {tuple(spec.shape)} cannot be trained "
                                 f"under a tf.distribute strategy ({replicas} replicas); give batches (B, D) "
                                 "(to_dataset(..., batches_per_element=1))")

    def save(self, filepath, *args, **kwargs):
        """Keras ``save`` to a ``.keras`` file; refuses other suffixes and non-finite
        weights (ValueError / DivergenceError, nothing written)."""
        check.check_suffix("filepath", filepath, SAVE_SUFFIXES)
        self._check_finite(f"save to {filepath}")
        return super().save(filepath, *args, **kwargs)

    def save_weights(self, filepath, *args, **kwargs):
        """Keras ``save_weights`` to a ``.weights.h5`` file; refuses other suffixes, an
        unbuilt model and non-finite weights (nothing written)."""
        check.check_suffix("filepath", filepath, SAVE_WEIGHTS_SUFFIXES)
        self._require_built("save_weights")
        self._check_finite(f"save weights to {filepath}")
        return super().save_weights(filepath, *args, **kwargs)

    def _require_built(self, what):
        if not self.built:
            raise ValueError(f"RBM.{what} needs a built model: build or fit it first "
                             "(rbm.fit(x), rbm.initialize_from_data(x) or rbm.build((None, D)))")

    def _check_finite(self, what):
        bad = [w.path for w in self.weights if not np.all(np.isfinite(w.numpy()))]
        if bad:
            raise DivergenceError(f"refusing to {what}: non-finite values in {bad}")

    # ---------------------------------------------------------------- public API
    def transform(self, v):
        """E[h | v]: (n, D) -> (n, H) numpy; v finite in [0, 1].  The probabilities
        p(h = 1 | v) of Bernoulli hidden units, the means c + v W of Gaussian ones."""
        self._require_built("transform")
        v = self._check_visible(v, "v", require_binary=False)
        return np.asarray(self(v))

    def visible_given_hidden(self, h):
        """Visible probabilities p(v=1 | h): (n, H) -> (n, D) numpy; h finite, in [0, 1]
        for Bernoulli hidden units (any real value for Gaussian ones)."""
        self._require_built("visible_given_hidden")
        bounds = {} if self.hidden_units == "bernoulli" else {"low": None, "high": None}
        h = check.check_matrix("h", h, n_columns=self.n_hidden, **bounds)
        return np.asarray(self._visible_probs(tf.constant(h)))

    def gibbs_step(self, v):
        """One Gibbs step v -> h ~ p(h|v) -> v' ~ p(v|h); (n, D) -> sampled (n, D)."""
        self._require_built("gibbs_step")
        v = self._check_visible(v, "v", require_binary=False)
        h = self._sample_hidden(self._hidden_means(tf.constant(v)))
        return np.asarray(self._sample_visible(self._visible_probs(h)))

    def reconstruct(self, v):
        """Mean-field reconstruction p(v | h ~ p(h|v)): (n, D) -> (n, D) probabilities."""
        self._require_built("reconstruct")
        v = self._check_visible(v, "v", require_binary=False)
        h = self._sample_hidden(self._hidden_means(tf.constant(v)))
        return np.asarray(self._visible_probs(h))

    def free_energy(self, v):
        """F(v) for each row of v (n, D) -> (n,) numpy; v finite in [0, 1]."""
        self._require_built("free_energy")
        v = self._check_visible(v, "v", require_binary=False)
        return np.asarray(self._free_energy(tf.constant(v)))

    def sample(self, n, steps=1000, *, init=None, labels=None, seed=None, verbose=0):
        """Generate ``n`` digits by ``steps`` Gibbs steps.

        Parameters
        ----------
        n : int >= 1
            Number of chains (ignored when ``init`` is given).
        steps : int
            Gibbs steps (>= 1).
        init : array (n, D), optional
            Starting visible states, finite in [0, 1]; default: samples of the
            base-rate model sigmoid(visible_bias) (random starts).
        labels : int array (n,), optional
            Class-conditional generation (``n_labels`` > 0): the label group is
            clamped to these classes (integers in 0..n_labels-1) for the whole chain.
        seed : int >= 0, optional
            Draw from a separate stream seeded by ``seed`` (repeatable, and the model's
            own sampler state is left untouched); default: the model's stream.
        verbose : {0, 1, 2}
            A progress bar over the Gibbs steps (the samples do not change).

        Returns
        -------
        samples : ndarray (n, D)
            Visible *probabilities* p(v | h) of the last step (less noisy to view).
        """
        self._require_built("sample")
        steps = _check_positive_int("steps", steps)
        if init is None:
            n = _check_positive_int("n", n)
        seed = check.check_seed("seed", seed, optional=True)
        verbose = check.check_int("verbose", verbose, low=0, high=2)
        if seed is not None:
            saved = self.sampler_state.numpy()
            self.sampler_state.assign([int(seed), 0])
            try:
                return self.sample(n, steps, init=init, labels=labels, verbose=verbose)
            finally:
                self.sampler_state.assign(saved)
        if init is None:
            init = self._sample_visible(self._visible_probs(tf.zeros((n, self.n_hidden))))
        else:
            init = tf.constant(self._check_visible(init, "init", require_binary=False))
        clamp = None
        if labels is not None:
            labels = self._check_labels(labels, len(init))
            clamp = tf.one_hot(labels, self.n_labels)
            init = tf.concat([init[:, : -self.n_labels], clamp], axis=1)
        v, bar = init, Bar(steps, verbose, f"Gibbs sampling: {steps} steps x {len(init)} chains")
        for start, stop in chunks(steps, verbose):  # the sampler's counter carries over
            v, pv = self._sample_chain(v, tf.constant(stop - start), clamp)
            bar.update(stop)
        out = np.array(pv)
        if clamp is not None:
            out[:, -self.n_labels :] = clamp.numpy()  # the clamped label, not p(label | h)
        return out

    @tf.function(reduce_retracing=True)
    def _sample_chain(self, v, steps, clamp=None):
        """``steps`` Gibbs steps from visible states ``v``: the last states and p(v | h)."""
        def body(i, v, pv):
            pv = self._visible_probs(self._sample_hidden(self._hidden_means(v)))
            return i + 1, self._sample_visible(pv, clamp), pv

        return tf.while_loop(lambda i, v, pv: i < steps, body, (0, v, v))[1:]

    # ---------------------------------------------------------------- labels
    def _check_labels(self, labels, n, length_of="init"):
        if not self.n_labels:
            raise ValueError("labels need an RBM with a label group (n_labels > 0)")
        labels = check.check_labels("labels", labels, n_classes=self.n_labels, n=n,
                                    length_of=length_of)
        return labels.astype(np.int32)

    def label_free_energies(self, features, *, batch_size=1000):
        """F(features, label=k) for every k: (n, D - n_labels) -> (n, n_labels).

        Exact: F(x, e_k) = -x.b_x - b_k - sum_j softplus(c_j + x W_x[:, j] + W[k, j]).
        """
        if not self.n_labels:
            raise ValueError("label_free_energies needs an RBM with a label group (n_labels > 0)")
        self._require_built("label_free_energies")
        batch_size = check.check_int("batch_size", batch_size, low=1)
        K = self.n_labels
        x = _as_float_matrix(features, "features", self.n_visible - K)
        W_x, W_l = self.W[:-K], self.W[-K:]
        out = []
        for start in range(0, len(x), batch_size):
            xb = tf.constant(x[start : start + batch_size])
            a = tf.matmul(xb, W_x) + self.hidden_bias  # (n, H)
            sp = tf.reduce_sum(tf.math.softplus(a[:, None, :] + W_l[None, :, :]), axis=2)
            out.append(-tf.linalg.matvec(xb, self.visible_bias[:-K])[:, None]
                       - self.visible_bias[-K:][None, :] - sp)
        return np.concatenate([o.numpy() for o in out]) if out else np.zeros((0, K), np.float32)

    def classify(self, features):
        """The label of lowest free energy for each row of features (n, D - n_labels)."""
        return np.argmin(self.label_free_energies(features), axis=1)

    def log_partition_exact(self):
        """Exact log Z by enumeration (needs min(D, H) <= 20; D <= 20 for Gaussian
        hidden units, whose states are integrated out)."""
        self._require_built("log_partition_exact")
        return exact_log_partition(self.W.numpy(), self.visible_bias.numpy(),
                                   self.hidden_bias.numpy(), n_labels=self.n_labels,
                                   hidden_units=self.hidden_units)

    def log_likelihood_exact(self, v, log_z=None):
        """Mean log p(v) in nats over the rows of v (n, D), with the exact log Z.

        ``v`` must be non-empty and binary (a log-probability of grey levels is not a
        probability); ``log_z`` a finite number or None (computed)."""
        self._require_built("log_likelihood_exact")
        self._check_visible(v, "v", require_binary=True, allow_empty=False)
        log_z = check.check_float("log_z", log_z, optional=True)
        log_z = self.log_partition_exact() if log_z is None else log_z
        return float(-np.mean(self.free_energy(v).astype(np.float64)) - log_z)

    # ---------------------------------------------------------------- checks
    def _check_visible(self, x, name, *, require_binary=None, allow_empty=True):
        expected = self.n_visible if self.built else None
        x = _as_float_matrix(x, name, expected, allow_empty=allow_empty)
        if require_binary is None:
            require_binary = self.visible_data == "binary"
        if require_binary and not np.all((x == 0) | (x == 1)):
            raise ValueError(
                f"{name} is not binary but this RBM has visible_data='binary': binarize "
                f"the data (dbn.data.binarize) or pass visible_data='probabilities'"
            )
        return x


def _check_positive_int(name, value):
    return check.check_int(name, value, low=1)


def _as_float_matrix(x, name, n_columns=None, *, allow_empty=True):
    """Data for a Bernoulli RBM: 2-D float32, finite, in [0, 1] (dbn.validation)."""
    return check.check_matrix(name, x, n_columns=n_columns, allow_empty=allow_empty)


def _first_examples(data, limit, name="x"):
    """Up to ``limit`` examples (all if None) of an array, a tuple (x, y) or a dataset."""
    if isinstance(data, (tuple, list)):
        if not data:
            raise ValueError(f"{name}={data!r} is empty; allowed: an array or a tuple (x, y)")
        data = data[0]
    if isinstance(data, tf.data.Dataset):
        rows, total = [], 0
        for batch in data:
            batch = np.asarray(batch[0] if isinstance(batch, (tuple, list)) else batch)
            if batch.ndim not in (2, 3):
                raise ValueError(f"{name}: a dataset element has shape {batch.shape}; allowed: "
                                 "batches (B, D) or stacks of batches (s, B, D)")
            rows.append(batch.reshape(-1, batch.shape[-1]))  # stacks of batches too
            total += len(rows[-1])
            if limit is not None and total >= limit:
                break
        if not rows:
            raise ValueError(f"{name} is an empty dataset; allowed: at least one batch")
        data = np.concatenate(rows)
    if isinstance(data, np.ndarray) and data.ndim >= 1:
        data = data[:limit]  # check only what is used (an array x was checked whole)
    return check.check_matrix(name, data)[:limit]


class _DivergenceGuard(keras.callbacks.Callback):
    """Stop with an error naming the epoch and learning rate at the first NaN/inf."""

    def on_epoch_end(self, epoch, logs=None):
        bad_logs = {k: v for k, v in (logs or {}).items() if not math.isfinite(float(v))}
        bad_weights = [
            w.path for w in self.model.weights if not np.all(np.isfinite(w.numpy()))
        ]
        if bad_logs or bad_weights:
            lr = float(np.asarray(self.model.optimizer.learning_rate))
            raise DivergenceError(
                f"RBM training diverged at epoch {epoch + 1} (learning rate {lr:g}): "
                f"non-finite logs {sorted(bad_logs)} / weights {bad_weights}. "
                "Lower the learning rate; nothing was saved by this guard."
            )


class _FreeEnergyGap(keras.callbacks.Callback):
    """Adds ``free_energy_gap`` = mean F(validation) - mean F(training subset of the
    same size) to the epoch logs (Hinton's guide, section 6: overfitting monitor)."""

    def __init__(self, reference):
        super().__init__()
        self.reference = reference

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or "val_free_energy" not in logs:
            return
        train_fe = np.mean(self.model.free_energy(self.reference), dtype=np.float64)
        logs["free_energy_gap"] = float(logs["val_free_energy"]) - float(train_fe)


