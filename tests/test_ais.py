"""Tests of dbn.ais: the annealing schedule, AIS estimates of log Z against exact
enumeration (tiny random RBMs and RBMs trained on MNIST), reproducibility, and the
bookkeeping of ``summarize_log_weights`` and ``mean_log_probability``."""

import math
import time

import numpy as np
import pytest
from conftest import float32_free_energy_tol

from dbn.estimation import ais
from dbn.models.rbm import RBM
from dbn.estimation.exact import exact_log_partition
from dbn.ops import free_energy, logit_base_rate

FAST_BETAS = ais.make_betas([(1.0, 1e-3)])  # 1001 temperatures, for tiny RBMs


def random_rbm(D=20, H=5, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(0.0, scale, (D, H)).astype(np.float32),
        rng.normal(0.0, 0.5, D).astype(np.float32),
        rng.normal(0.0, 0.5, H).astype(np.float32),
    )


# --------------------------------------------------------------------------- 1. schedule
def test_default_betas():
    betas = ais.default_betas()
    assert betas.shape == (14_501,) and betas.dtype == np.float64
    assert betas[0] == 0.0 and betas[-1] == 1.0
    steps = np.diff(betas)
    assert np.all(steps > 0)
    assert betas[500] == pytest.approx(0.5, abs=1e-12)
    assert betas[4500] == pytest.approx(0.9, abs=1e-12)
    np.testing.assert_allclose(steps[:500], 1e-3, rtol=1e-6)  # [0, 0.5]: 500 steps
    np.testing.assert_allclose(steps[500:4500], 1e-4, rtol=1e-6)  # [0.5, 0.9]: 4000 steps
    np.testing.assert_allclose(steps[4500:], 1e-5, rtol=1e-5)  # [0.9, 1]: 10000 steps


def test_make_betas():
    np.testing.assert_allclose(ais.make_betas([(0.5, 0.25), (1.0, 0.1)]), [0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert ais.make_betas([(1.0, 1.0)]).tolist() == [0.0, 1.0]


@pytest.mark.parametrize(
    "segments, match",
    [
        ([(0.5, 1e-3), (0.4, 1e-3), (1.0, 1e-3)], r"bad segment \(0.4, 0.001\) after 0.5"),
        ([(0.5, 1e-3), (0.5, 1e-3), (1.0, 1e-3)], r"bad segment \(0.5, 0.001\) after 0.5"),
        ([(1.5, 1e-3)], r"bad segment \(1.5"),
        ([(1.0, 0.0)], r"bad segment \(1.0, 0.0\)"),
        ([(1.0, -0.1)], r"bad segment \(1.0, -0.1\)"),
        ([(0.5, 1e-3), (0.9, 1e-4)], r"must end at beta=1, ends at 0.9"),
        ([], r"must end at beta=1, ends at 0.0"),
    ],
)
def test_make_betas_rejects_bad_segments(segments, match):
    with pytest.raises(ValueError, match=match):
        ais.make_betas(segments)


# --------------------------------------------------------------------------- 2. accuracy
def test_ais_is_exact_when_target_is_base_model():
    """If the RBM is the base-rate model itself (W = 0, c = 0, b = b_A), every
    increment of every run is zero: log Z = log Z_A with no spread, and log Z_A is
    the exact partition function."""
    rng = np.random.default_rng(1)
    b_base = rng.normal(0, 1, 30).astype(np.float32)
    W, c = np.zeros((30, 7), np.float32), np.zeros(7, np.float32)
    result = ais.ais_log_partition(W, b_base, c, base_visible_bias=b_base, betas=FAST_BETAS, n_runs=10)
    exact = exact_log_partition(W, b_base, c)
    assert result.log_z_base == pytest.approx(exact, abs=1e-9)
    np.testing.assert_allclose(result.log_weights, 0.0, atol=1e-9)
    assert result.log_z == pytest.approx(exact, abs=1e-9)
    assert result.log_z_std == pytest.approx(0.0, abs=1e-9)


def test_base_model_from_data_or_biases():
    W, b, c = random_rbm()
    rng = np.random.default_rng(2)
    data = (rng.random((300, 20)) < np.linspace(0.1, 0.9, 20)).astype(np.float32)
    b_a = logit_base_rate(data)
    from_data = ais.ais_log_partition(W, b, c, base_data=data, betas=FAST_BETAS, n_runs=20)
    from_bias = ais.ais_log_partition(W, b, c, base_visible_bias=b_a, betas=FAST_BETAS, n_runs=20)
    np.testing.assert_array_equal(from_data.log_weights, from_bias.log_weights)
    # log Z_A = sum_i log(1 + exp(b_A,i)) + H log 2.
    expected_base = np.log1p(np.exp(b_a.astype(np.float64))).sum() + 5 * math.log(2.0)
    assert from_data.log_z_base == pytest.approx(expected_base, abs=1e-9)
    zero = ais.ais_log_partition(W, b, c, betas=FAST_BETAS, n_runs=20)
    assert zero.log_z_base == pytest.approx(25 * math.log(2.0), abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_ais_matches_exact_on_tiny_random_rbm(seed):
    W, b, c = random_rbm(seed=seed)
    exact = exact_log_partition(W, b, c)
    result = ais.ais_log_partition(W, b, c, betas=FAST_BETAS, n_runs=200, seed=seed)
    assert abs(result.log_z - exact) < 0.05
    assert result.log_z_lower <= exact <= result.log_z_upper
    assert result.n_betas == 1001 and result.log_weights.shape == (200,)


def _check_mnist_ais(rbm, x_train, betas, label):
    W, b, c = rbm.W.numpy(), rbm.visible_bias.numpy(), rbm.hidden_bias.numpy()
    exact = exact_log_partition(W, b, c)
    start = time.perf_counter()
    result = ais.ais_log_partition(W, b, c, base_data=x_train, betas=betas, n_runs=100)
    seconds = time.perf_counter() - start
    print(f"{label}: exact log Z {exact:.4f}, AIS {result.log_z:.4f} (diff {result.log_z - exact:+.4f}, "
          f"std {result.log_z_std:.4f}, [{result.log_z_lower:.4f}, {result.log_z_upper:.4f}]) in {seconds:.1f} s")
    assert abs(result.log_z - exact) < 0.1
    assert result.log_z_lower is not None and result.log_z_lower <= exact <= result.log_z_upper
    assert result.log_z_std < 0.05
    # The base-rate model is far from the trained RBM: AIS did real work.
    assert exact - result.log_z_base > 5.0
    return result, exact


def test_ais_matches_exact_on_mnist_rbm_15_hidden(mnist_rbm15, mnist_small):
    """784x15 RBM trained by CD-1 (5 epochs, 3000 thresholded MNIST digits), the
    default 14,501 temperatures and 100 runs. Measured: exact 159.484, AIS 159.503."""
    result, exact = _check_mnist_ais(mnist_rbm15, mnist_small.x_train, None, "784x15")
    assert result.n_betas == 14_501
    # The model is a real MNIST model: its test log-probability is far above the
    # base-rate model's (-208 nats) and near what 15 hidden units give (~ -180).
    ll = ais.mean_log_probability(mnist_small.x_val[:2000], mnist_rbm15.W, mnist_rbm15.visible_bias,
                                  mnist_rbm15.hidden_bias, exact)
    assert -190 < ll < -170


def test_ais_matches_exact_on_mnist_rbm_10_hidden(mnist_small):
    """784x10 RBM, 3 epochs of CD-1; a shorter schedule (5,501 temperatures: steps of
    1e-3 to 0.5, then 1e-4) to keep the test fast."""
    import keras

    keras.utils.set_random_seed(1)
    rbm = RBM(10, k=1, seed=1)
    rbm.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.5))
    rbm.fit(mnist_small.x_train, epochs=3, batch_size=100, shuffle=False, verbose=0)
    betas = ais.make_betas([(0.5, 1e-3), (1.0, 1e-4)])
    assert len(betas) == 5501
    _check_mnist_ais(rbm, mnist_small.x_train, betas, "784x10")


# --------------------------------------------------------------------------- 3. seeds
def test_same_seed_same_estimate_different_seed_different_weights():
    W, b, c = random_rbm(seed=3)
    kwargs = dict(betas=FAST_BETAS, n_runs=50)
    a = ais.ais_log_partition(W, b, c, seed=7, **kwargs)
    again = ais.ais_log_partition(W, b, c, seed=7, **kwargs)
    other = ais.ais_log_partition(W, b, c, seed=8, **kwargs)
    np.testing.assert_array_equal(a.log_weights, again.log_weights)
    assert a.as_dict() == again.as_dict()
    assert not np.allclose(a.log_weights, other.log_weights)


@pytest.mark.parametrize("other_seed", [1, 2, 1000])
def test_different_seeds_give_independent_runs(other_seed):
    """Estimates with different seeds must be independent replicates (that is how the
    spread of AIS is checked): run j of seed 0 and run j of another seed must not be
    correlated. With 200 runs the sample correlation of independent runs is about
    N(0, 0.07); 0.3 is more than four standard deviations."""
    W, b, c = random_rbm(seed=4)
    kwargs = dict(betas=FAST_BETAS, n_runs=200)
    a = ais.ais_log_partition(W, b, c, seed=0, **kwargs).log_weights
    b_ = ais.ais_log_partition(W, b, c, seed=other_seed, **kwargs).log_weights
    assert np.std(a) > 0.05  # the runs do vary
    correlation = np.corrcoef(a, b_)[0, 1]
    assert abs(correlation) < 0.3, f"seeds 0 and {other_seed}: run-by-run correlation {correlation:.4f}"


# --------------------------------------------------------------------------- 4. log-probability
def test_mean_log_probability_equals_exact_log_likelihood():
    W, b, c = random_rbm(D=12, H=6, seed=5)
    rbm = RBM(6, seed=0)
    rbm.build((None, 12))
    rbm.W.assign(W)
    rbm.visible_bias.assign(b)
    rbm.hidden_bias.assign(c)
    rng = np.random.default_rng(5)
    v = (rng.random((53, 12)) < 0.4).astype(np.float32)
    log_z = exact_log_partition(W, b, c)
    expected = rbm.log_likelihood_exact(v)
    assert rbm.log_likelihood_exact(v, log_z) == expected
    # Both are means (added in float64) of float32 free energies, computed in other
    # batches: each row within its worst-case rounding bound of the exact F.
    tol = 2 * float32_free_energy_tol(v, W, b, c).max()
    for batch_size in [10_000, 7, 1]:  # one batch, batches with a short last one, rows
        got = ais.mean_log_probability(v, W, b, c, log_z, batch_size=batch_size)
        assert got == pytest.approx(expected, abs=tol), batch_size
    # Model variables work as parameters as well as arrays.
    assert ais.mean_log_probability(v, rbm.W, rbm.visible_bias, rbm.hidden_bias, log_z) == pytest.approx(expected, abs=tol)
    # And it is log p(v) = -F(v) - log Z: exp of it summed over all 2**12 states is 1
    # (sum_v p(v) (1 + O(err_v)): off by at most the largest row error of float32 F).
    states = ((np.arange(4096)[:, None] >> np.arange(12)) & 1).astype(np.float32)
    log_p = -np.asarray(free_energy(states, W, b, c), np.float64) - log_z
    assert np.exp(log_p).sum() == pytest.approx(1.0, abs=1.01 * float32_free_energy_tol(states, W, b, c).max())
    assert np.mean(log_p[(v * 2 ** np.arange(12)).sum(1).astype(int)]) == pytest.approx(expected, abs=tol)


# --------------------------------------------------------------------------- 5. bad inputs
@pytest.mark.parametrize(
    "betas",
    [
        [0.1, 0.5, 1.0],
        [0.0, 0.5, 0.9],
        [0.0, 0.6, 0.5, 1.0],
        [0.0, 0.5, 0.5, 1.0],
        [1.0],
        [[0.0, 1.0]],
    ],
    ids=["not-from-0", "not-to-1", "decreasing", "repeated", "single", "2-D"],
)
def test_ais_rejects_bad_betas(betas):
    W, b, c = random_rbm()
    with pytest.raises(ValueError, match="betas must increase strictly from 0 to 1"):
        ais.ais_log_partition(W, b, c, betas=betas, n_runs=10)


@pytest.mark.parametrize("n_runs", [1, 0, -5])
def test_ais_rejects_too_few_runs(n_runs):
    W, b, c = random_rbm()
    with pytest.raises(ValueError, match=f"n_runs={n_runs} must be >= 2"):
        ais.ais_log_partition(W, b, c, betas=FAST_BETAS, n_runs=n_runs)


# --------------------------------------------------------------------------- 6. summarize_log_weights
def test_summarize_equal_weights():
    result = ais.summarize_log_weights(np.full(10, 3.5), 100.0, 42)
    assert result.log_z == pytest.approx(103.5, abs=1e-12)
    assert result.log_z_std == 0.0
    assert result.log_z_lower == pytest.approx(103.5, abs=1e-12)
    assert result.log_z_upper == pytest.approx(103.5, abs=1e-12)
    assert result.as_dict() == {
        "log_z": result.log_z, "log_z_std": 0.0, "log_z_lower": result.log_z_lower,
        "log_z_upper": result.log_z_upper, "log_z_base": 100.0, "runs": 10, "betas": 42,
    }


def test_summarize_known_weights():
    # w = (1, 3): mean 2, std(ddof=1) sqrt(2), standard error 1, relative error 1/2.
    result = ais.summarize_log_weights(np.log([1.0, 3.0]), 10.0, 5)
    assert result.log_z == pytest.approx(10.0 + math.log(2.0), abs=1e-12)
    assert result.log_z_std == pytest.approx(0.5, abs=1e-12)
    assert result.log_z_lower is None  # mean - 3 sem = -1 < 0
    assert result.log_z_upper == pytest.approx(10.0 + math.log(5.0), abs=1e-12)
    # Many equal-ish weights: a defined lower bound, log(mean -/+ 3 sem).
    w = np.array([1.0, 1.2, 0.8, 1.1, 0.9] * 4)
    result = ais.summarize_log_weights(np.log(w) + 700.0, -5.0, 5)  # large log-weights must not overflow
    sem = w.std(ddof=1) / math.sqrt(len(w))
    assert result.log_z == pytest.approx(695.0 + math.log(w.mean()), abs=1e-9)
    assert result.log_z_std == pytest.approx(sem / w.mean(), rel=1e-9)
    assert result.log_z_lower == pytest.approx(695.0 + math.log(w.mean() - 3 * sem), abs=1e-9)
    assert result.log_z_upper == pytest.approx(695.0 + math.log(w.mean() + 3 * sem), abs=1e-9)


def test_summarize_rejects_non_finite_weights():
    with pytest.raises(FloatingPointError, match="non-finite importance weights"):
        ais.summarize_log_weights(np.array([0.0, np.nan, 1.0]), 0.0, 3)
    with pytest.raises(FloatingPointError, match="non-finite importance weights"):
        ais.summarize_log_weights(np.array([0.0, np.inf]), 0.0, 3)


# --------------------------------------------------------------------------- 7. evaluate_log_likelihood
def test_evaluate_log_likelihood_against_exact_log_z():
    """The log-probabilities ``evaluate_log_likelihood`` reports, on an RBM small enough
    for the exact log Z: test and train estimates within the AIS error of the truth, and
    the conservative figure taken from the *upper* end of the log Z interval (a larger
    log Z means a smaller probability), so lower <= estimate <= upper and the exact
    value lies inside."""
    W, b, c = random_rbm(D=20, H=5, scale=1.0, seed=6)
    rng = np.random.default_rng(6)
    train = (rng.random((300, 20)) < np.linspace(0.1, 0.9, 20)).astype(np.float32)
    test = (rng.random((200, 20)) < np.linspace(0.9, 0.1, 20)).astype(np.float32)
    out = ais.evaluate_log_likelihood(W, b, c, base_data=train, test_data=test, train_data=train,
                                      n_runs=50, betas=FAST_BETAS, seed=0)
    exact_log_z = exact_log_partition(W, b, c)
    F = lambda v: np.asarray(free_energy(v, W, b, c), np.float64)  # noqa: E731
    exact_test = -F(test).mean() - exact_log_z
    exact_train = -F(train).mean() - exact_log_z
    assert abs(exact_test - exact_train) > 1.0  # the two data sets are told apart
    # float32 free energies: worst-case rounding (conftest) on top of the AIS error.
    f32 = max(float32_free_energy_tol(v, W, b, c).max() for v in (train, test))
    assert out["log_z_lower"] <= exact_log_z <= out["log_z_upper"]
    assert abs(out["log_z"] - exact_log_z) < 0.05
    assert out["test_log_prob"] == pytest.approx(exact_test + exact_log_z - out["log_z"], abs=f32)
    assert abs(out["test_log_prob"] - exact_test) < 0.05 + f32
    assert abs(out["train_log_prob"] - exact_train) < 0.05 + f32
    # The interval: log p = -F - log Z, so the conservative (lower) figure uses log_z_upper.
    neg_f = ais.mean_log_probability(test, W, b, c, 0.0)
    assert out["test_log_prob_lower"] == pytest.approx(neg_f - out["log_z_upper"], abs=1e-9)
    assert out["test_log_prob_upper"] == pytest.approx(neg_f - out["log_z_lower"], abs=1e-9)
    assert out["test_log_prob_lower"] < out["test_log_prob"] < out["test_log_prob_upper"]
    assert out["test_log_prob_lower"] - f32 <= exact_test <= out["test_log_prob_upper"] + f32
    assert out["log_z_upper"] - out["log_z_lower"] > 1e-3  # a real interval, not a point


def test_evaluate_log_likelihood_without_lower_log_z():
    """When the weights are too spread for log(Z - 3 std), the optimistic figure is None
    and the conservative one is still defined (from log_z_upper)."""
    W, b, c = random_rbm(D=20, H=5, scale=3.0, seed=7)
    test = np.eye(20, dtype=np.float32)
    out = ais.evaluate_log_likelihood(W, b, c, base_data=test, test_data=test, n_runs=2,
                                      betas=ais.make_betas([(1.0, 0.5)]), seed=0)
    assert out["log_z_lower"] is None and out["test_log_prob_upper"] is None
    assert out["test_log_prob_lower"] < out["test_log_prob"]
    assert "train_log_prob" not in out
