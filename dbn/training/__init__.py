"""Training: configs (one validated dataclass per recipe), callbacks, RBM pretraining
(``pretrain``), backprop fine-tuning (``finetune``) and the verified, locked run
directories every resumable piece of work lives in (``checkpoint``).

The names of the former module ``dbn.training`` (``train_rbm``, ``RBMTrainingConfig``,
...) stay importable from here for one release; they load lazily, so importing
``dbn.training.checkpoint`` alone stays cheap.
"""

import importlib

_FORMER = {
    "pretrain": ["BATCHES_PER_ELEMENT", "RBM_FILE", "RBM_HYPERPARAMETERS", "WEIGHTS_FILE",
                 "build_rbm", "compile_rbm", "epoch_batches", "finished_rbm",
                 "rbm_spec", "record_pretraining_time", "save_finished_rbm", "train_rbm",
                 "training_seconds"],
    "configs": ["RBMTrainingConfig"],
    "callbacks": ["EpochTimer", "GibbsStepsSchedule", "MomentumSchedule"],
}
_WHERE = {name: module for module, names in _FORMER.items() for name in names}


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(f"dbn.training.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'dbn.training' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_WHERE))
