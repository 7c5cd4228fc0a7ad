"""RBM features for scikit-learn's 8x8 digits: `dbn.sklearn.RBMTransformer` against
scikit-learn's own `BernoulliRBM`, each in the README's Pipeline + GridSearchCV.

The setting of scikit-learn's example "Restricted Boltzmann Machine features for digit
classification" (100 hidden units, 10 epochs, batch 10, a logistic regression on the
hidden probabilities): the 1,797 digits scaled to [0, 1], one stratified 70/30 split
(split seed 0, 540 test images), the learning rate chosen from {0.02, 0.06} by 2-fold
cross-validation on the training part, then the test accuracy of the refitted pipeline.
Both RBMs get the same data, grid, folds, classifier and `random_state` (one per seed).
Writes results/sklearn_digits.json: per seed and RBM, the test accuracy, the chosen rate
and the cross-validation score of each rate.

  python experiments/sklearn_digits.py --seeds 0 1 2
  python experiments/sklearn_digits.py --quick --out /tmp/q
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from dbn import options, provenance
from dbn import validation as check

LEARNING_RATES = (0.02, 0.06)


def pipelines(seed, *, epochs, n_components=100, batch_size=10):
    """``{"RBMTransformer": Pipeline, "BernoulliRBM": Pipeline}``: the same classifier behind
    each RBM, both at equal settings (hidden units, epochs, batch size, seed)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import BernoulliRBM
    from sklearn.pipeline import Pipeline

    from dbn.sklearn import RBMTransformer

    def with_classifier(rbm):
        return Pipeline([("rbm", rbm), ("logistic", LogisticRegression(C=100.0, max_iter=1000))])

    return {"RBMTransformer": with_classifier(RBMTransformer(n_components=n_components, epochs=epochs,
                                                             batch_size=batch_size, random_state=seed)),
            "BernoulliRBM": with_classifier(BernoulliRBM(n_components=n_components, n_iter=epochs,
                                                         batch_size=batch_size, random_state=seed))}


def run(seed, epochs, data):
    """Each RBM's grid search for ``seed``: test accuracy, chosen rate, CV score per rate."""
    from sklearn.model_selection import GridSearchCV

    x_train, x_test, y_train, y_test = data
    out = {}
    for name, pipeline in pipelines(seed, epochs=epochs).items():
        t0 = time.perf_counter()
        search = GridSearchCV(pipeline, {"rbm__learning_rate": list(LEARNING_RATES)}, cv=2)
        search.fit(x_train, y_train)
        out[name] = {"test_accuracy": float(search.score(x_test, y_test)),
                     "learning_rate": search.best_params_["rbm__learning_rate"],
                     "cv_accuracy": {str(lr): float(score) for lr, score in
                                     zip(search.cv_results_["param_rbm__learning_rate"],
                                         search.cv_results_["mean_test_score"])},
                     "seconds": time.perf_counter() - t0}
        print(f"seed {seed}: {name} test accuracy {out[name]['test_accuracy']:.4f} "
              f"(learning rate {out[name]['learning_rate']})", flush=True)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=options.HelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                   help="random_state of both RBMs, one grid search each")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--out", default="results")
    p.add_argument("--quick", action="store_true", help="1 epoch, one seed")
    args = options.parse_args(p, argv, {}, epochs=1, seeds=[0])
    check.check_int("--epochs", args.epochs, low=1)
    for seed in args.seeds:
        check.check_seed("--seeds", seed)
    if len(set(args.seeds)) != len(args.seeds):
        p.error(f"--seeds {' '.join(map(str, args.seeds))}: allowed: seeds without repeats")
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        p.error("needs scikit-learn: pip install dbn[sklearn]")
    started, commit = time.time(), provenance.git_commit()
    x, y = load_digits(return_X_y=True)  # 8x8 grey levels 0..16, shipped with scikit-learn
    data = train_test_split(x / 16.0, y, test_size=0.3, random_state=0, stratify=y)
    runs = {str(seed): run(seed, args.epochs, data) for seed in args.seeds}
    payload = provenance.record(
        {**vars(args), "learning_rates": list(LEARNING_RATES), "n_components": 100, "batch_size": 10,
         "classifier": "LogisticRegression(C=100.0, max_iter=1000)", "cv": 2,
         "split": {"test_size": 0.3, "random_state": 0, "stratify": True},
         "data": {"train": len(data[0]), "test": len(data[1])}},
        seed=args.seeds, started=started, commit=commit, results={"runs": runs, "complete": True})
    provenance.write_json(Path(args.out) / "sklearn_digits.json", payload)
    return payload


if __name__ == "__main__":
    sys.exit(main() and 0)
