"""The whole Hinton & Salakhutdinov (2006) classification pipeline, timed end to end.

Greedy pretraining of 784-500-500-2000 (three layers x 50 epochs, HINTON_LAYER: CD-1,
batch 100, the layer-1 pixels binarized anew every epoch) on the 60,000 training images,
then fine-tuning of the unrolled 784-500-500-2000-10 classifier with early stopping on the
validation split (the package's FineTuneConfig: Adam 1e-3, batch 100, patience 10), then
the test error.  Nothing is cached: each run pretrains and fine-tunes from scratch, in its
own subprocess, and reports the wall time of every stage (loading, each layer, the
upward passes between them, fine-tuning, evaluation) and the process's peak resident
memory (RSS, ``resource.getrusage``).  --repeats runs are medians (stage by stage).

  python experiments/benchmark_pipeline.py                  # writes results/benchmark_pipeline.json
  python experiments/benchmark_pipeline.py --precision bfloat16   # pretraining and fine-tuning
  python experiments/benchmark_pipeline.py --quick          # 2,000 images, 2 epochs
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from benchmark_cd import check_counts, in_subprocess, write_results  # noqa: E402


def run_pipeline(layers, epochs, n_train, max_epochs, precision, seed):
    """One pipeline run in this process; JSON-ready stage times, test error, peak RSS."""
    import resource

    t0 = time.perf_counter()
    import keras
    import numpy as np

    from dbn import data as datasets
    from dbn.models.dbn import DBN
    from dbn.training.configs import HINTON_LAYER, FineTuneConfig
    from dbn.training.finetune import error_rate, fine_tune

    stages = {"import_seconds": time.perf_counter() - t0}
    t0 = time.perf_counter()
    data = datasets.load(n_train=n_train, seed=0)
    x_unlabelled = np.concatenate([data.x_train, data.x_val])  # images of both splits, no labels
    stages["load_seconds"] = time.perf_counter() - t0
    config = dataclasses.replace(HINTON_LAYER, epochs=epochs, precision=precision)
    keras.utils.set_random_seed(seed)
    model = DBN([784, *layers], layer_configs=config, seed=seed)
    timings = {}
    t0 = time.perf_counter()
    model.pretrain(x_unlabelled, verbose=0, timings=timings)
    stages["pretraining_seconds"] = time.perf_counter() - t0
    stages.update({k: v for k, v in timings.items() if k.endswith("_seconds")})
    t0 = time.perf_counter()
    classifier = model.to_classifier(10)
    result = fine_tune(classifier, data.x_train, data.y_train, data.x_val, data.y_val,
                       FineTuneConfig(max_epochs=max_epochs, precision=precision), seed=seed)
    stages["fine_tuning_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    test_error = error_rate(classifier, data.x_test, data.y_test)
    stages["evaluation_seconds"] = time.perf_counter() - t0
    stages["total_seconds"] = sum(v for k, v in stages.items()
                                  if k in ("import_seconds", "load_seconds", "pretraining_seconds",
                                           "fine_tuning_seconds", "evaluation_seconds"))
    return {"stages": stages, "test_error": test_error, "fine_tuning_epochs": result["epochs_run"],
            "best_epoch": result["best_epoch"],
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv=None):
    from dbn import options

    p = argparse.ArgumentParser(description=__doc__, formatter_class=options.HelpFormatter)
    p.add_argument("--layers", type=int, nargs="+", default=[500, 500, 2000])
    p.add_argument("--epochs", type=int, default=50, help="pretraining epochs per layer")
    p.add_argument("--max-epochs", type=int, default=100, help="fine-tuning cap (early stopping)")
    p.add_argument("--n-train", type=int, default=None, help="training labels (default: 50,000)")
    p.add_argument("--precision", choices=["float32", "bfloat16"], default="float32")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results/benchmark_pipeline.json")
    p.add_argument("--quick", action="store_true", help="2,000 images, layers 100 100 200, 2 epochs")
    args = options.parse_args(p, argv, {}, layers=[100, 100, 200], epochs=2, max_epochs=3, n_train=2000)
    check_counts(args)
    from dbn import provenance
    from dbn import validation as check

    check.check_int("--epochs", args.epochs, low=1)
    check.check_int("--max-epochs", args.max_epochs, low=1)
    check.check_seed("--seed", args.seed)
    if args.n_train is not None:
        check.check_int("--n-train", args.n_train, low=100, high=50_000)
    started, commit = time.time(), provenance.git_commit()
    runs = []
    for r in range(args.repeats):
        runs.append(in_subprocess("benchmark_pipeline", "run_pipeline", args.layers, args.epochs,
                                  args.n_train, args.max_epochs, args.precision, args.seed))
        print(f"run {r + 1}: {runs[-1]['stages']['total_seconds'] / 60:.1f} min, "
              f"test error {runs[-1]['test_error']:.4f}, peak RSS {runs[-1]['peak_rss_mib']:.0f} MiB",
              flush=True)
    keys = runs[0]["stages"]
    summary = {"median_stage_seconds": {k: statistics.median(r["stages"][k] for r in runs) for k in keys},
               "median_total_minutes": statistics.median(r["stages"]["total_seconds"] for r in runs) / 60,
               "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
               "test_error": [r["test_error"] for r in runs],
               "goal_minutes": 10.0}
    summary["goal_met"] = summary["median_total_minutes"] <= summary["goal_minutes"]
    return write_results(args, started, commit, summary=summary, runs=runs)


if __name__ == "__main__":
    main()
