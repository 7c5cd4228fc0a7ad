"""Hinton & Salakhutdinov (2006): a 784-1000-500-250-30 deep autoencoder from a DBN,
fine-tuned by conjugate gradients, L-BFGS and Adam, against the same shape from random
weights and PCA.

1. Greedy pretraining on all 60,000 training images used as probabilities (grey levels):
   Bernoulli RBMs (lr 0.1, weight cost 2e-4, momentum 0.5 -> 0.9 after 5 epochs, CD-1,
   batch 100, 50 epochs: their rbm.m), the 30-unit top RBM with linear-Gaussian hidden
   units (lr 0.001: rbmhidlinear.m).  Cached per layer (shared with autoencoder_2d.py).
2. Unrolled and fine-tuned, once per optimiser from the same pretrained weights, on the
   cross-entropy summed over pixels: CG and L-BFGS (scipy, batches of 1,000, 3 line
   searches each: backprop.m) and Adam (batches of 100).  Fixed epoch counts, no early
   stopping; the test error is logged every epoch for the curves only (nothing is chosen
   on the test set).  With --validation N, the number of epochs is chosen instead: a
   first run trains on the other 60,000 - N images and stops after --patience epochs
   without a lower squared error on the N held-out ones; a second run from the same
   initial weights trains on all 60,000 for the epoch count of that run's lowest
   validation error and gives the reported test error.
3. The same shape from random (Glorot-uniform) weights, fine-tuned like the headline
   optimiser (--random-method), for each of --random-seeds.
4. PCA with 30 components (SVD of the centred training set): the check of the metric
   (the paper: 13.87).

Metric: the squared error summed over the 784 pixels, averaged over the 10,000 test
images.  Every fine-tuning run is a verified run directory, resumed after any
interruption.  Writes <out>/<name>.json (--result-name, default autoencoder_mnist; written
after every stage and, during a fine-tuning run, at most once a minute with its curve so
far; "complete" false until every run has finished), <name>30.npz (W0..W7, b0..b7 of the
headline model; the number is the code size), <name>_reconstructions.png and
<name>_curves.png (test error against wall time and against examples through forward and
backward passes, every run so far, redrawn with the JSON).

  python experiments/autoencoder_mnist.py                       # the full protocol (hours)
  python experiments/autoencoder_mnist.py --methods adam --random-seeds 0
  python experiments/autoencoder_mnist.py --quick               # tiny, seconds
  # the three optimisers from the same pretrained net, the paper's fixed epochs:
  python experiments/autoencoder_mnist.py --methods cg adam lbfgs --epochs 200 100 200 \
      --random-seeds --result-name autoencoder_optimizers
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from dbn import options, provenance
from dbn import validation as check
from dbn.training import checkpoint
from dbn.training.configs import METHODS, MINIMIZE_M_WOLFE, SCIPY_CG_WOLFE, MinimizeConfig

DEFAULT_EPOCHS = {"cg": 200, "lbfgs": 200, "adam": 200}
DEFAULT_BATCH = {"cg": 1000, "lbfgs": 1000, "adam": 100}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=options.HelpFormatter)
    p.add_argument("--layers", type=int, nargs="+", default=[1000, 500, 250, 30],
                   help="hidden layer sizes; the last is the linear code")
    p.add_argument("--pretrain-epochs", type=int, default=50)
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                   help="optimisers fine-tuning the pretrained net (each from the same weights)")
    p.add_argument("--headline", choices=METHODS, default="cg",
                   help="the optimiser whose model is reported as 'dbn' and exported")
    p.add_argument("--epochs", type=int, nargs="+", default=None,
                   help="fine-tuning epochs, one per --methods entry (default: 200 each)")
    p.add_argument("--adam-lr", type=float, default=1e-3)
    p.add_argument("--wolfe", type=float, nargs=2, default=list(SCIPY_CG_WOLFE), metavar=("C1", "C2"),
                   help="strong Wolfe constants of CG's line search (scipy's default; minimize.m, "
                        f"the paper's: {' '.join(map(str, MINIMIZE_M_WOLFE))})")
    p.add_argument("--validation", type=int, default=0,
                   help="hold out this many training images to choose the epoch count (0: the "
                        "paper's fixed --epochs on all images)")
    p.add_argument("--patience", type=int, default=10,
                   help="with --validation: stop the choosing run after this many epochs "
                        "without a lower validation error")
    p.add_argument("--random-seeds", type=int, nargs="*", default=[0, 1, 2])
    p.add_argument("--random-method", choices=METHODS, default=None,
                   help="optimiser of the random-init runs (default: --headline)")
    p.add_argument("--pca-components", type=int, default=None, help="default: the code size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-train", type=int, default=None, help="subset of the 60,000 training images")
    p.add_argument("--out", default="results")
    p.add_argument("--result-name", default="autoencoder_mnist",
                   help="write <out>/<name>.json and the figures and weights named after it")
    p.add_argument("--checkpoint-dir", default=str(options.DEFAULT_CHECKPOINT_DIR))
    p.add_argument("--fresh", action="store_true", help="discard cached layers and runs")
    p.add_argument("--quick", action="store_true", help="tiny run: 2,000 images, small layers")
    args = options.parse_args(p, argv, {}, layers=[64, 32, 16, 8], pretrain_epochs=2, n_train=2000,
                              epochs=None, random_seeds=[0], methods=["cg", "adam"])
    options.check_file_name(p, "--result-name", args.result_name)
    if args.quick and args.epochs is None:
        args.epochs = [2] * len(args.methods)
    if args.epochs is None:
        args.epochs = [DEFAULT_EPOCHS[m] for m in args.methods]
    if len(args.epochs) != len(args.methods):
        p.error(f"--epochs: {len(args.epochs)} values for {len(args.methods)} --methods")
    return options.checked(p, args, _check_values)


def _check_values(p, args):
    """The values argparse cannot check; a ValueError naming the option, or ``p.error``."""
    for e in args.epochs:
        check.check_int("--epochs", e, low=1)
    check.check_int("--pretrain-epochs", args.pretrain_epochs, low=1)
    check.check_float("--adam-lr", args.adam_lr, low=0.0, low_open=True)
    try:
        MinimizeConfig(method="cg", wolfe=tuple(args.wolfe))
    except ValueError as err:
        raise ValueError(f"--wolfe: {err}") from None
    check.check_seed("--seed", args.seed)
    check.check_int("--patience", args.patience, low=1)
    if args.n_train is not None:  # before --validation, whose bound it sets
        check.check_int("--n-train", args.n_train, low=100, high=60_000)
    check.check_int("--validation", args.validation, low=0, high=(args.n_train or 60_000) - 100)
    if args.quick and args.validation:
        args.validation = min(args.validation, 500)
    for s in args.random_seeds:
        check.check_seed("--random-seeds", s)
    if args.headline not in args.methods:
        args.headline = args.methods[0]
    args.random_method = args.random_method or args.headline
    if (tuple(args.wolfe) != SCIPY_CG_WOLFE and "cg" not in args.methods
            and not (args.random_seeds and args.random_method == "cg")):
        p.error(f"--wolfe {' '.join(map(str, args.wolfe))}: no run uses CG, the only optimiser "
                "with these line-search constants")
    from dbn.models.autoencoder import check_autoencoder_sizes
    check_autoencoder_sizes([784, *args.layers])
    if args.pca_components is None:
        args.pca_components = args.layers[-1]
    check.check_int("--pca-components", args.pca_components, low=1, high=784)


def method_config(args, method):
    epochs = args.epochs[args.methods.index(method)] if method in args.methods else DEFAULT_EPOCHS[method]
    if args.quick:
        epochs = min(epochs, 2)
    return MinimizeConfig(method=method, epochs=epochs, batch_size=DEFAULT_BATCH[method] if not args.quick else 500,
                          learning_rate=args.adam_lr,
                          **({"wolfe": tuple(args.wolfe)} if method == "cg" else {}))


PUBLISH_SECONDS = 60  # a fine-tuning run in progress rewrites the JSON and figure at most this often


def main(argv=None):
    args = parse_args(argv)
    from dbn import plots
    from dbn.models.autoencoder import DeepAutoencoder, pca_squared_error
    from dbn.protocols.autoencoder import best_epoch, curve, finetune_run, pretrained_stack

    with options.all_images_session(args) as (started, commit, data):
        x_train, x_test = data.x_train, data.x_test
        out = Path(args.out)
        sizes = [784, *args.layers]
        timings, results = {}, {"anchor": {"dbn": 3.00, "pca": 13.87, "logistic_pca": 8.01}}

        def write(complete):
            payload = provenance.record(
                {**vars(args), "layer_sizes": sizes, "pretraining": {"bernoulli": bernoulli.to_dict(),
                                                                     "code": code.to_dict()},
                 "fine_tuning": {m: method_config(args, m).to_dict() for m in args.methods},
                 "data": {"train": len(x_train), "test": len(x_test)}},
                seed=args.seed, started=started, commit=commit,
                results={**results, "timings": timings, "complete": complete})
            provenance.write_json(out / f"{args.result_name}.json", payload)
            if curves:  # the figure of every run (one in progress marked), redrawn with the JSON
                plots.curves_against_time(curves, out / f"{args.result_name}_curves.png",
                                          reference={"paper (CG, 200 epochs)": 3.00,
                                                     f"PCA {args.pca_components}": pca_error},
                                          work_key="gradient_examples")

        t0 = time.time()
        pca_error, _, _ = pca_squared_error(x_train, x_test, args.pca_components)
        timings["pca_seconds"] = time.time() - t0
        results["test_squared_error"] = {"pca": [pca_error], "dbn": [], "random": []}
        results["pca_components"] = args.pca_components

        stack, bernoulli, code = pretrained_stack(x_train, sizes, epochs=args.pretrain_epochs, seed=args.seed,
                                       checkpoint_dir=args.checkpoint_dir, timings=timings)
        pretrained = DeepAutoencoder.from_dbn(stack)
        results["pretrained_unrolled_test_squared_error"] = pretrained.squared_error(x_test)
        stack_key = checkpoint.fingerprint(*pretrained.get_weights())
        models, curves = {}, {}
        last_write = 0.0

        def publish(name, config, n):
            """``on_epoch`` of the run ``name``: its curve so far into the JSON and figure
            ("complete" false), at most every PUBLISH_SECONDS (a long run's partial result)."""
            def on_epoch(history):
                nonlocal last_write
                # replaced by the finished curve (no flag) when the run ends; a run resumed
                # after its last epoch is not "in progress" (early stopping may end a
                # choosing run before its planned epochs: "planned" is then an upper bound)
                done = len(history["loss"]) >= config.epochs
                curves[name] = {**curve(history, config, n),
                                **({} if done else {"in_progress": True, "planned_epochs": config.epochs})}
                if time.time() - last_write >= PUBLISH_SECONDS:
                    results["curves"] = curves
                    write(False)
                    last_write = time.time()
            return on_epoch
        if args.validation:  # a seeded split of the training images: fit / held out
            order = np.random.default_rng(0).permutation(len(x_train))
            x_fit, x_val = x_train[order[: -args.validation]], x_train[order[-args.validation:]]
            results["epoch_selection"] = {"validation_images": args.validation, "patience": args.patience}

        def fine_tune(make_model, config, name, spec):
            """The run of ``config`` (--validation 0), or the choosing run then the refit on
            every training image for its best epoch count; the trained model and history."""
            if not args.validation:
                model = make_model()
                return model, finetune_run(model, x_train, x_test, config, checkpoint_dir=args.checkpoint_dir,
                                           name=name, seed=args.seed, spec=spec,
                                           on_epoch=publish(name, config, len(x_train)))
            chooser = make_model()
            history = finetune_run(chooser, x_fit, x_test, config, checkpoint_dir=args.checkpoint_dir,
                                   name=f"{name}_choose", seed=args.seed, spec=spec, x_val=x_val,
                                   patience=args.patience, on_epoch=publish(f"{name}_choose", config, len(x_fit)))
            epochs = best_epoch(history)
            curves[f"{name}_choose"] = curve(history, config, len(x_fit))
            results["epoch_selection"][name] = {
                "chosen_epochs": epochs, "epochs_run": len(history["loss"]),
                "best_validation_squared_error": min(history["validation_squared_error"])}
            model, refit = make_model(), dataclasses.replace(config, epochs=epochs)
            return model, finetune_run(model, x_train, x_test, refit, checkpoint_dir=args.checkpoint_dir,
                                       name=f"{name}_refit", seed=args.seed, spec=spec,
                                       on_epoch=publish(name, refit, len(x_train)))

        for method in args.methods:
            model, history = fine_tune(lambda: DeepAutoencoder.from_dbn(stack), method_config(args, method),
                                       f"dbn_{method}",
                                       {"what": "autoencoder_finetune", "init": "dbn", "stack": stack_key})
            models[method], curves[f"dbn_{method}"] = model, curve(history, method_config(args, method),
                                                                   len(x_train))
            results.setdefault("by_optimizer", {})[method] = history["test_squared_error"][-1]
            results["curves"] = curves
            write(False)
        results["headline_optimizer"] = args.headline
        results["test_squared_error"]["dbn"] = [results["by_optimizer"][args.headline]]
        models[args.headline].export_npz(out / (f"{args.result_name}{sizes[-1]}.npz" if not args.quick
                                                else "autoencoder_quick.npz"))
        random_models = []
        for seed in args.random_seeds:
            model, history = fine_tune(lambda: DeepAutoencoder(sizes, init="glorot", seed=seed),
                                       method_config(args, args.random_method),
                                       f"random{seed}_{args.random_method}",
                                       {"what": "autoencoder_finetune", "init": "glorot", "init_seed": seed})
            curves[f"random{seed}_{args.random_method}"] = curve(history, method_config(args, args.random_method),
                                                                 len(x_train))
            results["test_squared_error"]["random"].append(history["test_squared_error"][-1])
            random_models.append(model)
            write(False)
        results["random_method"] = args.random_method
        # Figures: test digits and their reconstructions (the paper's Fig. 2), and the curves.
        idx = np.arange(10) * (len(x_test) // 10)
        rows = {"original": x_test[idx], f"DBN ({args.headline})": models[args.headline].reconstruct(x_test[idx])}
        if random_models:
            rows["random init"] = random_models[0].reconstruct(x_test[idx])
        _, _, (mean, basis) = pca_squared_error(x_train, x_test[idx], args.pca_components)
        rows[f"PCA ({args.pca_components})"] = np.clip((x_test[idx] - mean) @ basis.T @ basis + mean, 0, 1)
        plots.image_rows(rows, out / f"{args.result_name}_reconstructions.png")
        write(True)
        print(f"test squared error: DBN ({args.headline}) {results['test_squared_error']['dbn'][0]:.2f}, "
              f"random {results['test_squared_error']['random']}, PCA {pca_error:.2f}")


if __name__ == "__main__":
    main()
