"""dbn.models.autoencoder: the unrolled DBN autoencoder against numpy references, the
export format, the PCA check of the metric, and bad inputs."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from dbn import data as datasets
from dbn.models.autoencoder import (AUTOENCODER_LAYER, CODE_LAYER, DeepAutoencoder,
                                    autoencoder_layer_configs, leaky_relu6, logistic_pca,
                                    logistic_pca_loss, pca_squared_error, pretrain_stack)
from dbn.models.dbn import DBN
from dbn.training.configs import RBMTrainingConfig

SIZES = [20, 12, 8, 3]


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def grey_data(n=300, d=20, seed=0):
    """Grey levels in [0, 1] with structure: two prototypes plus noise."""
    rng = np.random.default_rng(seed)
    protos = rng.random((2, d))
    x = protos[rng.integers(0, 2, n)] * 0.8 + 0.2 * rng.random((n, d))
    return np.clip(x, 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def stack():
    x = grey_data()
    return pretrain_stack(x, SIZES, seed=0, bernoulli=dataclasses.replace(AUTOENCODER_LAYER, epochs=2),
                          code=dataclasses.replace(CODE_LAYER, epochs=2), verbose=0)


def numpy_forward(rbms, x):
    """Encoder then decoder of the unrolled stack, in float64 from the RBMs' arrays."""
    h = x.astype(np.float64)
    for i, r in enumerate(rbms):
        a = h @ r.W.numpy() + r.hidden_bias.numpy()
        h = a if i == len(rbms) - 1 else sigmoid(a)
    code = h
    for r in reversed(rbms):
        h = sigmoid(h @ r.W.numpy().T + r.visible_bias.numpy())
    return code, h


# float32 forward passes through 3 + 3 layers of < 20 inputs of magnitude <~ 5 against
# float64: a few float32 roundings of values < 100 per layer, propagated through sigmoids
# (slope <= 1/4): < 1e-5; 1e-4 leaves room and is far below any bug (wrong bias: > 0.01).
TOL = 1e-4


def test_pretraining_uses_grey_levels_and_a_gaussian_code_layer(stack):
    assert [r.hidden_units for r in stack.rbms] == ["bernoulli", "bernoulli", "gaussian"]
    assert stack.rbms[0].visible_data == "probabilities"  # grey levels, not binarized
    assert stack.rbms[-1].get_config()["hidden_units"] == "gaussian"
    codes = stack.transform(grey_data(50, seed=1))
    assert np.any(codes < 0) or np.any(codes > 1)  # linear means, not probabilities


def test_unrolled_model_matches_the_stack(stack):
    ae = DeepAutoencoder.from_dbn(stack)
    x = grey_data(40, seed=2)
    code, recon = numpy_forward(stack.rbms, x)
    np.testing.assert_allclose(ae.encode(x), code, atol=TOL)
    np.testing.assert_allclose(ae.encode(x), stack.transform(x), atol=TOL)
    np.testing.assert_allclose(ae.reconstruct(x), recon, atol=TOL)
    np.testing.assert_allclose(ae.decode(code.astype(np.float32)), recon, atol=TOL)
    se = np.mean(np.sum((x - recon) ** 2, axis=1))
    assert ae.squared_error(x) == pytest.approx(se, rel=1e-4)
    ce = -np.mean(np.sum(x * np.log(recon) + (1 - x) * np.log(1 - recon), axis=1))
    assert ae.cross_entropy(x) == pytest.approx(ce, rel=1e-4)


def test_decoder_is_untied(stack):
    ae = DeepAutoencoder.from_dbn(stack)
    x = tf.constant(grey_data(64, seed=3))
    optimizer = keras.optimizers.SGD(0.5)
    with tf.GradientTape() as tape:
        loss = ae.loss_fn(x)
    optimizer.apply_gradients(zip(tape.gradient(loss, ae.trainable_variables), ae.trainable_variables))
    (W0, _), (W5, _) = ae.arrays()[0], ae.arrays()[-1]
    assert not np.allclose(W0, W5.T)  # they started equal and moved apart
    np.testing.assert_array_equal(stack.rbms[0].W.numpy(), DeepAutoencoder.from_dbn(stack).arrays()[-1][0].T)


def test_export_npz_evaluates_with_numpy(stack, tmp_path):
    ae = DeepAutoencoder.from_dbn(stack)
    ae.export_npz(tmp_path / "ae.npz")
    f = np.load(tmp_path / "ae.npz")
    L = len(SIZES) - 1
    assert sorted(f.files) == sorted([f"W{i}" for i in range(2 * L)] + [f"b{i}" for i in range(2 * L)])
    assert all(f[k].dtype == np.float32 for k in f.files)
    x = grey_data(10, seed=4)
    h = x.astype(np.float64)
    for i in range(2 * L):
        h = h @ f[f"W{i}"] + f[f"b{i}"]
        if i != L - 1:  # the code layer is linear
            h = sigmoid(h)
    np.testing.assert_allclose(h, ae.reconstruct(x), atol=TOL)


def test_save_load_round_trip(stack, tmp_path):
    ae = DeepAutoencoder.from_dbn(stack)
    ae.save(tmp_path / "ae.keras")
    loaded = keras.models.load_model(tmp_path / "ae.keras")
    assert isinstance(loaded, DeepAutoencoder) and loaded.layer_sizes == tuple(SIZES)
    x = grey_data(10, seed=5)
    np.testing.assert_array_equal(loaded.reconstruct(x), ae.reconstruct(x))


def test_random_init_and_leaky_relu6():
    a = DeepAutoencoder(SIZES, seed=1)
    b = DeepAutoencoder(SIZES, seed=1)
    c = DeepAutoencoder(SIZES, seed=2)
    np.testing.assert_array_equal(a.arrays()[0][0], b.arrays()[0][0])
    assert not np.array_equal(a.arrays()[0][0], c.arrays()[0][0])
    np.testing.assert_allclose(leaky_relu6(tf.constant([-10.0, -1.0, 0.5, 5.0, 9.0])).numpy(),
                               [-2.0, -0.2, 0.5, 5.0, 6.0], rtol=1e-6)
    r = DeepAutoencoder(SIZES, activation="leaky_relu6", seed=0)
    assert r.encode(grey_data(5)).shape == (5, 3)


def test_pca_reproduces_the_papers_figure():
    """The paper's 13.87 for 30 components on the MNIST test set (the guide measured the
    same): a check of the metric (squared error summed over pixels, mean over images)."""
    data = datasets.load(validation_size=0)
    error, codes, (mean, basis) = pca_squared_error(data.x_train, data.x_test, 30)
    assert error == pytest.approx(13.87, abs=0.3)
    assert codes.shape == (10_000, 30) and basis.shape == (30, 784)
    # The directions are ordered: the first two alone reconstruct far worse (> 40).
    two = (data.x_test - mean) @ basis[:2].T @ basis[:2] + mean
    assert np.mean(np.sum((data.x_test - two) ** 2, axis=1)) > 40


def test_logistic_pca_loss_and_gradients_against_numpy_and_finite_differences():
    """The cross-entropy against a direct numpy sum over Bernoulli pixels, and every
    gradient against central differences of it (float64: steps of 1e-6 on a loss of about
    100 nats leave a rounding error of ~1e-16 * 100 / 1e-6 = 1e-8 and a truncation error
    of ~1e-12, so 1e-6 relative is loose and a wrong sign or a missing term is not)."""
    rng = np.random.default_rng(0)
    x = grey_data(7, 12).astype(np.float64)  # (1 - x in float32 would round at 6e-8)
    codes, basis, bias = rng.normal(size=(7, 3)), rng.normal(size=(3, 12)), rng.normal(size=12)
    p = sigmoid(codes @ basis + bias)
    expected = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p))
    args = [tf.constant(a, tf.float64) for a in (codes, basis, bias, x)]
    loss, *grads = (t.numpy() for t in logistic_pca_loss(*args))
    assert loss == pytest.approx(expected, rel=1e-12)
    for i, grad in enumerate(grads):
        numeric = np.zeros_like(grad)
        for index in np.ndindex(grad.shape):
            up, down = [a.numpy().copy() for a in args], [a.numpy().copy() for a in args]
            up[i][index] += 1e-6
            down[i][index] -= 1e-6
            numeric[index] = (float(logistic_pca_loss(*map(tf.constant, up))[0])
                              - float(logistic_pca_loss(*map(tf.constant, down))[0])) / 2e-6
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-6)


def test_logistic_pca_beats_pca_on_mnist_and_refuses_bad_input():
    """2,000 training and 500 test images, 10 components, 100 iterations: the Bernoulli
    model reconstructs far better than PCA with as many components (measured 22.3 against
    26.7); the fit lowers the cross-entropy below where PCA of the
    logits starts it.  Bad data and sizes are refused before any work."""
    data = datasets.load(n_train=2000, validation_size=0, seed=0)
    x_test = data.x_test[:500]
    error, codes, (basis, bias), info = logistic_pca(data.x_train, x_test, 10, max_iter=100,
                                                     test_max_iter=100)
    pca_error, _, _ = pca_squared_error(data.x_train, x_test, 10)
    assert error < pca_error - 3.0, (error, pca_error)
    assert codes.shape == (500, 10) and basis.shape == (10, 784) and bias.shape == (784,)
    start, _, _, _ = logistic_pca(data.x_train, x_test, 10, max_iter=1, test_max_iter=1)
    assert error < start - 2.0, (error, start)  # measured 22.3 against 26.0
    assert info["fit"]["iterations"] <= 100 and info["fit"]["mean_cross_entropy"] > 0
    with pytest.raises(ValueError, match="x_train"):
        logistic_pca(data.x_train * 255, x_test, 10)
    with pytest.raises(ValueError, match="x_test"):
        logistic_pca(data.x_train, x_test[:, :100], 10)
    for bad in (0, 2.5, True, 10**6):
        with pytest.raises(ValueError, match="n_components"):
            logistic_pca(data.x_train, x_test, bad)
    with pytest.raises(ValueError, match="max_iter"):
        logistic_pca(data.x_train, x_test, 10, max_iter=0)


@pytest.mark.parametrize("sizes, match", [
    ([784, 1000, 30, 250], "smaller than every"),
    ([784, 30, 30], "smaller than every"),
    ([784], "at least one hidden"),
    ([784, 2.5], "layer_sizes"),
    ([784, True], "layer_sizes"),
])
def test_bad_layer_sizes(sizes, match):
    with pytest.raises(ValueError, match=match):
        DeepAutoencoder(sizes)


def test_bad_inputs(stack):
    ae = DeepAutoencoder.from_dbn(stack)
    with pytest.raises(ValueError, match="x"):
        ae.encode(grey_data(5) * 3)  # not in [0, 1]
    with pytest.raises(ValueError, match="x"):
        ae.squared_error(np.full((2, 20), np.nan, np.float32))
    with pytest.raises(ValueError, match="input size"):
        ae.reconstruct(grey_data(5, d=21))
    with pytest.raises(ValueError, match="code size"):
        ae.decode(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="activation"):
        DeepAutoencoder(SIZES, activation="relu")
    bernoulli_top = DBN(SIZES, layer_configs=RBMTrainingConfig(epochs=1), binarize_input=False)
    bernoulli_top.rbms = stack.rbms  # pretrained, but its configs say Bernoulli on top
    with pytest.raises(ValueError, match="Gaussian"):
        DeepAutoencoder.from_dbn(bernoulli_top)
    with pytest.raises(ValueError, match="smaller than every"):
        autoencoder_layer_configs([784, 10, 30])
    with pytest.raises(ValueError, match="gaussian"):
        stack.to_classifier(10)
    with pytest.raises(ValueError, match="x is empty"):
        ae.cross_entropy(np.zeros((0, 20), np.float32))  # was a ZeroDivisionError
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            ae.reconstruct(grey_data(5), batch_size=bad)
        with pytest.raises(ValueError, match="batch_size"):
            ae.cross_entropy(grey_data(5), batch_size=bad)


@pytest.mark.parametrize("which, bad, match", [
    ("x_train", grey_data(50) * 3, r"x_train has values in \[.*\]; allowed"),
    ("x_train", grey_data(50, d=21), "x_train has 21 features; the autoencoder's input size is 20"),
    ("x_test", grey_data(50, d=21), "x_test has 21 features"),
    ("x_test", np.zeros((0, 20), np.float32), "x_test is empty"),
    ("x_val", np.full((5, 20), np.nan, np.float32), "x_val contains NaN"),
])
def test_finetune_run_refuses_bad_data_before_any_work(stack, tmp_path, which, bad, match):
    """Named, before a run directory exists or an epoch (minutes for CG) is spent."""
    from dbn.protocols.autoencoder import finetune_run
    from dbn.training.configs import MinimizeConfig

    arrays = {"x_train": grey_data(50), "x_test": grey_data(20), "x_val": grey_data(20), which: bad}
    with pytest.raises(ValueError, match=match):
        finetune_run(DeepAutoencoder.from_dbn(stack), arrays["x_train"], arrays["x_test"],
                     MinimizeConfig(method="adam", epochs=1), checkpoint_dir=tmp_path, name="t",
                     spec={}, x_val=arrays["x_val"], patience=1)
    assert not (tmp_path / "autoencoder").exists()


def test_binarize_input_keeps_old_cache_keys():
    """``binarize_input`` joined the DBN after layers were cached: True (the old
    behaviour) is left out of the layer keys, False is in them."""
    old = DBN([784, 10])
    new = DBN([784, 10], binarize_input=False)
    assert "binarize_input" not in old.layer_spec(0, "k")
    assert new.layer_spec(0, "k")["binarize_input"] is False
    with pytest.raises(ValueError, match="binarize_input"):
        DBN([784, 10], binarize_input="no")


def test_finetune_run_is_named_by_its_run_and_resumed_from_there(stack, tmp_path, monkeypatch):
    """The run directory is ``<name>_<key>`` (a run of hours resumes only if a later
    commit finds the same directory), and the same call again trains nothing."""
    import dbn.training.minimize
    from dbn.protocols.autoencoder import finetune_run
    from dbn.training.configs import MinimizeConfig

    x = grey_data(100)
    args = (x, x[:20], MinimizeConfig(method="adam", epochs=1, batch_size=50))
    kwargs = dict(checkpoint_dir=tmp_path, name="dbn_adam", spec={"what": "t"}, x_val=x[:20], patience=1)
    first = finetune_run(DeepAutoencoder.from_dbn(stack), *args, **kwargs)
    (run_dir,) = (tmp_path / "autoencoder").iterdir()
    assert run_dir.name.startswith("dbn_adam_")

    def fail(*a, **k):
        raise AssertionError("a finished run was trained again")
    monkeypatch.setattr(dbn.training.minimize, "_adam_step", fail)
    assert finetune_run(DeepAutoencoder.from_dbn(stack), *args, **kwargs) == first
    assert [p.name for p in (tmp_path / "autoencoder").iterdir()] == [run_dir.name]
