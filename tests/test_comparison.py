"""Tests of dbn.protocols.comparison, the pretrained-vs-random protocol: which split every stage
sees (pretraining: training + validation images, never the test images; early
stopping: the validation split; refit: training + validation labels) and which split
every reported number is computed on (test error: the test split, once, on the network
whose checkpoint is reported).

A tiny 784-16 network on 300 / 200 / 300 MNIST images keeps this fast.  The test
labels are shifted by one class, so a number computed on the test split cannot equal
one computed on the validation split by chance.
"""

import dataclasses

import keras
import numpy as np
import pytest

import dbn.protocols.comparison
from dbn import data as datasets
from dbn.training.configs import FineTuneConfig
from dbn.training.configs import RBMTrainingConfig

LAYER = RBMTrainingConfig(epochs=1, learning_rate=0.05, final_learning_rate=None)


@pytest.fixture(scope="module")
def data():
    d = datasets.load(n_train=300, validation_size=200, seed=0)
    return dataclasses.replace(d, x_test=d.x_test[:300], y_test=(d.y_test[:300] + 1) % 10)


def rows(x):
    return {row.tobytes() for row in np.asarray(x, np.float32)}


def split_of(data, x):
    """The split ``x`` is (or is a subset of), by its rows."""
    x = np.asarray(x, np.float32)
    for name in ("train", "val", "test"):
        if np.array_equal(x, getattr(data, f"x_{name}")):
            return name
    if np.array_equal(x, np.concatenate([data.x_train, data.x_val])):
        return "train+val"
    if rows(x) <= rows(data.x_train):
        return "train subset"
    return "other"


class Recorder:
    """Wraps the stages ``compare`` uses (by their names in dbn.protocols.comparison, and the
    DBN's pretraining) and records which split each saw and what it returned."""

    def __init__(self, monkeypatch, data):
        self.data, self.calls = data, []
        real_pretrain = dbn.protocols.comparison.DBN.pretrain
        real = {name: getattr(dbn.protocols.comparison, name)
                for name in ("fine_tune", "fit_schedule", "error_rate")}

        def pretrain(model, x, *args, **kwargs):
            self.calls.append(("pretrain", split_of(data, x), x))
            return real_pretrain(model, x, *args, **kwargs)

        def fine_tune(model, x, y, x_val, y_val, *args, **kwargs):
            out = real["fine_tune"](model, x, y, x_val, y_val, *args, **kwargs)
            self.calls.append(("fine_tune", (split_of(data, x), split_of(data, x_val)), out))
            self.check_labels(x, y)
            self.check_labels(x_val, y_val)
            return out

        def fit_schedule(model, x, y, *args, **kwargs):
            self.calls.append(("fit_schedule", split_of(data, x), None))
            self.check_labels(x, y)
            return real["fit_schedule"](model, x, y, *args, **kwargs)

        def error_rate(model, x, y, *args, **kwargs):
            out = real["error_rate"](model, x, y, *args, **kwargs)
            self.calls.append(("error_rate", split_of(data, x), out))
            self.check_labels(x, y)
            return out

        monkeypatch.setattr(dbn.protocols.comparison.DBN, "pretrain", pretrain)
        for name, fn in [("fine_tune", fine_tune), ("fit_schedule", fit_schedule),
                         ("error_rate", error_rate)]:
            monkeypatch.setattr(dbn.protocols.comparison, name, fn)

    def check_labels(self, x, y):
        """The labels passed with ``x`` are that split's labels, row for row."""
        d = self.data
        lookup = {}
        for name in ("train", "val", "test"):
            for row, label in zip(getattr(d, f"x_{name}"), getattr(d, f"y_{name}")):
                lookup.setdefault(row.tobytes(), set()).add((name, int(label)))
        split = split_of(d, x)
        for row, label in zip(np.asarray(x, np.float32), np.asarray(y)):
            names = {n for n, lab in lookup[row.tobytes()] if lab == int(label)}
            assert names, f"a label passed with the {split} images is not that image's label"

    def of(self, stage):
        return [(split, out) for name, split, out in self.calls if name == stage]


def test_each_stage_sees_its_split_and_each_number_is_computed_on_its_split(data, tmp_path,
                                                                           monkeypatch):
    recorder = Recorder(monkeypatch, data)
    config = FineTuneConfig(learning_rate=0.01, max_epochs=4, patience=4, refit=True)
    runs = dbn.protocols.comparison.compare(data, layer_sizes=[784, 16], layer_configs=LAYER,
                                  finetune_config=config, seeds=[0], inits=("pretrained", "glorot"),
                                  checkpoint_root=tmp_path, tag="test", verbose=0)
    # Pretraining: once, on the training and validation images; no test image.
    ((split, x),) = recorder.of("pretrain")
    assert split == "train+val"
    assert not rows(x) & rows(data.x_test)
    # Early stopping on the validation split; refits on training + validation labels.
    assert [split for split, _ in recorder.of("fine_tune")] == [("train", "val")] * 2
    assert [split for split, _ in recorder.of("fit_schedule")] == ["train+val"] * 2
    # Test errors: on the test split only, once per trained network (2 runs + 2 refits).
    errors = recorder.of("error_rate")
    assert [split for split, _ in errors] == ["test"] * 4
    early_stopped = [out for (name, _, out) in recorder.calls if name == "fine_tune"]
    by_init = {run["init"]: run for run in runs}
    assert list(by_init) == ["pretrained", "glorot"]
    for i, init in enumerate(("pretrained", "glorot")):
        run = by_init[init]
        assert run["val_error"] == early_stopped[i]["best_val_error"]
        assert run["early_stopped_test_error"] == errors[2 * i][1]
        assert run["test_error"] == run["refit"]["test_error"] == errors[2 * i + 1][1]
        # ... and of the network whose checkpoint the run reports.
        for key, directory in (("test_error", "run_dir"),
                               ("early_stopped_test_error", "early_stopped_run_dir")):
            model = dbn.protocols.comparison.load_classifier(tmp_path, run[directory])  # hashes verified
            predictions = np.argmax(model.predict(data.x_test, verbose=0), axis=1)
            assert run[key] == float(np.mean(predictions != data.y_test)), (init, key)
        # The shifted test labels make the test error high; the validation error is not.
        assert run["early_stopped_test_error"] > run["val_error"] + 0.3, run


def test_a_label_budget_is_drawn_from_the_training_split(data, tmp_path, monkeypatch):
    recorder = Recorder(monkeypatch, data)
    runs = dbn.protocols.comparison.compare(data, layer_sizes=[784, 16], layer_configs=LAYER,
                                  finetune_config=FineTuneConfig(max_epochs=1, patience=1),
                                  seeds=[0], inits=("glorot",), label_budgets=(50,),
                                  checkpoint_root=tmp_path, tag="test", verbose=0)
    assert recorder.of("pretrain") == []  # random inits need no pretraining
    assert [split for split, _ in recorder.of("fine_tune")] == [("train subset", "val")]
    assert [split for split, _ in recorder.of("error_rate")] == ["test"]
    assert runs[0]["n_labels"] == 50 and runs[0]["label_budget"] == 50
