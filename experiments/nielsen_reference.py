"""An independent check of the Nielsen rows of baselines.py: his chapter-1 network
(network.py: sigmoid layers, N(0, 1) weights and biases, quadratic cost, mini-batch SGD
with eta / batch size) written again in plain numpy, float64, on the same split.

It shares no code with Keras or with baselines.py, so if both give the same validation
errors the Keras recipe is Nielsen's algorithm, and a gap to his published accuracies is
not a bug of ours. Writes results/nielsen_reference.json (validation error per epoch).

  python experiments/nielsen_reference.py --hidden 100 --epochs 30 --seeds 0 1 2
  python experiments/nielsen_reference.py --quick --out /tmp/q
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from dbn import data as datasets
from dbn import options, provenance
from dbn import validation as check


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def train(x, y, x_val, y_val, *, hidden, epochs, eta, batch_size, seed):
    """Nielsen's SGD (network.py), vectorised over the mini-batch; validation error per epoch."""
    rng = np.random.default_rng(seed)
    sizes = [x.shape[1], hidden, 10]
    biases = [rng.standard_normal(n) for n in sizes[1:]]
    weights = [rng.standard_normal((a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
    targets = np.eye(10)[y]
    errors = []
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch_size):
            i = order[start : start + batch_size]
            a0 = x[i]
            a1 = sigmoid(a0 @ weights[0] + biases[0])
            a2 = sigmoid(a1 @ weights[1] + biases[1])
            d2 = (a2 - targets[i]) * a2 * (1 - a2)  # quadratic cost, sigmoid output
            d1 = (d2 @ weights[1].T) * a1 * (1 - a1)
            step = eta / len(i)
            weights[1] -= step * a1.T @ d2
            biases[1] -= step * d2.sum(0)
            weights[0] -= step * a0.T @ d1
            biases[0] -= step * d1.sum(0)
        out = sigmoid(sigmoid(x_val @ weights[0] + biases[0]) @ weights[1] + biases[1])
        errors.append(float(np.mean(np.argmax(out, 1) != y_val)))
    return errors


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=options.HelpFormatter)
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--eta", type=float, default=3.0)
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--n-train", type=int, default=None)
    p.add_argument("--out", default="results")
    p.add_argument("--quick", action="store_true", help="2,000 images, 2 epochs, one seed")
    args = options.parse_args(p, argv, {}, n_train=2000, epochs=2, seeds=[0])
    for name in ("hidden", "epochs", "batch_size"):
        check.check_int(f"--{name.replace('_', '-')}", getattr(args, name), low=1)
    check.check_float("--eta", args.eta, low=0.0, low_open=True)
    for seed in args.seeds:
        check.check_seed("--seeds", seed)
    started, commit = time.time(), provenance.git_commit()
    data = datasets.load(seed=0, n_train=args.n_train)
    x, x_val = data.x_train.astype(np.float64), data.x_val.astype(np.float64)
    curves = {}
    for seed in args.seeds:
        curves[str(seed)] = train(x, data.y_train, x_val, data.y_val, hidden=args.hidden, epochs=args.epochs,
                                  eta=args.eta, batch_size=args.batch_size, seed=seed)
        print(f"seed {seed}: validation error {curves[str(seed)][-1]:.4f} after {args.epochs} epochs, "
              f"best {min(curves[str(seed)]):.4f}", flush=True)
    payload = provenance.record(vars(args), seed=args.seeds, started=started, commit=commit,
                                results={"val_error_curves": curves,
                                         "best_val_error": {s: min(c) for s, c in curves.items()}})
    provenance.write_json(Path(args.out) / "nielsen_reference.json", payload)
    return payload


if __name__ == "__main__":
    sys.exit(main() and 0)
