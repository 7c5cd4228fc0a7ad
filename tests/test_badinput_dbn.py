"""Bad inputs to dbn.models.dbn (DBN, pretrain, transform, generate, to_classifier, save/load,
build_classifier): ValueErrors naming the argument, before any layer is trained or any
file written."""

import numpy as np
import pytest

from dbn.models.dbn import DBN
from dbn.models.classifier import build_classifier
from dbn.models.rbm import RBM
from dbn.training.configs import RBMTrainingConfig

TINY = RBMTrainingConfig(n_hidden=4, epochs=1, learning_rate=0.05)


def stacked(sizes=(20, 6, 4)):
    """A 'pretrained' DBN whose RBMs are freshly built (no training needed here)."""
    model = DBN(list(sizes), layer_configs=TINY, seed=0)
    rbms = []
    for n_visible, n_hidden in zip(sizes[:-1], sizes[1:]):
        rbm = RBM(n_hidden, seed=0)
        rbm.build((None, n_visible))
        rbms.append(rbm)
    model.rbms = rbms
    return model


@pytest.mark.parametrize("args, kwargs, match", [
    ((784,), {}, r"layer_sizes=784 must be a list of layer sizes"),
    (("784-500",), {}, r"layer_sizes='784-500' must be a list"),
    (([784, 500.0],), {}, r"layer_sizes\[1\]=500.0 must be an integer"),
    (([784, True],), {}, r"layer_sizes\[1\]=True must be an integer"),
    (([784, 0],), {}, r"layer_sizes\[1\]=0 must be an integer >= 1"),
    (([784],), {}, r"layer_sizes=\[784\] must list the input size and at least one hidden"),
    (([784, 5],), dict(layer_configs=[TINY, TINY]), r"2 layer configs for 1 layers"),
    (([784, 5],), dict(layer_configs="hinton"), r"layer_configs='hinton' must be an RBMTrainingConfig"),
    (([784, 5],), dict(layer_configs=[{"epochs": 1}]), r"layer_configs=.* must be an RBMTrainingConfig"),
    (([784, 5],), dict(sample_hidden="no"), r"sample_hidden='no' must be True or False"),
    (([784, 5],), dict(seed=-1), r"seed=-1 must be"),
    (([784, 5],), dict(seed=2.0), r"seed=2.0 must be"),
])
def test_dbn_constructor(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        DBN(*args, **kwargs)


def test_dbn_constructor_numpy_sizes_ok():
    model = DBN(np.array([20, 6]), layer_configs=TINY, seed=np.int64(3))
    assert model.layer_sizes == (20, 6) and type(model.layer_sizes[0]) is int and model.seed == 3


@pytest.mark.parametrize("x, kwargs, match", [
    (np.zeros((0, 20)), {}, r"x is empty"),
    (np.full((5, 20), np.nan), {}, r"x contains NaN"),
    (np.full((5, 20), 255.0), {}, r"x has values in \[255, 255\]"),
    (np.zeros((5, 19)), {}, r"x has 19 features; this DBN's input size is 20"),
    (np.zeros(20), {}, r"x has shape \(20,\)"),
    (np.zeros((5, 20)), dict(checkpoint_dir=5), r"checkpoint_dir=5 must be a directory"),
    (np.zeros((5, 20)), dict(timings=[]), r"timings=\[\] must be a dict"),
])
def test_pretrain_refuses_before_training(tmp_path, x, kwargs, match):
    model = DBN([20, 6], layer_configs=TINY, seed=0)
    kwargs = {"checkpoint_dir": tmp_path / "cache", **kwargs}
    with pytest.raises(ValueError, match=match):
        model.pretrain(x, verbose=0, **kwargs)
    assert model.rbms == [] and not (tmp_path / "cache").exists()


def test_transform_and_generate_arguments():
    model = stacked()
    with pytest.raises(ValueError, match=r"x has 19 features; this DBN's input size is 20"):
        model.transform(np.zeros((2, 19)))
    with pytest.raises(ValueError, match=r"x has values in \[2, 2\]"):
        model.transform(np.full((2, 20), 2.0))
    for kwargs, match in [(dict(n=2.5), "n=2.5"), (dict(n=0), "n=0"), (dict(n=True), "n=True"),
                          (dict(gibbs_steps=1.0), "gibbs_steps=1.0"), (dict(seed=-2), "seed=-2")]:
        with pytest.raises(ValueError, match=match):
            model.generate(**{"n": 2, "gibbs_steps": 2, **kwargs})
    assert model.generate(np.int64(2), gibbs_steps=np.int64(2), seed=np.int64(1)).shape == (2, 20)


@pytest.mark.parametrize("kwargs, match", [
    (dict(init="xavier"), r"init='xavier' must be one of 'pretrained', 'glorot', 'normal'"),
    (dict(dropout=1.0), r"dropout=1.0 must be a finite number in \[0, 1\)"),
    (dict(dropout=float("nan")), r"dropout=nan"),
    (dict(seed=-1), r"seed=-1"),
])
def test_to_classifier_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        stacked().to_classifier(10, **kwargs)


@pytest.mark.parametrize("args, kwargs, match", [
    (([20, 6], 10.0), {}, r"n_classes=10.0 must be an integer >= 2"),
    (([20, 6], 1), {}, r"n_classes=1 must be an integer >= 2"),  # a constant softmax
    (([20, 6], True), {}, r"n_classes=True"),
    (([20, 6], 10), dict(init="Glorot"), r"init='Glorot'"),
    (([20, 6], 10), dict(dropout=-0.1), r"dropout=-0.1"),
    (([20, 6], 10), dict(dropout="0.5"), r"dropout='0.5'"),
    (([20, 6], 10), dict(dropout=(0.2,)), r"dropout=\(0.2,\): allowed: a rate, or a pair"),
    (([20, 6], 10), dict(dropout=(0.2, 1.0)), r"dropout\[1\]=1.0"),
    (([20, 6], 10), dict(dropout=(True, 0.5)), r"dropout\[0\]=True"),
    (([20, 6], 10), dict(seed=1.5), r"seed=1.5"),
    (([20, 6], 10), dict(rbms="rbms"), r"rbms='rbms' must be a list of built"),
    (([20, 6], 10), dict(rbms=[RBM(6)]), r"rbms=.* must be a list of built"),
    (([20, 6], 10), dict(init="pretrained"), r"init='pretrained' needs one trained RBM per layer"),
])
def test_build_classifier_arguments(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_classifier(*args, **kwargs)


def test_save_and_load_arguments(tmp_path):
    with pytest.raises(ValueError, match="directory=None must be a directory"):
        stacked().save(None)
    with pytest.raises(ValueError, match="directory=3"):
        DBN.load(3)
    with pytest.raises(ValueError, match=r"layer_sizes\[1\]=6.5"):
        DBN.load(tmp_path, expect_layer_sizes=[20, 6.5])
