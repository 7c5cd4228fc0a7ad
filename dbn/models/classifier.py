"""Feed-forward sigmoid classifiers: the unrolled DBN and its randomly initialised twins."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from dbn import validation as check
from dbn.models.rbm import RBM, _check_positive_int
from dbn.ops import hidden_probabilities
from dbn.seeds import OUTPUT_LAYER, layer_seed
from dbn.training.configs import INITS


def check_layer_sizes(layer_sizes):
    """Validate ``[n_visible, n_hidden_1, ...]`` (a list, tuple or 1-D integer array of
    at least two integers >= 1; numpy integers allowed, bools refused); return it as a
    tuple of Python ints."""
    if layer_sizes is not None and not isinstance(layer_sizes, (list, tuple, np.ndarray)):
        raise ValueError(f"layer_sizes={layer_sizes!r} must be a list of layer sizes, "
                         "e.g. [784, 500, 500, 2000]")
    sizes = tuple(np.asarray(layer_sizes).tolist() if isinstance(layer_sizes, np.ndarray)
                  else layer_sizes) if layer_sizes is not None else ()
    if len(sizes) < 2:
        raise ValueError(
            f"layer_sizes={list(sizes)} must list the input size and at least one hidden "
            "layer, e.g. [784, 500, 500, 2000]"
        )
    for i, n in enumerate(sizes):
        try:
            _check_positive_int(f"layer_sizes[{i}]", n)
        except ValueError as err:
            raise ValueError(f"{err} (layer_sizes={list(sizes)})") from None
    return tuple(int(n) for n in sizes)


def dropout_rates(dropout):
    """``(input rate, hidden rate)`` of a classifier's ``dropout`` argument: a number is the
    rate on every hidden and output layer's input (the pixels are kept), a pair
    ``(input, hidden)`` also drops pixels (Srivastava et al. 2014: 0.2 and 0.5).  Every rate
    a finite number in [0, 1); else a ValueError naming ``dropout``."""
    if isinstance(dropout, (list, tuple)):
        if len(dropout) != 2:
            raise ValueError(f"dropout={dropout!r}: allowed: a rate, or a pair (input rate, hidden rate)")
        return tuple(check.check_float(f"dropout[{i}]", r, low=0.0, high=1.0, high_open=True)
                     for i, r in enumerate(dropout))
    return 0.0, check.check_float("dropout", dropout, low=0.0, high=1.0, high_open=True)


def dropout_key(dropout):
    """``dropout`` as recorded in cache keys and results: a number as given (the keys of
    runs cached before pairs existed), a pair as a list."""
    dropout_rates(dropout)
    return list(dropout) if isinstance(dropout, (list, tuple)) else dropout


def build_classifier(layer_sizes, n_classes, *, init="glorot", rbms=None, dropout=0.0, seed=0):
    """Feed-forward classifier ``layer_sizes[0] -> sigmoid layers -> softmax(n_classes)``.

    Parameters
    ----------
    layer_sizes : sequence of int
        Input size and hidden layer sizes (integers >= 1).
    n_classes : int >= 2
    init : {"pretrained", "glorot", "normal"}
        Hidden layers from the RBMs' ``W`` and ``hidden_bias`` (``rbms`` required),
        Keras' default Glorot-uniform, or N(0, 0.01^2) as in the original papers.
        Biases start at 0 for random inits; the output layer is always Glorot/zeros.
    rbms : list of RBM, optional
        One built RBM per layer, sizes matching ``layer_sizes`` (``init="pretrained"``).
    dropout : float in [0, 1), or a pair (input rate, hidden rate)
        A number: dropout on the input of every Dense layer after the first (0
        disables).  A pair: also on the pixels, at the first rate (``dropout_rates``).
    seed : int >= 0
    """
    sizes = check_layer_sizes(layer_sizes)
    n_classes = check.check_int("n_classes", n_classes, low=2)  # a 1-class softmax is constant
    init = check.check_choice("init", init, INITS)
    input_dropout, dropout = dropout_rates(dropout)
    seed = check.check_seed("seed", seed)
    if rbms is not None and (not isinstance(rbms, (list, tuple))
                             or not all(isinstance(r, RBM) and r.built for r in rbms)):
        raise ValueError(f"rbms={rbms!r} must be a list of built (trained) RBMs, one per layer")
    if init == "pretrained":
        if rbms is None or [(r.n_visible, r.n_hidden) for r in rbms] != list(zip(sizes[:-1], sizes[1:])):
            raise ValueError("init='pretrained' needs one trained RBM per layer matching layer_sizes")
    def kernel(i):  # seeded per layer: seeded Keras initializers are stateless
        layer_seed_ = layer_seed(seed, i)
        if init == "normal":
            return keras.initializers.RandomNormal(0.0, 0.01, seed=layer_seed_)
        return keras.initializers.GlorotUniform(seed=layer_seed_) if init == "glorot" else "zeros"

    model = keras.Sequential(name=f"dbn_classifier_{init}")
    model.add(keras.Input((sizes[0],)))
    if input_dropout:
        model.add(keras.layers.Dropout(input_dropout, seed=seed + len(sizes) + 1, name="input_dropout"))
    for i, n in enumerate(sizes[1:]):
        if dropout and i > 0:
            model.add(keras.layers.Dropout(dropout, seed=seed + i))
        model.add(keras.layers.Dense(n, activation="sigmoid", name=f"hidden_{i}",
                                     kernel_initializer=kernel(i)))
    if dropout:
        model.add(keras.layers.Dropout(dropout, seed=seed + len(sizes)))
    model.add(keras.layers.Dense(n_classes, activation="softmax", name="output",
                                 kernel_initializer=keras.initializers.GlorotUniform(seed=layer_seed(seed, OUTPUT_LAYER))))
    if init == "pretrained":
        for i, rbm in enumerate(rbms):
            model.get_layer(f"hidden_{i}").set_weights([rbm.W.numpy(), rbm.hidden_bias.numpy()])
    return model


def hidden_layers(model):
    """The sigmoid hidden ``Dense`` layers of a ``build_classifier`` model, in order."""
    return [layer for layer in model.layers if layer.name.startswith("hidden_")]


def upward_pass(rbms, x):
    """Hidden probabilities of every layer, list of arrays (n, H_l) (for tests)."""
    outs, h = [], tf.constant(np.asarray(x, np.float32))
    for rbm in rbms:
        h = hidden_probabilities(h, rbm.W, rbm.hidden_bias)
        outs.append(h.numpy())
    return outs
