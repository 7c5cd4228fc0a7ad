"""Shared fixtures for the RBM and AIS tests: small MNIST data and a trained 784x15 RBM.

Both are session-scoped so that the MNIST loading (checksums) and the training happen
once for the whole run.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

MNIST_TRAIN = 3000


@pytest.fixture(scope="session")
def mnist_small():
    """3000 training and 10000 validation MNIST images, thresholded at 0.5 (seed 0)."""
    from dbn import data as datasets

    return datasets.load(n_train=MNIST_TRAIN, binarization="threshold")


@pytest.fixture(scope="session")
def mnist_rbm15(mnist_small):
    """A 784x15 RBM trained by CD-1 for 5 epochs on ``mnist_small.x_train``.

    Small enough (2**15 hidden states) for the exact log Z, so AIS can be checked
    against the truth on a model with real, data-shaped weights.
    """
    import keras

    from dbn.models.rbm import RBM

    keras.utils.set_random_seed(0)
    rbm = RBM(15, k=1, seed=0)
    rbm.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.5))
    rbm.fit(mnist_small.x_train, epochs=5, batch_size=100, shuffle=False, verbose=0)
    assert np.all(np.isfinite(rbm.W.numpy()))
    return rbm


# --------------------------------------------------------------------------- float32 tolerances
# The model computes in float32 (TensorFlow, oneDNN on x86); the tests' references are
# float64 or float32 computations that add in another order.  How far apart two such
# results may be follows from the computation, not from what one CPU happened to give:
# oneDNN picks its blocking (and so its order of additions) by CPU (AVX2, AVX-512, ...),
# Eigen reduces in trees, numpy sums pairwise.
EPS32 = float(np.finfo(np.float32).eps)  # 2**-23 = 1.19e-7; unit roundoff u = EPS32 / 2


def float32_sum_tol(n_terms, magnitude, *, worst_case=False):
    """Tolerance for a float32 sum of ``n_terms`` terms against the exact value or another
    float32 evaluation in any order (sequential, pairwise, blocked).

    ``magnitude`` bounds the partial sums: ``m`` for a mean over rows of values in
    [-m, m] (summed as terms of size m / n), ``sum_i |x_i y_i|`` for a dot product.

    Every addition rounds by at most u * |partial sum| = EPS32 / 2 * magnitude.
    ``worst_case=True``: all n roundings of both evaluations in one direction,
    n * EPS32 * magnitude (Higham, *Accuracy and Stability of Numerical Algorithms*,
    2002, eq. 4.3).  Default: the roundings add like a random walk (Higham section 2.8,
    the observed behaviour of long float32 accumulations), standard deviation
    <= sqrt(n) * u * magnitude per evaluation; 4 * sqrt(n) * EPS32 * magnitude is more
    than five standard deviations of the difference of two evaluations.  Use it where
    the worst case would be as large as the error of the bug a test must catch (a mean
    over 20,000 rows: worst case 2.4e-3, Monte-Carlo noise of sampled states 3.5e-3).
    Both add 8 * EPS32 * magnitude for the few roundings outside the accumulation
    (products, the division of a mean, a sigmoid, the float32 cast of a reference).
    """
    n = max(int(n_terms), 1)
    spread = n if worst_case else 4.0 * np.sqrt(n)
    return float((spread + 8.0) * EPS32 * magnitude)


def float32_free_energy_tol(v, W, visible_bias, hidden_bias):
    """Per-row worst-case rounding bound (n,) of the float32 free energy
    F(v) = -v.b - sum_j softplus(c_j + v W_j) of ``dbn.ops.free_energy`` against its
    exact value: each pre-activation is a sum of D products (partial sums bounded by
    |c_j| + |v| |W_j|) whose error passes through softplus (slope <= 1), then D + H terms
    are added (partial sums bounded by |v| |b| + sum_j softplus(|a_j|))."""
    v, W, b, c = (np.abs(np.asarray(a, np.float64)) for a in (v, W, visible_bias, hidden_bias))
    v = np.atleast_2d(v)
    D, H = W.shape
    pre = v @ W + c
    outer = v @ b + np.logaddexp(0.0, pre).sum(axis=1)
    return (float32_sum_tol(D, 1.0, worst_case=True) * pre.sum(axis=1)
            + float32_sum_tol(D + H, 1.0, worst_case=True) * outer)
