"""dbn: Restricted Boltzmann Machines and Deep Belief Networks on MNIST (TensorFlow 2 /
Keras 3).

The public API, importable from ``dbn`` directly (loaded on first use, so ``import dbn``
is cheap)::

    import dbn
    data = dbn.load(binarization="stochastic", seed=0)
    rbm = dbn.RBM(500, seed=0)

Where things live: ``dbn.data`` (MNIST, splits, pipelines), ``dbn.ops`` (the maths),
``dbn.models`` (RBM, DBN, classifier, generative DBN, deep autoencoder), ``dbn.training``
(configs, callbacks, pretraining, fine-tuning, the CG/L-BFGS/Adam driver, checkpoints), ``dbn.estimation`` (exact log Z,
forward AIS, reverse annealing (RAISE)), ``dbn.protocols`` (the pretrained-vs-random comparison), ``dbn.validation``,
``dbn.provenance``, ``dbn.plots``, ``dbn.distribute`` (tf.distribute strategies).
"""

import importlib

__version__ = "0.2.0"

_API = {
    "dbn.data": ["Splits", "balanced_subset", "binarize", "epoch_datasets", "likelihood_splits", "load",
                 "to_dataset"],
    "dbn.ops": ["free_energy", "hidden_probabilities", "visible_probabilities"],
    "dbn.models.rbm": ["RBM", "DivergenceError"],
    "dbn.models.dbn": ["DBN"],
    "dbn.models.classifier": ["build_classifier"],
    "dbn.models.generative": ["GenerativeDBN"],
    "dbn.models.autoencoder": ["DeepAutoencoder", "pretrain_stack"],
    "dbn.training.configs": ["FineTuneConfig", "HINTON_LAYER", "MinimizeConfig", "RBMTrainingConfig",
                             "UpDownConfig"],
    "dbn.training.minimize": ["train_epochs"],
    "dbn.training.callbacks": ["GibbsStepsSchedule", "MomentumSchedule"],
    "dbn.training.pretrain": ["train_rbm"],
    "dbn.training.finetune": ["error_rate", "fine_tune", "fit_schedule", "refit_schedule"],
    "dbn.training.checkpoint": ["RunDir", "fingerprint"],
    "dbn.estimation.exact": ["exact_log_partition"],
    "dbn.estimation.ais": ["ais_log_partition", "evaluate_log_likelihood"],
    "dbn.estimation.reverse": ["raise_log_probability"],
    "dbn.estimation.dbn_bound": ["dbn_lower_bound"],
    "dbn.protocols.comparison": ["compare"],
    "dbn.distribute": ["make_strategy", "split_cpu"],
}
_WHERE = {name: module for module, names in _API.items() for name in names}
__all__ = sorted(_WHERE)
SUBMODULES = ("data", "ops", "seeds", "models", "training", "estimation", "protocols", "validation",
              "provenance", "plots", "options", "distribute")


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    if name in SUBMODULES:  # dbn.data.load etc. after a bare `import dbn`
        return importlib.import_module(f"dbn.{name}")
    raise AttributeError(f"module 'dbn' has no attribute {name!r}")


def __dir__():
    return sorted(["__version__", *__all__, *SUBMODULES])
