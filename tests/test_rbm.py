"""Behavioural and numerical tests of dbn.models.rbm (and the maths in dbn.ops).

Tiny RBMs (6 visible x 4 hidden units and the like) are checked against brute-force
enumeration of all joint states (v, h); stochastic quantities use fixed seeds and
tolerances of a few Monte-Carlo standard errors.
"""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import EPS32, float32_free_energy_tol, float32_sum_tol

from dbn import data as datasets
from dbn.models.rbm import RBM, DivergenceError
from dbn.training.callbacks import MomentumSchedule
from dbn.estimation.exact import exact_log_partition
from dbn.ops import free_energy, logit_base_rate

D, H = 6, 4


# --------------------------------------------------------------------------- helpers
def all_binary(n):
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def random_params(D=D, H=H, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.normal(0.0, scale, (D, H)).astype(np.float32)
    b = rng.normal(0.0, 0.5, D).astype(np.float32)
    c = rng.normal(0.0, 0.5, H).astype(np.float32)
    return W, b, c


def joint_log_unnormalised(W, b, c):
    """-E(v, h) for all v (rows) and all h (columns), float64, with the state lists."""
    W, b, c = (np.asarray(a, np.float64) for a in (W, b, c))
    V, Hs = all_binary(W.shape[0]), all_binary(W.shape[1])
    return V @ b[:, None] + (Hs @ c)[None, :] + V @ W @ Hs.T, V, Hs


def logsumexp(a, axis=None):
    top = np.max(a, axis=axis, keepdims=True)
    out = top + np.log(np.sum(np.exp(a - top), axis=axis, keepdims=True))
    return out.squeeze() if axis is None else np.squeeze(out, axis=axis)


def brute_free_energy(W, b, c):
    """F(v) = -log sum_h exp(-E(v, h)) for every v, by summing over all hidden states."""
    logp, V, _ = joint_log_unnormalised(W, b, c)
    return -logsumexp(logp, axis=1), V


def brute_model_statistics(W, b, c):
    """Exact <v h^T>, <v>, <h> under the model p(v, h), by enumeration."""
    logp, V, Hs = joint_log_unnormalised(W, b, c)
    p = np.exp(logp - logsumexp(logp))
    return V.T @ p @ Hs, p.sum(1) @ V, p.sum(0) @ Hs


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def make_rbm(W, b, c, **kwargs):
    """An RBM built for W.shape[0] visible units with the given parameters."""
    rbm = RBM(W.shape[1], **kwargs)
    rbm.build((None, W.shape[0]))
    rbm.W.assign(W)
    rbm.visible_bias.assign(b)
    rbm.hidden_bias.assign(c)
    return rbm


def toy_data(n=400, seed=0):
    """Two noisy 'bars' on 10 pixels: pixels 0-4 on or pixels 5-9 on, 5% flips.

    Strong pairwise structure that the independent (base-rate) model cannot capture.
    """
    rng = np.random.default_rng(seed)
    first = rng.random(n) < 0.5
    x = np.zeros((n, 10), np.float32)
    x[first, :5] = 1.0
    x[~first, 5:] = 1.0
    flips = rng.random(x.shape) < 0.05
    return np.abs(x - flips).astype(np.float32)


def grads_numpy(grads):
    return [np.asarray(g, np.float64) for g in grads]


# --------------------------------------------------------------------------- 1. free energy
def test_free_energy_matches_sum_over_hidden_states():
    W, b, c = random_params(scale=1.5)
    expected, V = brute_free_energy(W, b, c)
    got = np.asarray(free_energy(tf.constant(V, tf.float32), W, b, c), np.float64)
    # float32 against float64: the worst-case rounding of each row's sums (conftest).
    tol = float32_free_energy_tol(V, W, b, c)
    assert np.all(np.abs(got - expected) <= tol), np.abs(got - expected).max()
    rbm = make_rbm(W, b, c, seed=0)
    assert np.all(np.abs(rbm.free_energy(V) - expected) <= tol)
    # p(v) = exp(-F(v)) / Z with the exact log Z sums to one.
    log_z = exact_log_partition(W, b, c)
    assert np.exp(-expected - log_z).sum() == pytest.approx(1.0, abs=1e-12)  # all float64
    # sum_v p(v) (1 + O(err_v)): off by at most the largest row error (float32 F).
    assert np.exp(-rbm.free_energy(V).astype(np.float64) - rbm.log_partition_exact()).sum() == (
        pytest.approx(1.0, abs=1.01 * tol.max())
    )


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_free_energy_huge_weights_do_not_overflow(sign):
    W = np.full((D, H), sign * 1e4, np.float32)
    b = np.zeros(D, np.float32)
    c = np.zeros(H, np.float32)
    V = all_binary(D).astype(np.float32)
    n_on = V.sum(1)
    # softplus(x) -> x for x >> 0 and -> 0 for x << 0: the analytic limits.
    if sign > 0:
        expected = np.where(n_on > 0, -H * 1e4 * n_on, -H * np.log(2.0))
    else:
        expected = np.where(n_on > 0, 0.0, -H * np.log(2.0))
    got = np.asarray(free_energy(tf.constant(V), W, b, c))
    assert np.all(np.isfinite(got))
    # Pre-activations n_on * 1e4 and their sums are integers below 2**24 (exact in
    # float32, softplus(x) = x there); only v = 0 rounds: H terms softplus(0) = log 2.
    atol = float32_sum_tol(H, H * np.log(2.0), worst_case=True)
    np.testing.assert_allclose(got, expected, rtol=EPS32, atol=atol)
    rbm = make_rbm(W, b, c, seed=0)
    np.testing.assert_allclose(rbm.free_energy(V), expected, rtol=EPS32, atol=atol)
    # log Z is dominated by the single state v = 1, h = 1 (energy -1e4 * D * H) for
    # positive weights, and is finite either way.
    log_z = exact_log_partition(W, b, c)
    if sign > 0:
        assert log_z == pytest.approx(1e4 * D * H, rel=1e-12)
    else:
        assert np.isfinite(log_z) and log_z < (D + H) * np.log(2.0)


# --------------------------------------------------------------------------- 2. exact log Z
@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 5)], ids=["H<D", "D<H", "D=H"])
@pytest.mark.parametrize("chunk", [1 << 14, 3])
def test_exact_log_partition_matches_sum_over_all_pairs(shape, chunk):
    W, b, c = random_params(*shape, scale=1.5, seed=1)
    logp, _, _ = joint_log_unnormalised(W, b, c)
    assert exact_log_partition(W, b, c, chunk=chunk) == pytest.approx(logsumexp(logp), abs=1e-9)


def test_exact_log_partition_limit():
    # min(D, H) = 20 is still allowed: W = 0 gives Z = 2**(D + H).
    assert exact_log_partition(np.zeros((25, 20)), np.zeros(25), np.zeros(20)) == pytest.approx(
        45 * np.log(2.0), rel=1e-12
    )
    for shape in [(21, 22), (30, 21)]:
        with pytest.raises(ValueError, match=r"allowed <= 2\*\*20.*dbn.estimation.ais"):
            exact_log_partition(np.zeros(shape), np.zeros(shape[0]), np.zeros(shape[1]))


# --------------------------------------------------------------------------- 3. CD statistics
def dataset_20000():
    """Five distinct 6-pixel patterns, each repeated 4000 times (20000 rows)."""
    rng = np.random.default_rng(3)
    patterns = (rng.random((5, D)) < 0.5).astype(np.float32)
    return np.repeat(patterns, 4000, axis=0)


def exact_nll_gradient(W, b, c, v0):
    """Exact gradient of the mean negative log-likelihood: <.>_model - <.>_data."""
    vh_model, v_model, h_model = brute_model_statistics(W, b, c)
    v0 = v0.astype(np.float64)
    ph0 = sigmoid(v0 @ W.astype(np.float64) + c)
    return (
        vh_model - v0.T @ ph0 / len(v0),
        v_model - v0.mean(0),
        h_model - ph0.mean(0),
    )


def test_cd_k_with_large_k_gives_exact_likelihood_gradient():
    W, b, c = random_params(scale=1.0, seed=2)
    v0 = dataset_20000()
    rbm = make_rbm(W, b, c, k=150, seed=0)
    grads, error = rbm.contrastive_divergence(tf.constant(v0))
    exact = exact_nll_gradient(W, b, c, v0)
    # Monte-Carlo standard error of a mean over 20000 chains is <= 0.5 / sqrt(20000)
    # = 0.0035; 0.015 is about four of them.
    for name, g, e in zip(["W", "visible_bias", "hidden_bias"], grads_numpy(grads), exact):
        assert g.shape == e.shape, name
        np.testing.assert_allclose(g, e, atol=0.015, err_msg=name)
    assert 0.0 < float(error) < 1.0
    # The sampler advanced by two Bernoulli draws (h, then v) per Gibbs step.
    assert int(rbm.sampler_state.numpy()[1]) == 2 * 150


def test_cd_1_uses_probabilities_in_both_phases():
    """With W = 0 the hidden probabilities are sigmoid(c) whatever v is, so the
    hidden-bias gradient is exactly zero and the weight gradient is the outer
    product of the visible-bias gradient with sigmoid(c), sample by sample; sampled
    hidden states would add noise to both."""
    rng = np.random.default_rng(4)
    b = rng.normal(0, 1, D).astype(np.float32)
    c = rng.normal(0, 1, H).astype(np.float32)
    v0 = dataset_20000()
    rbm = make_rbm(np.zeros((D, H), np.float32), b, c, k=1, seed=0)
    g_W, g_vb, g_hb = grads_numpy(rbm.contrastive_divergence(tf.constant(v0))[0])
    n = len(v0)
    # float32 rounding: g_hb is a difference of two means over n rows of values in
    # [0, 1]; g_W one matmul over the 2n stacked rows of both phases (terms v p / n, so
    # partial sums within [-1, 1] per phase: magnitude 2), compared with g_vb (two means
    # over n rows) times sigmoid(c).  Random-walk bound (conftest.float32_sum_tol):
    # 1.4e-4 and 3.3e-4, against a Monte-Carlo error of 0.5 / sqrt(n) = 3.5e-3 per
    # entry if hidden states were sampled (measured rounding: 0 and 2.5e-6).
    hb_tol = 2 * float32_sum_tol(n, 1.0)
    W_tol = float32_sum_tol(2 * n, 2.0) + 2 * float32_sum_tol(n, 1.0)
    np.testing.assert_allclose(g_hb, 0.0, atol=hb_tol)
    np.testing.assert_allclose(g_W, np.outer(g_vb, sigmoid(c.astype(np.float64))), atol=W_tol)
    # In expectation the negative visible statistics are those of the model,
    # sigmoid(b) (the visible units are independent of h when W = 0).
    np.testing.assert_allclose(g_vb, sigmoid(b.astype(np.float64)) - v0.mean(0), atol=0.015)


def test_pcd_gradient_is_per_example_average():
    """PCD's negative phase depends only on the chains and the sampler state, so the
    gradient can be checked exactly, and a batch duplicated twice must give the same
    gradient as the batch itself (statistics are batch means, not sums)."""
    W, b, c = random_params(scale=1.0, seed=5)
    rng = np.random.default_rng(5)
    v0 = (rng.random((30, D)) < 0.5).astype(np.float32)
    rbm = make_rbm(W, b, c, persistent=True, n_chains=17, seed=0)
    rbm.persistent_chains.assign((rng.random((17, D)) < 0.5).astype(np.float32))
    state = rbm.sampler_state.numpy(), rbm.persistent_chains.numpy()

    grads_single = grads_numpy(rbm.contrastive_divergence(tf.constant(v0))[0])
    chains_after = rbm.persistent_chains.numpy().astype(np.float64)
    assert not np.array_equal(chains_after, state[1])  # the chains moved

    rbm.sampler_state.assign(state[0])
    rbm.persistent_chains.assign(state[1])
    grads_double = grads_numpy(rbm.contrastive_divergence(tf.constant(np.concatenate([v0, v0])))[0])
    np.testing.assert_array_equal(rbm.persistent_chains.numpy(), chains_after)
    # Means over 17 chains and 30 or 60 rows (terms of size <= 1 / rows, partial sums
    # within [-1, 1] per phase: magnitude 2), worst case of the longer sum, plus the
    # hidden probabilities' rounding (pre-activations of D terms, sigmoid slope <= 1/4).
    pre = np.abs(W).sum(0).max() + np.abs(c).max()
    tol = (float32_sum_tol(17 + 60, 2.0, worst_case=True)
           + 0.25 * float32_sum_tol(D, pre, worst_case=True))
    for g1, g2 in zip(grads_single, grads_double):
        np.testing.assert_allclose(g1, g2, atol=tol)

    # Exact formula: <v p(h|v)>_chains - <v p(h|v)>_batch, means over rows.
    W64, c64, v = W.astype(np.float64), c.astype(np.float64), v0.astype(np.float64)
    ph_neg, ph_pos = sigmoid(chains_after @ W64 + c64), sigmoid(v @ W64 + c64)
    expected = (
        chains_after.T @ ph_neg / 17 - v.T @ ph_pos / 30,
        chains_after.mean(0) - v.mean(0),
        ph_neg.mean(0) - ph_pos.mean(0),
    )
    for g, e in zip(grads_single, expected):
        np.testing.assert_allclose(g, e, atol=tol)  # float32 vs float64: the same bound


# --------------------------------------------------------------------------- 4. weight decay
def test_weight_decay_applies_to_weights_only():
    W, b, c = random_params(scale=1.0, seed=6)
    v0 = dataset_20000()[::40]
    plain = make_rbm(W, b, c, k=2, seed=7)
    decayed = make_rbm(W, b, c, k=2, seed=7, weight_decay=0.5)
    g0 = grads_numpy(plain.contrastive_divergence(tf.constant(v0))[0])
    g1 = grads_numpy(decayed.contrastive_divergence(tf.constant(v0))[0])
    # The same CD statistics (same seed) plus 0.5 * W (exact: a power of two) in one
    # float32 addition, rounded by <= EPS32 / 2 of the result.
    np.testing.assert_allclose(g1[0] - g0[0], 0.5 * W, atol=EPS32 * np.abs(g1[0]).max())
    np.testing.assert_array_equal(g1[1], g0[1])
    np.testing.assert_array_equal(g1[2], g0[2])
    assert np.abs(0.5 * W).max() > 0.1  # the check above is not vacuous


# --------------------------------------------------------------------------- 5. likelihood rises
@pytest.mark.parametrize("persistent", [False, True], ids=["CD-1", "PCD-1"])
def test_training_raises_exact_log_likelihood(persistent):
    x = toy_data()
    keras.utils.set_random_seed(0)
    rbm = RBM(4, k=1, persistent=persistent, n_chains=50, seed=0)
    rbm.initialize_from_data(x)  # base-rate visible biases: the best independent model
    before = rbm.log_likelihood_exact(x)
    # The base-rate model's log-likelihood is sum_i H(p_i) with H the binary entropy.
    p = x.mean(0).astype(np.float64)
    base = np.sum(p * np.log(p) + (1 - p) * np.log(1 - p))
    assert before == pytest.approx(base, abs=0.02)
    rbm.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.5))
    rbm.fit(x, epochs=15, batch_size=20, shuffle=False, verbose=0)
    after = rbm.log_likelihood_exact(x)
    # Bars: after learning the two modes the log-likelihood is close to
    # log(1/2) + 10 * (0.05 log 0.05 + 0.95 log 0.95) = -2.68 nats.
    assert after > before + 2.0, (before, after)


# --------------------------------------------------------------------------- 6. sampling
def test_gibbs_samples_match_exact_marginals():
    W, b, c = random_params(scale=1.0, seed=8)
    rbm = make_rbm(W, b, c, seed=0)
    _, v_model, _ = brute_model_statistics(W, b, c)
    samples = rbm.sample(20000, steps=100)
    assert samples.shape == (20000, D)
    assert np.all((samples > 0) & (samples < 1))  # probabilities p(v | h), not states
    np.testing.assert_allclose(samples.mean(0), v_model, atol=0.015)
    # Starting from given states gives the same stationary marginals.
    init = np.ones((20000, D), np.float32)
    np.testing.assert_allclose(rbm.sample(0, steps=100, init=init).mean(0), v_model, atol=0.015)
    # The base-rate start alone is far from the model (the check is not vacuous).
    assert np.abs(sigmoid(b.astype(np.float64)) - v_model).max() > 0.1


# --------------------------------------------------------------------------- 7. save / load
def test_save_load_round_trip(tmp_path):
    x = toy_data(250)
    keras.utils.set_random_seed(0)
    rbm = RBM(5, k=1, persistent=True, n_chains=13, seed=3)
    rbm.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.5))
    rbm.fit(x, epochs=2, batch_size=50, verbose=0)
    path = tmp_path / "rbm.keras"
    rbm.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, RBM)
    assert loaded.get_config() == rbm.get_config()
    for name in ["W", "visible_bias", "hidden_bias", "persistent_chains", "sampler_state"]:
        np.testing.assert_array_equal(getattr(loaded, name).numpy(), getattr(rbm, name).numpy(), err_msg=name)
    assert rbm.sampler_state.numpy()[1] > 0  # the state that was saved is not the initial one
    assert rbm.persistent_chains.numpy().shape == (13, 10)
    np.testing.assert_array_equal(loaded.transform(x), rbm.transform(x))
    # Same sampler state: the same samples, twice in a row.
    for _ in range(2):
        np.testing.assert_array_equal(loaded.sample(8, steps=20), rbm.sample(8, steps=20))
    # Training resumes identically (same chains, sampler and optimizer-free gradients).
    g_orig = grads_numpy(rbm.contrastive_divergence(tf.constant(x[:50]))[0])
    g_load = grads_numpy(loaded.contrastive_divergence(tf.constant(x[:50]))[0])
    for a, b in zip(g_orig, g_load):
        np.testing.assert_array_equal(a, b)


def test_get_config_round_trip():
    rbm = RBM(
        7, k=3, persistent=True, n_chains=11, weight_decay=2e-4, sparsity_target=0.1,
        sparsity_cost=0.3, sparsity_decay=0.9, visible_data="probabilities", seed=5,
    )
    config = rbm.get_config()
    clone = RBM.from_config(config)
    assert clone.get_config() == config
    for key, value in dict(n_hidden=7, k=3, persistent=True, n_chains=11, weight_decay=2e-4,
                           sparsity_target=0.1, sparsity_cost=0.3, sparsity_decay=0.9,
                           visible_data="probabilities", seed=5).items():
        assert config[key] == value and getattr(clone, key) == value, key


# --------------------------------------------------------------------------- 8. seeds
def _short_fit(seed, global_seed=0):
    keras.utils.set_random_seed(global_seed)
    rbm = RBM(5, k=1, seed=seed)
    rbm.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.5))
    rbm.fit(toy_data(200), epochs=2, batch_size=50, shuffle=False, verbose=0)
    return rbm


def test_same_seed_same_weights_different_seed_different_weights():
    a, b, other = _short_fit(0), _short_fit(0), _short_fit(1)
    for name in ["W", "visible_bias", "hidden_bias", "sampler_state"]:
        np.testing.assert_array_equal(getattr(a, name).numpy(), getattr(b, name).numpy(), err_msg=name)
    assert np.abs(a.W.numpy() - other.W.numpy()).max() > 1e-3
    # The model's seed alone fixes initialiser and sampler: the global seed does not matter.
    c = _short_fit(0, global_seed=123)
    for name in ["W", "visible_bias", "hidden_bias", "sampler_state"]:
        np.testing.assert_array_equal(getattr(a, name).numpy(), getattr(c, name).numpy(), err_msg=name)
    assert a.sampler_state.numpy()[0] == 0 and other.sampler_state.numpy()[0] == 1


# --------------------------------------------------------------------------- 9. bad inputs
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_hidden=0), r"n_hidden=0 must be an integer >= 1"),
        (dict(n_hidden=-3), r"n_hidden=-3 must be an integer >= 1"),
        (dict(n_hidden=2.5), r"n_hidden=2.5 must be an integer >= 1"),
        (dict(n_hidden=True), r"n_hidden=True must be an integer >= 1"),
        (dict(n_hidden=5, k=0), r"k=0 must be an integer >= 1"),
        (dict(n_hidden=5, n_chains=0), r"n_chains=0 must be an integer >= 1"),
        (dict(n_hidden=5, visible_data="grey"), r"visible_data='grey' must be one of 'binary', 'probabilities'"),
        (dict(n_hidden=5, weight_decay=-1.0), r"weight_decay=-1.0 must be a finite number >= 0"),
        (dict(n_hidden=5, sparsity_target=1.5), r"sparsity_target=1.5 must be a finite number in \(0, 1\) or None"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RBM(**kwargs)


def _fitted(n_visible=10, **kwargs):
    rbm = RBM(3, seed=0, **kwargs)
    rbm.compile(optimizer=keras.optimizers.SGD(0.1))
    rbm.build((None, n_visible))
    return rbm


@pytest.mark.parametrize(
    "make_x, match",
    [
        (lambda x: x * 2.0, r"x has values in \[0, 2\]; allowed: finite values in \[0, 1\]"),
        (lambda x: x - 0.5, r"x has values in \[-0.5, 0.5\]; allowed: finite values in \[0, 1\]"),
        (lambda x: np.where(np.arange(10) == 3, np.nan, x), r"x contains NaN or inf"),
        (lambda x: np.where(np.arange(10) == 3, np.inf, x), r"x contains NaN or inf"),
        (lambda x: x * 0.5, r"x is not binary but this RBM has visible_data='binary'"),
        (lambda x: x[:, :7], r"x has 7 features; the model was built for 10"),
        (lambda x: x[0], r"x has shape \(10,\); allowed: a 2-D array \(n, features\)"),
        (lambda x: x[None], r"x has shape \(1, 200, 10\); allowed: a 2-D array \(n, features\)"),
    ],
    ids=["above-1", "below-0", "nan", "inf", "non-binary", "features", "1-D", "3-D"],
)
def test_fit_rejects_bad_data(make_x, match):
    x = make_x(toy_data(200))
    rbm = _fitted()
    with pytest.raises(ValueError, match=match):
        rbm.fit(x, epochs=1, verbose=0)
    # The model was not touched.
    assert int(rbm.sampler_state.numpy()[1]) == 0


def test_fit_refuses_labels_it_would_ignore():
    rbm = RBM(3, seed=0)
    rbm.compile(optimizer=keras.optimizers.SGD(0.1))
    with pytest.raises(ValueError, match="y: an RBM is trained on x alone"):
        rbm.fit(toy_data(100), np.zeros(100), epochs=1, verbose=0)
    assert not rbm.built


def test_unbuilt_model_rejects_bad_data_before_building():
    rbm = RBM(3, seed=0)
    rbm.compile(optimizer=keras.optimizers.SGD(0.1))
    with pytest.raises(ValueError, match="not binary"):
        rbm.fit(toy_data(100) * 0.5, epochs=1, verbose=0)
    assert not rbm.built


@pytest.mark.parametrize("persistent", [False, True])
def test_save_load_keeps_the_optimizer_so_training_continues_identically(tmp_path, persistent):
    # Overriding compile once made Keras skip compile on load: the loaded RBM lost its
    # momentum velocities and the next epoch differed (max |dW| 0.014 CD, 0.031 PCD).
    x = toy_data(300)
    rbm = RBM(5, seed=0, persistent=persistent, n_chains=20)
    rbm.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    rbm.fit(x, epochs=2, batch_size=50, verbose=0)
    rbm.save(tmp_path / "r.keras")
    loaded = keras.models.load_model(tmp_path / "r.keras")
    assert int(loaded.optimizer.iterations) == int(rbm.optimizer.iterations) == 12
    for a, b in zip(rbm.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for model in (rbm, loaded):
        model.fit(x, initial_epoch=2, epochs=3, batch_size=50, verbose=0)
    np.testing.assert_array_equal(rbm.W.numpy(), loaded.W.numpy())  # same ops, same order


def test_xla_is_refused_because_it_would_skip_the_batch_check():
    # Under jit_compile a batch of 0.5s trains silently (tf.debugging.Assert is a no-op
    # in XLA; probed with keras.Model.fit on this model), so the RBM never compiles so.
    rbm = RBM(3, seed=0)
    with pytest.raises(ValueError, match="jit_compile=True: allowed: False or 'auto'"):
        rbm.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=True)
    rbm.compile(optimizer=keras.optimizers.SGD(0.1))  # Keras' default "auto" means off
    assert rbm.jit_compile is False
    rbm.jit_compile = True  # switched on after compile: refused before any work
    with pytest.raises(ValueError, match="jit_compile=True: an RBM trains without XLA"):
        rbm.fit(toy_data(100), epochs=1, verbose=0)
    assert not rbm.built


def test_grey_levels_accepted_with_visible_data_probabilities():
    x = toy_data(200) * 0.8 + 0.1
    rbm = RBM(3, seed=0, visible_data="probabilities")
    rbm.compile(optimizer=keras.optimizers.SGD(0.1))
    history = rbm.fit(x, epochs=1, batch_size=50, verbose=0)
    assert np.isfinite(history.history["reconstruction_error"][0])
    np.testing.assert_allclose(rbm.visible_bias.numpy(), 0.0, atol=0.5)  # logits of ~0.5


def test_other_methods_validate_inputs():
    rbm = _fitted()
    x = toy_data(20)
    with pytest.raises(ValueError, match="has 9 features; the model was built for 10"):
        rbm.transform(x[:, :9])
    with pytest.raises(ValueError, match="contains NaN or inf"):
        rbm.free_energy(np.full((2, 10), np.nan))
    with pytest.raises(ValueError, match=r"v has values in \[1, 2\]; allowed: finite values in \[0, 1\]"):
        rbm.reconstruct(x + 1.0)
    with pytest.raises(ValueError, match="h has 4 features; the model was built for 3"):
        rbm.visible_given_hidden(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="steps=0 must be an integer >= 1"):
        rbm.sample(5, steps=0)
    with pytest.raises(ValueError, match="n=0 must be an integer >= 1"):
        rbm.sample(0, steps=3)
    with pytest.raises(ValueError, match="validation_data is not binary"):
        rbm.fit(x, validation_data=x * 0.5, epochs=1, verbose=0)
    # Grey levels are fine for the inference methods of a binary RBM.
    assert rbm.transform(x * 0.5).shape == (20, 3)


# --------------------------------------------------------------------------- 10. divergence
def test_huge_learning_rate_raises_divergence_error():
    keras.utils.set_random_seed(0)
    rbm = RBM(5, seed=0)
    # Steps of 3e38 x gradients of order 0.1-1, with momentum 0.9 piling them up: float32
    # (max 3.4e38) overflows within the first epoch.  (Without momentum the weights can
    # saturate every hidden unit at -1.7e38 first and stop moving, finite.)
    rbm.compile(optimizer=keras.optimizers.SGD(3e38, momentum=0.9))
    with pytest.raises(DivergenceError, match=r"diverged at epoch 1 \(learning rate 3e\+38\)"):
        rbm.fit(toy_data(250), epochs=3, batch_size=100, verbose=0)


def test_nan_weights_refuse_to_save(tmp_path):
    rbm = make_rbm(*random_params(), seed=0)
    rbm.save(tmp_path / "ok.keras")  # finite: fine
    assert (tmp_path / "ok.keras").is_file()
    W = rbm.W.numpy()
    W[2, 1] = np.nan
    rbm.W.assign(W)
    for method, name in [(rbm.save, "bad.keras"), (rbm.save_weights, "bad.weights.h5")]:
        with pytest.raises(DivergenceError, match=r"non-finite values in \[.*W"):
            method(tmp_path / name)
        assert not (tmp_path / name).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.keras"]


# --------------------------------------------------------------------------- 11. logs
def test_fit_logs_and_free_energy_gap():
    x = toy_data(200, seed=1)
    x_val = toy_data(200, seed=2)
    keras.utils.set_random_seed(0)
    rbm = RBM(4, seed=0)
    rbm.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.5))
    history = rbm.fit(x, validation_data=x_val, epochs=3, batch_size=50, verbose=0).history
    assert set(history) == {"reconstruction_error", "val_free_energy", "val_reconstruction_error", "free_energy_gap"}
    for key, values in history.items():
        assert len(values) == 3 and np.all(np.isfinite(values)), key
    assert all(0 < e < 0.5 for e in history["reconstruction_error"] + history["val_reconstruction_error"])
    # Validation as large as the training set: the reference subset is all of it.
    fe_val = rbm.free_energy(x_val).astype(np.float64).mean()
    fe_train = rbm.free_energy(x).astype(np.float64).mean()
    # Keras' Mean metric adds 200 float32 free energies (each rounded by at most
    # float32_free_energy_tol) in float32: worst-case bound of that mean.
    params = rbm.W.numpy(), rbm.visible_bias.numpy(), rbm.hidden_bias.numpy()
    tol = max(float32_free_energy_tol(x_, *params).max()
              + float32_sum_tol(len(x_), np.abs(rbm.free_energy(x_)).max(), worst_case=True)
              for x_ in (x, x_val))
    assert history["val_free_energy"][-1] == pytest.approx(fe_val, abs=tol)
    assert history["free_energy_gap"][-1] == pytest.approx(fe_val - fe_train, abs=2 * tol)
    assert abs(fe_val - fe_train) > 4 * tol  # distinguishes the gap from 0 and from F(val)


def test_fit_logs_without_validation():
    keras.utils.set_random_seed(0)
    rbm = RBM(4, seed=0)
    rbm.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.5))
    history = rbm.fit(toy_data(200), epochs=4, batch_size=10, verbose=0).history
    assert list(history) == ["reconstruction_error"]  # no train-time free_energy of 0
    errors = history["reconstruction_error"]
    # Measured 0.251 -> 0.161: the bars are learned (an untrained RBM scores ~0.25).
    assert len(errors) == 4 and errors[-1] < errors[0] - 0.05


# --------------------------------------------------------------------------- 12. momentum
class ConstantGradientRBM(RBM):
    """An RBM whose update direction is a constant: makes the optimizer's trajectory
    analytic, so the momentum used at each step can be read off the weights."""

    def contrastive_divergence(self, v0):
        grads = (tf.ones(self.W.shape), tf.zeros(self.visible_bias.shape), tf.zeros(self.hidden_bias.shape))
        return grads, tf.constant(0.0)


class Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.momentum, self.W = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.momentum.append(self.model.optimizer.momentum)

    def on_epoch_end(self, epoch, logs=None):
        self.W.append(self.model.W.numpy().astype(np.float64))


def test_momentum_schedule_changes_the_compiled_update():
    x = toy_data(10)
    rbm = ConstantGradientRBM(3, seed=0)
    rbm.initialize_from_data(x)
    W0 = rbm.W.numpy().astype(np.float64)
    lr = 0.1
    # Compiled with 0.9: the schedule must switch to 0.5 before the first update.
    rbm.compile(optimizer=keras.optimizers.SGD(lr, momentum=0.9))
    recorder = Recorder()
    rbm.fit(x, epochs=5, batch_size=10, verbose=0,
            callbacks=[MomentumSchedule(initial=0.5, final=0.9, switch_epoch=2), recorder])
    assert recorder.momentum == [0.5, 0.5, 0.9, 0.9, 0.9]
    # SGD with momentum: velocity = mu * velocity - lr * g; W += velocity (g = 1).
    velocity, W = 0.0, W0.copy()
    # float32 against float64: each of the 5 steps rounds mu, lr, mu * v, v - lr and
    # W + v; a velocity error is carried into every later W: at most
    # 5 * 5 + 4 + 3 + 2 + 1 = 35 roundings of numbers <= max |W| + max |v| (|v| <= lr /
    # (1 - mu) = 1).
    tol = float32_sum_tol(35, np.abs(recorder.W[-1]).max() + 1.0, worst_case=True)
    for epoch, mu in enumerate(recorder.momentum):
        velocity = mu * velocity - lr
        W = W + velocity
        np.testing.assert_allclose(recorder.W[epoch], W, atol=tol, err_msg=f"epoch {epoch}")


def test_momentum_schedule_on_real_training_and_bad_optimizer():
    x = toy_data(200)
    keras.utils.set_random_seed(0)
    rbm = RBM(4, seed=0)
    rbm.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.5))
    recorder = Recorder()
    history = rbm.fit(x, epochs=3, batch_size=50, verbose=0, callbacks=[MomentumSchedule(switch_epoch=1), recorder])
    assert recorder.momentum == [0.5, 0.9, 0.9]
    assert np.all(np.isfinite(history.history["reconstruction_error"]))
    assert np.all(np.isfinite(rbm.W.numpy()))
    for optimizer in [keras.optimizers.SGD(0.1), keras.optimizers.Adam(1e-3)]:
        rbm = RBM(4, seed=0)
        rbm.compile(optimizer=optimizer)
        with pytest.raises(ValueError, match=f"needs an optimizer built with momentum > 0, got {type(optimizer).__name__}"):
            rbm.fit(x, epochs=1, verbose=0, callbacks=[MomentumSchedule()])


# --------------------------------------------------------------------------- 13. batching
def test_last_short_batch_and_dataset_input():
    rng = np.random.default_rng(10)
    # Grey levels whose thresholded pixel means range from about 0.9 down to 0.2.
    grey = (rng.random((250, 12)) ** np.linspace(0.3, 3.0, 12)).astype(np.float32)
    binary = datasets.binarize(grey, "threshold")
    keras.utils.set_random_seed(0)
    rbm = RBM(4, seed=0)
    rbm.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.5))
    history = rbm.fit(binary, epochs=2, batch_size=100, verbose=0)
    assert len(history.history["reconstruction_error"]) == 2
    assert rbm.sampler_state.numpy()[1] == 2 * 3 * 2  # 3 batches (100, 100, 50) x 2 draws x 2 epochs

    # A tf.data pipeline binarizing on the fly: the visible biases are initialised
    # from the (binarized) examples of the dataset.
    ds = datasets.to_dataset(grey, batch_size=100, seed=0, binarization="threshold")
    rbm = RBM(4, seed=0)
    rbm.compile(optimizer=keras.optimizers.SGD(0.0))  # lr 0: biases stay at their init
    history = rbm.fit(ds, epochs=2, shuffle=False, verbose=0)
    assert len(history.history["reconstruction_error"]) == 2
    assert rbm.sampler_state.numpy()[1] == 2 * 3 * 2
    # The same float64 pixel means (rows in another order) cast to float32 logits of
    # |.| <= log(999) = 6.9: they may differ in the last bit, EPS32 * 6.9 (lr 0: no update).
    np.testing.assert_allclose(rbm.visible_bias.numpy(), logit_base_rate(binary),
                               atol=2 * EPS32 * np.log(999.0))
    assert np.abs(logit_base_rate(binary)).max() > 1.0  # far from the zero init
    # Pairs (x, y) work too.
    rbm = RBM(4, seed=0)
    rbm.compile(optimizer=keras.optimizers.SGD(0.1))
    ds_xy = datasets.to_dataset(binary, np.zeros(250, np.int64), batch_size=100, seed=0)
    assert np.isfinite(rbm.fit(ds_xy, epochs=1, shuffle=False, verbose=0).history["reconstruction_error"][0])


# --------------------------------------------------------------------------- 14. MNIST
def test_mnist_cd1_reconstruction_error(mnist_small):
    x = mnist_small.x_train[:2000]
    x_val = mnist_small.x_val[:1000]
    # The base-rate model (what an untrained RBM reconstructs) scores ~0.086.
    base = float(np.mean((x.mean(0) - x_val) ** 2))
    assert 0.08 < base < 0.095
    keras.utils.set_random_seed(0)
    rbm = RBM(50, k=1, seed=0)
    rbm.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.5))
    errors = rbm.fit(x, epochs=3, batch_size=100, shuffle=False, verbose=0).history["reconstruction_error"]
    # Measured: 0.086, 0.079, 0.071 per pixel (held-out reconstruction 0.069).
    assert errors[0] > errors[1] > errors[2]
    assert errors[-1] < 0.075
    held_out = float(np.mean((rbm.reconstruct(x_val) - x_val) ** 2))
    assert held_out < 0.075 and held_out < 0.88 * base


def test_stacked_batches_give_the_same_updates_as_single_batches():
    """``to_dataset(batches_per_element=s)`` feeds stacks of batches that train_step loops
    over in-graph: the same sequence of CD updates as one batch per step (datasets built
    per epoch, as train_rbm does)."""
    from dbn import data as datasets

    rng = np.random.default_rng(0)
    x = (rng.random((630, 20)) < 0.3).astype(np.float32)
    weights = []
    for per_element in (1, 3):
        rbm = RBM(7, seed=0)
        rbm.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.5))
        make = datasets.epoch_datasets(x, batch_size=100, seed=1, batches_per_element=per_element)
        errors = [rbm.fit(make(epoch), initial_epoch=epoch, epochs=epoch + 1, verbose=0,
                          shuffle=False).history["reconstruction_error"][0] for epoch in range(2)]
        assert int(rbm.optimizer.iterations.numpy()) == 2 * 7  # 6 full batches + 1 short
        weights.append((rbm.W.numpy(), errors))
    # The same float32 operations; a kernel may still add in another order inside the
    # loop. Each of the 14 updates is lr 0.1 times a matmul over <= 200 stacked rows
    # (magnitude 2), times <= 1 / (1 - 0.5) for the momentum; the reconstruction error
    # (a mean of squares in [0, 1]) moves by < 4 times the change of a weight (the
    # sigmoid's slope 1/4, 7 hidden units and a bias, twice for the square) and rounds
    # in a mean over 100 x 20 pixels.
    W_tol = 14 * 0.1 * 2 * float32_sum_tol(200, 2.0, worst_case=True)
    error_tol = 4 * W_tol + float32_sum_tol(100 * 20, 1.0, worst_case=True)
    np.testing.assert_allclose(weights[0][0], weights[1][0], atol=W_tol)
    np.testing.assert_allclose(weights[0][1], weights[1][1], atol=error_tol)


# --------------------------------------------------------------------------- 15. sparsity target
def test_sparsity_penalty_adds_cost_times_q_minus_target_to_the_hidden_gradient():
    """Hinton's guide, section 11: q = decay * q_old + (1 - decay) * mean_batch p(h | v)
    and the *negative log-likelihood* gradient gains cost * (q - target) on the hidden
    bias (and that times the mean visible state on the weights), so gradient descent
    lowers the biases of units more active than the target."""
    W, b, c = random_params(scale=1.0, seed=11)
    v0 = dataset_20000()[::40]
    plain = make_rbm(W, b, c, k=1, seed=3)
    sparse = make_rbm(W, b, c, k=1, seed=3, sparsity_target=0.1, sparsity_cost=0.5,
                      sparsity_decay=0.9)
    g0 = grads_numpy(plain.contrastive_divergence(tf.constant(v0))[0])
    g1 = grads_numpy(sparse.contrastive_divergence(tf.constant(v0))[0])
    ph0 = sigmoid(v0.astype(np.float64) @ W.astype(np.float64) + c)
    q = 0.9 * 0.1 + 0.1 * ph0.mean(0)  # the running estimate starts at the target
    penalty = 0.5 * (q - 0.1)
    assert np.all(penalty > 0.01)  # these units are far above the target: a real check
    # Same samples (same seed): the difference is the penalty alone. float32: a mean over
    # the rows of p(h | v) in [0, 1] and one addition (magnitude <= 1 + the gradient).
    tol = float32_sum_tol(len(v0), 1.0, worst_case=True) + EPS32 * (1 + np.abs(g0[0]).max())
    np.testing.assert_allclose(g1[2] - g0[2], penalty, atol=tol)
    np.testing.assert_allclose(g1[0] - g0[0], np.outer(v0.mean(0), penalty), atol=tol)
    np.testing.assert_array_equal(g1[1], g0[1])  # visible biases untouched
    np.testing.assert_allclose(sparse.mean_activation.numpy(), q, atol=tol)


def test_sparsity_target_lowers_the_mean_hidden_activation():
    """Training with a low target gives sparser hidden units than the same training
    without it (measured on the bars: mean p(h | v) 0.49 without, 0.18 with)."""
    x = toy_data(400)
    activations = {}
    for target in (None, 0.05):
        keras.utils.set_random_seed(0)
        rbm = RBM(8, seed=0, sparsity_target=target, sparsity_cost=0.0 if target is None else 1.0,
                  sparsity_decay=0.9)
        rbm.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.5))
        rbm.fit(x, epochs=10, batch_size=20, shuffle=False, verbose=0)
        activations[target] = float(rbm.transform(x).mean())
    assert activations[0.05] < 0.5 * activations[None], activations
    assert activations[0.05] < 0.25, activations


def test_arrays_take_the_stacked_fast_path():
    """``fit(array, batch_size=...)`` trains exactly as ``fit`` on the stacked dataset of
    train_rbm (the same updates in the same order), and its shuffling is seeded: two
    models with the same seed end identical."""
    from dbn.data.pipeline import to_dataset

    x = toy_data(450)

    def trained(data, seed=0, **kwargs):
        keras.utils.set_random_seed(0)
        rbm = RBM(4, seed=seed)
        rbm.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.5))
        rbm.fit(data, epochs=2, verbose=0, **kwargs)
        return rbm.W.numpy()

    stacked = to_dataset(x, batch_size=100, shuffle=False, batches_per_element=50)
    np.testing.assert_array_equal(trained(x, batch_size=100, shuffle=False),
                                  trained(stacked, shuffle=False))
    np.testing.assert_array_equal(trained(x, batch_size=100), trained(x, batch_size=100))
    # shuffle=True (Keras' default for arrays) really reorders the batches.
    assert not np.array_equal(trained(x, batch_size=100), trained(x, batch_size=100, shuffle=False))
