"""2-D codes of MNIST (Hinton & Salakhutdinov 2006, Fig. 3): a 784-1000-500-250-2
autoencoder from a DBN against PCA's first two components, the same shape from random
sigmoid weights, and a random-init bottleneck autoencoder of leaky ReLU6 units (the seed
blog's model) trained with Adam.

The DBN's lower three layers are the ones autoencoder_mnist.py pretrains (shared cache);
the 250-2 top RBM has linear-Gaussian hidden units.  Every autoencoder is fine-tuned with
the same optimiser and epochs (--method, --epochs) on all 60,000 training images.  Each
map's number: the accuracy of a 10-nearest-neighbour vote of the training codes for each
test code.  Writes <out>/autoencoder_2d.json (knn_accuracy: dbn, pca, random_sigmoid,
leaky_relu6), autoencoder_2d.png (the four maps side by side) and
autoencoder_2d_digits.png (test digits placed at their DBN codes).

  python experiments/autoencoder_2d.py
  python experiments/autoencoder_2d.py --quick
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from dbn import options, provenance
from dbn import validation as check
from dbn.training import checkpoint
from dbn.training.configs import METHODS, MinimizeConfig


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=options.HelpFormatter)
    p.add_argument("--layers", type=int, nargs="+", default=[1000, 500, 250, 2],
                   help="hidden layer sizes; the last is the 2-D linear code")
    p.add_argument("--pretrain-epochs", type=int, default=50)
    p.add_argument("--method", choices=METHODS, default="adam")
    p.add_argument("--epochs", type=int, default=50, help="fine-tuning epochs of every autoencoder")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    p.add_argument("--knn", type=int, default=10, help="neighbours of the code-map score")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-train", type=int, default=None)
    p.add_argument("--out", default="results")
    p.add_argument("--checkpoint-dir", default=str(options.DEFAULT_CHECKPOINT_DIR))
    p.add_argument("--fresh", action="store_true")
    p.add_argument("--quick", action="store_true", help="tiny run: 2,000 images, small layers")
    args = options.parse_args(p, argv, {}, layers=[64, 32, 16, 2], pretrain_epochs=2, n_train=2000,
                              epochs=2)
    return options.checked(p, args, _check_values)


def _check_values(p, args):
    """The values argparse cannot check, before any work: a ValueError naming the option,
    or ``p.error``."""
    check.check_int("--epochs", args.epochs, low=1)
    check.check_int("--pretrain-epochs", args.pretrain_epochs, low=1)
    check.check_seed("--seed", args.seed)
    if args.n_train is not None:
        check.check_int("--n-train", args.n_train, low=100, high=60_000)
    # every training code is a neighbour candidate
    check.check_int("--knn", args.knn, low=1, high=args.n_train or 60_000)
    fine_tuning_config(args)  # --batch-size, --lr
    if args.layers[-1] != 2:
        p.error(f"--layers: the code layer must have 2 units (got {args.layers[-1]}); "
                "autoencoder_mnist.py trains other code sizes")
    from dbn.models.autoencoder import check_autoencoder_sizes
    check_autoencoder_sizes([784, *args.layers])


def fine_tuning_config(args):
    """The one ``MinimizeConfig`` every autoencoder of the script is fine-tuned with."""
    try:
        return MinimizeConfig(method=args.method, epochs=args.epochs, batch_size=args.batch_size,
                              learning_rate=args.lr)
    except ValueError as err:
        raise ValueError(f"--batch-size / --lr: {err}") from None


def main(argv=None):
    args = parse_args(argv)
    from dbn import plots
    from dbn.models.autoencoder import DeepAutoencoder, pca_squared_error
    from dbn.protocols.autoencoder import curve, finetune_run, knn_accuracy, pretrained_stack

    with options.all_images_session(args) as (started, commit, data):
        x_train, y_train, x_test, y_test = data.x_train, data.y_train, data.x_test, data.y_test
        sizes = [784, *args.layers]
        config = fine_tuning_config(args)
        timings, codes, errors, curves, train_codes = {}, {}, {}, {}, {}

        t0 = time.time()
        errors["pca"], codes["pca"], (mean, basis) = pca_squared_error(x_train, x_test, 2)
        train_codes["pca"] = (x_train - mean) @ basis.T
        timings["pca_seconds"] = time.time() - t0

        stack, bernoulli, code = pretrained_stack(x_train, sizes, epochs=args.pretrain_epochs, seed=args.seed,
                                       checkpoint_dir=args.checkpoint_dir, timings=timings)
        models = {
            "dbn": (DeepAutoencoder.from_dbn(stack), {"init": "dbn"}),
            "random_sigmoid": (DeepAutoencoder(sizes, init="glorot", seed=args.seed),
                               {"init": "glorot", "init_seed": args.seed}),
            "leaky_relu6": (DeepAutoencoder(sizes, activation="leaky_relu6", init="glorot", seed=args.seed),
                            {"init": "glorot", "activation": "leaky_relu6", "init_seed": args.seed}),
        }
        models["dbn"][1]["stack"] = checkpoint.fingerprint(*models["dbn"][0].get_weights())
        for name, (model, spec) in models.items():
            t0 = time.time()
            history = finetune_run(model, x_train, x_test, config, checkpoint_dir=args.checkpoint_dir,
                                   name=f"2d_{name}", seed=args.seed,
                                   spec={"what": "autoencoder_2d", **spec})
            timings[f"{name}_finetune_seconds"] = float(np.sum(history["seconds"]))
            curves[name] = curve(history)
            errors[name] = history["test_squared_error"][-1]
            codes[name], train_codes[name] = model.encode(x_test), model.encode(x_train)
        knn = {name: knn_accuracy(train_codes[name], y_train, codes[name], y_test, k=args.knn)
               for name in ("dbn", "pca", "random_sigmoid", "leaky_relu6")}
        out = Path(args.out)
        titles = {"dbn": "DBN autoencoder", "pca": "PCA (2 components)",
                  "random_sigmoid": "random sigmoid autoencoder", "leaky_relu6": "random leaky-ReLU6 autoencoder"}
        plots.code_maps({titles[k]: codes[k] for k in knn}, y_test, out / "autoencoder_2d.png",
                        scores={titles[k]: v for k, v in knn.items()})
        plots.digit_map(codes["dbn"], x_test, out / "autoencoder_2d_digits.png")
        payload = provenance.record(
            {**vars(args), "layer_sizes": sizes, "fine_tuning": config.to_dict(),
             "pretraining": {"bernoulli": bernoulli.to_dict(), "code": code.to_dict()},
             "data": {"train": len(x_train), "test": len(x_test)}},
            seed=args.seed, started=started, commit=commit,
            results={"knn_accuracy": knn, "knn_k": args.knn, "test_squared_error": errors,
                     "curves": curves, "timings": timings, "complete": True})
        provenance.write_json(out / "autoencoder_2d.json", payload)
        print("10-NN accuracy of the 2-D test codes: " + ", ".join(f"{k} {v:.2%}" for k, v in knn.items()))


if __name__ == "__main__":
    main()
