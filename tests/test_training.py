"""Tests of dbn.training: the config object, the k / learning-rate / momentum schedules
and the resumable ``train_rbm``.

Everything runs on a few hundred MNIST images with 16 hidden units, so each fit takes
about a second.
"""

import json
import math

import keras
import numpy as np
import pytest
from conftest import EPS32

from dbn import data as datasets
from dbn.training.callbacks import GibbsStepsSchedule
from dbn.training.configs import RBMTrainingConfig
from dbn.training.pretrain import build_rbm, train_rbm, training_seconds

N_IMAGES, BATCH = 600, 100
STEPS = math.ceil(N_IMAGES / BATCH)


@pytest.fixture(scope="module")
def grey():
    """600 grey-level MNIST training images in [0, 1]."""
    return datasets.load(n_train=N_IMAGES, validation_size=0, seed=0).x_train


@pytest.fixture(scope="module")
def binary(grey):
    return datasets.binarize(grey, "threshold")


class Recorder(keras.callbacks.Callback):
    """Records optimizer learning rate / momentum, rbm.k and the sampler counter."""

    def __init__(self):
        super().__init__()
        self.lr, self.momentum, self.k, self.counter = [], [], [], []

    def on_epoch_end(self, epoch, logs=None):
        opt = self.model.optimizer
        self.lr.append(float(np.asarray(opt.learning_rate)))
        self.momentum.append(float(opt.momentum))
        self.k.append(self.model.k)
        self.counter.append(int(self.model.sampler_state.numpy()[1]))


class Killed(Exception):
    pass


class KillAfterEpoch(keras.callbacks.Callback):
    """Simulates a kill at the end of ``epoch`` (0-based), before train_rbm writes that
    epoch's backup: the resumed run redoes it."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            self.W = self.model.W.numpy()
            raise Killed(f"killed after epoch {epoch}")


def small_config(**overrides):
    kw = dict(n_hidden=16, epochs=2, batch_size=BATCH, learning_rate=0.05)
    kw.update(overrides)
    return RBMTrainingConfig(**kw)


def state_of(rbm):
    """Every model variable plus the optimizer's (momentum buffers, iterations), in order."""
    return [(v.name.removeprefix(rbm.name), np.array(v.numpy()))
            for v in [*rbm.weights, *rbm.optimizer.variables]]


# --------------------------------------------------------------------------- config
def test_default_config_is_valid_and_round_trips():
    config = RBMTrainingConfig()
    assert config.k == 1 and config.final_k is None and config.batch_size == 100
    assert RBMTrainingConfig(**config.to_dict()) == config


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(n_hidden=0), "n_hidden"),
        (dict(n_hidden=2.5), "n_hidden"),
        (dict(epochs=0), "epochs"),
        (dict(batch_size=-1), "batch_size"),
        (dict(k=0), "k="),
        (dict(n_chains=0), "n_chains"),
        (dict(k=3, final_k=2), "final_k"),
        (dict(learning_rate=0.0), "learning_rate"),
        (dict(learning_rate=-0.1), "learning_rate"),
        (dict(learning_rate=float("nan")), "learning_rate"),
        (dict(initial_momentum=0.0), "momentum"),
        (dict(initial_momentum=1.5), "momentum"),
        (dict(final_momentum=-0.1), "momentum"),
        (dict(final_momentum=1.1), "momentum"),
    ],
)
def test_config_rejects_bad_values(overrides, field):
    with pytest.raises(ValueError, match=field):
        RBMTrainingConfig(**overrides)


# --------------------------------------------------------------------------- k schedule
def test_gibbs_steps_schedule_rises_linearly_from_1_to_25_over_60_epochs():
    schedule = GibbsStepsSchedule(1, 25, 60)
    ks = [schedule.k_at(e) for e in range(60)]
    assert ks[0] == 1 and ks[-1] == 25
    assert all(isinstance(k, int) for k in ks)
    assert all(b - a in (0, 1) for a, b in zip(ks, ks[1:])), ks  # monotone, no jumps
    assert ks == [round(1 + 24 * e / 59) for e in range(60)]
    assert ks[29] == 13  # the middle of the run is half-way
    assert GibbsStepsSchedule(1, 25, 1).k_at(0) == 25


def test_fit_with_gibbs_schedule_ends_at_final_k_and_logs_k(binary):
    config = small_config(epochs=3, k=1, final_k=3, final_learning_rate=None)
    rbm = build_rbm(config, seed=0)
    recorder = Recorder()
    history = train_rbm(rbm, binary, config, steps_per_epoch=STEPS, callbacks=[recorder],
                        verbose=0)
    assert rbm.k == config.final_k == 3
    assert history["k"] == [1.0, 2.0, 3.0]
    # k is a traced loop bound: the compiled step must really run k Gibbs steps. CD-k
    # draws 2 samples per Gibbs step, so the sampler advances 2k per batch.
    per_epoch = np.diff([0] + recorder.counter)
    np.testing.assert_array_equal(per_epoch, [2 * k * STEPS for k in (1, 2, 3)])


# --------------------------------------------------------------------------- lr and momentum
def test_learning_rate_decays_linearly_to_final_and_momentum_switches(binary):
    config = small_config(epochs=3, learning_rate=0.1, final_learning_rate=0.01,
                          momentum_switch_epoch=1)
    rbm = build_rbm(config, seed=0)
    recorder = Recorder()
    train_rbm(rbm, binary, config, steps_per_epoch=STEPS, callbacks=[recorder], verbose=0)
    expected = [0.1 + (0.01 - 0.1) * (e + 1) / 3 for e in range(3)]
    # Keras' PolynomialDecay evaluates (lr0 - lr1) * (1 - step / steps) + lr1 in float32:
    # about six roundings of numbers <= lr0 = 0.1, each <= EPS32 / 2 of them.
    lr_tol = 8 * EPS32 * 0.1
    np.testing.assert_allclose(recorder.lr, expected, rtol=0, atol=lr_tol)
    assert float(np.asarray(rbm.optimizer.learning_rate)) == pytest.approx(0.01, abs=lr_tol)
    assert int(rbm.optimizer.iterations.numpy()) == 3 * STEPS
    assert recorder.momentum == [0.5, 0.9, 0.9]


def test_constant_learning_rate_when_final_is_none(binary):
    config = small_config(epochs=2, learning_rate=0.07, final_learning_rate=None)
    rbm = build_rbm(config, seed=0)
    recorder = Recorder()
    train_rbm(rbm, binary, config, steps_per_epoch=STEPS, callbacks=[recorder], verbose=0)
    np.testing.assert_allclose(recorder.lr, [0.07, 0.07], rtol=EPS32)  # 0.07 rounded to float32


# --------------------------------------------------------------------------- resume
def _fit(config, make_data, backup_dir, *, killer=None, init_data=None):
    rbm = build_rbm(config, seed=0)
    history = train_rbm(rbm, make_data, config, steps_per_epoch=STEPS, init_data=init_data,
                        backup_dir=backup_dir, data_key="test data", verbose=0,
                        callbacks=[killer] if killer else [])
    return rbm, history


def test_backup_resume_is_exact_with_batches_fixed_per_epoch(binary, tmp_path):
    """With an input pipeline that yields the same batches in every epoch (no shuffle),
    a killed-and-resumed run ends bit-identical to an uninterrupted one: weights,
    PCD chains, sampler state, momentum buffers, iteration count (lr decay), and the
    momentum / k schedules resume at the right epoch."""
    config = small_config(epochs=3, persistent=True, n_chains=20, final_k=2,
                          momentum_switch_epoch=2, final_learning_rate=0.0)

    def make_data(epoch):
        return datasets.to_dataset(binary, batch_size=BATCH, shuffle=False)

    full, full_history = _fit(config, make_data, tmp_path / "full", init_data=binary)

    with pytest.raises(Killed):
        _fit(config, make_data, tmp_path / "resumed", killer=KillAfterEpoch(1), init_data=binary)
    meta = json.loads((tmp_path / "resumed" / "manifest.json").read_text())
    assert meta["state"]["training"]["epoch"] == 1  # one epoch was backed up before the kill
    resumed, history = _fit(config, make_data, tmp_path / "resumed", init_data=binary)

    assert history["k"] == full_history["k"] and resumed.k == full.k == 2
    assert float(resumed.optimizer.momentum) == 0.9
    assert history["reconstruction_error"] == full_history["reconstruction_error"]
    a, b = state_of(full), state_of(resumed)
    assert [name for name, _ in a] == [name for name, _ in b]
    assert "persistent_chains" in [name for name, _ in a]
    assert "iteration" in [name for name, _ in a]
    for (name, x), (_, y) in zip(a, b):
        np.testing.assert_array_equal(x, y, err_msg=name)


def test_backup_resume_with_reshuffled_stochastic_pipeline(grey, tmp_path):
    """The experiments' pipeline reshuffles and re-binarizes every epoch; built per epoch
    by ``datasets.epoch_datasets`` (a function of seed and epoch only), a killed-and-
    resumed run is bit-identical to an uninterrupted one."""
    config = small_config(epochs=3, final_learning_rate=0.0)
    make_data = datasets.epoch_datasets(grey, batch_size=BATCH, seed=5, binarization="stochastic")
    init = datasets.binarize(grey, "stochastic", seed=5)
    full, full_history = _fit(config, make_data, tmp_path / "full", init_data=init)
    with pytest.raises(Killed):
        _fit(config, make_data, tmp_path / "resumed", killer=KillAfterEpoch(1), init_data=init)
    resumed, history = _fit(config, make_data, tmp_path / "resumed", init_data=init)
    assert history["reconstruction_error"] == full_history["reconstruction_error"]
    assert int(resumed.optimizer.iterations.numpy()) == 3 * STEPS
    for (name, x), (_, y) in zip(state_of(full), state_of(resumed)):
        np.testing.assert_array_equal(x, y, err_msg=name)
    # PolynomialDecay to 0 in float32: about six roundings of numbers <= lr0 = 0.05.
    assert float(np.asarray(resumed.optimizer.learning_rate)) == pytest.approx(0.0, abs=8 * EPS32 * 0.05)
    # The recorded training time covers every epoch of both sessions.
    assert len(history["epoch_seconds"]) == 3
    assert training_seconds(tmp_path / "resumed") == pytest.approx(sum(history["epoch_seconds"]))
    assert training_seconds(tmp_path / "resumed") > 0
    assert training_seconds(tmp_path / "never_trained") is None


def test_tensorboard_callback_writes_scalars_and_images(tmp_path):
    """RBMTensorBoard: one event per epoch for every logged number, the learning rate and
    the momentum, plus filter and sample images; the model's sampler state is untouched."""
    import keras
    import tensorflow as tf

    from dbn.models.rbm import RBM
    from dbn.training.callbacks import RBMTensorBoard

    rng = np.random.default_rng(0)
    x = (rng.random((200, 784)) < 0.2).astype(np.float32)
    rbm = RBM(8, seed=0)
    rbm.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.5))
    rbm.fit(x, epochs=1, batch_size=50, verbose=0)
    state = rbm.sampler_state.numpy().copy()
    callback = RBMTensorBoard(tmp_path / "tb", n_filters=4, n_samples=3, sample_steps=2)
    callback.set_model(rbm)
    callback.on_epoch_end(0, {"reconstruction_error": 0.25})
    callback.on_epoch_end(1, {"reconstruction_error": 0.2})
    np.testing.assert_array_equal(rbm.sampler_state.numpy(), state)
    seen = {}
    for path in (tmp_path / "tb").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                seen.setdefault(value.tag, []).append(event.step)
    assert seen["reconstruction_error"] == [1, 2]
    assert seen["learning_rate"] == [1, 2] and seen["momentum"] == [1, 2]
    assert seen["filters"] == [1, 2] and seen["samples"] == [1, 2]
    with pytest.raises(ValueError, match="n_filters"):
        RBMTensorBoard(tmp_path, n_filters=-1)
    with pytest.raises(ValueError, match="log_dir"):
        RBMTensorBoard(None)
