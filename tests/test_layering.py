"""The package's layering, enforced: a module imports only modules of its own layer or
lower ones (the README's Layout section draws the same picture).

Every module of dbn/ must be listed in ``LAYERS`` (a new module is placed on purpose),
except the facades that only re-export: the package ``__init__``s and the former
module paths kept for one release.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "dbn"

LAYERS = [
    # 0: no TensorFlow models; pure helpers, data and maths
    ["dbn.validation", "dbn.provenance", "dbn.plots", "dbn.data.mnist", "dbn.data.tfds",
     "dbn.data.pipeline", "dbn.data.splits", "dbn.ops", "dbn.seeds", "dbn.estimation.exact",
     "dbn.distribute", "dbn.progress", "dbn.protocols.statistics"],
    # 1: the RBM model; configs and run directories
    ["dbn.models.rbm", "dbn.training.configs", "dbn.training.checkpoint"],
    # 2: what is built on one RBM
    ["dbn.models.classifier", "dbn.training.callbacks"],
    # 3: training procedures and estimators
    ["dbn.training.pretrain", "dbn.training.finetune", "dbn.estimation.ais",
     "dbn.estimation.reverse", "dbn.estimation.dbn_bound"],
    # 4-5: stacks trained by those procedures
    ["dbn.models.dbn", "dbn.training.minimize"],
    ["dbn.models.generative", "dbn.models.autoencoder"],
    # 6: experimental protocols; 7: the experiments' command-line options
    ["dbn.protocols.comparison", "dbn.protocols.autoencoder"],
    ["dbn.options"],
    # 8: the faces for users: the `dbn` program, scikit-learn estimators
    ["dbn.program", "dbn.program.common", "dbn.program.modeldir", "dbn.program.pretrain",
     "dbn.program.finetune", "dbn.program.sample", "dbn.program.evaluate",
     "dbn.program.experiment", "dbn.sklearn"],
]
RANK = {module: rank for rank, modules in enumerate(LAYERS) for module in modules}
FORMER = {"dbn.rbm", "dbn.dbn", "dbn.generative", "dbn.finetune", "dbn.checkpoint", "dbn.ais",
          "dbn.comparison", "dbn.datasets", "dbn.cli"}  # deprecated aliases, one release
FACADES = {"dbn", "dbn.data", "dbn.models", "dbn.training", "dbn.estimation", "dbn.protocols",
           *FORMER}


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_dbn_modules(path):
    """Every dbn module ``path`` imports, anywhere in the file (functions included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "dbn"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "dbn":
            for a in node.names:  # `from dbn.data import pipeline` imports dbn.data.pipeline
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in RANK or sub in FACADES else node.module)
    return found


MODULES = sorted(module_name(p) for p in PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    unplaced = [m for m in MODULES if m not in RANK and m not in FACADES]
    assert not unplaced, f"place these modules in LAYERS (tests/test_layering.py): {unplaced}"
    assert not [m for m in RANK if m not in MODULES], "LAYERS names a module that does not exist"


@pytest.mark.parametrize("module", [m for m in MODULES if m in RANK])
def test_no_module_imports_a_higher_layer(module):
    path = PACKAGE.parent / (module.replace(".", "/") + ".py")
    if not path.is_file():  # a package with code in its __init__ (dbn.program)
        path = PACKAGE.parent / module.replace(".", "/") / "__init__.py"
    for imported in imported_dbn_modules(path):
        assert imported not in FORMER, f"{module} imports the former path {imported}"
        if imported in RANK:
            assert RANK[imported] <= RANK[module], (
                f"{module} (layer {RANK[module]}) imports {imported} (layer {RANK[imported]})")


def test_the_check_catches_an_upward_import(tmp_path):
    """The check itself: a planted upward import is found."""
    planted = tmp_path / "rbm.py"
    planted.write_text("from dbn.models.dbn import DBN\n\ndef f():\n    import dbn.protocols.comparison\n")
    found = imported_dbn_modules(planted)
    assert found == {"dbn.models.dbn", "dbn.protocols.comparison"}
    assert max(RANK[m] for m in found) > RANK["dbn.models.rbm"]


@pytest.mark.parametrize("old, names", [
    ("dbn.rbm", ["RBM", "MomentumSchedule", "exact_log_partition", "free_energy", "DivergenceError"]),
    ("dbn.dbn", ["DBN", "build_classifier", "hidden_layers", "HINTON_LAYER", "INITS"]),
    ("dbn.datasets", ["load", "binarize", "to_dataset", "epoch_datasets", "DATASET_DIR", "Splits"]),
    ("dbn.finetune", ["FineTuneConfig", "fine_tune", "error_rate", "refit_schedule"]),
    ("dbn.generative", ["GenerativeDBN", "UpDownConfig"]),
    ("dbn.comparison", ["compare", "summarize", "RESULT_KEYS"]),
    ("dbn.ais", ["ais_log_partition", "evaluate_log_likelihood", "summarize"]),
    ("dbn.checkpoint", ["RunDir", "fingerprint"]),
    ("dbn.cli", ["parser", "layer_config", "finetune_config"]),
    ("dbn.training", ["RBMTrainingConfig", "train_rbm", "build_rbm", "GibbsStepsSchedule",
                      "training_seconds", "MomentumSchedule"]),
])
def test_former_import_paths_still_work_for_one_release(old, names):
    import importlib
    import sys
    import warnings

    sys.modules.pop(old, None) if old != "dbn.training" else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    for name in names:
        assert getattr(module, name) is not None, (old, name)
    if old != "dbn.training":  # a package now: its former names load without a warning
        assert any(issubclass(w.category, DeprecationWarning) and "moved to" in str(w.message)
                   for w in caught), old
