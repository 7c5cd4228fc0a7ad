"""Pure maths of RBMs by hidden unit type, shared by the models, AIS and the tests.

Bernoulli hidden units: energy ``E(v, h) = -v.b - h.c - v^T W h`` with ``W`` (D, H),
visible bias ``b`` (D,), hidden bias ``c`` (H,), h in {0, 1}^H; free energy
``F(v) = -v.b - sum_j softplus(c_j + v W_j)`` (softplus, never ``log(1 + exp)``, so large
inputs cannot overflow).

Linear hidden units with unit-variance Gaussian noise (Hinton & Salakhutdinov 2006, the
code layer of the deep autoencoder): h in R^H and ``E(v, h) = -v.b - h.c - v^T W h +
|h|^2 / 2``, so p(h | v) = N(c + v W, I), p(v | h) is the same sigmoid as above, and
integrating h out gives ``F(v) = -v.b - sum_j (c_j + v W_j)^2 / 2 - (H / 2) log(2 pi)``.
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


def matmul(a, b, *, transpose_a=False, transpose_b=False, precision="float32"):
    """``a @ b`` (either transposed if asked).  ``precision="bfloat16"``: both operands are
    rounded to bfloat16 (8-bit significand; oneDNN multiplies them with AVX512_BF16 where
    the CPU has it and accumulates in float32) and the product, returned in bfloat16, is
    cast back to ``a``'s dtype: relative error about 2**-8 per entry."""
    if precision == "bfloat16":
        out = tf.matmul(tf.cast(a, tf.bfloat16), tf.cast(b, tf.bfloat16), transpose_a=transpose_a,
                        transpose_b=transpose_b)
        return tf.cast(out, a.dtype)
    return tf.matmul(a, b, transpose_a=transpose_a, transpose_b=transpose_b)


def linear_hidden_means(v, W, hidden_bias):
    """E[h | v] = c + v W for linear-Gaussian hidden units; v (n, D) -> (n, H)."""
    return tf.matmul(v, W) + hidden_bias


def free_energy_linear_hidden(v, W, visible_bias, hidden_bias):
    """F(v) of an RBM with unit-variance linear-Gaussian hidden units, v (n, D) -> (n,):
    -v.b - |c + v W|^2 / 2 - (H / 2) log(2 pi) (the Gaussian integral over h; exact)."""
    mean = linear_hidden_means(v, W, hidden_bias)
    n_hidden = tf.cast(tf.shape(W)[1], v.dtype)
    return (-tf.linalg.matvec(v, visible_bias) - 0.5 * tf.reduce_sum(tf.square(mean), axis=-1)
            - 0.5 * n_hidden * tf.cast(np.log(2.0 * np.pi), v.dtype))


HIDDEN_UNITS = ("bernoulli", "gaussian")


def hidden_means(v, W, hidden_bias, hidden_units="bernoulli", precision="float32"):
    """E[h | v] for ``hidden_units`` in ``HIDDEN_UNITS``: p(h = 1 | v) for Bernoulli
    units, c + v W for linear-Gaussian ones; v (n, D) -> (n, H); the product v W in
    ``precision`` (``matmul``)."""
    x = matmul(v, W, precision=precision) + hidden_bias
    return x if hidden_units == "gaussian" else tf.sigmoid(x)


def free_energy_of(v, W, visible_bias, hidden_bias, hidden_units="bernoulli"):
    """F(v) for ``hidden_units`` in ``HIDDEN_UNITS``; v (n, D) -> (n,)."""
    if hidden_units == "gaussian":
        return free_energy_linear_hidden(v, W, visible_bias, hidden_bias)
    return free_energy(v, W, visible_bias, hidden_bias)


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


def gaussian(mean, normal):
    """Unit-variance Gaussian states around ``mean``, from standard normals ``normal`` of
    the same shape (TensorFlow)."""
    return mean + normal


def bernoulli_np(p, rng):
    """Binary float32 states with P(1) = ``p`` (numpy), drawing ``rng.random(p.shape)``."""
    return (rng.random(p.shape) < p).astype(np.float32)


# --------------------------------------------------------------------------- tempered path
# The path of AIS, RAISE and parallel tempering from a base-rate model A (W = 0, visible
# biases b_A, hidden biases 0) at beta = 0 to the RBM at beta = 1 (Salakhutdinov & Murray
# 2008): log p*_beta(v) = (1 - beta) b_A.v + beta b.v + sum_j softplus(beta (c_j + v W_j)).
def log_p_star(v_dot_b, v_dot_b_base, x, beta):
    """log p*_beta(v) (float64 with float64 inputs), from v.b (n,), v.b_A (n,) and
    x = v W + c (n, H); ``beta`` a scalar or (n,).

    Use float64: x is the same for two temperatures of an AIS increment, so rounding
    cancels in their difference."""
    beta = tf.convert_to_tensor(beta, dtype=x.dtype)
    column = beta[..., None] if beta.shape.rank == 1 else beta
    return ((1.0 - beta) * v_dot_b_base + beta * v_dot_b
            + tf.reduce_sum(tf.math.softplus(column * x), axis=1))


def path_statistics(v, W, b, c, b_base):
    """(v.b, v.b_A) in float64 and x = v W + c in float32, for ``log_p_star``."""
    return (tf.cast(tf.linalg.matvec(v, b), tf.float64),
            tf.cast(tf.linalg.matvec(v, b_base), tf.float64),
            tf.matmul(v, W) + c)


def tempered_gibbs_step(x32, beta, W, b, b_base, uniform_h, uniform_v):
    """One Gibbs sweep h ~ p_beta(h | v), v' ~ p_beta(v | h), from x32 = v W + c (float32)
    and uniforms of the shapes of h and v; ``beta`` a scalar or a column (n, 1) (one
    temperature per chain).  It leaves p_beta(v) invariant and is reversible with respect
    to it (the reverse of a sweep is a sweep), which AIS, RAISE and parallel tempering
    rely on."""
    beta32 = tf.cast(beta, tf.float32)
    h = bernoulli(tf.sigmoid(beta32 * x32), uniform_h)
    pv = tf.sigmoid((1.0 - beta32) * b_base + beta32 * (tf.matmul(h, W, transpose_b=True) + b))
    return bernoulli(pv, uniform_v)
