"""PNG figures from arrays (no model logic).

Figures are built with :class:`matplotlib.figure.Figure` and rendered by the
Agg backend, so no global pyplot state or display is involved. Every
function creates the parent directories, writes `path` atomically and
returns it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from dbn import validation as check
from dbn.provenance import atomic_write


def _check_path(path):
    if not isinstance(path, (str, Path)) or not str(path):
        raise ValueError(f"path={path!r} must be a file path (str or Path)")


def _check_text(name, value, *, optional=True):
    if not (isinstance(value, str) or (optional and value is None)):
        raise ValueError(f"{name}={value!r} must be a str" + (" or None" if optional else ""))


def _check_image_shape(image_shape):
    if (not isinstance(image_shape, (tuple, list)) or len(image_shape) != 2
            or not all(check._is_int(n) and n >= 1 for n in image_shape)):
        raise ValueError(f"image_shape={image_shape!r} must be a pair of integers >= 1, e.g. (28, 28)")
    return int(image_shape[0]), int(image_shape[1])


def _save(fig: Figure, path: str | Path) -> Path:
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=100)
    return Path(path)


def _mosaic(images: np.ndarray, n_rows: int, n_cols: int, image_shape: tuple[int, int]) -> np.ndarray:
    """Tile rows of `images` into one array, 1-pixel white separators, blank cells white."""
    h, w = image_shape
    mosaic = np.ones((n_rows * (h + 1) - 1, n_cols * (w + 1) - 1), dtype=np.float32)
    for k, image in enumerate(images):
        r, c = divmod(k, n_cols)
        mosaic[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = image.reshape(h, w)
    return mosaic


def _show_mosaic(images, n_rows, n_cols, image_shape, title) -> Figure:
    fig = Figure(figsize=(max(2.0, 0.4 * n_cols), max(2.0, 0.4 * n_rows) + (0.4 if title else 0)))
    ax = fig.add_subplot()
    ax.imshow(_mosaic(images, n_rows, n_cols, image_shape), cmap="gray", vmin=0.0, vmax=1.0)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def image_grid(
    images: np.ndarray,
    *,
    n_rows: int,
    n_cols: int | None = None,
    path: str | Path,
    title: str | None = None,
    image_shape: tuple[int, int] = (28, 28),
) -> Path:
    """Plot images in a grid, row by row.

    Parameters
    ----------
    images : array_like, shape (n, 784)
        Flattened images with values in ``[0, 1]`` (0 black, 1 white).
    n_rows : int
    n_cols : int, optional
        Default ``ceil(n / n_rows)``. Cells beyond `n` are left blank.
    path : str or Path
        Output PNG.
    title : str, optional
    image_shape : (int, int), default (28, 28)

    Raises
    ------
    ValueError
        If the images do not fit the grid, do not have ``prod(image_shape)`` pixels or
        are not finite in ``[0, 1]``; for ``n_rows``/``n_cols`` that are not integers
        >= 1, a bad `path`, `title` or `image_shape`.  Nothing is written then.
    """
    n_rows = check.check_int("n_rows", n_rows, low=1)
    n_cols = check.check_int("n_cols", n_cols, low=1, optional=True)
    _check_path(path)
    _check_text("title", title)
    image_shape = _check_image_shape(image_shape)
    images = check._as_array("images", images).astype(np.float32, copy=False)
    n_cols = math.ceil(len(images) / n_rows) if n_cols is None else n_cols
    if images.ndim != 2 or images.shape[1] != image_shape[0] * image_shape[1]:
        raise ValueError(f"images must have shape (n, {image_shape[0] * image_shape[1]}), got {images.shape}")
    check.check_values("images", images, low=0.0, high=1.0)
    if not 1 <= len(images) <= n_rows * n_cols:
        raise ValueError(f"{len(images)} images do not fit a {n_rows}x{n_cols} grid")
    return _save(_show_mosaic(images, n_rows, n_cols, image_shape, title), path)


def tile_filters(
    W: np.ndarray,
    *,
    n: int = 100,
    path: str | Path,
    title: str | None = None,
    image_shape: tuple[int, int] = (28, 28),
) -> Path:
    """Plot the first `n` columns of a weight matrix as images.

    Parameters
    ----------
    W : array_like, shape (784, n_hidden)
        Weights; each column is one hidden unit's receptive field, min-max
        normalised to ``[0, 1]`` separately.
    n : int, default 100
        Number of filters shown (at most `n_hidden`), in a near-square grid.
    path : str or Path
        Output PNG.
    title : str, optional
    image_shape : (int, int), default (28, 28)
    """
    n = check.check_int("n", n, low=1)
    _check_path(path)
    _check_text("title", title)
    image_shape = _check_image_shape(image_shape)
    W = check._as_array("W", W).astype(np.float32, copy=False)
    if W.ndim != 2 or W.shape[0] != image_shape[0] * image_shape[1] or W.shape[1] == 0:
        raise ValueError(f"W must have shape ({image_shape[0] * image_shape[1]}, n_hidden), got {W.shape}")
    check.check_values("W", W, low=None, high=None)
    filters = W[:, :n].T
    low = filters.min(axis=1, keepdims=True)
    span = filters.max(axis=1, keepdims=True) - low
    filters = (filters - low) / np.where(span > 0, span, 1.0)
    n_cols = math.ceil(math.sqrt(len(filters)))
    n_rows = math.ceil(len(filters) / n_cols)
    return _save(_show_mosaic(filters, n_rows, n_cols, image_shape, title), path)


def learning_curves(history: dict[str, list[float]], *, path: str | Path, keys: list[str] | None = None) -> Path:
    """One subplot per metric against epoch (1-based).

    Parameters
    ----------
    history : dict of str to list of float
        Per-epoch values, e.g. ``{"reconstruction_error": [...], "val_loss": [...]}``.
    path : str or Path
        Output PNG.
    keys : list of str, optional
        Metrics to plot, in order; default all keys of `history`.  Each must be a key
        of `history` whose values are a non-empty 1-D sequence of numbers (NaN is
        drawn as a gap).
    """
    if not isinstance(history, dict):
        raise ValueError(f"history={history!r} must be a dict of per-epoch value lists")
    if keys is not None and (isinstance(keys, str) or not isinstance(keys, (list, tuple))):
        raise ValueError(f"keys={keys!r} must be a list of str or None")
    _check_path(path)
    keys = list(history) if keys is None else list(keys)
    missing = [key for key in keys if key not in history]
    if not keys or missing:
        raise ValueError(f"keys {missing or keys} not plottable; history has {sorted(history)}")
    for key in keys:
        values = history[key]
        try:
            values = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"history[{key!r}] is not a sequence of numbers") from None
        if values.ndim != 1 or not values.size:
            raise ValueError(f"history[{key!r}] has shape {values.shape}; allowed: a non-empty "
                             "1-D sequence of per-epoch values")
    fig = Figure(figsize=(4.0 * len(keys), 3.2))
    for i, key in enumerate(keys):
        ax = fig.add_subplot(1, len(keys), i + 1)
        values = np.asarray(history[key], dtype=float)
        ax.plot(np.arange(1, len(values) + 1), values, marker="." if len(values) < 50 else None)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def class_histogram(y: np.ndarray, *, n_classes: int = 10, path: str | Path, title: str | None = None) -> Path:
    """Bar chart of examples per class.

    Parameters
    ----------
    y : array_like of int, shape (n,)
        Labels in ``0 .. n_classes - 1`` (an integer dtype).
    n_classes : int >= 1, default 10
    path : str or Path
        Output PNG.
    title : str, optional
    """
    n_classes = check.check_int("n_classes", n_classes, low=1)
    _check_path(path)
    _check_text("title", title)
    y = check.check_labels("y", y, n_classes=n_classes)
    counts = np.bincount(y, minlength=n_classes)
    fig = Figure(figsize=(max(4.0, 0.45 * n_classes), 3.2))
    ax = fig.add_subplot()
    ax.bar(np.arange(n_classes), counts)
    ax.set_xticks(np.arange(n_classes))
    ax.set_xlabel("class")
    ax.set_ylabel("examples")
    ax.set_title(title or f"{len(y)} examples")
    fig.tight_layout()
    return _save(fig, path)


def errorbar_plot(
    x: np.ndarray,
    means: np.ndarray,
    stds: np.ndarray,
    *,
    labels: list[str],
    path: str | Path,
    xlabel: str,
    ylabel: str,
    logx: bool = False,
    title: str | None = None,
) -> Path:
    """Several series of mean +- standard deviation against `x`.

    Parameters
    ----------
    x : array_like, shape (n_points,)
        Finite; > 0 with `logx`.
    means, stds : array_like, shape (n_series, n_points)
        A 1-D array is one series.  Finite (NaN allowed in `stds`: no error bar, e.g.
        the std of a single seed); `stds` >= 0.
    labels : list of str, length n_series
    path : str or Path
        Output PNG.
    xlabel, ylabel : str
    logx : bool, default False
        Logarithmic x axis.
    title : str, optional
    """
    _check_path(path)
    _check_text("xlabel", xlabel, optional=False)
    _check_text("ylabel", ylabel, optional=False)
    _check_text("title", title)
    logx = check.check_bool("logx", logx)
    if isinstance(labels, str) or not isinstance(labels, (list, tuple)) or not all(
            isinstance(label, str) for label in labels):
        raise ValueError(f"labels={labels!r} must be a list of str, one per series")
    x = check._as_array("x", x).astype(float)
    means = np.atleast_2d(check._as_array("means", means).astype(float))
    stds = np.atleast_2d(check._as_array("stds", stds).astype(float))
    if x.ndim != 1 or means.ndim != 2:
        raise ValueError(f"x must be 1-D and means 1-D or 2-D; got shapes {x.shape} and {means.shape}")
    check.check_values("x", x, low=0.0 if logx else None, high=None)
    if logx and np.any(x <= 0):
        raise ValueError(f"x has values <= 0 ({x.min():g}); allowed with logx=True: x > 0")
    check.check_values("means", means, low=None, high=None)
    if np.any(stds[~np.isnan(stds)] < 0) or np.any(np.isinf(stds)):
        raise ValueError("stds has negative or infinite values; allowed: finite values >= 0 "
                         "(or NaN for no error bar)")
    if means.shape != stds.shape or means.shape[1] != len(x) or len(labels) != len(means):
        raise ValueError(
            f"need means and stds of shape (len(labels)={len(labels)}, len(x)={len(x)}), "
            f"got {means.shape} and {stds.shape}"
        )
    fig = Figure(figsize=(5.5, 4.0))
    ax = fig.add_subplot()
    for mean, std, label in zip(means, stds, labels):
        ax.errorbar(x, mean, yerr=std, label=label, marker="o", capsize=3)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def seed_points(values: dict[str, list[float]], *, path: str | Path, ylabel: str,
                title: str | None = None) -> Path:
    """Every seed's value as a point, one column per group, with the group's mean as a bar.

    Parameters
    ----------
    values : dict of str to list of float
        Group name -> one finite value per seed (non-empty).
    path : str or Path
        Output PNG.
    ylabel : str
    title : str, optional
    """
    _check_path(path)
    _check_text("ylabel", ylabel, optional=False)
    _check_text("title", title)
    if not isinstance(values, dict) or not values:
        raise ValueError(f"values={values!r} must be a non-empty dict group -> list of values")
    arrays = {}
    for name, series in values.items():
        if not isinstance(name, str):
            raise ValueError(f"values has a key {name!r}; allowed: str group names")
        arrays[name] = check.check_values(f"values[{name!r}]", np.asarray(series, float).ravel(),
                                          low=None, high=None)
        if not len(arrays[name]):
            raise ValueError(f"values[{name!r}] is empty; allowed: at least one value")
    fig = Figure(figsize=(1.6 + 1.4 * len(arrays), 4.0))
    ax = fig.add_subplot()
    for i, (name, series) in enumerate(arrays.items()):
        ax.plot(np.full(len(series), i), series, "o", alpha=0.7)
        ax.hlines(series.mean(), i - 0.25, i + 0.25, colors="k")
    ax.set_xticks(range(len(arrays)), list(arrays))
    ax.set_xlim(-0.6, len(arrays) - 0.4)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return _save(fig, path)


def image_rows(rows: dict[str, np.ndarray], path: str | Path, *, image_shape=(28, 28)) -> Path:
    """One labelled row of images per entry of ``rows`` (name -> array (n, H*W) in [0, 1],
    the same n for every row): originals and reconstructions side by side (Hinton &
    Salakhutdinov 2006, Fig. 2)."""
    _check_path(path)
    image_shape = _check_image_shape(image_shape)
    if not isinstance(rows, dict) or not rows:
        raise ValueError("rows must be a non-empty dict name -> images (n, H*W)")
    arrays = {name: check.check_matrix(f"rows[{name!r}]", a, n_columns=image_shape[0] * image_shape[1])
              for name, a in rows.items()}
    n = {len(a) for a in arrays.values()}
    if len(n) != 1 or 0 in n:
        raise ValueError(f"rows hold {sorted(n)} images each; allowed: the same number >= 1")
    n = n.pop()
    fig = Figure(figsize=(1.0 + 0.7 * n, 0.8 * len(arrays)))
    axes = fig.subplots(len(arrays), 1, squeeze=False)[:, 0]
    for ax, (name, a) in zip(axes, arrays.items()):
        ax.imshow(_mosaic(a, 1, n, image_shape), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def curves_against_time(curves: dict[str, dict], path: str | Path, *, key="test_squared_error",
                        reference: dict[str, float] | None = None, work_key: str | None = None) -> Path:
    """``curves[name]["seconds"]`` (cumulative training time) against ``curves[name][key]``,
    one line per run, log-scaled y; ``reference`` draws labelled horizontal lines.  With
    ``work_key`` a second panel puts the same errors against ``curves[name][work_key]``
    (cumulative examples through a forward and backward pass, in millions): a measure of
    work that, unlike wall time, no other job on the machine can stretch.  A curve with
    ``"in_progress": True`` (a run still training: ``planned_epochs`` in all) is dotted and
    its legend says how far it got."""
    _check_path(path)
    if not isinstance(curves, dict) or not curves:
        raise ValueError("curves must be a non-empty dict name -> {'seconds': [...], key: [...]}")
    panels = [("seconds", 1 / 60.0, "training time (minutes, this machine)")]
    if work_key is not None:
        panels.append((work_key, 1e-6, "examples through forward + backward passes (millions)"))
    fig = Figure(figsize=(6.5 * len(panels), 4.2))
    for ax, (x_key, scale, x_label) in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
        for name, c in curves.items():
            x = np.asarray(c.get(x_key, []), float) * scale
            y = np.asarray(c[key], float)
            if x.shape != y.shape or not len(x):
                raise ValueError(f"curves[{name!r}]: {x_key} {x.shape} and {key} {y.shape} must match, non-empty")
            partial = c.get("in_progress")  # a partial curve must not pass for a finished run
            ax.plot(x, y, lw=1.2, ls=":" if partial else "-", label=name + (
                f" (in progress: {len(y)} of {c.get('planned_epochs', '?')} epochs)" if partial else ""))
        for name, value in (reference or {}).items():
            ax.axhline(float(value), ls="--", lw=0.8, color="gray")
            ax.text(ax.get_xlim()[1], float(value), f" {name}", va="center", fontsize=7, color="gray")
        ax.set_yscale("log")
        ax.set_xlabel(x_label)
        ax.set_ylabel(key.replace("_", " "))
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def code_maps(codes: dict[str, np.ndarray], labels: np.ndarray, path: str | Path,
              *, scores: dict[str, float] | None = None) -> Path:
    """Side-by-side scatter plots of 2-D codes (name -> (n, 2)) coloured by class
    ``labels`` (n,) (Hinton & Salakhutdinov 2006, Fig. 3); ``scores`` go in the titles."""
    _check_path(path)
    labels = np.asarray(labels)
    if not isinstance(codes, dict) or not codes:
        raise ValueError("codes must be a non-empty dict name -> (n, 2) array")
    fig = Figure(figsize=(4.2 * len(codes), 4.2))
    axes = fig.subplots(1, len(codes), squeeze=False)[0]
    for ax, (name, c) in zip(axes, codes.items()):
        c = check.check_matrix(f"codes[{name!r}]", c, n_columns=2, low=None, high=None)
        if len(c) != len(labels):
            raise ValueError(f"codes[{name!r}] has {len(c)} rows for {len(labels)} labels")
        sc = ax.scatter(c[:, 0], c[:, 1], c=labels, cmap="tab10", s=1.5, vmin=-0.5, vmax=9.5)
        title = name if not scores or name not in scores else f"{name}\n10-NN accuracy {scores[name]:.1%}"
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(sc, ax=list(axes), ticks=range(10), shrink=0.8)
    return _save(fig, path)


def digit_map(codes: np.ndarray, images: np.ndarray, path: str | Path, *, n_cells=25,
              image_shape=(28, 28)) -> Path:
    """Small digit images placed at their 2-D codes (n, 2): at most one per cell of an
    ``n_cells`` x ``n_cells`` grid over the codes' range (the first image in each)."""
    _check_path(path)
    image_shape = _check_image_shape(image_shape)
    codes = check.check_matrix("codes", codes, n_columns=2, low=None, high=None, allow_empty=False)
    images = check.check_matrix("images", images, n_columns=image_shape[0] * image_shape[1])
    if len(images) != len(codes):
        raise ValueError(f"{len(images)} images for {len(codes)} codes")
    n_cells = check.check_int("n_cells", n_cells, low=2)
    lo, hi = np.percentile(codes, 1, axis=0), np.percentile(codes, 99, axis=0)
    cell = np.floor((codes - lo) / np.maximum(hi - lo, 1e-12) * n_cells).astype(int)
    h, w = image_shape
    canvas = np.ones((n_cells * h, n_cells * w))
    taken = set()
    for (i, j), image in zip(cell, images):
        if 0 <= i < n_cells and 0 <= j < n_cells and (i, j) not in taken:
            taken.add((i, j))
            row = n_cells - 1 - j  # y up
            canvas[row * h:(row + 1) * h, i * w:(i + 1) * w] = 1.0 - image.reshape(h, w)
    fig = Figure(figsize=(8, 8))
    ax = fig.subplots()
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    return _save(fig, path)
