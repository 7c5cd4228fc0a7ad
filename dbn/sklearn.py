"""scikit-learn estimators: ``RBMTransformer`` (a Bernoulli RBM as a feature transformer)
and ``DBNClassifier`` (greedy DBN pretraining, then backprop fine-tuning).

Both wrap the package's own models and training code -- ``dbn.models.rbm.RBM`` trained by
``dbn.training.pretrain.train_rbm``, ``dbn.models.dbn.DBN`` unrolled by
``dbn.models.classifier.build_classifier`` and trained by ``dbn.training.finetune`` -- so
an estimator trains exactly as the package does.  Their parameters are the fields of
``RBMTrainingConfig`` and ``FineTuneConfig`` (the defaults are the configs' defaults and
every bound is the configs' constraint table, checked in ``fit`` with a ValueError naming
the parameter), and they follow scikit-learn's conventions: ``__init__`` only stores the
parameters, ``fit`` validates them, fitted attributes end in ``_``, ``random_state`` (an
int, None or a ``numpy.random.RandomState``) is turned into one integer seed per fit,
and fitted estimators pickle (the Keras models inside are stored as their configuration
and weights).

A Bernoulli RBM models binary data: ``X`` must hold values in [0, 1] (binary, or grey
levels / probabilities); anything else is refused with a ValueError, never clipped.
Scale images to [0, 1] first (``X / 16`` for scikit-learn's 8x8 digits,
``sklearn.preprocessing.MinMaxScaler(clip=True)`` in a pipeline).

Needs scikit-learn >= 1.6 (``pip install dbn[sklearn]``); ``import dbn`` never imports it.
``EXPECTED_FAILED_CHECKS`` lists the checks of ``sklearn.utils.estimator_checks`` that
cannot pass, with the reason, for ``parametrize_with_checks(expected_failed_checks=...)``.
"""

from __future__ import annotations

import re

try:  # before TensorFlow: a missing scikit-learn fails at once, with the way out
    import sklearn
    from sklearn.base import (BaseEstimator, ClassifierMixin, ClassNamePrefixFeaturesOutMixin,
                              TransformerMixin)
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data
except ImportError as err:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(f"dbn.sklearn needs scikit-learn >= 1.6 ({err}): pip install dbn[sklearn]"
                      ) from err

_SKLEARN_VERSION = tuple(int(p) for p in re.match(r"(\d+)\.(\d+)", sklearn.__version__).groups())
if _SKLEARN_VERSION < (1, 6):  # pragma: no cover
    raise ImportError(f"dbn.sklearn needs scikit-learn >= 1.6 (found {sklearn.__version__}): "
                      "pip install dbn[sklearn]")

import contextlib  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from dbn import validation as check  # noqa: E402
from dbn.data import pipeline  # noqa: E402
from dbn.models.classifier import INITS, build_classifier, dropout_rates  # noqa: E402
from dbn.models.dbn import DBN  # noqa: E402
from dbn.models.rbm import RBM  # noqa: E402
from dbn.ops import free_energy  # noqa: E402
from dbn.training.configs import HINTON_LAYER, FineTuneConfig, RBMTrainingConfig  # noqa: E402
from dbn.training.finetune import fine_tune, fit_schedule, refit_schedule  # noqa: E402
from dbn.training.pretrain import build_rbm, epoch_batches, train_rbm  # noqa: E402

__all__ = ["DBNClassifier", "EXPECTED_FAILED_CHECKS", "RBMTransformer"]

# Seeds drawn from ``random_state`` lie in [0, SEED_BOUND): a DBN derives layer seeds
# seed * 1000 + layer (dbn.seeds, up to layer 999 for the softmax layer) and hands them to
# keras.utils.set_random_seed, whose numpy seed must be < 2**32.
SEED_BOUND = 2**22

# Rows per forward pass at prediction time (bounds the memory of large inputs).
_PREDICT_ROWS = 10_000

_RBM_DEFAULTS = RBMTrainingConfig()
_FINETUNE_DEFAULTS = FineTuneConfig()
_RBM_CONSTRAINTS = RBMTrainingConfig.CONSTRAINTS
_FINETUNE_CONSTRAINTS = FineTuneConfig.CONSTRAINTS
# The config fields the estimators expose as parameters (a field added to a config later
# keeps its default here until it is added to these lists and to the signatures).
_RBM_FIELDS = ("n_hidden", "epochs", "batch_size", "learning_rate", "final_learning_rate",
               "initial_momentum", "final_momentum", "momentum_switch_epoch", "k", "final_k",
               "persistent", "n_chains", "weight_decay", "sparsity_target", "sparsity_cost",
               "fast_learning_rate", "fast_decay", "n_temperatures")
_FINETUNE_FIELDS = ("optimizer", "learning_rate", "momentum", "batch_size", "max_epochs",
                    "patience", "output_only_epochs", "plateau_factor", "plateau_patience",
                    "refit")


# --------------------------------------------------------------------------- helpers
def _seed(random_state):
    """One integer seed in [0, SEED_BOUND) from ``random_state`` (int, None or a
    RandomState): deterministic for an int, drawn from numpy's global stream for None,
    drawn from (and advancing) a RandomState instance -- scikit-learn's convention."""
    if isinstance(random_state, (bool, np.bool_)):
        raise ValueError(f"random_state={random_state!r} must be an int, None or a "
                         "numpy.random.RandomState")
    try:
        rng = check_random_state(random_state)
    except ValueError:
        raise ValueError(f"random_state={random_state!r} must be an int in [0, 2**32 - 1], None "
                         "or a numpy.random.RandomState") from None
    return int(rng.randint(SEED_BOUND))


def _check_unit_interval(name, x, whom):
    """``x`` (already 2-D and numeric) as float32, finite and in [0, 1] (the package's
    check); negative values get scikit-learn's standard phrase in front of the message."""
    try:
        return check.check_values(name, x, low=0.0, high=1.0)
    except ValueError as err:
        x = np.asarray(x)
        if x.size and np.nanmin(x) < 0:
            raise ValueError(f"Negative values in data passed to {whom}: {err} (a Bernoulli "
                             "RBM models binary data; scale it to [0, 1] first)") from None
        raise ValueError(f"{err} (passed to {whom}: a Bernoulli RBM models binary data; scale "
                         "it to [0, 1] first)") from None


def _validated_settings(estimator, table):
    """``{field: value}`` for ``table`` = ``{parameter name: (field, constraint)}``, each
    parameter of ``estimator`` checked by its config constraint under its own name."""
    return {field: constraint(name, getattr(estimator, name))
            for name, (field, constraint) in table.items()}


def _config(cls, settings, table):
    """``cls(**settings)``; a cross-field error of the config (``final_k=2 must be >=
    k=3``) is reported with the estimator's parameter names from ``table``."""
    try:
        return cls(**settings)
    except ValueError as err:
        names = {field: name for name, (field, _) in table.items()}
        pattern = r"\b(" + "|".join(sorted(names, key=len, reverse=True)) + r")="
        raise ValueError(re.sub(pattern, lambda m: f"{names[m.group(1)]}=", str(err))) from None


def _keras_state(model):
    """A Keras model as plain, picklable data: its configuration and weights."""
    return {"class": type(model).__name__, "config": model.get_config(),
            "input_width": int(model.weights[0].shape[0]),
            "weights": [np.array(w) for w in model.get_weights()]}


def _from_keras_state(state):
    if state["class"] == "RBM":
        model = RBM.from_config(state["config"])
    else:
        model = keras.Sequential.from_config(state["config"])
    model.build((None, state["input_width"]))
    model.set_weights(state["weights"])
    return model


class _PicklesKeras:
    """Pickling for estimators that hold Keras models in the fitted attributes named in
    ``_KERAS_ATTRIBUTES``: they are stored as configuration + weights (numpy) and rebuilt
    on unpickling, so the estimator predicts exactly as before."""

    _KERAS_ATTRIBUTES = ()

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: never change the live estimator
        for name in self._KERAS_ATTRIBUTES:
            if name in state:
                state[name] = _keras_state(state[name])
        return state

    def __setstate__(self, state):
        state = dict(state)
        for name in self._KERAS_ATTRIBUTES:
            if name in state:
                state[name] = _from_keras_state(state[name])
        super().__setstate__(state)


@contextlib.contextmanager
def _global_random_state_kept():
    """Restore Python's and numpy's global random state afterwards: fitting seeds them
    (``keras.utils.set_random_seed``, as ``DBN.pretrain`` does), which would otherwise
    change the stream that ``random_state=None`` draws from elsewhere in the caller's
    program.  (TensorFlow's global seed stays set, as after ``DBN.pretrain``.)"""
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


# --------------------------------------------------------------------------- RBM
# Parameter -> (RBMTrainingConfig field, constraint): the config's table, one source of
# bounds.  n_components is scikit-learn's name of the output width (the config's n_hidden).
_RBM_PARAMETERS = {("n_components" if f == "n_hidden" else f): (f, _RBM_CONSTRAINTS[f])
                   for f in _RBM_FIELDS}
BINARIZATIONS = pipeline.BINARIZATIONS


class RBMTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, _PicklesKeras,
                     BaseEstimator):
    """Bernoulli RBM features (``dbn.models.rbm.RBM``), trained as ``train_rbm`` trains it.

    Training is the package's recipe (``RBMTrainingConfig``, whose defaults these are):
    SGD with batch-averaged CD-k (or PCD) gradients, the learning rate decaying linearly
    from ``learning_rate`` to ``final_learning_rate``, momentum ``initial_momentum`` for
    ``momentum_switch_epoch`` epochs then ``final_momentum``, visible biases initialised
    to the logits of the pixel means (Hinton's guide), and each epoch's shuffle and
    binarization a function of (seed, epoch).

    Parameters
    ----------
    n_components : int >= 1, default 500
        Number of hidden units (the output width of ``transform``).
    epochs : int >= 1, default 20
        Passes over the data.
    batch_size : int >= 1, default 100
    learning_rate : float > 0, default 0.05
        SGD learning rate (gradients are averaged over the batch, so it does not depend
        on ``batch_size``).
    final_learning_rate : float >= 0 or None, default 0.0
        Learning rate reached at the end of training by linear decay (None: constant).
    initial_momentum : float in (0, 1], default 0.5
    final_momentum : float in [0, 1], default 0.9
    momentum_switch_epoch : int >= 0, default 5
        Epochs trained with ``initial_momentum`` before switching to ``final_momentum``.
    k : int >= 1, default 1
        Gibbs steps of CD-k / PCD-k.
    final_k : int >= k or None, default None
        Raise k linearly from ``k`` to ``final_k`` over the epochs (None: constant).
    persistent : bool, default False
        Persistent contrastive divergence (PCD) instead of CD.
    n_chains : int >= 1, default 100
        Persistent chains (PCD only).
    weight_decay : float >= 0, default 0.0
        L2 cost on the weights (not the biases).
    sparsity_target : float in (0, 1) or None, default None
    sparsity_cost : float >= 0, default 0.0
        Hinton's sparsity target and its cost.
    fast_learning_rate : float > 0 or None, default None
        Fast weights (FPCD); needs ``persistent``.
    fast_decay : float in [0, 1), default 0.95
    n_temperatures : int >= 1, default 1
        Parallel tempering with this many temperatures (needs ``persistent``).
    binarization : {"stochastic", "threshold", "none"}, default "stochastic"
        How training sees ``X``: ``"stochastic"`` draws binary pixels from Bernoulli(X)
        anew every epoch (how the package trains on grey-level MNIST; binary ``X`` is
        unchanged by it), ``"threshold"`` uses ``X > 0.5``, ``"none"`` trains on the
        values of ``X`` as probabilities (an RBM with ``visible_data="probabilities"``,
        as scikit-learn's ``BernoulliRBM`` does).  ``transform``, ``score_samples`` and
        ``gibbs`` always take ``X`` as given.
    random_state : int, RandomState instance or None, default None
        Drawn once per ``fit`` into an integer seed that seeds the weights, the batches,
        the binarization and the Gibbs sampler: an int gives identical fits, whatever ran
        before (``fit`` sets Keras' global seeds, as ``DBN.pretrain`` does, then restores
        numpy's and Python's global random state; TensorFlow's global seed stays set).
    verbose : int, default 0
        Keras' progress output per epoch (0: silent, 1: bar, 2: one line).

    Attributes
    ----------
    rbm_ : dbn.models.rbm.RBM
        The trained RBM (a Keras model).
    components_ : ndarray of shape (n_components, n_features_in_)
        Weights ``W.T``, as in ``sklearn.neural_network.BernoulliRBM``.
    intercept_hidden_ : ndarray of shape (n_components,)
    intercept_visible_ : ndarray of shape (n_features_in_,)
    history_ : dict of str to list of float
        Per-epoch training logs (``reconstruction_error``, ...).
    seed_ : int
        The seed drawn from ``random_state``.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when ``X`` had string column names.

    Notes
    -----
    ``X`` must be finite and in [0, 1] everywhere (ValueError otherwise).  Training and
    ``transform`` compute in float32 (``transform`` returns float32); ``score_samples``
    evaluates in float64.
    """

    _KERAS_ATTRIBUTES = ("rbm_",)

    def __init__(self, n_components=_RBM_DEFAULTS.n_hidden, *, epochs=_RBM_DEFAULTS.epochs,
                 batch_size=_RBM_DEFAULTS.batch_size, learning_rate=_RBM_DEFAULTS.learning_rate,
                 final_learning_rate=_RBM_DEFAULTS.final_learning_rate,
                 initial_momentum=_RBM_DEFAULTS.initial_momentum,
                 final_momentum=_RBM_DEFAULTS.final_momentum,
                 momentum_switch_epoch=_RBM_DEFAULTS.momentum_switch_epoch, k=_RBM_DEFAULTS.k,
                 final_k=_RBM_DEFAULTS.final_k, persistent=_RBM_DEFAULTS.persistent,
                 n_chains=_RBM_DEFAULTS.n_chains, weight_decay=_RBM_DEFAULTS.weight_decay,
                 sparsity_target=_RBM_DEFAULTS.sparsity_target,
                 sparsity_cost=_RBM_DEFAULTS.sparsity_cost,
                 fast_learning_rate=_RBM_DEFAULTS.fast_learning_rate,
                 fast_decay=_RBM_DEFAULTS.fast_decay, n_temperatures=_RBM_DEFAULTS.n_temperatures,
                 binarization="stochastic", random_state=None, verbose=0):
        self.n_components = n_components
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.final_learning_rate = final_learning_rate
        self.initial_momentum = initial_momentum
        self.final_momentum = final_momentum
        self.momentum_switch_epoch = momentum_switch_epoch
        self.k = k
        self.final_k = final_k
        self.persistent = persistent
        self.n_chains = n_chains
        self.weight_decay = weight_decay
        self.sparsity_target = sparsity_target
        self.sparsity_cost = sparsity_cost
        self.fast_learning_rate = fast_learning_rate
        self.fast_decay = fast_decay
        self.n_temperatures = n_temperatures
        self.binarization = binarization
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True  # and <= 1: no tag says that
        tags.transformer_tags.preserves_dtype = ["float32"]  # the RBM computes in float32
        return tags

    # ------------------------------------------------------------------ fit
    def _config(self):
        return _config(RBMTrainingConfig, _validated_settings(self, _RBM_PARAMETERS),
                       _RBM_PARAMETERS)

    def fit(self, X, y=None):
        """Train the RBM on ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, finite, in [0, 1] (binary or grey levels).
        y : None
            Ignored (present for the pipeline API).

        Returns
        -------
        self : RBMTransformer

        Raises
        ------
        ValueError
            For a bad parameter (naming it, its value and what is allowed) or bad ``X``
            (not 2-D, empty, NaN/inf, values outside [0, 1]), before any training.
        """
        config = self._config()
        binarization = check.check_choice("binarization", self.binarization, BINARIZATIONS)
        check.check_int("verbose", self.verbose, low=0)
        X = validate_data(self, X, reset=True, dtype="numeric", ensure_all_finite=False)
        X = _check_unit_interval("X", X, type(self).__name__)
        seed = _seed(self.random_state)
        visible_data = "probabilities" if binarization == "none" else "binary"
        # As DBN._train_layer trains its first layer: batches (and their binarization) a
        # function of (seed, epoch), visible biases from one binarization of the data, and
        # the global seeds set first (tf.data's op-level seeds combine with TensorFlow's
        # global seed: without this the fit would depend on what ran before it).
        with _global_random_state_kept():
            keras.utils.set_random_seed(seed)
            rbm = build_rbm(config, visible_data=visible_data, seed=seed)
            train = epoch_batches(X, batch_size=config.batch_size, seed=seed,
                                  binarization=binarization)
            init = pipeline.binarize(X, binarization, seed=seed)
            history = train_rbm(rbm, train, config,
                                steps_per_epoch=math.ceil(len(X) / config.batch_size),
                                init_data=init, verbose=self.verbose)
        self.rbm_, self.history_, self.seed_ = rbm, history, seed
        return self

    # ------------------------------------------------------------------ inference
    def _visible(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype="numeric", ensure_all_finite=False)
        return _check_unit_interval("X", X, type(self).__name__)

    @property
    def _n_features_out(self):
        return self.rbm_.n_hidden

    def transform(self, X):
        """Hidden probabilities p(h = 1 | X) (mean-field features, not samples).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in_)
            Finite values in [0, 1].

        Returns
        -------
        H : ndarray of shape (n_samples, n_components), float32
            sigmoid(X @ W + hidden bias).
        """
        v = self._visible(X)  # first: NotFittedError before ``rbm_`` is looked up
        return self.rbm_.transform(v)

    def score_samples(self, X):
        """Negative free energy -F(x) of each row: log p(x) up to the constant log Z.

        The score is ``-F(x) = x . b + sum_j softplus(c_j + x . W[:, j])``, the RBM's
        unnormalised log-probability: exact and deterministic (the package's free energy,
        ``dbn.ops.free_energy``, evaluated in float64 so that a row's score does not
        depend on the batch it comes in).  It ranks samples under one fitted model:
        higher is more probable.  It is not a normalised log-likelihood (that needs
        log Z: ``rbm_.log_partition_exact()`` for small models, ``dbn.estimation.ais``
        otherwise) and, unlike ``BernoulliRBM.score_samples``, not a pseudo-likelihood
        (which is random: one bit flipped per row).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in_)
            Finite values in [0, 1] (grey levels give the mean-field extension of F).

        Returns
        -------
        scores : ndarray of shape (n_samples,), float64
        """
        v = self._visible(X).astype(np.float64)
        W, b, c = (np.asarray(p, np.float64)
                   for p in (self.rbm_.W, self.rbm_.visible_bias, self.rbm_.hidden_bias))
        return -np.asarray(free_energy(tf.constant(v), W, b, c))

    def gibbs(self, v):
        """One Gibbs step v -> h ~ p(h | v) -> v' ~ p(v | h), sampled.

        Draws from the fitted RBM's own sampler stream (seeded by ``random_state``,
        saved with the estimator): successive calls give new samples.

        Parameters
        ----------
        v : array-like of shape (n_samples, n_features_in_)
            Visible states, finite values in [0, 1].

        Returns
        -------
        v_new : ndarray of shape (n_samples, n_features_in_), float32
            Binary visible states (0 or 1).
        """
        v = self._visible(v)  # first: NotFittedError before ``rbm_`` is looked up
        return self.rbm_.gibbs_step(v)

    # ------------------------------------------------------------------ weights
    @property
    def components_(self):
        """``W.T``, ndarray of shape (n_components, n_features_in_)."""
        return self.rbm_.W.numpy().T

    @property
    def intercept_hidden_(self):
        """Hidden biases, ndarray of shape (n_components,)."""
        return self.rbm_.hidden_bias.numpy()

    @property
    def intercept_visible_(self):
        """Visible biases, ndarray of shape (n_features_in_,)."""
        return self.rbm_.visible_bias.numpy()


# --------------------------------------------------------------------------- DBN
# Parameter -> (config field, constraint): pretrain_<RBMTrainingConfig field> (the layer
# sizes come from hidden_layer_sizes) and finetune_<FineTuneConfig field>.
_PRETRAIN_PARAMETERS = {f"pretrain_{f}": (f, _RBM_CONSTRAINTS[f]) for f in _RBM_FIELDS
                        if f != "n_hidden"}
_FINETUNE_PARAMETERS = {f"finetune_{f}": (f, _FINETUNE_CONSTRAINTS[f]) for f in _FINETUNE_FIELDS}


class DBNClassifier(ClassifierMixin, _PicklesKeras, BaseEstimator):
    """Deep Belief Network classifier: greedy RBM pretraining, then fine-tuning.

    ``fit`` pretrains a stack of RBMs on ``X`` (``dbn.models.dbn.DBN.pretrain``: layer 1
    on ``X`` binarized stochastically anew every epoch, each higher layer on the hidden
    probabilities of the one below), unrolls it into a sigmoid network with a softmax
    output (``DBN.to_classifier``) and fine-tunes it by backprop
    (``dbn.training.finetune.fine_tune``) with early stopping on a held-out fraction of
    the training data.

    Parameters
    ----------
    hidden_layer_sizes : sequence of int >= 1, default (500, 500, 2000)
        Hidden layer widths (Hinton & Salakhutdinov's 784-500-500-2000 network).
    init : {"pretrained", "glorot", "normal"}, default "pretrained"
        Initial weights of the hidden layers: the pretrained RBMs, or no pretraining and
        random weights (Glorot-uniform or N(0, 0.01^2)) -- the package's baselines.
    sample_hidden : bool, default False
        Pretrain higher layers on sampled binary hidden states instead of probabilities.
    pretrain_epochs, pretrain_batch_size, pretrain_learning_rate, \
pretrain_final_learning_rate, pretrain_initial_momentum, pretrain_final_momentum, \
pretrain_momentum_switch_epoch, pretrain_k, pretrain_final_k, pretrain_persistent, \
pretrain_n_chains, pretrain_weight_decay, pretrain_sparsity_target, \
pretrain_sparsity_cost, pretrain_fast_learning_rate, pretrain_fast_decay, \
pretrain_n_temperatures
        Every layer's RBM training: the fields of ``RBMTrainingConfig`` (see
        ``RBMTransformer`` for each), with ``HINTON_LAYER``'s values as defaults (50
        epochs, batch 100, learning rate 0.05 constant, weight decay 2e-4, momentum 0.5
        then 0.9 after 5 epochs, CD-1).
    finetune_optimizer : {"adam", "sgd"}, default "adam"
    finetune_learning_rate : float > 0, default 1e-3
    finetune_momentum : float in [0, 1], default 0.9
        SGD's momentum (unused by Adam).
    finetune_batch_size : int >= 1, default 100
    finetune_max_epochs : int >= 1, default 100
    finetune_patience : int >= 1, default 10
        Stop after this many epochs without a new best validation error; the weights of
        the best epoch are kept.
    finetune_output_only_epochs : int in [0, finetune_max_epochs), default 0
        Epochs that train the softmax layer alone first.
    finetune_plateau_factor : float in (0, 1], default 1.0
        Multiply the learning rate by this after every ``finetune_plateau_patience``
        epochs without a new best validation error (1.0: constant).
    finetune_plateau_patience : int >= 1, default 3
    finetune_refit : bool, default False
        After early stopping, retrain the network from the same initial weights on all of
        ``X`` (training and validation rows) for the early-stopped number of epochs with
        the rates that run used (``refit_schedule`` + ``fit_schedule``); needs
        ``validation_fraction``.
    validation_fraction : float in (0, 1) or None, default 0.1
        Fraction of the rows (chosen at random, at least one) held out for early
        stopping.  None: no early stopping, train on all rows for
        ``finetune_max_epochs`` epochs at ``finetune_learning_rate``.
    dropout : float in [0, 1) or pair (input rate, hidden rate), default 0.0
        Dropout during fine-tuning (``build_classifier``).
    random_state : int, RandomState instance or None, default None
        Drawn once per ``fit`` into the integer seed of the DBN (weights, batches,
        binarization, the validation split, fine-tuning): an int gives identical fits,
        whatever ran before (global seeds as for ``RBMTransformer``).
    verbose : int, default 0
        Keras' progress output (0: silent).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels (any values ``numpy.unique`` can sort); the network's output
        ``i`` is ``classes_[i]``.
    model_ : keras.Sequential
        The fine-tuned network, (n_samples, n_features_in_) -> (n_samples, n_classes).
    layer_sizes_ : tuple of int
        ``(n_features_in_, *hidden_layer_sizes)``.
    pretraining_history_ : list of dict
        Keras logs of each RBM layer's pretraining (empty without pretraining).
    finetune_result_ : dict
        ``fine_tune``'s result (history, best_epoch, best_val_error, ...), or
        ``fit_schedule``'s without a validation split; with ``finetune_refit``, the key
        ``refit`` holds the refit's.
    n_iter_ : int
        Fine-tuning epochs of the returned network.
    seed_ : int
        The seed drawn from ``random_state``.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when ``X`` had string column names.

    Notes
    -----
    ``X`` must be finite and in [0, 1] (ValueError otherwise); ``fit`` needs at least
    two classes, and two samples when ``validation_fraction`` is set.
    """

    _KERAS_ATTRIBUTES = ("model_",)

    def __init__(self, hidden_layer_sizes=(500, 500, 2000), *, init="pretrained",
                 sample_hidden=False,
                 pretrain_epochs=HINTON_LAYER.epochs, pretrain_batch_size=HINTON_LAYER.batch_size,
                 pretrain_learning_rate=HINTON_LAYER.learning_rate,
                 pretrain_final_learning_rate=HINTON_LAYER.final_learning_rate,
                 pretrain_initial_momentum=HINTON_LAYER.initial_momentum,
                 pretrain_final_momentum=HINTON_LAYER.final_momentum,
                 pretrain_momentum_switch_epoch=HINTON_LAYER.momentum_switch_epoch,
                 pretrain_k=HINTON_LAYER.k, pretrain_final_k=HINTON_LAYER.final_k,
                 pretrain_persistent=HINTON_LAYER.persistent,
                 pretrain_n_chains=HINTON_LAYER.n_chains,
                 pretrain_weight_decay=HINTON_LAYER.weight_decay,
                 pretrain_sparsity_target=HINTON_LAYER.sparsity_target,
                 pretrain_sparsity_cost=HINTON_LAYER.sparsity_cost,
                 pretrain_fast_learning_rate=HINTON_LAYER.fast_learning_rate,
                 pretrain_fast_decay=HINTON_LAYER.fast_decay,
                 pretrain_n_temperatures=HINTON_LAYER.n_temperatures,
                 finetune_optimizer=_FINETUNE_DEFAULTS.optimizer,
                 finetune_learning_rate=_FINETUNE_DEFAULTS.learning_rate,
                 finetune_momentum=_FINETUNE_DEFAULTS.momentum,
                 finetune_batch_size=_FINETUNE_DEFAULTS.batch_size,
                 finetune_max_epochs=_FINETUNE_DEFAULTS.max_epochs,
                 finetune_patience=_FINETUNE_DEFAULTS.patience,
                 finetune_output_only_epochs=_FINETUNE_DEFAULTS.output_only_epochs,
                 finetune_plateau_factor=_FINETUNE_DEFAULTS.plateau_factor,
                 finetune_plateau_patience=_FINETUNE_DEFAULTS.plateau_patience,
                 finetune_refit=_FINETUNE_DEFAULTS.refit,
                 validation_fraction=0.1, dropout=0.0, random_state=None, verbose=0):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.init = init
        self.sample_hidden = sample_hidden
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_batch_size = pretrain_batch_size
        self.pretrain_learning_rate = pretrain_learning_rate
        self.pretrain_final_learning_rate = pretrain_final_learning_rate
        self.pretrain_initial_momentum = pretrain_initial_momentum
        self.pretrain_final_momentum = pretrain_final_momentum
        self.pretrain_momentum_switch_epoch = pretrain_momentum_switch_epoch
        self.pretrain_k = pretrain_k
        self.pretrain_final_k = pretrain_final_k
        self.pretrain_persistent = pretrain_persistent
        self.pretrain_n_chains = pretrain_n_chains
        self.pretrain_weight_decay = pretrain_weight_decay
        self.pretrain_sparsity_target = pretrain_sparsity_target
        self.pretrain_sparsity_cost = pretrain_sparsity_cost
        self.pretrain_fast_learning_rate = pretrain_fast_learning_rate
        self.pretrain_fast_decay = pretrain_fast_decay
        self.pretrain_n_temperatures = pretrain_n_temperatures
        self.finetune_optimizer = finetune_optimizer
        self.finetune_learning_rate = finetune_learning_rate
        self.finetune_momentum = finetune_momentum
        self.finetune_batch_size = finetune_batch_size
        self.finetune_max_epochs = finetune_max_epochs
        self.finetune_patience = finetune_patience
        self.finetune_output_only_epochs = finetune_output_only_epochs
        self.finetune_plateau_factor = finetune_plateau_factor
        self.finetune_plateau_patience = finetune_plateau_patience
        self.finetune_refit = finetune_refit
        self.validation_fraction = validation_fraction
        self.dropout = dropout
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True  # and <= 1: no tag says that
        return tags

    # ------------------------------------------------------------------ fit
    def _settings(self):
        """The checked parameters: (hidden sizes, layer config, fine-tune config)."""
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, np.ndarray):
            sizes = tuple(sizes.tolist())
        if not isinstance(sizes, (list, tuple)) or not sizes:
            raise ValueError(f"hidden_layer_sizes={self.hidden_layer_sizes!r} must be a non-empty "
                             "list or tuple of integers >= 1")
        sizes = tuple(check.check_int(f"hidden_layer_sizes[{i}]", n, low=1)
                      for i, n in enumerate(sizes))
        pretrain = _validated_settings(self, _PRETRAIN_PARAMETERS)
        layer_config = _config(RBMTrainingConfig, {"n_hidden": sizes[0], **pretrain},
                               _PRETRAIN_PARAMETERS)
        finetune_config = _config(FineTuneConfig, _validated_settings(self, _FINETUNE_PARAMETERS),
                                  _FINETUNE_PARAMETERS)
        return sizes, layer_config, finetune_config

    def fit(self, X, y):
        """Pretrain (``init="pretrained"``) and fine-tune on ``X``, ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Finite values in [0, 1].
        y : array-like of shape (n_samples,)
            Class labels of any sortable type; at least two classes.

        Returns
        -------
        self : DBNClassifier

        Raises
        ------
        ValueError
            For a bad parameter (naming it, its value and what is allowed), bad ``X``
            (not 2-D, NaN/inf, outside [0, 1]), continuous or single-class ``y``, or too
            few samples for the validation split; before any training.
        """
        sizes, layer_config, config = self._settings()
        init = check.check_choice("init", self.init, INITS)
        sample_hidden = check.check_bool("sample_hidden", self.sample_hidden)
        fraction = check.check_float("validation_fraction", self.validation_fraction, low=0.0,
                                     high=1.0, low_open=True, high_open=True, optional=True)
        dropout_rates(self.dropout)
        check.check_int("verbose", self.verbose, low=0)
        if config.refit and fraction is None:
            raise ValueError("finetune_refit=True needs validation_fraction (the refit replays "
                             "the early-stopped run); allowed with validation_fraction=None: "
                             "finetune_refit=False")
        X, y = validate_data(self, X, y, reset=True, dtype="numeric", ensure_all_finite=False,
                             ensure_min_samples=1 if fraction is None else 2)
        check_classification_targets(y)
        X = _check_unit_interval("X", X, type(self).__name__)
        classes, y_index = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"y has 1 class ({classes.tolist()[0]!r}); DBNClassifier needs "
                             "at least 2 classes")
        y_index = y_index.astype(np.int64)
        seed = _seed(self.random_state)
        layer_sizes = (X.shape[1], *sizes)
        verbose = 0 if not self.verbose else 2

        with _global_random_state_kept():
            keras.utils.set_random_seed(seed)  # as DBN.pretrain does per layer; also without it
            histories = []
            if init == "pretrained":
                stack = DBN(layer_sizes, layer_configs=layer_config, sample_hidden=sample_hidden,
                            seed=seed)
                histories = stack.pretrain(X, verbose=verbose)

            def network():  # the same initial weights every call (seeded)
                if init == "pretrained":
                    return stack.to_classifier(len(classes), dropout=self.dropout)
                return build_classifier(layer_sizes, len(classes), init=init,
                                        dropout=self.dropout, seed=seed)

            model = network()
            if fraction is None:
                result = fit_schedule(model, X, y_index, config,
                                      [config.learning_rate] * config.max_epochs, seed=seed,
                                      verbose=verbose)
                epochs = result["epochs_run"]
            else:
                order = np.random.default_rng(seed).permutation(len(X))
                n_val = min(max(1, round(fraction * len(X))), len(X) - 1)
                val, train = order[:n_val], order[n_val:]
                result = fine_tune(model, X[train], y_index[train], X[val], y_index[val], config,
                                   seed=seed, verbose=verbose)
                epochs = result["best_epoch"]
                if config.refit:
                    rates = refit_schedule(result["history"]["val_error"], config)
                    model = network()
                    result["refit"] = fit_schedule(model, X, y_index, config, rates, seed=seed,
                                                   verbose=verbose)
                    epochs = len(rates)

        self.classes_ = classes
        self.model_ = model
        self.layer_sizes_ = layer_sizes
        self.pretraining_history_ = histories
        self.finetune_result_ = result
        self.n_iter_ = int(epochs)
        self.seed_ = seed
        return self

    # ------------------------------------------------------------------ predict
    def predict_proba(self, X):
        """Class probabilities (the softmax output).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in_)
            Finite values in [0, 1].

        Returns
        -------
        P : ndarray of shape (n_samples, n_classes), float64
            Column ``i`` is the probability of ``classes_[i]``; rows sum to 1.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype="numeric", ensure_all_finite=False)
        X = _check_unit_interval("X", X, type(self).__name__)
        out = [np.asarray(self.model_(X[i : i + _PREDICT_ROWS], training=False), np.float64)
               for i in range(0, len(X), _PREDICT_ROWS)]
        P = np.concatenate(out) if out else np.zeros((0, len(self.classes_)))
        return P / P.sum(axis=1, keepdims=True)  # exact normalisation in float64

    def predict(self, X):
        """The most probable class of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in_)
            Finite values in [0, 1].

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        index = np.argmax(self.predict_proba(X), axis=1)  # checks fitted first
        return self.classes_[index]


# --------------------------------------------------------------------------- estimator checks
def _outside_unit_interval(data, high):
    return (f"its X ({data}) lies in [0, {high}] after the positive_only shift X - X.min() "
            "(measured with scikit-learn 1.9), and a Bernoulli RBM refuses X outside [0, 1] "
            "with a ValueError by design, before the check reaches what it tests")


_BLOBS = _outside_unit_interval("make_blobs(n_samples=21)", 8.99)
_BLOBS_SMALL = _outside_unit_interval("make_blobs(cluster_std=0.1), centres 0 and 1", 1.44)
_SCALED_BLOBS = _outside_unit_interval("make_blobs, StandardScaler", 2.88)
_UNIFORM = _outside_unit_interval("3 * uniform, 20 x 3", 2.91)

# The scikit-learn checks (>= 1.6) that cannot pass, for
# ``parametrize_with_checks(..., expected_failed_checks=lambda e: EXPECTED_FAILED_CHECKS[
# type(e).__name__])``.  Every one fails for the same single reason: the check generates X
# outside [0, 1] (the tag ``positive_only`` shifts it to >= 0; no tag bounds it by 1).
# tests/test_sklearn.py reruns the most telling ones on
# ``make_pipeline(MinMaxScaler(clip=True), estimator)``, where they pass.
_SHARED_FAILED_CHECKS = {
    "check_estimators_overwrite_params": _BLOBS,
    "check_dont_overwrite_parameters": _UNIFORM,
    "check_estimators_fit_returns_self": _BLOBS,
    "check_readonly_memmap_input": _BLOBS,
    "check_n_features_in_after_fitting": _outside_unit_interval("standard normal, 4 columns",
                                                                4.82),
    "check_estimators_dtypes": _outside_unit_interval("3 * uniform, 20 x 5", 2.95),
    "check_pipeline_consistency": _BLOBS_SMALL,
    "check_estimators_pickle": _BLOBS_SMALL,
    "check_f_contiguous_array_estimator": _UNIFORM,
    "check_methods_sample_order_invariance": _UNIFORM,
    "check_methods_subset_invariance": _UNIFORM,
    "check_fit2d_1feature": _outside_unit_interval("3 * uniform, 10 x 1", 1.74),
    "check_dict_unchanged": _UNIFORM,
    "check_fit_idempotent": _outside_unit_interval("normal(loc=100)", 4.94),
    "check_fit_check_is_fitted": _outside_unit_interval("normal(loc=100)", 5.34),
    "check_n_features_in": _outside_unit_interval("normal(loc=100)", 4.94),
    "check_fit2d_predict1d": _UNIFORM,
}
EXPECTED_FAILED_CHECKS = {
    "RBMTransformer": {
        **_SHARED_FAILED_CHECKS,
        # (DBNClassifier passes it: its fit refuses a single sample first, with the message
        # the check expects, as early stopping needs a validation row.)
        "check_fit2d_1sample": _outside_unit_interval("3 * uniform, 1 x 10", 1.74),
        "check_transformer_data_not_an_array": _SCALED_BLOBS,
        "check_transformer_general": _SCALED_BLOBS,
        "check_transformer_preserve_dtypes": _SCALED_BLOBS,
    },
    "DBNClassifier": {
        **_SHARED_FAILED_CHECKS,
        "check_classifier_data_not_an_array": _outside_unit_interval(
            "a fixed array of small integers", 4),
        "check_classifiers_classes": _outside_unit_interval("make_blobs, StandardScaler", 2.69),
        "check_classifiers_train": _outside_unit_interval("make_blobs, StandardScaler", 4.76),
    },
}
