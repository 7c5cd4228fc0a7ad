"""What one training epoch costs with each negative phase, to compare them at equal wall
time: CD-1, CD-25, PCD-1, fast PCD (FPCD-1) and parallel tempering (PT, 10 temperatures,
one sweep each).

784 x 500 RBM, batch 100, one pass over the 50,000 images of the likelihood runs'
training split (stochastic binarization every epoch, as train_rbm.py trains). Each
measurement is its own subprocess (the second of two epochs, the first traces); the
samplers are interleaved; medians over --repeats. ``equal_time_epochs`` is how many epochs
of each fit in the training time of ``rbm_best`` (CD-1 -> 25 over 60 epochs, its recorded
``train_seconds``), scaled by the ratio of this run's CD-1 epoch to the CD-1 epoch implied
by that run (so the figure transfers between machines of different speed).

  python experiments/benchmark_samplers.py          # writes results/benchmark_samplers.json
  python experiments/benchmark_samplers.py --quick  # 3,000 images, 1 repeat (CI)
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark_cd import check_counts, in_subprocess, interleaved, write_results  # noqa: E402

SAMPLERS = {
    "cd1": dict(k=1),
    "cd25": dict(k=25),
    "pcd1": dict(k=1, persistent=True),
    "fpcd1": dict(k=1, persistent=True, fast_learning_rate=0.05),
    "pt10": dict(k=1, persistent=True, n_temperatures=10),
}


def time_epoch(sampler, n):
    """Seconds of the second of two training epochs with ``SAMPLERS[sampler]``."""
    import keras

    from dbn import data as datasets
    from dbn.training.configs import LIKELIHOOD_RBM
    from dbn.training.pretrain import build_rbm, compile_rbm, epoch_batches

    data = datasets.likelihood_splits(seed=0)
    x = data.data.x_train[:n]
    config = LIKELIHOOD_RBM.__class__(**{**LIKELIHOOD_RBM.to_dict(), **SAMPLERS[sampler], "epochs": 2})
    keras.utils.set_random_seed(0)
    rbm = build_rbm(config, seed=0)
    rbm.initialize_from_data(data.train[:n])
    compile_rbm(rbm, config, steps_per_epoch=math.ceil(n / config.batch_size))
    batches = epoch_batches(x, batch_size=config.batch_size, seed=0, binarization="stochastic")
    seconds = []
    for epoch in range(2):
        t0 = time.perf_counter()
        rbm.fit(batches(epoch), epochs=1, verbose=0, shuffle=False)
        seconds.append(time.perf_counter() - t0)
    return {"seconds": seconds[1], "first_epoch_seconds": seconds[0]}


def main(argv=None):
    from dbn import options, provenance

    p = argparse.ArgumentParser(description=__doc__, formatter_class=options.HelpFormatter)
    p.add_argument("--n", type=int, default=50_000, help="training images per epoch")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=list(SAMPLERS))
    p.add_argument("--reference", default="results/rbm_best.json",
                   help="the CD-1 -> 25 run whose training time sets the budget")
    p.add_argument("--out", default="results/benchmark_samplers.json")
    p.add_argument("--quick", action="store_true", help="3,000 images, 1 repeat")
    args = options.parse_args(p, argv, {}, n=3000, repeats=1)
    check_counts(args)
    started, commit = time.time(), provenance.git_commit()
    runs = interleaved(list(args.samplers), args.repeats,
                       lambda s: in_subprocess("benchmark_samplers", "time_epoch", s, args.n),
                       concurrent=args.quick)
    med = {s: statistics.median(r["seconds"] for r in runs[s]) for s in args.samplers}
    summary = {"median_epoch_seconds": med,
               "relative_to_cd1": {s: med[s] / med["cd1"] for s in med} if "cd1" in med else None}
    reference = Path(args.reference)
    if reference.is_file() and {"cd1", "cd25"} <= set(med):
        r = json.loads(reference.read_text())
        epochs = r["config"]["training"]["epochs"]
        # rbm_best's k rises linearly 1 -> 25: its epochs cost on average the mean of the
        # CD-1 and CD-25 epochs (cost is linear in k), measured here.
        here = epochs * (med["cd1"] + med["cd25"]) / 2
        summary["reference"] = {"path": str(reference), "train_seconds": r["timing"]["train_seconds"],
                                "estimated_here_seconds": here}
        summary["equal_time_epochs"] = {s: int(here // med[s]) for s in med}
    return write_results(args, started, commit, summary=summary, runs=runs)


if __name__ == "__main__":
    main()
