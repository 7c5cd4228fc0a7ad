"""Checks of tf.distribute training, run in their own processes by tests/test_distribute.py
(logical CPU devices and a multi-worker cluster must be set up before TensorFlow starts).

    python tests/distributed_checks.py mirrored OUT.json     # 1 device vs 2 logical CPUs
    python tests/distributed_checks.py worker OUT.json       # one worker (TF_CONFIG set)

Writes a JSON of measured quantities; the test module asserts on them.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from dbn import distribute  # noqa: E402

MODE, OUT = sys.argv[1], sys.argv[2]
if MODE == "mirrored":
    distribute.split_cpu(2)

import hashlib  # noqa: E402
from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from dbn import RBM, FineTuneConfig, build_classifier, fine_tune  # noqa: E402
from dbn.models.generative import _up_down_statistics  # noqa: E402

D, H = 12, 5
RNG = np.random.default_rng(0)
X = (RNG.random((48, D)) < 0.4).astype("float32")  # three global batches of 16
SATURATED = np.where(RNG.random(D) < 0.5, -40.0, 40.0).astype("float32")
W0 = RNG.normal(0, 0.1, (D, H)).astype("float32")


def batches(x, size):
    return tf.data.Dataset.from_tensor_slices(x).batch(size)  # fixed order


def saturated_rbm(strategy, **kw):
    """An RBM whose p(v | h) is exactly 0 or 1 (visible biases +-40, |W h| < 2): its
    negative phase is deterministic, so the update of a batch is exact, whatever the
    random streams."""
    with strategy.scope():
        rbm = RBM(H, seed=3, **kw)
        rbm.initialize_from_data(X)
        rbm.W.assign(W0)
        rbm.visible_bias.assign(SATURATED)
        if rbm.persistent:
            rbm.persistent_chains.assign(X[: rbm.n_chains])
        rbm.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.5))
    return rbm


def weights_of(rbm):
    return {w.name: w.numpy().astype("float64") for w in rbm.weights if w.name != "sampler_state"}


def max_diff(a, b):
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


def tuned_weights(strategy):
    """The weights of a small classifier made under ``strategy`` and fine-tuned by SGD
    (no sampling: one device's weights are the reference to float32 rounding)."""
    y = (X[:, :4].sum(1) > 1).astype("int64")
    with strategy.scope():
        model = build_classifier([D, 8], 2, init="glorot", seed=0)
    fine_tune(model, X[:32], y[:32], X[32:], y[32:],
              FineTuneConfig(optimizer="sgd", learning_rate=0.5, max_epochs=2, patience=2, batch_size=8),
              seed=0, verbose=0)
    return {f"w{i}": w.numpy().astype("float64") for i, w in enumerate(model.weights)}


def expected_gradient(strategy, rbm, x, draws):
    """Mean and standard error over ``draws`` CD-1 updates of batch ``x`` of the global
    gradient (W, visible_bias, hidden_bias) flattened, computed as the optimizer gets it
    (the sum of the replicas' shares)."""
    data = strategy.experimental_distribute_dataset(batches(x, len(x)))
    batch = next(iter(data))

    @tf.function
    def one():
        per = strategy.run(lambda v: rbm.contrastive_divergence(v)[0], args=(batch,))
        grads = [strategy.reduce(tf.distribute.ReduceOp.SUM, g, axis=None) for g in per]
        return tf.concat([tf.reshape(g, [-1]) for g in grads], 0)

    samples = np.stack([one().numpy() for _ in range(draws)]).astype("float64")
    return samples.mean(0), samples.std(0, ddof=1) / np.sqrt(draws)


def recorded_keys(strategy, fn, module, x):
    """The stateless keys every replica's ``fn`` (one update of batch ``x``) draws with,
    caught at the module's uniform-drawing call: (number of draws, number distinct)."""
    import importlib
    import threading

    mod = importlib.import_module(module)
    original = mod.tf.random.stateless_uniform
    local = threading.local()

    def spy(shape, seed, **kwargs):
        local.keys.append(seed)
        return original(shape, seed=seed, **kwargs)

    def per_replica(v):
        local.keys = []
        fn(v)
        return tf.stack(local.keys)

    data = strategy.experimental_distribute_dataset(batches(x, len(x)))
    mod.tf.random.stateless_uniform = spy
    try:
        keys = tf.function(lambda b: strategy.experimental_local_results(strategy.run(per_replica, args=(b,))))(
            next(iter(data)))
    finally:
        mod.tf.random.stateless_uniform = original
    drawn = [tuple(k) for replica in keys for k in replica.numpy()]
    return [len(drawn), len(set(drawn))]


def mirrored_checks():
    one = tf.distribute.get_strategy()
    two = distribute.make_strategy("mirrored")
    out = {"replicas": two.num_replicas_in_sync}

    # 1. Exact: the same updates on 1 device and 2 replicas (deterministic negative phase).
    for name, kw in {"cd1_decay_sparsity": dict(weight_decay=0.01, sparsity_target=0.2, sparsity_cost=0.5),
                     "cd3": dict(k=3),
                     "pcd": dict(persistent=True, n_chains=8),
                     "pcd_fast": dict(persistent=True, n_chains=8, fast_learning_rate=0.05)}.items():
        results = []
        for strategy in (one, two):
            rbm = saturated_rbm(strategy, **kw)
            rbm.fit(batches(X, 16), epochs=2, verbose=0)
            results.append(weights_of(rbm))
        out[f"exact_{name}"] = max_diff(*results)
    # A last batch of one row: one replica's share is empty (weighed by rows, no NaN).
    results = []
    for strategy in (one, two):
        rbm = saturated_rbm(strategy, weight_decay=0.01)
        history = rbm.fit(batches(X[:33], 16), epochs=2, verbose=0).history
        results.append(weights_of(rbm))
    out["exact_empty_share"] = max_diff(*results)
    out["empty_share_error_finite"] = bool(np.all(np.isfinite(history["reconstruction_error"])))

    # Keys: every (draw, replica) of the RBM sampler and of the up-down has its own.
    sampler = saturated_rbm(two)  # three CD-1 updates (two draws each) per replica
    out["rbm_keys"] = recorded_keys(two, lambda v: [sampler.contrastive_divergence(v) for _ in range(3)],
                                    "dbn.models.rbm", X[:16])
    updown_variables = [tf.Variable(np.zeros(shape, "float32")) for shape in
                        [(D, D), (D,), (D, D), (D,), (D + 3, D), (D + 3,), (D,)]]  # equal widths
    out["up_down_keys"] = recorded_keys(
        two, lambda v: _up_down_statistics(v, tf.zeros(tf.shape(v)[:1], tf.int32), updown_variables, 3, 3,
                                           tf.constant([11, 5000], tf.int64)),
        "dbn.models.generative", X[:16])

    # Sampling after training draws the same inside the strategy's scope as outside it.
    rbm = saturated_rbm(two)
    rbm.visible_bias.assign(np.zeros(D, "float32"))
    with two.scope():
        inside = rbm.sample(4, 20, seed=1)
    out["sample_scope_diff"] = float(np.max(np.abs(inside - rbm.sample(4, 20, seed=1))))

    # 2. Independent streams: identical chains on both replicas must move apart.
    with two.scope():
        rbm = RBM(H, seed=5, persistent=True, n_chains=8)
        rbm.initialize_from_data(X)
        rbm.W.assign(RNG.normal(0, 1.0, (D, H)).astype("float32"))
        rbm.persistent_chains.assign(np.zeros((8, D), "float32"))
        rbm.compile(optimizer=keras.optimizers.SGD(0.01))
    rbm.fit(batches(X[:16], 16), epochs=1, verbose=0)
    chains = rbm.persistent_chains.numpy()
    out["replica_chains_identical"] = bool(np.array_equal(chains[:4], chains[4:]))
    out["chains_moved"] = bool(np.any(chains != 0))

    # 3. Statistical: the expected CD-1 gradient of a batch on 1 device and on 2 replicas.
    stats = []
    for strategy in (one, two):
        with strategy.scope():
            rbm = RBM(H, seed=7, weight_decay=0.01)
            rbm.initialize_from_data(X)
            rbm.W.assign(W0 * 5)
        stats.append(expected_gradient(strategy, rbm, X[:16], draws=400))
    (m1, s1), (m2, s2) = stats
    out["cd_gradient_z"] = float(np.max(np.abs(m1 - m2) / np.sqrt(s1 ** 2 + s2 ** 2 + 1e-30)))
    out["cd_gradient_scale"] = float(np.max(np.abs(m1)))

    # 4. The up-down statistics: expected values agree too.
    variables = [tf.Variable(RNG.normal(0, 0.3, shape).astype("float32")) for shape in
                 [(D, 6), (6,), (D, 6), (D,), (6 + 3, 4), (6 + 3,), (4,)]]
    labels = RNG.integers(0, 3, 16)
    deltas = []
    for strategy in (one, two):
        data = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices((X[:16], labels)).batch(16))
        xb, yb = next(iter(data))

        @tf.function
        def step(seed):
            per = strategy.run(lambda a, b: _up_down_statistics(
                a, b, variables, 3, 2, seed), args=(xb, yb))
            total = [strategy.reduce(tf.distribute.ReduceOp.SUM, t, axis=None) for t in per]
            return tf.concat([tf.reshape(t, [-1]) for t in total], 0)

        draws = np.stack([step(tf.constant([11, i * 1000], tf.int64)).numpy() for i in range(400)])
        deltas.append((draws.mean(0), draws.std(0, ddof=1) / np.sqrt(len(draws))))
    (m1, s1), (m2, s2) = deltas
    out["up_down_z"] = float(np.max(np.abs(m1 - m2) / np.sqrt(s1 ** 2 + s2 ** 2 + 1e-30)))

    # 5. Fine-tuning: exactly the same weights (no sampling in backprop).
    out["exact_finetune"] = max_diff(*(tuned_weights(strategy) for strategy in (one, two)))

    # 6. Save on 2 replicas, load on 1: the global chains and stream come back.
    rbm = saturated_rbm(two, persistent=True, n_chains=8)
    rbm.fit(batches(X, 16), epochs=1, verbose=0)
    path = os.path.join(os.path.dirname(OUT), "mirrored.weights.h5")
    rbm.save_weights(path)
    copy = RBM(H, seed=3, persistent=True, n_chains=8)
    copy.build((None, D))
    copy.load_weights(path)
    out["restored_diff"] = max_diff(weights_of(rbm), weights_of(copy))
    out["restored_sampler"] = [int(v) for v in copy.sampler_state.numpy()]
    out["saved_sampler"] = [int(v) for v in rbm.sampler_state.numpy()]

    # 7. A run under the strategy is other work: its checkpoint is not one device's.
    from dbn import DBN, RBMTrainingConfig

    root = Path(os.path.dirname(OUT)) / "cache"
    for strategy in (one, two, two):  # the second mirrored run reuses the first's layer
        with strategy.scope():
            stack = DBN([D, 6], seed=0, layer_configs=RBMTrainingConfig(n_hidden=6, epochs=1, batch_size=16))
        stack.pretrain(X, checkpoint_dir=root, verbose=0)
    manifests = sorted(root.glob("*/manifest.json"))
    out["layer_dirs"] = len(manifests)
    out["layer_specs"] = sorted(json.dumps(json.loads(m.read_text())["spec"].get("distribute"))
                                for m in manifests)
    # A DBN saved under the strategy loads without one (a saved format is not a run).
    saved = Path(os.path.dirname(OUT)) / "saved_dbn"
    with two.scope():
        stack.save(saved)
    loaded = DBN.load(saved)
    out["saved_dbn_diff"] = max_diff(weights_of(stack.rbms[0]), weights_of(loaded.rbms[0]))
    # A DBN made outside the strategy, pretrained inside its scope: named, before any work.
    outside = DBN([D, 6], seed=0, layer_configs=RBMTrainingConfig(n_hidden=6, epochs=1, batch_size=16))
    try:
        with two.scope():
            outside.pretrain(X, verbose=0)
        out["nested_error"] = None
    except ValueError as err:
        out["nested_error"] = str(err)

    # 8. What cannot be split is refused before any work.
    errors = {}
    for name, make, data in (
            ("odd_chains", lambda: RBM(H, seed=0, persistent=True, n_chains=7), batches(X, 16)),
            ("stacked", lambda: RBM(H, seed=0), batches(X, 8).batch(2))):
        with two.scope():
            bad = make()
            bad.compile(optimizer=keras.optimizers.SGD(0.1))
        try:
            bad.fit(data, epochs=1, verbose=0)
            errors[name] = None
        except ValueError as err:
            errors[name] = str(err)
        errors[name + "_built"] = bool(bad.built)
    out["errors"] = errors
    return out


def worker_checks():
    """One worker of a two-worker cluster (one replica each): RBM pretraining, the
    up-down and fine-tuning; every worker must end with the same weights, and the RBM's
    and the classifier's must be one device's (the RBM's negative phase deterministic)."""
    from dbn import GenerativeDBN, RBMTrainingConfig, UpDownConfig

    strategy = distribute.make_strategy("multiworker")  # before any TensorFlow op
    single = saturated_rbm(tf.distribute.get_strategy(), persistent=True, n_chains=8)
    single.fit(batches(X, 16), epochs=2, verbose=0)
    rbm = saturated_rbm(strategy, persistent=True, n_chains=8)
    rbm.fit(batches(X, 16), epochs=2, verbose=0)
    labels = RNG.integers(0, 3, len(X))
    with strategy.scope():
        generative = GenerativeDBN([D, 6, 4], n_classes=3, seed=0,
                                   layer_configs=RBMTrainingConfig(n_hidden=1, epochs=1, batch_size=16))
        generative.pretrain(X, labels, verbose=0)
        generative.up_down(X, labels, UpDownConfig(epochs=1, batch_size=16), verbose=0)

    def digest(arrays):
        return hashlib.sha256(b"".join(np.asarray(a).tobytes() for a in arrays)).hexdigest()

    tuned = [tuned_weights(scope) for scope in (tf.distribute.get_strategy(), strategy)]
    return {"index": json.loads(os.environ["TF_CONFIG"])["task"]["index"],
            "exact_finetune": max_diff(*tuned),
            "finetune_digest": digest(tuned[1].values()),
            "replicas": strategy.num_replicas_in_sync,
            "exact_rbm": max_diff(weights_of(single), weights_of(rbm)),
            "rbm_digest": digest(w.numpy() for w in rbm.weights),
            "up_down_digest": digest(v.numpy() for v in generative._variables())}


if __name__ == "__main__":
    result = mirrored_checks() if MODE == "mirrored" else worker_checks()
    with open(OUT, "w") as f:
        json.dump(result, f)
