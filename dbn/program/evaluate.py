"""``dbn evaluate``: the test-set figures of a model directory."""

from __future__ import annotations

import time

from dbn import validation as check
from dbn.program import common, modeldir

DESCRIPTION = """\
Score a model directory on the 10,000 MNIST test images, print the figures and, with
--json, write them (with the manifest's provenance) to a JSON file:

  classifier (dbn finetune)   test_error: the fraction of test images misclassified
  a single RBM (--layers N)   ais: the test (and training) log-probability in nats, by
                              annealed importance sampling of log Z (Salakhutdinov &
                              Murray 2008) on one fixed stochastic binarization of each
                              split (the likelihood papers' protocol, seeds 1/2/3)
  generative DBN              test_error of its generative classifier (deterministic
                              up-pass, then the label of lowest free energy in the top RBM)

A multi-layer DBN that was never fine-tuned has no figure here: run dbn finetune first.

  dbn evaluate runs/x --json runs/x/evaluation.json
"""


def add_parser(subparsers):
    p = subparsers.add_parser("evaluate", help="test error / AIS log-likelihood of a model directory",
                              description=DESCRIPTION)
    p.add_argument("directory", help="a model directory written by dbn pretrain")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the figures here")
    p.add_argument("--force", action="store_true", help="overwrite --json if it exists")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    g = p.add_argument_group("AIS (a single RBM)")
    g.add_argument("--ais-runs", type=int, default=100, help="independent annealing runs")
    g.add_argument("--ais-betas", choices=["full", "coarse"], default="full",
                   help="full: the 14,501 temperatures of Salakhutdinov & Murray; coarse: 1,001")
    g.add_argument("--seed", type=int, default=0, help="seed of the annealing runs")
    return p


def prepare(args):
    ais_runs = common.checked(check.check_int, "--ais-runs", args.ais_runs, low=2)
    seed = common.checked(check.check_seed, "--seed", args.seed)
    out = None if args.json is None else common.output_file(args.json, option="--json",
                                                            force=args.force)
    manifest = modeldir.open_model(args.directory, command="dbn evaluate")
    kind, holds = modeldir.kind(manifest), manifest["holds"]
    if kind == "dbn" and "classifier" not in holds:
        raise modeldir.ModelDirError(
            f"{args.directory} holds {modeldir.describe(manifest)} that was never fine-tuned: "
            f"nothing to evaluate; run dbn finetune {args.directory} first")
    data = common.load_data({k: manifest["data"][k] for k in ("source", "name", "split_seed",
                                                              "n_train", "validation_size")})
    common.import_tensorflow()
    models = {}
    if "classifier" in holds:
        models["classifier"] = modeldir.load_classifier(args.directory, manifest)
    if kind == "rbm":
        models["rbm"] = modeldir.load_dbn(args.directory, manifest).rbms[0]
    if kind == "generative":
        models["generative"] = modeldir.load_generative(args.directory, manifest)
    return {"args": args, "ais_runs": ais_runs, "seed": seed, "out": out, "manifest": manifest,
            "data": data, "models": models}


def evaluate(plan):
    """The figures of ``plan`` (a dict, JSON-ready)."""
    from dbn.data.splits import likelihood_splits
    from dbn.estimation import ais
    from dbn.training.finetune import error_rate

    data, models, manifest = plan["data"], plan["models"], plan["manifest"]
    results = {"model": modeldir.describe(manifest), "holds": manifest["holds"],
               "test_images": len(data.x_test)}
    if "classifier" in models:
        results["test_error"] = error_rate(models["classifier"], data.x_test, data.y_test)
    if "generative" in models:
        results["test_error"] = models["generative"].error_rate(data.x_test, data.y_test)
    if "rbm" in models:
        rbm, settings, t0 = models["rbm"], manifest["data"], time.time()
        fixed = likelihood_splits(seed=settings["split_seed"], n_train=settings["n_train"],
                                  validation_size=settings["validation_size"])
        betas = None if plan["args"].ais_betas == "full" else ais.make_betas([(1.0, 1e-3)])
        results["ais"] = ais.evaluate_log_likelihood(
            rbm.W.numpy(), rbm.visible_bias.numpy(), rbm.hidden_bias.numpy(),
            base_data=fixed.train, test_data=fixed.test, train_data=fixed.train,
            n_runs=plan["ais_runs"], betas=betas, seed=plan["seed"],
            verbose=common.progress_verbosity(plan["args"].quiet))
        results["ais"]["seconds"] = time.time() - t0
    return results


def run(plan):
    from dbn import provenance

    started = time.time()
    results = evaluate(plan)
    args = plan["args"]
    if "test_error" in results:
        print(f"test error: {results['test_error']:.4f} ({results['test_images']} test images, "
              f"{'generative classifier' if 'generative' in plan['models'] else 'classifier'} of "
              f"{results['model']})")
    if "ais" in results:
        a = results["ais"]
        print(f"test log p: {a['test_log_prob']:.2f} nats (conservative {a['test_log_prob_lower']:.2f}), "
              f"train {a['train_log_prob']:.2f}; AIS log Z {a['log_z']:.2f} +/- {a['log_z_std']:.3f} "
              f"({a['runs']} runs, {a['betas']} temperatures)")
    if plan["out"] is not None:
        config = {"command": ["dbn", *args.argv], "directory": str(args.directory),
                  "ais_runs": plan["ais_runs"], "ais_betas": args.ais_betas,
                  "manifest": plan["manifest"]}
        provenance.write_json(plan["out"], provenance.record(config, seed=plan["seed"],
                                                             started=started, results=results))
        print(f"wrote {plan['out']}")
    return 0
