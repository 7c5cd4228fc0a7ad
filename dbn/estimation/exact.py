"""Exact log partition function of small RBMs by enumeration (float64), the oracle that
AIS and every likelihood test are checked against."""

from __future__ import annotations

import numpy as np

from dbn import validation as check
from dbn.ops import check_rbm_parameters


MAX_EXACT_UNITS = 20


def _enumerate_binary(n):
    """All 2**n binary vectors of length n, shape (2**n, n), float64."""
    codes = np.arange(2**n, dtype=np.int64)[:, None]
    return ((codes >> np.arange(n, dtype=np.int64)) & 1).astype(np.float64)


def _logsumexp(a, axis=None):
    top = np.max(a, axis=axis, keepdims=True)
    return np.squeeze(top, axis=axis) + np.log(np.sum(np.exp(a - top), axis=axis))


def exact_log_partition(W, visible_bias, hidden_bias, *, n_labels=0, chunk=1 << 14,
                        hidden_units="bernoulli"):
    """log Z by exhaustive summation over the smaller layer (<= 20 units), in float64.

    With ``hidden_units="gaussian"`` (linear units, unit-variance noise) the hidden states
    are integrated out exactly and the sum runs over the visible states (D <= 20):
    log Z = logsumexp_v [b.v + |c + v W|^2 / 2] + (H / 2) log(2 pi).

    Parameters
    ----------
    W : array (D, H)
    visible_bias : array (D,)
    hidden_bias : array (H,)
    n_labels : int
        The last ``n_labels`` visible units are one softmax group (one-hot states
        only); the sum then runs over the hidden states.  ``0 <= n_labels < D``.

    All parameters must be finite, the biases of lengths D and H.
    """
    W, b, c = check_rbm_parameters(W, visible_bias, hidden_bias)
    W, b, c = (np.asarray(a, np.float64) for a in (W, b, c))
    D, H = W.shape
    n_labels = check.check_int("n_labels", n_labels, low=0, high=D - 1)
    chunk = check.check_int("chunk", chunk, low=1)
    hidden_units = check.check_choice("hidden_units", hidden_units, ("bernoulli", "gaussian"))
    if hidden_units == "gaussian":
        if n_labels:
            raise ValueError(f"n_labels={n_labels} with hidden_units='gaussian': not "
                             "implemented; allowed: n_labels=0")
        if D > MAX_EXACT_UNITS:
            raise ValueError(f"exact log Z of a Gaussian-hidden RBM enumerates 2**{D} visible "
                             f"states; allowed D <= {MAX_EXACT_UNITS}")
        states = _enumerate_binary(D)
        logp = np.concatenate([s @ b + 0.5 * np.square(s @ W + c).sum(axis=1)
                               for s in np.array_split(states, max(1, len(states) // chunk))])
        return float(_logsumexp(logp) + 0.5 * H * np.log(2.0 * np.pi))
    n_enum = H if n_labels else min(D, H)
    if n_enum > MAX_EXACT_UNITS:
        raise ValueError(
            f"exact log Z enumerates 2**{n_enum} states (D={D}, H={H}, n_labels={n_labels}); "
            f"allowed <= 2**{MAX_EXACT_UNITS}. Use dbn.estimation.ais for larger models."
        )
    K = n_labels
    if n_labels or H <= D:
        # sum over h: log p*(h) = c.h + sum_i softplus(b_i + W_i h) [+ log sum_k exp(b_k + W_k h)]
        n, own, other, M = H, c, b[: D - K], W[: D - K].T
    else:  # sum over v: log p*(v) = b.v + sum_j softplus(c_j + v W_j)
        n, own, other, M = D, b, c, W
    states = _enumerate_binary(n)
    parts = []
    for start in range(0, len(states), chunk):
        s = states[start : start + chunk]
        logp = s @ own + np.logaddexp(0.0, s @ M + other).sum(axis=1)
        if K:
            logp += _logsumexp(s @ W[D - K :].T + b[D - K :], axis=1)
        parts.append(logp)
    logp = np.concatenate(parts)
    top = logp.max()
    return float(top + np.log(np.exp(logp - top).sum()))
