"""Bad inputs to dbn.training (build_rbm, compile_rbm, train_rbm): ValueErrors naming
the argument before any epoch is trained or any backup written."""

import numpy as np
import pytest

from dbn.models.rbm import RBM
from dbn.training.configs import RBMTrainingConfig
from dbn.training.pretrain import build_rbm, compile_rbm, train_rbm

CONFIG = RBMTrainingConfig(n_hidden=3, epochs=1, batch_size=10)


def binary(n=40, d=8):
    return (np.random.default_rng(0).random((n, d)) < 0.5).astype(np.float32)


@pytest.mark.parametrize("kwargs, match", [
    (dict(rbm="rbm"), r"rbm='rbm' must be a dbn.models.rbm.RBM"),
    (dict(config={"epochs": 1}), r"config=.* must be an RBMTrainingConfig"),
    (dict(steps_per_epoch=2.5), r"steps_per_epoch=2.5 must be an integer >= 1"),
    (dict(steps_per_epoch=0), r"steps_per_epoch=0"),
    (dict(train_data=None), r"train_data=None must be a callable"),
    (dict(train_data=binary()[:0]), r"train_data is empty"),
    (dict(train_data=binary() * 0.5), r"train_data is not binary"),
    (dict(train_data=binary() * 255), r"train_data has values in \[0, 255\]"),
    (dict(init_data=np.full((5, 8), np.nan)), r"init_data contains NaN"),
    (dict(init_data=binary()[:0]), r"init_data is empty"),
], ids=["rbm", "config", "steps-float", "steps-0", "data-none", "data-empty", "grey", "0-255",
        "init-nan", "init-empty"])
def test_train_rbm_refuses_before_training(tmp_path, kwargs, match):
    kwargs = {"rbm": RBM(3, seed=0), "train_data": binary(), "config": CONFIG, "steps_per_epoch": 4,
              "backup_dir": tmp_path / "backup", **kwargs}
    with pytest.raises(ValueError, match=match):
        train_rbm(verbose=0, **kwargs)
    if isinstance(kwargs["rbm"], RBM):
        assert not kwargs["rbm"].built
    assert not (tmp_path / "backup").exists()


def test_build_and_compile_need_a_config():
    with pytest.raises(ValueError, match="config=.* must be an RBMTrainingConfig"):
        build_rbm({"n_hidden": 3})
    with pytest.raises(ValueError, match="steps_per_epoch=1.0"):
        compile_rbm(RBM(3), CONFIG, steps_per_epoch=1.0)


def test_numpy_steps_per_epoch_is_valid():
    history = train_rbm(RBM(3, seed=0), binary(), CONFIG, steps_per_epoch=np.int64(4), verbose=0)
    assert len(history["reconstruction_error"]) == 1
