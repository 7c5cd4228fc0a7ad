"""Bad inputs to dbn.plots: ValueErrors naming the argument; nothing is written."""

import numpy as np
import pytest

from dbn import plots

IMAGES = np.random.default_rng(0).random((6, 784)).astype(np.float32)


def _nothing_written(tmp_path):
    assert list(tmp_path.rglob("*")) == []


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_rows=0), r"n_rows=0 must be an integer >= 1"),
    (dict(n_rows=2.0), r"n_rows=2.0"),
    (dict(n_rows=True), r"n_rows=True"),
    (dict(n_cols=0), r"n_cols=0"),
    (dict(images=IMAGES * 255), r"images has values in \[.*\]; allowed: finite values in \[0, 1\]"),
    (dict(images=np.where(IMAGES > 0.5, np.nan, IMAGES)), r"images contains NaN"),
    (dict(images=IMAGES.astype(str)), r"images has dtype <U"),
    (dict(image_shape=(28, 28.0)), r"image_shape=\(28, 28.0\) must be a pair of integers"),
    (dict(image_shape=784), r"image_shape=784"),
    (dict(title=3), r"title=3 must be a str"),
    (dict(path=None), r"path=None must be a file path"),
])
def test_image_grid(tmp_path, kwargs, match):
    kwargs = {"images": IMAGES, "n_rows": 2, "path": tmp_path / "g.png", **kwargs}
    with pytest.raises(ValueError, match=match):
        plots.image_grid(**kwargs)
    _nothing_written(tmp_path)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=0), r"n=0"), (dict(n=2.5), r"n=2.5"),
    (dict(W=np.full((784, 5), np.inf)), r"W contains NaN or inf"),
    (dict(W=np.zeros((784, 0))), r"W must have shape \(784, n_hidden\)"),
])
def test_tile_filters(tmp_path, kwargs, match):
    kwargs = {"W": np.zeros((784, 5)), "path": tmp_path / "f.png", **kwargs}
    with pytest.raises(ValueError, match=match):
        plots.tile_filters(**kwargs)
    _nothing_written(tmp_path)


@pytest.mark.parametrize("kwargs, match", [
    (dict(history=[1, 2]), r"history=\[1, 2\] must be a dict"),
    (dict(history={"a": []}), r"history\['a'\] has shape \(0,\)"),
    (dict(history={"a": ["x"]}), r"history\['a'\] is not a sequence of numbers"),
    (dict(history={"a": [[1, 2]]}), r"history\['a'\] has shape \(1, 2\)"),
    (dict(keys="a"), r"keys='a' must be a list of str"),
])
def test_learning_curves(tmp_path, kwargs, match):
    kwargs = {"history": {"a": [1.0, 2.0]}, "path": tmp_path / "c.png", **kwargs}
    with pytest.raises(ValueError, match=match):
        plots.learning_curves(**kwargs)
    _nothing_written(tmp_path)


@pytest.mark.parametrize("kwargs, match", [
    (dict(y=np.array([0.0, 1.0])), r"y has dtype float64"),
    (dict(y=np.array([0, 10])), r"y has labels in \[0, 10\]"),
    (dict(n_classes=10.0), r"n_classes=10.0"),
])
def test_class_histogram(tmp_path, kwargs, match):
    kwargs = {"y": np.array([0, 1]), "path": tmp_path / "h.png", **kwargs}
    with pytest.raises(ValueError, match=match):
        plots.class_histogram(**kwargs)
    _nothing_written(tmp_path)


@pytest.mark.parametrize("kwargs, match", [
    (dict(x=[0, 1, 2], logx=True), r"x has values <= 0"),
    (dict(means=[[1.0, np.nan, 2.0]]), r"means contains NaN"),
    (dict(stds=[[0.1, -0.1, 0.1]]), r"stds has negative or infinite values"),
    (dict(labels="a"), r"labels='a' must be a list of str"),
    (dict(labels=[1]), r"labels=\[1\] must be a list of str"),
    (dict(xlabel=None), r"xlabel=None must be a str"),
    (dict(logx="yes"), r"logx='yes' must be True or False"),
])
def test_errorbar_plot(tmp_path, kwargs, match):
    kwargs = {"x": [1, 2, 3], "means": [[1.0, 2.0, 3.0]], "stds": [[0.1, 0.1, 0.1]], "labels": ["a"],
              "path": tmp_path / "e.png", "xlabel": "x", "ylabel": "y", **kwargs}
    with pytest.raises(ValueError, match=match):
        plots.errorbar_plot(**kwargs)
    _nothing_written(tmp_path)


def test_errorbar_plot_nan_std_is_no_error_bar(tmp_path):
    plots.errorbar_plot([1, 2], [[1.0, 2.0]], [[np.nan, 0.1]], labels=["a"], path=tmp_path / "e.png",
                        xlabel="x", ylabel="y")
    assert (tmp_path / "e.png").exists()


@pytest.mark.parametrize("kwargs, match", [
    (dict(values={}), r"values=\{\} must be a non-empty dict"),
    (dict(values=[1.0]), r"must be a non-empty dict"),
    (dict(values={"a": []}), r"values\['a'\] is empty"),
    (dict(values={"a": [1.0, np.nan]}), r"values\['a'\] contains NaN"),
    (dict(values={1: [1.0]}), r"values has a key 1"),
    (dict(ylabel=None), r"ylabel=None must be a str"),
])
def test_seed_points(tmp_path, kwargs, match):
    kwargs = {"values": {"a": [1.0, 2.0]}, "path": tmp_path / "s.png", "ylabel": "y", **kwargs}
    with pytest.raises(ValueError, match=match):
        plots.seed_points(**kwargs)
    _nothing_written(tmp_path)


def test_seed_points_draws_every_value(tmp_path):
    plots.seed_points({"pretrained": [1.1, 1.0, 1.2], "glorot": [1.6]}, path=tmp_path / "s.png",
                      ylabel="test error (%)")
    assert (tmp_path / "s.png").stat().st_size > 0
