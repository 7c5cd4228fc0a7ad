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
    from dbn import datasets

    return datasets.load(n_train=MNIST_TRAIN, binarization="threshold")


@pytest.fixture(scope="session")
def mnist_rbm15(mnist_small):
    """A 784x15 RBM trained by CD-1 for 5 epochs on ``mnist_small.x_train``.

    Small enough (2**15 hidden states) for the exact log Z, so AIS can be checked
    against the truth on a model with real, data-shaped weights.
    """
    import keras

    from dbn.rbm import RBM

    keras.utils.set_random_seed(0)
    rbm = RBM(15, k=1, seed=0)
    rbm.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.5))
    rbm.fit(mnist_small.x_train, epochs=5, batch_size=100, shuffle=False, verbose=0)
    assert np.all(np.isfinite(rbm.W.numpy()))
    return rbm
