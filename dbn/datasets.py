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

import functools
import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dbn import validation as check
from dbn.provenance import sha256_file

DATASET_DIR = Path(__file__).resolve().parent / "data" / "mnist"
"""Directory of the embedded MNIST copy (gzipped IDX files and ``SHA256SUMS``)."""

FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
"""IDX file name of each raw MNIST array."""

CHECKSUM_FILE = "SHA256SUMS"
BINARIZATIONS = ("none", "threshold", "stochastic")
SOURCES = ("embedded", "tfds")
TFDS_NAMES = ("mnist", "fashion_mnist", "kmnist", "emnist/digits", "emnist/letters")
"""Examples of tfds datasets with 28x28x1 images that ``load(source="tfds")`` accepts."""

IMAGE_SHAPE = (28, 28)
N_PIXELS = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
_IDX_DTYPES = {0x08: np.uint8}


def verify_checksums(data_dir: str | Path) -> None:
    """Check the four MNIST files in `data_dir` against its ``SHA256SUMS``.

    Parameters
    ----------
    data_dir : str or Path
        Directory holding the files of :data:`FILES` and ``SHA256SUMS``
        (``sha256sum`` format: ``<hex digest>  <file name>`` per line).

    Raises
    ------
    FileNotFoundError
        If ``SHA256SUMS`` or one of the data files is missing.
    ValueError
        If a line of ``SHA256SUMS`` is not ``<64 hex digits> <file name>`` (the
        message names the file and the line), ``SHA256SUMS`` has no entry for a data
        file, or a digest differs.
    """
    data_dir = Path(data_dir)
    sums_path = data_dir / CHECKSUM_FILE
    if not sums_path.is_file():
        raise FileNotFoundError(f"checksum file {CHECKSUM_FILE!r} is missing from {data_dir}")
    expected = {}
    try:
        lines = sums_path.read_text().splitlines()
    except UnicodeDecodeError as err:
        raise ValueError(f"{sums_path} is not a text file ({err}); allowed: lines "
                         "'<sha256 hex digest>  <file name>'") from None
    for number, line in enumerate(lines, start=1):
        if line.strip():
            parts = line.split(maxsplit=1)
            digest = parts[0]
            if (len(parts) != 2 or len(digest) != 64
                    or any(c not in "0123456789abcdefABCDEF" for c in digest)):
                raise ValueError(f"{sums_path} line {number} is malformed: {line!r}; allowed: "
                                 "'<sha256 hex digest (64 characters)>  <file name>'")
            expected[parts[1].strip().lstrip("*")] = digest.lower()
    for file_name in FILES.values():
        path = data_dir / file_name
        if not path.is_file():
            raise FileNotFoundError(f"MNIST file {file_name!r} is missing from {data_dir}")
        if file_name not in expected:
            raise ValueError(f"{sums_path} has no checksum for {file_name!r}")
        actual = sha256_file(path)
        if actual != expected[file_name]:
            raise ValueError(
                f"checksum mismatch for {file_name!r} in {data_dir}: "
                f"expected sha256 {expected[file_name]}, got {actual}"
            )


def read_idx(path: str | Path) -> np.ndarray:
    """Parse a gzipped IDX file (the MNIST distribution format).

    The header is two zero bytes, a dtype code (only ``0x08``, unsigned
    byte, is supported), the number of dimensions ``ndim``, then ``ndim``
    big-endian uint32 sizes; the data follow in C order.

    Parameters
    ----------
    path : str or Path
        Gzipped IDX file.

    Returns
    -------
    numpy.ndarray
        Read-only uint8 array with the shape given in the header, e.g.
        ``(60000, 28, 28)`` for training images, ``(60000,)`` for labels.

    Raises
    ------
    ValueError
        If the file is not gzip, has a bad magic number or dtype code, or its
        size does not match the header.
    """
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (gzip.BadGzipFile, EOFError) as err:
        raise ValueError(f"{path}: not a valid gzip file ({err})") from err
    if len(data) < 4 or data[:2] != b"\x00\x00":
        raise ValueError(f"{path}: bad IDX magic number {data[:4].hex() or '(empty)'}")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unsupported IDX dtype code {code:#04x} (only 0x08, uint8)")
    offset = 4 + 4 * ndim
    if ndim == 0 or len(data) < offset:
        raise ValueError(f"{path}: truncated IDX header ({ndim} dimensions)")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    if len(data) - offset != int(np.prod(shape)):
        raise ValueError(
            f"{path}: IDX header shape {shape} needs {int(np.prod(shape))} bytes "
            f"of data, file has {len(data) - offset}"
        )
    return np.frombuffer(data, _IDX_DTYPES[code], offset=offset).reshape(shape)


def _check_binarization(mode: str) -> None:
    if not isinstance(mode, str) or mode not in BINARIZATIONS:
        raise ValueError(f"unknown binarization {mode!r}; allowed: {', '.join(BINARIZATIONS)}")


def _check_seed_like(name, seed, *, optional=False):
    """An integer seed >= 0 or a ``numpy.random.SeedSequence``."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if seed is None and not optional:
        raise ValueError(f"{name}=None must be an integer >= 0 or a numpy.random.SeedSequence")
    return check.check_seed(name, seed, optional=optional)


def binarize(x: np.ndarray, mode: str, *, seed=None) -> np.ndarray:
    """Binarize grey levels.

    Parameters
    ----------
    x : array_like, shape (n, 784)
        Grey levels in ``[0, 1]`` (any shape works); NaN, inf and values outside
        ``[0, 1]`` (e.g. 0-255 pixel values) are refused, never clipped.
    mode : {"none", "threshold", "stochastic"}
        ``"threshold"``: ``x > 0.5``; ``"stochastic"``: one Bernoulli(x)
        draw per pixel; ``"none"``: `x` unchanged.
    seed : int >= 0 or numpy.random.SeedSequence, optional
        Seed of the numpy Generator; required for ``"stochastic"``.

    Returns
    -------
    numpy.ndarray, float32, same shape as `x`
        Values in ``{0, 1}`` unless `mode` is ``"none"``.

    Raises
    ------
    ValueError
        For an unknown `mode`, a bad `seed`, or `x` not finite in ``[0, 1]``.
    """
    _check_binarization(mode)
    if mode == "stochastic" and seed is None:
        raise ValueError("binarization 'stochastic' needs an explicit seed (got seed=None)")
    seed = _check_seed_like("seed", seed, optional=True)
    x = check.check_values("x", x, low=0.0, high=1.0)
    if mode == "threshold":
        return (x > 0.5).astype(np.float32)
    if mode == "stochastic":
        uniform = np.random.default_rng(seed).random(x.shape, dtype=np.float32)
        return (uniform < x).astype(np.float32)
    return x


def balanced_subset(y: np.ndarray, budget: int, *, seed, n_classes: int = 10) -> np.ndarray:
    """Choose `budget` examples, ``budget / n_classes`` of each class.

    Parameters
    ----------
    y : array_like of int, shape (n,)
        Labels in ``0 .. n_classes - 1`` (an integer dtype; other labels are refused).
    budget : int
        Number of examples to keep; a positive multiple of `n_classes`.
    seed : int >= 0 or numpy.random.SeedSequence
        Seed of the random order in which examples of each class are taken.
    n_classes : int >= 1, default 10

    Returns
    -------
    numpy.ndarray, int64, shape (budget,)
        Indices into `y`, in the seeded random order (classes interleaved).

    Raises
    ------
    ValueError
        If `budget` is not a positive multiple of `n_classes`, some class
        has fewer than ``budget / n_classes`` examples, or a label is outside
        ``0 .. n_classes - 1``.
    """
    n_classes = check.check_int("n_classes", n_classes, low=1)
    seed = _check_seed_like("seed", seed)
    if not check._is_int(budget):
        raise ValueError(f"label_budget={budget!r} must be a positive multiple of the number "
                         f"of classes ({n_classes}), an integer (not a bool)")
    y = check.check_labels("y", y, n_classes=n_classes)
    if budget <= 0 or budget % n_classes:
        raise ValueError(
            f"label_budget={budget} must be a positive multiple of the number of classes ({n_classes})"
        )
    per_class = budget // n_classes
    counts = np.bincount(y, minlength=n_classes)[:n_classes]
    if counts.min() < per_class:
        raise ValueError(
            f"label_budget={budget} needs {per_class} examples per class but class "
            f"{int(counts.argmin())} has only {int(counts.min())}; allowed: multiples of "
            f"{n_classes} up to {n_classes * int(counts.min())}"
        )
    order = np.random.default_rng(seed).permutation(len(y))
    keep = np.zeros(len(y), dtype=bool)
    for c in range(n_classes):
        keep[np.flatnonzero(y[order] == c)[:per_class]] = True
    return order[keep].astype(np.int64)


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


@functools.lru_cache(maxsize=4)
def _embedded_raw(data_dir: Path) -> tuple[np.ndarray, ...]:
    """Verified raw uint8 ``(x_train, y_train, x_test, y_test)``, cached per directory."""
    verify_checksums(data_dir)
    raw = {key: read_idx(data_dir / file_name) for key, file_name in FILES.items()}
    for split in ("train", "test"):
        x, y = raw[f"x_{split}"], raw[f"y_{split}"]
        _check_raw(data_dir / FILES[f"x_{split}"], data_dir / FILES[f"y_{split}"], x, y, 10)
    return raw["x_train"], raw["y_train"], raw["x_test"], raw["y_test"]


def _check_raw(x_source, y_source, x, y, n_classes):
    """Images (n, 28, 28) and labels (n,) in 0..n_classes-1, else a ValueError naming
    the source (a file passes its checksum but may still hold foreign data)."""
    if x.ndim != 3 or x.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"{x_source}: images have shape {x.shape}; allowed: (n, 28, 28)")
    if y.shape != x.shape[:1]:
        raise ValueError(f"{y_source}: labels have shape {y.shape} but the images "
                         f"{x_source} have shape {x.shape}; allowed: one label per image")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        bad = np.flatnonzero((y < 0) | (y >= n_classes))
        raise ValueError(f"{y_source}: {len(bad)} labels outside 0..{n_classes - 1} (e.g. "
                         f"{int(y[bad[0]])} at index {int(bad[0])}); the file is not "
                         f"{n_classes}-class labels")


def _tfds_raw(name: str, data_dir) -> tuple:
    """Raw ``(x_train, y_train, x_test, y_test, n_classes)`` of a prepared tfds dataset."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except ValueError as err:  # tfds' DatasetNotFoundError is a ValueError
        raise ValueError(
            f"unknown tfds dataset {name!r} ({str(err).splitlines()[0]}); "
            f"28x28 grayscale examples: {', '.join(TFDS_NAMES)}"
        ) from None
    keys = builder.info.supervised_keys
    features = builder.info.features
    if keys is None or tuple(features[keys[0]].shape) != (*IMAGE_SHAPE, 1):
        shape = None if keys is None else features[keys[0]].shape
        raise ValueError(
            f"tfds dataset {name!r} has no 28x28x1 (image, label) pairs (image shape {shape}); "
            f"use a 28x28 grayscale dataset such as {', '.join(TFDS_NAMES)}"
        )
    # `as_dataset` never downloads. `is_prepared()` is only consulted after a
    # failure: under `tfds.testing.mock_data` it is False although the mocked
    # `as_dataset` works.
    try:
        train, test = builder.as_dataset(split=["train", "test"], as_supervised=True)
    except Exception as err:
        if builder.is_prepared():
            raise
        alternative = 'load("mnist", source="embedded"), or ' if name == "mnist" else ""
        raise FileNotFoundError(
            f"tfds dataset {name!r} is not downloaded/prepared in {builder.data_dir_root}. "
            f"It is not downloaded automatically because this machine may be offline. "
            f"Offline alternative: {alternative}run `tfds build {name}` (or "
            f"tfds.builder({name!r}).download_and_prepare()) on a machine with network "
            f"access and pass the resulting directory as data_dir=."
        ) from err

    def to_numpy(ds):
        # Batched reads; batch_size=-1 crashes under mock_data (unknown split sizes).
        xs, ys = zip(*tfds.as_numpy(ds.batch(10_000)))
        return np.concatenate(xs)[..., 0], np.concatenate(ys)

    x_train, y_train = to_numpy(train)
    x_test, y_test = to_numpy(test)
    n_classes = features[keys[1]].num_classes
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        _check_raw(f"tfds {name!r} {split} images", f"tfds {name!r} {split} labels", x, y, n_classes)
    return x_train, y_train, x_test, y_test, n_classes


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


def to_dataset(
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    batch_size: int = 100,
    shuffle: bool = True,
    seed: int = 0,
    binarization: str = "none",
    drop_remainder: bool = False,
    batches_per_element: int = 1,
):
    """Batch arrays into a ``tf.data.Dataset``.

    Parameters
    ----------
    x : array_like, shape (n, d)
        Grey levels (or probabilities) in ``[0, 1]``, finite; checked whole.
    y : array_like of int, shape (n,), optional
        Labels >= 0 (an integer dtype); if given the dataset yields
        ``(x_batch, y_batch)`` pairs.
    batch_size : int >= 1, default 100
        Rows per batch; the last short batch is kept unless `drop_remainder`.
    shuffle : bool, default True
        Reshuffle (seeded) at every epoch.
    seed : int >= 0, default 0
        Seed of shuffling and stochastic binarization; two datasets built
        with the same arguments yield the same sequence of epochs.
    binarization : {"none", "threshold", "stochastic"}
        As in :func:`binarize`, except that ``"stochastic"`` draws new
        Bernoulli(x) samples at every epoch.
    drop_remainder : bool, default False
    batches_per_element : int >= 1, default 1
        Group consecutive batches into elements of shape (s, batch, 784), s the
        largest divisor of the number of full batches that is <= this (the last
        short batch is an element (1, rest, 784) of its own); same order as
        unstacked. ``dbn.rbm.RBM`` trains on such elements with one
        in-graph loop: far fewer hand-offs between the ``tf.data`` thread and
        the compute threads (each can cost a scheduler time slice on 2 cores).
        Images only (``y`` must be None).

    Returns
    -------
    tf.data.Dataset
        Batches of float32 ``(batch, 784)`` images, or pairs with int64
        ``(batch,)`` labels.
    """
    _check_binarization(binarization)
    batch_size = check.check_int("batch_size", batch_size, low=1)
    shuffle = check.check_bool("shuffle", shuffle)
    seed = check.check_seed("seed", seed)
    drop_remainder = check.check_bool("drop_remainder", drop_remainder)
    batches_per_element = check.check_int("batches_per_element", batches_per_element, low=1)
    if batches_per_element > 1 and y is not None:
        raise ValueError(f"batches_per_element={batches_per_element} must be >= 1, and 1 with labels")
    x = check.check_matrix("x", x)
    if y is not None:
        y = check.check_labels("y", y, n=len(x))
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)

    if binarization != "none":

        def binarize_batch(batch, r):
            xb = batch if y is None else batch[0]
            if binarization == "threshold":
                xb = tf.cast(xb > 0.5, tf.float32)
            else:
                uniform = tf.random.stateless_uniform(tf.shape(xb), seed=tf.stack([r, r]))
                xb = tf.cast(uniform < xb, tf.float32)
            return xb if y is None else (xb, batch[1])

        # One random int64 per batch seeds its stochastic draw: a new stream at
        # every epoch, the same one for every dataset built with this seed.
        draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, draws)).map(binarize_batch)
    n_full = len(x) // batch_size
    # Stacks divide the full batches evenly, so that the only window left at the end is
    # the short batch's and the order of batches is exactly that of the unstacked stream.
    stack = max((d for d in range(1, batches_per_element + 1) if n_full % d == 0), default=1)
    if stack > 1:
        ds = ds.group_by_window(  # full batches in stacks, the short batch alone, last
            key_func=lambda xb: tf.cast(tf.shape(xb)[0] != batch_size, tf.int64),
            reduce_func=lambda _, window: window.batch(stack),
            window_size=stack)
        has_short = len(x) % batch_size != 0 and not drop_remainder
        ds = ds.apply(tf.data.experimental.assert_cardinality(n_full // stack + int(has_short)))
    return ds.prefetch(tf.data.AUTOTUNE)


def epoch_datasets(x, y=None, *, batch_size, seed, binarization="none", batches_per_element=1):
    """``epoch -> tf.data.Dataset`` whose shuffle and binarization depend only on
    (seed, epoch), so that a resumed run sees exactly the batches it would have seen."""
    return lambda epoch: to_dataset(x, y, batch_size=batch_size, seed=seed * 100_003 + epoch,
                                    binarization=binarization, batches_per_element=batches_per_element)
