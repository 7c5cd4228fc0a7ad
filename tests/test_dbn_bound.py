"""Tests of dbn.estimation.dbn_bound: the two-layer DBN's variational bound against
exact enumeration on a tiny DBN (the Monte-Carlo estimate is unbiased for the exact
bound, which lies below the exact log p(v)); bad inputs."""

import itertools

import numpy as np
import pytest

from dbn.estimation.dbn_bound import dbn_lower_bound
from dbn.estimation.exact import exact_log_partition


def rbm(D, H, scale, rng):
    return (rng.normal(0, scale, (D, H)).astype(np.float32), rng.normal(0, 1, D).astype(np.float32),
            rng.normal(0, 1, H).astype(np.float32))


def states(n):
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def softplus(x):
    return np.logaddexp(0.0, x)


def exact_terms(v, lower, top):
    """For each v (n, D): exact log p(v), the exact bound, and the variance under Q of
    the bound's integrand (for the Monte-Carlo tolerance); float64 enumeration."""
    (W1, b1, c1), (W2, b2, c2) = [[a.astype(np.float64) for a in p] for p in (lower, top)]
    H1 = states(W1.shape[1])  # (2^H1, H1)
    log_z2 = exact_log_partition(*top)
    a = H1 @ W1.T + b1  # (2^H1, D)
    log_p_v_given_h = v @ a.T - softplus(a).sum(1)  # (n, 2^H1)
    neg_f2 = H1 @ b2 + softplus(H1 @ W2 + c2).sum(1)  # (2^H1,)
    joint = log_p_v_given_h + neg_f2 - log_z2
    top_ = joint.max(1, keepdims=True)
    log_p = (top_ + np.log(np.exp(joint - top_).sum(1, keepdims=True)))[:, 0]
    q = 1 / (1 + np.exp(-(v @ W1 + c1)))  # (n, H1)
    log_q = H1 @ np.log(q).T + (1 - H1) @ np.log1p(-q).T  # (2^H1, n)
    Q = np.exp(log_q).T  # (n, 2^H1)
    f = log_p_v_given_h + neg_f2 - log_q.T  # the integrand, entropy term included
    bound = (Q * f).sum(1) - log_z2
    variance = (Q * f**2).sum(1) - (Q * f).sum(1) ** 2  # of each draw's term
    return log_p, bound, variance, log_z2


def test_bound_matches_exact_enumeration_and_lies_below_log_p():
    rng = np.random.default_rng(0)
    lower, top = rbm(6, 5, 1.0, rng), rbm(5, 4, 1.5, rng)
    V = states(6)
    log_p, bound, variance, log_z2 = exact_terms(V, lower, top)
    assert np.all(bound <= log_p + 1e-12)  # Jensen, exactly
    assert (log_p - bound).max() > 0.05  # Q is not the posterior: the bound is not tight
    S = 4000
    estimate = dbn_lower_bound(lower, top, V.astype(np.float32), log_z_top=log_z2, n_samples=S,
                               seed=1)
    # Unbiased for the exact bound: 5 standard errors of an S-sample mean, plus float32
    # rounding of sums over D = 6 and H = 4 terms of size <= 20 (far below 1e-4).
    tol = 5 * np.sqrt(variance / S) + 1e-4
    np.testing.assert_array_less(np.abs(estimate.per_example - bound), tol)
    assert estimate.mean == pytest.approx(estimate.per_example.mean())
    assert np.mean(estimate.per_example <= log_p + tol) == 1.0
    assert estimate.as_dict()["examples"] == 64 and estimate.n_samples == S


def test_same_seed_same_estimate():
    rng = np.random.default_rng(1)
    lower, top = rbm(6, 5, 1.0, rng), rbm(5, 4, 1.0, rng)
    v = states(6)[:10].astype(np.float32)
    one = dbn_lower_bound(lower, top, v, log_z_top=3.0, n_samples=3, seed=2).per_example
    np.testing.assert_array_equal(one, dbn_lower_bound(lower, top, v, log_z_top=3.0, n_samples=3,
                                                       seed=2).per_example)
    assert not np.array_equal(one, dbn_lower_bound(lower, top, v, log_z_top=3.0, n_samples=3,
                                                   seed=3).per_example)
    # log Z2 enters with slope -1.
    np.testing.assert_allclose(dbn_lower_bound(lower, top, v, log_z_top=4.0, n_samples=3,
                                               seed=2).per_example, one - 1.0, atol=1e-9)


@pytest.mark.parametrize("change, match", [
    (dict(test_data=np.full((2, 6), 0.5, np.float32)), "test_data.*binary"),
    (dict(test_data=np.zeros((0, 6), np.float32)), "test_data"),
    (dict(test_data=np.zeros((2, 5), np.float32)), "test_data"),
    (dict(log_z_top=float("nan")), "log_z_top"), (dict(log_z_top=None), "log_z_top"),
    (dict(n_samples=0), "n_samples=0"), (dict(n_samples=2.5), "n_samples=2.5"),
    (dict(seed=-1), "seed=-1"), (dict(batch_size=0), "batch_size=0"),
    (dict(top="x"), "top must be a triple"),
    (dict(top=(np.zeros((4, 3), np.float32), np.zeros(4, np.float32), np.zeros(3, np.float32))),
     "top has 4 visible units.*5 hidden"),
    (dict(lower=(np.zeros((6, 5), np.float32), np.zeros(6, np.float32), np.full(5, np.nan, np.float32))),
     "lower: "),
])
def test_bad_inputs_are_refused(change, match):
    rng = np.random.default_rng(2)
    args = dict(lower=rbm(6, 5, 1.0, rng), top=rbm(5, 3, 1.0, rng),
                test_data=np.zeros((2, 6), np.float32), log_z_top=1.0)
    args.update(change)
    with pytest.raises(ValueError, match=match):
        dbn_lower_bound(args.pop("lower"), args.pop("top"), args.pop("test_data"), **args)


def test_bound_is_exact_when_the_top_is_the_rbms_own_prior():
    """A DBN whose top RBM is the first RBM's own prior over h1 (W2 = W1^T, visible and
    hidden biases swapped: Hinton, Osindero & Teh 2006) is that RBM, and Q is then its
    exact posterior: log p(v, h1) - log Q(h1 | v) = log p(v) for every h1, so even one
    draw gives the exact log p(v) (float32 sums over D = 6 and H = 5 terms; tolerance
    1e-4 nats)."""
    rng = np.random.default_rng(3)
    W, b, c = rbm(6, 5, 1.5, rng)
    V = states(6)
    log_z = exact_log_partition(W, b, c)
    log_p = V @ b.astype(np.float64) + softplus(V @ W.astype(np.float64) + c).sum(1) - log_z
    estimate = dbn_lower_bound((W, b, c), (W.T.copy(), c, b), V.astype(np.float32), log_z_top=log_z,
                               n_samples=1, seed=0)
    np.testing.assert_allclose(estimate.per_example, log_p, atol=1e-4)
