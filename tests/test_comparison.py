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
import functools

import keras
import numpy as np
import pytest

import dbn.protocols.comparison
from dbn import data as datasets
from dbn.training.checkpoint import CheckpointMismatchError, RunDir
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


def test_a_kept_refit_is_refused_when_its_early_stopped_run_now_calls_for_another_schedule(
        data, tmp_path):
    """A refit is keyed by its early-stopped run's key, not by that run's best epoch: an
    early-stopped run recomputed since (another CPU, another best epoch) must not be
    reported with the refit of the old schedule."""
    config = FineTuneConfig(learning_rate=0.01, max_epochs=3, patience=3, refit=True)
    kwargs = dict(layer_sizes=[784, 16], layer_configs=LAYER, finetune_config=config, seeds=[0],
                  inits=("glorot",), checkpoint_root=tmp_path, tag="test", verbose=0)
    (run,) = dbn.protocols.comparison.compare(data, **kwargs)
    assert dbn.protocols.comparison.compare(data, **kwargs)[0]["test_error"] == run["test_error"]
    # The early-stopped run's outcome as if recomputed: its best epoch moves.
    path = tmp_path / run["early_stopped_run_dir"]
    with RunDir(path, None) as old:
        spec, result = old._manifest["spec"], old.state("result")
    best = run["best_epoch"]
    result["val_error_curve"] = [0.5] * 3
    result["val_error_curve"][2 if best < 3 else 0] = 0.1
    with RunDir(path, spec, keyed_by_strategy=False) as recomputed:
        recomputed.save(result=result)
    with pytest.raises(CheckpointMismatchError, match=r"trained \d epochs .* now calls for \d epochs .* delete "
                                                     r"the refit.s directory"):
        dbn.protocols.comparison.compare(data, **kwargs)


# --------------------------------------------------------------------------- tuned protocol
def test_summary_has_welch_confidence_intervals():
    from scipy import stats

    a, b = [0.011, 0.012, 0.010, 0.013], [0.016, 0.018, 0.015, 0.019]
    summary, tests = dbn.protocols.comparison.summarize_errors({"pretrained": a, "glorot": b})
    t = tests["pretrained_vs_glorot"]
    # Welch-Satterthwaite by hand.
    va, vb = np.var(a, ddof=1) / 4, np.var(b, ddof=1) / 4
    df = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 3)
    half = stats.t.ppf(0.975, df) * np.sqrt(va + vb)
    diff = np.mean(a) - np.mean(b)
    np.testing.assert_allclose(t["ci95"], [diff - half, diff + half], rtol=1e-10)
    assert t["df"] == pytest.approx(df) and t["mean_difference"] == pytest.approx(diff)
    assert t["runs"] == "all" and "fisher_p" not in t
    assert summary["glorot"]["std"] == pytest.approx(np.std(b, ddof=1))


def test_summary_tests_failed_runs_apart_from_the_trained_ones():
    """label_scarcity's 1,000-label N(0, 0.01^2) seeds: three of five failed.  A Welch
    interval over all five ran to -105 points (an error rate cannot differ by more than
    100); the t-test is over the runs that trained, the failures are counted (Fisher),
    and a rank test covers every run."""
    from scipy import stats

    a = [0.0568, 0.0559, 0.0561, 0.0559, 0.0543]
    b = [0.1271, 0.899, 0.8865, 0.1223, 0.8865]
    summary, tests = dbn.protocols.comparison.summarize_errors({"pretrained": a, "normal": b})
    t = tests["pretrained_vs_normal"]
    assert summary["normal"]["n_failed"] == 3 and summary["pretrained"]["n_failed"] == 0
    assert summary["normal"]["mean"] == pytest.approx(np.mean(b))  # the failures stay in the mean
    assert summary["normal"]["mean_trained"] == pytest.approx(np.mean([0.1271, 0.1223]))
    trained = stats.ttest_ind(a, [0.1271, 0.1223], equal_var=False)
    assert t["runs"] == "trained" and t["p_value"] == pytest.approx(trained.pvalue)
    np.testing.assert_allclose(t["ci95"], trained.confidence_interval(0.95), rtol=1e-10)
    assert -1.0 <= t["ci95"][0] < t["ci95"][1] <= 1.0
    assert t["mean_difference"] == pytest.approx(np.mean(a) - np.mean([0.1271, 0.1223]))
    assert t["mean_difference_all_runs"] == pytest.approx(np.mean(a) - np.mean(b))
    assert t["n_failed"] == [0, 3] and t["n_seeds"] == [5, 5]
    assert t["fisher_p"] == pytest.approx(stats.fisher_exact([[0, 5], [3, 2]]).pvalue)  # 0.167
    assert t["rank_sum_p"] == pytest.approx(stats.mannwhitneyu(a, b).pvalue)  # 0.012
    # One trained run left: no t-test, but the counts and the rank test still stand.
    t = dbn.protocols.comparison.summarize_errors({"pretrained": a, "normal": [0.9, 0.9, 0.12]})[1][
        "pretrained_vs_normal"]
    assert t["p_value"] is None and t["fisher_p"] is not None and "trained runs" in t["note"]


def test_tuning_chooses_each_init_rate_on_validation_and_runs_every_seed_at_it(data, monkeypatch):
    """A fake ``compare`` whose validation and test errors disagree: the chosen rate is the
    validation one, per init (the random init gets its own), tuned on ``tune_seed`` only,
    and every seed then runs at its init's rate."""
    calls = []
    val = {("pretrained", 1e-3): 0.02, ("pretrained", 3e-3): 0.03,
           ("glorot", 1e-3): 0.05, ("glorot", 3e-3): 0.04}

    def fake_compare(data, *, finetune_config, seeds, inits, label_budgets=(None,), **kwargs):
        calls.append((finetune_config.learning_rate, tuple(seeds), tuple(inits), finetune_config.refit))
        return [{"seed": s, "init": i, "label_budget": b, "val_error": val[(i, finetune_config.learning_rate)],
                 "test_error": 1 - val[(i, finetune_config.learning_rate)]}
                for s in seeds for b in label_budgets for i in inits]

    monkeypatch.setattr(dbn.protocols.comparison, "compare", fake_compare)
    runs, tuning = dbn.protocols.comparison.compare_tuned(
        data, learning_rates=[1e-3, 3e-3], tune_seed=7, seeds=[7, 8, 9], inits=["pretrained", "glorot"],
        finetune_config=FineTuneConfig(refit=True), layer_sizes=[784, 16], layer_configs=LAYER, tag="t")
    assert tuning["all"]["pretrained"]["chosen"] == 1e-3 and tuning["all"]["glorot"]["chosen"] == 3e-3
    assert tuning["all"]["glorot"]["val_error"] == {"0.001": 0.05, "0.003": 0.04}
    tuning_calls = [c for c in calls if c[1] == (7,) and len(c[2]) == 2]
    assert [c[0] for c in tuning_calls] == [1e-3, 3e-3] and not any(c[3] for c in tuning_calls)
    assert (1e-3, (7, 8, 9), ("pretrained",), True) in calls  # refit kept for the real runs
    assert (3e-3, (7, 8, 9), ("glorot",), True) in calls
    assert {(r["init"], r["learning_rate"]) for r in runs} == {("pretrained", 1e-3), ("glorot", 3e-3)}
    assert len(runs) == 6 and all(r["tuning_val_error"] for r in runs)
    with pytest.raises(ValueError, match="learning_rates"):
        dbn.protocols.comparison.tune_learning_rates(data, learning_rates=[1e-3, 1e-3], tune_seed=0,
                                                     finetune_config=FineTuneConfig())
    with pytest.raises(ValueError, match=r"learning_rates\[0\]"):
        dbn.protocols.comparison.tune_learning_rates(data, learning_rates=[-1.0], tune_seed=0,
                                                     finetune_config=FineTuneConfig())


def test_dropout_is_tuned_per_init_at_its_chosen_rate_and_every_seed_runs_with_it(data, monkeypatch):
    """After the rates, each init's dropout is chosen on the validation split at its own
    rate (the starting point's run is the rate tuning's, not run again; a tie keeps it),
    on the tuning seed without refit; every seed then runs with its init's dropout, and
    the runs record it with the errors behind the choice."""
    start = (0.2, 0.5)
    val = {("pretrained", 1e-3, start): 0.02, ("pretrained", 3e-3, start): 0.03,
           ("pretrained", 1e-3, (0.1, 0.25)): 0.015, ("pretrained", 1e-3, 0.3): 0.018,
           ("glorot", 1e-3, start): 0.05, ("glorot", 3e-3, start): 0.04,
           ("glorot", 3e-3, (0.1, 0.25)): 0.06, ("glorot", 3e-3, 0.3): 0.04}
    calls = []

    def fake_compare(data, *, finetune_config, seeds, inits, label_budgets=(None,), dropout=0.0, **kwargs):
        setting = tuple(dropout) if isinstance(dropout, (list, tuple)) else dropout
        calls.append((finetune_config.learning_rate, tuple(seeds), tuple(inits), setting, finetune_config.refit))
        return [{"seed": s, "init": i, "label_budget": b, "test_error": 0.5,
                 "val_error": val[(i, finetune_config.learning_rate, setting)]}
                for s in seeds for b in label_budgets for i in inits]

    monkeypatch.setattr(dbn.protocols.comparison, "compare", fake_compare)
    runs, tuning = dbn.protocols.comparison.compare_tuned(
        data, learning_rates=[1e-3, 3e-3], tune_seed=7, seeds=[7, 8], inits=["pretrained", "glorot"],
        finetune_config=FineTuneConfig(refit=True), dropout=start, dropouts=[(0.1, 0.25), 0.3],
        layer_sizes=[784, 16], layer_configs=LAYER, tag="t")
    pretrained, glorot = tuning["all"]["pretrained"], tuning["all"]["glorot"]
    assert pretrained["dropout"] == {"chosen": [0.1, 0.25],
                                     "val_error": {"0.2,0.5": 0.02, "0.1,0.25": 0.015, "0.3": 0.018}}
    assert glorot["chosen"] == 3e-3 and glorot["dropout"]["chosen"] == [0.2, 0.5]  # a tie keeps the start
    # The starting point's runs are the rate tuning's only (one per rate, both inits).
    assert [c for c in calls if c[3] == start and c[1] == (7,)] == [
        (1e-3, (7,), ("pretrained", "glorot"), start, False), (3e-3, (7,), ("pretrained", "glorot"), start, False)]
    dropout_calls = [c for c in calls if c[3] != start and c[1] == (7,)]
    assert dropout_calls == [(1e-3, (7,), ("pretrained",), (0.1, 0.25), False), (1e-3, (7,), ("pretrained",), 0.3, False),
                             (3e-3, (7,), ("glorot",), (0.1, 0.25), False), (3e-3, (7,), ("glorot",), 0.3, False)]
    assert (1e-3, (7, 8), ("pretrained",), (0.1, 0.25), True) in calls
    assert (3e-3, (7, 8), ("glorot",), (0.2, 0.5), True) in calls
    assert {(r["init"], tuple(r["dropout"])) for r in runs} == {("pretrained", (0.1, 0.25)), ("glorot", (0.2, 0.5))}
    assert all(r["tuning_dropout_val_error"] == tuning["all"][r["init"]]["dropout"]["val_error"] for r in runs)
    tune = functools.partial(dbn.protocols.comparison.tune_dropout, data, tuning, tune_seed=7,
                             finetune_config=FineTuneConfig(), inits=["pretrained"], dropout=start)
    for bad in ([], [(0.2, 0.5)], [0.3, 0.3], [1.5], [(0.2, float("nan"))], [(0.1, 0.2, 0.3)]):
        with pytest.raises(ValueError, match="dropout"):
            tune(dropouts=bad)
    with pytest.raises(ValueError, match="dropout"):  # 0.5 on the hidden layers alone is (0, 0.5)
        tune(dropouts=[0.5], dropout=(0.0, 0.5))


def test_tuning_extends_the_grid_past_a_winning_edge_per_init(data, monkeypatch):
    """Validation error falls towards larger rates for glorot up to 0.01, and towards
    smaller ones for normal down to 9e-5: each grid grows past its winning edge (3e-3 ->
    9e-3 -> 3e-2; 3e-4 -> 9e-5 -> 3e-5) until the winner is inside, at most ``extend``
    times; the pretrained winner is inside the grid and gets no extra run."""
    curves = {"pretrained": {3e-4: 0.03, 1e-3: 0.02, 3e-3: 0.025},
              "glorot": {3e-4: 0.06, 1e-3: 0.05, 3e-3: 0.04, 9e-3: 0.035, 3e-2: 0.9},
              "normal": {3e-5: 0.07, 9e-5: 0.05, 3e-4: 0.06, 1e-3: 0.08, 3e-3: 0.9}}
    calls = []

    def fake_compare(data, *, finetune_config, seeds, inits, label_budgets=(None,), **kwargs):
        calls.append((finetune_config.learning_rate, tuple(inits)))
        return [{"seed": s, "init": i, "label_budget": b, "test_error": 0.5,
                 "val_error": curves[i][finetune_config.learning_rate]}
                for s in seeds for b in label_budgets for i in inits]

    monkeypatch.setattr(dbn.protocols.comparison, "compare", fake_compare)
    tune = functools.partial(dbn.protocols.comparison.tune_learning_rates, data,
                             learning_rates=[3e-4, 1e-3, 3e-3], tune_seed=0, finetune_config=FineTuneConfig(),
                             inits=["pretrained", "glorot", "normal"])
    table = tune(extend=2)["all"]
    assert [table[i]["chosen"] for i in ("pretrained", "glorot", "normal")] == [1e-3, 9e-3, 9e-5]
    assert list(table["glorot"]["val_error"]) == ["0.0003", "0.001", "0.003", "0.009", "0.03"]
    assert list(table["normal"]["val_error"]) == ["0.0003", "0.001", "0.003", "9e-05", "3e-05"]
    assert [c for c in calls if len(c[1]) == 1] == [(9e-3, ("glorot",)), (3e-2, ("glorot",)),
                                                    (9e-5, ("normal",)), (3e-5, ("normal",))]
    calls.clear()
    table = tune(extend=1)["all"]  # one step: 9e-5 wins, at the new edge, and it stays there
    assert table["normal"]["chosen"] == 9e-5 and len(table["normal"]["val_error"]) == 4
    assert len(calls) == 3 + 2
    assert tune(extend=0)["all"]["glorot"]["chosen"] == 3e-3  # the grid alone
    beyond = dbn.protocols.comparison.rate_beyond_edge
    assert beyond({"0.001": 0.2, "0.0011": 0.1}) == pytest.approx(0.00121)
    # A tie with a rate inside the grid, or a flat grid, says nothing about what lies beyond.
    assert beyond({"0.0003": 0.05, "0.001": 0.05, "0.003": 0.06}) is None
    assert beyond({"0.003": 0.9, "0.001": 0.9, "0.0003": 0.9}) is None
    assert beyond({"0.0003": 0.04, "0.001": 0.05, "0.003": 0.06}) == 9e-5
    with pytest.raises(ValueError, match="extend=1 needs learning_rates with >= 2 rates"):
        tune(learning_rates=[1e-3], extend=1)
    with pytest.raises(ValueError, match="extend=-1"):
        tune(extend=-1)
