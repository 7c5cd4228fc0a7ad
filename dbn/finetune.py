"""Supervised fine-tuning of unrolled DBN classifiers (and of their random-init twins).

One function, ``fine_tune``, used identically for pretrained and randomly initialised
networks so that comparisons differ only in the initial weights: same optimiser, schedule,
batches (seeded per epoch), early stopping on validation error restoring the best weights.
It checkpoints after every epoch (weights + optimizer state + early-stopping state), so
a killed run resumes where it stopped and ends with the same weights as an
uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import keras
import numpy as np

from dbn import datasets
from dbn.dbn import hidden_layers
from dbn.provenance import atomic_write, save_npz

OPTIMIZERS = ("sgd", "adam")


@dataclasses.dataclass(frozen=True)
class FineTuneConfig:
    """Backprop settings.

    ``output_only_epochs`` trains only the softmax layer first (Hinton & Salakhutdinov
    2006 did this for 5 epochs before unfreezing the stack).  ``plateau_factor`` < 1
    multiplies the learning rate by that factor after every ``plateau_patience``
    consecutive epochs without a new best validation error (1.0, the default, keeps it
    constant); it adapts to each network's own convergence, so a slowly converging
    random-init network is not starved by a schedule tuned for a pretrained one.
    """

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    batch_size: int = 100
    max_epochs: int = 100
    patience: int = 10
    output_only_epochs: int = 0
    plateau_factor: float = 1.0
    plateau_patience: int = 3

    # Options added after runs were cached, with the value that reproduces those runs:
    # left out of ``cache_settings`` at that value so the cached runs stay valid.
    _NEUTRAL = {"plateau_factor": 1.0, "plateau_patience": 3}

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer={self.optimizer!r}; allowed: {OPTIMIZERS}")
        for name in ("batch_size", "max_epochs", "patience", "plateau_patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate={self.learning_rate} must be finite and > 0")
        if not 0.0 <= self.momentum <= 1.0:
            raise ValueError(f"momentum={self.momentum} must be in [0, 1]")
        if not 0.0 < self.plateau_factor <= 1.0:
            raise ValueError(f"plateau_factor={self.plateau_factor} must be in (0, 1]")
        object.__setattr__(self, "momentum", float(self.momentum))
        if not 0 <= self.output_only_epochs < self.max_epochs:
            raise ValueError(f"output_only_epochs={self.output_only_epochs} must be in [0, max_epochs)")

    def to_dict(self):
        return dataclasses.asdict(self)

    def cache_settings(self):
        """``to_dict()`` without the later-added options that sit at their neutral value."""
        return {k: v for k, v in self.to_dict().items()
                if not (k in self._NEUTRAL and v == self._NEUTRAL[k])}


def _compile(model, config, *, output_only, learning_rate):
    for layer in hidden_layers(model):
        layer.trainable = not output_only
    optimizer = (keras.optimizers.SGD(learning_rate, momentum=config.momentum)
                 if config.optimizer == "sgd" else keras.optimizers.Adam(learning_rate))
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.optimizer.build(model.trainable_variables)


def _reseed_dropout(model, seed, epoch):
    """Dropout masks depend only on (seed, epoch, layer): resumable and reproducible."""
    for i, layer in enumerate(model.layers):
        generator = getattr(layer, "seed_generator", None)
        if generator is not None:
            generator.state.assign(np.array([seed * 1000 + i, epoch], dtype=generator.state.dtype))


def error_rate(model, x, y, *, batch_size=1000):
    """Fraction of rows of x (n, D) whose argmax prediction differs from y (n,)."""
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
    config : FineTuneConfig
    checkpoint_dir : path, optional
        Resume directory: ``last.weights.h5`` (model + optimizer), ``best_weights.npz``,
        ``state.json``.

    Returns
    -------
    dict
        ``history`` (per-epoch train loss, val error), ``best_epoch`` (1-based),
        ``best_val_error``, ``epochs_run``, ``stopped_early``, ``final_learning_rate``.
    """
    if len(x_val) == 0:
        raise ValueError("fine_tune needs a non-empty validation split for early stopping")
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    architecture = [list(w.shape) for w in model.weights]
    state = {"epoch": 0, "best_val_error": None, "best_epoch": 0, "wait": 0,
             "learning_rate": config.learning_rate, "architecture": architecture,
             "history": {"loss": [], "accuracy": [], "val_error": []}}
    phase = config.output_only_epochs > 0
    _compile(model, config, output_only=phase, learning_rate=state["learning_rate"])
    best_weights = model.get_weights()
    if ckpt is not None and (ckpt / "state.json").exists():
        state = json.loads((ckpt / "state.json").read_text())
        if state.get("architecture") != architecture:
            raise ValueError(
                f"checkpoint {ckpt} was written by a different architecture (weight shapes "
                f"{state.get('architecture')}; this model has {architecture}): use another directory")
        state.setdefault("learning_rate", config.learning_rate)  # written before plateaus existed
        phase = state["epoch"] < config.output_only_epochs
        _compile(model, config, output_only=phase, learning_rate=state["learning_rate"])
        model.load_weights(ckpt / "last.weights.h5")
        with np.load(ckpt / "best_weights.npz") as f:
            best_weights = [f[f"w{i}"] for i in range(len(f.files))]
    # An early-stopped run stays stopped when it is resumed.
    last_epoch = state["epoch"] if state["wait"] >= config.patience else config.max_epochs
    for epoch in range(state["epoch"], last_epoch):
        if phase and epoch >= config.output_only_epochs:
            phase = False
            _compile(model, config, output_only=False, learning_rate=state["learning_rate"])
        _reseed_dropout(model, seed, epoch)
        batches = datasets.epoch_datasets(x_train, y_train, batch_size=config.batch_size,
                                          seed=seed)(epoch)
        logs = model.fit(batches, epochs=1, verbose=verbose, shuffle=False).history
        if not np.isfinite(logs["loss"][-1]):
            raise FloatingPointError(
                f"fine-tuning diverged at epoch {epoch + 1} (learning rate {state['learning_rate']})")
        val_error = error_rate(model, x_val, y_val)
        for key in ("loss", "accuracy"):
            state["history"][key].append(float(logs[key][-1]))
        state["history"]["val_error"].append(val_error)
        state["epoch"] = epoch + 1
        if state["best_val_error"] is None or val_error < state["best_val_error"]:
            state.update(best_val_error=val_error, best_epoch=epoch + 1, wait=0)
            best_weights = model.get_weights()
            if ckpt is not None:
                save_npz(ckpt / "best_weights.npz", **{f"w{i}": w for i, w in enumerate(best_weights)})
        else:
            state["wait"] += 1
            if config.plateau_factor < 1.0 and state["wait"] % config.plateau_patience == 0:
                state["learning_rate"] *= config.plateau_factor
                model.optimizer.learning_rate.assign(state["learning_rate"])
        if ckpt is not None:
            _save_weights(model, ckpt / "last.weights.h5")
            with atomic_write(ckpt / "state.json") as f:
                f.write(json.dumps(state).encode())
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


def _save_weights(model, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.weights.h5")
    model.save_weights(tmp)
    tmp.replace(path)
