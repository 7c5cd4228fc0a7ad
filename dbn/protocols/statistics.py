"""Statistics of a pretrained-vs-random comparison: per-initialisation means over seeds,
the runs that failed to train, Welch t-tests and the 95% confidence interval of each
difference.  Free of TensorFlow (numpy and scipy only), so scripts and tables use it
without paying for the import."""

from __future__ import annotations

import numpy as np

from dbn import validation as check

# A network whose test error is above this did not train (chance is 0.9 on MNIST): it is
# counted apart (``n_failed``, ``mean_trained``) beside the mean over every seed.
FAILED_ERROR = 0.5


def summarize_errors(errors_by_init, reference="pretrained"):
    """Per-init mean/std of test errors and Welch t-tests of ``reference`` vs each other,
    with the 95% confidence interval of each difference of means (Welch-Satterthwaite
    degrees of freedom) and the runs that failed to train (test error > FAILED_ERROR)
    counted beside the mean.

    ``errors_by_init`` maps init -> non-empty list of per-seed test errors (finite, in
    [0, 1]).
    """
    if not isinstance(errors_by_init, dict):
        raise ValueError(f"errors_by_init={errors_by_init!r} must be a dict init -> errors")
    for init, errors in errors_by_init.items():
        if isinstance(errors, (str, bytes)) or not hasattr(errors, "__len__") or not len(errors):
            raise ValueError(f"errors_by_init[{init!r}]={errors!r} must be a non-empty list of "
                             "test errors")
        for i, error in enumerate(errors):
            check.check_float(f"errors_by_init[{init!r}][{i}]", error, low=0.0, high=1.0)
    out = {}
    for init, errors in errors_by_init.items():
        errors = np.asarray(errors, np.float64)
        trained = errors[errors <= FAILED_ERROR]
        out[init] = {
            "test_error": errors.tolist(),
            "mean": float(errors.mean()),
            "std": float(errors.std(ddof=1)) if len(errors) > 1 else None,
            "n_seeds": int(len(errors)),
            "n_failed": int(len(errors) - len(trained)),
            "mean_trained": float(trained.mean()) if len(trained) else None,
        }
    from scipy import stats  # half a second to import: only when there is something to test

    tests = {}
    for init, errors in errors_by_init.items():
        if init == reference or reference not in errors_by_init:
            continue
        a, b = np.asarray(errors_by_init[reference]), np.asarray(errors)
        if len(a) > 1 and len(b) > 1 and (a.std() > 0 or b.std() > 0):
            t = stats.ttest_ind(a, b, equal_var=False)
            ci = t.confidence_interval(0.95)
            tests[f"{reference}_vs_{init}"] = {"t": float(t.statistic), "p_value": float(t.pvalue),
                                               "mean_difference": float(a.mean() - b.mean()),
                                               "ci95": [float(ci.low), float(ci.high)],
                                               "df": float(t.df)}
        else:
            tests[f"{reference}_vs_{init}"] = {"t": None, "p_value": None,
                                               "mean_difference": float(a.mean() - b.mean()),
                                               "note": "needs >= 2 seeds with non-zero spread"}
    return out, tests
