"""The deep-autoencoder protocol shared by ``experiments/autoencoder_mnist.py`` and
``experiments/autoencoder_2d.py``: resumable fine-tuning runs keyed by everything that
determines them, their curves, and the k-nearest-neighbour score of 2-D code maps."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from dbn import validation as check
from dbn.training import checkpoint
from dbn.training.configs import MinimizeConfig
from dbn.training.minimize import train_epochs


def pretrained_stack(x_train, layer_sizes, *, epochs, seed, checkpoint_dir, timings=None):
    """The autoencoder's RBM stack pretrained on ``x_train`` with the paper's recipes
    (``AUTOENCODER_LAYER``, ``CODE_LAYER``) for ``epochs`` epochs per layer, in the layer
    cache ``<checkpoint_dir>/autoencoder_pretrain`` shared by every code size.  Returns
    (stack, Bernoulli layer config, code layer config)."""
    from dbn.models.autoencoder import AUTOENCODER_LAYER, CODE_LAYER, pretrain_stack

    bernoulli = dataclasses.replace(AUTOENCODER_LAYER, epochs=epochs)
    code = dataclasses.replace(CODE_LAYER, epochs=epochs)
    stack = pretrain_stack(x_train, layer_sizes, seed=seed, bernoulli=bernoulli, code=code,
                           checkpoint_dir=Path(checkpoint_dir) / "autoencoder_pretrain",
                           timings=timings)
    return stack, bernoulli, code


def finetune_run(model, x_train, x_test, config, *, checkpoint_dir, name, spec, seed=0,
                 x_val=None, patience=None, on_epoch=None):
    """Fine-tune ``model`` (a ``DeepAutoencoder``) on ``x_train`` with ``config`` (a
    ``MinimizeConfig``) in the run directory ``<checkpoint_dir>/autoencoder/<name>_<key>``,
    keyed by ``spec`` plus the config, the training data's and initial weights' SHA-256
    and ``seed``; logs the test squared error after every epoch (monitoring only) and,
    with ``x_val`` (n, 784), the validation squared error, on which ``patience`` (an
    integer >= 1, or None: the config's epochs) stops training after that many epochs
    without a new lowest value; ``on_epoch(history)`` is called after every epoch and on
    resuming (``train_epochs``).  Returns the history (resumed epochs included)."""
    if not isinstance(config, MinimizeConfig):
        raise ValueError(f"config={config!r} must be a MinimizeConfig")
    patience = check.check_int("patience", patience, low=1, optional=True)
    if patience is not None and x_val is None:
        raise ValueError(f"patience={patience} needs x_val: early stopping watches the validation error")
    # Checked whole before any work (hashed below as given: the arrays are not converted).
    arrays = {"x_train": x_train, "x_test": x_test, **({} if x_val is None else {"x_val": x_val})}
    for argument, x in arrays.items():
        model.check_input(x, argument, allow_empty=False)
    spec = {**spec, "config": config.to_dict(), "train": checkpoint.fingerprint(x_train),
            "initial_weights": checkpoint.fingerprint(*model.get_weights()),
            "seed": check.check_seed("seed", seed)}
    if x_val is not None:
        spec.update(validation=checkpoint.fingerprint(x_val), patience=patience)

    def evaluate():
        errors = {"test_squared_error": model.squared_error(x_test)}
        if x_val is not None:
            errors["validation_squared_error"] = model.squared_error(x_val)
        return errors

    path = checkpoint.run_path(Path(checkpoint_dir) / "autoencoder", name, spec)
    with checkpoint.RunDir(path, spec, what=f"autoencoder {name}") as run:
        return train_epochs(model, model.loss_fn, (x_train,), config, checkpoint=run, seed=seed,
                            evaluate=evaluate, on_epoch=on_epoch, stop=None if patience is None else (
                                lambda history: _stalled(history["validation_squared_error"], patience)))


def _stalled(errors, patience):
    """Whether the last ``patience`` values of ``errors`` brought no new minimum."""
    return len(errors) - 1 - int(np.argmin(errors)) >= patience


def best_epoch(history):
    """The 1-based epoch of the lowest validation squared error (the first on ties)."""
    return int(np.argmin(history["validation_squared_error"])) + 1


def curve(history, config=None, n=None):
    """A run's per-epoch record for the JSON and the figure of error against time; with
    its ``config`` (``MinimizeConfig``) and ``n`` training examples also
    ``gradient_examples``, the cumulative examples through a forward and backward pass:
    ``n`` an epoch for Adam; for CG and L-BFGS the function evaluations times the batch
    size (exact when ``n`` is a multiple of it, else times the mean batch size)."""
    if (config is None) != (n is None):
        raise ValueError(f"config={config!r} and n={n!r}: give both (for gradient_examples) or neither")
    if config is not None:
        if config.method == "adam":
            work = np.full(len(history["loss"]), float(n))
        else:
            work = np.asarray(history["evaluations"], float) * n / -(-n // config.batch_size)
    return {"epoch": list(range(1, len(history["loss"]) + 1)),
            "seconds": np.cumsum(history["seconds"]).tolist(),
            "train_loss": history["loss"], "test_squared_error": history["test_squared_error"],
            "evaluations": history.get("evaluations"),
            **({"gradient_examples": np.cumsum(work).tolist()} if config is not None else {}),
            **({"validation_squared_error": history["validation_squared_error"]}
               if "validation_squared_error" in history else {})}


def knn_accuracy(train_codes, train_labels, test_codes, test_labels, *, k=10, chunk=500):
    """Accuracy of the majority vote of the ``k`` nearest training codes (Euclidean; ties
    to the smaller label) for each test code.  Codes (n, d) finite, labels integers."""
    train_codes = check.check_matrix("train_codes", train_codes, low=None, high=None, allow_empty=False)
    test_codes = check.check_matrix("test_codes", test_codes, n_columns=train_codes.shape[1],
                                    low=None, high=None, allow_empty=False)
    train_labels = check.check_labels("train_labels", train_labels, n=len(train_codes),
                                      length_of="train_codes")
    test_labels = check.check_labels("test_labels", test_labels, n=len(test_codes), length_of="test_codes")
    k = check.check_int("k", k, low=1, high=len(train_codes))
    a = train_codes.astype(np.float64)
    a2 = np.sum(a * a, axis=1)
    n_classes = int(max(train_labels.max(), test_labels.max())) + 1
    correct = 0
    for s in range(0, len(test_codes), chunk):
        b = test_codes[s: s + chunk].astype(np.float64)
        d = a2[None, :] - 2 * b @ a.T  # + |b|^2, the same for every training code
        nearest = np.argpartition(d, k - 1, axis=1)[:, :k]
        votes = np.zeros((len(b), n_classes), np.int64)
        np.add.at(votes, (np.arange(len(b))[:, None], train_labels[nearest]), 1)
        correct += int(np.sum(np.argmax(votes, axis=1) == test_labels[s: s + chunk]))
    return correct / len(test_codes)
