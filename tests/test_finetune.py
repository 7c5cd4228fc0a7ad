"""Tests of dbn.finetune: resumable fine-tuning, early stopping, the output-only phase,
config validation and error_rate.

Networks are 784-32-16-10 trained on a few hundred MNIST images for a handful of epochs.
A kill is simulated by raising right after fine_tune has saved an epoch in its run
directory (the atomic manifest write that commits an epoch), exactly where a real kill
between two epochs would leave the directory.
"""

import contextlib
import dataclasses
import json

import keras
import numpy as np
import pytest
from conftest import EPS32

from dbn.training import checkpoint
from dbn import data as datasets
from dbn.training import finetune
from dbn.models.classifier import build_classifier, hidden_layers
from dbn.training.configs import FineTuneConfig
from dbn.training.finetune import error_rate, fine_tune, fit_schedule, refit_schedule

SIZES = [784, 32, 16]


@pytest.fixture(scope="module")
def data():
    d = datasets.load(n_train=300, seed=0)
    return d.x_train, d.y_train, d.x_val[:300], d.y_val[:300]


def new_model(dropout=0.0, init="glorot"):
    keras.utils.set_random_seed(0)
    return build_classifier(SIZES, 10, init=init, dropout=dropout, seed=0)


class Killed(Exception):
    pass


@contextlib.contextmanager
def kill_after_epoch(monkeypatch, epoch):
    """Raise ``Killed`` once fine_tune has checkpointed ``epoch`` (1-based)."""
    real = checkpoint.RunDir.save

    def save(self, **kwargs):
        real(self, **kwargs)
        if any(isinstance(v, dict) and v.get("epoch") == epoch for v in kwargs.values()):
            raise Killed(f"killed after epoch {epoch}")

    monkeypatch.setattr(checkpoint.RunDir, "save", save)
    with pytest.raises(Killed):
        yield
    monkeypatch.setattr(checkpoint.RunDir, "save", real)


def run_state(directory, section):
    """The state ``section`` committed in the run directory's manifest."""
    return json.loads((directory / checkpoint.MANIFEST).read_text())["state"][section]


def run_file(directory, name):
    """The current file saved as ``name`` in a run directory."""
    manifest = json.loads((directory / checkpoint.MANIFEST).read_text())
    return directory / manifest["files"][name]["file"]


def count_epochs(monkeypatch):
    """Counts the epochs fine_tune trains (it evaluates the validation error once each)."""
    real, epochs = finetune.error_rate, []

    def error_rate(*args, **kwargs):
        epochs.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(finetune, "error_rate", error_rate)
    return epochs


def last_weights(checkpoint_dir, dropout):
    """The weights after the last finished epoch (not the restored best ones)."""
    model = new_model(dropout)
    model.load_weights(run_file(checkpoint_dir, "last.weights.h5"))
    return model.get_weights()


def assert_same_run(a, b, dropout=0.0):
    (model_a, result_a, ckpt_a), (model_b, result_b, ckpt_b) = a, b
    assert result_a == result_b  # history (loss, accuracy, val error per epoch), best epoch...
    for wa, wb in zip(model_a.get_weights(), model_b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    for wa, wb in zip(last_weights(ckpt_a, dropout), last_weights(ckpt_b, dropout)):
        np.testing.assert_array_equal(wa, wb)


# --------------------------------------------------------------------------- resume
@pytest.mark.parametrize(
    "output_only, dropout, kill_at",
    [
        (3, 0.0, 2),  # resumed inside the output-only phase, crosses into the full phase
        (2, 0.0, 2),  # killed exactly at the phase boundary
        (0, 0.3, 3),  # dropout masks must be the same after resuming
        (0, 0.0, 4),  # with a decaying learning rate (plateau_patience 1, see below)
    ],
    ids=["output_only_crossing", "output_only_boundary", "dropout", "plateau"],
)
def test_resume_after_kill_equals_uninterrupted(data, tmp_path, monkeypatch, output_only, dropout,
                                                kill_at, request):
    plateau = request.node.callspec.id == "plateau"
    config = FineTuneConfig(max_epochs=5, patience=10, output_only_epochs=output_only,
                            learning_rate=0.05 if plateau else 1e-3,
                            plateau_factor=0.5 if plateau else 1.0, plateau_patience=1)
    full_model = new_model(dropout)
    full = fine_tune(full_model, *data, config, seed=3, checkpoint_dir=tmp_path / "full")
    assert full["epochs_run"] == 5

    with kill_after_epoch(monkeypatch, kill_at):
        fine_tune(new_model(dropout), *data, config, seed=3, checkpoint_dir=tmp_path / "resumed")
    killed = run_state(tmp_path / "resumed", "fine_tune")
    assert killed["epoch"] == kill_at
    if plateau:  # the case exercises what it claims: the rate had decayed before the kill
        assert killed["learning_rate"] < config.learning_rate
    resumed_model = new_model(dropout)
    epochs = count_epochs(monkeypatch)
    resumed = fine_tune(resumed_model, *data, config, seed=3, checkpoint_dir=tmp_path / "resumed")
    assert len(epochs) == 5 - kill_at  # it resumed rather than starting over

    assert_same_run((full_model, full, tmp_path / "full"),
                    (resumed_model, resumed, tmp_path / "resumed"), dropout)
    if plateau:
        state = run_state(tmp_path / "full", "fine_tune")
        assert state["learning_rate"] == full["final_learning_rate"]


def test_resume_with_larger_max_epochs_equals_uninterrupted(data, tmp_path, monkeypatch):
    """The scheme of the issue: run max_epochs=3, then rerun the same directory with the
    full max_epochs=5 on a fresh model built the same way."""
    config = FineTuneConfig(max_epochs=5, patience=10)
    full_model = new_model()
    full = fine_tune(full_model, *data, config, seed=1, checkpoint_dir=tmp_path / "full")

    short = fine_tune(new_model(), *data, FineTuneConfig(max_epochs=3, patience=10), seed=1,
                      checkpoint_dir=tmp_path / "resumed")
    assert short["epochs_run"] == 3
    resumed_model = new_model()
    epochs = count_epochs(monkeypatch)
    resumed = fine_tune(resumed_model, *data, config, seed=1, checkpoint_dir=tmp_path / "resumed")
    assert resumed["epochs_run"] == 5 and len(epochs) == 2
    assert_same_run((full_model, full, tmp_path / "full"),
                    (resumed_model, resumed, tmp_path / "resumed"))


def test_dropout_is_active_during_training(data):
    """Guards the dropout resume variant: with dropout the run must actually differ."""
    config = FineTuneConfig(max_epochs=2, patience=10)
    plain = fine_tune(new_model(0.0), *data, config, seed=3)
    dropped = fine_tune(new_model(0.3), *data, config, seed=3)
    assert plain["history"]["loss"] != dropped["history"]["loss"]


# --------------------------------------------------------------------------- early stopping
def test_early_stopping_restores_best_weights(data):
    x, y, xv, yv = data
    # 100 examples and a large step: validation error peaks early, then gets worse.
    config = FineTuneConfig(learning_rate=1.0, max_epochs=40, patience=2)
    model = new_model()
    result = fine_tune(model, x[:100], y[:100], xv, yv, config, seed=0)
    curve = result["history"]["val_error"]
    assert result["stopped_early"]
    assert result["epochs_run"] == len(curve) == result["best_epoch"] + config.patience < 40
    assert result["best_val_error"] == min(curve) == curve[result["best_epoch"] - 1]
    assert curve[-1] != result["best_val_error"]  # so restoring the best weights matters
    assert error_rate(model, xv, yv) == result["best_val_error"]


def test_early_stopping_counts_epochs_without_strict_improvement(data, monkeypatch):
    """Scripted validation errors: best at epoch 3, a tie at epoch 4 does not count as an
    improvement, so with patience 3 training stops after epoch 6 and the weights of
    epoch 3 are returned."""
    script = iter([0.5, 0.4, 0.3, 0.3, 0.35, 0.31, 0.1, 0.1])
    snapshots = []

    def scripted_error_rate(model, x, y, **kw):
        snapshots.append(model.get_weights())
        return next(script)

    monkeypatch.setattr(finetune, "error_rate", scripted_error_rate)
    model = new_model()
    result = fine_tune(model, *data, FineTuneConfig(max_epochs=10, patience=3), seed=0)
    assert result["history"]["val_error"] == [0.5, 0.4, 0.3, 0.3, 0.35, 0.31]
    assert (result["best_epoch"], result["best_val_error"]) == (3, 0.3)
    assert result["epochs_run"] == 6 and result["stopped_early"]
    for returned, best in zip(model.get_weights(), snapshots[2]):
        np.testing.assert_array_equal(returned, best)
    assert not np.array_equal(model.get_weights()[0], snapshots[-1][0])


def test_no_early_stop_when_still_improving(data, monkeypatch):
    script = iter([0.5, 0.4, 0.3])
    monkeypatch.setattr(finetune, "error_rate", lambda *a, **k: next(script))
    result = fine_tune(new_model(), *data, FineTuneConfig(max_epochs=3, patience=1), seed=0)
    assert result["epochs_run"] == 3 and result["best_epoch"] == 3
    assert not result["stopped_early"]


def test_rerun_of_an_early_stopped_run_changes_nothing(data, tmp_path):
    """BUG (dbn/finetune.py, fine_tune loop): resuming a checkpoint whose run already
    stopped early trains further epochs instead of returning the finished result, so a
    run killed after fine_tune returned but before its result was cached (compare())
    ends with different numbers."""
    x, y, xv, yv = data
    config = FineTuneConfig(learning_rate=1.0, max_epochs=40, patience=2)
    first = fine_tune(new_model(), x[:100], y[:100], xv, yv, config, seed=0,
                      checkpoint_dir=tmp_path)
    assert first["stopped_early"]
    again = fine_tune(new_model(), x[:100], y[:100], xv, yv, config, seed=0,
                      checkpoint_dir=tmp_path)
    assert again == first


def test_plateau_decays_the_learning_rate_after_patience_epochs_without_improvement(
        data, monkeypatch):
    """Scripted validation errors: improvements at epochs 1, 2 and 6; with plateau
    patience 2 the rate halves after epochs 4 (2nd epoch without a new best) and 8
    (after the new best at 6, the count restarts).  The optimizer trains with the
    decayed rate in the following epoch."""
    script = iter([0.5, 0.4, 0.45, 0.41, 0.42, 0.3, 0.31, 0.32, 0.33])
    rates = []

    def scripted_error_rate(model, x, y, **kw):
        rates.append(float(model.optimizer.learning_rate.numpy()))  # rate used this epoch
        return next(script)

    monkeypatch.setattr(finetune, "error_rate", scripted_error_rate)
    config = FineTuneConfig(learning_rate=0.01, max_epochs=9, patience=10, plateau_factor=0.5,
                            plateau_patience=2)
    result = fine_tune(new_model(), *data, config, seed=0)
    expected = [0.01] * 4 + [0.005] * 4 + [0.0025]
    # A float32 variable: 0.01 rounded once (<= EPS32 / 2 relative); halving is exact.
    np.testing.assert_allclose(rates, expected, rtol=EPS32)
    assert result["final_learning_rate"] == pytest.approx(0.0025, rel=EPS32)  # epoch 9 is only the 3rd miss

def test_output_only_epochs_freeze_hidden_layers_then_release_them(data, monkeypatch):
    snapshots = []
    real = finetune.error_rate

    def recording_error_rate(model, x, y, **kw):
        snapshots.append([layer.get_weights() for layer in model.layers if layer.weights])
        return real(model, x, y, **kw)

    monkeypatch.setattr(finetune, "error_rate", recording_error_rate)
    model = new_model()
    n_hidden = len(hidden_layers(model))
    initial = [layer.get_weights() for layer in model.layers if layer.weights]
    fine_tune(model, *data, FineTuneConfig(max_epochs=4, patience=10, output_only_epochs=2), seed=0)
    assert len(snapshots) == 4

    def changed(a, b):
        return not all(np.array_equal(u, v) for u, v in zip(a, b))

    for epoch in (0, 1):  # output-only epochs: hidden layers frozen, softmax trains
        for i in range(n_hidden):
            assert not changed(snapshots[epoch][i], initial[i]), (epoch, i)
        assert changed(snapshots[epoch][-1], initial[-1])
    for i in range(n_hidden):  # afterwards every hidden layer trains
        assert changed(snapshots[2][i], initial[i]), i
        assert changed(snapshots[3][i], snapshots[2][i]), i
    assert all(layer.trainable for layer in hidden_layers(model))


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(optimizer="rmsprop"), "optimizer"),
        (dict(batch_size=0), "batch_size"),
        (dict(max_epochs=0), "max_epochs"),
        (dict(patience=0), "patience"),
        (dict(output_only_epochs=-1), "output_only_epochs"),
        (dict(max_epochs=3, output_only_epochs=3), "output_only_epochs"),
        (dict(plateau_factor=0.0), "plateau_factor"),
        (dict(plateau_factor=1.5), "plateau_factor"),
        (dict(plateau_patience=0), "plateau_patience"),
        (dict(refit="yes"), "refit"),
        (dict(precision="float16"), "precision"),
        (dict(precision=True), "precision"),
        (dict(min_epoch_size=-1), "min_epoch_size"),
        (dict(min_epoch_size=2.5), "min_epoch_size"),
        (dict(min_epoch_size=True), "min_epoch_size"),
        (dict(min_epoch_size="1000"), "min_epoch_size"),
    ],
)
def test_config_rejects_bad_values(overrides, field):
    with pytest.raises(ValueError, match=field):
        FineTuneConfig(**overrides)


@pytest.mark.parametrize(
    "overrides",
    [dict(learning_rate=0.0), dict(learning_rate=-0.1), dict(learning_rate=float("nan")),
     dict(momentum=-0.5), dict(momentum=1.5)],
    ids=["lr0", "lr_negative", "lr_nan", "momentum_negative", "momentum_above_1"],
)
def test_config_rejects_bad_learning_rate_and_momentum(overrides):
    """BUG (dbn/finetune.py, FineTuneConfig.__post_init__): learning rate and momentum
    are not validated. A negative learning rate silently trains uphill; a momentum
    outside [0, 1] only fails inside fine_tune (Keras' SGD), i.e. after pretraining."""
    with pytest.raises(ValueError):
        FineTuneConfig(**overrides)


def test_default_config_round_trips():
    config = FineTuneConfig()
    assert FineTuneConfig(**config.to_dict()) == config
    assert "precision" not in config.to_dict()  # float32: the dict recorded before it existed
    half = FineTuneConfig(precision="bfloat16")
    assert FineTuneConfig(**half.to_dict()) == half and half.to_dict()["precision"] == "bfloat16"


def test_cache_settings_leave_out_later_options_only_at_their_neutral_value():
    """Runs cached before the plateau options existed keep their key: the default
    config's cache settings are exactly the fields it had then."""
    before_plateaus = {"optimizer", "learning_rate", "momentum", "batch_size", "max_epochs",
                       "patience", "output_only_epochs"}
    assert set(FineTuneConfig().cache_settings()) == before_plateaus
    assert set(FineTuneConfig().to_dict()) > before_plateaus  # recorded in full
    decayed = FineTuneConfig(plateau_factor=0.5).cache_settings()
    assert decayed["plateau_factor"] == 0.5 and "plateau_patience" not in decayed  # implied 3
    keys = {json.dumps(FineTuneConfig(**kw).cache_settings(), sort_keys=True)
            for kw in [{}, dict(plateau_factor=0.5), dict(plateau_factor=0.5, plateau_patience=5),
                       dict(plateau_patience=5)]}
    assert len(keys) == 4  # different settings never share a key
    assert FineTuneConfig(refit=True).cache_settings()["refit"] is True
    assert FineTuneConfig(precision="bfloat16").cache_settings()["precision"] == "bfloat16"
    assert FineTuneConfig(min_epoch_size=1000).cache_settings()["min_epoch_size"] == 1000
    assert "min_epoch_size" not in FineTuneConfig().to_dict()  # the dict recorded before it


def test_min_epoch_size_trains_on_whole_copies_of_a_small_training_set(data):
    """min_epoch_size=1000 on 300 examples: each epoch is 4 whole copies (1,200 examples)
    shuffled together, exactly fine_tune on the 4 copies given as the data."""
    x, y = data[:2]
    config = FineTuneConfig(max_epochs=2, patience=5)
    repeated = new_model()
    result = fine_tune(repeated, x, y, *data[2:], dataclasses.replace(config, min_epoch_size=1000),
                       seed=3)
    explicit = new_model()
    expected = fine_tune(explicit, np.concatenate([x] * 4), np.concatenate([y] * 4), *data[2:], config,
                         seed=3)
    assert result["history"]["loss"] == expected["history"]["loss"]
    for a, b in zip(repeated.get_weights(), explicit.get_weights()):
        np.testing.assert_array_equal(a, b)
    once = new_model()  # one pass per epoch trains differently (fewer updates)
    fine_tune(once, x, y, *data[2:], config, seed=3)
    assert not np.array_equal(once.get_weights()[0], explicit.get_weights()[0])
    # fit_schedule (the refit) repeats in the same way.
    refitted = new_model()
    fit_schedule(refitted, x, y, dataclasses.replace(config, min_epoch_size=1000), [1e-3, 1e-3], seed=3)
    replay = new_model()
    fit_schedule(replay, np.concatenate([x] * 4), np.concatenate([y] * 4), config, [1e-3, 1e-3], seed=3)
    for a, b in zip(refitted.get_weights(), replay.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_for_examples_drops_an_epoch_size_that_repeats_nothing():
    config = FineTuneConfig(min_epoch_size=10_000)
    assert config.for_examples(50_000) == FineTuneConfig()  # the all-labels runs' key
    assert config.for_examples(10_000) == FineTuneConfig()
    assert config.for_examples(9_999) is config
    with pytest.raises(ValueError, match="n="):
        config.for_examples(0)


def test_bfloat16_trains_in_bfloat16_and_returns_a_float32_network(data):
    """precision="bfloat16": the hidden layers' training products in bfloat16 (the
    weights end different from float32's, so it is not ignored), the optimizer's
    variables float32, and the returned network computing in float32."""
    x, y, xv, yv = data
    results = {}
    for precision in ("float32", "bfloat16"):
        model = new_model()
        history = fine_tune(model, x, y, xv, yv,
                            FineTuneConfig(max_epochs=2, patience=10, precision=precision), seed=0)
        assert [layer.dtype_policy.name for layer in model.layers] == ["float32"] * len(model.layers)
        assert model(xv[:2]).dtype == "float32"
        floats = [v for v in [*model.weights, *model.optimizer.variables] if "int" not in str(v.dtype)]
        assert floats and all(v.dtype == "float32" for v in floats)  # not the step counter
        results[precision] = history["history"]["loss"], model.get_weights()
    (loss32, w32), (loss16, w16) = results["float32"], results["bfloat16"]
    assert any(not np.array_equal(a, b) for a, b in zip(w32, w16))
    # Each product's operands are rounded to 8 significant bits (relative error <= 2**-9
    # each), and the two trajectories drift apart over two epochs of updates, differently on
    # CPUs with and without native bfloat16; the mean loss over 300 rows (about 2.3) moved
    # by 2e-6 relative here. 2**-5 allows 16 bfloat16 ulps: a broken cast (e.g. bfloat16
    # kept in the softmax or the weights) moves it by more.
    np.testing.assert_allclose(loss16, loss32, rtol=2.0**-5)
    with finetune._training_precision(model, "bfloat16"):
        assert hidden_layers(model)[0](xv[:2]).dtype == "bfloat16"
    assert hidden_layers(model)[0](xv[:2]).dtype == "float32"


def test_bfloat16_needs_float32_hidden_layers_to_switch(data):
    x, y, xv, yv = data
    config = FineTuneConfig(max_epochs=1, precision="bfloat16")
    plain = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation="softmax")])
    with pytest.raises(ValueError, match="precision='bfloat16' needs the sigmoid hidden layers"):
        fine_tune(plain, x, y, xv, yv, config)
    model = new_model()
    hidden_layers(model)[0].dtype_policy = "mixed_float16"
    with pytest.raises(ValueError, match=r"mixed_float16"):
        fit_schedule(model, x, y, config, [1e-3])


def test_checkpoint_of_a_different_architecture_is_refused(data, tmp_path):
    config = FineTuneConfig(max_epochs=2, patience=10)
    fine_tune(new_model(), *data, FineTuneConfig(max_epochs=1, patience=10),
              checkpoint_dir=tmp_path)
    keras.utils.set_random_seed(0)
    other = build_classifier([784, 32, 8], 10, init="glorot", seed=0)
    with pytest.raises(ValueError, match=r"architecture.*\[32, 16\].*\[32, 8\]"):
        fine_tune(other, *data, config, checkpoint_dir=tmp_path)
    state = run_state(tmp_path, "fine_tune")
    assert state["epoch"] == 1  # the checkpoint was left alone
    assert fine_tune(new_model(), *data, config, checkpoint_dir=tmp_path)["epochs_run"] == 2


def test_empty_validation_set_raises(data):
    x, y, xv, yv = data
    with pytest.raises(ValueError, match="validation"):
        fine_tune(new_model(), x, y, xv[:0], yv[:0], FineTuneConfig(max_epochs=1))


# --------------------------------------------------------------------------- refit
REFIT = FineTuneConfig(learning_rate=0.01, max_epochs=10, patience=3, plateau_factor=0.5,
                       plateau_patience=2, output_only_epochs=1)
# Best at epochs 1, 2 and 5; the rate halves after epoch 4 (2nd miss) and 7; stop after 8.
REFIT_SCRIPT = [0.5, 0.4, 0.45, 0.41, 0.3, 0.35, 0.36, 0.37]


def test_refit_schedule_replays_the_plateau_rule_up_to_the_best_epoch():
    assert refit_schedule(REFIT_SCRIPT, REFIT) == [0.01] * 4 + [0.005]
    constant = FineTuneConfig(learning_rate=0.002)
    assert refit_schedule([0.3, 0.2, 0.2, 0.25], constant) == [0.002] * 2  # a tie is no best
    assert refit_schedule([0.3], constant) == [0.002]
    with pytest.raises(ValueError, match="at least one epoch"):
        refit_schedule([], constant)


def test_fit_schedule_reproduces_the_early_stopped_run(data, monkeypatch):
    """On the same data, seed and replayed schedule (with a decayed rate, an output-only
    epoch and dropout), fit_schedule ends with exactly fine_tune's restored best weights:
    so a refit on more data differs from the early-stopped run only by the data."""
    script = iter(REFIT_SCRIPT)
    monkeypatch.setattr(finetune, "error_rate", lambda *a, **k: next(script))
    tuned = new_model(dropout=0.2)
    result = fine_tune(tuned, *data, REFIT, seed=4)
    assert (result["best_epoch"], result["epochs_run"]) == (5, 8)
    x, y = data[:2]
    refitted = new_model(dropout=0.2)
    out = fit_schedule(refitted, x, y, REFIT, refit_schedule(result["history"]["val_error"], REFIT),
                       seed=4)
    assert out["epochs_run"] == 5 and out["history"]["loss"] == result["history"]["loss"][:5]
    for a, b in zip(tuned.get_weights(), refitted.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kill_at", [1, 3], ids=["at_output_only_boundary", "after_decay"])
def test_fit_schedule_resume_after_kill_equals_uninterrupted(data, tmp_path, monkeypatch, kill_at):
    x, y = data[:2]
    rates = [0.01, 0.01, 0.005, 0.005]
    full_model = new_model(dropout=0.2)
    full = fit_schedule(full_model, x, y, REFIT, rates, seed=2, checkpoint_dir=tmp_path / "full")
    with kill_after_epoch(monkeypatch, kill_at):
        fit_schedule(new_model(dropout=0.2), x, y, REFIT, rates, seed=2,
                     checkpoint_dir=tmp_path / "resumed")
    resumed_model = new_model(dropout=0.2)
    resumed = fit_schedule(resumed_model, x, y, REFIT, rates, seed=2,
                           checkpoint_dir=tmp_path / "resumed")
    assert resumed == full
    for a, b in zip(full_model.get_weights(), resumed_model.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="learning_rates"):
        fit_schedule(new_model(dropout=0.2), x, y, REFIT, rates[:3], checkpoint_dir=tmp_path / "full")


@pytest.mark.parametrize("rates", [[], [0.01, 0.0], [float("nan")], [-1e-3]])
def test_fit_schedule_rejects_bad_learning_rates(data, rates):
    with pytest.raises(ValueError, match="learning_rates"):
        fit_schedule(new_model(), *data[:2], REFIT, rates)


# --------------------------------------------------------------------------- error_rate
def test_error_rate_on_a_hand_built_model():
    """A softmax layer with kernel 10 * identity predicts the argmax of its input."""
    model = keras.Sequential([keras.Input((3,)),
                              keras.layers.Dense(3, activation="softmax", use_bias=False)])
    model.layers[0].set_weights([10.0 * np.eye(3, dtype=np.float32)])
    x = np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 2]]  # predictions 0 1 2 0 2
    assert error_rate(model, x, np.array([0, 1, 2, 0, 2])) == 0.0
    assert error_rate(model, x, np.array([0, 1, 1, 2, 2])) == pytest.approx(2 / 5)
    assert error_rate(model, x, [1, 0, 0, 1, 0], batch_size=2) == 1.0


def test_resume_with_smaller_max_epochs_or_patience_is_refused(data, tmp_path):
    """A checkpoint that trained past where a config stops would hand back weights of
    another run: lowering max_epochs or patience is refused (raising them resumes)."""
    fine_tune(new_model(), *data, FineTuneConfig(max_epochs=4, patience=10), checkpoint_dir=tmp_path)
    with pytest.raises(checkpoint.CheckpointMismatchError, match="holds 4 epochs.*max_epochs=2"):
        fine_tune(new_model(), *data, FineTuneConfig(max_epochs=2, patience=10),
                  checkpoint_dir=tmp_path)
    assert fine_tune(new_model(), *data, FineTuneConfig(max_epochs=4, patience=10),
                     checkpoint_dir=tmp_path)["epochs_run"] == 4


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_execution_modes_change_no_update(monkeypatch, dropout):
    """Keras' fit with one step per call, with several steps per compiled call, and the
    package's in-graph epochs over stacked batches (the speed-ups) give exactly the same
    weights and history: same batches, order, dropout masks and updates (an output-only
    epoch, then all layers, which recompiles; the data's last batch is a short one).
    Fails if the in-graph epoch draws another order, skips or repeats the short batch,
    or keeps a step traced for the previous compile."""
    config = FineTuneConfig(max_epochs=3, output_only_epochs=1, patience=5)
    d = datasets.load(n_train=1050, seed=0)
    x, y = d.x_train, d.y_train  # 10 full batches and a short one of 50
    results = {}
    for steps, in_graph in ((1, False), (finetune.STEPS_PER_EXECUTION, False),
                            (finetune.STEPS_PER_EXECUTION, True)):
        monkeypatch.setattr(finetune, "STEPS_PER_EXECUTION", steps)
        monkeypatch.setattr(finetune, "IN_GRAPH_EPOCHS", in_graph)
        model = new_model(dropout=dropout)
        out = fit_schedule(model, x, y, config, [1e-3, 1e-3, 5e-4], seed=3)
        results[steps, in_graph] = (model.get_weights(), out["history"])
    (w1, h1), *others = results.values()
    for w, h in others:
        assert h == h1
        for a, b in zip(w1, w):
            np.testing.assert_array_equal(a, b)
    assert finetune.STEPS_PER_EXECUTION > 1
