"""A two-layer DBN grown from an RBM: its variational lower bound on the test
log-probability (Salakhutdinov & Murray 2008, section 4) against the RBM it grows from.

The first layer is a trained RBM (results/<--base-model>.npz and .json from train_rbm.py;
default rbm_best, 784-500). A second RBM (500 -> --hidden) is trained on the first
layer's hidden probabilities of the training images (the package's convention for upper
layers), its log Z estimated by forward AIS (base-rate model from those probabilities),
and the bound

    log p(v) >= E_Q[log p(v | h1) - F2(h1)] - log Z2 + H(Q),   Q = the RBM's posterior,

estimated on the test images binarized once exactly as for the RBM (--samples draws of
h1 per image). The conservative figure uses log Z2 + 3 std. The RBM's own test log p is
forward AIS rerun with its recorded settings. Writes results/dbn_likelihood.json.
Resumable (the second layer's training is checkpointed).

  python experiments/dbn_likelihood.py --top-data probabilities        # 500 -> 2000, random init
  python experiments/dbn_likelihood.py --top-init lower --hidden 784 --name dbn_likelihood_lower
  python experiments/dbn_likelihood.py --quick --models-dir /tmp/q --out /tmp/q
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from dbn import data as datasets
from dbn import options, provenance
from dbn import validation as check
from dbn.training import checkpoint
from dbn.training.configs import AIS_RUNS, LIKELIHOOD_RBM

TOP_OPTIONS = {"n_hidden": "--hidden", "epochs": "--epochs", "learning_rate": "--lr",
               "final_learning_rate": "--final-lr", "k": "--k", "final_k": "--final-k",
               "weight_decay": "--weight-decay"}
# The second layer's default recipe: the likelihood runs' (LIKELIHOOD_RBM), 2,000 hidden
# units as Salakhutdinov & Murray's DBN, k rising 1 -> 10 over 50 epochs.
TOP_RBM = LIKELIHOOD_RBM.__class__(**{**LIKELIHOOD_RBM.to_dict(), "n_hidden": 2000, "epochs": 50,
                                      "final_k": 10})


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=options.HelpFormatter)
    p.add_argument("--base-model", default="rbm_best",
                   help="<models-dir>/<base-model>.npz and .json: the first layer")
    p.add_argument("--models-dir", default="results")
    options.config_options(p.add_argument_group("second layer (defaults: TOP_RBM)"), TOP_RBM,
                           TOP_OPTIONS, help={})
    p.add_argument("--top-data", choices=["samples", "probabilities"], default="samples",
                   help="the second layer's training data: binary h1 ~ Q(h1|v) drawn anew every "
                        "epoch (what the DBN's prior models) or the probabilities Q(h1=1|v)")
    p.add_argument("--top-init", choices=["random", "lower"], default="random",
                   help="lower: start the second layer as the first one's own prior over h1 "
                        "(W2 = W1^T, needs --hidden 784), where the bound equals the RBM's log p "
                        "(Hinton, Osindero & Teh 2006)")
    p.add_argument("--samples", type=int, default=10, help="draws of h1 per test image")
    p.add_argument("--betas", choices=["full", "coarse"], default="full")
    p.add_argument("--ais-runs", type=int, default=AIS_RUNS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results")
    p.add_argument("--name", default="dbn_likelihood", help="writes <out>/<name>.json")
    p.add_argument("--checkpoint-dir", default=str(options.DEFAULT_CHECKPOINT_DIR))
    p.add_argument("--fresh", action="store_true", help="retrain the second layer")
    p.add_argument("--quick", action="store_true", help="tiny run (CI): --base-model rbm_cd1 of --models-dir")
    args = options.parse_args(p, argv, {}, base_model="rbm_cd1", hidden=30, epochs=2, final_k=None,
                              betas="coarse", ais_runs=16, samples=3)
    check.check_int("--samples", args.samples, low=1)
    options.check_file_name(p, "--name", args.name)
    check.check_int("--ais-runs", args.ais_runs, low=2)
    check.check_seed("--seed", args.seed)
    for suffix in (".npz", ".json"):
        if not (Path(args.models_dir) / f"{args.base_model}{suffix}").is_file():
            p.error(f"--base-model {args.base_model}: {Path(args.models_dir) / (args.base_model + suffix)} does not exist "
                    "(train it with experiments/train_rbm.py)")
    return args


def main(argv=None):
    args = parse_args(argv)
    # TensorFlow: after the options are parsed, so --help and option errors are instant.
    from dbn.estimation import ais
    from dbn.estimation.dbn_bound import dbn_lower_bound
    from dbn.training.pretrain import build_rbm, epoch_batches, rbm_spec, train_rbm

    with options.session(args):
        started, commit = time.time(), provenance.git_commit()
        config = options.config_from_args(TOP_RBM, TOP_OPTIONS, args)
        folder = Path(args.models_dir)
        recorded = json.loads((folder / f"{args.base_model}.json").read_text())
        with np.load(folder / f"{args.base_model}.npz") as f:
            lower = (f["W"], f["visible_bias"], f["hidden_bias"])
        rc = recorded["config"]
        splits = datasets.likelihood_splits(seed=rc["seed"], validation_size=rc["validation_size"],
                                            n_train=rc["n_train"])
        betas = ais.default_betas() if args.betas == "full" else ais.make_betas([(1.0, 1e-3)])

        # The RBM's own test log p, forward AIS with its recorded runs and seed.
        rbm_ais = ais.evaluate_log_likelihood(*lower, base_data=splits.train, test_data=splits.test,
                                              n_runs=recorded["ais"]["runs"], betas=betas,
                                              seed=rc["seed"], verbose=0 if args.quick else 2)

        # The second layer, on the first layer's hidden probabilities of the training images
        # (re-binarized images every epoch would change the layer's data each epoch; the
        # likelihood protocol fixes one binarization, which the features are computed from).
        W1, b1, c1 = lower
        features = (1.0 / (1.0 + np.exp(-(splits.train @ W1 + c1)))).astype(np.float32)
        if args.top_init == "lower" and config.n_hidden != W1.shape[0]:
            raise ValueError(f"--top-init lower needs --hidden {W1.shape[0]} (the first layer's visible "
                             f"units); got --hidden {config.n_hidden}")
        rbm = build_rbm(config, visible_data="binary" if args.top_data == "samples" else "probabilities",
                        seed=args.seed)
        if args.top_init == "lower":  # p(h1) of the first RBM: an RBM over h1 with v as hidden units
            rbm.build((None, W1.shape[1]))
            for variable, value in zip((rbm.W, rbm.visible_bias, rbm.hidden_bias), (W1.T, c1, b1)):
                variable.assign(value)
        spec = {"what": "dbn_likelihood_top", "config": config.to_dict(), "rbm": rbm_spec(rbm),
                "seed": args.seed, "lower": checkpoint.fingerprint(*lower),
                "train": checkpoint.fingerprint(features)}
        if (args.top_data, args.top_init) != ("probabilities", "random"):  # keys of earlier runs kept
            spec.update(top_data=args.top_data, top_init=args.top_init)
        t0 = time.time()
        with checkpoint.RunDir(checkpoint.run_path(args.checkpoint_dir, "dbn_likelihood_top", spec),
                               spec, what="dbn_likelihood second layer") as run:
            binarization = "stochastic" if args.top_data == "samples" else "none"
            history = train_rbm(rbm, epoch_batches(features, batch_size=config.batch_size, seed=args.seed,
                                                   binarization=binarization),
                                config, steps_per_epoch=math.ceil(len(features) / config.batch_size),
                                init_data=(features if args.top_data == "probabilities" else
                                           datasets.binarize(features, "stochastic", seed=args.seed)),
                                checkpoint=run)
        train_seconds = float(np.nansum(history.get("epoch_seconds", [time.time() - t0])))
        top = tuple(v.numpy() for v in (rbm.W, rbm.visible_bias, rbm.hidden_bias))

        t0 = time.time()
        top_ais = ais.ais_log_partition(*top, base_data=features, betas=betas, n_runs=args.ais_runs,
                                        seed=args.seed, verbose=0 if args.quick else 2)
        bound = dbn_lower_bound(lower, top, splits.test, log_z_top=top_ais.log_z,
                                n_samples=args.samples, seed=args.seed)
        conservative = bound.mean - (top_ais.log_z_upper - top_ais.log_z)
        evaluation_seconds = time.time() - t0
        results = {
            "rbm": {"name": args.base_model, "test_log_prob": rbm_ais["test_log_prob"],
                    "test_log_prob_lower": rbm_ais["test_log_prob_lower"], "log_z": rbm_ais["log_z"],
                    "recorded_test_log_prob": recorded["ais"]["test_log_prob"],
                    "model_commit": recorded["git_commit"]},
            "dbn": {**bound.as_dict(), "bound_conservative": conservative,
                    "top_ais": top_ais.as_dict(), "layer_sizes": [W1.shape[0], W1.shape[1], config.n_hidden]},
            "improvement_over_rbm": bound.mean - rbm_ais["test_log_prob"],
            "history": history,
            "timing": {"train_seconds": train_seconds, "evaluation_seconds": evaluation_seconds},
        }
        payload = provenance.record({**vars(args), "top_rbm": config.to_dict()}, seed=args.seed,
                                    started=started, commit=commit, results=results)
        provenance.write_json(Path(args.out) / f"{args.name}.json", payload)
        print(f"{args.base_model}: test log p {rbm_ais['test_log_prob']:.2f} nats (AIS); 2-layer DBN "
              f"{W1.shape[0]}-{W1.shape[1]}-{config.n_hidden}: bound {bound.mean:.2f} "
              f"(conservative {conservative:.2f}); trained {train_seconds:.0f}s")
        return payload


if __name__ == "__main__":
    sys.exit(main() and 0)
