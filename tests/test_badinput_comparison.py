"""Bad inputs to dbn.protocols.comparison (compare, run_one, refit_one, summarize_errors) and
dbn.provenance.record: ValueErrors naming the argument before any pretraining,
fine-tuning or file."""

import numpy as np
import pytest

from dbn import provenance
from dbn.protocols import comparison
from dbn import data as datasets
from dbn.training.configs import FineTuneConfig
from dbn.training.configs import RBMTrainingConfig

LAYER = RBMTrainingConfig(n_hidden=4, epochs=1)
FINETUNE = FineTuneConfig(max_epochs=1, patience=1)


@pytest.fixture(scope="module")
def data():
    return datasets.load(n_train=50, validation_size=20)


@pytest.mark.parametrize("kwargs, match", [
    (dict(seeds=[]), r"seeds=\[\] must be a non-empty list"),
    (dict(seeds=[0, 0]), r"seeds=\[0, 0\] must be a non-empty list without repeats"),
    (dict(seeds=[1.5]), r"seeds\[0\]=1.5"),
    (dict(seeds=[-1]), r"seeds\[0\]=-1"),
    (dict(seeds=3), r"seeds=3 must be a non-empty list"),
    (dict(inits=["xavier"]), r"inits\[0\]='xavier' must be one of"),
    (dict(inits="glorot"), r"inits='glorot' must be a non-empty list"),
    (dict(label_budgets=[10.0]), r"label_budgets\[0\]=10.0"),
    (dict(label_budgets=[0]), r"label_budgets\[0\]=0"),
    (dict(dropout=1.0), r"dropout=1.0"),
    (dict(layer_sizes=[784, 0]), r"layer_sizes\[1\]=0"),
    (dict(layer_configs="layer"), r"layer_configs='layer'"),
    (dict(finetune_config={}), r"finetune_config=\{\} must be a FineTuneConfig"),
    (dict(on_progress=3), r"on_progress=3 must be callable"),
    (dict(data="mnist"), r"data must be a dbn.data.Splits"),
])
def test_compare_refuses_before_any_work(tmp_path, data, kwargs, match):
    kwargs = {"data": data, "layer_sizes": [784, 4], "layer_configs": LAYER, "finetune_config": FINETUNE,
              "seeds": [0], "inits": ["glorot"], "checkpoint_root": tmp_path / "ckpt", "tag": "t",
              "verbose": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        comparison.compare(**kwargs)
    assert not (tmp_path / "ckpt").exists()


@pytest.mark.parametrize("tune", [False, True])
def test_refit_with_a_label_budget_is_refused_before_any_tuning(tmp_path, data, tune):
    # The rate tuning runs without refits: without this check up front, hours of tuning
    # would run before compare refused the refit.
    kwargs = {"data": data, "layer_sizes": [784, 4], "layer_configs": LAYER, "seeds": [0], "inits": ["glorot"],
              "finetune_config": FineTuneConfig(max_epochs=1, patience=1, refit=True),
              "label_budgets": [None, 20], "checkpoint_root": tmp_path / "ckpt", "tag": "t", "verbose": 0}
    with pytest.raises(ValueError, match=r"refit .* all-labels runs only; got label_budgets=\[None, 20\]"):
        if tune:
            comparison.compare_tuned(learning_rates=[1e-3, 3e-3], tune_seed=0, **kwargs)
        else:
            comparison.compare(**kwargs)
    assert not (tmp_path / "ckpt").exists()


@pytest.mark.parametrize("kwargs, match", [
    (dict(init="xavier"), r"init='xavier'"),
    (dict(init="pretrained"), r"init='pretrained' needs dbn_model, a pretrained DBN"),
    (dict(seed=-1), r"seed=-1"),
    (dict(dropout=-0.5), r"dropout=-0.5"),
    (dict(finetune_config=None), r"finetune_config=None"),
    (dict(label_budget=20.0), r"label_budget=20.0"),
])
def test_run_one_arguments(tmp_path, data, kwargs, match):
    kwargs = {"init": "glorot", "dbn_model": None, "layer_sizes": [784, 4], "finetune_config": FINETUNE,
              "seed": 0, "checkpoint_dir": tmp_path / "run", **kwargs}
    with pytest.raises(ValueError, match=match):
        comparison.run_one(data, **kwargs)
    assert not (tmp_path / "run").exists()


def test_refit_one_arguments(tmp_path, data):
    with pytest.raises(ValueError, match=r"val_error_curve|val_errors\[0\]=nan"):
        comparison.refit_one(data, init="glorot", dbn_model=None, layer_sizes=[784, 4],
                             finetune_config=FINETUNE, seed=0, val_error_curve=[np.nan],
                             checkpoint_dir=tmp_path / "refit")
    with pytest.raises(ValueError, match=r"seed=2.0"):
        comparison.refit_one(data, init="glorot", dbn_model=None, layer_sizes=[784, 4],
                             finetune_config=FINETUNE, seed=2.0, val_error_curve=[0.1])
    assert not (tmp_path / "refit").exists()


@pytest.mark.parametrize("errors, match", [
    ({"pretrained": []}, r"errors_by_init\['pretrained'\]=\[\] must be a non-empty list"),
    ({"pretrained": [0.1, np.nan]}, r"errors_by_init\['pretrained'\]\[1\]=nan"),
    ({"pretrained": [1.5]}, r"errors_by_init\['pretrained'\]\[0\]=1.5"),
    ([0.1], r"errors_by_init=\[0.1\] must be a dict"),
])
def test_summarize_arguments(errors, match):
    with pytest.raises(ValueError, match=match):
        comparison.summarize_errors(errors)


@pytest.mark.parametrize("kwargs, match", [
    (dict(config=[1]), r"config=\[1\] must be a dict"),
    (dict(results=None), r"results=None must be a dict"),
    (dict(started=float("nan")), r"started=nan"),
    (dict(started="now"), r"started='now'"),
    (dict(commit=1), r"commit=1 must be a str"),
])
def test_record_arguments(kwargs, match):
    kwargs = {"config": {}, "seed": 0, "started": 0.0, "results": {}, "commit": "abc", **kwargs}
    with pytest.raises(ValueError, match=match):
        provenance.record(**kwargs)
