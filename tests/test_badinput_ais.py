"""Bad inputs to dbn.ais: mismatched shapes, non-finite parameters, data outside [0, 1]
or not binary, empty data, bad betas / runs / seeds.  ValueErrors naming the argument,
before any annealing."""

import numpy as np
import pytest

from dbn.estimation import ais

BETAS = ais.make_betas([(1.0, 0.1)])


def rbm(D=6, H=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 0.1, (D, H)), rng.normal(0, 0.1, D), rng.normal(0, 0.1, H)


def binary(n=20, D=6):
    return (np.random.default_rng(1).random((n, D)) < 0.5).astype(np.float32)


@pytest.mark.parametrize("change, match", [
    (lambda W, b, c: (W.T, b, c), r"visible_bias has shape \(6,\); allowed: \(4,\)"),
    (lambda W, b, c: (W, b[:5], c), r"visible_bias has shape \(5,\); allowed: \(6,\)"),
    (lambda W, b, c: (W, b, c[:3]), r"hidden_bias has shape \(3,\); allowed: \(4,\)"),
    (lambda W, b, c: (W[0], b, c), r"W has shape \(4,\)"),
    (lambda W, b, c: (W * np.nan, b, c), r"W contains NaN or inf"),
    (lambda W, b, c: (W, b + np.inf, c), r"visible_bias contains NaN or inf"),
    (lambda W, b, c: (W, b, c.reshape(2, 2)), r"hidden_bias has shape \(2, 2\)"),
], ids=["transposed", "visible-length", "hidden-length", "1-D-W", "nan-W", "inf-bias", "2-D-bias"])
def test_parameters(change, match):
    with pytest.raises(ValueError, match=match):
        ais.ais_log_partition(*change(*rbm()), betas=BETAS, n_runs=4)


@pytest.mark.parametrize("kwargs, match", [
    (dict(base_data=binary(D=5)), r"base_data has 5 features; W has D = 6"),
    (dict(base_data=binary() * 2), r"base_data has values in \[0, 2\]"),
    (dict(base_data=binary() - 1), r"base_data has values in \[-1, 0\]"),
    (dict(base_data=binary()[:0]), r"base_data is empty"),
    (dict(base_data=np.full((3, 6), np.nan)), r"base_data contains NaN"),
    (dict(base_visible_bias=np.zeros(5)), r"base_visible_bias has shape \(5,\); allowed: \(6,\)"),
    (dict(base_visible_bias=np.full(6, np.nan)), r"base_visible_bias contains NaN"),
    (dict(base_data=binary(), base_visible_bias=np.zeros(6)), r"base_data or base_visible_bias, not both"),
    (dict(n_runs=4.0), r"n_runs=4.0 must be >= 2"),
    (dict(n_runs=True), r"n_runs=True must be >= 2"),
    (dict(n_runs="10"), r"n_runs='10' must be >= 2"),
    (dict(seed=-1), r"seed=-1"),
    (dict(seed=0.5), r"seed=0.5"),
    (dict(betas=[0.0, np.nan, 1.0]), r"betas must increase strictly from 0 to 1"),
    (dict(betas=["0", "1"]), r"betas must increase strictly from 0 to 1"),
])
def test_ais_arguments(kwargs, match):
    kwargs = {"betas": BETAS, "n_runs": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        ais.ais_log_partition(*rbm(), **kwargs)


def test_numpy_scalars_are_valid():
    a = ais.ais_log_partition(*rbm(), betas=BETAS, n_runs=np.int64(4), seed=np.int64(3))
    b = ais.ais_log_partition(*rbm(), betas=BETAS, n_runs=4, seed=3)
    assert a.log_z == b.log_z


@pytest.mark.parametrize("segments, match", [
    ([(1.0, "0.1")], r"segments\[0\] step='0.1'"),
    ([(1.0,)], r"segments\[0\]=\(1.0,\) must be a pair"),
    ([(np.nan, 0.1)], r"segments\[0\] end=nan"),
    (0.1, r"segments=0.1 must be a list"),
])
def test_make_betas_arguments(segments, match):
    with pytest.raises(ValueError, match=match):
        ais.make_betas(segments)


@pytest.mark.parametrize("v, kwargs, match", [
    (binary()[:0], {}, r"v is empty"),
    (binary() * 0.5, {}, r"v is not binary"),
    (binary() * 255, {}, r"v has values in \[0, 255\]"),
    (binary()[:, :5], {}, r"v has 5 features; W has D = 6"),
    (binary(), dict(log_z=np.nan), r"log_z=nan"),
    (binary(), dict(batch_size=0), r"batch_size=0"),
])
def test_mean_log_probability_arguments(v, kwargs, match):
    kwargs = {"log_z": 1.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        ais.mean_log_probability(v, *rbm(), **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    (dict(test_data=binary()[:0]), r"test_data is empty"),
    (dict(test_data=binary() * 0.5), r"test_data is not binary"),
    (dict(test_data=binary() + 1), r"test_data has values in \[1, 2\]"),
    (dict(train_data=binary() * 0.3), r"train_data is not binary"),
    (dict(base_data=binary() * 3), r"base_data has values in \[0, 3\]"),
    (dict(base_data=None), r"base_data=None"),
])
def test_evaluate_log_likelihood_checks_data_before_annealing(monkeypatch, kwargs, match):
    monkeypatch.setattr(ais, "_anneal", lambda *a: pytest.fail("annealed before checking the data"))
    kwargs = {"base_data": binary(), "test_data": binary(), "betas": BETAS, "n_runs": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        ais.evaluate_log_likelihood(*rbm(), **kwargs)


@pytest.mark.parametrize("args, match", [
    ((np.zeros(1), 0.0, 3), r"log_w has shape \(1,\); allowed: \(M,\) with M >= 2"),
    ((np.zeros((2, 2)), 0.0, 3), r"log_w has shape \(2, 2\)"),
    ((np.zeros(3), np.nan, 3), r"log_z_base=nan"),
    ((np.zeros(3), 0.0, 1), r"n_betas=1"),
])
def test_summarize_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        ais.summarize_log_weights(*args)
