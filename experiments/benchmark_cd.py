"""Throughput of one CD-1 epoch: dbn (TensorFlow) vs scikit-learn's BernoulliRBM.

784 x 500 RBM, batch 100, one pass over the 60,000 binarized (threshold) MNIST training
images. Each measurement runs in its own subprocess (TensorFlow's and numpy's thread pools
disturb each other in one process), the sides are interleaved, and medians over
--repeats are reported together with the practical peak: a 2048^3 float32 matmul timed
by TensorFlow in the same interleaved run.

Also timed (--sides): the bfloat16 training matmuls (dbn_bf16), the same step compiled
by XLA (dbn_xla, ``jit_compile``: measured to answer "does XLA help?", not offered: its
CPU matmuls are not oneDNN's and it drops the in-graph data check), the README's recipe
``RBM.fit(array, batch_size=100)`` (dbn_array), and the CD step's own product shape
100 x 784 @ 784 x 500 alone in float32 and bfloat16 (matmul_cd, matmul_cd_bf16): the
honest peak, and the share of the epoch its 5 products account for; and where the epoch's
time goes (breakdown: the step's maths built up in compiled loops, products, sigmoids,
sampling, update, each increment as a share of the dbn epoch, the rest Keras' step).

FLOPs per CD-1 batch (both implementations do the same dense work): three
(B x D) @ (D x H)-sized products for p(h|v0), p(v|h0), p(h|v1) and the two outer-product
statistics, 5 * 2*B*D*H in total; elementwise work is not counted.

  python experiments/benchmark_cd.py            # full benchmark, writes results/benchmark_cd.json
  python experiments/benchmark_cd.py --quick    # 6,000 images, 1 repeat (CI)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

D, H = 784, 500


def _images(n):
    from dbn import data as datasets

    data = datasets.load(validation_size=0, binarization="threshold")
    return data.x_train[:n]


def time_dbn(n, batch, precision="float32", jit_compile=False):
    """The stacked ``tf.data`` path train_rbm takes (second epoch timed); with
    ``jit_compile`` the train function compiled by XLA (dbn_xla: measured, not offered)."""
    import keras

    from dbn import data as datasets
    from dbn.training.pretrain import BATCHES_PER_ELEMENT, build_rbm, compile_rbm
    from dbn.training.configs import RBMTrainingConfig

    x = _images(n)
    keras.utils.set_random_seed(0)
    ds = datasets.to_dataset(x, batch_size=batch, shuffle=True, seed=0,
                             batches_per_element=BATCHES_PER_ELEMENT).cache()
    config = RBMTrainingConfig(n_hidden=H, epochs=1, batch_size=batch, learning_rate=0.05,
                               precision=precision)
    rbm = build_rbm(config, seed=0)
    rbm.initialize_from_data(x)
    compile_rbm(rbm, config, steps_per_epoch=-(-n // batch))
    # RBM.fit refuses XLA (it would skip the batch check); dbn_xla calls Keras' own fit.
    rbm.jit_compile = jit_compile
    fit = (lambda: keras.Model.fit(rbm, ds, epochs=1, verbose=0)) if jit_compile else (
        lambda: rbm.fit(ds, epochs=1, verbose=0, shuffle=False))
    t0 = time.perf_counter()
    fit()  # traces, warms the cache
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    fit()
    return {"seconds": time.perf_counter() - t0, "first_epoch_seconds": first}


def time_dbn_array(n, batch):
    """The README's own recipe: ``RBM.fit`` on a plain array with ``batch_size`` (Keras
    batches it), second epoch timed."""
    import keras

    from dbn.models.rbm import RBM
    from dbn.training.callbacks import MomentumSchedule

    x = _images(n)
    keras.utils.set_random_seed(0)
    rbm = RBM(H, k=1, seed=0)
    rbm.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.5))
    t0 = time.perf_counter()
    rbm.fit(x, epochs=1, batch_size=batch, verbose=0, callbacks=[MomentumSchedule()])
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    rbm.fit(x, initial_epoch=1, epochs=2, batch_size=batch, verbose=0, callbacks=[MomentumSchedule()])
    return {"seconds": time.perf_counter() - t0, "first_epoch_seconds": first}


def time_sklearn(n, batch):
    from sklearn.neural_network import BernoulliRBM

    x = _images(n)
    rbm = BernoulliRBM(n_components=H, batch_size=batch, n_iter=1, learning_rate=0.05, random_state=0)
    t0 = time.perf_counter()
    rbm.fit(x)
    return {"seconds": time.perf_counter() - t0, "dtype": str(rbm.components_.dtype)}


def time_matmul(n=2048, repeats=10):
    import tensorflow as tf

    a = tf.random.normal((n, n))
    f = tf.function(lambda a: tf.matmul(a, a))
    f(a).numpy()
    t0 = time.perf_counter()
    for _ in range(repeats):
        r = f(a)
    r.numpy()
    seconds = (time.perf_counter() - t0) / repeats
    return {"seconds": seconds, "gflops": 2 * n**3 / seconds / 1e9}


def time_matmul_cd(precision="float32", steps=2000):
    """GFLOP/s of the CD step's own product shape, (B x D) @ (D x H) = 100 x 784 @ 784 x 500,
    ``steps`` times in one graph loop (each input scaled by the step so no product can be
    hoisted out of the loop), in ``precision``."""
    import tensorflow as tf

    from dbn.ops import matmul

    a = tf.random.uniform((100, D))
    b = tf.random.normal((D, H)) * 0.01

    @tf.function
    def run(a, b):
        def body(i, acc):
            scale = 1.0 + tf.cast(i, tf.float32) * 1e-7
            return i + 1, acc + tf.reduce_sum(matmul(a * scale, b, precision=precision))
        return tf.while_loop(lambda i, acc: i < steps, body, (0, 0.0))[1]

    run(a, b).numpy()
    t0 = time.perf_counter()
    run(a, b).numpy()
    seconds = (time.perf_counter() - t0) / steps
    return {"seconds": seconds, "gflops": 2 * 100 * D * H / seconds / 1e9}


BREAKDOWN_STAGES = ("products", "products_sigmoid", "products_sigmoid_sampling",
                    "products_sigmoid_sampling_update")


def time_breakdown(n, batch, repeats=3):
    """Where a CD-1 epoch's time goes: median seconds per epoch of ``BREAKDOWN_STAGES``,
    each a compiled in-graph loop over the epoch's batches doing more of the step: the five
    products alone (the stacked statistics product counting as two, as in the RBM; a
    1e-9-scaled step on W keeps each product in the loop), then with the sigmoids, then
    with the Bernoulli sampling (stateless Philox uniforms, a key per draw, as the RBM),
    then with the update (the bias statistics, weight cost on W, SGD with momentum on all
    three parameters).  ``seconds`` is the last stage; what the ``dbn`` side adds to it
    is Keras' step machinery (the batch check, the tracker, the optimizer's bookkeeping)."""
    import numpy as np
    import tensorflow as tf

    from dbn.ops import bernoulli

    x = _images(n)
    steps = len(x) // batch
    xs = tf.constant(x[: steps * batch].reshape(steps, batch, D))
    rng = np.random.default_rng(0)
    W = tf.Variable(rng.normal(0, 0.01, (D, H)).astype(np.float32))
    b, c = tf.Variable(tf.zeros(D)), tf.Variable(tf.zeros(H))
    velocities = [tf.Variable(tf.zeros_like(v)) for v in (W, b, c)]
    key = tf.Variable([0, 0], dtype=tf.int64)

    def loop(stage):
        squash = tf.sigmoid if "sigmoid" in stage else tf.identity

        def sample(p):
            if "sampling" not in stage:
                return p
            return bernoulli(p, tf.random.stateless_uniform(tf.shape(p), seed=key.assign_add([0, 1])))

        @tf.function
        def run():
            def body(i):
                v0 = xs[i]
                ph0 = squash(tf.matmul(v0, W) + c)
                v1 = sample(squash(tf.matmul(sample(ph0), W, transpose_b=True) + b))
                ph1 = squash(tf.matmul(v1, W) + c)
                grad_W = tf.matmul(tf.concat([v1 / batch, -v0 / batch], 0), tf.concat([ph1, ph0], 0),
                                   transpose_a=True)
                if "update" not in stage:
                    W.assign_add(-1e-9 * grad_W)
                    return i + 1
                grads = (grad_W + 2e-4 * W, tf.reduce_mean(v1, 0) - tf.reduce_mean(v0, 0),
                         tf.reduce_mean(ph1, 0) - tf.reduce_mean(ph0, 0))
                for variable, velocity, grad in zip((W, b, c), velocities, grads):
                    velocity.assign(0.5 * velocity - 0.05 * grad)
                    variable.assign_add(velocity)
                return i + 1
            tf.while_loop(lambda i: i < steps, body, [tf.constant(0)])
            return tf.reduce_sum(W)
        return run

    stages = time_stages({stage: loop(stage) for stage in BREAKDOWN_STAGES}, repeats)
    return {"seconds": stages[BREAKDOWN_STAGES[-1]], "stages": stages}


def time_stages(runs, repeats):
    """Median seconds of each compiled loop of ``runs`` ({stage: function returning a
    tensor}), after one untimed call each (tracing), the stages interleaved ``repeats``
    times in alternating order."""
    stages = tuple(runs)
    for run in runs.values():
        float(run())
    seconds = {stage: [] for stage in stages}
    for r in range(repeats):
        for stage in (stages if r % 2 == 0 else tuple(reversed(stages))):
            t0 = time.perf_counter()
            float(runs[stage]())
            seconds[stage].append(time.perf_counter() - t0)
    return {stage: statistics.median(v) for stage, v in seconds.items()}


SIDES = {"dbn": time_dbn, "dbn_bf16": lambda n, b: time_dbn(n, b, "bfloat16"),
         "dbn_xla": lambda n, b: time_dbn(n, b, jit_compile=True),
         "dbn_array": time_dbn_array, "breakdown": time_breakdown, "sklearn": time_sklearn,
         "matmul": time_matmul,
         "matmul_cd": time_matmul_cd, "matmul_cd_bf16": lambda: time_matmul_cd("bfloat16")}
NO_ARGS = ("matmul", "matmul_cd", "matmul_cd_bf16")


def in_subprocess(module, function, *args):
    """``module.function(*args)`` (``module`` a script of experiments/) in a fresh Python
    process; its JSON-ready result."""
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r});"
            f"import {module} as b; print(json.dumps(b.{function}(*{args!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def interleaved(sides, repeats, measure_one, *, concurrent=False):
    """``{side: [result, ...]}``: every side measured ``repeats`` times, the order of the
    sides reversed on every other repeat (so drift in the machine's speed hits all).
    ``concurrent=True`` (``--quick`` only: the times then mean nothing) runs two
    measurements at a time, to check the plumbing in half the time."""
    if concurrent:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:
            futures = {side: [pool.submit(measure_one, side) for _ in range(repeats)] for side in sides}
        return {side: [f.result() for f in fs] for side, fs in futures.items()}
    runs = {side: [] for side in sides}
    for r in range(repeats):
        for side in (sides if r % 2 == 0 else list(reversed(sides))):
            runs[side].append(measure_one(side))
            print(side, runs[side][-1], flush=True)
    return runs


def run_side(side, *args):
    return SIDES[side](*args)


def measure(side, n, batch):
    """Run one side in a fresh subprocess and return its JSON result."""
    return in_subprocess("benchmark_cd", "run_side", side, *(() if side in NO_ARGS else (n, batch)))


def main(argv=None):
    from dbn import options

    p = argparse.ArgumentParser(description=__doc__, formatter_class=options.HelpFormatter)
    p.add_argument("--n", type=int, default=60_000, help="training images per epoch")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default="results/benchmark_cd.json")
    p.add_argument("--sides", nargs="+", choices=list(SIDES), default=list(SIDES))
    p.add_argument("--quick", action="store_true", help="6,000 images, 1 repeat")
    args = options.parse_args(p, argv, {}, n=6000, repeats=1)
    check_counts(args)
    for needed in ("dbn", "sklearn", "matmul"):
        if needed not in args.sides:
            p.error(f"--sides must include {needed} (the headline ratios)")
    from dbn import provenance

    started, commit = time.time(), provenance.git_commit()
    runs = interleaved(args.sides, args.repeats, lambda side: measure(side, args.n, args.batch_size),
                       concurrent=args.quick)
    med = {side: statistics.median(x["seconds"] for x in runs[side]) for side in args.sides}
    flops = 5 * 2 * args.n * D * H
    peak = statistics.median(x["gflops"] for x in runs["matmul"])
    summary = {
        "dbn_samples_per_second": args.n / med["dbn"],
        "sklearn_samples_per_second": args.n / med["sklearn"],
        "speedup_vs_sklearn": med["sklearn"] / med["dbn"],
        "dbn_gflops": flops / med["dbn"] / 1e9,
        "sklearn_gflops": flops / med["sklearn"] / 1e9,
        "matmul_peak_gflops": peak,
        "dbn_fraction_of_peak": flops / med["dbn"] / 1e9 / peak,
        "median_seconds": med,
    }
    for side in ("dbn_bf16", "dbn_xla", "dbn_array"):
        if side in med:
            summary[f"{side}_speedup_vs_sklearn"] = med["sklearn"] / med[side]
    for side in ("matmul_cd", "matmul_cd_bf16"):
        if side in med:
            summary[f"{side}_gflops"] = statistics.median(x["gflops"] for x in runs[side])
    if "matmul_cd" in med:
        # The epoch's 5 products per batch at the rate of the same-shaped product alone:
        # the share of the epoch they account for; the rest is sampling, sigmoids, the
        # optimizer and the loop (a timed breakdown, not a profile).
        matmul_seconds = 5 * (args.n / args.batch_size) * med["matmul_cd"]
        # (the same number as the epoch's GFLOP/s over the same-shaped product's).
        summary["share_of_epoch_in_matmuls"] = matmul_seconds / med["dbn"]
    if "breakdown" in med:
        # Each increment of the breakdown as a share of the real epoch (dbn), and the rest:
        # Keras' step machinery around the same maths.
        stages = {s: statistics.median(x["stages"][s] for x in runs["breakdown"])
                  for s in BREAKDOWN_STAGES}
        summary["breakdown_epoch_seconds"] = stages
        previous, shares = 0.0, {}
        for stage, name in zip(BREAKDOWN_STAGES, ("products", "sigmoid", "sampling", "update")):
            shares[name] = (stages[stage] - previous) / med["dbn"]
            previous = stages[stage]
        shares["keras_step"] = (med["dbn"] - previous) / med["dbn"]
        summary["breakdown_share_of_epoch"] = shares
    if "dbn_bf16" in med and "matmul_cd_bf16" in med:
        matmul_seconds = 5 * (args.n / args.batch_size) * med["matmul_cd_bf16"]
        summary["bf16_share_of_epoch_in_matmuls"] = matmul_seconds / med["dbn_bf16"]
    return write_results(args, started, commit, summary=summary, runs=runs, flops_per_epoch=flops)


def check_counts(args):
    """``--n`` and ``--repeats`` (and ``--batch-size``/``--layers`` where a script has them)
    integers >= 1, before any subprocess starts."""
    from dbn import validation as check

    for name in ("n", "repeats", "batch_size"):
        if hasattr(args, name):
            check.check_int(f"--{name.replace('_', '-')}", getattr(args, name), low=1)
    for i, size in enumerate(getattr(args, "layers", [])):
        check.check_int(f"--layers[{i}]", size, low=1)


def write_results(args, started, commit, **results):
    """The benchmark's JSON at ``args.out`` (config, commit, versions, wall time and
    ``results``); prints its summary."""
    from dbn import provenance

    payload = provenance.record(vars(args), seed=0, started=started, commit=commit, results=results)
    provenance.write_json(args.out, payload)
    for k, v in results["summary"].items():
        print(f"{k}: {v}")
    return payload


if __name__ == "__main__":
    main()
