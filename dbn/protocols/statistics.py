"""Statistics of a pretrained-vs-random comparison: per-initialisation means over seeds,
the runs that failed to train, Welch t-tests and the 95% confidence interval of each
difference; and the choice of a learning rate from validation errors (``best_rate``,
``rate_beyond_edge``, ``extend_past_edge``).  Free of TensorFlow (numpy and scipy only), so scripts and tables use it
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
    [0, 1]).  Returns ``(per_init, tests)``; ``tests["<reference>_vs_<init>"]`` holds
    ``mean_difference`` (reference minus init), Welch's ``t``, ``p_value``, ``ci95`` and
    ``df``, and ``runs``: ``"all"``, or ``"trained"`` when a run of either side failed:
    then the Welch test and ``mean_difference`` are over the runs that trained, and the
    entry adds ``mean_difference_all_runs``, ``n_failed`` and ``n_seeds`` (reference,
    init), ``fisher_p`` (Fisher's exact test: do the two fail equally often?) and
    ``rank_sum_p`` (Mann-Whitney U over every run, two-sided).
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
        a, b = np.asarray(errors_by_init[reference], np.float64), np.asarray(errors, np.float64)
        failed_a, failed_b = int(np.sum(a > FAILED_ERROR)), int(np.sum(b > FAILED_ERROR))
        test = {"mean_difference": float(a.mean() - b.mean()), "runs": "all"}
        if failed_a or failed_b:
            # A sample of trained and failed runs is two clusters, not a normal sample: a
            # Welch interval over it can pass -100 points.  The t-test is over the runs
            # that trained; whether runs fail is Fisher's exact test on the counts; the
            # rank-sum test compares all runs without assuming a shape (a failure ranks
            # as the worst error).
            test.update(runs="trained", mean_difference_all_runs=test["mean_difference"],
                        n_failed=[failed_a, failed_b], n_seeds=[len(a), len(b)],
                        fisher_p=float(stats.fisher_exact([[failed_a, len(a) - failed_a],
                                                           [failed_b, len(b) - failed_b]]).pvalue),
                        rank_sum_p=float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue))
            a, b = a[a <= FAILED_ERROR], b[b <= FAILED_ERROR]
            test["mean_difference"] = float(a.mean() - b.mean()) if len(a) and len(b) else None
        if len(a) > 1 and len(b) > 1 and (a.std() > 0 or b.std() > 0):
            t = stats.ttest_ind(a, b, equal_var=False)
            ci = t.confidence_interval(0.95)
            test.update(t=float(t.statistic), p_value=float(t.pvalue), ci95=[float(ci.low), float(ci.high)],
                        df=float(t.df))
        else:
            runs = "runs" if test["runs"] == "all" else "trained runs"
            test.update(t=None, p_value=None, note=f"the Welch test needs >= 2 {runs} per initialisation "
                                                   "with non-zero spread")
        tests[f"{reference}_vs_{init}"] = test
    return out, tests


def budget_key(label_budget):
    """A label budget (an int, or None for every label) as the results' key: "100", "all"."""
    return str(label_budget or "all")


def setting_label(setting):
    """A dropout setting (a rate, or a pair of rates) as the tuning tables' key: "0.5",
    "0.2,0.5", "0" (each rate's shortest repr, so two different settings never share one)."""
    def rate(value):
        text = repr(float(value))
        return text[:-2] if text.endswith(".0") else text

    return ",".join(map(rate, setting)) if isinstance(setting, (list, tuple)) else rate(setting)


def best_rate(val_error):
    """The rate of lowest validation error in ``{rate (str): error}`` (ties: the first)."""
    return float(min(val_error, key=lambda lr: (val_error[lr], list(val_error).index(lr))))


def rate_beyond_edge(val_error):
    """The next rate to try when the grid's largest or smallest rate of ``{rate (str):
    error}`` has a validation error strictly below every other rate's (the edge times its
    ratio to its neighbour, one significant digit), else None: a tie with a rate inside
    the grid, or a flat grid, says nothing about the rates beyond."""
    rates, best = sorted(float(lr) for lr in val_error), best_rate(val_error)
    if len(rates) < 2 or best not in (rates[0], rates[-1]):
        return None
    errors = {float(lr): e for lr, e in val_error.items()}
    if any(errors[lr] <= errors[best] for lr in rates if lr != best):
        return None
    beyond = best * best / (rates[-2] if best == rates[-1] else rates[1])
    rounded = float(f"{beyond:.0e}")
    # (A grid finer than one digit, 1e-3 1.1e-3, would round back onto its own edge.)
    return rounded if (rounded > best if best == rates[-1] else rounded < best) else beyond


def extend_past_edge(val_error, extend, run):
    """Grow the grid ``{rate (str): error}`` past a winning edge (``rate_beyond_edge``) up
    to ``extend`` times; ``run(rate)`` trains at a new rate and enters its validation error
    in ``val_error``."""
    for _ in range(extend):
        beyond = rate_beyond_edge(val_error)
        if beyond is None:
            return
        run(beyond)
