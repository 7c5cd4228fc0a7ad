"""``precision="bfloat16"``: bfloat16 matrix products in RBM training (dbn.ops.matmul),
float32 weights, updates and statistics."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from dbn.models.rbm import RBM
from dbn.ops import matmul
from dbn.training.configs import RBMTrainingConfig
from dbn.training.pretrain import build_rbm, rbm_spec


@pytest.mark.parametrize("transpose_a, transpose_b", [(False, False), (True, False), (False, True)])
def test_bfloat16_matmul_error_is_bounded_by_its_rounding(transpose_a, transpose_b):
    """Each operand is rounded to 8 significant bits (relative error <= 2**-9), the float32
    accumulation adds ~K * 2**-24, the bfloat16 result another 2**-9: |error| <= (3 * 2**-9
    + 1e-5) * sum_k |a_ik b_kj| entry by entry.  A float32 product would be ~1000x closer
    (checked), a transposition mix-up or a missing cast far off."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(100, 784)).astype(np.float32)
    b = rng.normal(size=(784, 50)).astype(np.float32)
    A, B = (a.T.copy() if transpose_a else a), (b.T.copy() if transpose_b else b)
    out = matmul(tf.constant(A), tf.constant(B), transpose_a=transpose_a, transpose_b=transpose_b,
                 precision="bfloat16").numpy()
    assert out.dtype == np.float32
    exact = a.astype(np.float64) @ b
    bound = (3 * 2.0**-9 + 1e-5) * (np.abs(a) @ np.abs(b))
    assert np.all(np.abs(out - exact) <= bound)
    assert np.abs(out - exact).max() > 1e-3  # really rounded: float32 errs ~1e-5 here
    f32 = matmul(tf.constant(A), tf.constant(B), transpose_a=transpose_a, transpose_b=transpose_b).numpy()
    assert np.abs(f32 - exact).max() < 1e-3


def test_bfloat16_cd_gradient_is_the_float32_one_within_rounding():
    """Same model, same data, same random stream: the CD-1 statistics of the two precisions
    differ only through the rounded products (and the few hidden/visible samples whose
    uniform falls between the two probabilities).  That difference must be small against
    CD's own sampling noise, the difference between two float32 gradients from different
    random streams: below a tenth of it (measured: 1/70 with oneDNN's bfloat16 kernels,
    1/40 with Eigen's, TF_ENABLE_ONEDNN_OPTS=0)."""
    rng = np.random.default_rng(1)
    x = (rng.random((500, 100)) < 0.3).astype(np.float32)
    W0 = rng.normal(0, 0.1, (100, 40)).astype(np.float32)

    def gradient(precision, seed):
        rbm = RBM(40, seed=seed, precision=precision)
        rbm.initialize_from_data(x)
        rbm.W.assign(W0)
        return rbm.contrastive_divergence(tf.constant(x))[0][0].numpy()

    reference = gradient("float32", 0)
    rounding = np.abs(gradient("bfloat16", 0) - reference).mean()
    sampling = np.abs(gradient("float32", 1) - reference).mean()
    assert 0 < rounding < 0.1 * sampling, (rounding, sampling)  # > 0: really rounded


def test_bfloat16_training_learns_like_float32():
    """Two bars on 10 pixels (a tiny model, exact log-likelihood): bfloat16 training gains
    what float32 training gains, within 0.1 nats (the float32 run gains ~2.5)."""
    rng = np.random.default_rng(0)
    first = rng.random(400) < 0.5
    x = np.zeros((400, 10), np.float32)
    x[first, :5] = 1
    x[~first, 5:] = 1
    x = np.abs(x - (rng.random(x.shape) < 0.05)).astype(np.float32)
    gains = {}
    for precision in ("float32", "bfloat16"):
        keras.utils.set_random_seed(0)
        rbm = RBM(4, seed=0, precision=precision)
        rbm.initialize_from_data(x)
        before = rbm.log_likelihood_exact(x)
        rbm.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.5))
        rbm.fit(x, epochs=15, batch_size=20, shuffle=False, verbose=0)
        gains[precision] = rbm.log_likelihood_exact(x) - before
    assert gains["float32"] > 2.0
    assert abs(gains["bfloat16"] - gains["float32"]) < 0.1, gains


def test_precision_in_keys_only_when_not_float32_and_bad_values():
    assert "precision" not in RBMTrainingConfig().to_dict()
    assert RBMTrainingConfig(precision="bfloat16").to_dict()["precision"] == "bfloat16"
    assert "precision" not in rbm_spec(build_rbm(RBMTrainingConfig(n_hidden=3)))
    assert rbm_spec(build_rbm(RBMTrainingConfig(n_hidden=3, precision="bfloat16")))["precision"] == "bfloat16"
    for bad in ("float16", "bf16", True, None):
        with pytest.raises(ValueError, match="precision"):
            RBM(3, precision=bad)
        with pytest.raises(ValueError, match="precision"):
            RBMTrainingConfig(precision=bad)
