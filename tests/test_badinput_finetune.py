"""Bad inputs to dbn.finetune (fine_tune, fit_schedule, refit_schedule, error_rate):
ValueErrors naming the argument before any epoch is trained or file written."""

import numpy as np
import pytest

from dbn.models.classifier import build_classifier
from dbn.training.configs import FineTuneConfig
from dbn.training.finetune import error_rate, fine_tune, fit_schedule, refit_schedule

CONFIG = FineTuneConfig(max_epochs=2, patience=1)


def model():
    return build_classifier([20, 8], 10, init="glorot", seed=0)


def data(n=50, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 20)).astype(np.float32), rng.integers(0, 10, n)


def _untouched(net, before, tmp_path):
    for a, b in zip(net.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    assert getattr(net, "optimizer", None) is None  # not even compiled
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def _bad(x, y, xv, yv, **changes):
    args = dict(x_train=x, y_train=y, x_val=xv, y_val=yv)
    args.update(changes)
    return args


@pytest.mark.parametrize("change, match", [
    (lambda x, y: dict(y_train=np.where(np.arange(len(y)) == 3, 10, y)), r"y_train has labels in \[0, 10\].*allowed: 0..9"),
    (lambda x, y: dict(y_train=np.where(np.arange(len(y)) == 3, -1, y)), r"y_train has labels in \[-1, "),
    (lambda x, y: dict(y_val=np.full(len(y), 12)), r"y_val has labels in \[12, 12\]"),
    (lambda x, y: dict(y_train=y + 0.5), r"y_train has dtype float64; allowed: integer class labels"),
    (lambda x, y: dict(y_train=y.astype(float)), r"y_train has dtype float64"),
    (lambda x, y: dict(y_train=y[:-1]), r"y_train has 49 labels but x_train has 50 rows"),
    (lambda x, y: dict(x_train=np.where(x > 0.99, np.nan, x)), r"x_train contains NaN or inf"),
    (lambda x, y: dict(x_train=x * 255), r"x_train has values in \[.*; allowed: finite values in \[0, 1\]"),
    (lambda x, y: dict(x_val=x[:, :19]), r"x_val has 19 features; the model's input width is 20"),
    (lambda x, y: dict(x_train=x[:0], y_train=y[:0]), r"x_train is empty"),
    (lambda x, y: dict(x_val=x[:0], y_val=y[:0]), r"non-empty validation split"),
], ids=["label-10", "label-minus-1", "val-label-12", "float-labels", "whole-float-labels",
        "lengths", "nan", "0-255", "width", "empty-train", "empty-val"])
def test_fine_tune_bad_data(tmp_path, change, match):
    x, y = data()
    net = model()
    before = net.get_weights()
    with pytest.raises(ValueError, match=match):
        fine_tune(net, **_bad(x, y, x, y, **change(x, y)), config=CONFIG,
                  checkpoint_dir=tmp_path / "ckpt")
    _untouched(net, before, tmp_path / "ckpt")


@pytest.mark.parametrize("kwargs, match", [
    (dict(seed=-1), r"seed=-1"), (dict(seed=0.5), r"seed=0.5"),
    (dict(config={"max_epochs": 2}), r"config=.* must be a FineTuneConfig"),
    (dict(checkpoint_dir=3), r"checkpoint_dir=3 must be a directory"),
])
def test_fine_tune_bad_arguments(tmp_path, kwargs, match):
    x, y = data()
    net = model()
    before = net.get_weights()
    kwargs = {"config": CONFIG, **kwargs}
    with pytest.raises(ValueError, match=match):
        fine_tune(net, x, y, x, y, **kwargs)
    _untouched(net, before, tmp_path / "none")


def test_fine_tune_not_a_model():
    x, y = data()
    with pytest.raises(ValueError, match="model=.* must be a keras.Model"):
        fine_tune("net", x, y, x, y, CONFIG)


@pytest.mark.parametrize("rates, match", [
    ([True], "learning_rates"), (["0.1"], "learning_rates"), ([0.1, None], "learning_rates"),
    ("0.1", "learning_rates"), (0.1, "learning_rates"), ([float("inf")], "learning_rates"),
])
def test_fit_schedule_bad_rates(rates, match):
    x, y = data()
    net = model()
    with pytest.raises(ValueError, match=match):
        fit_schedule(net, x, y, CONFIG, rates)
    assert getattr(net, "optimizer", None) is None


def test_fit_schedule_bad_data():
    x, y = data()
    with pytest.raises(ValueError, match=r"y has labels in \[0, 10\]"):
        fit_schedule(model(), x, np.where(np.arange(len(y)) == 0, 10, y), CONFIG, [0.01])
    with pytest.raises(ValueError, match=r"y has dtype float64"):
        fit_schedule(model(), x, y.astype(float), CONFIG, [0.01])


@pytest.mark.parametrize("errors, match", [
    ([0.1, float("nan")], r"val_errors\[1\]=nan"), ([0.1, 1.5], r"val_errors\[1\]=1.5"),
    (["0.1"], r"val_errors\[0\]='0.1'"), (0.1, "val_errors=0.1"), ("0.1", "val_errors='0.1'"),
])
def test_refit_schedule_bad_errors(errors, match):
    with pytest.raises(ValueError, match=match):
        refit_schedule(errors, CONFIG)


@pytest.mark.parametrize("make, match", [
    (lambda x, y: (x, y[:1]), r"y has 1 labels but x has 50 rows"),
    (lambda x, y: (x, y + 10), r"y has labels in .*allowed: 0..9"),
    (lambda x, y: (x, y.astype(np.float32)), r"y has dtype float32"),
    (lambda x, y: (x[:, :5], y), r"x has 5 features; the model's input width is 20"),
    (lambda x, y: (x[:0], y[:0]), r"x is empty"),
    (lambda x, y: (np.where(x > 0.5, np.nan, x), y), r"x contains NaN"),
])
def test_error_rate_bad_inputs(make, match):
    x, y = data()
    with pytest.raises(ValueError, match=match):
        error_rate(model(), *make(x, y))


def test_error_rate_bad_batch_size_and_valid_list_labels():
    x, y = data()
    with pytest.raises(ValueError, match="batch_size=0"):
        error_rate(model(), x, y, batch_size=0)
    assert 0.0 <= error_rate(model(), x, y.tolist(), batch_size=np.int64(7)) <= 1.0
