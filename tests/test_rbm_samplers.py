"""The RBM's negative-phase samplers beyond plain PCD: fast weights (FPCD, Tieleman &
Hinton 2009) and parallel tempering.  The tempered chains are checked against the exact
distribution of a tiny RBM, the fast weights against their update rule; both survive
save/load; bad combinations are refused."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import EPS32

from dbn.estimation.exact import exact_log_partition
from dbn.models.rbm import RBM
from dbn.training.configs import RBMTrainingConfig


def states(n):
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)), np.float32)


def exact_probabilities(W, b, c):
    V = states(len(b)).astype(np.float64)
    log_p = V @ b + np.logaddexp(0.0, V @ W + c).sum(1) - exact_log_partition(W, b, c)
    return np.exp(log_p)


def tiny(D=5, H=3, scale=3.0, seed=0, **kwargs):
    rng = np.random.default_rng(seed)
    rbm = RBM(H, persistent=True, seed=seed, **kwargs)
    rbm.build((None, D))
    rbm.W.assign(rng.normal(0, scale, (D, H)).astype(np.float32))
    rbm.visible_bias.assign(rng.normal(0, 1, D).astype(np.float32))
    rbm.hidden_bias.assign(rng.normal(0, 1, H).astype(np.float32))
    rbm.compile(optimizer=keras.optimizers.SGD(0.1))
    rbm.optimizer.build(rbm.trainable_variables)
    return rbm


def histogram(samples):
    codes = samples.astype(np.int64) @ (1 << np.arange(samples.shape[1])[::-1])
    return np.bincount(codes, minlength=1 << samples.shape[1]) / len(samples)


# --------------------------------------------------------------------------- tempering
def run_tempering(rbm, steps):
    """The beta = 1 and beta = 0 chains' states after each of ``steps`` negative phases."""

    @tf.function
    def phase():
        top = rbm._tempered_negative_phase()
        rbm.optimizer.iterations.assign_add(1)  # alternate even and odd swap pairs
        return top, rbm.tempered_chains[0]

    top, bottom = zip(*[[t.numpy() for t in phase()] for _ in range(steps)])
    return np.concatenate(top), np.concatenate(bottom)


def test_tempered_chains_sample_the_rbm_and_the_base_model():
    """A strongly multimodal 5-3 RBM: over 150 steps of 400 chains, the beta = 1 chains'
    states match the exact p(v) and the beta = 0 chains the base-rate model, in total
    variation (measured 0.01; the Monte-Carlo noise of ~60,000 correlated draws on 32
    states is about that)."""
    rbm = tiny(n_chains=400, n_temperatures=5)
    b_base = np.random.default_rng(5).normal(0, 1, 5).astype(np.float32)
    rbm.base_visible_bias.assign(b_base)
    run_tempering(rbm, 50)  # burn-in from the all-zero start
    top, bottom = run_tempering(rbm, 150)
    p = exact_probabilities(*(x.numpy().astype(np.float64) for x in rbm._parameters()))
    tv = 0.5 * np.abs(histogram(top) - p).sum()
    assert tv < 0.03, tv
    V = states(5)
    base = np.prod(np.where(V == 1, 1 / (1 + np.exp(-b_base)), 1 / (1 + np.exp(b_base))), axis=1)
    assert 0.5 * np.abs(histogram(bottom) - base).sum() < 0.03
    # Swaps happen: the beta = 1 chains do not stay where a cold Gibbs sampler keeps them.
    assert rbm.n_temperatures == 5 and rbm.tempered_chains.shape == (4, 400, 5)


def test_swaps_follow_the_metropolis_rule(monkeypatch):
    """Swapping every proposal (a rule that ignores the energies) drives the beta = 1
    chains towards the hotter distributions: the check above then fails."""
    rbm = tiny(n_chains=400, n_temperatures=5)
    rbm.base_visible_bias.assign(np.zeros(5, np.float32))
    real = tf.math.log

    def accept_everything(x):  # log u = -inf < log r: every proposal accepted
        return real(x) - np.inf

    monkeypatch.setattr(tf.math, "log", accept_everything)
    run_tempering(rbm, 50)
    top, _ = run_tempering(rbm, 100)
    p = exact_probabilities(*(x.numpy().astype(np.float64) for x in rbm._parameters()))
    assert 0.5 * np.abs(histogram(top) - p).sum() > 0.1


# --------------------------------------------------------------------------- fast weights
def test_fast_weights_follow_their_update_rule():
    """With SGD (lr 0.1, no momentum) and no weight cost, each update moves W by
    -0.1 * g; the fast weights must be 0.9 * previous - 0.2 * g = 0.9 * previous + 2 dW."""
    rng = np.random.default_rng(0)
    x = (rng.random((50, 8)) < 0.5).astype(np.float32)
    rbm = RBM(4, persistent=True, n_chains=20, fast_learning_rate=0.2, fast_decay=0.9, seed=0)
    rbm.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.0))
    rbm.fit(x, epochs=1, batch_size=50, verbose=0)  # builds, initialises, one update
    fast_W = rbm.fast_parameters[0]
    W_history = []
    for _ in range(2):
        W_before, fast_before = rbm.W.numpy().copy(), fast_W.numpy().copy()
        rbm.fit(x, epochs=1, batch_size=50, verbose=0)
        dW = rbm.W.numpy() - W_before
        W_history.append(dW)
        # float32: the recovered step dW carries the rounding of |W| (<= 1) twice, times 2;
        # the fast update itself rounds 0.9 f and the product once each.
        tol = 2 * 2 * EPS32 * (np.abs(W_before).max() + 1) + 4 * EPS32 * np.abs(fast_before).max()
        np.testing.assert_allclose(fast_W.numpy(), 0.9 * fast_before + 2.0 * dW, atol=tol)
    assert np.abs(W_history[-1]).max() > 100 * tol  # not vacuous


def test_fast_weights_drive_the_chains_and_not_the_statistics():
    rbm = RBM(3, persistent=True, n_chains=200, fast_learning_rate=0.01, seed=0)
    rbm.build((None, 6))
    rbm.W.assign(np.zeros((6, 3), np.float32))
    rbm.compile(optimizer=keras.optimizers.SGD(0.1))
    rbm.fast_parameters[1].assign(np.full(6, 30.0, np.float32))  # chains: every pixel on
    rbm.fast_parameters[2].assign(np.full(3, 30.0, np.float32))  # and every hidden unit
    v0 = np.zeros((10, 6), np.float32)
    (grad_W, grad_vb, _), _ = rbm.contrastive_divergence(v0)
    assert np.all(rbm.persistent_chains.numpy() == 1.0)
    np.testing.assert_allclose(grad_vb.numpy(), 1.0)  # <v>_chains - <v>_data = 1 - 0
    # The model's own parameters (all zero) give p(h | v) = 0.5 for the statistics, not
    # the fast-weighted ones: grad_W = <v h>_model = 1 * 0.5.
    np.testing.assert_allclose(grad_W.numpy(), 0.5, atol=1e-6)
    plain = RBM(3, persistent=True, n_chains=200, seed=0)
    plain.build((None, 6))
    plain.contrastive_divergence(v0)
    assert 0.3 < plain.persistent_chains.numpy().mean() < 0.7


# --------------------------------------------------------------------------- training, save
@pytest.mark.parametrize("kwargs", [dict(fast_learning_rate=0.05), dict(n_temperatures=4)])
def test_samplers_train_a_density_model_and_survive_save(tmp_path, kwargs):
    """A 10-4 RBM trained on 3 prototype patterns with 10% pixel noise: its exact mean
    log-likelihood comes close to the data's own entropy bound (log 3 + 10 H(0.1) = 4.35
    nats: -4.35 at best), far above the base-rate model's -5.17; save/load keeps every
    sampler state (fast weights, tempered chains, base-rate biases)."""
    rng = np.random.default_rng(1)
    prototypes = (rng.random((3, 10)) < 0.5).astype(np.float32)
    x = np.abs(prototypes[rng.integers(0, 3, 600)] - (rng.random((600, 10)) < 0.1)).astype(np.float32)
    keras.utils.set_random_seed(0)
    rbm = RBM(4, persistent=True, n_chains=50, seed=0, **kwargs)
    rbm.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.5))
    rbm.fit(x, epochs=30, batch_size=20, verbose=0)
    log_lik = rbm.log_likelihood_exact(x)
    p = x.mean(0).clip(1e-3, 1 - 1e-3)
    base = float(np.mean(x @ np.log(p) + (1 - x) @ np.log(1 - p)))
    assert log_lik > base + 0.6, (log_lik, base)  # measured -4.33 / -4.34 vs -5.17
    path = tmp_path / "rbm.keras"
    rbm.save(path)
    loaded = keras.models.load_model(path)
    assert {w.path for w in loaded.weights} == {w.path for w in rbm.weights}
    for a, b in zip(rbm.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    assert loaded.get_config()["fast_learning_rate"] == kwargs.get("fast_learning_rate")
    assert loaded.n_temperatures == kwargs.get("n_temperatures", 1)


@pytest.mark.parametrize("kwargs, match", [
    (dict(fast_learning_rate=0.1), "fast_learning_rate=0.1 needs persistent=True"),
    (dict(n_temperatures=3), "n_temperatures=3 needs persistent=True"),
    (dict(persistent=True, fast_learning_rate=0.1, n_temperatures=3), "not both"),
    (dict(persistent=True, fast_learning_rate=-0.1), "fast_learning_rate=-0.1"),
    (dict(persistent=True, fast_learning_rate=float("nan")), "fast_learning_rate=nan"),
    (dict(persistent=True, fast_learning_rate=0.1, fast_decay=1.0), "fast_decay=1.0"),
    (dict(persistent=True, n_temperatures=0), "n_temperatures=0"),
    (dict(persistent=True, n_temperatures=2.0), "n_temperatures=2.0"),
    (dict(persistent=True, n_temperatures=True), "n_temperatures=True"),
    (dict(persistent=True, n_temperatures=3, n_labels=2), "label group"),
])
def test_bad_sampler_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RBM(5, **kwargs)
    config = {k: v for k, v in kwargs.items() if k != "n_labels"}
    if "n_labels" not in kwargs:
        with pytest.raises(ValueError, match=match.split("=")[0]):
            RBMTrainingConfig(**config)


def test_config_keys_name_the_samplers_only_when_on():
    assert "n_temperatures" not in RBMTrainingConfig().to_dict()
    assert "fast_learning_rate" not in RBMTrainingConfig().to_dict()
    on = RBMTrainingConfig(persistent=True, fast_learning_rate=0.01)
    assert on.to_dict()["fast_learning_rate"] == 0.01 and on.to_dict()["fast_decay"] == 0.95
    assert RBMTrainingConfig(persistent=True, n_temperatures=10).to_dict()["n_temperatures"] == 10


def test_tempering_works_before_compile():
    """contrastive_divergence on an uncompiled tempered RBM (no optimizer yet: even pairs
    swap) moves the chains and keeps them binary."""
    rbm = RBM(3, persistent=True, n_temperatures=3, n_chains=4, seed=0)
    rbm.build((None, 5))
    before = rbm.tempered_chains.numpy().copy()
    (grad_W, _, _), _ = rbm.contrastive_divergence(np.ones((2, 5), np.float32))
    assert grad_W.shape == (5, 3)
    assert set(np.unique(rbm.tempered_chains.numpy())) <= {0.0, 1.0}
    assert not np.array_equal(before, rbm.tempered_chains.numpy())
