"""Bad inputs to dbn.generative.GenerativeDBN (constructor, pretrain, features,
classify, error_rate, generate, up_down, save): ValueErrors naming the argument, before
any training, sampling or file."""

import numpy as np
import pytest

from dbn.models.generative import GenerativeDBN
from dbn.training.configs import UpDownConfig
from dbn.models.rbm import RBM
from dbn.training.configs import RBMTrainingConfig

TINY = RBMTrainingConfig(n_hidden=4, epochs=1, learning_rate=0.05)


def ready(sizes=(20, 6, 8), n_classes=3):
    """A GenerativeDBN with built (untrained) RBMs: enough to reach every argument check."""
    model = GenerativeDBN(list(sizes), n_classes=n_classes, layer_configs=TINY, seed=0)
    for n_visible, n_hidden in zip(sizes[:-2], sizes[1:-1]):
        rbm = RBM(n_hidden, seed=0)
        rbm.build((None, n_visible))
        model.lower.rbms.append(rbm)
    model.top = RBM(sizes[-1], n_labels=n_classes, visible_data="probabilities", seed=0)
    model.top.build((None, sizes[-2] + n_classes))
    model.cache_key = "test"
    model._untie()
    return model


def images(n=6, seed=0):
    return (np.random.default_rng(seed).random((n, 20)) < 0.5).astype(np.float32)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_classes=2.0), r"n_classes=2.0 must be an integer"),
    (dict(n_classes=0), r"n_classes=0"),
    (dict(seed=-1), r"seed=-1"),
    (dict(seed="1"), r"seed='1'"),
    (dict(layer_configs="tiny"), r"layer_configs='tiny' must be an RBMTrainingConfig"),
    (dict(layer_sizes=[20, 6.0, 8]), r"layer_sizes\[1\]=6.0"),
])
def test_constructor(kwargs, match):
    kwargs = {"layer_sizes": [20, 6, 8], **kwargs}
    with pytest.raises(ValueError, match=match):
        GenerativeDBN(**kwargs)


@pytest.mark.parametrize("make, match", [
    (lambda x, y: dict(y=np.r_[y[:-1], 3]), r"y has labels in \[0, 3\].*allowed: 0..2"),
    (lambda x, y: dict(y=y.astype(float)), r"y has dtype float64"),
    (lambda x, y: dict(y=y[:-1]), r"y has 5 labels but x has 6 rows"),
    (lambda x, y: dict(x=x * 255), r"x has values in \[0, 255\]"),
    (lambda x, y: dict(x=x[:, :10]), r"x has 10 features; this DBN's input size is 20"),
    (lambda x, y: dict(x=x[:0], y=y[:0]), r"x is empty"),
    (lambda x, y: dict(x_unlabelled=np.full((4, 20), np.nan)), r"x_unlabelled contains NaN"),
    (lambda x, y: dict(checkpoint_dir=1), r"checkpoint_dir=1 must be a directory"),
    (lambda x, y: dict(layer_cache=1), r"layer_cache=1 must be a directory"),
    (lambda x, y: dict(timings="t"), r"timings='t' must be a dict"),
], ids=["label-3", "float-labels", "lengths", "0-255", "width", "empty", "nan-unlabelled",
        "checkpoint_dir", "layer_cache", "timings"])
def test_pretrain_refuses_before_training(tmp_path, make, match):
    model = GenerativeDBN([20, 6, 8], n_classes=3, layer_configs=TINY, seed=0)
    x, y = images(), np.array([0, 1, 2, 0, 1, 2])
    kwargs = {"x": x, "y": y, "checkpoint_dir": tmp_path / "ckpt", **make(x, y)}
    with pytest.raises(ValueError, match=match):
        model.pretrain(verbose=0, **kwargs)
    assert model.top is None and model.lower.rbms == [] and not (tmp_path / "ckpt").exists()


def test_inference_arguments():
    model = ready()
    x = images()
    with pytest.raises(ValueError, match=r"x has 19 features"):
        model.features(x[:, :19])
    with pytest.raises(ValueError, match=r"batch_size=0"):
        model.features(x, batch_size=0)
    with pytest.raises(ValueError, match=r"x contains NaN"):
        model.classify(np.full((2, 20), np.nan))
    with pytest.raises(ValueError, match=r"y has 1 labels but x has 6 rows"):
        model.error_rate(x, [0])
    with pytest.raises(ValueError, match=r"y has labels in \[0, 7\]"):
        model.error_rate(x, [0, 1, 2, 0, 1, 7])
    assert model.classify(x).shape == (6,)


@pytest.mark.parametrize("kwargs, match", [
    (dict(labels=np.array([0, 3])), r"labels has labels in \[0, 3\].*allowed: 0..2"),
    (dict(labels=np.array([-1])), r"labels has labels in \[-1, -1\]"),
    (dict(labels=np.array([1.0])), r"labels has dtype float64"),
    (dict(labels=np.array([], np.int64)), r"labels is empty"),
    (dict(labels=np.array([[0]])), r"labels has shape \(1, 1\)"),
    (dict(gibbs_steps=2.0), r"gibbs_steps=2.0"),
    (dict(return_chain=0), r"return_chain=0"),
    (dict(return_chain=1.5), r"return_chain=1.5"),
    (dict(seed=-5), r"seed=-5"),
])
def test_generate_arguments(kwargs, match):
    model = ready()
    state = model.top.sampler_state.numpy().copy()
    kwargs = {"labels": np.array([0, 1]), "gibbs_steps": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        model.generate(**kwargs)
    np.testing.assert_array_equal(model.top.sampler_state.numpy(), state)


@pytest.mark.parametrize("make, match", [
    (lambda x, y: dict(y=y + 3), r"y has labels in \[3, 5\]"),
    (lambda x, y: dict(y=y.astype(float)), r"y has dtype float64"),
    (lambda x, y: dict(x=x * 2), r"x has values in \[0, 2\]"),
    (lambda x, y: dict(x=x[:0], y=y[:0]), r"x is empty"),
    (lambda x, y: dict(config={"epochs": 1}), r"config=.* must be an UpDownConfig"),
    (lambda x, y: dict(validation=x), r"validation must be a pair"),
    (lambda x, y: dict(validation=(x, y[:2])), r"validation\[1\] has 2 labels but validation\[0\] has 6 rows"),
    (lambda x, y: dict(validation=(x * 3, y)), r"validation\[0\] has values in \[0, 3\]"),
    (lambda x, y: dict(checkpoint_dir=2), r"checkpoint_dir=2"),
], ids=["labels", "float-labels", "range", "empty", "config", "validation-not-pair",
        "validation-lengths", "validation-range", "checkpoint_dir"])
def test_up_down_refuses_before_training(tmp_path, make, match):
    model = ready()
    x, y = images(), np.array([0, 1, 2, 0, 1, 2])
    before = [v.numpy().copy() for v in model._variables()]
    kwargs = {"x": x, "y": y, "config": UpDownConfig(epochs=1), **make(x, y)}
    with pytest.raises(ValueError, match=match):
        model.up_down(verbose=0, **kwargs)
    for a, v in zip(before, model._variables()):
        np.testing.assert_array_equal(a, v.numpy())


def test_save_needs_a_pretrained_model(tmp_path):
    with pytest.raises(ValueError, match="save needs a labelled top RBM"):
        GenerativeDBN([20, 6, 8], layer_configs=TINY).save(tmp_path / "g")
    assert not (tmp_path / "g").exists()
    with pytest.raises(ValueError, match="directory=None"):
        ready().save(None)
