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


# --------------------------------------------------------------------------- orientation
def marked_pixel_position(path):
    """(row, column) of the black pixel inside the grey image area of a saved PNG, as
    fractions of that area's height and width (the figure around it is white)."""
    from matplotlib.image import imread

    rgb = imread(path)[..., :3].mean(axis=2)
    grey = np.abs(rgb - 0.5) < 0.05
    black = rgb < 0.1
    rows, cols = np.nonzero(grey | black)
    top, left = rows.min(), cols.min()
    height, width = rows.max() - top + 1, cols.max() - left + 1
    r, c = np.nonzero(black)
    return (r.mean() - top + 0.5) / height, (c.mean() - left + 0.5) / width


def marked_image(row=2, col=20, shape=(28, 28)):
    """A grey image with one black pixel at (row, col), flattened row-major like MNIST."""
    image = np.full(shape, 0.5, np.float32)
    image[row, col] = 0.0
    return image.reshape(-1)


@pytest.mark.parametrize("row, col", [(2, 20), (20, 2), (5, 5)])
def test_image_grid_draws_rows_as_rows(tmp_path, row, col):
    """Flattened MNIST rows are pixel rows: pixel (2, 20) is near the top right, not
    transposed to the bottom left, nor flipped."""
    path = plots.image_grid(marked_image(row, col)[None], n_rows=1, path=tmp_path / "one.png")
    y, x = marked_pixel_position(path)
    assert abs(y - (row + 0.5) / 28) < 1.0 / 28 and abs(x - (col + 0.5) / 28) < 1.0 / 28, (y, x)


def test_image_grid_fills_cells_row_by_row(tmp_path):
    """Image k goes to row k // n_cols, column k % n_cols (image 1 of a 2x2 grid is
    the top right cell); a non-square image shape keeps its rows."""
    images = np.full((4, 784), 0.5, np.float32)
    images[1] = marked_image(0, 0)
    y, x = marked_pixel_position(plots.image_grid(images, n_rows=2, path=tmp_path / "grid.png"))
    # The grid is 2 x (28 + 1) - 1 = 57 pixels each way; pixel (0, 0) of cell (0, 1).
    assert abs(y - 0.5 / 57) < 1.0 / 57 and abs(x - (29 + 0.5) / 57) < 1.0 / 57, (y, x)
    wide = marked_image(1, 30, shape=(14, 56))[None]
    y, x = marked_pixel_position(plots.image_grid(wide, n_rows=1, image_shape=(14, 56),
                                                  path=tmp_path / "wide.png"))
    assert abs(y - 1.5 / 14) < 1.0 / 14 and abs(x - 30.5 / 56) < 1.0 / 56, (y, x)


def test_tile_filters_draws_each_column_as_an_image(tmp_path):
    """Column j of W (one hidden unit's weights on the 784 pixels) is drawn as a 28x28
    image in the same orientation as the digits."""
    W = np.full((784, 1), 0.5)
    W[2 * 28 + 20, 0] = -1.0  # the minimum: black after min-max scaling
    W[27 * 28 + 27, 0] = 2.0  # the maximum: white (so that 0.5 maps to grey 0.5)
    y, x = marked_pixel_position(plots.tile_filters(W, n=1, path=tmp_path / "filters.png"))
    assert abs(y - 2.5 / 28) < 1.0 / 28 and abs(x - 20.5 / 28) < 1.0 / 28, (y, x)


def test_curves_against_time_marks_a_run_in_progress(tmp_path, monkeypatch):
    """A partial curve (a run still training) is labelled as such in both panels."""
    figures, real = [], plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or real(fig, path))
    finished = {"seconds": [60.0, 120.0], "test_squared_error": [5.0, 4.0], "gradient_examples": [1e6, 2e6]}
    curves = {"cg": finished, "lbfgs": {**finished, "in_progress": True, "planned_epochs": 200}}
    _assert_png(plots.curves_against_time(curves, tmp_path / "c" / "curves.png", work_key="gradient_examples"))
    (figure,) = figures
    assert len(figure.axes) == 2
    for ax in figure.axes:
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [
            "cg", "lbfgs (in progress: 2 of 200 epochs)"]
        assert [line.get_linestyle() for line in ax.get_lines()] == ["-", ":"]
    with pytest.raises(ValueError, match=r"curves\['cg'\]: seconds \(1,\) and test_squared_error \(2,\)"):
        plots.curves_against_time({"cg": {**finished, "seconds": [1.0]}}, tmp_path / "x.png")
