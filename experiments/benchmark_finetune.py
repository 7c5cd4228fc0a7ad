"""Throughput of one fine-tuning epoch: Keras' fit with one step per call (Keras'
default) and with several steps per compiled call (``STEPS_PER_EXECUTION``), against the
package's in-graph epochs (``dbn.training.finetune.IN_GRAPH_EPOCHS``: Keras' train_step
looped in-graph over stacked batches; the same weights, tested), and those in-graph
epochs with ``FineTuneConfig(precision="bfloat16")`` (bfloat16 products).

The DBN classifier 784-500-500-2000-10 (sigmoid, softmax), Adam, batch 100, one pass over
the 50,000 images of the training split, trained by ``fit_schedule`` as every experiment
trains. Each measurement is its own subprocess; the variants are interleaved; medians
over --repeats of the median of epochs 2-3 in each process, so the first epoch (which
traces the compiled function) is left out.

FLOPs per batch of B: forward 2 B sum(fan_in x fan_out); backward twice that (gradients
of weights and inputs), so 6 B sum(fan_in x fan_out) in all; elementwise work not counted.

Where an epoch's time goes (``breakdown``, one more subprocess per repeat): the same
network and batches in one compiled loop over the epoch, timed for the forward pass
alone, forward + backward (the gradients consumed, so not pruned), and forward +
backward + the optimizer's update (Adam, and SGD with momentum for comparison).

  python experiments/benchmark_finetune.py          # writes results/benchmark_finetune.json
  python experiments/benchmark_finetune.py --quick  # 3,000 images, a small net, 1 repeat (CI)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark_cd import check_counts, in_subprocess, interleaved, time_stages, write_results  # noqa: E402


def time_epochs(steps_per_execution, n, layers, batch, epochs=3, in_graph=False, precision="float32"):
    """Seconds of each of ``epochs`` fine-tuning epochs with ``steps_per_execution``
    steps per call, at ``precision`` (``FineTuneConfig.precision``); the first includes
    tracing the compiled function, so the reported ``seconds`` is the median of the others."""
    import keras

    from dbn import data as datasets
    from dbn.models.classifier import build_classifier
    from dbn.training import finetune
    from dbn.training.configs import FineTuneConfig

    finetune.STEPS_PER_EXECUTION = steps_per_execution
    finetune.IN_GRAPH_EPOCHS = in_graph
    timed, train_epoch = [], finetune._train_epoch

    def timed_epoch(*args, **kwargs):  # the benchmark's probe around one training epoch
        t0 = time.perf_counter()
        out = train_epoch(*args, **kwargs)
        timed.append(time.perf_counter() - t0)
        return out

    finetune._train_epoch = timed_epoch
    data = datasets.load(n_train=n, seed=0)
    keras.utils.set_random_seed(0)
    model = build_classifier([784, *layers], 10, init="glorot", seed=0)
    finetune.fit_schedule(model, data.x_train, data.y_train,
                          FineTuneConfig(batch_size=batch, precision=precision), [1e-3] * epochs, seed=0)
    return {"seconds": statistics.median(timed[1:]), "epoch_seconds": timed}


VARIANTS = ("one_step_per_call", "steps_per_execution", "in_graph_epochs", "in_graph_epochs_bfloat16")
STAGES = ("forward", "forward_backward", "forward_backward_sgd_momentum", "forward_backward_adam")


def breakdown(n, layers, batch, repeats=3):
    """Median seconds per epoch of each of ``STAGES`` (in-graph loops over the epoch's
    batches, the stages interleaved ``repeats`` times after one untimed call each)."""
    import keras
    import tensorflow as tf

    from dbn import data as datasets
    from dbn.models.classifier import build_classifier

    data = datasets.load(n_train=n, seed=0)
    steps = len(data.x_train) // batch
    xs = tf.constant(data.x_train[: steps * batch].reshape(steps, batch, -1))
    ys = tf.constant(data.y_train[: steps * batch].reshape(steps, batch))
    keras.utils.set_random_seed(0)
    model = build_classifier([784, *layers], 10, init="glorot", seed=0)
    variables = model.trainable_variables
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    optimizers = {"forward_backward_sgd_momentum": keras.optimizers.SGD(1e-3, momentum=0.9),
                  "forward_backward_adam": keras.optimizers.Adam(1e-3)}
    for optimizer in optimizers.values():
        optimizer.build(variables)

    def loop(stage):
        @tf.function
        def run():
            total = tf.constant(0.0)
            for i in tf.range(steps):
                with tf.GradientTape() as tape:
                    loss = loss_fn(ys[i], model(xs[i], training=True))
                if stage == "forward":
                    total += loss
                    continue
                grads = tape.gradient(loss, variables)
                if stage == "forward_backward":
                    total += tf.add_n([tf.reduce_sum(g) for g in grads])
                else:
                    optimizers[stage].apply_gradients(zip(grads, variables))
                    total += loss
            return total
        return run

    return time_stages({stage: loop(stage) for stage in STAGES}, repeats)


def main(argv=None):
    from dbn import options, provenance

    p = argparse.ArgumentParser(description=__doc__, formatter_class=options.HelpFormatter)
    p.add_argument("--n", type=int, default=50_000, help="training images per epoch")
    p.add_argument("--layers", type=int, nargs="+", default=[500, 500, 2000])
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default="results/benchmark_finetune.json")
    p.add_argument("--quick", action="store_true", help="3,000 images, 784-100-100, 1 repeat")
    args = options.parse_args(p, argv, {}, n=3000, layers=[100, 100], repeats=1)
    check_counts(args)
    from dbn.training import finetune  # TensorFlow: after the options are parsed (instant --help)

    steps = finetune.STEPS_PER_EXECUTION
    started, commit = time.time(), provenance.git_commit()

    def measure_one(variant):
        spe = 1 if variant == "one_step_per_call" else steps
        return in_subprocess("benchmark_finetune", "time_epochs", spe, args.n, args.layers,
                             args.batch_size, 3, variant.startswith("in_graph_epochs"),
                             "bfloat16" if variant.endswith("bfloat16") else "float32")

    runs = interleaved(list(VARIANTS) + ["breakdown"], args.repeats,
                       lambda v: (in_subprocess("benchmark_finetune", "breakdown", args.n, args.layers,
                                                args.batch_size) if v == "breakdown" else measure_one(v)),
                       concurrent=args.quick)
    stages = {s: statistics.median(r[s] for r in runs["breakdown"]) for s in STAGES}
    med = {v: statistics.median(r["seconds"] for r in runs[v]) for v in VARIANTS}
    sizes = [784, *args.layers, 10]
    flops = 6 * args.n * sum(a * b for a, b in zip(sizes, sizes[1:]))
    summary = {"steps_per_execution": steps, "median_epoch_seconds": med,
               "speedup": med["one_step_per_call"] / med["steps_per_execution"],
               "in_graph_speedup": med["one_step_per_call"] / med["in_graph_epochs"],
               "bfloat16_speedup": med["in_graph_epochs"] / med["in_graph_epochs_bfloat16"],
               "gflops": {v: flops / med[v] / 1e9 for v in VARIANTS},
               "breakdown_epoch_seconds": stages,
               # The best any change of the update alone could reach: fit's epoch against
               # the forward and backward passes with no optimizer at all.
               "speedup_bound_without_optimizer": med["in_graph_epochs"] / stages["forward_backward"],
               "adam_share_of_loop": 1 - stages["forward_backward"] / stages["forward_backward_adam"]}
    return write_results(args, started, commit, summary=summary, runs=runs, flops_per_epoch=flops)


if __name__ == "__main__":
    main()
