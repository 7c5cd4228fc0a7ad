"""The package's main job in a few minutes on 2 cores (`make demo`).

Pretrains a small DBN (784-500-500) on 15,000 MNIST images, fine-tunes it on 5,000 labels
and compares with the same network initialised at random (Glorot), then samples digits
from the DBN. Writes results/demo/: demo.json, digits.png (data), samples.png (DBN),
filters.png (first-layer weights), val_error.png.

  python experiments/demo.py [--out results/demo]
  python experiments/demo.py --quick --out /tmp/demo   # seconds: 2,000 labels, 784-100-100
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from dbn import cli, datasets, plots, provenance
from dbn.comparison import compare, pretrained_dbn
from dbn.finetune import FineTuneConfig
from dbn.training import RBMTrainingConfig


DEMO_CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints" / "demo"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    args = p.parse_args(argv)
    args.gibbs_steps = 1000
    if args.quick:
        args.n_train, args.layers, args.pretrain_epochs, args.max_epochs = 2000, [100, 100], 2, 3
        args.gibbs_steps = 100
    with cli.session(args):
        return run(args)


def run(args):
    started, commit = time.time(), provenance.git_commit()
    out = Path(args.out)
    data = datasets.load(n_train=args.n_train, seed=0)
    layer_sizes = [784, *args.layers]
    layer_config = RBMTrainingConfig(epochs=args.pretrain_epochs, learning_rate=0.05,
                                     final_learning_rate=None, weight_decay=2e-4)
    finetune = FineTuneConfig(max_epochs=args.max_epochs, patience=5)
    runs = compare(data, layer_sizes=layer_sizes, layer_configs=layer_config, finetune_config=finetune,
                   seeds=[args.seed], inits=["pretrained", "glorot"],
                   checkpoint_root=args.checkpoint_dir, tag="demo", verbose=0)
    stack, _ = pretrained_dbn(
        np.concatenate([data.x_train, data.x_val]), layer_sizes=layer_sizes,
        layer_configs=layer_config, seed=args.seed, checkpoint_root=args.checkpoint_dir, verbose=0)
    samples = stack.generate(100, gibbs_steps=args.gibbs_steps)
    plots.image_grid(data.x_train[:100], n_rows=10, path=out / "digits.png", title="MNIST training digits")
    plots.image_grid(samples, n_rows=10, path=out / "samples.png",
                     title=f"DBN samples, {args.gibbs_steps:,} Gibbs steps")
    plots.tile_filters(stack.rbms[0].W.numpy(), n=100, path=out / "filters.png", title="layer-1 filters")
    plots.learning_curves({f"{r['init']} val error": r["val_error_curve"] for r in runs},
                          path=out / "val_error.png")
    summary = {r["init"]: {"test_error": r["test_error"], "best_epoch": r["best_epoch"]} for r in runs}
    provenance.write_json(out / "demo.json", provenance.record(
        {**vars(args), "layer_config": layer_config.to_dict(),
         "finetune": finetune.to_dict()},
        seed=args.seed, started=started, commit=commit, results={"summary": summary, "runs": runs}))
    for init, s in summary.items():
        print(f"{init:>10}: test error {100 * s['test_error']:.2f}% (best epoch {s['best_epoch']})")
    print(f"wrote {out}/ in {time.time() - started:.0f}s")


if __name__ == "__main__":
    main()
