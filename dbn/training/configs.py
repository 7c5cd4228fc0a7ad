"""Every training configuration in one place, each a frozen dataclass validated by one
constraint table (``dbn.validation``): the single source of the defaults that the
experiments' command-line options are generated from (``dbn.options``).

``to_dict()`` of each config is part of cache keys: fields are never renamed or
reordered, and new ones are added only with a neutral value left out of the key.
"""

from __future__ import annotations

import dataclasses

from dbn import validation as check

VISIBLE_DATA = ("binary", "probabilities")
# Hidden unit types (dbn.ops): Bernoulli, or linear with unit-variance Gaussian noise.
HIDDEN_UNITS = ("bernoulli", "gaussian")
# Precision of the training matmuls (dbn.ops.matmul); weights, updates, statistics float32.
PRECISIONS = ("float32", "bfloat16")
# Initialisations of a classifier (dbn.models.classifier.build_classifier) and the key of
# each in result files.  Here, free of TensorFlow, so experiments answer --help at once.
INITS = ("pretrained", "glorot", "normal")
RESULT_KEYS = {"pretrained": "pretrained", "glorot": "random_glorot", "normal": "random_normal"}
# Forward AIS: independent annealing runs per log Z estimate (dbn.estimation.ais).
AIS_RUNS = 100

# What ``RBM(...)`` accepts, one constraint per argument (dbn.validation).
RBM_CONSTRAINTS = {
    "n_hidden": check.Integer(1),
    "k": check.Integer(1),
    "persistent": check.Boolean(),
    "n_chains": check.Integer(1),
    "weight_decay": check.Real(0.0),
    "sparsity_target": check.Real(0.0, 1.0, low_open=True, high_open=True, optional=True),
    "sparsity_cost": check.Real(0.0),
    "sparsity_decay": check.Real(0.0, 1.0, high_open=True),
    "visible_data": check.Choice(VISIBLE_DATA),
    "n_labels": check.Integer(0),
    "seed": check.Integer(0, 2**63 - 1, optional=True),
    "fast_learning_rate": check.Real(0.0, low_open=True, optional=True),
    "fast_decay": check.Real(0.0, 1.0, high_open=True),
    "n_temperatures": check.Integer(1),
    "hidden_units": check.Choice(HIDDEN_UNITS),
    "precision": check.Choice(PRECISIONS),
}

# The RBM arguments an ``RBMTrainingConfig`` sets (the others: ``build_rbm``'s keywords).
CONFIG_HYPERPARAMETERS = ("n_hidden", "k", "persistent", "n_chains", "weight_decay",
                          "sparsity_target", "sparsity_cost", "fast_learning_rate", "fast_decay",
                          "n_temperatures", "hidden_units", "precision")


def check_sampler_options(settings):
    """The sampler and regulariser options of an RBM or its config (a mapping of the
    fields): a sparsity cost needs a sparsity target; fast weights (``fast_learning_rate`` not None: FPCD, Tieleman & Hinton 2009) and
    parallel tempering (``n_temperatures`` > 1) need persistent chains, and exclude each
    other.  ValueError naming the option otherwise."""
    fast, temperatures = settings["fast_learning_rate"], settings["n_temperatures"]
    for name, on in (("fast_learning_rate", fast is not None), ("n_temperatures", temperatures > 1)):
        if on and not settings["persistent"]:
            raise ValueError(f"{name}={settings[name]!r} needs persistent=True (its chains "
                             "are the persistent ones)")
    if fast is not None and temperatures > 1:
        raise ValueError(f"fast_learning_rate={fast!r} with n_temperatures={temperatures}: "
                         "allowed: fast weights or parallel tempering, not both")
    if settings.get("sparsity_cost", 0.0) and settings.get("sparsity_target") is None:
        raise ValueError(f"sparsity_cost={settings['sparsity_cost']!r} without sparsity_target "
                         "would do nothing: set sparsity_target (a mean activation in (0, 1)) "
                         "or leave sparsity_cost=0")
    if settings.get("hidden_units", "bernoulli") == "gaussian":
        # The tempered path (dbn.ops.log_p_star), the label group's free energies and the
        # sparsity target (a mean activation in (0, 1)) are written for Bernoulli units.
        for name, on, allowed in (("n_temperatures", temperatures > 1, "1"),
                                  ("n_labels", settings.get("n_labels", 0) > 0, "0"),
                                  ("sparsity_target", settings.get("sparsity_target") is not None,
                                   "None")):
            if on:
                raise ValueError(f"{name}={settings[name]!r} with hidden_units='gaussian': "
                                 f"not implemented for linear-Gaussian hidden units; allowed: "
                                 f"{name}={allowed}")


def without_idle_samplers(settings):
    """``settings`` (a dict of RBM or config fields) without the options added after
    results were cached, where they are off: fast weights when ``fast_learning_rate`` is
    None, tempering when ``n_temperatures`` is 1, ``hidden_units`` when "bernoulli",
    ``precision`` when "float32".  Such
    a run is the run it was before they existed, so its cache key is unchanged."""
    settings = dict(settings)
    for name, neutral in (("hidden_units", "bernoulli"), ("precision", "float32")):
        if settings.get(name) == neutral:
            settings.pop(name)
    if settings.get("fast_learning_rate", 0) is None:
        settings.pop("fast_learning_rate")
        settings.pop("fast_decay", None)
    if settings.get("n_temperatures") == 1:
        settings.pop("n_temperatures")
    return settings


@dataclasses.dataclass(frozen=True)
class RBMTrainingConfig:
    """How one RBM is trained (one DBN layer has one of these).

    ``weight_decay`` is an L2 cost on the weights only (Hinton used 2e-4 for
    classifier features; density models score better with 0).

    What each field accepts is the table ``CONSTRAINTS`` (checked in ``__post_init__``,
    ValueError naming the field): integers >= 1 for sizes, epochs and Gibbs steps
    (numpy integers are stored as Python ints; bools are refused), finite numbers for
    rates, ``learning_rate`` > 0, ``final_learning_rate`` >= 0 or None, momenta
    ``initial`` in (0, 1] and ``final`` in [0, 1], ``momentum_switch_epoch`` >= 0,
    ``final_k`` >= ``k`` or None, ``persistent`` True/False, ``weight_decay`` and
    ``sparsity_cost`` >= 0, ``sparsity_target`` in (0, 1) or None; ``fast_learning_rate``
    > 0 or None and ``fast_decay`` in [0, 1) (FPCD), ``n_temperatures`` >= 1 (parallel
    tempering when > 1), both needing ``persistent`` and not together.

    ``to_dict()`` (part of cache keys) leaves out FPCD's and tempering's fields while they
    are off, so runs cached before they existed keep their keys.
    """

    n_hidden: int = 500
    epochs: int = 20
    batch_size: int = 100
    learning_rate: float = 0.05
    final_learning_rate: float | None = 0.0  # None: constant learning rate
    initial_momentum: float = 0.5
    final_momentum: float = 0.9
    momentum_switch_epoch: int = 5
    k: int = 1
    final_k: int | None = None  # None: constant k
    persistent: bool = False
    n_chains: int = 100
    weight_decay: float = 0.0
    sparsity_target: float | None = None
    sparsity_cost: float = 0.0
    fast_learning_rate: float | None = None  # FPCD when set (needs persistent)
    fast_decay: float = 0.95
    n_temperatures: int = 1  # parallel tempering when > 1 (needs persistent)
    hidden_units: str = "bernoulli"  # or "gaussian": linear, unit-variance noise
    precision: str = "float32"  # or "bfloat16": the training matmuls (dbn.ops.matmul)

    CONSTRAINTS = {  # not a field (no annotation): to_dict() is unchanged
        **{name: RBM_CONSTRAINTS[name] for name in CONFIG_HYPERPARAMETERS},
        "epochs": check.Integer(1),
        "batch_size": check.Integer(1),
        "learning_rate": check.Real(0.0, low_open=True),
        "final_learning_rate": check.Real(0.0, optional=True),
        # initial > 0: the optimizer needs a momentum buffer from the start.
        "initial_momentum": check.Real(0.0, 1.0, low_open=True),
        "final_momentum": check.Real(0.0, 1.0),
        "momentum_switch_epoch": check.Integer(0),
        "final_k": check.Integer(1, optional=True),
    }

    def __post_init__(self):
        check.validate_fields(self, self.CONSTRAINTS)
        if self.final_k is not None and self.final_k < self.k:
            raise ValueError(f"final_k={self.final_k} must be >= k={self.k} or None")
        check_sampler_options(dataclasses.asdict(self))

    def to_dict(self):
        return without_idle_samplers(dataclasses.asdict(self))


OPTIMIZERS = ("sgd", "adam")


@dataclasses.dataclass(frozen=True)
class FineTuneConfig:
    """Backprop settings.

    ``output_only_epochs`` trains only the softmax layer first (Hinton & Salakhutdinov
    2006 did this for 5 epochs before unfreezing the stack).  ``plateau_factor`` < 1
    multiplies the learning rate by that factor after every ``plateau_patience``
    consecutive epochs without a new best validation error (1.0, the default, keeps it
    constant); it adapts to each network's own convergence, so a slowly converging
    random-init network is not starved by a schedule tuned for a pretrained one.
    ``refit`` asks the experiment to retrain, after early stopping, a fresh network on
    the training *and* validation examples for the early-stopped number of epochs with
    the learning rates that run used (``refit_schedule``, ``fit_schedule``): our variant
    of the papers' final training on all 60,000 labels (Goodfellow et al. 2016, Alg. 7.2);
    ``fine_tune`` itself ignores it.

    Every field is checked in ``__post_init__`` against ``CONSTRAINTS`` (ValueError
    naming the field): ``optimizer`` in ``OPTIMIZERS``; ``learning_rate`` finite > 0;
    ``momentum`` in [0, 1] (stored as a float); ``batch_size``, ``max_epochs``,
    ``patience``, ``plateau_patience`` integers >= 1 (numpy integers are stored as
    Python ints, bools refused); ``output_only_epochs`` an integer in [0, max_epochs);
    ``min_epoch_size`` an integer >= 0;
    ``plateau_factor`` in (0, 1]; ``refit`` True or False; ``precision`` in
    ``PRECISIONS``: "bfloat16" runs the hidden layers' training products in bfloat16
    (Keras' ``mixed_bfloat16`` policy: weights, optimizer state and the softmax layer stay
    float32, so do the validation checks), and ``fine_tune`` returns the network computing
    in float32.

    ``min_epoch_size`` (0: an epoch is one pass over the training set): a training set of
    fewer examples is repeated, ``ceil(min_epoch_size / n)`` whole copies shuffled together
    into each epoch, so that an epoch -- the unit of early stopping's ``patience``, of the
    plateau schedule and of ``max_epochs`` -- is a comparable amount of training for every
    label budget (100 labels would otherwise give one update per epoch: ``max_epochs``
    100 updates in all, and a rate halved every ``plateau_patience`` updates).
    """

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    batch_size: int = 100
    max_epochs: int = 100
    patience: int = 10
    output_only_epochs: int = 0
    plateau_factor: float = 1.0
    plateau_patience: int = 3
    refit: bool = False
    precision: str = "float32"
    min_epoch_size: int = 0

    # Options added after runs were cached, with the value that reproduces those runs:
    # left out of ``cache_settings`` at that value so the cached runs stay valid.
    _NEUTRAL = {"plateau_factor": 1.0, "plateau_patience": 3, "refit": False}  # and to_dict's

    CONSTRAINTS = {  # not a field (no annotation): to_dict() is unchanged
        "optimizer": check.Choice(OPTIMIZERS),
        "learning_rate": check.Real(0.0, low_open=True),
        "momentum": check.Real(0.0, 1.0),
        "batch_size": check.Integer(1),
        "max_epochs": check.Integer(1),
        "patience": check.Integer(1),
        "output_only_epochs": check.Integer(0),
        "plateau_factor": check.Real(0.0, 1.0, low_open=True),
        "plateau_patience": check.Integer(1),
        "refit": check.Boolean(),
        "precision": check.Choice(PRECISIONS),
        "min_epoch_size": check.Integer(0),
    }

    def __post_init__(self):
        check.validate_fields(self, self.CONSTRAINTS)
        object.__setattr__(self, "momentum", float(self.momentum))
        if not self.output_only_epochs < self.max_epochs:
            raise ValueError(f"output_only_epochs={self.output_only_epochs} must be in "
                             f"[0, max_epochs={self.max_epochs})")

    def to_dict(self):
        """Every field, but ``precision`` only when it is not float32 (as
        ``RBMTrainingConfig``) and ``min_epoch_size`` only when it is not 0: configs
        recorded before they existed keep their hash."""
        settings = dataclasses.asdict(self)
        for field, neutral in (("precision", "float32"), ("min_epoch_size", 0)):
            if settings[field] == neutral:
                settings.pop(field)
        return settings

    def for_examples(self, n):
        """This config as it acts on a training set of ``n`` examples: ``min_epoch_size``
        set to 0 where it repeats nothing (``n >= min_epoch_size``), so runs that train
        identically share one cache key (the all-labels runs of every experiment)."""
        n = check.check_int("n", n, low=1)
        return dataclasses.replace(self, min_epoch_size=0) if n >= self.min_epoch_size else self

    def cache_settings(self):
        """``to_dict()`` without the later-added options that sit at their neutral value."""
        return {k: v for k, v in self.to_dict().items()
                if not (k in self._NEUTRAL and v == self._NEUTRAL[k])}


@dataclasses.dataclass(frozen=True)
class UpDownConfig:
    """Up-down fine-tuning: SGD on batch means (the paper's pseudo-code), ``k_schedule``
    Gibbs steps in the top RBM, used for equal thirds (by default) of the epochs.  The
    paper's runs (300 epochs) also tuned a momentum and a weight cost and give no
    values: ``momentum`` (classical, one velocity per parameter, saved with the weights)
    and ``weight_decay`` (an L2 cost on the weights only, never on biases) are chosen on
    the validation split by ``experiments/dbn_generative.py``.

    ``CONSTRAINTS`` is checked in ``__post_init__``: ``epochs`` and ``batch_size``
    integers >= 1, ``learning_rate`` finite > 0, ``momentum`` in [0, 1),
    ``weight_decay`` finite >= 0, ``k_schedule`` a non-empty list or tuple of integers
    >= 1 (numpy integers stored as Python ints; bools refused), ``binarization``
    "stochastic" or "none"."""

    epochs: int = 30
    learning_rate: float = 0.01
    batch_size: int = 100
    k_schedule: tuple = (3, 6, 10)
    momentum: float = 0.0
    weight_decay: float = 0.0
    # Wake-phase pixels: "stochastic" (binarized anew every epoch) or "none" (the grey
    # levels as probabilities, the paper's data; the sleep phase learns from probabilities
    # either way).
    binarization: str = "stochastic"

    # Options added after runs were cached, at the value that reproduces those runs:
    # left out of ``cache_settings`` there, so the cached runs stay valid.
    _NEUTRAL = {"momentum": 0.0, "weight_decay": 0.0, "binarization": "stochastic"}

    CONSTRAINTS = {  # not a field (no annotation): to_dict() is unchanged
        "epochs": check.Integer(1),
        "learning_rate": check.Real(0.0, low_open=True),
        "batch_size": check.Integer(1),
        "k_schedule": check.IntegerSequence(1),
        "momentum": check.Real(0.0, 1.0, high_open=True),
        "weight_decay": check.Real(0.0),
        "binarization": check.Choice(("stochastic", "none")),
    }

    def __post_init__(self):
        check.validate_fields(self, self.CONSTRAINTS)
        for name in ("momentum", "weight_decay"):
            object.__setattr__(self, name, float(getattr(self, name)))

    def k_at(self, epoch):
        """Gibbs steps of the top RBM in ``epoch`` (0-based, an integer >= 0)."""
        epoch = check.check_int("epoch", epoch, low=0)
        stage = min(epoch * len(self.k_schedule) // self.epochs, len(self.k_schedule) - 1)
        return self.k_schedule[stage]

    def to_dict(self):
        return dataclasses.asdict(self)

    def cache_settings(self):
        """``to_dict()`` without the later-added options that sit at their neutral value."""
        return {k: v for k, v in self.to_dict().items()
                if not (k in self._NEUTRAL and v == self._NEUTRAL[k])}


# The density-model recipe of the likelihood runs (experiments/train_rbm.py): 60 epochs,
# learning rate decayed linearly to 0, no weight decay.
LIKELIHOOD_RBM = RBMTrainingConfig(n_hidden=500, epochs=60, learning_rate=0.05,
                                   final_learning_rate=0.0, weight_decay=0.0)

# Hinton & Salakhutdinov (2006) classifier pretraining, with the learning rate we use
# for binarized data (0.05) and their weight cost 2e-4 (good for classifier features).
HINTON_LAYER = RBMTrainingConfig(
    n_hidden=500, epochs=50, learning_rate=0.05, final_learning_rate=None, weight_decay=2e-4
)


METHODS = ("cg", "lbfgs", "adam")
# Strong Wolfe constants (c1, c2) of CG's line search: scipy's defaults, and Rasmussen's
# minimize.m (RHO = SIG / 2, SIG = 0.1), the line search of Hinton & Salakhutdinov's runs.
SCIPY_CG_WOLFE = (1e-4, 0.4)
MINIMIZE_M_WOLFE = (0.05, 0.1)


@dataclasses.dataclass(frozen=True)
class MinimizeConfig:
    """Fine-tuning by ``dbn.training.minimize.train_epochs``: conjugate gradients or
    L-BFGS (``scipy.optimize.minimize``, ``line_searches`` iterations on each mini-batch,
    as Hinton & Salakhutdinov's ``backprop.m`` / ``minimize.m``: batches of 1,000, 3 line
    searches, 200 epochs), or Adam (``learning_rate``, one step per mini-batch).
    ``warmup_epochs``: only the caller's warm-up variables are trained during the first
    epochs (``backpropclassify.m``: the top layer alone for 5 epochs).

    ``wolfe``: the (sufficient decrease, curvature) constants of CG's strong Wolfe line
    search, ``(c1, c2)`` with 0 < c1 < c2 < 1: scipy's own (1e-4, 0.4) by default, or
    ``minimize.m``'s (RHO, SIG) = ``MINIMIZE_M_WOLFE`` (0.05, 0.1), which demands a more
    exact minimum along each direction (CG only: scipy's L-BFGS-B has its own fixed
    line search).

    ``CONSTRAINTS`` is checked in ``__post_init__``: ``method`` in ``METHODS``;
    ``epochs``, ``batch_size``, ``line_searches`` integers >= 1; ``learning_rate`` finite
    > 0; ``warmup_epochs`` an integer in [0, epochs)."""

    method: str = "cg"
    epochs: int = 200
    batch_size: int = 1000
    line_searches: int = 3
    learning_rate: float = 1e-3
    warmup_epochs: int = 0
    wolfe: tuple = SCIPY_CG_WOLFE

    CONSTRAINTS = {  # not a field (no annotation): to_dict() is unchanged
        "method": check.Choice(METHODS),
        "epochs": check.Integer(1),
        "batch_size": check.Integer(1),
        "line_searches": check.Integer(1),
        "learning_rate": check.Real(0.0, low_open=True),
        "warmup_epochs": check.Integer(0),
    }

    def __post_init__(self):
        check.validate_fields(self, self.CONSTRAINTS)
        if not self.warmup_epochs < self.epochs:
            raise ValueError(f"warmup_epochs={self.warmup_epochs} must be in [0, epochs={self.epochs})")
        wolfe = self.wolfe
        if (isinstance(wolfe, (str, bytes)) or not hasattr(wolfe, "__len__") or len(wolfe) != 2):
            raise ValueError(f"wolfe={wolfe!r} must be a pair (c1, c2) with 0 < c1 < c2 < 1")
        c1 = check.check_float("wolfe[0]", wolfe[0], low=0.0, high=1.0, low_open=True, high_open=True)
        c2 = check.check_float("wolfe[1]", wolfe[1], low=0.0, high=1.0, low_open=True, high_open=True)
        if not c1 < c2:
            raise ValueError(f"wolfe={wolfe!r} must be a pair (c1, c2) with 0 < c1 < c2 < 1")
        object.__setattr__(self, "wolfe", (c1, c2))
        if self.method != "cg" and self.wolfe != SCIPY_CG_WOLFE:
            raise ValueError(f"wolfe={wolfe!r} with method={self.method!r}: only CG's line search "
                             f"takes Wolfe constants (leave the default {SCIPY_CG_WOLFE})")

    def to_dict(self):
        """Every field, but ``wolfe`` only when it is not scipy's default (runs recorded
        before it existed keep their key)."""
        settings = dataclasses.asdict(self)
        if self.wolfe == SCIPY_CG_WOLFE:
            settings.pop("wolfe")
        else:
            settings["wolfe"] = list(self.wolfe)
        return settings
