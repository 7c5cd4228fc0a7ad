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


class RBMTensorBoard(keras.callbacks.Callback):
    """TensorBoard summaries of an RBM after every epoch: every number in the epoch's logs
    (reconstruction error, free-energy gap, k, epoch time, ...), the learning rate and
    momentum, and images: the first ``n_filters`` filters (columns of W as 28x28 images,
    scaled to [0, 1] each) and ``n_samples`` digits from ``sample_steps`` Gibbs steps
    (drawn from a separate seeded stream: the model's sampler state is left as it was).

    ``log_dir`` a directory; ``n_filters``, ``n_samples``, ``sample_steps`` integers >= 0
    (0 turns that image off); ``image_shape`` the visible layer's image shape.
    """

    def __init__(self, log_dir, *, n_filters=64, n_samples=16, sample_steps=100,
                 image_shape=(28, 28)):
        super().__init__()
        from pathlib import Path

        if not isinstance(log_dir, (str, Path)) or not str(log_dir):
            raise ValueError(f"log_dir={log_dir!r} must be a directory (str or Path)")
        self.log_dir = str(log_dir)
        self.n_filters = check.check_int("n_filters", n_filters, low=0)
        self.n_samples = check.check_int("n_samples", n_samples, low=0)
        self.sample_steps = check.check_int("sample_steps", sample_steps, low=1)
        self.image_shape = tuple(image_shape)
        self._writer = None

    def _images(self, rows):
        import numpy as np

        h, w = self.image_shape
        if rows.shape[1] != h * w:  # not images (an upper layer): no pictures
            return None
        return np.asarray(rows, np.float32).reshape(-1, h, w, 1)

    def on_epoch_end(self, epoch, logs=None):
        import numpy as np
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        model = self.model
        optimizer = model.optimizer
        with self._writer.as_default(step=epoch + 1):
            for key, value in (logs or {}).items():
                tf.summary.scalar(key, float(value))
            lr = optimizer.learning_rate
            lr = lr(optimizer.iterations) if callable(lr) else lr
            tf.summary.scalar("learning_rate", float(np.asarray(lr)))
            if getattr(optimizer, "momentum", None) is not None:
                tf.summary.scalar("momentum", float(optimizer.momentum))
            if self.n_filters:
                W = model.W.numpy()[:, : self.n_filters].T
                lo, hi = W.min(axis=1, keepdims=True), W.max(axis=1, keepdims=True)
                images = self._images((W - lo) / np.maximum(hi - lo, 1e-12))
                if images is not None:
                    tf.summary.image("filters", images, max_outputs=self.n_filters)
            if self.n_samples and not model.n_labels:
                images = self._images(model.sample(self.n_samples, self.sample_steps, seed=epoch))
                if images is not None:
                    tf.summary.image("samples", images, max_outputs=self.n_samples)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()
