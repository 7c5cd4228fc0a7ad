"""Logistic PCA with 30 components on MNIST: the 2006 paper's second linear baseline
(Hinton & Salakhutdinov, *Science* 313:504: 8.01 against the deep autoencoder's 3.00 and
PCA's 13.87).

Grey levels used as Bernoulli probabilities, as for the autoencoder.  The basis, bias and
training codes maximise the likelihood of the 60,000 training images (L-BFGS, started from
PCA of the clipped logits); each test image's code then maximises its own likelihood with
the basis and bias fixed (``dbn.models.autoencoder.logistic_pca``).  Metric: the squared
error of each test image against its probabilities, summed over the 784 pixels, averaged
over the 10,000 test images; PCA with the same number of components is computed beside it
(the check of the metric).  Deterministic: no seed.  Writes <out>/logistic_pca.json.

  python experiments/logistic_pca.py            # all 60,000 training images (minutes)
  python experiments/logistic_pca.py --quick    # 2,000 images, seconds
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from dbn import options, provenance
from dbn import validation as check


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=options.HelpFormatter)
    p.add_argument("--components", type=int, default=30)
    p.add_argument("--max-iter", type=int, default=1000, help="L-BFGS iterations of the fit")
    p.add_argument("--test-max-iter", type=int, default=1000,
                   help="L-BFGS iterations of the test codes")
    p.add_argument("--n-train", type=int, default=None, help="subset of the 60,000 training images")
    p.add_argument("--out", default="results")
    p.add_argument("--quick", action="store_true", help="2,000 training and test images, 50 iterations")
    args = options.parse_args(p, argv, {}, n_train=2000, max_iter=50, test_max_iter=50)
    try:  # one line and exit status 2, as argparse does
        check.check_int("--components", args.components, low=1, high=784)
        check.check_int("--max-iter", args.max_iter, low=1)
        check.check_int("--test-max-iter", args.test_max_iter, low=1)
        if args.n_train is not None:
            check.check_int("--n-train", args.n_train, low=args.components, high=60_000)
    except ValueError as err:
        p.error(str(err))
    return args


def main(argv=None):
    args = parse_args(argv)
    from dbn.models.autoencoder import logistic_pca, pca_squared_error

    with options.all_images_session(args) as (started, commit, data):
        x_test = data.x_test[:2000] if args.quick else data.x_test
        t0 = time.time()
        pca_error, _, _ = pca_squared_error(data.x_train, x_test, args.components)
        error, _, _, info = logistic_pca(data.x_train, x_test, args.components, max_iter=args.max_iter,
                                         test_max_iter=args.test_max_iter)
        results = {"test_squared_error": {"logistic_pca": error, "pca": pca_error},
                   "anchor": {"logistic_pca": 8.01, "pca": 13.87, "dbn_autoencoder": 3.00},
                   "optimisation": info, "seconds": time.time() - t0, "complete": True}
        payload = provenance.record({**vars(args), "data": {"train": len(data.x_train), "test": len(x_test)}},
                                    seed=None, started=started, commit=commit, results=results)
        provenance.write_json(Path(args.out) / "logistic_pca.json", payload)
        print(f"test squared error, {args.components} components: logistic PCA {error:.2f} "
              f"(paper 8.01), PCA {pca_error:.2f} (paper 13.87); fit: {info['fit']['message']}, "
              f"test codes: {info['test']['message']}")
        return payload


if __name__ == "__main__":
    main()
