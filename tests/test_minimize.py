"""dbn.training.minimize: the CG / L-BFGS / Adam fine-tuning driver."""

import keras
import numpy as np
import pytest
import scipy.optimize
import tensorflow as tf

from dbn.models.classifier import build_classifier
from dbn.training.checkpoint import RunDir
from dbn.training.configs import MinimizeConfig
from dbn.training.minimize import FlatVariables, epoch_order, train_epochs


def logistic_problem(n=200, d=5, seed=0, noise=0.5):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x @ rng.normal(size=d) + noise * rng.normal(size=n) > 0).astype(np.float32)
    return x, y


def logistic_model(d=5):
    model = keras.Sequential([keras.Input((d,)), keras.layers.Dense(1, kernel_initializer="zeros")])

    def loss_fn(x, y):
        logits = model(x)[:, 0]
        return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits))
    return model, loss_fn


@pytest.mark.parametrize("method", ["cg", "lbfgs"])
def test_full_batch_reaches_scipys_optimum(method):
    """One batch holding all the data and enough line searches: the driver reaches the
    minimum of the (convex) logistic loss that scipy finds on its own in float64."""
    x, y = logistic_problem(n=1000, noise=2.0)  # overlapping classes: a well-curved minimum
    model, loss_fn = logistic_model()
    config = MinimizeConfig(method=method, epochs=1, batch_size=len(x), line_searches=100)
    train_epochs(model, loss_fn, (x, y), config, progress=False)
    X = np.c_[x.astype(np.float64), np.ones(len(x))]

    def f(w):
        z = X @ w
        return np.mean(np.logaddexp(0, z) - y * z), X.T @ (1 / (1 + np.exp(-z)) - y) / len(x)
    best = scipy.optimize.minimize(f, np.zeros(6), jac=True, method="BFGS", options={"gtol": 1e-10})
    W, b = model.get_weights()
    found = np.r_[W[:, 0], b].astype(np.float64)
    # The driver minimises a float32 loss (a mean of 1,000 terms of size ~0.6): its
    # rounding, ~4 sqrt(n) eps32 * 0.6 = 1e-5, bounds how close to the float64 minimum the
    # line searches can resolve the loss; stopping short (3 line searches) leaves 1e-3.
    assert f(found)[0] - best.fun < 2e-5
    # Weights: a loss gap d gives |dw| <= sqrt(2 d / lambda_min) of the Hessian.
    p = 1 / (1 + np.exp(-X @ best.x))
    lam = np.linalg.eigvalsh(X.T @ (X * (p * (1 - p))[:, None]) / len(x)).min()
    np.testing.assert_allclose(found, best.x, atol=np.sqrt(2 * 2e-5 / lam))


def test_epochs_lower_the_loss_for_every_method():
    x, y = logistic_problem(n=600)
    for method in ("cg", "lbfgs", "adam"):
        model, loss_fn = logistic_model()
        config = MinimizeConfig(method=method, epochs=3, batch_size=100, learning_rate=0.05)
        history = train_epochs(model, loss_fn, (x, y), config, progress=False)
        assert history["loss"][-1] < history["loss"][0] < np.log(2) + 1e-6, method
        assert len(history["seconds"]) == 3


@pytest.mark.parametrize("method", ["cg", "adam"])
def test_resume_is_exact(tmp_path, method):
    """Two epochs in one go, or one epoch, a stop, and a resumed second: same weights to
    the bit (the batch order is a function of seed and epoch; Adam's moments are saved)."""
    x, y = logistic_problem(n=300)
    spec = {"test": method}
    config = MinimizeConfig(method=method, epochs=2, batch_size=50, learning_rate=0.05)
    straight, loss_fn = logistic_model()
    train_epochs(straight, loss_fn, (x, y), config, seed=3, progress=False)
    resumed, loss_fn2 = logistic_model()
    calls = []

    def killed_in_epoch_2():  # evaluate runs before an epoch is saved: epoch 1 is, 2 is not
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return {}
    with RunDir(tmp_path / "run", spec) as run, pytest.raises(KeyboardInterrupt):
        train_epochs(resumed, loss_fn2, (x, y), config, checkpoint=run, seed=3, progress=False,
                     evaluate=killed_in_epoch_2)
    with RunDir(tmp_path / "run", spec) as run:
        assert run.state("minimize")["epoch"] == 1
    fresh, loss_fn3 = logistic_model()  # a new process: weights come from the checkpoint
    with RunDir(tmp_path / "run", spec) as run:
        history = train_epochs(fresh, loss_fn3, (x, y), config, checkpoint=run, seed=3, progress=False)
    assert len(history["loss"]) == 2
    for a, b in zip(straight.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(a, b)
    with RunDir(tmp_path / "run", spec) as run:  # finished: weights only, no Adam moments
        assert not [k for k in np.load(run.file("weights.npz")).files if k.startswith("o")]
        again, loss_fn4 = logistic_model()
        train_epochs(again, loss_fn4, (x, y), config, checkpoint=run, seed=3, progress=False)
    for a, b in zip(straight.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_stop_ends_training_and_a_resumed_run_stops_there(tmp_path):
    """``stop`` is asked after every epoch; a finished-early run reopened trains nothing."""
    x, y = logistic_problem(n=300)
    config = MinimizeConfig(method="adam", epochs=6, batch_size=50, learning_rate=0.05)
    model, loss_fn = logistic_model()
    with RunDir(tmp_path / "run", {"test": "stop"}) as run:
        history = train_epochs(model, loss_fn, (x, y), config, checkpoint=run, progress=False,
                               stop=lambda h: len(h["loss"]) >= 2)
    assert len(history["loss"]) == 2
    again, loss_fn2 = logistic_model()
    with RunDir(tmp_path / "run", {"test": "stop"}) as run:
        resumed = train_epochs(again, loss_fn2, (x, y), config, checkpoint=run, progress=False,
                               stop=lambda h: len(h["loss"]) >= 2)
    assert resumed == history
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_on_epoch_sees_each_saved_epoch_and_the_resumed_history(tmp_path):
    """``on_epoch`` (a long run's partial results) gets the history after every epoch,
    once that epoch is saved, and on resuming the history so far; it changes nothing."""
    x, y = logistic_problem(n=300)
    config = MinimizeConfig(method="adam", epochs=3, batch_size=50, learning_rate=0.05)
    plain, loss_fn = logistic_model()
    reference = train_epochs(plain, loss_fn, (x, y), config, progress=False)
    seen, saved = [], []
    model, loss_fn2 = logistic_model()
    with RunDir(tmp_path / "run", {"test": "on_epoch"}) as run:

        def on_epoch(history):
            seen.append([*history["loss"]])
            saved.append(run.state("minimize")["epoch"])
            if len(seen) == 2:
                raise KeyboardInterrupt  # killed after epoch 2 was saved
        with pytest.raises(KeyboardInterrupt):
            train_epochs(model, loss_fn2, (x, y), config, checkpoint=run, progress=False, on_epoch=on_epoch)
    assert seen == [reference["loss"][:1], reference["loss"][:2]] and saved == [1, 2]
    seen.clear()
    again, loss_fn3 = logistic_model()
    with RunDir(tmp_path / "run", {"test": "on_epoch"}) as run:
        history = train_epochs(again, loss_fn3, (x, y), config, checkpoint=run, progress=False,
                               on_epoch=lambda h: seen.append([*h["loss"]]))
    assert seen == [reference["loss"][:2], reference["loss"]]  # the resumed history, then epoch 3
    assert history["loss"] == reference["loss"]
    for a, b in zip(plain.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("method", ["cg", "adam"])
def test_warmup_trains_the_top_layer_alone(method):
    """backpropclassify.m: the output layer alone for the warm-up epochs, then all (the
    driver reused for a classifier)."""
    rng = np.random.default_rng(1)
    x = rng.random((200, 12)).astype(np.float32)
    y = rng.integers(0, 3, 200)
    model = build_classifier([12, 8], 3, init="glorot", seed=0)
    start = model.get_layer("hidden_0").get_weights()[0].copy()

    def loss_fn(xb, yb):
        return tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(yb, model(xb)))
    history = train_epochs(
        model, loss_fn, (x, y), MinimizeConfig(method=method, epochs=3, batch_size=50, warmup_epochs=2,
                                               learning_rate=0.01),
        warmup_variables=model.get_layer("output").trainable_variables, progress=False,
        evaluate=lambda: {"moved": float(np.abs(model.get_layer("hidden_0").get_weights()[0] - start).max())})
    assert history["moved"][:2] == [0.0, 0.0] and history["moved"][2] > 0


def test_epoch_order_depends_on_seed_and_epoch_only():
    a = epoch_order(100, 0, 3)
    np.testing.assert_array_equal(a, epoch_order(100, 0, 3))
    assert not np.array_equal(a, epoch_order(100, 0, 4))
    assert not np.array_equal(a, epoch_order(100, 1, 3))
    assert sorted(a) == list(range(100))


def test_flat_variables_round_trip():
    v = [tf.Variable(np.arange(6, dtype=np.float32).reshape(2, 3)), tf.Variable(np.ones(4, np.float32))]
    flat = FlatVariables(v)
    theta = flat.get()
    assert theta.dtype == np.float64 and theta.shape == (10,)
    flat.set(theta[::-1].copy())
    np.testing.assert_array_equal(v[1].numpy(), theta[:4][::-1])


@pytest.mark.parametrize("kwargs, match", [
    ({"method": "sgd"}, "method"),
    ({"epochs": True}, "epochs"),
    ({"epochs": 2.5}, "epochs"),
    ({"line_searches": 0}, "line_searches"),
    ({"learning_rate": float("nan")}, "learning_rate"),
    ({"learning_rate": -1.0}, "learning_rate"),
    ({"epochs": 3, "warmup_epochs": 3}, "warmup_epochs"),
    ({"wolfe": (0.1, 0.05)}, r"wolfe=\(0.1, 0.05\) must be a pair \(c1, c2\) with 0 < c1 < c2 < 1"),
    ({"wolfe": (0.0, 0.1)}, r"wolfe\[0\]=0.0"),
    ({"wolfe": (0.05, 1.0)}, r"wolfe\[1\]=1.0"),
    ({"wolfe": (0.05, float("nan"))}, r"wolfe\[1\]=nan"),
    ({"wolfe": (True, 0.5)}, r"wolfe\[0\]=True"),
    ({"wolfe": 0.1}, r"wolfe=0.1 must be a pair"),
    ({"wolfe": "ab"}, r"wolfe='ab' must be a pair"),
    ({"method": "lbfgs", "wolfe": (0.05, 0.1)}, "only CG's line search takes Wolfe constants"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MinimizeConfig(**kwargs)


def test_bad_calls_and_divergence(tmp_path):
    x, y = logistic_problem()
    model, loss_fn = logistic_model()
    with pytest.raises(ValueError, match="MinimizeConfig"):
        train_epochs(model, loss_fn, (x, y), {"method": "cg"})
    with pytest.raises(ValueError, match="lengths"):
        train_epochs(model, loss_fn, (x, y[:5]), MinimizeConfig(epochs=1))
    with pytest.raises(ValueError, match="warmup_variables"):
        train_epochs(model, loss_fn, (x, y), MinimizeConfig(epochs=2, warmup_epochs=1))
    with pytest.raises(FloatingPointError, match="diverged"):
        with RunDir(tmp_path / "nan", {"t": 1}) as run:
            train_epochs(model, lambda a, b: loss_fn(a, b) * np.nan, (x, y),
                         MinimizeConfig(method="adam", epochs=1), checkpoint=run, progress=False)
    with RunDir(tmp_path / "nan", {"t": 1}) as run:
        assert run.state("minimize") is None  # nothing saved for the diverged epoch


def test_wolfe_constants_reach_scipys_cg_and_stay_out_of_default_keys(monkeypatch):
    """CG runs with the config's Wolfe constants (minimize.m's 0.05 / 0.1 here), scipy's
    defaults otherwise; the default is left out of ``to_dict`` (the cache key of runs made
    before the option existed), a non-default one is in it.  With the stricter curvature
    condition the line searches go nearer each direction's minimum: on a 2-batch epoch
    the loss ends lower than with scipy's defaults, at the cost of more evaluations."""
    from dbn.training.configs import MINIMIZE_M_WOLFE

    seen = []
    minimize = scipy.optimize.minimize

    def spy(*args, **kwargs):
        seen.append(kwargs["options"])
        return minimize(*args, **kwargs)

    monkeypatch.setattr(scipy.optimize, "minimize", spy)
    x, y = logistic_problem(n=400, noise=2.0)
    results = {}
    for wolfe in (MinimizeConfig().wolfe, MINIMIZE_M_WOLFE):
        model, loss_fn = logistic_model()
        config = MinimizeConfig(epochs=1, batch_size=200, line_searches=2, wolfe=wolfe)
        history = train_epochs(model, loss_fn, (x, y), config, progress=False)
        results[wolfe] = (float(loss_fn(x, y)), history["evaluations"][0])
    assert [(o["c1"], o["c2"]) for o in seen] == [(1e-4, 0.4)] * 2 + [(0.05, 0.1)] * 2
    assert "wolfe" not in MinimizeConfig().to_dict()
    assert MinimizeConfig(wolfe=[0.05, 0.1]).to_dict()["wolfe"] == [0.05, 0.1]
    assert MinimizeConfig(wolfe=[0.05, 0.1]).wolfe == (0.05, 0.1)
    (loose, loose_evals), (strict, strict_evals) = results.values()
    assert strict < loose and strict_evals > loose_evals, results
