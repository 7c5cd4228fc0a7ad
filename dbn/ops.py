"""Pure maths of Bernoulli-Bernoulli RBMs, shared by the models, AIS and the tests.

Energy ``E(v, h) = -v.b - h.c - v^T W h`` with ``W`` (D, H), visible bias ``b`` (D,),
hidden bias ``c`` (H,); free energy ``F(v) = -v.b - sum_j softplus(c_j + v W_j)``
(softplus, never ``log(1 + exp)``, so large inputs cannot overflow).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from dbn import validation as check


# --------------------------------------------------------------------------- maths
def hidden_probabilities(v, W, hidden_bias):
    """p(h_j = 1 | v) = sigmoid(c_j + v W_j); v (n, D) -> (n, H)."""
    return tf.sigmoid(tf.matmul(v, W) + hidden_bias)


def visible_probabilities(h, W, visible_bias):
    """p(v_i = 1 | h) = sigmoid(b_i + W_i h); h (n, H) -> (n, D)."""
    return tf.sigmoid(tf.matmul(h, W, transpose_b=True) + visible_bias)


def free_energy(v, W, visible_bias, hidden_bias):
    """F(v) for v (n, D) -> (n,), using softplus so large inputs cannot overflow."""
    return -tf.linalg.matvec(v, visible_bias) - tf.reduce_sum(
        tf.math.softplus(tf.matmul(v, W) + hidden_bias), axis=-1
    )


def logit_base_rate(x, *, eps=1e-3):
    """Visible biases log(p / (1 - p)) of the pixel means p of ``x`` (n, D), clipped.

    This is the initialisation of Hinton's practical guide (section 8) and the
    base-rate model of AIS (Salakhutdinov & Murray 2008).  ``x`` must be non-empty,
    finite and in [0, 1]; ``eps`` in (0, 0.5).
    """
    x = check.check_matrix("x", x, allow_empty=False)
    eps = check.check_float("eps", eps, low=0.0, high=0.5, low_open=True, high_open=True)
    p = np.clip(np.asarray(x, dtype=np.float64).mean(axis=0), eps, 1.0 - eps)
    return np.log(p / (1.0 - p)).astype(np.float32)


def check_rbm_parameters(W, visible_bias, hidden_bias):
    """RBM parameters ``W`` (D, H), ``visible_bias`` (D,), ``hidden_bias`` (H,) as
    float32 arrays: finite, with matching shapes (D, H >= 1); else a ValueError."""
    W = check.check_matrix("W", W, low=None, high=None, allow_empty=False)
    if W.shape[1] == 0:
        raise ValueError(f"W has shape {W.shape}; allowed: (D, H) with D, H >= 1")
    D, H = W.shape
    out = [W]
    for name, bias, size, what in (("visible_bias", visible_bias, D, "W.shape[0]"),
                                   ("hidden_bias", hidden_bias, H, "W.shape[1]")):
        bias = check.check_values(name, bias, low=None, high=None)
        if bias.shape != (size,):
            raise ValueError(f"{name} has shape {bias.shape}; allowed: ({size},) "
                             f"({what} of W with shape {W.shape})")
        out.append(bias)
    return tuple(out)


# --------------------------------------------------------------------------- sampling
def bernoulli(p, uniform):
    """Binary states with P(1) = ``p``, from uniforms of the same shape (TensorFlow)."""
    return tf.cast(uniform < p, p.dtype)


def bernoulli_np(p, rng):
    """Binary float32 states with P(1) = ``p`` (numpy), drawing ``rng.random(p.shape)``."""
    return (rng.random(p.shape) < p).astype(np.float32)
