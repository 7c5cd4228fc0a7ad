"""Keras callbacks of the training recipes: Hinton's momentum schedule, CD-k with k
rising over the run, per-epoch wall time."""

from __future__ import annotations

import time

import keras

from dbn import validation as check


class MomentumSchedule(keras.callbacks.Callback):
    """Hinton's momentum schedule: ``initial`` for the first ``switch_epoch`` epochs,
    then ``final``. Works with optimizers that have a ``momentum`` attribute (SGD)."""

    def __init__(self, initial=0.5, final=0.9, switch_epoch=5):
        super().__init__()
        initial = check.check_float("initial", initial, low=0.0, high=1.0, low_open=True)
        final = check.check_float("final", final, low=0.0, high=1.0)
        switch_epoch = check.check_int("switch_epoch", switch_epoch, low=0)
        self.initial, self.final, self.switch_epoch = initial, final, switch_epoch

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if not getattr(optimizer, "momentum", 0):
            raise ValueError(
                "MomentumSchedule needs an optimizer built with momentum > 0, "
                f"got {type(optimizer).__name__} with momentum={getattr(optimizer, 'momentum', None)}"
            )
        momentum = self.initial if epoch < self.switch_epoch else self.final
        if optimizer.momentum != momentum:
            optimizer.momentum = momentum
            self.model.make_train_function(force=True)  # momentum is a traced constant


class GibbsStepsSchedule(keras.callbacks.Callback):
    """CD-k with k rising linearly from ``start`` (first epoch) to ``end`` (last epoch)."""

    def __init__(self, start, end, epochs):
        super().__init__()
        self.start, self.end, self.epochs = start, end, epochs

    def k_at(self, epoch):
        if self.epochs <= 1:
            return self.end
        return int(round(self.start + (self.end - self.start) * epoch / (self.epochs - 1)))

    def on_epoch_begin(self, epoch, logs=None):
        k = self.k_at(epoch)
        if self.model.k != k:
            self.model.k = k
            self.model.make_train_function(force=True)  # k is a traced loop bound

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["k"] = float(self.model.k)


class EpochTimer(keras.callbacks.Callback):
    """Adds ``epoch_seconds`` (wall time of the epoch) to the logs."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._start
