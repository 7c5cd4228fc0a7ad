"""Deep autoencoder unrolled from a DBN (Hinton & Salakhutdinov 2006, *Science* 313:504).

Greedy pretraining of ``[784, 1000, 500, 250, 30]`` on grey-level images used as
probabilities (``DBN(binarize_input=False)``): Bernoulli RBMs, except the top one whose
hidden units are linear with unit-variance Gaussian noise (their ``rbmhidlinear.m``).
Unrolled, the stack gives an encoder (sigmoid layers, then the linear code) and a decoder
initialised with the *transposed* weights and the visible biases, untied for fine-tuning:

    x -> sigmoid(x W0 + c0) -> ... -> code = h W3 + c3 -> sigmoid(code W3^T + b3) -> ...
      -> reconstruction = sigmoid(h W0^T + b0)

The output units are logistic and the loss is the cross-entropy summed over pixels (the
paper's); the reported metric is the paper's too: the squared error summed over the 784
pixels, averaged over images.

``DeepAutoencoder`` is a Keras model of 2 L ``Dense`` layers (``call`` returns the output
*logits*, so the loss can use ``sigmoid_cross_entropy_with_logits`` without overflow);
``encode``, ``decode``, ``reconstruct`` and ``squared_error`` take and return numpy arrays;
``save``/``keras.models.load_model`` round-trip it, ``export_npz`` writes the plain
arrays ``W0..W{2L-1}``, ``b0..b{2L-1}`` in forward order.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from dbn import validation as check
from dbn.models.classifier import check_layer_sizes
from dbn.models.dbn import DBN
from dbn.seeds import layer_seed
from dbn.training.configs import RBMTrainingConfig

ACTIVATIONS = ("sigmoid", "leaky_relu6")
INITS = ("glorot", "normal")

# Hinton & Salakhutdinov's rbm.m (their mnistdeepauto.m): CD-1, batch 100, 50 epochs,
# learning rate 0.1, weight cost 2e-4, momentum 0.5 then 0.9 after 5 epochs.
AUTOENCODER_LAYER = RBMTrainingConfig(
    n_hidden=1000, epochs=50, batch_size=100, learning_rate=0.1, final_learning_rate=None,
    initial_momentum=0.5, final_momentum=0.9, momentum_switch_epoch=5, k=1, weight_decay=2e-4)
# rbmhidlinear.m: the same with linear-Gaussian hidden units and learning rate 0.001.
CODE_LAYER = dataclasses.replace(AUTOENCODER_LAYER, learning_rate=0.001, hidden_units="gaussian")


def check_autoencoder_sizes(layer_sizes):
    """``[D, H_1, ..., H_L]`` (integers >= 1, L >= 1) whose last entry, the code, is smaller
    than every other layer; returns a tuple."""
    sizes = check_layer_sizes(layer_sizes)
    if any(n <= sizes[-1] for n in sizes[:-1]):
        raise ValueError(f"layer_sizes={list(sizes)}: the code layer (the last, "
                         f"{sizes[-1]} units) must be smaller than every other layer; "
                         "allowed e.g. [784, 1000, 500, 250, 30]")
    return sizes


def autoencoder_layer_configs(layer_sizes, *, bernoulli=AUTOENCODER_LAYER, code=CODE_LAYER):
    """One RBM config per layer: ``bernoulli`` for all but the top, ``code`` (Gaussian
    hidden units) for the top, each with its layer's ``n_hidden``."""
    sizes = check_autoencoder_sizes(layer_sizes)
    for name, config in (("bernoulli", bernoulli), ("code", code)):
        if not isinstance(config, RBMTrainingConfig):
            raise ValueError(f"{name}={config!r} must be an RBMTrainingConfig")
    return [dataclasses.replace(bernoulli if i < len(sizes) - 2 else code, n_hidden=n)
            for i, n in enumerate(sizes[1:])]


def pretrain_stack(x, layer_sizes, *, seed=0, bernoulli=AUTOENCODER_LAYER, code=CODE_LAYER,
                   checkpoint_dir=None, verbose=2, timings=None):
    """Greedy pretraining of the autoencoder's RBM stack on grey levels ``x`` (n, D) in
    [0, 1] (used as probabilities).  With ``checkpoint_dir`` every layer is a verified
    run directory keyed by everything that determines it (``DBN.pretrain``), so stacks
    sharing lower layers (784-1000-500-250-30 and -2) share them.  Returns the ``DBN``."""
    model = DBN(layer_sizes, layer_configs=autoencoder_layer_configs(layer_sizes, bernoulli=bernoulli,
                                                                     code=code),
                binarize_input=False, seed=seed)
    model.pretrain(x, checkpoint_dir=checkpoint_dir, verbose=verbose, timings=timings)
    return model


def leaky_relu6(x, negative_slope=0.2):
    """min(leaky_relu(x), 6): the seed blog's bounded leaky unit."""
    return tf.minimum(tf.nn.leaky_relu(x, alpha=negative_slope), 6.0)


@keras.saving.register_keras_serializable(package="dbn")
class DeepAutoencoder(keras.Model):
    """Encoder ``layer_sizes`` down to a linear code, mirrored decoder, logistic output.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[D, H_1, ..., H_L]`` with the code ``H_L`` the smallest, e.g.
        ``[784, 1000, 500, 250, 30]``.
    activation : {"sigmoid", "leaky_relu6"}, default "sigmoid"
        Hidden units of encoder and decoder (the code is linear, the output logistic).
    init : {"glorot", "normal"}, default "glorot"
        Random initialisation (Glorot-uniform, or N(0, 0.01^2) as in the papers), biases
        0; replaced by ``from_dbn``'s pretrained weights.
    seed : int >= 0

    Examples
    --------
    >>> stack = pretrain_stack(x_train, [784, 1000, 500, 250, 30])
    >>> ae = DeepAutoencoder.from_dbn(stack)
    >>> ae.squared_error(x_test)   # mean over images of the sum over pixels
    """

    def __init__(self, layer_sizes, *, activation="sigmoid", init="glorot", seed=0, **kwargs):
        sizes = check_autoencoder_sizes(layer_sizes)
        activation = check.check_choice("activation", activation, ACTIVATIONS)
        init = check.check_choice("init", init, INITS)
        seed = check.check_seed("seed", seed)
        super().__init__(**kwargs)
        self.layer_sizes, self.activation, self.init, self.seed = sizes, activation, init, int(seed)
        L = len(sizes) - 1
        outputs = list(sizes[1:]) + list(reversed(sizes[:-1]))  # units of layers 0 .. 2L-1
        self.dense = [keras.layers.Dense(n, kernel_initializer=self._initializer(i), name=f"dense_{i}")
                      for i, n in enumerate(outputs)]
        self.n_encoder_layers = L
        self.build((None, sizes[0]))

    def _initializer(self, i):
        s = layer_seed(self.seed, i)
        if self.init == "normal":
            return keras.initializers.RandomNormal(0.0, 0.01, seed=s)
        return keras.initializers.GlorotUniform(seed=s)

    def build(self, input_shape):
        n = int(input_shape[-1])
        for layer in self.dense:
            layer.build((None, n))
            n = layer.units
        self.built = True

    def get_config(self):
        config = super().get_config()
        config.update(layer_sizes=list(self.layer_sizes), activation=self.activation,
                      init=self.init, seed=self.seed)
        return config

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_dbn(cls, stack, *, seed=None):
        """The unrolled autoencoder of a pretrained ``DBN`` whose top layer has Gaussian
        hidden units (``pretrain_stack``): encoder ``(W_i, c_i)``, decoder
        ``(W_i^T, b_i)`` in reverse order, copied (untied)."""
        if not isinstance(stack, DBN):
            raise ValueError(f"stack={stack!r} must be a pretrained dbn.models.dbn.DBN")
        stack._require_pretrained("DeepAutoencoder.from_dbn")
        units = [c.hidden_units for c in stack.layer_configs]
        if units[-1] != "gaussian" or any(u != "bernoulli" for u in units[:-1]):
            raise ValueError(f"DeepAutoencoder.from_dbn needs Bernoulli hidden units below a "
                             f"Gaussian (linear) code layer; got hidden_units={units}")
        model = cls(stack.layer_sizes, seed=stack.seed if seed is None else seed)
        weights = [(r.W.numpy(), r.hidden_bias.numpy()) for r in stack.rbms]
        weights += [(r.W.numpy().T, r.visible_bias.numpy()) for r in reversed(stack.rbms)]
        model.set_arrays(weights)
        return model

    def arrays(self):
        """[(W_i (n_in, n_out), b_i (n_out,)), ...] for the 2 L layers in forward order."""
        return [(layer.kernel.numpy(), layer.bias.numpy()) for layer in self.dense]

    def set_arrays(self, weights):
        """Set every layer from ``arrays()``-shaped pairs (checked: shapes and finite)."""
        if len(weights) != len(self.dense):
            raise ValueError(f"{len(weights)} (W, b) pairs for {len(self.dense)} layers")
        for i, (layer, (W, b)) in enumerate(zip(self.dense, weights)):
            W, b = np.asarray(W, np.float32), np.asarray(b, np.float32)
            if W.shape != tuple(layer.kernel.shape) or b.shape != tuple(layer.bias.shape):
                raise ValueError(f"layer {i}: W {W.shape}, b {b.shape}; allowed "
                                 f"{tuple(layer.kernel.shape)}, {tuple(layer.bias.shape)}")
            if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
                raise ValueError(f"layer {i}: non-finite weights")
            layer.kernel.assign(W)
            layer.bias.assign(b)

    def export_npz(self, path):
        """Write float32 ``W0..W{2L-1}``, ``b0..b{2L-1}`` (forward order; layer i computes
        ``x @ Wi + bi``, then a sigmoid except the code layer L - 1, whose output is
        linear, and the last, whose sigmoid is the reconstruction)."""
        arrays = {}
        for i, (W, b) in enumerate(self.arrays()):
            if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
                raise ValueError(f"refusing to export non-finite weights (layer {i})")
            arrays[f"W{i}"], arrays[f"b{i}"] = W.astype(np.float32), b.astype(np.float32)
        np.savez_compressed(path, **arrays)

    # ---------------------------------------------------------------- maths
    def _hidden(self, x):
        return tf.sigmoid(x) if self.activation == "sigmoid" else leaky_relu6(x)

    def encode_tensor(self, x):
        h = x
        for i, layer in enumerate(self.dense[: self.n_encoder_layers]):
            h = layer(h)
            if i < self.n_encoder_layers - 1:
                h = self._hidden(h)
        return h

    def decode_logits(self, code):
        h = code
        decoder = self.dense[self.n_encoder_layers:]
        for i, layer in enumerate(decoder):
            h = layer(h)
            if i < len(decoder) - 1:
                h = self._hidden(h)
        return h

    def call(self, inputs):
        """Output logits (n, D) of the reconstruction of ``inputs`` (n, D)."""
        return self.decode_logits(self.encode_tensor(tf.cast(inputs, self.compute_dtype)))

    def loss_fn(self, x):
        """Mean over the batch of the cross-entropy summed over pixels (the paper's)."""
        x = tf.cast(x, self.compute_dtype)
        ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=self(x))
        return tf.reduce_mean(tf.reduce_sum(ce, axis=1))

    # ---------------------------------------------------------------- numpy API
    def check_input(self, x, name="x", *, allow_empty=True):
        """Images ``x`` (n, D) for this autoencoder, checked whole (``check_matrix``:
        finite, in [0, 1], D columns), as float32; a ValueError naming ``name``."""
        return check.check_matrix(name, x, n_columns=self.layer_sizes[0], allow_empty=allow_empty,
                                  columns_what="the autoencoder's input size is")

    @staticmethod
    def _batches(x, batch_size):
        """``x`` in consecutive slices of ``batch_size`` (an integer >= 1) rows."""
        batch_size = check.check_int("batch_size", batch_size, low=1)
        return [x[i: i + batch_size] for i in range(0, len(x), batch_size)]

    def _batched(self, fn, x, batch_size=2000):
        out = [fn(tf.constant(b)).numpy() for b in self._batches(x, batch_size)]
        return np.concatenate(out) if out else np.zeros((0,), np.float32)

    def encode(self, x, *, batch_size=2000):
        """Codes (n, H_L) of images ``x`` (n, D), finite in [0, 1]."""
        x = self.check_input(x)
        return self._batched(self.encode_tensor, x, batch_size).reshape(len(x), self.layer_sizes[-1])

    def decode(self, codes, *, batch_size=2000):
        """Reconstructions (n, D), probabilities, of ``codes`` (n, H_L), finite."""
        codes = check.check_matrix("codes", codes, n_columns=self.layer_sizes[-1], low=None, high=None,
                                   columns_what="this autoencoder's code size is")
        out = self._batched(lambda c: tf.sigmoid(self.decode_logits(c)), codes, batch_size)
        return out.reshape(len(codes), self.layer_sizes[0])

    def reconstruct(self, x, *, batch_size=2000):
        """sigmoid(output logits): (n, D) -> (n, D) probabilities."""
        x = self.check_input(x)
        return self._batched(lambda b: tf.sigmoid(self(b)), x, batch_size).reshape(x.shape)

    def squared_error(self, x, *, batch_size=2000):
        """Mean over the rows of ``x`` (n, D) of the squared error summed over pixels
        (the paper's metric), in float64."""
        x = self.check_input(x, allow_empty=False)
        r = self.reconstruct(x, batch_size=batch_size)
        return float(np.mean(np.sum(np.square(x.astype(np.float64) - r), axis=1)))

    def cross_entropy(self, x, *, batch_size=2000):
        """The training loss on ``x`` (n, D): mean over rows of the cross-entropy summed
        over pixels, in float64."""
        x = self.check_input(x, allow_empty=False)
        return sum(float(self.loss_fn(tf.constant(b))) * len(b) for b in self._batches(x, batch_size)) / len(x)


def pca_squared_error(x_train, x_test, n_components):
    """PCA baseline: the principal directions of the centred training set (its SVD), test
    images projected on the first ``n_components`` directions and back; mean over test
    rows of the squared error summed over pixels (float64).  Returns (error, test codes (n, k), (mean (D,),
    basis (k, D)))."""
    x_train = check.check_matrix("x_train", x_train, allow_empty=False, low=None, high=None)
    x_test = check.check_matrix("x_test", x_test, n_columns=x_train.shape[1], allow_empty=False,
                                low=None, high=None)
    k = check.check_int("n_components", n_components, low=1, high=min(x_train.shape))
    mean = x_train.mean(axis=0, dtype=np.float64)
    centred = x_train.astype(np.float64) - mean
    # The right singular vectors of the centred data are the eigenvectors of its scatter
    # matrix (D x D): one matmul and a 784 x 784 eigh instead of a 60,000-row SVD.
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred)
    basis = eigenvectors[:, np.argsort(eigenvalues)[::-1][:k]].T  # (k, D)
    codes = (x_test - mean) @ basis.T
    recon = codes @ basis + mean
    return float(np.mean(np.sum(np.square(x_test - recon), axis=1))), codes, (mean, basis)


def _logit(x, eps=0.05):
    """log(p / (1 - p)) of ``x`` clipped to [eps, 1 - eps] (the starting point's scale)."""
    p = np.clip(x, eps, 1.0 - eps)
    return np.log(p) - np.log1p(-p)


@tf.function(reduce_retracing=True)
def logistic_pca_loss(codes, basis, bias, x):
    """Cross-entropy (nats, summed over rows and pixels) of ``x`` (n, D) in [0, 1] against
    Bernoulli probabilities ``sigmoid(codes @ basis + bias)``, and its gradients.

    With ``z = codes @ basis + bias``: ``loss = sum(softplus(z) - x z)`` (no overflow),
    ``dz = sigmoid(z) - x``, ``d codes = dz @ basis.T``, ``d basis = codes.T @ dz``,
    ``d bias = sum_rows(dz)``.  In the dtype of the tensors given (float32 for the fits,
    float64 for the tests' finite differences); the loss is accumulated in float64 (the
    line search compares losses of about 10^7 nats).  Returns (loss, d codes (n, k),
    d basis (k, D), d bias (D,)).
    """
    z = tf.matmul(codes, basis) + bias
    loss = tf.reduce_sum(tf.cast(tf.reduce_sum(tf.nn.softplus(z) - x * z, axis=1), tf.float64))
    dz = tf.sigmoid(z) - x
    return (loss, tf.matmul(dz, basis, transpose_b=True), tf.matmul(codes, dz, transpose_a=True),
            tf.reduce_sum(dz, axis=0))


def logistic_pca(x_train, x_test, n_components, *, max_iter=500, test_max_iter=300):
    """Logistic PCA (Collins, Dasgupta & Schapire 2001; Schein, Saul & Ungar 2003), the
    2006 paper's second linear baseline (8.01 with 30 components on MNIST).

    Each image ``x`` (pixels in [0, 1], used as probabilities) has a code ``u`` (k,); its
    pixels are Bernoulli with probabilities ``sigmoid(u @ V + b)``.  ``V`` (k, D), ``b``
    (D,) and the training codes maximise the likelihood of the training images
    (``logistic_pca_loss``, L-BFGS on all parameters jointly); then each test image's
    code maximises its own likelihood with ``V`` and ``b`` fixed (products in float32, the
    parameters and losses L-BFGS sees in float64).  Reported as the
    paper's metric: the mean over test rows of the squared error of ``x`` against its
    probabilities, summed over pixels.  Started from PCA of the clipped logits
    (``_logit``): deterministic, no seed.

    Parameters
    ----------
    x_train : array (n, D) in [0, 1]
    x_test : array (m, D) in [0, 1]
    n_components : int in [1, min(n, D)]
    max_iter, test_max_iter : int >= 1
        L-BFGS iterations of the fit and of the test codes.

    Returns
    -------
    error : float
    test_codes : array (m, k)
    (basis (k, D), bias (D,))
    info : dict
        Iterations, evaluations, scipy's messages and the final mean losses per image
        (nats) of the fit and of the test codes.
    """
    from scipy.optimize import minimize

    x_train = check.check_matrix("x_train", x_train, allow_empty=False).astype(np.float64)
    x_test = check.check_matrix("x_test", x_test, n_columns=x_train.shape[1],
                                allow_empty=False).astype(np.float64)
    n, d = x_train.shape
    k = check.check_int("n_components", n_components, low=1, high=min(n, d))
    max_iter = check.check_int("max_iter", max_iter, low=1)
    test_max_iter = check.check_int("test_max_iter", test_max_iter, low=1)
    logits = _logit(x_train)
    bias = logits.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh((logits - bias).T @ (logits - bias))
    basis = eigenvectors[:, np.argsort(eigenvalues)[::-1][:k]].T  # (k, D), orthonormal rows
    codes = (logits - bias) @ basis.T
    shapes = [(n, k), (k, d), (d,)]
    sizes = [int(np.prod(shape)) for shape in shapes]

    def unpack(theta):
        parts = np.split(theta, np.cumsum(sizes)[:-1])
        return [part.reshape(shape) for part, shape in zip(parts, shapes)]

    x_fit = tf.constant(x_train, tf.float32)

    def fit_objective(theta):
        loss, *grads = logistic_pca_loss(*(tf.constant(a, tf.float32) for a in unpack(theta)), x_fit)
        return float(loss), np.concatenate([g.numpy().ravel() for g in grads]).astype(np.float64)

    fit = minimize(fit_objective, np.concatenate([codes.ravel(), basis.ravel(), bias]), jac=True,
                   method="L-BFGS-B", options={"maxiter": max_iter})
    _, basis, bias = unpack(fit.x)

    x_held, fixed = tf.constant(x_test, tf.float32), [tf.constant(a, tf.float32) for a in (basis, bias)]

    def test_objective(flat):
        loss, d_codes, _, _ = logistic_pca_loss(tf.constant(flat.reshape(len(x_test), k), tf.float32),
                                                *fixed, x_held)
        return float(loss), d_codes.numpy().ravel().astype(np.float64)

    start = (_logit(x_test) - bias) @ np.linalg.pinv(basis)  # least squares in logit space
    test = minimize(test_objective, start.ravel(), jac=True, method="L-BFGS-B",
                    options={"maxiter": test_max_iter})
    test_codes = test.x.reshape(len(x_test), k)
    probabilities = 0.5 * (1.0 + np.tanh(0.5 * (test_codes @ basis + bias)))
    error = float(np.mean(np.sum(np.square(x_test - probabilities), axis=1)))
    info = {"fit": {"iterations": int(fit.nit), "evaluations": int(fit.nfev), "message": str(fit.message),
                    "mean_cross_entropy": float(fit.fun) / n},
            "test": {"iterations": int(test.nit), "evaluations": int(test.nfev), "message": str(test.message),
                     "mean_cross_entropy": float(test.fun) / len(x_test)}}
    return error, test_codes, (basis, bias), info
