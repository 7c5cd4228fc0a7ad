"""Tests of dbn.models.dbn: greedy pretraining, checkpoints and resume, unrolling into a Keras
classifier, generation and input validation.

Most tests use a 784-32-16 DBN pretrained for one epoch per layer on 1,000 images;
the pretrained-vs-random comparison uses 784-100-100 on 10,000 images.
"""

import dataclasses
import json
import shutil

import keras
import numpy as np
import pytest
from conftest import float32_sum_tol

import dbn.models.dbn as dbn_module
from dbn.training import checkpoint
from dbn import data as datasets
from dbn.models.dbn import DBN
from dbn.models.classifier import build_classifier, check_layer_sizes, hidden_layers, upward_pass
from dbn.training.configs import FineTuneConfig
from dbn.training.finetune import error_rate, fine_tune
from dbn.models.rbm import RBM
from dbn.training.configs import RBMTrainingConfig

SMALL = [784, 32, 16]
ONE_EPOCH = RBMTrainingConfig(epochs=1, learning_rate=0.05, final_learning_rate=None)
# Three epochs with every schedule active, so that a resume at epoch 2 must restore
# momentum switch, learning-rate decay and optimizer state.
THREE_EPOCHS = RBMTrainingConfig(epochs=3, learning_rate=0.05, final_learning_rate=0.01,
                                 momentum_switch_epoch=1, weight_decay=2e-4)


@pytest.fixture(scope="module")
def mnist():
    return datasets.load(n_train=10_000, seed=0)


@pytest.fixture(scope="module")
def x_small(mnist):
    return mnist.x_train[:1000]


@pytest.fixture(scope="module")
def small_dbn(x_small):
    model = DBN(SMALL, layer_configs=ONE_EPOCH, seed=0)
    model.pretrain(x_small, verbose=0)
    return model


@pytest.fixture(scope="module")
def checkpointed(x_small, tmp_path_factory):
    """(DBN, checkpoint dir) of a finished checkpointed pretraining."""
    ckpt = tmp_path_factory.mktemp("dbn") / "ckpt"
    model = DBN(SMALL, layer_configs=ONE_EPOCH, seed=0)
    model.pretrain(x_small, checkpoint_dir=ckpt, verbose=0)
    return model, ckpt


def rbm_state(model):
    """All variables of every layer (weights, biases, sampler state)."""
    return [[np.array(v.numpy()) for v in rbm.weights] for rbm in model.rbms]


def assert_same_stack(a, b):
    assert len(a.rbms) == len(b.rbms)
    for layer_a, layer_b in zip(rbm_state(a), rbm_state(b)):
        assert len(layer_a) == len(layer_b)
        for va, vb in zip(layer_a, layer_b):
            np.testing.assert_array_equal(va, vb)


class Killed(Exception):
    pass


class KillAfterEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Killed


def kill_layer(monkeypatch, layer, epoch):
    """Make DBN.pretrain's call to train_rbm for ``layer`` die at the end of ``epoch``
    (0-based), before that epoch's backup is written: epochs < ``epoch`` are backed up."""
    real = dbn_module.train_rbm
    calls = []

    def train_rbm(*args, **kwargs):
        calls.append(1)
        if len(calls) == layer + 1:
            kwargs["callbacks"] = [*kwargs.get("callbacks", ()), KillAfterEpoch(epoch)]
        return real(*args, **kwargs)

    monkeypatch.setattr(dbn_module, "train_rbm", train_rbm)
    return real


def forbid_training(monkeypatch):
    def train_rbm(*args, **kwargs):
        raise AssertionError("a finished layer was retrained")

    monkeypatch.setattr(dbn_module, "train_rbm", train_rbm)


# --------------------------------------------------------------------------- unrolling
def upward_pass_tol(rbms, x):
    """Per layer, the largest difference between two float32 evaluations of the hidden
    probabilities sigmoid(h W + c) that add the D products of each unit in other orders
    (other batch sizes, Keras Dense vs tf.matmul, oneDNN blocking): the worst-case sum
    bound over the largest partial sums |h| |W| + |c|, plus the error carried from the
    layer below through |W|, both times the sigmoid's slope <= 1/4."""
    tols, carried, h = [], 0.0, np.asarray(x, np.float64)
    for rbm in rbms:
        W, c = rbm.W.numpy().astype(np.float64), rbm.hidden_bias.numpy().astype(np.float64)
        magnitude = (np.abs(h) @ np.abs(W) + np.abs(c)).max()
        carried = 0.25 * (float32_sum_tol(W.shape[0], magnitude, worst_case=True)
                          + carried * np.abs(W).sum(axis=0).max())
        tols.append(carried)
        h = 1.0 / (1.0 + np.exp(-(h @ W + c)))
    return tols


def test_classifier_hidden_activations_equal_upward_pass(small_dbn, mnist):
    x = mnist.x_test[:200]
    expected = upward_pass(small_dbn.rbms, x)
    assert [e.shape for e in expected] == [(200, 32), (200, 16)]
    tols = upward_pass_tol(small_dbn.rbms, x)  # measured 5e-5 and 4e-6
    np.testing.assert_allclose(small_dbn.transform(x), expected[-1], atol=tols[-1])

    model = small_dbn.to_classifier(10)
    layers = hidden_layers(model)
    assert [layer.name for layer in layers] == ["hidden_0", "hidden_1"]
    h = x
    for layer, want, tol in zip(layers, expected, tols):  # calling the Dense layers in order
        h = np.asarray(layer(h))
        np.testing.assert_allclose(h, want, atol=tol)
    sub = keras.Model(model.inputs, [layer.output for layer in layers])  # a Keras sub-model
    for got, want, tol in zip(sub.predict(x, verbose=0), expected, tols):
        np.testing.assert_allclose(got, want, atol=tol)

    # Dropout only acts in training: inference activations are unchanged.
    dropped = small_dbn.to_classifier(10, dropout=0.5)
    sub = keras.Model(dropped.inputs, hidden_layers(dropped)[-1].output)
    np.testing.assert_allclose(sub.predict(x, verbose=0), expected[-1], atol=tols[-1])
    # A pair (input, hidden) also drops pixels, at its own rate, first thing.
    rates = [(type(layer).__name__, getattr(layer, "rate", None)) for layer in
             small_dbn.to_classifier(10, dropout=(0.2, 0.5)).layers if type(layer).__name__ == "Dropout"]
    assert rates[0] == ("Dropout", 0.2) and all(rate == 0.5 for _, rate in rates[1:])
    assert len(rates) == 1 + len(hidden_layers(dropped))
    assert [layer.rate for layer in dropped.layers if type(layer).__name__ == "Dropout"] == [0.5] * len(rates[1:])


@pytest.mark.parametrize("n_classes", [10, 3])
def test_classifier_output_is_a_softmax_over_n_classes(small_dbn, mnist, n_classes):
    model = small_dbn.to_classifier(n_classes)
    assert model.layers[-1].name == "output" and model.layers[-1].units == n_classes
    p = model.predict(mnist.x_test[:100], verbose=0)
    assert p.shape == (100, n_classes)
    assert np.all(p >= 0)
    # softmax divides by a float32 sum of n_classes terms in [0, 1] (partial sums <= 1
    # after normalisation): the sum of the rounded probabilities is within that bound.
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=float32_sum_tol(n_classes, 1.0, worst_case=True))


def test_pretrained_init_copies_rbm_weights_and_hidden_biases(small_dbn):
    model = small_dbn.to_classifier(10, init="pretrained")
    for layer, rbm in zip(hidden_layers(model), small_dbn.rbms):
        kernel, bias = layer.get_weights()
        np.testing.assert_array_equal(kernel, rbm.W.numpy())
        np.testing.assert_array_equal(bias, rbm.hidden_bias.numpy())
        assert layer.activation is keras.activations.sigmoid
    np.testing.assert_array_equal(model.get_layer("output").get_weights()[1], 0.0)


def test_random_inits_normal_has_std_001_and_glorot_differs():
    sizes = [784, 64, 64]
    normal = build_classifier(sizes, 10, init="normal", seed=0)
    glorot = build_classifier(sizes, 10, init="glorot", seed=0)
    for i, layer in enumerate(hidden_layers(normal)):
        kernel, bias = layer.get_weights()
        assert kernel.std() == pytest.approx(0.01, rel=0.05), i
        assert abs(kernel.mean()) < 1e-3
        np.testing.assert_array_equal(bias, 0.0)
    for layer in hidden_layers(glorot):
        kernel, bias = layer.get_weights()
        fan_in, fan_out = kernel.shape
        assert kernel.std() == pytest.approx(np.sqrt(2.0 / (fan_in + fan_out)), rel=0.05)
        assert np.abs(kernel).max() <= np.sqrt(6.0 / (fan_in + fan_out))
        np.testing.assert_array_equal(bias, 0.0)
    assert hidden_layers(glorot)[0].get_weights()[0].std() > 3 * 0.01
    again = build_classifier(sizes, 10, init="normal", seed=0)
    other = build_classifier(sizes, 10, init="normal", seed=1)
    np.testing.assert_array_equal(again.get_weights()[0], normal.get_weights()[0])
    assert not np.array_equal(other.get_weights()[0], normal.get_weights()[0])


def test_normal_init_layers_are_independent():
    """BUG (dbn/dbn.py, build_classifier): one seeded RandomNormal instance is shared by
    every hidden layer, and Keras' seeded initializers are stateless, so each layer's
    kernel repeats the first values of the previous one: hidden_1 == hidden_0[:64]."""
    model = build_classifier([784, 64, 64], 10, init="normal", seed=0)
    k0, k1 = (layer.get_weights()[0] for layer in hidden_layers(model))
    assert not np.array_equal(k1.ravel(), k0.ravel()[: k1.size])
    assert abs(np.corrcoef(k1.ravel(), k0.ravel()[: k1.size])[0, 1]) < 0.1


# --------------------------------------------------------------------------- pretraining helps
def test_pretraining_beats_random_init_with_few_labels(mnist):
    """784-100-100 pretrained for 2 epochs/layer on 10,000 images, then every init is
    fine-tuned identically on 500 labels. Measured test errors (seeds 0, 1, 2):
    pretrained 0.27-0.28, glorot 0.36-0.43, normal 0.82-0.90."""
    seed = 0
    config = RBMTrainingConfig(epochs=2, learning_rate=0.05, final_learning_rate=None,
                               weight_decay=2e-4)
    stack = DBN([784, 100, 100], layer_configs=config, seed=seed)
    stack.pretrain(mnist.x_train, verbose=0)
    idx = datasets.balanced_subset(mnist.y_train, 500, seed=seed)
    finetune = FineTuneConfig(max_epochs=10, patience=10, learning_rate=0.1)
    errors = {}
    for init in ("pretrained", "glorot", "normal"):
        keras.utils.set_random_seed(seed)
        model = stack.to_classifier(10, init=init, seed=seed)
        fine_tune(model, mnist.x_train[idx], mnist.y_train[idx], mnist.x_val[:1000],
                  mnist.y_val[:1000], finetune, seed=seed)
        errors[init] = error_rate(model, mnist.x_test[:3000], mnist.y_test[:3000])
    assert errors["pretrained"] + 0.03 < errors["glorot"], errors
    assert errors["pretrained"] + 0.03 < errors["normal"], errors
    assert errors["pretrained"] < 0.5, errors


# --------------------------------------------------------------------------- checkpoints
def test_pretraining_is_reproducible(small_dbn, x_small):
    again = DBN(SMALL, layer_configs=ONE_EPOCH, seed=0)
    again.pretrain(x_small, verbose=0)
    assert_same_stack(small_dbn, again)
    other = DBN(SMALL, layer_configs=ONE_EPOCH, seed=1)
    other.pretrain(x_small, verbose=0)
    assert not np.array_equal(other.rbms[0].W.numpy(), small_dbn.rbms[0].W.numpy())


def layer_files(ckpt, i=None):
    """The finished-layer files of a pretraining layer cache (the ``rbm.keras`` of each
    ``layer<i>_..._<hash>`` run directory that holds one)."""
    found = []
    for run in sorted(ckpt.glob(f"layer{'*' if i is None else i}_*")):
        manifest = run / checkpoint.MANIFEST
        if manifest.exists():
            files = json.loads(manifest.read_text())["files"]
            if "rbm.keras" in files:
                found.append(run / files["rbm.keras"]["file"])
    return found


def layer_state(ckpt, i):
    """The training state committed in layer ``i``'s run directory."""
    (run,) = ckpt.glob(f"layer{i}_*")
    return json.loads((run / checkpoint.MANIFEST).read_text())["state"]["training"]


def count_training(monkeypatch):
    real, calls = dbn_module.train_rbm, []

    def train_rbm(rbm, *args, **kwargs):
        history = real(rbm, *args, **kwargs)
        calls.append((rbm.n_visible, rbm.n_hidden))
        return history

    monkeypatch.setattr(dbn_module, "train_rbm", train_rbm)
    return calls


def test_finished_checkpoint_is_loaded_without_retraining(checkpointed, x_small, monkeypatch):
    original, ckpt = checkpointed
    assert len(layer_files(ckpt, 0)) == len(layer_files(ckpt, 1)) == 1
    forbid_training(monkeypatch)
    reloaded = DBN(SMALL, layer_configs=ONE_EPOCH, seed=0)
    timings = {}
    histories = reloaded.pretrain(x_small, checkpoint_dir=ckpt, verbose=0, timings=timings)
    assert histories == [{}, {}]
    # A cached layer still reports what its training cost (from its backup).
    for i in range(2):
        assert timings[f"pretrain_layer_{i}_training_seconds"] > 0
        assert 0 <= timings[f"pretrain_layer_{i}_seconds"] < timings[f"pretrain_layer_{i}_training_seconds"] + 5
    assert reloaded.pretrained
    assert_same_stack(original, reloaded)
    np.testing.assert_array_equal(reloaded.transform(x_small[:50]), original.transform(x_small[:50]))


def test_layer_cache_is_shared_by_prefix_and_keyed_by_settings_and_data(checkpointed, x_small,
                                                                        tmp_path, monkeypatch):
    original, ckpt = checkpointed
    cache = tmp_path / "cache"
    shutil.copytree(ckpt, cache)
    calls = count_training(monkeypatch)
    deeper = DBN([*SMALL, 8], layer_configs=ONE_EPOCH, seed=0)  # 784-32-16-8: reuses 2 layers
    assert deeper.pretrain(x_small, checkpoint_dir=cache, verbose=0)[:2] == [{}, {}]
    assert calls == [(16, 8)]
    for a, b in zip(original.rbms, deeper.rbms):
        np.testing.assert_array_equal(a.W.numpy(), b.W.numpy())
    shallow = DBN(SMALL[:2], layer_configs=ONE_EPOCH, seed=0)  # 784-32: a prefix
    shallow.pretrain(x_small, checkpoint_dir=cache, verbose=0)
    assert calls == [(16, 8)]
    # A different width, seed, training setting or data set must not reuse anything.
    lower_lr = dataclasses.replace(ONE_EPOCH, learning_rate=0.04)
    for other, x in [(DBN([784, 24, 16], layer_configs=ONE_EPOCH, seed=0), x_small),
                     (DBN(SMALL, layer_configs=ONE_EPOCH, seed=1), x_small),
                     (DBN(SMALL, layer_configs=lower_lr, seed=0), x_small),
                     (DBN(SMALL, layer_configs=ONE_EPOCH, seed=0), x_small[::-1].copy())]:
        del calls[:]
        other.pretrain(x, checkpoint_dir=cache, verbose=0)
        assert calls == [(784, other.layer_sizes[1]), (other.layer_sizes[1], 16)], other.describe()


def test_kill_between_last_epoch_and_finishing_resumes_without_retraining(checkpointed, x_small,
                                                                          tmp_path, monkeypatch):
    """A kill after the last epoch was saved but before the layer was marked finished:
    the run directory's state already holds the final epoch, so no epoch is rerun and
    the weights are those of the finished run."""
    original, _ = checkpointed
    real = dbn_module.save_finished_rbm

    def killed(run, rbm):
        if rbm.n_hidden == SMALL[2]:
            raise Killed("killed before layer 1 was marked finished")
        real(run, rbm)

    monkeypatch.setattr(dbn_module, "save_finished_rbm", killed)
    with pytest.raises(Killed):
        DBN(SMALL, layer_configs=ONE_EPOCH, seed=0).pretrain(x_small, checkpoint_dir=tmp_path, verbose=0)
    assert layer_files(tmp_path, 1) == [] and layer_state(tmp_path, 1)["epoch"] == ONE_EPOCH.epochs
    monkeypatch.setattr(dbn_module, "save_finished_rbm", real)
    recovered = DBN(SMALL, layer_configs=ONE_EPOCH, seed=0)
    histories = recovered.pretrain(x_small, checkpoint_dir=tmp_path, verbose=0)
    # The run's state holds the finished epochs: none is rerun (the weights below would
    # differ), and the restored history is that of the original run.
    assert histories[0] == {}
    assert len(histories[1]["reconstruction_error"]) == ONE_EPOCH.epochs
    assert len(layer_files(tmp_path, 1)) == 1
    assert_same_stack(original, recovered)


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_damaged_cached_layer_is_refused_naming_the_file(checkpointed, x_small, tmp_path,
                                                         monkeypatch, damage):
    """A cached layer whose bytes changed after it was written is never loaded: the
    error names the file and the way out; --fresh (policy) retrains it."""
    _, ckpt = checkpointed
    copy = tmp_path / "ckpt"
    shutil.copytree(ckpt, copy)
    (layer,) = layer_files(copy, 1)
    data = bytearray(layer.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
        layer.write_bytes(bytes(data))
    elif damage == "truncate":
        layer.write_bytes(bytes(data[: len(data) // 3]))
    else:
        layer.unlink()
    forbid_training(monkeypatch)
    with pytest.raises(checkpoint.CheckpointCorruptError) as err:
        DBN(SMALL, layer_configs=ONE_EPOCH, seed=0).pretrain(x_small, checkpoint_dir=copy, verbose=0)
    assert layer.name in str(err.value) and "--fresh" in str(err.value)
    monkeypatch.undo()
    calls = count_training(monkeypatch)
    with checkpoint.policy(fresh=True):
        DBN(SMALL, layer_configs=ONE_EPOCH, seed=0).pretrain(x_small, checkpoint_dir=copy, verbose=0)
    assert calls == [(784, 32), (32, 16)]  # --fresh discards and retrains every layer it opens


def test_datasets_differing_in_one_row_do_not_share_layers(x_small, tmp_path, monkeypatch):
    """The layer key hashes every byte of the data: the old strided sample of ~1,000 rows
    let two 3,000-row datasets differing in row 1 share a layer trained on one of them."""
    x = np.concatenate([x_small] * 3)
    DBN(SMALL[:2], layer_configs=ONE_EPOCH, seed=0).pretrain(x, checkpoint_dir=tmp_path, verbose=0)
    other = x.copy()
    other[1] = 1.0 - other[1]
    calls = count_training(monkeypatch)
    DBN(SMALL[:2], layer_configs=ONE_EPOCH, seed=0).pretrain(other, checkpoint_dir=tmp_path, verbose=0)
    assert calls == [(784, 32)]
    DBN(SMALL[:2], layer_configs=ONE_EPOCH, seed=0).pretrain(x, checkpoint_dir=tmp_path, verbose=0)
    assert calls == [(784, 32)]  # the same bytes do reuse it


@pytest.mark.parametrize("layer", [0, 1])
def test_resume_mid_layer_matches_uninterrupted(x_small, tmp_path, monkeypatch, layer):
    """Kill a layer after its first of three epochs was backed up and resume in a new DBN
    object: the stack ends bit-identical to an uninterrupted run with the same seed
    (weights, optimizer, sampler state, lr decay, momentum switch, and the per-epoch
    shuffle and binarization, which depend on (seed, epoch) only)."""
    full = DBN(SMALL, layer_configs=THREE_EPOCHS, seed=0)
    full_histories = full.pretrain(x_small, checkpoint_dir=tmp_path / "full", verbose=0)
    real = kill_layer(monkeypatch, layer=layer, epoch=1)
    with pytest.raises(Killed):
        DBN(SMALL, layer_configs=THREE_EPOCHS, seed=0).pretrain(
            x_small, checkpoint_dir=tmp_path / "resumed", verbose=0)
    assert layer_files(tmp_path / "resumed", layer) == []
    assert layer_state(tmp_path / "resumed", layer)["epoch"] == 1
    monkeypatch.setattr(dbn_module, "train_rbm", real)
    resumed = DBN(SMALL, layer_configs=THREE_EPOCHS, seed=0)
    histories = resumed.pretrain(x_small, checkpoint_dir=tmp_path / "resumed", verbose=0)
    assert (histories[layer]["reconstruction_error"]
            == full_histories[layer]["reconstruction_error"])
    assert_same_stack(full, resumed)


def test_save_and_load_round_trip(small_dbn, tmp_path):
    small_dbn.save(tmp_path / "saved")
    loaded = DBN.load(tmp_path / "saved", expect_layer_sizes=SMALL)
    assert loaded.describe() == small_dbn.describe()
    assert_same_stack(small_dbn, loaded)
    with pytest.raises(ValueError, match="pretrain"):
        DBN(SMALL, layer_configs=ONE_EPOCH).save(tmp_path / "untrained")
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        DBN.load(tmp_path / "untrained")


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_saved_dbn_is_refused_naming_the_file(small_dbn, tmp_path, damage):
    """DBN.save writes a SHA-256 manifest: a layer file damaged after saving is named,
    not handed to Keras (which failed with 'Bad CRC-32' or 'truncated file')."""
    small_dbn.save(tmp_path / "saved")
    manifest = json.loads((tmp_path / "saved" / checkpoint.MANIFEST).read_text())
    layer = tmp_path / "saved" / manifest["files"]["layer_0.keras"]["file"]
    data = bytearray(layer.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
    else:
        del data[len(data) // 2:]
    layer.write_bytes(bytes(data))
    with pytest.raises(checkpoint.CheckpointCorruptError, match=layer.name):
        DBN.load(tmp_path / "saved")


def test_checkpoint_of_a_different_architecture_is_refused(small_dbn, x_small, tmp_path,
                                                            monkeypatch):
    small_dbn.save(tmp_path / "saved")
    with pytest.raises(ValueError, match=r"\[784, 32, 16\].*\[784, 32, 8\]"):
        DBN.load(tmp_path / "saved", expect_layer_sizes=[784, 32, 8])

    # A saved directory whose layer file belongs to another architecture.
    wrong = RBM(8, visible_data="probabilities", seed=0)
    wrong.build((None, 32))
    with checkpoint.RunDir(tmp_path / "saved", DBN.SAVED) as run:
        run.save(files={"layer_1.keras": wrong.save})
    with pytest.raises(ValueError, match="32x8.*32x16"):
        DBN.load(tmp_path / "saved")

    # A layer-cache entry whose contents do not match the architecture its key names.
    forbid_training(monkeypatch)
    cache = tmp_path / "cache"
    cache.mkdir()
    data_key = checkpoint.fingerprint(x_small)
    for i, rbm in enumerate([small_dbn.rbms[0], wrong]):
        with checkpoint.RunDir(small_dbn.layer_path(i, data_key, cache),
                               small_dbn.layer_spec(i, data_key)) as run:
            dbn_module.save_finished_rbm(run, rbm)
    with pytest.raises(ValueError, match="32x8.*32x16"):
        DBN(SMALL, layer_configs=ONE_EPOCH, seed=0).pretrain(x_small, checkpoint_dir=cache, verbose=0)


# --------------------------------------------------------------------------- generation
@pytest.fixture(scope="module")
def generator(x_small):
    """Its own DBN: sampling advances the RBMs' sampler state, which other tests compare."""
    model = DBN(SMALL, layer_configs=ONE_EPOCH, seed=0)
    model.pretrain(x_small[:300], verbose=0)
    return model


def test_generate_returns_pixel_probabilities(generator):
    images = generator.generate(5, gibbs_steps=10, seed=0)
    assert images.shape == (5, 784) and images.dtype == np.float32
    assert np.all(np.isfinite(images)) and images.min() >= 0.0 and images.max() <= 1.0
    assert not np.all(np.isin(images, [0.0, 1.0]))  # probabilities, not samples


def test_generate_from_a_single_layer_dbn(x_small):
    single = DBN([784, 32], layer_configs=ONE_EPOCH, seed=0)
    single.pretrain(x_small[:300], verbose=0)
    images = single.generate(3, gibbs_steps=5)
    assert images.shape == (3, 784) and images.min() >= 0.0 and images.max() <= 1.0


@pytest.mark.parametrize("steps", [0, -1, 2.5])
def test_generate_rejects_bad_gibbs_steps(generator, steps):
    with pytest.raises(ValueError, match="gibbs_steps"):
        generator.generate(2, gibbs_steps=steps)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "sizes",
    [[], [784], None, [784, 0], [784, 32, -5], [784, 32.5], [0, 10], [784, True]],
    ids=["empty", "input_only", "none", "zero", "negative", "float", "zero_input", "bool"],
)
def test_bad_layer_sizes_are_rejected(sizes):
    with pytest.raises(ValueError, match="layer_sizes"):
        DBN(sizes)
    with pytest.raises(ValueError, match="layer_sizes"):
        build_classifier(sizes, 10)


def test_layer_sizes_are_normalised_to_ints():
    assert check_layer_sizes(np.array([784, 32])) == (784, 32)
    model = DBN([784, 32, 16], layer_configs=[ONE_EPOCH, RBMTrainingConfig(epochs=2)])
    assert [c.n_hidden for c in model.layer_configs] == [32, 16]  # n_hidden is overridden
    assert model.layer_configs[1].epochs == 2


def test_rbms_that_do_not_chain_with_the_layer_sizes_are_rejected(small_dbn):
    rbms = small_dbn.rbms
    for bad in (None, rbms[:1], rbms[::-1]):
        with pytest.raises(ValueError, match="pretrained"):
            build_classifier(SMALL, 10, init="pretrained", rbms=bad)
    with pytest.raises(ValueError, match="pretrained"):
        build_classifier([784, 32, 8], 10, init="pretrained", rbms=rbms)


@pytest.mark.parametrize("n_configs", [1, 3])
def test_wrong_number_of_layer_configs(n_configs):
    with pytest.raises(ValueError, match="layer configs"):
        DBN(SMALL, layer_configs=[ONE_EPOCH] * n_configs)


def test_using_an_untrained_dbn_raises():
    model = DBN(SMALL, layer_configs=ONE_EPOCH)
    assert not model.pretrained
    for call in (lambda: model.to_classifier(10), lambda: model.to_classifier(10, init="pretrained"),
                 lambda: model.transform(np.zeros((2, 784), np.float32)),
                 lambda: model.generate(2, gibbs_steps=1)):
        with pytest.raises(ValueError, match="pretrain"):
            call()
    # Random initialisations need no pretraining.
    assert model.to_classifier(10, init="glorot").output_shape == (None, 10)


@pytest.mark.parametrize("bad", [dict(init="xavier"), dict(init="uniform"), dict(dropout=1.0),
                                 dict(dropout=-0.1), dict(n_classes=0)])
def test_bad_classifier_options(small_dbn, bad):
    kwargs = dict(n_classes=10) | bad
    with pytest.raises(ValueError):
        small_dbn.to_classifier(kwargs.pop("n_classes"), **kwargs)


@pytest.mark.parametrize("shape", [(10, 100), (10, 785), (784,), (2, 28, 28)])
def test_pretrain_rejects_the_wrong_feature_count(shape, monkeypatch):
    forbid_training(monkeypatch)
    with pytest.raises(ValueError, match="784"):
        DBN(SMALL, layer_configs=ONE_EPOCH).pretrain(np.zeros(shape, np.float32), verbose=0)


@pytest.mark.parametrize("scale, nan", [(255.0, False), (1.0, True)], ids=["0-255", "nan"])
def test_pretrain_rejects_bad_pixel_values_before_training(x_small, tmp_path, scale, nan):
    """BUG (dbn/dbn.py, DBN.pretrain): grey levels are not checked before layer 1 is
    trained. Stochastic binarization maps 0..255 images to 'any ink = 1' and NaN to 0,
    so the whole first layer trains on wrong data (an hour on full MNIST) and is written
    to the layer cache; the ValueError only comes afterwards, from ``rbm.transform``."""
    x = x_small[:200] * scale
    if nan:
        x = x.copy()
        x[0, 0] = np.nan
    with pytest.raises(ValueError):
        DBN(SMALL, layer_configs=ONE_EPOCH).pretrain(x, checkpoint_dir=tmp_path, verbose=0)
    assert layer_files(tmp_path) == []


# --------------------------------------------------------------------------- what each layer learns from
def epoch_rows(train_data, epoch=0):
    """All rows one epoch of ``train_rbm``'s data holds (stacked batches flattened)."""
    data = train_data(epoch) if callable(train_data) else train_data
    if isinstance(data, np.ndarray):
        return data
    return np.concatenate([np.asarray(batch).reshape(-1, batch.shape[-1]) for batch in data])


def sorted_rows(a):
    return a[np.lexsort(a.T[::-1])]


def record_layer_data(monkeypatch):
    real, seen = dbn_module.train_rbm, []

    def train_rbm(rbm, train_data, *args, **kwargs):
        seen.append(epoch_rows(train_data))
        return real(rbm, train_data, *args, **kwargs)

    monkeypatch.setattr(dbn_module, "train_rbm", train_rbm)
    return seen


def test_upper_layers_train_on_the_hidden_probabilities_of_the_layer_below(x_small, monkeypatch):
    """Layer 1 sees stochastically binarized pixels (a fresh draw with the pixel
    intensities as probabilities); every higher layer sees exactly the lower layer's
    ``transform`` (real-valued probabilities), not sampled binary states."""
    seen = record_layer_data(monkeypatch)
    x = x_small[:400]
    model = DBN([784, 32, 16, 8], layer_configs=ONE_EPOCH, seed=0)
    model.pretrain(x, verbose=0)
    assert [rows.shape for rows in seen] == [(400, 784), (400, 32), (400, 16)]
    assert np.all(np.isin(seen[0], [0.0, 1.0]))
    # E[binarized] = x: the mean ink of the draw matches (400 x 784 Bernoulli draws).
    assert abs(seen[0].mean() - x.mean()) < 0.01
    inputs = x
    for rbm, rows in zip(model.rbms[:-1], seen[1:]):
        inputs = rbm.transform(inputs)
        assert np.mean(np.isin(rows, [0.0, 1.0])) < 0.01  # probabilities, not states
        np.testing.assert_array_equal(sorted_rows(rows), sorted_rows(inputs))


def test_sample_hidden_trains_upper_layers_on_binary_states(x_small, monkeypatch):
    """The documented alternative: ``sample_hidden=True`` feeds sampled states whose
    mean is the probabilities'."""
    seen = record_layer_data(monkeypatch)
    model = DBN([784, 32, 16], layer_configs=ONE_EPOCH, sample_hidden=True, seed=0)
    model.pretrain(x_small[:400], verbose=0)
    assert np.all(np.isin(seen[1], [0.0, 1.0]))
    assert abs(seen[1].mean() - model.rbms[0].transform(x_small[:400]).mean()) < 0.01


def hand_built_dbn(gain):
    """A 6-4-3 DBN whose top RBM gives p(v = 1 | h) = 1/2 for its 4 visible units (zero
    weights and biases) and whose bottom RBM connects hidden unit j to pixels j and j + 1
    with weight ``gain``, each pixel's bias minus half its total weight: given sampled
    binary hidden states a pixel is far from 1/2, given the mean-field value 1/2 of the
    hidden units it is exactly 1/2."""
    bottom = RBM(4, visible_data="probabilities", seed=0)
    bottom.build((None, 6))
    W = np.zeros((6, 4), np.float32)
    W[np.arange(4), np.arange(4)] = gain
    W[np.arange(1, 5), np.arange(4)] += gain
    bottom.W.assign(W)
    bottom.visible_bias.assign(-0.5 * W.sum(axis=1))
    top = RBM(3, visible_data="probabilities", seed=0)
    top.build((None, 4))
    top.W.assign(np.zeros((4, 3), np.float32))
    model = DBN([6, 4, 3], layer_configs=ONE_EPOCH, seed=0)
    model.rbms = [bottom, top]
    return model


def test_generate_samples_binary_states_in_the_top_down_pass():
    """Top-down generation samples binary states of every hidden layer below the top
    RBM (Hinton et al. 2006): pixel 0 depends on hidden unit 0 only, so it is
    sigmoid(+-5) = 0.007 or 0.993, each half of the time; a mean-field pass would give
    exactly 1/2 for every pixel."""
    model = hand_built_dbn(gain=10.0)
    images = model.generate(4000, gibbs_steps=3, seed=0)
    assert images.shape == (4000, 6)
    pixel = images[:, 0]
    np.testing.assert_allclose(np.sort(np.unique(np.round(pixel, 4))), [0.0067, 0.9933], atol=1e-4)
    # Fair coins: 2000 +- 32 (one standard deviation) of each.
    assert abs(np.mean(pixel > 0.5) - 0.5) < 0.05
    # Pixels 1..3 depend on two hidden units: sigmoid(-10), 1/2 (half the time) or
    # sigmoid(10).
    levels = 1.0 / (1.0 + np.exp([10.0, 0.0, -10.0]))
    np.testing.assert_allclose(np.unique(np.round(images[:, 1], 5)), levels, atol=1e-5)
    assert abs(np.mean(np.abs(images[:, 1] - 0.5) < 0.1) - 0.5) < 0.05
    # Independent draws for another seed; the same draws for the same seed.
    np.testing.assert_array_equal(model.generate(4000, gibbs_steps=3, seed=0), images)
    assert not np.array_equal(model.generate(4000, gibbs_steps=3, seed=1), images)
