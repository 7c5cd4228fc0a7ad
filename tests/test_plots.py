import numpy as np
import pytest

from dbn import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
rng = np.random.default_rng(0)


def _assert_png(path):
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left


def test_image_grid(tmp_path):
    path = plots.image_grid(rng.random((23, 784)), n_rows=3, path=tmp_path / "a" / "grid.png", title="digits")
    _assert_png(path)
    with pytest.raises(ValueError, match="23 images do not fit a 2x10 grid"):
        plots.image_grid(rng.random((23, 784)), n_rows=2, n_cols=10, path=tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"shape \(n, 784\), got \(5, 100\)"):
        plots.image_grid(rng.random((5, 100)), n_rows=1, path=tmp_path / "x.png")


def test_tile_filters(tmp_path):
    W = rng.normal(size=(784, 30))
    W[:, 0] = 0.0  # constant filter must not divide by zero
    _assert_png(plots.tile_filters(W, n=100, path=tmp_path / "f" / "filters.png"))
    with pytest.raises(ValueError, match=r"W must have shape \(784, n_hidden\)"):
        plots.tile_filters(W.T, path=tmp_path / "x.png")


def test_learning_curves(tmp_path):
    history = {"recon": [0.3, 0.2, 0.15], "val_loss": [1.0, 0.8, 0.7]}
    _assert_png(plots.learning_curves(history, path=tmp_path / "c" / "curves.png"))
    with pytest.raises(ValueError, match=r"keys \['nope'\] not plottable"):
        plots.learning_curves(history, path=tmp_path / "x.png", keys=["nope"])


def test_class_histogram(tmp_path):
    _assert_png(plots.class_histogram(rng.integers(0, 10, 500), path=tmp_path / "h" / "hist.png"))
    with pytest.raises(ValueError, match=r"y has labels in .*allowed: 0..9"):
        plots.class_histogram(np.array([0, 10]), path=tmp_path / "x.png")


def test_errorbar_plot(tmp_path):
    x = np.array([10, 100, 1000])
    means, stds = rng.random((2, 3)), 0.1 * rng.random((2, 3))
    path = plots.errorbar_plot(x, means, stds, labels=["rbm", "dbn"], path=tmp_path / "e" / "err.png",
                               xlabel="labels", ylabel="error", logx=True)
    _assert_png(path)
    with pytest.raises(ValueError, match="need means and stds of shape"):
        plots.errorbar_plot(x, means, stds, labels=["one"], path=tmp_path / "x.png", xlabel="a", ylabel="b")
