"""Linear-Gaussian hidden units (``RBM(hidden_units="gaussian")``), tested like the
Bernoulli ones: against numerical integration over the continuous hidden states and
enumeration of the visible ones on tiny models.

Energy E(v, h) = -v.b - h.c - v W h + |h|^2 / 2, h in R^H, v in {0, 1}^D.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import integrate

from dbn.estimation.exact import exact_log_partition
from dbn.models.rbm import RBM
from dbn.training.configs import RBMTrainingConfig
from dbn.training.pretrain import build_rbm, rbm_spec

D, H = 5, 2


def all_binary(n):
    codes = np.arange(2**n)[:, None]
    return ((codes >> np.arange(n)) & 1).astype(np.float64)


def params(seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, scale, (D, H)).astype(np.float32), rng.normal(0, 0.5, D).astype(np.float32),
            rng.normal(0, 0.5, H).astype(np.float32))


def make_rbm(W, b, c, **kwargs):
    rbm = RBM(W.shape[1], hidden_units="gaussian", **kwargs)
    rbm.build((None, W.shape[0]))
    for var, value in zip((rbm.W, rbm.visible_bias, rbm.hidden_bias), (W, b, c)):
        var.assign(value)
    return rbm


def minus_energy(v, h, W, b, c):
    return v @ b + h @ c + v @ W @ h - 0.5 * h @ h


def integral_over_h(f, v, W, b, c):
    """Integral over h in R^2 of f(h) exp(-E(v, h)), by adaptive quadrature on a box of
    +-12 around the mode c + v W (the Gaussian's mass outside it is below 1e-30)."""
    m = c + v @ W
    g = lambda h1, h0: f(np.array([h0, h1])) * np.exp(minus_energy(v, np.array([h0, h1]), W, b, c))
    value, _ = integrate.dblquad(g, m[0] - 12, m[0] + 12, m[1] - 12, m[1] + 12,
                                 epsabs=0, epsrel=1e-10)
    return value


def model_distribution(W, b, c):
    """Exact p(v) over all 2**D visible states (float64), with the states."""
    V = all_binary(W.shape[0])
    W, b, c = (np.asarray(a, np.float64) for a in (W, b, c))
    logp = V @ b + 0.5 * np.square(V @ W + c).sum(1)
    p = np.exp(logp - logp.max())
    return p / p.sum(), V


# --------------------------------------------------------------------------- exact maths
def test_free_energy_and_log_z_match_numerical_integration():
    W, b, c = params(seed=1)
    W64, b64, c64 = (a.astype(np.float64) for a in (W, b, c))
    rbm = make_rbm(W, b, c)
    V = all_binary(D)
    integrals = np.array([integral_over_h(lambda h: 1.0, v, W64, b64, c64) for v in V])
    # float32 F(v): a few products and sums of magnitude < 10 -> rounding ~1e-6; the
    # quadrature is good to 1e-10 relative (1e-10 absolute in log space).
    np.testing.assert_allclose(rbm.free_energy(V.astype(np.float32)), -np.log(integrals),
                               atol=1e-5)
    # log Z: the sum over v of the same integrals (float64 on both sides).
    assert rbm.log_partition_exact() == pytest.approx(np.log(integrals.sum()), abs=1e-8)
    assert exact_log_partition(W, b, c, hidden_units="gaussian") == pytest.approx(
        np.log(integrals.sum()), abs=1e-8)


def test_conditionals_match_the_joint():
    """E[h | v] = c + v W and Var[h_j | v] = 1 from the joint by integration; p(v | h) is
    the sigmoid of the Bernoulli RBM."""
    W, b, c = params(seed=2)
    W64, b64, c64 = (a.astype(np.float64) for a in (W, b, c))
    rbm = make_rbm(W, b, c)
    for v in all_binary(D)[[0, 7, 19, 31]]:
        z = integral_over_h(lambda h: 1.0, v, W64, b64, c64)
        mean = [integral_over_h(lambda h, j=j: h[j], v, W64, b64, c64) / z for j in range(H)]
        var = [integral_over_h(lambda h, j=j: (h[j] - mean[j]) ** 2, v, W64, b64, c64) / z
               for j in range(H)]
        # float32 c + v W: D products of magnitude < 2, rounding < 1e-6.
        np.testing.assert_allclose(rbm.transform(v[None].astype(np.float32))[0], mean, atol=1e-5)
        np.testing.assert_allclose(var, 1.0, atol=1e-7)
    h = np.array([[0.3, -2.0], [4.0, 1.5]], np.float32)
    np.testing.assert_allclose(rbm.visible_given_hidden(h),
                               1 / (1 + np.exp(-(h.astype(np.float64) @ W64.T + b64))), rtol=1e-5)


def test_gibbs_chains_reach_the_exact_marginals_and_noise_has_unit_variance():
    """20,000 chains of 200 Gibbs steps: the visible marginals are those of exact p(v).
    A hidden noise of variance 0 (means as states) or 4 would move them (checked)."""
    W, b, c = params(seed=3, scale=0.5)
    p, V = model_distribution(W, b, c)
    v_model = p @ V
    rbm = make_rbm(W, b, c, seed=0)
    samples = rbm.sample(20000, steps=200)
    # Standard error of a mean of 20,000 probabilities in [0, 1]: <= 0.5 / sqrt(20000) =
    # 0.0035; 0.015 is four of them (and chains of 200 steps mix on 5 pixels).
    np.testing.assert_allclose(samples.mean(0), v_model, atol=0.015)
    # The checks are not vacuous: the means-as-states chain stays far from p(v).
    deterministic = make_rbm(W, b, c, seed=0)
    deterministic._sample_hidden = lambda mean: mean
    assert np.abs(deterministic.sample(20000, steps=200).mean(0) - v_model).max() > 0.05
    # Direct check of the hidden noise: mean 0, variance 1 over 200,000 draws.
    noise = (rbm._sample_hidden(tf.zeros((100000, H))).numpy()).ravel()
    assert abs(noise.mean()) < 5 / np.sqrt(noise.size)
    assert abs(noise.var() - 1.0) < 5 * np.sqrt(2.0 / noise.size)


def test_cd_k_with_large_k_gives_the_exact_likelihood_gradient():
    W, b, c = params(seed=4, scale=0.5)
    rng = np.random.default_rng(5)
    patterns = (rng.random((4, D)) < 0.5).astype(np.float32)
    v0 = np.repeat(patterns, 5000, axis=0)
    rbm = make_rbm(W, b, c, k=100, seed=0)
    grads, _ = rbm.contrastive_divergence(tf.constant(v0))
    p, V = model_distribution(W, b, c)
    W64, b64, c64 = (a.astype(np.float64) for a in (W, b, c))
    M, M0 = V @ W64 + c64, v0.astype(np.float64) @ W64 + c64
    exact = [V.T @ (p[:, None] * M) - v0.T @ M0 / len(v0), p @ V - v0.mean(0), p @ M - M0.mean(0)]
    # Monte-Carlo error of the negative phase: each entry is a mean over n = 20,000 chains
    # of v_i m_j(v) (or v_i, m_j); tolerance 5 of their exact standard errors under p(v).
    n = len(v0)
    stats = [V[:, :, None] * M[:, None, :], V, M]
    for name, g, e, s in zip(("W", "visible_bias", "hidden_bias"), grads, exact, stats):
        sd = np.sqrt(np.tensordot(p, np.square(s - np.tensordot(p, s, 1)), 1))
        np.testing.assert_array_less(np.abs(np.asarray(g, np.float64) - e), 5 * sd / np.sqrt(n) + 1e-4,
                                     err_msg=name)


def test_cd_1_uses_the_hidden_means_in_both_phases():
    """With W = 0, E[h | v] = c whatever v is: the hidden-bias gradient is exactly 0 and
    the weight gradient is outer(visible-bias gradient, c).  Sampled hidden states
    (c + noise) would add a Monte-Carlo error of about 1 / sqrt(n) = 0.007 per entry."""
    rng = np.random.default_rng(6)
    b, c = rng.normal(0, 1, D).astype(np.float32), rng.normal(0, 1, H).astype(np.float32)
    v0 = (rng.random((20000, D)) < 0.5).astype(np.float32)
    rbm = make_rbm(np.zeros((D, H), np.float32), b, c, k=1, seed=0)
    g_W, g_vb, g_hb = (np.asarray(g, np.float64) for g in rbm.contrastive_divergence(tf.constant(v0))[0])
    # float32: means over 20,000 rows of values of magnitude |c| < 3 -> random-walk
    # rounding 4 sqrt(2n) eps |c| ~ 2e-4 at most (conftest.float32_sum_tol).
    tol = 4 * np.sqrt(2 * len(v0)) * np.finfo(np.float32).eps * 3 + 1e-6
    np.testing.assert_allclose(g_hb, 0.0, atol=tol)
    np.testing.assert_allclose(g_W, np.outer(g_vb, c.astype(np.float64)), atol=tol)


def test_training_raises_the_exact_log_likelihood():
    rng = np.random.default_rng(7)
    first = rng.random(400) < 0.5
    x = np.zeros((400, D), np.float32)
    x[first, :2] = 1.0
    x[~first, 2:] = 1.0
    x = np.abs(x - (rng.random(x.shape) < 0.05)).astype(np.float32)
    keras.utils.set_random_seed(0)
    rbm = RBM(H, hidden_units="gaussian", seed=0)
    rbm.initialize_from_data(x)
    before = rbm.log_likelihood_exact(x)
    rbm.compile(optimizer=keras.optimizers.SGD(0.02, momentum=0.5))
    rbm.fit(x, epochs=20, batch_size=20, verbose=0)
    after = rbm.log_likelihood_exact(x)
    # Two anti-correlated blocks: the independent (base-rate) model misses the 1.6 nats
    # of their correlation; a Gaussian-hidden RBM (a mixture-like model) captures most.
    assert after > before + 1.0, (before, after)


# --------------------------------------------------------------------------- plumbing
def test_save_load_keeps_the_unit_type(tmp_path):
    W, b, c = params()
    rbm = make_rbm(W, b, c, seed=1)
    rbm.save(tmp_path / "g.keras")
    loaded = keras.models.load_model(tmp_path / "g.keras")
    assert loaded.hidden_units == "gaussian"
    x = all_binary(D).astype(np.float32)
    np.testing.assert_array_equal(loaded.transform(x), rbm.transform(x))
    assert np.any(loaded.transform(x) < 0)  # linear means, not probabilities


def test_cache_keys_of_bernoulli_runs_are_unchanged():
    """``hidden_units`` joined the config after layers were cached: at "bernoulli" it is
    left out of the keys, so those layers are still found; "gaussian" is in them."""
    assert "hidden_units" not in RBMTrainingConfig().to_dict()
    assert RBMTrainingConfig(hidden_units="gaussian").to_dict()["hidden_units"] == "gaussian"
    bern = build_rbm(RBMTrainingConfig(n_hidden=3))
    gauss = build_rbm(RBMTrainingConfig(n_hidden=3, hidden_units="gaussian"))
    assert "hidden_units" not in rbm_spec(bern) and rbm_spec(gauss)["hidden_units"] == "gaussian"


@pytest.mark.parametrize("kwargs, match", [
    ({"hidden_units": "linear"}, "hidden_units"),
    ({"hidden_units": True}, "hidden_units"),
    ({"hidden_units": "gaussian", "persistent": True, "n_temperatures": 3}, "n_temperatures"),
    ({"hidden_units": "gaussian", "n_labels": 2}, "n_labels"),
    ({"hidden_units": "gaussian", "sparsity_target": 0.1}, "sparsity_target"),
])
def test_bad_unit_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RBM(3, **kwargs)


def test_bad_config_unit_type():
    with pytest.raises(ValueError, match="hidden_units"):
        RBMTrainingConfig(hidden_units="relu")
    with pytest.raises(ValueError, match="n_labels"):
        exact_log_partition(np.zeros((3, 2)), np.zeros(3), np.zeros(2), n_labels=1,
                            hidden_units="gaussian")
