"""MNIST-like data: loading, checksums, train/validation splits, binarization.

Images are returned flattened as float32 arrays of shape ``(n, 784)`` with
values in ``[0, 1]``; labels as int64 arrays of shape ``(n,)``.

Two sources are supported:

* ``source="embedded"`` reads the MNIST copy shipped inside the package
  (:data:`DATASET_DIR`), verified against its ``SHA256SUMS``. Works offline.
* ``source="tfds"`` reads any prepared 28x28x1 grayscale image-classification
  dataset of ``tensorflow_datasets`` (see :data:`TFDS_NAMES`). Nothing is
  downloaded: an unprepared dataset raises :class:`FileNotFoundError` at once.

TensorFlow is only imported by :func:`to_dataset` and the tfds source, so
importing this module is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dbn import validation as check
from dbn.data.mnist import DATASET_DIR, N_PIXELS, _embedded_raw
from dbn.data.pipeline import _check_binarization, balanced_subset, binarize
from dbn.data.tfds import TFDS_NAMES, _tfds_raw


SOURCES = ("embedded", "tfds")


@dataclass(frozen=True, eq=False)
class Splits:
    """Train/validation/test arrays of one dataset.

    Attributes
    ----------
    x_train, x_val, x_test : numpy.ndarray, float32, shape (n, 784)
        Images in ``[0, 1]`` (``{0, 1}`` if binarized). `x_val` has 0 rows
        when ``validation_size=0``.
    y_train, y_val, y_test : numpy.ndarray, int64, shape (n,)
        Labels in ``0 .. n_classes - 1``.
    train_index, val_index : numpy.ndarray, int64, shape (n,)
        Rows of the original training set that form `x_train` / `x_val`.
    n_classes : int
        Number of classes.
    name : str
        Dataset name.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    train_index: np.ndarray
    val_index: np.ndarray
    n_classes: int = 10
    name: str = "mnist"


def load(
    name: str = "mnist",
    *,
    source: str = "embedded",
    binarization: str = "none",
    seed: int = 0,
    validation_size: int = 10_000,
    n_train: int | None = None,
    label_budget: int | None = None,
    data_dir: str | Path | None = None,
) -> Splits:
    """Load a 28x28 grayscale dataset split into train/validation/test.

    The validation set is the first `validation_size` rows of a seeded
    permutation of the training set, the training set the remaining rows (in
    that permuted order).

    Parameters
    ----------
    name : str, default "mnist"
        Dataset name; ``"mnist"`` only for the embedded source, any tfds
        dataset with 28x28x1 images for ``source="tfds"``.
    source : {"embedded", "tfds"}
    binarization : {"none", "threshold", "stochastic"}
        Applied to all splits. ``"stochastic"`` draws once, with seeds
        derived from `seed` (one per split).
    seed : int, default 0
        Seed of the split permutation, label-budget choice and binarization.
    validation_size : int, default 10000
        Number of training rows held out, ``0 <= validation_size < n_total``.
    n_train : int, optional
        Keep only the first `n_train` remaining training rows.
    label_budget : int, optional
        Keep `label_budget` training rows, ``label_budget / n_classes`` per
        class (after `n_train`); see :func:`balanced_subset`.
    data_dir : str or Path, optional
        Directory of the IDX files (embedded; default :data:`DATASET_DIR`) or
        the tfds data directory (tfds; default tfds' own).

    Returns
    -------
    Splits
        ``x_*`` float32 ``(n, 784)`` in ``[0, 1]``, ``y_*`` int64 ``(n,)``.
        With the defaults on MNIST: 50000 train, 10000 validation, 10000 test.

    Raises
    ------
    ValueError
        For an unknown name, source or binarization, a `seed` that is not an
        integer >= 0, a `validation_size`, `n_train` or `label_budget` that is
        not an integer (bools are refused) or is out of range; also for a
        checksum mismatch of the embedded copy, or labels outside
        ``0 .. n_classes - 1`` / images that are not 28x28 in its files.
        All arguments are checked before any file is read.
    FileNotFoundError
        If embedded files are missing, or a tfds dataset is not prepared.
    """
    if not isinstance(source, str) or source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; allowed: {', '.join(SOURCES)}")
    if not isinstance(name, str):
        raise ValueError(f"name={name!r} must be a dataset name (str), e.g. 'mnist'")
    _check_binarization(binarization)
    seed = check.check_seed("seed", seed)
    # Types here, before any file is read; ranges below, once the dataset size is known.
    validation_size = check.check_int("validation_size", validation_size)
    n_train = check.check_int("n_train", n_train, optional=True)
    label_budget = check.check_int("label_budget", label_budget, optional=True)
    if data_dir is not None and not isinstance(data_dir, (str, Path)):
        raise ValueError(f"data_dir={data_dir!r} must be a directory (str or Path) or None")
    if source == "embedded":
        if name != "mnist":
            raise ValueError(
                f"unknown dataset {name!r} for source='embedded' (only 'mnist'); "
                f'use source="tfds" for other datasets, e.g. {", ".join(TFDS_NAMES)}'
            )
        directory = Path(data_dir).resolve() if data_dir is not None else DATASET_DIR
        x_train_raw, y_train_raw, x_test_raw, y_test_raw = _embedded_raw(directory)
        n_classes = 10
    else:
        x_train_raw, y_train_raw, x_test_raw, y_test_raw, n_classes = _tfds_raw(name, data_dir)

    n_total = len(x_train_raw)
    if not 0 <= validation_size < n_total:
        raise ValueError(f"validation_size={validation_size} out of range; allowed: 0 <= validation_size < {n_total}")
    permutation = np.random.default_rng(seed).permutation(n_total)
    val_index, train_index = permutation[:validation_size], permutation[validation_size:]
    if n_train is not None:
        if not 1 <= n_train <= len(train_index):
            raise ValueError(f"n_train={n_train} out of range; allowed: 1 <= n_train <= {len(train_index)}")
        train_index = train_index[:n_train]
    if label_budget is not None:
        subset = balanced_subset(y_train_raw[train_index], label_budget, seed=seed, n_classes=n_classes)
        train_index = train_index[subset]

    train_seed, val_seed, test_seed = np.random.SeedSequence(seed).spawn(3)

    def prepare(x_raw, y_raw, split_seed):
        x = x_raw.reshape(len(x_raw), N_PIXELS).astype(np.float32) / np.float32(255)
        return binarize(x, binarization, seed=split_seed), y_raw.astype(np.int64)

    return Splits(
        *prepare(x_train_raw[train_index], y_train_raw[train_index], train_seed),
        *prepare(x_train_raw[val_index], y_train_raw[val_index], val_seed),
        *prepare(x_test_raw, y_test_raw, test_seed),
        train_index=train_index.astype(np.int64),
        val_index=val_index.astype(np.int64),
        n_classes=int(n_classes),
        name=name,
    )




@dataclass(frozen=True, eq=False)
class LikelihoodSplits:
    """The likelihood papers' evaluation data: ``data`` (the grey-level ``Splits``, whose
    training images are re-binarized every epoch for training) and one fixed stochastic
    binarization of each split, ``train`` / ``val`` / ``test`` (n, 784) float32 in {0, 1}."""

    data: Splits
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def likelihood_splits(*, seed: int = 0, validation_size: int = 10_000,
                      n_train: int | None = None) -> LikelihoodSplits:
    """``load(seed=, validation_size=, n_train=)`` plus each split binarized once,
    stochastically, with seeds ``seed + 1`` / ``+ 2`` / ``+ 3`` (training / validation /
    test): the data every RBM likelihood in ``results/`` was measured on
    (``experiments/train_rbm.py``, ``likelihood_bracket.py``, ``dbn_likelihood.py``)."""
    data = load(seed=seed, validation_size=validation_size, n_train=n_train)
    return LikelihoodSplits(data, binarize(data.x_train, "stochastic", seed=seed + 1),
                            binarize(data.x_val, "stochastic", seed=seed + 2),
                            binarize(data.x_test, "stochastic", seed=seed + 3))
