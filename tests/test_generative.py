"""Hinton, Osindero & Teh (2006) generative DBN: label group, free-energy classifier,
class-conditional generation, up-down fine-tuning."""

import itertools

import keras
import numpy as np
import pytest
from conftest import EPS32, float32_free_energy_tol, float32_sum_tol

from dbn import data as datasets
from dbn.models.generative import GenerativeDBN
from dbn.training.configs import UpDownConfig
from dbn.models.rbm import RBM
from dbn.estimation.exact import exact_log_partition
from dbn.training.configs import RBMTrainingConfig


def tiny_labelled_rbm(D=7, H=4, K=3, seed=0):
    rng = np.random.default_rng(seed)
    rbm = RBM(H, n_labels=K, visible_data="probabilities", seed=seed)
    rbm.build((None, D))
    rbm.W.assign(rng.normal(0, 1.0, (D, H)).astype("float32"))
    rbm.visible_bias.assign(rng.normal(0, 1.0, D).astype("float32"))
    rbm.hidden_bias.assign(rng.normal(0, 1.0, H).astype("float32"))
    return rbm


def test_label_free_energies_and_classifier_match_brute_force():
    rbm = tiny_labelled_rbm()
    features = np.array(list(itertools.product([0, 1], repeat=4)), dtype=np.float32)
    brute = np.stack([rbm.free_energy(np.concatenate(
        [features, np.tile(np.eye(3, dtype=np.float32)[k], (len(features), 1))], axis=1))
        for k in range(3)], axis=1)
    # Two float32 evaluations of F summed differently: twice the worst-case bound.
    v = np.concatenate([np.repeat(features, 3, axis=0), np.tile(np.eye(3, dtype=np.float32), (16, 1))], 1)
    tol = 2 * float32_free_energy_tol(v, rbm.W.numpy(), rbm.visible_bias.numpy(), rbm.hidden_bias.numpy()).max()
    np.testing.assert_allclose(rbm.label_free_energies(features, batch_size=5), brute, atol=tol)
    np.testing.assert_array_equal(rbm.classify(features), np.argmin(brute, axis=1))


def test_exact_log_partition_with_label_group_sums_one_hot_states_only():
    rbm = tiny_labelled_rbm()
    W, b, c = (v.numpy().astype(np.float64) for v in (rbm.W, rbm.visible_bias, rbm.hidden_bias))
    terms = []
    for f in itertools.product([0, 1], repeat=4):
        for k in range(3):
            v = np.concatenate([f, np.eye(3)[k]])
            for h in itertools.product([0, 1], repeat=4):
                terms.append(v @ b + np.array(h) @ c + v @ W @ np.array(h))
    terms = np.array(terms)
    expected = terms.max() + np.log(np.exp(terms - terms.max()).sum())
    assert rbm.log_partition_exact() == pytest.approx(expected, abs=1e-9)
    # Without the softmax constraint the value is different (all 2**3 label states).
    assert exact_log_partition(W, b, c) > expected + 0.1


def test_clamped_chain_keeps_label_and_matches_exact_conditional():
    rbm = tiny_labelled_rbm(D=6, H=3, K=2, seed=3)
    W, b, c = (v.numpy().astype(np.float64) for v in (rbm.W, rbm.visible_bias, rbm.hidden_bias))
    # exact p(features | label = 1)
    feats = np.array(list(itertools.product([0, 1], repeat=4)), dtype=np.float64)
    v = np.concatenate([feats, np.tile([0.0, 1.0], (len(feats), 1))], axis=1)
    logp = v @ b + np.logaddexp(0, v @ W + c).sum(1)
    p = np.exp(logp - logp.max()); p /= p.sum()
    exact_means = p @ feats
    samples = rbm.sample(20000, 60, labels=np.ones(20000, dtype=np.int64))
    np.testing.assert_allclose(samples[:, :4].mean(0), exact_means, atol=0.015)
    np.testing.assert_array_equal(samples[:, 4:], np.tile([0.0, 1.0], (20000, 1)))


def test_label_bad_inputs():
    rbm = tiny_labelled_rbm()
    with pytest.raises(ValueError, match="out of range"):
        rbm.sample(2, 5, labels=np.array([0, 3]))
    with pytest.raises(ValueError, match="steps"):
        rbm.sample(2, 0, labels=np.array([0, 1]))
    plain = RBM(3, seed=0)
    plain.build((None, 5))
    with pytest.raises(ValueError, match="label group"):
        plain.classify(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match="label group"):
        plain.sample(2, 5, labels=np.array([0, 1]))
    with pytest.raises(ValueError, match="n_labels"):
        RBM(3, n_labels=-1)


@pytest.fixture(scope="module")
def small_generative(tmp_path_factory):
    """Pretrained on 5,000 images, then 2 up-down epochs (checkpointed); returns the model,
    the data, the weights before up-down and the up-down history."""
    data = datasets.load(n_train=5000, validation_size=1000, seed=0)
    config = RBMTrainingConfig(epochs=8, learning_rate=0.05, final_learning_rate=None)
    model = GenerativeDBN([784, 200, 200, 500], layer_configs=config, seed=0)
    model.pretrain(data.x_train, data.y_train, verbose=0)
    before = {"recognition": [w.numpy().copy() for w, _ in model.recognition],
              "generative": [w.numpy().copy() for w, _ in model.generative],
              "top": model.top.W.numpy().copy(),
              "error": model.error_rate(data.x_test[:2000], data.y_test[:2000]),
              "variables": [v.numpy().copy() for v in model._variables()]}
    ckpt = tmp_path_factory.mktemp("updown")
    history = model.up_down(data.x_train, data.y_train, UpDownConfig(epochs=2), checkpoint_dir=ckpt,
                            verbose=0)
    return model, data, before, history, ckpt


def test_up_down_unties_and_changes_weights(small_generative):
    model, data, before, history, ckpt = small_generative
    assert history["k"] == [3, 6]
    for rec0, gen0 in zip(before["recognition"], before["generative"]):
        np.testing.assert_array_equal(rec0, gen0)  # tied after pretraining
    for rec0, gen0, (rec, _), (gen, _) in zip(before["recognition"], before["generative"],
                                              model.recognition, model.generative):
        assert not np.allclose(rec.numpy(), rec0) and not np.allclose(gen.numpy(), gen0)
        assert np.abs(rec.numpy() - gen.numpy()).max() > 1e-4  # untied
    assert not np.allclose(model.top.W.numpy(), before["top"])
    # The same run again (same starting weights: e.g. a new session loading the pretrained
    # model) does no more epochs and restores the finished weights.
    after = [v.numpy().copy() for v in model._variables()]
    for v, value in zip(model._variables(), before["variables"]):
        v.assign(value)
    again = model.up_down(data.x_train, data.y_train, UpDownConfig(epochs=2), checkpoint_dir=ckpt,
                          verbose=0)
    assert again == history
    for v, value in zip(model._variables(), after):
        np.testing.assert_array_equal(v.numpy(), value)


def test_generative_classifier_and_conditional_samples(small_generative):
    model, data, before, _, _ = small_generative
    assert before["error"] < 0.3  # measured 0.15 before up-down; chance is 0.9
    error = model.error_rate(data.x_test[:2000], data.y_test[:2000])
    assert error < 0.3  # measured 0.13
    labels = np.repeat(np.arange(10), 20)
    images = model.generate(labels, gibbs_steps=100, seed=0)
    assert images.shape == (200, 784) and images.min() >= 0 and images.max() <= 1
    # An independent judge: a small MLP trained on the training images.
    keras.utils.set_random_seed(0)
    judge = keras.Sequential([keras.Input((784,)), keras.layers.Dense(256, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    judge.compile(optimizer=keras.optimizers.Adam(0.001), loss="sparse_categorical_crossentropy")
    judge.fit(data.x_train, data.y_train, epochs=5, batch_size=100, verbose=0)
    accuracy = np.mean(np.argmax(judge.predict(images, verbose=0), axis=1) == labels)
    assert accuracy > 0.4, accuracy  # measured 0.71; chance is 0.1
    with pytest.raises(ValueError, match="out of range"):
        model.generate(np.array([10]), gibbs_steps=5)
    with pytest.raises(ValueError, match="gibbs_steps"):
        model.generate(np.array([1]), gibbs_steps=0)


def test_generative_bad_inputs():
    with pytest.raises(ValueError, match="generative DBN needs"):
        GenerativeDBN([784, 500])
    model = GenerativeDBN([784, 20, 30], seed=0)
    with pytest.raises(ValueError, match="pretrain"):
        model.classify(np.zeros((1, 784), np.float32))
    with pytest.raises(ValueError, match=r"y has labels in \[0, 10\].*allowed: 0..9"):
        model.pretrain(np.zeros((2, 784), np.float32), np.array([0, 10]))
    with pytest.raises(ValueError, match="k_schedule"):
        UpDownConfig(k_schedule=(3, 0))
    assert [UpDownConfig(epochs=9).k_at(e) for e in range(9)] == [3, 3, 3, 6, 6, 6, 10, 10, 10]
    with pytest.raises(ValueError, match="binarization"):
        UpDownConfig(binarization="threshold")
    # Added after runs were cached: out of the cache key at its default, in it otherwise.
    assert "binarization" not in UpDownConfig().cache_settings()
    assert UpDownConfig(binarization="none").cache_settings()["binarization"] == "none"


# --------------------------------------------------------------------------- the up-down update
def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_up_down_step_matches_the_contrastive_wake_sleep_update():
    """One ``_up_down_step`` on a 6-4-(4 + 2 labels)-3 model against a numpy reference
    of Hinton et al. (2006), appendix B.  Every stochastic choice is made deterministic
    by saturated weights (probabilities sigmoid(+-20), which float32 rounds to 0 or 1),
    so the update is exact: wake phase (generative weights move *towards*
    reconstructing the data from the recognised states), sleep phase (recognition
    weights towards inferring the fantasy's states), and the top RBM's CD update."""
    import tensorflow as tf

    from dbn.models.generative import _up_down_step

    rng = np.random.default_rng(0)
    D, H1, K, H2, B, lr = 6, 4, 2, 3, 8, 0.1
    x = (rng.random((B, D)) < 0.5).astype(np.float32)
    labels = rng.integers(0, K, B)
    sign = lambda shape: np.where(rng.random(shape) < 0.5, -1.0, 1.0)  # noqa: E731
    rec_W = (20.0 * sign((D, H1))).astype(np.float32)
    rec_b = (10.0 * sign(H1)).astype(np.float32)  # x W is a multiple of 20: |x W + b| >= 10
    gen_W = rng.normal(0, 0.5, (D, H1)).astype(np.float32)
    gen_b = rng.normal(0, 0.5, D).astype(np.float32)
    W_top = np.zeros((H1 + K, H2), np.float32)
    b_top = np.concatenate([20.0 * sign(H1), rng.normal(0, 1, K)]).astype(np.float32)
    c_top = (20.0 * sign(H2)).astype(np.float32)
    start = [rec_W, rec_b, gen_W, gen_b, W_top, b_top, c_top]
    variables = [tf.Variable(v) for v in start]
    _up_down_step(tf.constant(x), tf.constant(labels), variables, K, 2, lr,
                  tf.constant([0, 0], tf.int64))
    got = [v.numpy().astype(np.float64) - s for v, s in zip(variables, start)]

    rec_W, rec_b, gen_W, gen_b, W_top, b_top, c_top = (a.astype(np.float64) for a in start)
    onehot = np.eye(K)[labels]
    wake = (x @ rec_W + rec_b > 0).astype(np.float64)  # saturated: the sample is certain
    assert np.all(np.abs(x @ rec_W + rec_b) >= 10)
    v_pos = np.concatenate([wake, onehot], axis=1)
    h_pos = np.broadcast_to(c_top > 0, (B, H2)).astype(np.float64)  # W_top = 0
    pen = np.broadcast_to(b_top[:H1] > 0, (B, H1)).astype(np.float64)
    label_p = np.exp(b_top[H1:]) / np.exp(b_top[H1:]).sum()
    v_neg = np.concatenate([pen, np.broadcast_to(label_p, (B, K))], axis=1)
    h_neg = h_pos
    sleep_pixels = sigmoid(pen @ gen_W.T + gen_b)  # the bottom of a fantasy: probabilities
    wake_error = x - sigmoid(wake @ gen_W.T + gen_b)
    sleep_error = pen - sigmoid(sleep_pixels @ rec_W + rec_b)
    expected = [
        lr * sleep_pixels.T @ sleep_error / B, lr * sleep_error.mean(0),
        lr * wake_error.T @ wake / B, lr * wake_error.mean(0),
        lr * (v_pos.T @ h_pos - v_neg.T @ h_neg) / B, lr * (v_pos - v_neg).mean(0),
        lr * (h_pos - h_neg).mean(0),
    ]
    names = ["recognition W", "recognition bias", "generative W", "generative bias",
             "top W", "top visible bias", "top hidden bias"]
    for name, g, e, s in zip(names, got, expected, start):
        # float32: means over B rows of terms <= 1 (times lr), one addition to |s|.
        tol = lr * float32_sum_tol(B, 1.0, worst_case=True) + EPS32 * (np.abs(s).max() + 1)
        np.testing.assert_allclose(g, e, atol=tol, err_msg=name)
    assert np.abs(expected[2]).max() > 0.01 and np.abs(expected[0]).max() > 0.01  # not vacuous

    # The wake update is gradient *ascent* on log p(data | recognised states): the
    # generative weights reconstruct this batch better after the step.
    def log_lik(W, b):
        p = sigmoid(wake @ W.T + b)
        return np.sum(x * np.log(p) + (1 - x) * np.log(1 - p))

    assert log_lik(gen_W + got[2], gen_b + got[3]) > log_lik(gen_W, gen_b) + 0.05


def test_unclamped_chain_samples_the_label_group_from_its_softmax():
    """Without a clamp the label group is one softmax unit sampled jointly (one-hot):
    the chain's label marginal matches the exact one, by enumeration of every feature
    vector and label."""
    rbm = tiny_labelled_rbm(D=7, H=3, K=3, seed=8)  # exact label marginal 0.50, 0.34, 0.16
    W, b, c = (v.numpy().astype(np.float64) for v in (rbm.W, rbm.visible_bias, rbm.hidden_bias))
    feats = np.array(list(itertools.product([0, 1], repeat=4)), dtype=np.float64)
    logp = np.stack([np.concatenate([feats, np.tile(np.eye(3)[k], (16, 1))], 1) @ b
                     + np.logaddexp(0, np.concatenate([feats, np.tile(np.eye(3)[k], (16, 1))], 1) @ W + c).sum(1)
                     for k in range(3)], axis=1)  # (16 feature vectors, 3 labels)
    p = np.exp(logp - logp.max())
    p /= p.sum()
    samples = rbm.sample(20000, 60, seed=0)
    # sample() returns p(v | h): the label part is softmax(b_k + W_k h) of each chain,
    # whose mean over chains is the label marginal (MC error <= 0.5 / sqrt(20000)).
    np.testing.assert_allclose(samples[:, 4:].sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(samples[:, 4:].mean(0), p.sum(0), atol=0.015)
    np.testing.assert_allclose(samples[:, :4].mean(0), p.sum(1) @ feats, atol=0.015)
    assert abs(p.sum(0)[0] - p.sum(0)[2]) > 0.1  # an order-sensitive check (label 0 vs 2)


def hand_built_generative(gain=10.0):
    """A 6-4-(4 + 2 labels)-3 generative DBN whose top RBM gives every feature
    probability 1/2 (zero weights and biases) and whose generative weights connect
    feature j to pixel j with weight ``gain`` and bias -gain/2: pixels are sigmoid(+-5)
    for sampled binary features, exactly 1/2 for the mean-field value 1/2."""
    import tensorflow as tf

    model = GenerativeDBN([6, 4, 3], n_classes=2, seed=0)
    model.top = RBM(3, n_labels=2, visible_data="probabilities", seed=0)
    model.top.build((None, 6))
    model.top.W.assign(np.zeros((6, 3), np.float32))
    W = np.zeros((6, 4), np.float32)
    W[np.arange(4), np.arange(4)] = gain
    bias = np.where(np.arange(6) < 4, -gain / 2, 0.0).astype(np.float32)
    model.generative = [(tf.Variable(W), tf.Variable(bias))]
    model.recognition = [(tf.Variable(W), tf.Variable(np.zeros(4, np.float32)))]
    return model


def test_generate_samples_binary_states_in_the_top_down_pass():
    """Class-conditional generation samples the penultimate layer's binary states
    before the generative pass (Hinton et al. 2006): pixel 0 is sigmoid(+-5), each half
    of the time, never the mean-field 1/2."""
    model = hand_built_generative()
    images = model.generate(np.zeros(4000, np.int64), gibbs_steps=3, seed=0)
    assert images.shape == (4000, 6)
    levels = 1.0 / (1.0 + np.exp([5.0, -5.0]))
    for j in range(4):
        np.testing.assert_allclose(np.unique(np.round(images[:, j], 5)), levels, atol=1e-5)
        assert abs(np.mean(images[:, j] > 0.5) - 0.5) < 0.05  # fair coins: sd 0.008
    np.testing.assert_allclose(images[:, 4:], 0.5, atol=1e-6)  # pixels without weights
    _, chain = model.generate(np.ones(10, np.int64), gibbs_steps=4, seed=1, return_chain=2)
    assert chain.shape == (2, 10, 6) and np.all(np.abs(chain[..., :4] - 0.5) > 0.4)


# --------------------------------------------------------------------------- momentum, weight cost
def _random_step_model(rng, D=6, H1=4, K=2, H2=3):
    shapes = [(D, H1), (H1,), (D, H1), (D,), (H1 + K, H2), (H1 + K,), (H2,)]
    return [rng.normal(0, 0.5, s).astype(np.float32) for s in shapes]


def test_up_down_momentum_and_weight_decay_compose_with_the_plain_update():
    """With velocities V and momentum m, each parameter moves by m V + lr (delta - wd P)
    where delta is the plain step's statistic (same seed, so the same samples) and the
    weight cost touches the three weight matrices only, never a bias."""
    import tensorflow as tf

    from dbn.models.generative import _up_down_step

    rng = np.random.default_rng(1)
    B, K, lr, m, wd = 16, 2, 0.1, 0.9, 0.05
    x = tf.constant((rng.random((B, 6)) < 0.5).astype(np.float32))
    labels = tf.constant(rng.integers(0, K, B))
    start = _random_step_model(rng)
    v0 = [rng.normal(0, 0.1, s.shape).astype(np.float32) for s in start]
    seed = tf.constant([3, 4], tf.int64)

    plain = [tf.Variable(s) for s in start]
    _up_down_step(x, labels, plain, K, 3, lr, seed)
    delta = [(p.numpy().astype(np.float64) - s) / lr for p, s in zip(plain, start)]

    tuned = [tf.Variable(s) for s in start]
    velocities = [tf.Variable(v) for v in v0]
    _up_down_step(x, labels, tuned, K, 3, lr, seed, velocities=velocities, momentum=m,
                  weight_decay=wd)
    for i, (t, s, v, d) in enumerate(zip(tuned, start, v0, delta)):
        decay = wd * s if s.ndim == 2 else 0.0
        expected_velocity = m * v + lr * (d - decay)
        # float32: each statistic is a mean over B = 16 rows of terms <= 1 (x lr); the
        # delta recovered from the plain step carries one rounding of |s| + lr (relative to
        # lr: EPS32 * (|s| + 1) / lr); plus the roundings of m v and of the final addition.
        tol = (lr * float32_sum_tol(B, 1.0, worst_case=True)
               + 4 * EPS32 * (np.abs(s).max() + np.abs(v).max() + 1))
        np.testing.assert_allclose(velocities[i].numpy(), expected_velocity, atol=tol, err_msg=str(i))
        np.testing.assert_allclose(t.numpy(), s + expected_velocity, atol=2 * tol, err_msg=str(i))
    # Not vacuous: the weight cost moves a weight by far more than the tolerance.
    assert lr * wd * np.abs(start[0]).max() > 100 * tol


# --------------------------------------------------------------------------- stochastic up-pass
def test_label_log_probabilities_and_the_stochastic_up_pass(small_generative):
    model, data, _, _, _ = small_generative
    x, y = data.x_test[:500], data.y_test[:500]
    log_p = model.label_log_probabilities(x)
    np.testing.assert_allclose(np.exp(log_p).sum(axis=1), 1.0, rtol=1e-6)  # float64 softmax
    # The deterministic classifier is the label of lowest free energy = highest log p.
    np.testing.assert_array_equal(np.argmax(log_p, axis=1), model.classify(x))
    features = model.features(x[:50], stochastic=True, seed=3)
    assert set(np.unique(features)) <= {0.0, 1.0}
    np.testing.assert_array_equal(features, model.features(x[:50], stochastic=True, seed=3))
    assert not np.array_equal(features, model.features(x[:50], stochastic=True, seed=4))
    # Every layer is sampled given the *sampled* layer below: the mean of the top features
    # over many draws is E[sigmoid(h1 W2 + b2)] with h1 ~ p(h1 | x), not sigmoid(p1 W2 + b2).
    # Reference by independent numpy draws; tolerance: 5 standard deviations of each mean.
    (W1, b1), (W2, b2) = [(W.numpy().astype(np.float64), b.numpy()) for W, b in model.recognition]
    rng = np.random.default_rng(9)

    def exact_mean(image, n=100_000):
        p1 = sigmoid(image.astype(np.float64) @ W1 + b1)
        reference = sigmoid((rng.random((n, p1.shape[0])) < p1) @ W2 + b2)
        return reference.mean(0), reference.std(0) / np.sqrt(n), sigmoid(p1 @ W2 + b2)

    # The image (of 20) where sampling layer 1 matters most, so the check has teeth.
    image = max(x[:20], key=lambda im: np.abs(np.subtract(*exact_mean(im, 2000)[::2])).max())
    mean, mean_sd, deterministic_p = exact_mean(image)
    draws = model.features(np.repeat(image[None], 20_000, axis=0), stochastic=True, seed=5)
    tol = 5 * (np.sqrt(mean * (1 - mean) / 20_000) + mean_sd) + 1e-3
    assert np.all(np.abs(draws.mean(0) - mean) < tol)
    assert np.any(np.abs(deterministic_p - mean) > 2 * tol)  # the check can tell them apart
    one = model.error_rate(x, y, stochastic=True, seed=0)
    averaged = model.error_rate(x, y, stochastic=True, repeats=10, seed=0)
    deterministic = model.error_rate(x, y)
    assert averaged <= one + 0.01  # measured: averaging 10 passes beats one noisy pass
    assert abs(averaged - deterministic) < 0.05
    with pytest.raises(ValueError, match="repeats=3"):
        model.classify(x, repeats=3)
    with pytest.raises(ValueError, match="stochastic="):
        model.features(x, stochastic=1)


# --------------------------------------------------------------------------- continuation, resume
def test_up_down_stops_at_the_training_error_target_and_resumes_with_velocities(
        small_generative, tmp_path, monkeypatch):
    import dbn.models.generative as generative

    model, data, _, _, _ = small_generative
    start = [v.numpy().copy() for v in model._variables()]
    x, y = data.x_train[:1000], data.y_train[:1000]
    config = UpDownConfig(epochs=3, learning_rate=0.003, momentum=0.9, weight_decay=1e-4)

    def restore():
        for v, value in zip(model._variables(), start):
            v.assign(value)

    # Reference: three uninterrupted epochs.
    full = model.up_down(x, y, config, checkpoint_dir=tmp_path / "a", verbose=0)
    after = [v.numpy().copy() for v in model._variables()]
    # Killed after the first epoch's checkpoint, then resumed: bit-identical only if the
    # velocities were saved and restored with the weights.
    restore()
    calls = {"n": 0}
    real = generative.pipeline.epoch_datasets

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(generative.pipeline, "epoch_datasets", dying)
    with pytest.raises(KeyboardInterrupt):
        model.up_down(x, y, config, checkpoint_dir=tmp_path / "b", verbose=0)
    monkeypatch.setattr(generative.pipeline, "epoch_datasets", real)
    restore()
    resumed = model.up_down(x, y, config, checkpoint_dir=tmp_path / "b", verbose=0)
    assert resumed["k"] == full["k"]
    for v, value in zip(model._variables(), after):
        np.testing.assert_array_equal(v.numpy(), value)

    # The continuation stops after the first epoch whose training error meets the target.
    restore()
    error0 = model.error_rate(x, y)
    stopped = model.up_down(x, y, config, checkpoint_dir=tmp_path / "c", verbose=0,
                            stop_at_train_error=1.0)
    assert len(stopped["train_error"]) == 1 and len(stopped["k"]) == 1
    assert stopped["train_error"][0] == model.error_rate(x, y)
    restore()
    never = model.up_down(x, y, config, checkpoint_dir=tmp_path / "d", verbose=0,
                          stop_at_train_error=0.0)
    assert len(never["train_error"]) == 3 and error0 > 0  # the cap ends it
    with pytest.raises(ValueError, match="stop_at_train_error=1.5"):
        model.up_down(x, y, config, stop_at_train_error=1.5)


def test_top_rbm_key_does_not_depend_on_the_features_last_bits(tmp_path, monkeypatch):
    """The top RBM is keyed by the images, labels and the lower weights as stored, so a
    run directory carried to a CPU whose matmul rounds differently is still found (the
    features differ there in the last bit); a run keyed the former way is still used."""
    import dbn.models.generative as generative
    from dbn.models.dbn import DBN
    from dbn.training.checkpoint import fingerprint, run_path, spec_key

    data = datasets.load(n_train=500, seed=0)
    config = RBMTrainingConfig(epochs=1, learning_rate=0.05, final_learning_rate=None)
    first = GenerativeDBN([784, 20, 30], layer_configs=config, seed=0)
    first.pretrain(data.x_train, data.y_train, checkpoint_dir=tmp_path, verbose=0)
    transform = DBN.transform
    monkeypatch.setattr(DBN, "transform", lambda self, x: np.nextafter(transform(self, x), 2.0))

    def no_training(*args, **kwargs):
        raise AssertionError("the top RBM was trained again")

    monkeypatch.setattr(generative, "train_rbm", no_training)
    again = GenerativeDBN([784, 20, 30], layer_configs=config, seed=0)
    again.pretrain(data.x_train, data.y_train, checkpoint_dir=tmp_path, verbose=0)
    assert again.cache_key == first.cache_key
    np.testing.assert_array_equal(again.top.W.numpy(), first.top.W.numpy())
    # Other labels are another key.
    other = GenerativeDBN([784, 20, 30], layer_configs=config, seed=0)
    with pytest.raises(AssertionError, match="trained again"):
        other.pretrain(data.x_train, (data.y_train + 1) % 10, checkpoint_dir=tmp_path, verbose=0)
