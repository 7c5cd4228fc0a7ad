"""Training recipes for RBMs: a config object, schedules, and a resumable ``train_rbm``.

The defaults are Hinton's recipe (practical guide, 2010): SGD with momentum 0.5 for the
first 5 epochs then 0.9, batch 100, gradients averaged over the batch.  The learning
rate decays linearly from ``learning_rate`` to ``final_learning_rate`` over the run, and
CD-k may use a number of Gibbs steps rising linearly from ``k`` to ``final_k``
(Salakhutdinov & Murray 2008 raised k from 1 to 25).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import keras
import tensorflow as tf
import numpy as np

from dbn import distribute
from dbn import validation as check
from dbn.data import pipeline
from dbn.models.rbm import RBM
from dbn.training.callbacks import EpochTimer, GibbsStepsSchedule, MomentumSchedule
from dbn.training.checkpoint import MANIFEST, RunDir, open_existing
from dbn.training.checkpoint import fingerprint as checkpoint_fingerprint
from dbn.training.configs import (CONFIG_HYPERPARAMETERS, RBM_CONSTRAINTS, RBMTrainingConfig,
                                  without_idle_samplers)

log = logging.getLogger("dbn")
WEIGHTS_FILE = "last.weights.h5"


# Batches per tf.data element for RBM training (see pipeline.to_dataset): the RBM loops
# over them in-graph, which removes a per-batch thread hand-off (measured: epochs of
# either 2.7 s or 5.1 s at random become a steady ~3.0 s for CD-1 784x500 on 2 cores).
BATCHES_PER_ELEMENT = 50


def epoch_batches(x, *, batch_size, seed, binarization="none"):
    """``epoch -> dataset`` of stacked batches for ``train_rbm``: each epoch's shuffle and
    binarization depend on (seed, epoch) only, so resumed runs are exact.  Under a
    tf.distribute strategy (the one in scope when an epoch's dataset is made: ``train_rbm``
    makes it in the RBM's), plain batches: the replicas split each batch, and gradients
    cannot be aggregated in an in-graph loop."""
    def make(stack):
        return pipeline.epoch_datasets(x, batch_size=batch_size, seed=seed, binarization=binarization,
                                       batches_per_element=stack)

    made = {BATCHES_PER_ELEMENT: make(BATCHES_PER_ELEMENT)}  # checks the data now; plain batches on first use

    def epoch_dataset(epoch):
        stack = BATCHES_PER_ELEMENT if distribute.is_default(tf.distribute.get_strategy()) else 1
        if stack not in made:
            made[stack] = make(stack)
        return made[stack](epoch)
    return epoch_dataset


def build_rbm(config, *, visible_data="binary", n_labels=0, seed=None):
    """An uncompiled ``RBM`` for ``config`` (an ``RBMTrainingConfig``)."""
    _check_config(config)
    shared = {name: getattr(config, name) for name in CONFIG_HYPERPARAMETERS}
    return RBM(**shared, visible_data=visible_data, n_labels=n_labels, seed=seed)


def compile_rbm(rbm, config, *, steps_per_epoch):
    """Compile ``rbm`` with SGD + momentum and the linear learning-rate decay;
    ``steps_per_epoch`` is an integer >= 1."""
    _check_config(config)
    steps_per_epoch = check.check_int("steps_per_epoch", steps_per_epoch, low=1)
    lr = config.learning_rate
    if config.final_learning_rate is not None:
        lr = keras.optimizers.schedules.PolynomialDecay(
            config.learning_rate,
            decay_steps=config.epochs * steps_per_epoch,
            end_learning_rate=config.final_learning_rate,
        )
    # One step per call under tf.distribute: Keras' in-graph steps loop fails there
    # (TF 2.21: "You must feed a value for placeholder tensor" in multi_step_on_iterator).
    default = distribute.is_default(rbm.distribute_strategy)
    with distribute.scope(rbm.distribute_strategy):  # the optimizer belongs to the RBM's strategy
        rbm.compile(
            optimizer=keras.optimizers.SGD(learning_rate=lr, momentum=config.initial_momentum),
            steps_per_execution=min(steps_per_epoch, 50) if default else 1,
        )
    return rbm


def _check_config(config):
    if not isinstance(config, RBMTrainingConfig):
        raise ValueError(f"config={config!r} must be an RBMTrainingConfig")


def training_seconds(run):
    """Total wall time of the epochs recorded in a ``train_rbm`` checkpoint (all sessions
    that trained it), or None if it holds none.  ``run`` is an open ``RunDir``, or the
    path of one (opened read-only).  Lets a cached layer report what it cost to train."""
    if run is None:
        return None
    if not isinstance(run, RunDir):
        if not (Path(run) / MANIFEST).is_file():
            return None
        with open_existing(run, what="RBM training") as opened:
            return training_seconds(opened)
    state = run.state("training")
    if state is None:
        return None
    return float(sum(state["history"].get("epoch_seconds", [])))


def record_pretraining_time(timings, name, started, run):
    """Put ``{name}_seconds`` (wall time since ``started`` in this call, near zero for a
    cached model) and, if ``run`` (an open ``RunDir`` or None) holds a training history,
    ``{name}_training_seconds`` (what training took over all sessions) in ``timings``;
    does nothing if it is None."""
    if timings is None:
        return
    timings[f"{name}_seconds"] = time.time() - started
    trained = training_seconds(run)
    if trained is not None:
        timings[f"{name}_training_seconds"] = trained


def rbm_spec(rbm):
    """The hyperparameters of ``rbm`` that change what training produces (checkpoint keys)."""
    config = rbm.get_config()
    return without_idle_samplers({key: config[key] for key in RBM_HYPERPARAMETERS})


RBM_HYPERPARAMETERS = tuple(RBM_CONSTRAINTS)  # all of them: each changes what training does
RBM_FILE = "rbm.keras"


def finished_rbm(run):
    """The finished RBM saved in ``run`` (an open ``RunDir``) by ``save_finished_rbm``, or
    None (nothing saved yet, or training unfinished: ``train_rbm(checkpoint=run)``
    resumes it)."""
    if run is None or not run.has(RBM_FILE):
        return None
    log.info("%s: reusing the finished RBM in %s", run.what, run.path)
    return keras.models.load_model(run.file(RBM_FILE))


def save_finished_rbm(run, rbm):
    """Save the trained ``rbm`` in ``run`` as finished (its per-epoch weights are dropped;
    the training history stays)."""
    run.save(files={RBM_FILE: rbm.save}, drop=[WEIGHTS_FILE])


def train_rbm(rbm, train_data, config, *, steps_per_epoch, init_data=None,
              validation_data=None, checkpoint=None, backup_dir=None, data_key=None,
              callbacks=(), verbose=2):
    """Compile and fit ``rbm`` with ``config``'s schedules, one ``fit`` call per epoch;
    resumable.

    Parameters
    ----------
    rbm : RBM
        Unbuilt (initialised from ``init_data``) or already built.
    train_data : callable, tf.data.Dataset or array (n, D)
        ``epoch -> batched dataset`` (e.g. ``lambda e: to_dataset(x, seed=s + e, ...)``)
        makes each epoch's batches a function of the epoch alone, so a resumed run is
        bit-identical to an uninterrupted one; a dataset or array is reused every epoch.
    steps_per_epoch : int
        Batches per epoch (sets the learning-rate decay length).
    init_data : array (n, D), optional
        Data for Hinton's visible-bias initialisation (default: from ``train_data``).
    checkpoint : dbn.training.checkpoint.RunDir, optional
        An open run directory whose spec covers everything that determines this training
        (the caller's key): after every epoch the weights (with PCD chains and sampler
        state), the optimizer state and the history are saved there, verified and
        atomically; a killed run resumes after its last finished epoch.
    backup_dir : path, optional
        Shortcut for ``checkpoint``: a run directory at this path keyed by ``config``, the
        RBM's hyperparameters, ``init_data``, ``validation_data`` and the training data --
        ``data_key`` (any string naming it exactly), or a hash of ``train_data`` when it is
        an array.  Opened and closed here.
    callbacks : sequence of keras callbacks
        Passed to every per-epoch ``fit`` (so ``on_train_begin`` runs each epoch).

    Returns
    -------
    history : dict[str, list[float]]
        Per-epoch logs of the whole run, resumed epochs included.

    Raises
    ------
    ValueError
        Before any work, for an ``rbm`` that is not an ``RBM``, a ``config`` that is
        not an ``RBMTrainingConfig``, ``steps_per_epoch`` not an integer >= 1, a
        ``train_data`` that is neither callable, a dataset nor an array, or an
        ``init_data`` that does not suit the RBM (empty, NaN, outside [0, 1], not
        binary for a binary RBM); during training, for a batch that does not suit it.
    """
    if not isinstance(rbm, RBM):
        raise ValueError(f"rbm={rbm!r} must be a dbn.models.rbm.RBM")
    _check_config(config)
    steps_per_epoch = check.check_int("steps_per_epoch", steps_per_epoch, low=1)
    if train_data is None or isinstance(train_data, (str, bytes)):
        raise ValueError(f"train_data={train_data!r} must be a callable epoch -> dataset, "
                         "a tf.data.Dataset or an array (n, D)")
    if isinstance(train_data, np.ndarray):
        rbm._check_visible(train_data, "train_data", allow_empty=False)
    if init_data is not None:
        rbm._check_visible(init_data, "init_data", allow_empty=False)
    if checkpoint is not None and not isinstance(checkpoint, RunDir):
        raise ValueError(f"checkpoint={checkpoint!r} must be an open dbn.training.checkpoint.RunDir or None")
    if backup_dir is not None:
        if checkpoint is not None:
            raise ValueError("pass checkpoint= or backup_dir=, not both")
        if data_key is None:
            if not isinstance(train_data, np.ndarray):
                raise ValueError(
                    "backup_dir needs data_key= (a string naming the training data exactly) when "
                    f"train_data is a {type(train_data).__name__}: a checkpoint keyed on less than "
                    "the data could resume a run on other data")
            data_key = checkpoint_fingerprint(train_data)
        spec = {"what": "rbm_training", "config": config.to_dict(), "rbm": rbm_spec(rbm),
                "data": str(data_key), "steps_per_epoch": steps_per_epoch,
                "initial_weights": checkpoint_fingerprint(*rbm.get_weights()) if rbm.built else None,
                "init_data": None if init_data is None else checkpoint_fingerprint(init_data),
                "validation_data": checkpoint_fingerprint(validation_data)
                if isinstance(validation_data, np.ndarray) else repr(type(validation_data))}
        # The RBM's strategy in scope: the run's key names it (checkpoint.with_distribution).
        with distribute.scope(rbm.distribute_strategy), RunDir(backup_dir, spec, what="RBM training") as run:
            return train_rbm(rbm, train_data, config, steps_per_epoch=steps_per_epoch,
                             init_data=init_data, validation_data=validation_data,
                             checkpoint=run, callbacks=callbacks, verbose=verbose)
    with distribute.scope(rbm.distribute_strategy):  # its variables, key and batches
        if init_data is not None and not rbm.built:
            rbm.initialize_from_data(init_data)
        compile_rbm(rbm, config, steps_per_epoch=steps_per_epoch)
        schedule = [EpochTimer(), MomentumSchedule(config.initial_momentum, config.final_momentum,
                                                   config.momentum_switch_epoch)]
        if config.final_k is not None:
            schedule.append(GibbsStepsSchedule(config.k, config.final_k, config.epochs))
        make_data = train_data if callable(train_data) else (lambda epoch: train_data)
        start, history = 0, {}
        state = checkpoint.state("training") if checkpoint is not None else None
        if state is not None:
            start, history = state["epoch"], state["history"]
            if not rbm.built:
                rbm.build((None, state["n_visible"]))
            rbm.optimizer.build(rbm.trainable_variables)
            rbm.load_weights(checkpoint.file(WEIGHTS_FILE))
            log.info("%s: resuming after epoch %d of %d", checkpoint.what, start, config.epochs)
        for epoch in range(start, config.epochs):
            data = make_data(epoch)
            # Arrays are batched (and shuffled) by Keras; datasets arrive batched and shuffled.
            fit_kwargs = ({"batch_size": config.batch_size} if isinstance(data, np.ndarray)
                          else {"shuffle": False})
            logs = rbm.fit(data, initial_epoch=epoch, epochs=epoch + 1, validation_data=validation_data,
                           callbacks=schedule + list(callbacks), verbose=verbose, **fit_kwargs).history
            for key, values in logs.items():
                history.setdefault(key, []).append(float(values[-1]))
            if checkpoint is not None:  # save_weights refuses non-finite weights
                checkpoint.save(training={"epoch": epoch + 1, "history": history,
                                          "n_visible": rbm.n_visible},
                                files={WEIGHTS_FILE: rbm.save_weights})
        return history
