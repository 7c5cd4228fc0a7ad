"""Train a Bernoulli RBM on binarized MNIST and measure its log-likelihood by AIS.

Writes results/rbm_<name>.json (config, seed, commit, versions, wall times, AIS numbers),
results/rbm_<name>.npz (W, visible_bias, hidden_bias) and PNGs (learning curves,
filters, samples after --sample-steps Gibbs steps from random starts).
Resumable: a killed run restarts from its last finished epoch. The checkpoint directory,
<checkpoint-dir>/rbm_<name>_<hash>, is keyed by every setting and a hash of the data, so a
rerun with other settings trains anew instead of returning the old weights; --fresh
discards a damaged or unwanted checkpoint.

Examples
--------
  python experiments/train_rbm.py --name cd1 --epochs 60 --k 1
  python experiments/train_rbm.py --name best --epochs 60 --k 1 --final-k 25
  python experiments/train_rbm.py --name fpcd --pcd --fast-lr 0.05
  python experiments/train_rbm.py --name pt --pcd --temperatures 10
  python experiments/train_rbm.py --quick --out /tmp/rbm_quick
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

from dbn import plots, provenance
from dbn.training import checkpoint
from dbn import data as datasets
from dbn import options
from dbn import validation as check
from dbn.options import DEFAULT_CHECKPOINT_DIR
from dbn.training.configs import AIS_RUNS, LIKELIHOOD_RBM


RBM_OPTIONS = {"n_hidden": "--hidden", "epochs": "--epochs", "batch_size": "--batch-size",
               "learning_rate": "--lr", "final_learning_rate": "--final-lr", "k": "--k",
               "final_k": "--final-k", "persistent": "--pcd", "n_chains": "--chains",
               "weight_decay": "--weight-decay", "fast_learning_rate": "--fast-lr",
               "fast_decay": "--fast-decay", "n_temperatures": "--temperatures",
               "precision": "--precision"}
RBM_HELP = {"learning_rate": "initial learning rate",
            "final_learning_rate": "learning rate reached linearly at the end",
            "k": "Gibbs steps (first epoch)", "final_k": "k rises linearly to this by the last epoch",
            "persistent": "persistent contrastive divergence", "n_chains": "persistent chains (PCD)",
            "weight_decay": "L2 cost on W only",
            "fast_learning_rate": "FPCD: learning rate of the fast weights (needs --pcd)",
            "fast_decay": "FPCD: the fast weights shrink by this factor every update",
            "n_temperatures": "parallel tempering with this many temperatures (needs --pcd)",
            "precision": "bfloat16: bfloat16 training matmuls (float32 weights and statistics)"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=options.HelpFormatter)
    p.add_argument("--name", default="cd1", help="results are written as rbm_<name>.*")
    options.config_options(p.add_argument_group("training (defaults: LIKELIHOOD_RBM)"),
                           LIKELIHOOD_RBM, RBM_OPTIONS, help=RBM_HELP)
    p.add_argument("--validation-size", type=int, default=10_000)
    p.add_argument("--n-train", type=int, default=None, help="subset of the training split")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ais-runs", type=int, default=AIS_RUNS)
    p.add_argument("--ais-betas", choices=["full", "coarse"], default="full",
                   help="full: the 14,501 temperatures of Salakhutdinov & Murray; coarse: 1,001")
    p.add_argument("--sample-steps", type=int, default=1000)
    p.add_argument("--out", default="results")
    p.add_argument("--tensorboard", default=None, metavar="DIR",
                   help="write TensorBoard summaries there every epoch (scalars, filters, samples)")
    p.add_argument("--checkpoint-dir", default=str(DEFAULT_CHECKPOINT_DIR),
                   help="resume state (env DBN_CHECKPOINT_DIR)")
    p.add_argument("--fresh", action="store_true",
                   help="discard this run's checkpoint (if any) and train from scratch")
    p.add_argument("--quick", action="store_true", help="tiny end-to-end run (CI): 2,000 images, 2 epochs, 50 hidden")
    return options.parse_args(p, argv, {}, hidden=50, epochs=2, n_train=2000,
                               validation_size=500, ais_runs=16, ais_betas="coarse",
                               sample_steps=50)


def main(argv=None):
    args = parse_args(argv)
    with options.session(args):
        return run(args)


def run(args):
    import keras  # TensorFlow: after the options are parsed, so --help is instant

    from dbn.estimation import ais
    from dbn.training.callbacks import RBMTensorBoard
    from dbn.training.pretrain import build_rbm, epoch_batches, rbm_spec, train_rbm

    # Options used only after training are checked before it.
    check.check_int("--ais-runs", args.ais_runs, low=2)
    check.check_int("--sample-steps", args.sample_steps, low=1)
    if not args.name or "/" in args.name:
        raise ValueError(f"--name={args.name!r} is not allowed: a non-empty name without '/'")
    started, commit = time.time(), provenance.git_commit()
    keras.utils.set_random_seed(args.seed)
    config = options.config_from_args(LIKELIHOOD_RBM, RBM_OPTIONS, args)
    # Training images are re-binarized stochastically every epoch; evaluation uses one
    # fixed stochastic binarization per split (the likelihood-paper protocol).
    splits = datasets.likelihood_splits(validation_size=args.validation_size, n_train=args.n_train,
                                        seed=args.seed)
    data, train_fixed, val_fixed, test_fixed = splits.data, splits.train, splits.val, splits.test
    train_ds = epoch_batches(data.x_train, batch_size=args.batch_size, seed=args.seed,
                           binarization="stochastic")
    steps = math.ceil(len(data.x_train) / args.batch_size)

    out = Path(args.out)
    name = f"rbm_{args.name}"
    rbm = build_rbm(config, seed=args.seed)
    validation = val_fixed if len(val_fixed) else None
    # Everything that determines the trained RBM (and its history) keys the checkpoint.
    spec = {"what": "train_rbm", "config": config.to_dict(), "rbm": rbm_spec(rbm), "seed": args.seed,
            "train": checkpoint.fingerprint(data.x_train, train_fixed),
            "validation": checkpoint.fingerprint(val_fixed), "pipeline": "epoch_batches/stochastic"}
    t0 = time.time()
    checkpoint.warn_legacy(args.checkpoint_dir)
    with checkpoint.RunDir(checkpoint.run_path(args.checkpoint_dir, name, spec), spec,
                           what=f"train_rbm {name}") as run:
        history = train_rbm(rbm, train_ds, config, steps_per_epoch=steps, init_data=train_fixed,
                            validation_data=validation, checkpoint=run,
                            callbacks=[RBMTensorBoard(args.tensorboard)] if args.tensorboard else ())
    # Sum of per-epoch times, so a run resumed across sessions reports its full cost.
    train_seconds = float(np.nansum(history.get("epoch_seconds", [time.time() - t0])))

    t0 = time.time()
    W, b, c = (v.numpy() for v in (rbm.W, rbm.visible_bias, rbm.hidden_bias))
    betas = None if args.ais_betas == "full" else ais.make_betas([(1.0, 1e-3)])
    likelihood = ais.evaluate_log_likelihood(
        W, b, c, base_data=train_fixed, test_data=test_fixed, train_data=train_fixed,
        n_runs=args.ais_runs, betas=betas, seed=args.seed, verbose=0 if args.quick else 2)
    ais_seconds = time.time() - t0

    samples = rbm.sample(100, args.sample_steps)
    provenance.save_npz(out / f"{name}.npz", W=W, visible_bias=b, hidden_bias=c)
    plots.learning_curves(history, path=out / f"{name}_curves.png")
    plots.tile_filters(W, n=100, path=out / f"{name}_filters.png", title=f"{name}: 100 filters")
    plots.image_grid(samples, n_rows=10, path=out / f"{name}_samples.png",
                     title=f"{name}: p(v|h) after {args.sample_steps} Gibbs steps")
    payload = provenance.record(
        {**vars(args), "training": config.to_dict(),
         "data": {"train": len(data.x_train), "validation": len(data.x_val), "test": len(data.x_test),
                  "train_binarization": "stochastic, resampled every epoch",
                  "evaluation_binarization": "stochastic, drawn once (seeds seed+1/+2/+3)"}},
        seed=args.seed, started=started, commit=commit,
        results={"ais": likelihood, "history": history,
                 "timing": {"train_seconds": train_seconds, "ais_seconds": ais_seconds}},
    )
    provenance.write_json(out / f"{name}.json", payload)
    print(f"{name}: test log p = {likelihood['test_log_prob']:.2f} nats "
          f"(log Z {likelihood['log_z']:.2f} +/- {likelihood['log_z_std']:.3f}), "
          f"train {likelihood['train_log_prob']:.2f}; train {train_seconds:.0f}s, AIS {ais_seconds:.0f}s")
    return payload


if __name__ == "__main__":
    sys.exit(main() and 0)
