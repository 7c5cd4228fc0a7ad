"""Reverse annealing: RAISE (Burda, Grosse & Salakhutdinov 2015, "Accurate and
conservative estimates of MRF log-likelihood using reverse annealing").

Forward AIS (``dbn.estimation.ais``) estimates log Z from below on average, so the
test log-probability it implies is biased *up*: it flatters the model.  RAISE looks
from the other side.  The annealing process of AIS with the same base-rate model A,
inverse temperatures 0 = beta_0 < ... < beta_K = 1 and tempered Gibbs sweeps T_k
(each leaving p_k invariant) is itself a generative model

    q(v_0, ..., v_K) = p_A(v_0) prod_k T_k(v_k | v_{k-1}),     q(v) = its marginal of v_K,

which approaches the RBM as K grows.  For a test vector v, RAISE starts a chain at
v_K = v and runs the sweeps backwards in temperature (v_{k-1} ~ T_k(. | v_k): a Gibbs
sweep is reversible, so its reverse kernel is itself).  With f_k = p*_{beta_k} the
unnormalised path densities, the importance weight of this proposal for q is

    log w = log f_K(v) - log Z_A + sum_{k=1..K} [log f_{k-1}(v_{k-1}) - log f_k(v_{k-1})],

with E[w] = q(v).  So ``log mean_M(w)`` over M chains is, by Jensen's inequality, a
stochastic lower bound on log q(v) for each test vector: its expectation lies below
log q(v), whatever the number of chains.  It is a bound on the annealing model q, not
on the RBM p: log q(v) < log p(v) in practice (the annealing model is a blurred RBM,
and q -> p as K grows), which is what makes the estimate conservative; the tests check
it against exact log p(v) on models small enough to enumerate, where the estimate lies
below the truth by a margin that shrinks with K.

log f_K(v) = -F(v) (the RBM's free energy), log f_0(v) = b_A.v + H log 2 and
log Z_A = sum_i log(1 + exp(b_A,i)) + H log 2.  Increments accumulate in float64, the
chain in float32, as in forward AIS; one ``tf.while_loop`` runs all temperatures.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf

from dbn import validation as check
from dbn.estimation.ais import (base_rate_biases, check_betas, check_binary_data, default_betas,
                                stateless_uniform)
from dbn.ops import check_rbm_parameters, log_p_star, path_statistics, tempered_gibbs_step

# RAISE's random streams: seed[1] starts here, far from forward AIS's (seed, 0 + 3 k + salt),
# so the two estimators never share random numbers for one seed.
_STREAM = 1 << 40


@dataclasses.dataclass(frozen=True)
class RAISEResult:
    """Per-example stochastic lower bounds on log q(v) and their summary.

    ``log_prob`` (n,) : log mean_M(w) for each test vector (nats);
    ``mean`` : their mean; ``sem`` : the standard error of that mean over test vectors;
    ``n_runs`` : chains M per test vector; ``n_betas`` : temperatures (K + 1)."""

    log_prob: np.ndarray
    mean: float
    sem: float
    n_runs: int
    n_betas: int

    def as_dict(self):
        return {"raise_log_prob": self.mean, "raise_log_prob_sem": self.sem,
                "raise_examples": int(self.log_prob.shape[0]), "raise_runs": self.n_runs,
                "raise_betas": self.n_betas}


def raise_log_probability(W, visible_bias, hidden_bias, test_data, *, base_data=None,
                          base_visible_bias=None, betas=None, n_runs=1, seed=0,
                          batch_size=1000):
    """RAISE estimates of log p(v) for each row of ``test_data`` (stochastic lower bounds
    on the annealing model's log-probability; see the module docstring).

    Parameters
    ----------
    W : array (D, H)
    visible_bias : array (D,)
    hidden_bias : array (H,)
    test_data : array (n, D)
        Binary test vectors (n >= 1).
    base_data : array (m, D), optional
        Training data whose pixel means define the base-rate model A (as in forward AIS;
        use the same data for both so the two estimators share their path).
    base_visible_bias : array (D,), optional
        A's visible biases directly (zeros if neither is given).
    betas : array (K+1,), optional
        Increasing inverse temperatures from 0 to 1 (default ``ais.default_betas()``).
    n_runs : int >= 1
        Reverse chains M per test vector (log of the mean of their weights).
    seed : int >= 0
        Seed of the stateless sampler: the same seed gives the same estimates.
    batch_size : int >= 1
        Test vectors annealed together (each with its M chains).

    Returns
    -------
    RAISEResult

    Raises
    ------
    ValueError
        Before any computation, for the same parameter, base and ``betas`` faults as
        ``ais.ais_log_partition``, non-binary or empty ``test_data`` or one with other
        than D columns, and ``n_runs``, ``seed`` or ``batch_size`` out of range.
    """
    W, visible_bias, hidden_bias = check_rbm_parameters(W, visible_bias, hidden_bias)
    D, H = W.shape
    test_data = check_binary_data("test_data", test_data, W, visible_bias, hidden_bias)
    base_visible_bias = base_rate_biases(base_data, base_visible_bias, W.shape)
    betas = default_betas() if betas is None else check_betas(betas)
    n_runs = check.check_int("n_runs", n_runs, low=1)
    seed = check.check_seed("seed", seed)
    batch_size = check.check_int("batch_size", batch_size, low=1)
    log_z_base = float(np.logaddexp(0.0, base_visible_bias.astype(np.float64)).sum() + H * math.log(2.0))
    args = [tf.constant(a) for a in (W, visible_bias, hidden_bias, base_visible_bias)]
    out = []
    for i, start in enumerate(range(0, len(test_data), batch_size)):
        v = np.repeat(test_data[start : start + batch_size], n_runs, axis=0)
        # Every batch has its own stream (seed, _STREAM + i * 2**20 + 3 k + salt).
        log_w = _reverse_anneal(*args, tf.constant(betas), tf.constant(v),
                                tf.constant([seed, _STREAM + i * (1 << 20) * 3], tf.int64)).numpy()
        log_w = log_w.reshape(-1, n_runs) - log_z_base
        top = log_w.max(axis=1, keepdims=True)
        out.append((top + np.log(np.mean(np.exp(log_w - top), axis=1, keepdims=True)))[:, 0])
    log_prob = np.concatenate(out)
    if not np.all(np.isfinite(log_prob)):
        raise FloatingPointError("RAISE produced non-finite log-probabilities")
    sem = float(log_prob.std(ddof=1) / math.sqrt(len(log_prob))) if len(log_prob) > 1 else float("nan")
    return RAISEResult(log_prob=log_prob, mean=float(log_prob.mean()), sem=sem,
                       n_runs=n_runs, n_betas=len(betas))


@tf.function(reduce_retracing=True)
def _reverse_anneal(W, b, c, b_base, betas, v, seed):
    """log w + log Z_A for each row of ``v`` (the chains' starting test vectors)."""
    K = tf.shape(betas)[0] - 1
    vb, vb0, x32 = path_statistics(v, W, b, c, b_base)
    log_w0 = log_p_star(vb, vb0, tf.cast(x32, tf.float64), tf.constant(1.0, tf.float64))  # -F(v)

    def body(k, v, x32, log_w):  # k = K .. 1: move to v_{k-1} ~ T_k(. | v_k), then weigh it
        v = tempered_gibbs_step(x32, betas[k], W, b, b_base,
                                stateless_uniform(seed, k, 1, tf.shape(x32)),
                                stateless_uniform(seed, k, 2, tf.shape(v)))
        vb, vb0, x32 = path_statistics(v, W, b, c, b_base)
        x = tf.cast(x32, tf.float64)
        log_w += log_p_star(vb, vb0, x, betas[k - 1]) - log_p_star(vb, vb0, x, betas[k])
        return k - 1, v, x32, log_w

    _, _, _, log_w = tf.while_loop(lambda k, v, x32, log_w: k >= 1, body, (K, v, x32, log_w0))
    return log_w
