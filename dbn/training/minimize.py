"""One fine-tuning driver for conjugate gradients, L-BFGS and Adam, resumable per epoch.

Hinton & Salakhutdinov (2006) fine-tuned with Carl Rasmussen's ``minimize.m``: conjugate
gradients with 3 line searches on each mini-batch of 1,000 images (10 of their batches of
100 merged), 200 epochs (``backprop.m``), and the classifier the same way with the top
layer alone for the first 5 epochs (``backpropclassify.m``).  Here the same loop drives
``scipy.optimize.minimize`` (``method="CG"`` or ``"L-BFGS-B"``, ``maxiter`` = the line
searches: one line search per iteration) on a flat float64 vector of the trainable
variables, with the value and gradient from TensorFlow; or takes one Adam step per
mini-batch.

Each epoch's batch order is a function of ``(seed, epoch)`` alone, and after every epoch
the weights (and, until the last epoch, Adam's moments), the epoch and the history are
saved to a verified run directory (``dbn.training.checkpoint.RunDir``): a killed run
resumes after its last finished epoch exactly as if it had not stopped.  scipy's CG and L-BFGS keep no state
across mini-batches (each batch starts a fresh minimisation, as ``minimize.m`` did), so
there is nothing else to save.
"""

from __future__ import annotations

import logging
import time

import keras
import numpy as np
import scipy.optimize
import tensorflow as tf

from dbn import validation as check
from dbn.provenance import save_npz
from dbn.training.configs import MinimizeConfig

log = logging.getLogger("dbn")
WEIGHTS_FILE = "weights.npz"
SCIPY_METHODS = {"cg": "CG", "lbfgs": "L-BFGS-B"}


def epoch_order(n, seed, epoch):
    """The permutation of ``n`` rows used in ``epoch`` (a function of seed and epoch)."""
    return np.random.default_rng([int(seed), int(epoch), 0x6D696E]).permutation(n)


class FlatVariables:
    """A list of variables seen as one flat float64 vector (scipy's view)."""

    def __init__(self, variables):
        self.variables = list(variables)
        self.shapes = [tuple(v.shape) for v in self.variables]
        self.sizes = [int(np.prod(s)) for s in self.shapes]

    def get(self):
        return np.concatenate([v.numpy().ravel() for v in self.variables]).astype(np.float64)

    def set(self, theta):
        start = 0
        for v, shape, size in zip(self.variables, self.shapes, self.sizes):
            v.assign(np.asarray(theta[start: start + size], np.float32).reshape(shape))
            start += size

    def flatten(self, tensors):
        return np.concatenate([np.asarray(t, np.float64).ravel() for t in tensors])


def _value_and_gradient(loss_fn, variables):
    @tf.function(reduce_retracing=True)
    def value_and_gradient(*batch):
        with tf.GradientTape() as tape:
            loss = loss_fn(*batch)
        return loss, tape.gradient(loss, variables)
    return value_and_gradient


def scipy_step(flat, value_and_gradient, batch, *, method, line_searches, wolfe=None):
    """``line_searches`` iterations of scipy's ``method`` ("cg" or "lbfgs") on one batch,
    from the current weights (CG's line search with the strong Wolfe constants ``wolfe``
    = (c1, c2), default scipy's); sets the weights to the result; returns (loss before,
    loss after, function evaluations)."""
    evaluations = []

    def fun(theta):
        flat.set(theta)
        loss, grads = value_and_gradient(*batch)
        evaluations.append(float(loss))
        return float(loss), flat.flatten(grads)

    options = {"maxiter": line_searches, "gtol": 0.0}
    if method == "cg" and wolfe is not None:
        options.update(c1=wolfe[0], c2=wolfe[1])
    if method == "lbfgs":
        options.update(ftol=0.0, maxfun=20 * line_searches)
    result = scipy.optimize.minimize(fun, flat.get(), jac=True, method=SCIPY_METHODS[method],
                                     options=options)
    flat.set(result.x)
    return evaluations[0], float(result.fun), len(evaluations)


def train_epochs(model, loss_fn, data, config, *, variables=None, warmup_variables=None,
                 evaluate=None, stop=None, on_epoch=None, checkpoint=None, seed=0, progress=True):
    """Fine-tune ``model`` for ``config.epochs`` epochs; resumable.

    Parameters
    ----------
    model : keras.Model
        Built; its weights are what is trained and saved.
    loss_fn : callable
        ``loss_fn(*batch) -> scalar tensor``, the mean loss of a mini-batch (traced once).
    data : tuple of arrays
        Equal-length arrays (inputs, and targets if any), shuffled per epoch.
    config : MinimizeConfig
    variables : list of tf.Variable, optional
        What is trained (default: ``model.trainable_variables``).
    warmup_variables : list of tf.Variable, optional
        Trained alone during the first ``config.warmup_epochs`` epochs.
    evaluate : callable, optional
        ``evaluate() -> dict`` of numbers logged after every epoch (e.g. test error).
    stop : callable, optional
        ``stop(history) -> bool``, asked after every epoch (and on resuming): True ends
        training there (early stopping; a function of the history alone, so a resumed
        run stops where an uninterrupted one would; key the checkpoint by it).
    on_epoch : callable, optional
        ``on_epoch(history)``, called after every epoch once it is saved, and on resuming
        with the resumed history (to publish partial results of a long run); its return
        value is ignored and it changes nothing of the training.
    checkpoint : RunDir, optional
        An open run directory keyed by everything that determines the run.
    seed : int >= 0
        Seeds the batch order.

    Returns
    -------
    history : dict[str, list[float]]
        Per epoch: ``loss`` (mean batch loss before each batch's step), ``seconds``
        (training time of the epoch), ``evaluations`` (function evaluations, CG/L-BFGS),
        and whatever ``evaluate`` returns; resumed epochs included.
    """
    if not isinstance(config, MinimizeConfig):
        raise ValueError(f"config={config!r} must be a MinimizeConfig")
    if not isinstance(data, tuple) or not data:
        raise ValueError("data must be a non-empty tuple of arrays (inputs[, targets])")
    n = len(data[0])
    if any(len(a) != n for a in data) or n == 0:
        raise ValueError(f"data arrays have lengths {[len(a) for a in data]}; allowed: equal, >= 1")
    seed = check.check_seed("seed", seed)
    variables = list(model.trainable_variables if variables is None else variables)
    warmup = list(warmup_variables or [])
    if config.warmup_epochs and not warmup:
        raise ValueError(f"warmup_epochs={config.warmup_epochs} needs warmup_variables")
    history, start = {}, 0
    optimizer = keras.optimizers.Adam(config.learning_rate) if config.method == "adam" else None
    if optimizer is not None:
        optimizer.build(variables)
    state = checkpoint.state("minimize") if checkpoint is not None else None
    if state is not None:
        start, history = state["epoch"], state["history"]
        saved = np.load(checkpoint.file(WEIGHTS_FILE))
        for i, w in enumerate(model.weights):
            w.assign(saved[f"w{i}"])
        if optimizer is not None and start < config.epochs:  # a finished run keeps no moments
            for i, v in enumerate(optimizer.variables):
                v.assign(saved[f"o{i}"])
        log.info("fine-tuning (%s): resuming after epoch %d of %d", config.method, start, config.epochs)
        if on_epoch is not None and history:
            on_epoch(history)
    if stop is not None and history and stop(history):
        return history  # finished early in an earlier session
    steps = {}

    def step_for(trainable):
        key = tuple(id(v) for v in trainable)
        if key not in steps:
            if optimizer is None:
                steps[key] = (FlatVariables(trainable), _value_and_gradient(loss_fn, trainable))
            else:
                steps[key] = _adam_step(loss_fn, trainable, optimizer)
        return steps[key]

    for epoch in range(start, config.epochs):
        trainable = warmup if epoch < config.warmup_epochs else variables
        order = epoch_order(n, seed, epoch)
        t0, losses, evaluations = time.perf_counter(), [], 0
        for s in range(0, n, config.batch_size):
            idx = order[s: s + config.batch_size]
            batch = tuple(tf.constant(a[idx]) for a in data)
            if optimizer is None:
                flat, vg = step_for(trainable)
                before, _, count = scipy_step(flat, vg, batch, method=config.method,
                                              line_searches=config.line_searches,
                                              wolfe=config.wolfe)
                evaluations += count
                losses.append(before)
            else:
                losses.append(float(step_for(trainable)(*batch)))
        seconds = time.perf_counter() - t0
        logs = {"loss": float(np.mean(losses)), "seconds": seconds, "evaluations": evaluations}
        if not np.isfinite(logs["loss"]) or not all(np.all(np.isfinite(w.numpy())) for w in model.weights):
            raise FloatingPointError(f"fine-tuning ({config.method}) diverged in epoch {epoch + 1}: "
                                     f"loss {logs['loss']}; nothing saved for this epoch")
        if evaluate is not None:
            logs.update({k: float(v) for k, v in evaluate().items()})
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
        if progress:
            log.info("fine-tuning (%s) epoch %d/%d: %s", config.method, epoch + 1, config.epochs,
                     ", ".join(f"{k} {v:.4g}" for k, v in logs.items()))
        if checkpoint is not None:
            arrays = {f"w{i}": w.numpy() for i, w in enumerate(model.weights)}
            if optimizer is not None and epoch + 1 < config.epochs:  # needed to resume only
                arrays.update({f"o{i}": v.numpy() for i, v in enumerate(optimizer.variables)})
            checkpoint.save(minimize={"epoch": epoch + 1, "history": history},
                            files={WEIGHTS_FILE: lambda path: save_npz(path, **arrays)})
        if on_epoch is not None:
            on_epoch(history)
        if stop is not None and stop(history):
            break
    return history


def _adam_step(loss_fn, variables, optimizer):
    @tf.function(reduce_retracing=True)
    def step(*batch):
        with tf.GradientTape() as tape:
            loss = loss_fn(*batch)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss
    return step
