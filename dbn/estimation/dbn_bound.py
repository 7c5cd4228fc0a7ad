"""The variational lower bound on log p(v) of a two-layer DBN (Salakhutdinov & Murray
2008, "On the quantitative analysis of deep belief networks", section 4).

A DBN grown from an RBM (W1, b1, c1) by a second RBM (W2, b2, c2) over the first one's
hidden units defines

    p(v, h1) = p(v | h1) p(h1),   p(v | h1) = prod_i Bernoulli(v_i; sigmoid(b1 + W1 h1)_i),
    p(h1) = p*(h1) / Z2,          log p*(h1) = -F2(h1) = b2.h1 + sum_k softplus(c2_k + h1 W2_k).

For any distribution Q(h1 | v), Jensen's inequality gives

    log p(v) >= E_Q[log p(v | h1) - F2(h1)] - log Z2 + H(Q(h1 | v)),

tight when Q is the true posterior.  Q is the first RBM's factorial posterior
Q(h1 | v) = prod_j Bernoulli(sigmoid(c1 + v W1)_j), as in the paper; the whole
right-hand side (entropy included, as -log Q of each draw) is estimated from
``n_samples`` draws of h1 per test vector, unbiased for the bound.  log Z2 is the top RBM's partition function, estimated by
forward AIS: an AIS log Z2 biased low flatters the bound, so ``log_z_top`` should be the
upper end of its interval (log Z + 3 std) for a conservative figure.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf

from dbn import validation as check
from dbn.estimation.ais import check_binary_data
from dbn.ops import check_rbm_parameters


@dataclasses.dataclass(frozen=True)
class BoundResult:
    """``per_example`` (n,) bound estimates in nats; ``mean``; ``sem`` (over test vectors);
    ``n_samples`` draws of h1 per test vector; ``log_z_top`` the log Z2 used."""

    per_example: np.ndarray
    mean: float
    sem: float
    n_samples: int
    log_z_top: float

    def as_dict(self):
        return {"bound": self.mean, "bound_sem": self.sem, "examples": int(len(self.per_example)),
                "samples": self.n_samples, "log_z_top": self.log_z_top}


def dbn_lower_bound(lower, top, test_data, *, log_z_top, n_samples=10, seed=0, batch_size=1000):
    """Variational lower bound on log p(v) for each row of ``test_data`` under the
    two-layer DBN of the RBMs ``lower`` and ``top`` (see the module docstring).

    Parameters
    ----------
    lower : (W1 (D, H1), b1 (D,), c1 (H1,))
        The first RBM: p(v | h1) and the approximate posterior Q(h1 | v).
    top : (W2 (H1, H2), b2 (H1,), c2 (H2,))
        The top RBM over h1.
    test_data : array (n, D)
        Binary test vectors, n >= 1.
    log_z_top : float
        log Z2 of the top RBM (finite).
    n_samples : int >= 1
        Draws of h1 ~ Q(h1 | v) per test vector.
    seed : int >= 0
        Seed of the stateless sampler.
    batch_size : int >= 1

    Returns
    -------
    BoundResult

    Raises
    ------
    ValueError
        Before any work: parameters that are not finite or of mismatched shapes (the top
        RBM's visible layer must be the lower RBM's hidden layer), non-binary or empty
        ``test_data`` or one with other than D columns, a non-finite ``log_z_top``,
        ``n_samples``, ``seed`` or ``batch_size`` out of range.
    """
    W1, b1, c1 = _rbm("lower", lower)
    W2, b2, c2 = _rbm("top", top)
    if W2.shape[0] != W1.shape[1]:
        raise ValueError(f"top has {W2.shape[0]} visible units; allowed: the lower RBM's "
                         f"{W1.shape[1]} hidden units")
    test_data = check_binary_data("test_data", test_data, W1, b1, c1)
    log_z_top = check.check_float("log_z_top", log_z_top)
    n_samples = check.check_int("n_samples", n_samples, low=1)
    seed = check.check_seed("seed", seed)
    batch_size = check.check_int("batch_size", batch_size, low=1)
    params = [tf.constant(a) for a in (W1, b1, c1, W2, b2, c2)]
    out = []
    for i, start in enumerate(range(0, len(test_data), batch_size)):
        out.append(_bound_terms(tf.constant(test_data[start : start + batch_size]), *params,
                                tf.constant(n_samples), tf.constant([seed, i], tf.int64)).numpy())
    per_example = np.concatenate(out) - log_z_top
    sem = float(per_example.std(ddof=1) / math.sqrt(len(per_example))) if len(per_example) > 1 else float("nan")
    return BoundResult(per_example=per_example, mean=float(per_example.mean()), sem=sem,
                       n_samples=n_samples, log_z_top=log_z_top)


def _rbm(name, params):
    if not isinstance(params, (tuple, list)) or len(params) != 3:
        raise ValueError(f"{name} must be a triple (W, visible_bias, hidden_bias); got "
                         f"{type(params).__name__}")
    try:
        return check_rbm_parameters(*params)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None


@tf.function(reduce_retracing=True)
def _bound_terms(v, W1, b1, c1, W2, b2, c2, n_samples, seed):
    """The mean over draws h1 ~ Q(h1 | v) of log p(v | h1) - F2(h1) - log Q(h1 | v), for
    each row of v (float64; without log Z2).

    The entropy enters through each draw's own -log Q rather than exactly: when Q is the
    true posterior the sum is log p(v) + log Z2 for every draw (no variance at all), and
    near it the draws' errors cancel."""
    logits = tf.matmul(v, W1) + c1  # (n, H1)
    q = tf.sigmoid(logits)
    u = tf.random.stateless_uniform(tf.concat([[n_samples], tf.shape(q)], 0), seed=seed)
    h = tf.cast(u < q[None], v.dtype)  # (S, n, H1)
    # log Q(h | v) = sum_j h_j a_j - softplus(a_j), stable for any logit a.
    log_q = tf.reduce_sum(tf.cast(h * logits[None] - tf.math.softplus(logits)[None], tf.float64), axis=2)
    a = tf.einsum("snh,dh->snd", h, W1) + b1  # (S, n, D)
    log_p_v = tf.reduce_sum(tf.cast(v[None] * a - tf.math.softplus(a), tf.float64), axis=2)
    neg_f2 = (tf.cast(tf.linalg.matvec(h, b2), tf.float64)
              + tf.reduce_sum(tf.cast(tf.math.softplus(tf.einsum("snh,hk->snk", h, W2) + c2),
                                      tf.float64), axis=2))
    return tf.reduce_mean(log_p_v + neg_f2 - log_q, axis=0)
