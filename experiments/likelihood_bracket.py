"""Forward AIS and RAISE side by side: the test log-probability of a trained RBM from
both sides.

Forward AIS (Salakhutdinov & Murray 2008) under-estimates log Z on average, so the test
log-probability it implies is biased up (it flatters the model). RAISE (Burda, Grosse &
Salakhutdinov 2015) gives, for each test image, a stochastic lower bound on the
log-probability of the annealing model, which approaches the RBM as the number of
temperatures grows: the conservative side. Both use the same base-rate model (training
pixel means), the same temperatures and the same tempered Gibbs sweeps.

For each model (results/<name>.npz + .json written by experiments/train_rbm.py) the data
are rebuilt exactly as train_rbm built them (split, one fixed stochastic binarization
per split, seeds seed+1 / seed+3), forward AIS is rerun with the recorded number of runs
and seed, and RAISE runs on a fixed random subset of the test images (the cost is one
annealing chain per image and run). Forward AIS is reported on the same subset too.
Writes results/<name>.json (default likelihood_bracket).

  python experiments/likelihood_bracket.py                     # rbm_cd1 and rbm_best
  python experiments/likelihood_bracket.py --models rbm_best rbm_pcd1 rbm_fpcd1 rbm_pt10 \
      --name likelihood_samplers                              # the samplers at equal time
  python experiments/likelihood_bracket.py --quick --models-dir /tmp/q --out /tmp/q
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from dbn import data as datasets
from dbn import options, provenance
from dbn import validation as check


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=options.HelpFormatter)
    p.add_argument("--models", nargs="+", default=["rbm_cd1", "rbm_best"],
                   help="names of <models-dir>/<name>.npz and .json written by train_rbm.py")
    p.add_argument("--models-dir", default="results")
    p.add_argument("--raise-examples", type=int, default=1000,
                   help="test images (a fixed random subset) RAISE estimates")
    p.add_argument("--raise-runs", type=int, default=1, help="reverse chains per test image")
    p.add_argument("--betas", choices=["full", "coarse"], default="full",
                   help="full: the 14,501 temperatures of Salakhutdinov & Murray; coarse: 1,001")
    p.add_argument("--seed", type=int, default=0, help="seed of RAISE's sampler and the subset")
    p.add_argument("--out", default="results")
    p.add_argument("--name", default="likelihood_bracket", help="writes <out>/<name>.json")
    p.add_argument("--quick", action="store_true",
                   help="100 test images, 1,001 temperatures (CI; models from --models-dir)")
    args = options.parse_args(p, argv, {}, raise_examples=100, betas="coarse", models=["rbm_cd1"])
    check.check_int("--raise-examples", args.raise_examples, low=2)
    check.check_int("--raise-runs", args.raise_runs, low=1)
    check.check_seed("--seed", args.seed)
    options.check_file_name(p, "--name", args.name)
    for name in args.models:
        for suffix in (".npz", ".json"):
            if not (Path(args.models_dir) / f"{name}{suffix}").is_file():
                p.error(f"--models {name}: {Path(args.models_dir) / (name + suffix)} does not exist "
                        "(train it with experiments/train_rbm.py)")
    return args


def bracket(name, args, betas):
    from dbn.estimation import ais, reverse
    from dbn.ops import free_energy

    folder = Path(args.models_dir)
    recorded = json.loads((folder / f"{name}.json").read_text())
    with np.load(folder / f"{name}.npz") as f:
        W, b, c = f["W"], f["visible_bias"], f["hidden_bias"]
    config = recorded["config"]  # the data exactly as train_rbm.py built them for this run
    splits = datasets.likelihood_splits(seed=config["seed"], validation_size=config["validation_size"],
                                        n_train=config["n_train"])
    train_fixed, test_fixed = splits.train, splits.test
    runs, seed = recorded["ais"]["runs"], recorded["config"]["seed"]
    t0 = time.time()
    forward = ais.evaluate_log_likelihood(W, b, c, base_data=train_fixed, test_data=test_fixed,
                                          n_runs=runs, betas=betas, seed=seed)
    forward_seconds = time.time() - t0
    subset = np.sort(np.random.default_rng(args.seed).choice(
        len(test_fixed), size=min(args.raise_examples, len(test_fixed)), replace=False))
    t0 = time.time()
    estimate = reverse.raise_log_probability(W, b, c, test_fixed[subset], base_data=train_fixed,
                                             betas=betas, n_runs=args.raise_runs, seed=args.seed)
    raise_seconds = time.time() - t0
    forward_subset = ais.mean_log_probability(test_fixed[subset], W, b, c, forward["log_z"])
    # Per image, forward AIS's log p is -F(v) - log Z: the paired differences with RAISE
    # give the gap's standard error without the spread between images.
    per_image = -np.asarray(free_energy(test_fixed[subset], W, b, c), np.float64) - forward["log_z"]
    differences = per_image - estimate.log_prob
    forward_subset_lower = ais.mean_log_probability(test_fixed[subset], W, b, c, forward["log_z_upper"])
    return {
        "forward_ais": {**forward, "test_log_prob_subset": forward_subset,
                        "test_log_prob_subset_lower": forward_subset_lower,
                        "recorded_log_z": recorded["ais"]["log_z"], "seconds": forward_seconds},
        "raise": {**estimate.as_dict(), "seconds": raise_seconds,
                  "subset_seed": args.seed, "subset_size": int(len(subset))},
        "gap_subset": forward_subset - estimate.mean,
        "gap_subset_sem": float(differences.std(ddof=1) / np.sqrt(len(differences))),
        "model_commit": recorded["git_commit"],
    }


def main(argv=None):
    args = parse_args(argv)
    from dbn.estimation import ais  # TensorFlow: after the options are parsed (instant --help)

    with options.session(args):
        started, commit = time.time(), provenance.git_commit()
        betas = ais.default_betas() if args.betas == "full" else ais.make_betas([(1.0, 1e-3)])
        results = {}
        for name in args.models:
            results[name] = r = bracket(name, args, betas)
            print(f"{name}: forward AIS {r['forward_ais']['test_log_prob']:.2f} nats (all test), "
                  f"{r['forward_ais']['test_log_prob_subset']:.2f} on the {r['raise']['subset_size']} "
                  f"images where RAISE gives {r['raise']['raise_log_prob']:.2f} "
                  f"± {r['raise']['raise_log_prob_sem']:.2f}; "
                  f"{r['forward_ais']['seconds']:.0f}s + {r['raise']['seconds']:.0f}s", flush=True)
        payload = provenance.record(vars(args), seed=args.seed, started=started, commit=commit,
                                    results={"models": results, "n_betas": len(betas)})
        provenance.write_json(Path(args.out) / f"{args.name}.json", payload)
        return payload


if __name__ == "__main__":
    sys.exit(main() and 0)
