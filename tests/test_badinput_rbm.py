"""Bad inputs to dbn.models.rbm: constructor arguments, data for fit (arrays and every batch of
a tf.data stream), unbuilt models, save paths, sampling arguments.  Each is a
ValueError naming the argument, before any work (the model stays unbuilt / untouched,
no file is written)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from dbn import data as datasets
from dbn.models.rbm import RBM
from dbn.training.callbacks import MomentumSchedule
from dbn.estimation.exact import exact_log_partition
from dbn.ops import logit_base_rate

NAN, INF = float("nan"), float("inf")


def binary(n=200, d=10, seed=0):
    return (np.random.default_rng(seed).random((n, d)) < 0.5).astype(np.float32)


def compiled(n_hidden=3, **kwargs):
    rbm = RBM(n_hidden, seed=0, **kwargs)
    rbm.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.5))
    return rbm


def built(n_visible=10, **kwargs):
    rbm = compiled(**kwargs)
    rbm.initialize_from_data(binary(100, n_visible))
    return rbm


# --------------------------------------------------------------------------- constructor
@pytest.mark.parametrize("kwargs, name", [
    (dict(weight_decay=NAN), "weight_decay"), (dict(weight_decay=INF), "weight_decay"),
    (dict(weight_decay=-1e-4), "weight_decay"), (dict(weight_decay="0"), "weight_decay"),
    (dict(sparsity_decay=5.0), "sparsity_decay"), (dict(sparsity_decay=1.0), "sparsity_decay"),
    (dict(sparsity_decay=-0.1), "sparsity_decay"), (dict(sparsity_decay=NAN), "sparsity_decay"),
    (dict(sparsity_cost=NAN), "sparsity_cost"), (dict(sparsity_cost=-1.0), "sparsity_cost"),
    (dict(sparsity_cost=0.5), "sparsity_cost"),  # without sparsity_target: no effect, refused
    (dict(sparsity_target=0.0), "sparsity_target"), (dict(sparsity_target=NAN), "sparsity_target"),
    (dict(sparsity_target=True), "sparsity_target"),
    (dict(k=2.5), "k"), (dict(k=True), "k"), (dict(n_chains=1.0), "n_chains"),
    (dict(persistent="yes"), "persistent"), (dict(persistent=1), "persistent"),
    (dict(n_labels=-1), "n_labels"), (dict(n_labels=2.0), "n_labels"),
    (dict(seed=-1), "seed"), (dict(seed=1.5), "seed"), (dict(seed="0"), "seed"),
    (dict(visible_data=None), "visible_data"),
])
def test_constructor_names_the_bad_argument(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}="):
        RBM(5, **kwargs)


def test_constructor_accepts_numpy_scalars_and_stores_python_types():
    rbm = RBM(np.int64(5), k=np.int32(2), n_chains=np.int64(7), weight_decay=np.float32(0.5),
              sparsity_target=np.float64(0.1), seed=np.int64(3), persistent=np.bool_(True))
    config = rbm.get_config()
    for key, value in dict(n_hidden=5, k=2, n_chains=7, seed=3, persistent=True).items():
        assert config[key] == value and type(config[key]) is type(value)
    assert type(config["sparsity_target"]) is float
    assert RBM(5, sparsity_decay=0.0).sparsity_decay == 0.0  # [0, 1): 0 is allowed


def test_n_labels_must_leave_feature_units():
    rbm = compiled(n_labels=10)
    with pytest.raises(ValueError, match="n_labels=10 must be less than the number of visible units"):
        rbm.build((None, 10))


# --------------------------------------------------------------------------- fit data
def test_empty_array_is_a_value_error_not_a_divergence():
    rbm = compiled()
    with pytest.raises(ValueError, match=r"x is empty \(shape \(0, 10\)\)"):
        rbm.fit(np.zeros((0, 10), np.float32), epochs=1, verbose=0)
    assert not rbm.built


def test_empty_dataset_is_named():
    rbm = compiled()
    with pytest.raises(ValueError, match="x is an empty dataset"):
        rbm.fit(tf.data.Dataset.from_tensor_slices(np.zeros((0, 10), np.float32)).batch(5),
                epochs=1, verbose=0)
    assert not rbm.built


@pytest.mark.parametrize("kwargs, name", [
    (dict(epochs=2.5), "epochs"), (dict(epochs=True), "epochs"), (dict(epochs=0), "epochs"),
    (dict(batch_size=0), "batch_size"), (dict(batch_size=10.0), "batch_size"),
    (dict(initial_epoch=-1), "initial_epoch"),
])
def test_fit_keyword_arguments(kwargs, name):
    rbm = compiled()
    with pytest.raises(ValueError, match=f"^{name}="):
        rbm.fit(binary(), verbose=0, **kwargs)
    assert not rbm.built


def test_fit_needs_a_compiled_model():
    with pytest.raises(ValueError, match="compile"):
        RBM(3).fit(binary(), epochs=1, verbose=0)


def _stream(bad_from, make_bad, *, stack=1, visible_data="binary", n=1000):
    x = binary(n)
    if visible_data == "probabilities":
        x = x * 0.8 + 0.1
    x[bad_from:] = make_bad(x[bad_from:])
    ds = tf.data.Dataset.from_tensor_slices(x).batch(100)
    return ds.batch(stack) if stack > 1 else ds


@pytest.mark.parametrize("stack", [1, 5], ids=["batches", "stacked"])
@pytest.mark.parametrize("visible_data, make_bad", [
    ("binary", lambda v: v * 255.0),
    ("binary", lambda v: np.full_like(v, 0.5)),  # grey levels
    ("binary", lambda v: np.where(v > 0, np.nan, v)),
    ("probabilities", lambda v: v * 255.0),
    ("probabilities", lambda v: v - 0.5),
    ("probabilities", lambda v: np.where(v > 0.5, np.nan, v)),
], ids=["binary-0-255", "binary-grey", "binary-nan", "prob-0-255", "prob-negative", "prob-nan"])
def test_every_batch_of_a_stream_is_checked(stack, visible_data, make_bad):
    """Only the first examples are checked before training (a built model needs one
    batch): batches 9 and 10 of 10 are bad and must stop fit with a ValueError."""
    rbm = compiled(visible_data=visible_data)
    rbm.initialize_from_data(binary(100) * (0.8 if visible_data == "probabilities" else 1.0))
    with pytest.raises(ValueError, match=f"x: a batch of the training data is not valid for "
                                         f"visible_data='{visible_data}'"):
        rbm.fit(_stream(800, make_bad, stack=stack, visible_data=visible_data), epochs=1, verbose=0)


def test_the_bad_batch_is_not_trained_on():
    """A stream whose only bad batch is the first one after the checked examples: the
    model is left exactly as the good batches made it."""
    x = binary(300)
    good = tf.data.Dataset.from_tensor_slices(x[:200]).batch(100)
    bad = tf.data.Dataset.from_tensor_slices(np.full((100, 10), 0.5, np.float32)).batch(100)
    reference, rbm = built(), built()
    reference.fit(good, epochs=1, verbose=0, shuffle=False)
    with pytest.raises(ValueError, match="not valid"):
        rbm.fit(good.concatenate(bad), epochs=1, verbose=0, shuffle=False)
    np.testing.assert_array_equal(rbm.W.numpy(), reference.W.numpy())


def test_valid_streams_still_train_identically_to_arrays():
    x = binary(400)
    a, b = built(), built()
    a.fit(x, epochs=2, batch_size=100, shuffle=False, verbose=0)
    b.fit(tf.data.Dataset.from_tensor_slices(x).batch(100), epochs=2, verbose=0, shuffle=False)
    np.testing.assert_array_equal(a.W.numpy(), b.W.numpy())
    stacked = built()
    stacked.fit(datasets.to_dataset(x, shuffle=False, batches_per_element=4), epochs=2, verbose=0)
    np.testing.assert_array_equal(a.W.numpy(), stacked.W.numpy())


def test_other_tensorflow_errors_are_not_swallowed():
    rbm = built()
    wrong_width = tf.data.Dataset.from_tensor_slices(binary(100, 12)).batch(50)
    with pytest.raises(ValueError, match="x has 12 features; the model was built for 10"):
        rbm.fit(wrong_width, epochs=1, verbose=0)


# --------------------------------------------------------------------------- unbuilt models
@pytest.mark.parametrize("call", [
    lambda r: r.sample(5, 3), lambda r: r.transform(binary(2)), lambda r: r.free_energy(binary(2)),
    lambda r: r.reconstruct(binary(2)), lambda r: r.gibbs_step(binary(2)),
    lambda r: r.visible_given_hidden(np.zeros((2, 3))), lambda r: r.log_partition_exact(),
    lambda r: r.log_likelihood_exact(binary(2)),
], ids=["sample", "transform", "free_energy", "reconstruct", "gibbs_step",
        "visible_given_hidden", "log_partition_exact", "log_likelihood_exact"])
def test_unbuilt_model_says_build_or_fit_first(call):
    rbm = RBM(3, seed=0)
    with pytest.raises(ValueError, match="needs a built model: build or fit it first"):
        call(rbm)
    assert not rbm.built  # transform used to build it silently with random weights


# --------------------------------------------------------------------------- saving
@pytest.mark.parametrize("method, path, match", [
    ("save", "model.h5", r"filepath='.*model.h5' must be a path ending in .keras"),
    ("save", "model", r"must be a path ending in .keras"),
    ("save", "model.weights.h5", r"must be a path ending in .keras"),
    ("save_weights", "w.h5", r"filepath='.*w.h5' must be a path ending in .weights.h5"),
    ("save_weights", "w.keras", r"must be a path ending in .weights.h5"),
])
def test_save_suffixes(tmp_path, method, path, match):
    rbm = built()
    with pytest.raises(ValueError, match=match):
        getattr(rbm, method)(tmp_path / path)
    assert list(tmp_path.iterdir()) == []


def test_valid_save_paths_work(tmp_path):
    rbm = built()
    rbm.save(tmp_path / "m.keras")
    rbm.save_weights(str(tmp_path / "w.weights.h5"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras", "w.weights.h5"]


# --------------------------------------------------------------------------- inference arguments
@pytest.mark.parametrize("kwargs, name", [
    (dict(n=2.5), "n"), (dict(n=True), "n"), (dict(n=0), "n"), (dict(steps=1.0), "steps"),
    (dict(seed=-1), "seed"), (dict(seed=0.5), "seed"),
    (dict(init=np.full((2, 10), 2.0)), "init"), (dict(init=np.zeros((2, 9))), "init"),
])
def test_sample_arguments(kwargs, name):
    rbm = built()
    state = rbm.sampler_state.numpy().copy()
    with pytest.raises(ValueError, match=f"^{name}"):
        rbm.sample(**{"n": 2, "steps": 2, **kwargs})
    np.testing.assert_array_equal(rbm.sampler_state.numpy(), state)  # no draw was made


def test_sample_numpy_arguments_ok():
    rbm = built()
    assert rbm.sample(np.int64(3), np.int64(2), seed=np.int64(4)).shape == (3, 10)


@pytest.mark.parametrize("labels, match", [
    (np.array([0, 3]), r"labels has labels in \[0, 3\].*allowed: 0..2"),
    (np.array([-1, 0]), r"labels has labels in \[-1, 0\]"),
    (np.array([0.0, 1.0]), r"labels has dtype float64"),
    (np.array([0, 1, 2]), r"labels has 3 labels but init has 2 rows"),
])
def test_sample_labels(labels, match):
    rbm = compiled(n_labels=3)
    rbm.build((None, 10))
    with pytest.raises(ValueError, match=match):
        rbm.sample(2, 2, init=np.zeros((2, 10)), labels=labels)


def test_label_free_energies_batch_size():
    rbm = compiled(n_labels=3)
    rbm.build((None, 10))
    with pytest.raises(ValueError, match="batch_size=0"):
        rbm.label_free_energies(np.zeros((2, 7)), batch_size=0)


def test_log_likelihood_needs_binary_data_and_a_finite_log_z():
    rbm = built()
    with pytest.raises(ValueError, match="v is not binary"):
        rbm.log_likelihood_exact(binary(5) * 0.5)
    with pytest.raises(ValueError, match="v is empty"):
        rbm.log_likelihood_exact(np.zeros((0, 10)))
    with pytest.raises(ValueError, match="log_z=nan"):
        rbm.log_likelihood_exact(binary(5), NAN)


# --------------------------------------------------------------------------- module functions
@pytest.mark.parametrize("args, kwargs, match", [
    ((np.zeros((3, 2)), np.zeros(4), np.zeros(2)), {}, r"visible_bias has shape \(4,\); allowed: \(3,\)"),
    ((np.zeros((3, 2)), np.zeros(3), np.zeros(5)), {}, r"hidden_bias has shape \(5,\); allowed: \(2,\)"),
    ((np.full((3, 2), np.nan), np.zeros(3), np.zeros(2)), {}, r"W contains NaN or inf"),
    ((np.zeros(3), np.zeros(3), np.zeros(2)), {}, r"W has shape \(3,\)"),
    ((np.zeros((3, 2)), np.zeros(3), np.zeros(2)), dict(n_labels=3), r"n_labels=3 must be an integer in \[0, 2\]"),
    ((np.zeros((3, 2)), np.zeros(3), np.zeros(2)), dict(n_labels=1.0), r"n_labels=1.0"),
])
def test_exact_log_partition_arguments(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        exact_log_partition(*args, **kwargs)


@pytest.mark.parametrize("x, kwargs, match", [
    (np.zeros((0, 3)), {}, "x is empty"), (np.full((2, 3), 2.0), {}, r"x has values in \[2, 2\]"),
    (np.zeros((2, 3)), dict(eps=0.0), "eps=0.0"), (np.zeros((2, 3)), dict(eps=0.5), "eps=0.5"),
])
def test_logit_base_rate_arguments(x, kwargs, match):
    with pytest.raises(ValueError, match=match):
        logit_base_rate(x, **kwargs)


@pytest.mark.parametrize("kwargs, name", [(dict(initial=0.0), "initial"), (dict(initial=NAN), "initial"),
                                          (dict(final=1.5), "final"), (dict(switch_epoch=-1), "switch_epoch"),
                                          (dict(switch_epoch=2.5), "switch_epoch")])
def test_momentum_schedule_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}="):
        MomentumSchedule(**kwargs)
