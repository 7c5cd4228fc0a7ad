"""The package's main job in a few minutes on 2 cores (`make demo`).

Pretrains a small DBN (784-500-500) on 15,000 MNIST images, fine-tunes it on 5,000 labels
and compares with the same network initialised at random (Glorot), then samples digits
from the DBN. Read top to bottom, ``run`` is the walk-through MNIST -> RBM -> DBN ->
classifier -> results in plain library calls (the experiments add seeds, label budgets
and a shared run cache on top: dbn.protocols.comparison). Writes results/demo/: demo.json, digits.png (data), samples.png (DBN),
filters.png (first-layer weights), val_error.png.

  python experiments/demo.py [--out results/demo]
  python experiments/demo.py --quick --out /tmp/demo   # seconds: 2,000 labels, 784-100-100
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import dbn
from dbn import options, plots, provenance
from dbn.training import checkpoint
from dbn.training.configs import FineTuneConfig, RBMTrainingConfig


DEMO_CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints" / "demo"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=options.HelpFormatter)
    p.add_argument("--out", default="results/demo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-train", type=int, default=5000, help="labelled training examples")
    p.add_argument("--layers", type=int, nargs="+", default=[500, 500])
    p.add_argument("--pretrain-epochs", type=int, default=5)
    p.add_argument("--max-epochs", type=int, default=30)
    p.add_argument("--checkpoint-dir", default=str(DEMO_CHECKPOINTS),
                   help="resume state; default: checkpoints/demo in this work tree (git-ignored), "
                        "so a new clone computes everything anew and a rerun says what it reuses")
    p.add_argument("--fresh", action="store_true", help="discard the demo's checkpoints first")
    p.add_argument("--quick", action="store_true",
                   help="tiny end-to-end run (CI): 2,000 labels, 784-100-100, 2 + 3 epochs, "
                        "100 Gibbs steps")
    p.add_argument("--gibbs-steps", type=int, default=1000, help="Gibbs steps of each sample's chain")
    args = options.parse_args(p, argv, {}, n_train=2000, layers=[100, 100],
                               pretrain_epochs=2, max_epochs=3, gibbs_steps=100)
    with options.session(args):
        return run(args)


def run(args):
    """MNIST -> RBMs -> DBN -> classifiers -> results, calling the library directly."""
    started, commit = time.time(), provenance.git_commit()
    out, ckpt = Path(args.out), Path(args.checkpoint_dir)

    # 1. Data: n_train labelled training images, 10,000 validation images, the test set.
    data = dbn.load(n_train=args.n_train, seed=0)

    # 2. Greedy layer-wise pretraining of the RBM stack, without labels, on the training
    #    and validation images (resumable: a rerun reuses the finished layers).
    layer_config = RBMTrainingConfig(epochs=args.pretrain_epochs, learning_rate=0.05,
                                     final_learning_rate=None, weight_decay=2e-4)
    stack = dbn.DBN([784, *args.layers], layer_configs=layer_config, seed=args.seed)
    stack.pretrain(np.concatenate([data.x_train, data.x_val]), checkpoint_dir=ckpt / "pretrain",
                   verbose=0)

    # 3. The same classifier from the pretrained weights and from a random (Glorot)
    #    initialisation, fine-tuned identically, early-stopped on the validation split;
    #    4. its test error, computed once, at the end.
    finetune = FineTuneConfig(max_epochs=args.max_epochs, patience=5)
    runs = []
    for init in ("pretrained", "glorot"):
        model = stack.to_classifier(data.n_classes, init=init, seed=args.seed)
        directory = checkpoint.run_path(ckpt, f"finetune_{init}", {
            "layers": args.layers, "n_train": args.n_train, "seed": args.seed,
            "pretrain": layer_config.to_dict(), "finetune": finetune.to_dict()})
        t0 = time.time()
        result = dbn.fine_tune(model, data.x_train, data.y_train, data.x_val, data.y_val, finetune,
                               seed=args.seed, checkpoint_dir=directory)
        runs.append({"init": init, "test_error": dbn.error_rate(model, data.x_test, data.y_test),
                     "val_error": result["best_val_error"], "best_epoch": result["best_epoch"],
                     "epochs_run": result["epochs_run"], "finetune_seconds": time.time() - t0,
                     "val_error_curve": result["history"]["val_error"]})

    # 5. Digits from the DBN: a Gibbs chain in the top RBM, then one top-down pass.
    samples = stack.generate(100, gibbs_steps=args.gibbs_steps)

    plots.image_grid(data.x_train[:100], n_rows=10, path=out / "digits.png", title="MNIST training digits")
    plots.image_grid(samples, n_rows=10, path=out / "samples.png",
                     title=f"DBN samples, {args.gibbs_steps:,} Gibbs steps")
    plots.tile_filters(stack.rbms[0].W.numpy(), n=100, path=out / "filters.png", title="layer-1 filters")
    plots.learning_curves({f"{r['init']} val error": r["val_error_curve"] for r in runs},
                          path=out / "val_error.png")
    summary = {r["init"]: {"test_error": r["test_error"], "best_epoch": r["best_epoch"]} for r in runs}
    provenance.write_json(out / "demo.json", provenance.record(
        {**vars(args), "layer_config": layer_config.to_dict(), "finetune": finetune.to_dict()},
        seed=args.seed, started=started, commit=commit, results={"summary": summary, "runs": runs}))
    for init, s in summary.items():
        print(f"{init:>10}: test error {100 * s['test_error']:.2f}% (best epoch {s['best_epoch']})")
    print(f"wrote {out}/ in {time.time() - started:.0f}s")


if __name__ == "__main__":
    main()
