"""From arrays to training batches: binarization, balanced label subsets, ``tf.data``
pipelines (with stacks of batches for in-graph loops) whose shuffle and stochastic
binarization depend only on (seed, epoch), so resumed runs see the same batches.

TensorFlow is imported when a dataset is made, so importing this module is cheap.
"""

from __future__ import annotations

import numpy as np

from dbn import validation as check
from dbn.seeds import epoch_seed


BINARIZATIONS = ("none", "threshold", "stochastic")


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
                         f"of classes ({n_classes}), an integer{check._not_bool(budget)}")
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
        unstacked. ``dbn.models.rbm.RBM`` trains on such elements with one
        in-graph loop: far fewer hand-offs between the ``tf.data`` thread and
        the compute threads (each can cost a scheduler time slice on 2 cores).
        Images only (``y`` must be None).

    Returns
    -------
    tf.data.Dataset
        Batches of float32 ``(batch, 784)`` images, or pairs with int64
        ``(batch,)`` labels.
    """
    x, y, options = _checked(x, y, batch_size=batch_size, shuffle=shuffle, seed=seed,
                             binarization=binarization, drop_remainder=drop_remainder,
                             batches_per_element=batches_per_element)
    return _batched(x, y, **options)


def _checked(x, y, *, batch_size, shuffle, seed, binarization, drop_remainder,
             batches_per_element):
    """The arguments of ``to_dataset``, checked: ``(x, y, options)``."""
    _check_binarization(binarization)
    options = dict(batch_size=check.check_int("batch_size", batch_size, low=1),
                   shuffle=check.check_bool("shuffle", shuffle), seed=check.check_seed("seed", seed),
                   binarization=binarization,
                   drop_remainder=check.check_bool("drop_remainder", drop_remainder),
                   batches_per_element=check.check_int("batches_per_element", batches_per_element,
                                                       low=1))
    if options["batches_per_element"] > 1 and y is not None:
        raise ValueError(f"batches_per_element={batches_per_element} must be >= 1, and 1 with labels")
    x = check.check_matrix("x", x)
    if y is not None:
        y = check.check_labels("y", y, n=len(x))
    return x, y, options


def _batched(x, y, *, batch_size, shuffle, seed, binarization, drop_remainder, batches_per_element):
    """``to_dataset`` on arguments already checked."""
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
    return ds.prefetch(PREFETCH).with_options(_options(tf))


# Elements read ahead by the tf.data thread (an element is a batch or a stack of them).
PREFETCH = 4


def _options(tf):
    """No autotuning: an iterator of an autotuned pipeline took ~2.4 s to tear down after
    every epoch here (TF 2.21, 2 cores; ``fit`` returned that long after ``on_train_end``),
    ~40% of a CD-1 784x500 epoch. The elements are the same either way (nothing here
    depends on parallelism), only when they are made."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def epoch_datasets(x, y=None, *, batch_size, seed, binarization="none", batches_per_element=1):
    """``epoch -> tf.data.Dataset`` whose shuffle and binarization depend only on
    (seed, epoch) and TensorFlow's global seed (tf.data's seeded ops read it; the package
    sets it from the run's seed before training), so that a resumed run sees exactly the
    batches it would have seen."""
    # Checked once, here: the arrays are not rescanned every epoch.
    x, y, options = _checked(x, y, batch_size=batch_size, shuffle=True, seed=seed,
                             binarization=binarization, drop_remainder=False,
                             batches_per_element=batches_per_element)
    tensors = []

    def epoch_dataset(epoch):
        if not tensors:  # copied into TensorFlow once, not every epoch (~0.2 s for MNIST)
            import tensorflow as tf

            tensors.extend([tf.constant(x), None if y is None else tf.constant(y)])
        return _batched(*tensors, **{**options, "seed": epoch_seed(options["seed"], epoch)})
    return epoch_dataset
