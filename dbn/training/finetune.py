"""Supervised fine-tuning of unrolled DBN classifiers (and of their random-init twins).

``fine_tune`` is used identically for pretrained and randomly initialised networks so
that comparisons differ only in the initial weights: same optimiser, schedule, batches
(seeded per epoch), early stopping on validation error restoring the best weights.
``refit_schedule`` + ``fit_schedule`` retrain a network on more data for the
early-stopped number of epochs with the rates that run used.  Both checkpoint after every
epoch (weights + optimizer state + schedule state), so a killed run resumes where it
stopped and ends with the same weights as an uninterrupted one.

An epoch is Keras' own ``train_step`` over the epoch's shuffled batches: looped in-graph
over stacked batches on one device (``_in_graph_epoch``, the weights of ``fit`` to the
bit), run on every replica under a tf.distribute strategy (``_distributed_epoch``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from dbn import distribute
from dbn import validation as check
from dbn.data import pipeline
from dbn.models.classifier import hidden_layers
from dbn.seeds import epoch_seed, layer_seed
from dbn.training.checkpoint import (CheckpointMismatchError, RunDir, fingerprint, open_for,
                                     section_state, way_out)
from dbn.training.configs import FineTuneConfig
from dbn.provenance import save_npz

log = logging.getLogger("dbn")
LAST_FILE = "last.weights.h5"  # model and optimizer after the last finished epoch
# Training steps per call of Keras' compiled train function: the steps loop in-graph, which
# removes a per-batch Python and thread hand-off; the updates, their order and the weights
# are exactly those of one step per call (tested).  experiments/benchmark_finetune.py
# measures the difference.
STEPS_PER_EXECUTION = 50
# One device: each epoch is Keras' train_step looped in-graph over stacked batches
# (``_in_graph_epoch``: the same weights as fit, tested); False: Keras' fit.
IN_GRAPH_EPOCHS = True
BEST_FILE = "best_weights.npz"  # the weights of the best validation error so far


def _compile(model, config, *, output_only, learning_rate):
    model.__dict__.pop("_dbn_in_graph_steps", None)  # traced for the previous compile
    for layer in hidden_layers(model):
        layer.trainable = not output_only
    with distribute.scope(model.distribute_strategy):  # the model's tf.distribute strategy, if any
        optimizer = (keras.optimizers.SGD(learning_rate, momentum=config.momentum)
                     if config.optimizer == "sgd" else keras.optimizers.Adam(learning_rate))
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], steps_per_execution=STEPS_PER_EXECUTION)
        model.optimizer.build(model.trainable_variables)


def _reseed_dropout(model, seed, epoch):
    """Dropout masks depend only on (seed, epoch, layer): resumable and reproducible."""
    for i, layer in enumerate(model.layers):
        generator = getattr(layer, "seed_generator", None)
        if generator is not None:
            generator.state.assign(np.array([layer_seed(seed, i), epoch], dtype=generator.state.dtype))


def _model_sizes(model):
    """(input width, number of outputs) of a single-input Keras classifier; None where
    the model does not say (not built, several inputs)."""
    if not isinstance(model, keras.Model):
        raise ValueError(f"model={model!r} must be a keras.Model (e.g. a build_classifier network)")
    sizes = []
    for attribute in ("input_shape", "output_shape"):
        try:
            sizes.append(int(getattr(model, attribute)[-1]))
        except (AttributeError, TypeError, ValueError, IndexError):
            sizes.append(None)
    return tuple(sizes)


def check_classification_data(model, x, y, *, x_name="x", y_name="y", allow_empty=False):
    """``x`` (n, D) finite in [0, 1] with the model's input width D, ``y`` (n,) integer
    labels in 0..n_outputs-1 (one per row); returns them as float32 / int64 arrays.
    Raises ValueError naming the argument, before any work."""
    n_in, n_out = _model_sizes(model)
    x = check.check_matrix(x_name, x, n_columns=n_in, allow_empty=allow_empty,
                           columns_what="the model's input width is")
    y = check.check_labels(y_name, y, n_classes=n_out, n=len(x), length_of=x_name)
    return x, y


def error_rate(model, x, y, *, batch_size=1000):
    """Fraction of rows of x (n, D) whose argmax prediction differs from y (n,).

    ``x`` must be non-empty, finite in [0, 1] and as wide as the model's input; ``y``
    one integer label per row in 0..n_outputs-1; ``batch_size`` an integer >= 1."""
    x, y = check_classification_data(model, x, y)
    batch_size = check.check_int("batch_size", batch_size, low=1)
    predictions = np.argmax(model.predict(x, batch_size=batch_size, verbose=0), axis=1)
    return float(np.mean(predictions != np.asarray(y)))


def fine_tune(model, x_train, y_train, x_val, y_val, config, *, seed=0,
              checkpoint_dir=None, verbose=0):
    """Train ``model`` (a ``build_classifier`` network) by backprop with early stopping.

    Parameters
    ----------
    model : keras.Model
        Uncompiled classifier; compiled here.
    x_train : array (n, D); y_train : int array (n,)
    x_val : array (m, D); y_val : int array (m,)
        Validation split for early stopping (never the test set).
        Both splits must be non-empty, finite in [0, 1], as wide as the model's input,
        with one integer label in 0..n_outputs-1 per row (float labels are refused,
        never truncated); checked before any work.
    config : FineTuneConfig
    seed : int >= 0
    checkpoint_dir : path or dbn.training.checkpoint.RunDir, optional
        Resume directory (a verified, locked run directory keyed by the settings, seed,
        architecture, initial weights and data; or the caller's open run): after every
        epoch the model and optimizer, the best weights and the early-stopping state are
        saved there atomically; a killed run resumes where it stopped.

    Returns
    -------
    dict
        ``history`` (per-epoch train loss, accuracy, val error), ``best_epoch`` (1-based),
        ``best_val_error``, ``epochs_run``, ``stopped_early``, ``final_learning_rate``.
    """
    _check_finetune_config(config)
    if hasattr(x_val, "__len__") and len(x_val) == 0:
        raise ValueError("fine_tune needs a non-empty validation split for early stopping "
                         "(x_val is empty)")
    x_train, y_train = check_classification_data(model, x_train, y_train, x_name="x_train",
                                                 y_name="y_train")
    x_val, y_val = check_classification_data(model, x_val, y_val, x_name="x_val", y_name="y_val")
    seed = check.check_seed("seed", seed)
    _check_checkpoint_dir(checkpoint_dir)
    _check_precision(model, config)
    inputs = (None if checkpoint_dir is None  # only checkpoints need the hashes
              else _inputs("fine_tune", model, config, seed, x_train, y_train, x_val, y_val))
    # The model's strategy in scope: the run's key names it (checkpoint.with_distribution).
    with distribute.scope(model.distribute_strategy), open_for(checkpoint_dir, inputs, what="fine-tuning") as run:
        return _fine_tune(model, x_train, y_train, x_val, y_val, config, seed, run, inputs, verbose)


def epoch_examples(x, y, min_epoch_size):
    """The examples of one epoch: ``x``, ``y`` themselves, or ``ceil(min_epoch_size / n)``
    whole copies of them when they are fewer than ``min_epoch_size``
    (``FineTuneConfig.min_epoch_size``); the epoch's shuffle then mixes the copies."""
    copies = -(-min_epoch_size // len(x))
    if copies <= 1:
        return x, y
    return np.tile(x, (copies, 1)), np.tile(y, copies)


def _fine_tune(model, x_train, y_train, x_val, y_val, config, seed, run, inputs, verbose):
    x_train, y_train = epoch_examples(x_train, y_train, config.min_epoch_size)
    state = {**_initial_tracking(config), "inputs": inputs,
             "history": {"loss": [], "accuracy": [], "val_error": []}}
    resumed = section_state(run, "fine_tune", inputs)
    if resumed is not None:
        _check_resumable(resumed["history"]["val_error"], config, run)
        state = resumed
        log.info("%s: resuming after epoch %d%s", run.what, state["epoch"],
                 " (stopped early: nothing to train)" if state["wait"] >= config.patience else "")
        with np.load(run.file(BEST_FILE)) as f:
            best_weights = [f[f"w{i}"] for i in range(len(f.files))]
    phase = _compile_for_epoch(model, config, state["epoch"], state["learning_rate"])
    if resumed is not None:
        model.load_weights(run.file(LAST_FILE))
    else:
        best_weights = model.get_weights()
    # An early-stopped run stays stopped when it is resumed.
    last_epoch = state["epoch"] if state["wait"] >= config.patience else config.max_epochs
    for epoch in range(state["epoch"], last_epoch):
        phase = _compile_for_epoch(model, config, epoch, state["learning_rate"], phase)
        logs = _train_epoch(model, x_train, y_train, config, seed=seed, epoch=epoch,
                            learning_rate=state["learning_rate"], verbose=verbose)
        val_error = error_rate(model, x_val, y_val)
        for key, value in {**logs, "val_error": val_error}.items():
            state["history"][key].append(value)
        files = {}
        if _track(state, val_error, config):
            best_weights = model.get_weights()
            files[BEST_FILE] = lambda path: save_npz(
                path, **{f"w{i}": w for i, w in enumerate(best_weights)})
        _checkpoint(model, run, "fine_tune", state, files)
        if state["wait"] >= config.patience:
            break
    model.set_weights(best_weights)
    return {
        "history": state["history"],
        "best_epoch": state["best_epoch"],
        "best_val_error": state["best_val_error"],
        "epochs_run": state["epoch"],
        "stopped_early": state["wait"] >= config.patience,
        "final_learning_rate": state["learning_rate"],
    }


def refit_schedule(val_errors, config):
    """The learning rate of each epoch up to the best one of an early-stopped run.

    Parameters
    ----------
    val_errors : sequence of float (epochs_run,)
        The run's validation error after each epoch (``fine_tune``'s
        ``history["val_error"]``).
    config : FineTuneConfig
        The settings the run was fine-tuned with.

    Returns
    -------
    list of float (best_epoch,)
        ``fine_tune``'s rule replayed: the rates a refit on more data uses so that it
        trains for the early-stopped number of epochs on the same schedule.
    """
    _check_finetune_config(config)
    if isinstance(val_errors, (str, bytes)) or not hasattr(val_errors, "__len__"):
        raise ValueError(f"val_errors={val_errors!r} must be a sequence of validation errors")
    if len(val_errors) == 0:
        raise ValueError("refit_schedule needs the validation errors of at least one epoch")
    val_errors = [check.check_float(f"val_errors[{i}]", e, low=0.0, high=1.0)
                  for i, e in enumerate(val_errors)]
    state, rates = _initial_tracking(config), []
    for val_error in val_errors:
        rates.append(state["learning_rate"])
        _track(state, val_error, config)
    return rates[:state["best_epoch"]]


def fit_schedule(model, x, y, config, learning_rates, *, seed=0, checkpoint_dir=None, verbose=0):
    """Train ``model`` for ``len(learning_rates)`` epochs without validation, epoch ``i``
    at ``learning_rates[i]``; the same batches, dropout masks, optimizer and output-only
    phase as ``fine_tune`` (on the same data and schedule the weights are identical).

    Parameters
    ----------
    model : keras.Model
        Uncompiled classifier; compiled here.
    x : array (n, D); y : int array (n,)
        Non-empty, as for ``fine_tune``.
    config : FineTuneConfig
        Optimizer, momentum, batch size and output-only epochs (its learning rate,
        early-stopping and plateau settings are replaced by ``learning_rates``).
    learning_rates : sequence of float (epochs,)
        Non-empty, each finite and > 0 (not bools or strings); e.g.
        ``refit_schedule(history["val_error"], config)``.
    seed : int >= 0
    checkpoint_dir : path or dbn.training.checkpoint.RunDir, optional
        Resume directory, as for ``fine_tune`` (keyed by the schedule too).

    Returns
    -------
    dict
        ``history`` (per-epoch train loss and accuracy), ``epochs_run``.
    """
    _check_finetune_config(config)
    allowed = "a non-empty list of finite rates > 0"
    if isinstance(learning_rates, (str, bytes)) or not hasattr(learning_rates, "__len__"):
        raise ValueError(f"learning_rates={learning_rates!r} must be {allowed}")
    rates = list(learning_rates)
    if not rates or not all(check._is_real(r) and math.isfinite(r) and r > 0 for r in rates):
        raise ValueError(f"learning_rates={rates} must be {allowed}")
    rates = [float(r) for r in rates]
    x, y = check_classification_data(model, x, y)
    seed = check.check_seed("seed", seed)
    _check_checkpoint_dir(checkpoint_dir)
    _check_precision(model, config)
    inputs = (None if checkpoint_dir is None  # only checkpoints need the hashes
              else {**_inputs("fit_schedule", model, config, seed, x, y), "learning_rates": rates})
    with distribute.scope(model.distribute_strategy), open_for(checkpoint_dir, inputs, what="refit") as run:
        state = section_state(run, "fit_schedule", inputs)
        resumed = state is not None
        if not resumed:
            state = {"epoch": 0, "inputs": inputs, "history": {"loss": [], "accuracy": []}}
        phase = _compile_for_epoch(model, config, state["epoch"], rates[0])  # each epoch sets its rate
        x, y = epoch_examples(x, y, config.min_epoch_size)
        if resumed:
            model.load_weights(run.file(LAST_FILE))
        for epoch in range(state["epoch"], len(rates)):
            phase = _compile_for_epoch(model, config, epoch, rates[epoch], phase)
            logs = _train_epoch(model, x, y, config, seed=seed, epoch=epoch,
                                learning_rate=rates[epoch], verbose=verbose)
            for key, value in logs.items():
                state["history"][key].append(value)
            state["epoch"] = epoch + 1
            _checkpoint(model, run, "fit_schedule", state)
    return {"history": state["history"], "epochs_run": state["epoch"]}


def _check_finetune_config(config):
    if not isinstance(config, FineTuneConfig):
        raise ValueError(f"config={config!r} must be a FineTuneConfig")


def _check_precision(model, config):
    """``config.precision`` other than float32 needs float32 hidden layers to switch (a
    classifier of ``build_classifier``): else the run would record a precision it never
    used."""
    if config.precision == "float32":
        return
    layers = hidden_layers(model)
    if not layers:
        raise ValueError(f"precision={config.precision!r} needs the sigmoid hidden layers of "
                         "dbn.build_classifier (Dense layers named hidden_<i>); this model has "
                         "none; allowed for it: precision='float32'")
    policies = sorted({layer.dtype_policy.name for layer in layers} - {"float32"})
    if policies:
        raise ValueError(f"precision={config.precision!r} switches float32 hidden layers; this "
                         f"model's hidden layers compute in {policies}; build them in float32 "
                         "(the default)")


def _check_checkpoint_dir(path):
    if path is not None and not isinstance(path, (str, os.PathLike, RunDir)):
        raise ValueError(f"checkpoint_dir={path!r} must be a directory (str or Path), an open "
                         "dbn.training.checkpoint.RunDir, or None")


def _check_resumable(val_errors, config, run):
    """Refuse a checkpoint that trained past where ``config`` stops (a lower
    ``max_epochs`` or ``patience`` than the run was written with): its weights are not
    those of a run with this config.  (Larger values resume exactly.)"""
    state = _initial_tracking(config)
    for val_error in val_errors:
        if state["epoch"] >= config.max_epochs or state["wait"] >= config.patience:
            raise CheckpointMismatchError(
                f"{run.what}: {run.path} holds {len(val_errors)} epochs, but with "
                f"max_epochs={config.max_epochs} and patience={config.patience} this run stops "
                f"after epoch {state['epoch']}; use values at least as large as the run's, or "
                + way_out(run.path))
        _track(state, val_error, config)


def _initial_tracking(config):
    return {"epoch": 0, "best_val_error": None, "best_epoch": 0, "wait": 0,
            "learning_rate": config.learning_rate}


def _track(state, val_error, config):
    """Early-stopping and plateau bookkeeping after an epoch, in place; the one rule
    behind ``fine_tune`` and ``refit_schedule``.  Returns whether it is a new best."""
    state["epoch"] += 1
    if state["best_val_error"] is None or val_error < state["best_val_error"]:
        state.update(best_val_error=val_error, best_epoch=state["epoch"], wait=0)
        return True
    state["wait"] += 1
    if config.plateau_factor < 1.0 and state["wait"] % config.plateau_patience == 0:
        state["learning_rate"] *= config.plateau_factor
    return False


def _inputs(what, model, config, seed, *arrays):
    """Everything that determines a fine-tuning run's trajectory: settings, seed, the
    architecture, a hash of the initial weights (pretrained or random) and of every byte
    of the data.  ``max_epochs`` and ``patience`` only decide when it stops, so a run may
    be resumed with larger ones (it continues exactly as an uninterrupted run would)."""
    settings = {k: v for k, v in config.cache_settings().items() if k not in ("max_epochs", "patience")}
    return {"what": what, "config": settings, "seed": seed,
            "architecture": [list(w.shape) for w in model.weights],
            "initial_weights": fingerprint(*model.get_weights()),
            "data": fingerprint(*(np.asarray(a) for a in arrays))}


def _compile_for_epoch(model, config, epoch, learning_rate, phase=None):
    """(Re)compile when the output-only phase of ``epoch`` differs from ``phase`` (None:
    not compiled yet); sets the optimizer's rate.  Returns the phase."""
    output_only = epoch < config.output_only_epochs
    if output_only is not phase:
        _compile(model, config, output_only=output_only, learning_rate=learning_rate)
    model.optimizer.learning_rate.assign(learning_rate)
    return output_only


@contextlib.contextmanager
def _training_precision(model, precision):
    """Within the block the hidden layers compute in ``precision`` (bfloat16: Keras'
    ``mixed_bfloat16``, float32 variables cast per product); float32 again after it.

    Every Keras and in-graph function is traced, once, inside or outside such a block
    and keeps the precision it was traced with: training functions in it, prediction
    (the validation and test errors) outside, in float32."""
    if precision == "float32":
        yield
        return
    layers = hidden_layers(model)
    before = [layer.dtype_policy for layer in layers]  # float32 (_check_precision)
    for layer in layers:
        layer.dtype_policy = "mixed_bfloat16"
    try:
        yield
    finally:
        for layer, policy in zip(layers, before):
            layer.dtype_policy = policy


def _train_epoch(model, x, y, config, *, seed, epoch, learning_rate, verbose):
    with _training_precision(model, config.precision):
        return _train_epoch_at_precision(model, x, y, config, seed=seed, epoch=epoch,
                                         learning_rate=learning_rate, verbose=verbose)


def _train_epoch_at_precision(model, x, y, config, *, seed, epoch, learning_rate, verbose):
    _reseed_dropout(model, seed, epoch)
    t0, keras_fit = time.perf_counter(), distribute.is_default(model.distribute_strategy) and not IN_GRAPH_EPOCHS
    if not distribute.is_default(model.distribute_strategy):
        logs = _distributed_epoch(model, x, y, config.batch_size, epoch_seed(seed, epoch), epoch)
    elif not keras_fit:
        logs = _in_graph_epoch(model, x, y, config.batch_size, epoch_seed(seed, epoch))
    else:
        batches = pipeline.epoch_datasets(x, y, batch_size=config.batch_size, seed=seed)(epoch)
        logs = model.fit(batches, epochs=1, verbose=verbose, shuffle=False).history
        logs = {key: float(logs[key][-1]) for key in ("loss", "accuracy")}
    if verbose and not keras_fit:  # fit prints its own line
        print(f"{math.ceil(len(x) / config.batch_size)} batches - {time.perf_counter() - t0:.0f}s - "
              f"loss: {logs['loss']:.4f} - accuracy: {logs['accuracy']:.4f}", flush=True)
    if not np.isfinite(logs["loss"]):
        raise FloatingPointError(
            f"fine-tuning diverged at epoch {epoch + 1} (learning rate {learning_rate})")
    return logs


def _epoch_order(n, seed):
    """The permutation ``pipeline.epoch_datasets`` shuffles an epoch of ``n`` rows into
    (its shuffle with the epoch's ``seed``, drawn once as indices)."""
    return (tf.data.Dataset.range(n).shuffle(n, seed=seed, reshuffle_each_iteration=True)
            .batch(n).get_single_element().numpy())


def _distributed_epoch(model, x, y, batch_size, seed, epoch):
    """One epoch under the model's tf.distribute strategy: Keras' own ``train_step`` run
    on every replica (``strategy.run``) for each batch of the epoch's order, split over
    the replicas; the optimizer all-reduces the gradients.  Not Keras' ``fit``, which
    reads (and so reshuffles) a batch first, and fails under MultiWorkerMirroredStrategy
    in Keras 3 (keras-team/keras#20585).  Keras weighs each replica's mean loss by 1 / R:
    a batch that does not split evenly over the R replicas is weighed as the mean of
    their means, not of its rows (a warning says so)."""
    strategy = model.distribute_strategy
    replicas = strategy.num_replicas_in_sync
    if epoch == 0 and (batch_size % replicas or len(x) % batch_size % replicas):
        log.warning("fine-tuning on %d replicas: batches of %d rows (the last of %d) do not all "
                    "split evenly; those batches weigh each replica's rows by 1 / its share, "
                    "unlike one device", replicas, batch_size, len(x) % batch_size or batch_size)
    order = _epoch_order(len(x), seed)
    data = tf.data.Dataset.from_tensor_slices((x[order], y[order])).batch(batch_size)
    functions = model.__dict__.setdefault("_dbn_in_graph_steps", {})
    if "replicas" not in functions:  # traced once per model and compile (reset by _compile)
        # The compiled loss and metrics make their variables on first use: here, outside
        # the replicas (a variable first made inside a distributed tf.function fails).
        with distribute.scope(strategy):
            xb, yb = tf.constant(x[:1]), tf.constant(y[:1])
            y_pred = model(xb, training=False)
            model.compute_loss(x=xb, y=yb, y_pred=y_pred)
            model.compute_metrics(xb, yb, y_pred, sample_weight=None)
        functions["replicas"] = tf.function(lambda batch: strategy.run(model.train_step, args=(batch,)))
    model.reset_metrics()
    for batch in strategy.experimental_distribute_dataset(data):
        functions["replicas"](batch)
    return {key: float(value) for key, value in model.get_metrics_result().items()
            if key in ("loss", "accuracy")}


def _in_graph_epoch(model, x, y, batch_size, seed):
    """One epoch of Keras' own ``train_step`` looped in-graph over the epoch's batches,
    stacked (the RBM's lesson), in the order ``pipeline.epoch_datasets`` gives them (the
    same shuffle, drawn once as a permutation): the same updates, to the bit, as
    ``model.fit`` on that dataset (tested), without its per-step input pipeline."""
    n = len(x)
    order = _epoch_order(n, seed)
    steps = n // batch_size
    model.reset_metrics()
    functions = model.__dict__.setdefault("_dbn_in_graph_steps", {})
    if "stack" not in functions:  # traced once per model and compile (reset by _compile)
        def stack(xs, ys):
            logs = model.train_step((xs[0], ys[0]))
            for i in tf.range(1, tf.shape(xs)[0]):
                logs = model.train_step((xs[i], ys[i]))
            return logs

        functions["stack"] = tf.function(stack, reduce_retracing=True)
        functions["one"] = tf.function(lambda xb, yb: model.train_step((xb, yb)), reduce_retracing=True)
    logs = None
    if steps:
        full = order[: steps * batch_size]
        logs = functions["stack"](tf.constant(x[full].reshape(steps, batch_size, -1)),
                                  tf.constant(y[full].reshape(steps, batch_size)))
    if n % batch_size:  # the short last batch, as the dataset's last
        rest = order[steps * batch_size:]
        logs = functions["one"](tf.constant(x[rest]), tf.constant(y[rest]))
    return {key: float(logs[key]) for key in ("loss", "accuracy")}


def _checkpoint(model, run, section, state, files=None):
    """Save the model and optimizer (``LAST_FILE``), ``files`` and ``state`` in one
    atomic step of ``run`` (nothing when it is None)."""
    if run is not None:
        run.save(files={LAST_FILE: model.save_weights, **(files or {})}, **{section: state})
