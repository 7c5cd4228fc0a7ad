"""Hinton, Osindero & Teh (2006) generative DBN: label group, free-energy classifier,
class-conditional generation, up-down fine-tuning."""

import itertools

import keras
import numpy as np
import pytest
from conftest import float32_free_energy_tol

from dbn import datasets
from dbn.generative import GenerativeDBN, UpDownConfig
from dbn.rbm import RBM, exact_log_partition
from dbn.training import RBMTrainingConfig


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
              "error": model.error_rate(data.x_test[:2000], data.y_test[:2000])}
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
    # Resuming a finished run does no more epochs and changes nothing.
    top = model.top.W.numpy().copy()
    again = model.up_down(data.x_train, data.y_train, UpDownConfig(epochs=2), checkpoint_dir=ckpt,
                          verbose=0)
    assert again["k"] == [3, 6]
    np.testing.assert_array_equal(model.top.W.numpy(), top)


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
    with pytest.raises(ValueError, match="labels must be integers"):
        model.pretrain(np.zeros((2, 784), np.float32), np.array([0, 10]))
    with pytest.raises(ValueError, match="k_schedule"):
        UpDownConfig(k_schedule=(3, 0))
    assert [UpDownConfig(epochs=9).k_at(e) for e in range(9)] == [3, 3, 3, 6, 6, 6, 10, 10, 10]
