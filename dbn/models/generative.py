"""Hinton, Osindero & Teh (2006), "A fast learning algorithm for deep belief nets".

A generative DBN whose top RBM models the penultimate features *and* a one-hot label
jointly (784-500-500-(2000 + 10 label units)).  It

* classifies without backprop: upward pass, then the label whose configuration with the
  features has the lowest free energy in the top RBM (exact, 10 evaluations);
* generates class-conditional digits: clamp a label, run the top RBM's Gibbs chain,
  then one top-down pass through the generative weights;
* is fine-tuned by the up-down algorithm (contrastive wake-sleep, the paper's
  appendix B): below the top RBM the recognition (up) and generative (down) weights are
  untied; the wake phase trains the generative weights to reconstruct each layer from
  the one above, the sleep phase trains the recognition weights on the model's own
  fantasies, and the top RBM is trained by CD-k with k rising 3 -> 6 -> 10.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from dbn import distribute
from dbn import validation as check
from dbn.data import pipeline
from dbn.models.classifier import check_layer_sizes
from dbn.models.dbn import DBN, _check_dir, check_layer_configs
from dbn.training.checkpoint import (CheckpointCorruptError, RunDir, fingerprint, run_path,
                                     spec_key, warn_legacy, way_out)
from dbn.training.configs import HINTON_LAYER, RBMTrainingConfig, UpDownConfig
from dbn.provenance import save_npz
from dbn.models.rbm import _check_positive_int
from dbn.ops import bernoulli, bernoulli_np
from dbn.seeds import chain_seed, epoch_seed, layer_seed
from dbn.training.pretrain import (build_rbm, epoch_batches, finished_rbm,
                          record_pretraining_time, save_finished_rbm, train_rbm)

UP_DOWN_FILE = "weights.npz"
log = logging.getLogger("dbn")


class GenerativeDBN:
    """Lower DBN layers plus a top RBM over [features, one-hot label].

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[784, 500, 500, 2000]``: pixels, lower hidden layers, top hidden layer.
        The top RBM's visible layer is the last lower layer plus ``n_classes`` units.
    n_classes : int
    layer_configs : RBMTrainingConfig or sequence (one per RBM)
    seed : int >= 0

    Every argument is checked here (ValueError naming it).
    """

    def __init__(self, layer_sizes=(784, 500, 500, 2000), *, n_classes=10, layer_configs=None, seed=0):
        self.layer_sizes = check_layer_sizes(layer_sizes)
        if len(self.layer_sizes) < 3:
            raise ValueError(f"layer_sizes={list(self.layer_sizes)}: a generative DBN needs pixels, "
                             "at least one lower hidden layer and the top layer")
        _check_positive_int("n_classes", n_classes)
        seed = check.check_seed("seed", seed)
        if layer_configs is not None:
            layer_configs = check_layer_configs(layer_configs, len(self.layer_sizes) - 1)
        self.n_classes = int(n_classes)
        self.seed = int(seed)
        n_rbms = len(self.layer_sizes) - 1
        if layer_configs is None or isinstance(layer_configs, RBMTrainingConfig):
            layer_configs = [layer_configs or HINTON_LAYER] * n_rbms
        if len(layer_configs) != n_rbms:
            raise ValueError(f"{len(layer_configs)} layer configs for {n_rbms} RBMs")
        self.lower = DBN(self.layer_sizes[:-1], layer_configs=list(layer_configs[:-1]), seed=seed)
        self.top_config = dataclasses.replace(layer_configs[-1], n_hidden=self.layer_sizes[-1])
        self.top = None
        self.cache_key = None
        self.recognition = None  # list of (W (n_l, n_{l+1}), bias (n_{l+1},)) tf.Variables
        self.generative = None  # list of (W (n_l, n_{l+1}), bias (n_l,)) tf.Variables
        # The tf.distribute strategy in scope when the model was made (as a Keras model
        # does): the up-down updates split each batch over its replicas.
        self.distribute_strategy = tf.distribute.get_strategy()

    # ---------------------------------------------------------------- pretraining
    def _one_hot(self, y, name="y", n=None, length_of="x"):
        y = check.check_labels(name, y, n_classes=self.n_classes, n=n, length_of=length_of)
        return np.eye(self.n_classes, dtype=np.float32)[y]

    def _check_images(self, x, name="x", allow_empty=False):
        return check.check_matrix(name, x, n_columns=self.layer_sizes[0], allow_empty=allow_empty,
                                  columns_what="this DBN's input size is")

    @distribute.in_model_scope
    def pretrain(self, x, y, *, x_unlabelled=None, checkpoint_dir=None, layer_cache=None,
                 verbose=2, timings=None):
        """Greedy pretraining: the lower DBN on images (``x_unlabelled`` if given, else
        ``x``; (n, 784)), then the labelled top RBM on [features(x), one_hot(y)].

        ``layer_cache`` is the DBN layer cache for the lower layers (default
        ``checkpoint_dir/lower``): pass the experiments' shared cache to reuse stacks.

        ``x`` and ``x_unlabelled`` must be non-empty, finite in [0, 1] with
        ``layer_sizes[0]`` columns; ``y`` one integer label in 0..n_classes-1 per row
        of ``x``.  Checked before any work.
        """
        x = self._check_images(x)
        labels = self._one_hot(y, n=len(x))
        if x_unlabelled is not None:
            x_unlabelled = self._check_images(x_unlabelled, "x_unlabelled")
        _check_dir("checkpoint_dir", checkpoint_dir)
        _check_dir("layer_cache", layer_cache)
        if timings is not None and not isinstance(timings, dict):
            raise ValueError(f"timings={timings!r} must be a dict (filled in) or None")
        ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
        if layer_cache is None and ckpt is not None:
            layer_cache = ckpt / "lower"
        self.lower.pretrain(x if x_unlabelled is None else x_unlabelled, checkpoint_dir=layer_cache,
                            verbose=verbose, timings=timings)
        top_input = np.concatenate([self.lower.transform(x), labels], axis=1)
        # The run directory's key covers everything that determines the model: the settings,
        # the images and labels, and the lower layers' weights as stored -- not the features
        # computed from them, whose last bits depend on the CPU's matmul kernels, so that a
        # run directory carried to another machine (experiments/carry.py) is found there.
        common = {"what": "generative_top", "layer_sizes": list(self.layer_sizes),
                  "top": self.top_config.to_dict(),
                  "lower": [c.to_dict() for c in self.lower.layer_configs], "seed": self.seed}
        spec = {**common, "data": fingerprint(x, labels),
                "lower_weights": fingerprint(*(v.numpy() for r in self.lower.rbms
                                               for v in (r.W, r.visible_bias, r.hidden_bias)))}
        if ckpt is not None and not run_path(ckpt, "top", spec).exists():
            legacy = {**common, "data": fingerprint(top_input)}  # the key of runs before 2026-11-28
            if run_path(ckpt, "top", legacy).exists():
                log.info("generative DBN top RBM: using %s, keyed by its features' hash (the "
                         "former key)", run_path(ckpt, "top", legacy))
                spec = legacy
        self.cache_key = spec_key(spec)
        t0 = time.time()
        if ckpt is not None:
            warn_legacy(ckpt)
        run = (RunDir(run_path(ckpt, "top", spec), spec, what="generative DBN top RBM")
               if ckpt is not None else contextlib.nullcontext())
        with run as run:
            self.top = finished_rbm(run)
            if self.top is None:
                seed = layer_seed(self.seed, len(self.layer_sizes))
                keras.utils.set_random_seed(seed)
                self.top = build_rbm(self.top_config, visible_data="probabilities",
                                     n_labels=self.n_classes, seed=seed)
                train = epoch_batches(top_input, batch_size=self.top_config.batch_size, seed=seed)
                train_rbm(self.top, train, self.top_config, init_data=top_input,
                          steps_per_epoch=math.ceil(len(top_input) / self.top_config.batch_size),
                          checkpoint=run, verbose=verbose)
                if run is not None:
                    save_finished_rbm(run, self.top)
            record_pretraining_time(timings, "pretrain_top", t0, run)
        self._untie()

    def _untie(self):
        """Recognition and generative weights start as copies of the tied RBM weights."""
        self.recognition = [(tf.Variable(r.W.numpy()), tf.Variable(r.hidden_bias.numpy()))
                            for r in self.lower.rbms]
        self.generative = [(tf.Variable(r.W.numpy()), tf.Variable(r.visible_bias.numpy()))
                           for r in self.lower.rbms]

    def _require_top(self, what):
        if self.top is None:
            raise ValueError(f"{what} needs a labelled top RBM: call pretrain(x, y) first")

    # ---------------------------------------------------------------- inference
    def features(self, x, *, batch_size=10_000, stochastic=False, seed=None):
        """Upward pass with the recognition weights: (n, 784) -> (n, n_{L-1}).

        Deterministic (default): probabilities at every layer.  ``stochastic=True``:
        binary states sampled at every hidden layer below the top RBM (the paper's
        stochastic up-pass), from the stream ``seed`` (default: the model's seed).

        ``x`` finite in [0, 1] with ``layer_sizes[0]`` columns; ``batch_size`` >= 1."""
        self._require_top("features")
        x = self._check_images(x, allow_empty=True)
        batch_size = check.check_int("batch_size", batch_size, low=1)
        stochastic = check.check_bool("stochastic", stochastic)
        seed = check.check_seed("seed", seed, optional=True)
        rng = np.random.default_rng(self.seed if seed is None else seed) if stochastic else None
        out = []
        for start in range(0, len(x), batch_size):
            h = tf.constant(np.asarray(x[start : start + batch_size], np.float32))
            for W, b in self.recognition:
                h = tf.sigmoid(tf.matmul(h, W) + b)
                if stochastic:
                    h = tf.constant(bernoulli_np(h.numpy(), rng))
            out.append(h.numpy())
        return np.concatenate(out)

    def label_log_probabilities(self, x, *, stochastic=False, repeats=1, seed=None):
        """log p(label | x) (n, n_classes) from the top RBM's exact label free energies,
        after a deterministic up-pass or, with ``stochastic=True``, averaged over
        ``repeats`` stochastic up-passes (the mean of the log-probabilities, as the
        paper's best stochastic variant).  ``repeats`` an integer >= 1."""
        self._require_top("label_log_probabilities")
        repeats = check.check_int("repeats", repeats, low=1)
        stochastic = check.check_bool("stochastic", stochastic)
        if not stochastic and repeats != 1:
            raise ValueError(f"repeats={repeats}: a deterministic up-pass gives the same answer "
                             "every time; allowed: 1 (or stochastic=True)")
        seed = self.seed if seed is None else check.check_seed("seed", seed)
        total = 0.0
        for r in range(repeats):
            energies = self.top.label_free_energies(
                self.features(x, stochastic=stochastic, seed=chain_seed(seed, r)))
            total = total + (-energies - _logsumexp_rows(-energies))
        return total / repeats

    def classify(self, x, *, stochastic=False, repeats=1, seed=None):
        """Predicted labels (n,): lowest free energy of [features, label] in the top RBM
        after a deterministic up-pass (default; the paper's best), or the highest mean
        log-probability over ``repeats`` stochastic up-passes.  ``x`` finite in [0, 1]
        with ``layer_sizes[0]`` columns."""
        self._require_top("classify")
        x = self._check_images(x, allow_empty=True)
        if not stochastic and repeats == 1:
            return self.top.classify(self.features(x))
        return np.argmax(self.label_log_probabilities(x, stochastic=stochastic, repeats=repeats,
                                                      seed=seed), axis=1)

    def error_rate(self, x, y, **classify_options):
        """Fraction of the rows of ``x`` (non-empty) misclassified against ``y`` (one
        integer label in 0..n_classes-1 per row); ``classify_options`` as ``classify``."""
        self._require_top("error_rate")
        x = self._check_images(x)
        y = check.check_labels("y", y, n_classes=self.n_classes, n=len(x))
        return float(np.mean(self.classify(x, **classify_options) != np.asarray(y)))

    def generate(self, labels, *, gibbs_steps=1000, seed=None, return_chain=None, verbose=0):
        """Class-conditional samples: clamp ``labels`` (n,), run ``gibbs_steps`` Gibbs
        steps in the top RBM, then one top-down pass (binary states in hidden layers,
        pixel *probabilities* at the bottom).

        ``return_chain=m`` also returns the pixels after every m-th step of the chain
        (shape (steps // m, n, 784)) to show a chain evolving.

        ``labels`` is a non-empty 1-D integer array in 0..n_classes-1; ``gibbs_steps``
        and ``return_chain`` integers >= 1 (or None); ``seed`` an integer >= 0 or None;
        ``verbose`` 0-2 (a progress bar over the Gibbs steps of each chain segment).
        """
        self._require_top("generate")
        _check_positive_int("gibbs_steps", gibbs_steps)
        return_chain = check.check_int("return_chain", return_chain, low=1, optional=True)
        seed = check.check_seed("seed", seed, optional=True)
        labels = check.check_labels("labels", labels, n_classes=self.n_classes)
        if len(labels) == 0:
            raise ValueError("labels is empty; allowed: at least one label to generate from")
        labels = self.top._check_labels(labels, len(labels))
        seed = self.seed if seed is None else seed
        rng = np.random.default_rng(seed)
        frames, init, done = [], None, 0
        every = return_chain or gibbs_steps
        while done < gibbs_steps:
            steps = min(every, gibbs_steps - done)
            top_visible = self.top.sample(len(labels), steps, init=init, labels=labels,
                                          seed=chain_seed(seed, done), verbose=verbose)
            init = bernoulli_np(top_visible, rng)
            done += steps
            frames.append(self._down(top_visible[:, : -self.n_classes], rng))
        return (frames[-1], np.stack(frames)) if return_chain else frames[-1]

    def _down(self, penultimate_probs, rng):
        state = penultimate_probs
        for W, b in reversed(self.generative):
            state = bernoulli_np(state, rng)
            state = tf.sigmoid(tf.matmul(state, W, transpose_b=True) + b).numpy()
        return state

    # ---------------------------------------------------------------- up-down
    @distribute.in_model_scope
    def up_down(self, x, y, config=UpDownConfig(), *, checkpoint_dir=None, verbose=1,
                validation=None, stop_at_train_error=None):
        """Contrastive wake-sleep fine-tuning; resumable per epoch.

        x : (n, 784) grey levels, binarized stochastically anew every epoch; y : (n,).
        ``validation=(x_val, y_val)`` logs the generative classifier's error per epoch.
        ``stop_at_train_error=e`` (the paper's continuation on all 60,000 images) also
        logs the classifier's error on ``(x, y)`` after every epoch and stops after the
        first epoch at which it is <= e (``config.epochs`` is then the cap).
        Returns the per-epoch history (k, seconds, validation and training errors).

        ``x`` non-empty, finite in [0, 1], ``layer_sizes[0]`` columns; ``y`` one integer
        label in 0..n_classes-1 per row; ``config`` an ``UpDownConfig``;
        ``validation`` None or a pair of the same kind; ``stop_at_train_error`` None or
        a number in [0, 1].  Checked before any work.
        """
        self._require_top("up_down")
        if not isinstance(config, UpDownConfig):
            raise ValueError(f"config={config!r} must be an UpDownConfig")
        x = self._check_images(x)
        y = check.check_labels("y", y, n_classes=self.n_classes, n=len(x))
        stop_at_train_error = check.check_float("stop_at_train_error", stop_at_train_error,
                                                low=0.0, high=1.0, optional=True)
        if validation is not None:
            if not isinstance(validation, (tuple, list)) or len(validation) != 2:
                raise ValueError(f"validation must be a pair (x_val, y_val) or None; got "
                                 f"{type(validation).__name__}")
            x_val = self._check_images(validation[0], "validation[0]")
            validation = (x_val, check.check_labels("validation[1]", validation[1],
                                                    n_classes=self.n_classes, n=len(x_val),
                                                    length_of="validation[0]"))
        _check_dir("checkpoint_dir", checkpoint_dir)
        run = contextlib.nullcontext()
        if checkpoint_dir is not None:
            # The starting weights are keyed, not just the pretrained model's name: a second
            # up_down in one process starts where the first ended.
            spec = {"what": "up_down", "model": self.cache_key, "config": config.cache_settings(),
                    "initial_weights": fingerprint(*(v.numpy() for v in self._variables())),
                    "data": fingerprint(x, y),
                    "validation": None if validation is None else fingerprint(*validation)}
            if stop_at_train_error is not None:
                spec["stop_at_train_error"] = stop_at_train_error
            run = RunDir(run_path(checkpoint_dir, "up_down", spec), spec, what="up-down")
        with run as run:
            return self._up_down(x, y, config, run, verbose, validation, stop_at_train_error)

    def _up_down(self, x, y, config, run, verbose, validation, stop_at):
        variables = self._variables()
        # One velocity per parameter (momentum > 0 only: without it the update is the
        # paper's plain SGD, bit-identical to runs cached before momentum existed).
        velocities = ([tf.Variable(tf.zeros_like(v)) for v in variables]
                      if config.momentum > 0 else None)
        state = run.state("up_down") if run is not None else None
        if state is not None:
            with np.load(run.file(UP_DOWN_FILE)) as f:
                self._assign_variables(f, run.file(UP_DOWN_FILE), velocities)
        else:
            state = {"epoch": 0, "history": {"k": [], "epoch_seconds": [], "val_error": []}}
        history = state["history"]
        if stop_at is not None:
            history.setdefault("train_error", [])
            if history["train_error"] and history["train_error"][-1] <= stop_at:
                return history  # finished: the criterion was met in the last saved epoch
        # The variables are captured by closure (as arguments they would become tensors).
        strategy = self.distribute_strategy
        step_fn = tf.function(lambda xb, yb, k, seed: _up_down_step(
            xb, yb, variables, self.n_classes, k, config.learning_rate, seed,
            velocities=velocities, momentum=config.momentum,
            weight_decay=config.weight_decay, strategy=strategy), reduce_retracing=True)
        for epoch in range(state["epoch"], config.epochs):
            t0, k = time.time(), config.k_at(epoch)
            batches = pipeline.epoch_datasets(x, y, batch_size=config.batch_size, seed=self.seed,
                                     binarization=config.binarization)(epoch)
            if strategy.num_replicas_in_sync > 1:  # each replica gets its share of a batch
                batches = strategy.experimental_distribute_dataset(batches)
            for step, (xb, yb) in enumerate(batches):
                # Key (seed, epoch) x (step, draw): no two draws of a run share a key.
                step_fn(xb, yb, k, tf.constant([epoch_seed(self.seed, epoch), step * 1000], tf.int64))
            if not all(np.all(np.isfinite(v.numpy())) for v in variables):
                raise FloatingPointError(f"up-down diverged at epoch {epoch + 1} "
                                         f"(learning rate {config.learning_rate})")
            history["k"].append(k)
            history["epoch_seconds"].append(time.time() - t0)
            if validation is not None:
                history["val_error"].append(self.error_rate(*validation))
            if stop_at is not None:
                history["train_error"].append(self.error_rate(x, y))
            if verbose:
                print(f"up-down epoch {epoch + 1}/{config.epochs}: k={k}, "
                      f"{history['epoch_seconds'][-1]:.0f}s"
                      + (f", val error {history['val_error'][-1]:.4f}" if validation else "")
                      + (f", train error {history['train_error'][-1]:.4f} (stop at {stop_at:.4f})"
                         if stop_at is not None else ""), flush=True)
            if run is not None:
                arrays = {f"v{i}": v.numpy() for i, v in enumerate(variables)}
                arrays.update({f"m{i}": m.numpy() for i, m in enumerate(velocities or [])})
                run.save(up_down={"epoch": epoch + 1, "history": history},
                         files={UP_DOWN_FILE: lambda path: save_npz(path, **arrays)})
            if stop_at is not None and history["train_error"][-1] <= stop_at:
                break
        return history

    def _variables(self):
        flat = [v for pair in self.recognition + self.generative for v in pair]
        return flat + [self.top.W, self.top.visible_bias, self.top.hidden_bias]

    def _assign_variables(self, arrays, path, velocities=None):
        pairs = [(f"v{i}", v) for i, v in enumerate(self._variables())]
        pairs += [(f"m{i}", m) for i, m in enumerate(velocities or [])]
        for name, v in pairs:
            if name not in arrays:
                raise CheckpointCorruptError(f"checkpoint {path} has no array {name} "
                                             f"({way_out(path.parent)})")
            if arrays[name].shape != tuple(v.shape):
                raise ValueError(f"checkpoint {path} holds a different architecture "
                                 f"({name}: {arrays[name].shape} vs {tuple(v.shape)})")
        for name, v in pairs:
            v.assign(arrays[name])

    def save(self, directory):
        """Top RBM (.keras) plus recognition/generative weights (.npz)."""
        self._require_top("save")
        _check_dir("directory", directory, optional=False)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.top.save(directory / "top.keras")
        save_npz(directory / "weights.npz", **{f"v{i}": v.numpy() for i, v in enumerate(self._variables())})


def _logsumexp_rows(a):
    """log sum_k exp(a[:, k]) as a column (n, 1), computed stably in float64."""
    a = np.asarray(a, np.float64)
    top = a.max(axis=1, keepdims=True)
    return top + np.log(np.exp(a - top).sum(axis=1, keepdims=True))


def _bernoulli(p, seed):
    return bernoulli(p, tf.random.stateless_uniform(tf.shape(p), seed=seed))


def _up_down_step(x, labels, variables, n_classes, k, lr, seed, *, velocities=None, momentum=0.0,
                  weight_decay=0.0, strategy=None):
    """One up-down update on a batch (x (B, 784) binary, labels (B,) integers).

    Each parameter moves by ``lr * delta`` (plain SGD, ``velocities`` None) or, with
    ``velocities`` (one per variable), by v <- momentum * v + lr * delta.  ``delta`` is the
    wake/sleep/CD statistic minus ``weight_decay`` times the parameter for weight matrices
    (never biases).

    With a ``strategy`` of R > 1 replicas, ``x`` and ``labels`` are distributed values (a
    batch of ``strategy.experimental_distribute_dataset``): every replica computes its
    share of the statistics of the global batch with its own random stream
    (``dbn.distribute``), their sum is the global statistic, and the update is applied
    once, to every copy of the variables."""
    if strategy is None or strategy.num_replicas_in_sync == 1:
        deltas = _up_down_statistics(x, labels, variables, n_classes, k, seed)
    else:
        per_replica = strategy.run(
            lambda xr, yr: _up_down_statistics(xr, yr, variables, n_classes, k, seed), args=(x, labels))
        deltas = [strategy.reduce(tf.distribute.ReduceOp.SUM, d, axis=None) for d in per_replica]
    for i, (variable, delta) in enumerate(zip(variables, deltas)):
        if weight_decay and len(variable.shape) == 2:
            delta = delta - weight_decay * variable
        if velocities is None:
            variable.assign_add(lr * delta)
        else:
            velocity = velocities[i]
            velocity.assign(momentum * velocity + lr * delta)
            variable.assign_add(velocity)


def _up_down_statistics(x, labels, variables, n_classes, k, seed):
    """The wake/sleep/CD statistics of one up-down update, one per variable (in the
    order of ``variables``), each a mean over the batch; under tf.distribute this
    replica's share of the global-batch mean (sums over its rows divided by the global
    number of rows; every replica draws from its own keys, ``dbn.distribute.replica_key``)."""
    labels = tf.one_hot(labels, n_classes, dtype=x.dtype)
    n_lower = (len(variables) - 3) // 4
    recognition = [(variables[2 * i], variables[2 * i + 1]) for i in range(n_lower)]
    generative = [(variables[2 * (n_lower + i)], variables[2 * (n_lower + i) + 1]) for i in range(n_lower)]
    W_top, b_top, c_top = variables[-3:]
    counter = [0]

    def sample(p):  # draw j of the step: key (seed[0], seed[1] + j), this replica's
        counter[0] += 1
        return _bernoulli(p, distribute.replica_key(seed + tf.constant([0, 1], tf.int64) * counter[0]))

    replicas = distribute.num_replicas()
    B = distribute.global_sum(tf.cast(tf.shape(x)[0], x.dtype))

    def mean(a):  # this replica's share of the column mean over the global batch
        return tf.reduce_mean(a, 0) if replicas == 1 else tf.reduce_sum(a, 0) / B

    # Wake phase: bottom-up with the recognition weights, sampled states.
    wake = [x]
    for W, b in recognition:
        wake.append(sample(tf.sigmoid(tf.matmul(wake[-1], W) + b)))
    v_pos = tf.concat([wake[-1], labels], axis=1)
    h = sample(tf.sigmoid(tf.matmul(v_pos, W_top) + c_top))
    positive = tf.matmul(v_pos, h, transpose_a=True)
    h_pos = h
    # Top RBM: k alternating Gibbs steps; labels as softmax probabilities (paper).
    v_neg = v_pos
    for _ in range(k):
        a = tf.matmul(h, W_top, transpose_b=True) + b_top
        pen = sample(tf.sigmoid(a[:, :-n_classes]))
        v_neg = tf.concat([pen, tf.nn.softmax(a[:, -n_classes:])], axis=1)
        h = sample(tf.sigmoid(tf.matmul(v_neg, W_top) + c_top))
    negative = tf.matmul(v_neg, h, transpose_a=True)
    # Sleep phase: top-down with the generative weights from the top RBM's fantasy.
    sleep = [v_neg[:, :-n_classes]]
    for i, (W, b) in enumerate(reversed(generative)):
        p = tf.sigmoid(tf.matmul(sleep[-1], W, transpose_b=True) + b)
        sleep.append(p if i == n_lower - 1 else sample(p))
    sleep = sleep[::-1]  # sleep[l] is layer l (pixels: probabilities)
    updates = {}  # id(variable) -> statistic
    # Generative weights learn to reconstruct each wake layer from the one above.
    for l, (W, b) in enumerate(generative):
        error = wake[l] - tf.sigmoid(tf.matmul(wake[l + 1], W, transpose_b=True) + b)
        updates[id(W)] = tf.matmul(error, wake[l + 1], transpose_a=True) / B
        updates[id(b)] = mean(error)
    # Recognition weights learn to infer each sleep layer from the one below.
    for l, (W, b) in enumerate(recognition):
        error = sleep[l + 1] - tf.sigmoid(tf.matmul(sleep[l], W) + b)
        updates[id(W)] = tf.matmul(sleep[l], error, transpose_a=True) / B
        updates[id(b)] = mean(error)
    updates[id(W_top)] = (positive - negative) / B
    updates[id(b_top)] = mean(v_pos - v_neg)
    updates[id(c_top)] = mean(h_pos - h)
    return [updates[id(v)] for v in variables]
