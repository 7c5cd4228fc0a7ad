"""Annealed Importance Sampling of an RBM's partition function.

Salakhutdinov & Murray (2008), "On the quantitative analysis of deep belief networks".
The annealing path runs from a base-rate model A (W = 0, visible biases ``b_A`` fitted to
the training pixel means, hidden biases 0) to the target RBM B through

    log p*_beta(v) = (1 - beta) b_A . v + beta b_B . v + sum_j softplus(beta (c_j + v W_j)),

so that Z_0 = prod_i (1 + exp(b_A,i)) * 2**H is known exactly.  Each of ``n_runs``
independent chains starts with an exact sample of A, accumulates the importance weight
``log w += log p*_k(v) - log p*_{k-1}(v)`` and moves by one Gibbs step that leaves
p_k invariant.  ``log Z_B = log Z_A + log mean(w)``.

Because log is concave, the estimate of log Z is biased *low* on average, which
*flatters* test log-probabilities; ``AISResult`` therefore carries the spread of the
weights (``log_z_lower``/``log_z_upper`` = log(Z_hat -/+ 3 std)).  The annealing loop is
a single ``tf.while_loop`` compiled by ``tf.function``; increments are accumulated in
float64 (differences of nearly equal softplus sums lose precision in float32).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf

from dbn import validation as check
from dbn.progress import Bar, chunks
from dbn.training.configs import AIS_RUNS
from dbn.ops import (bernoulli, check_rbm_parameters, free_energy, log_p_star,
                     logit_base_rate, path_statistics, tempered_gibbs_step)


def default_betas():
    """The 14,501 inverse temperatures of Salakhutdinov & Murray (2008): steps of
    1e-3 on [0, 0.5], 1e-4 on [0.5, 0.9], 1e-5 on [0.9, 1]."""
    return make_betas([(0.5, 1e-3), (0.9, 1e-4), (1.0, 1e-5)])


def make_betas(segments):
    """Piecewise-uniform schedule from 0 to 1: ``segments`` is a list of (end, step)
    pairs of finite numbers, ends rising to 1, steps > 0."""
    if isinstance(segments, (str, bytes)) or not hasattr(segments, "__iter__"):
        raise ValueError(f"segments={segments!r} must be a list of (end, step) pairs")
    betas, start = [0.0], 0.0
    for i, segment in enumerate(segments):
        if not isinstance(segment, (tuple, list)) or len(segment) != 2:
            raise ValueError(f"segments[{i}]={segment!r} must be a pair (end, step)")
        end = check.check_float(f"segments[{i}] end", segment[0])
        step = check.check_float(f"segments[{i}] step", segment[1])
        if not start < end <= 1.0 or step <= 0:
            raise ValueError(f"bad segment ({end}, {step}) after {start}: ends must rise to 1, steps > 0")
        n = int(round((end - start) / step))
        betas.extend(np.linspace(start, end, n + 1)[1:].tolist())
        start = end
    if betas[-1] != 1.0:
        raise ValueError(f"schedule must end at beta=1, ends at {betas[-1]}")
    return np.asarray(betas, dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class AISResult:
    """log Z estimate with its spread; ``log_weights`` has shape (n_runs,)."""

    log_z: float
    log_z_std: float  # std of the estimate in log space (delta method: std(w_mean)/w_mean)
    log_z_lower: float | None  # log(Z_hat - 3 std(Z_hat)); None when that is <= 0
    log_z_upper: float  # log(Z_hat + 3 std(Z_hat))
    log_z_base: float
    log_weights: np.ndarray
    n_betas: int

    def as_dict(self):
        return {
            "log_z": self.log_z,
            "log_z_std": self.log_z_std,
            "log_z_lower": self.log_z_lower,
            "log_z_upper": self.log_z_upper,
            "log_z_base": self.log_z_base,
            "runs": int(self.log_weights.shape[0]),
            "betas": self.n_betas,
        }


def ais_log_partition(W, visible_bias, hidden_bias, *, base_data=None, base_visible_bias=None,
                      betas=None, n_runs=AIS_RUNS, seed=0, verbose=0):
    """Estimate log Z of an RBM by AIS.

    Parameters
    ----------
    W : array (D, H)
    visible_bias : array (D,)
    hidden_bias : array (H,)
    base_data : array (n, D), optional
        Training data whose pixel means define the base-rate model (recommended).
    base_visible_bias : array (D,), optional
        Base-model visible biases directly (zeros if neither is given).
    betas : array (K+1,), optional
        Increasing inverse temperatures from 0 to 1 (default: ``default_betas()``).
    n_runs : int
        Independent annealing runs M (>= 2).
    seed : int
        Seed of the stateless sampler (>= 0): the same seed gives the same estimate.
    verbose : {0, 1, 2}
        A progress bar over the temperatures (the estimate does not change).

    Raises
    ------
    ValueError
        Before any computation: parameters that are not finite or whose shapes do not
        match (``W`` (D, H), biases (D,) and (H,)), ``base_data`` that is empty, not
        (n, D) or not in [0, 1], both ``base_data`` and ``base_visible_bias`` given,
        ``betas`` not rising strictly from 0 to 1, ``n_runs`` < 2, a bad ``seed``.
    """
    W, visible_bias, hidden_bias = check_rbm_parameters(W, visible_bias, hidden_bias)
    D, H = W.shape
    base_visible_bias = base_rate_biases(base_data, base_visible_bias, W.shape)
    betas = default_betas() if betas is None else check_betas(betas)
    if not check._is_int(n_runs) or n_runs < 2:
        raise ValueError(f"n_runs={n_runs!r} must be >= 2 (the spread needs two runs), "
                         f"an integer{check._not_bool(n_runs)}")
    seed = check.check_seed("seed", seed)
    verbose = check.check_int("verbose", verbose, low=0, high=2)
    parameters = (tf.constant(W), tf.constant(np.asarray(visible_bias, np.float32)),
                  tf.constant(np.asarray(hidden_bias, np.float32)),
                  tf.constant(np.asarray(base_visible_bias, np.float32)))
    betas_t, key = tf.constant(betas), tf.constant([int(seed), 0], tf.int64)
    v = bernoulli(tf.sigmoid(parameters[3]), stateless_uniform(key, 0, 0, (int(n_runs), D)))
    log_w = tf.zeros([int(n_runs)], tf.float64)
    n_steps = len(betas) - 1
    bar = Bar(n_steps, verbose, f"AIS: {n_steps} temperatures x {n_runs} runs")
    for start, stop in chunks(n_steps, verbose):  # steps k = start + 1 .. stop
        v, log_w = _anneal(*parameters, betas_t, key, tf.constant(start + 1), tf.constant(stop), v, log_w)
        bar.update(stop)
    log_w = log_w.numpy()
    log_z_base = float(np.logaddexp(0.0, np.asarray(base_visible_bias, np.float64)).sum() + H * math.log(2.0))
    return summarize_log_weights(log_w, log_z_base, len(betas))


def base_rate_biases(base_data, base_visible_bias, shape):
    """The base-rate model's visible biases (D,) float32 for an RBM with ``W`` of
    ``shape`` (D, H): from the pixel means of ``base_data`` (n, D) in [0, 1], or
    ``base_visible_bias`` (D,) as given, or zeros; both given is an error."""
    D = shape[0]
    if base_data is not None and base_visible_bias is not None:
        raise ValueError("pass base_data or base_visible_bias, not both (base_data defines "
                         "the base-rate model's visible biases)")
    if base_data is not None:
        base_data = check.check_matrix("base_data", base_data, n_columns=D, allow_empty=False,
                                       columns_what="W has D =")
        return np.asarray(logit_base_rate(base_data), np.float32)
    if base_visible_bias is not None:
        base_visible_bias = check.check_values("base_visible_bias", base_visible_bias,
                                               low=None, high=None)
        if base_visible_bias.shape != (D,):
            raise ValueError(f"base_visible_bias has shape {base_visible_bias.shape}; "
                             f"allowed: ({D},) (W has shape {tuple(shape)})")
        return np.asarray(base_visible_bias, np.float32)
    return np.zeros(D, np.float32)


def check_betas(betas):
    """Inverse temperatures as float64 (K+1,): numbers rising strictly from 0 to 1 (no
    strings, bools or objects converted silently); else a ValueError."""
    try:
        raw = np.asarray(betas)
    except (TypeError, ValueError):
        raw = np.asarray([None])
    if raw.dtype.kind not in "iuf":
        raise ValueError(f"betas={betas!r}: betas must increase strictly from 0 to 1 "
                         "(at least 2 numbers)")
    betas = raw.astype(np.float64)
    if betas.ndim != 1 or len(betas) < 2 or betas[0] != 0.0 or betas[-1] != 1.0 or not (
            np.all(np.isfinite(betas)) and np.all(np.diff(betas) > 0)):
        raise ValueError("betas must increase strictly from 0 to 1 (at least 2 values)")
    return betas


def summarize_log_weights(log_w, log_z_base, n_betas):
    """Turn importance log-weights (M,) into an ``AISResult``; M >= 2, ``log_z_base``
    a finite number, ``n_betas`` an integer >= 2."""
    log_w = np.asarray(log_w, np.float64)
    if log_w.ndim != 1 or len(log_w) < 2:
        raise ValueError(f"log_w has shape {log_w.shape}; allowed: (M,) with M >= 2 runs")
    log_z_base = check.check_float("log_z_base", log_z_base)
    n_betas = check.check_int("n_betas", n_betas, low=2)
    if not np.all(np.isfinite(log_w)):
        raise FloatingPointError("AIS produced non-finite importance weights")
    top = log_w.max()
    w = np.exp(log_w - top)
    mean, sem = w.mean(), w.std(ddof=1) / math.sqrt(len(w))
    return AISResult(
        log_z=float(log_z_base + top + math.log(mean)),
        log_z_std=float(sem / mean),
        log_z_lower=float(log_z_base + top + math.log(mean - 3 * sem)) if mean > 3 * sem else None,
        log_z_upper=float(log_z_base + top + math.log(mean + 3 * sem)),
        log_z_base=log_z_base,
        log_weights=log_w,
        n_betas=int(n_betas),
    )


def stateless_uniform(seed, i, salt, shape):
    """Uniforms of ``shape`` keyed (seed[0], seed[1] + 3 i + salt): distinct for every
    seed, step and draw, so runs with consecutive seeds share no random numbers."""
    key = tf.stack([seed[0], seed[1] + 3 * tf.cast(i, tf.int64) + salt])
    return tf.random.stateless_uniform(shape, seed=key)


@tf.function(reduce_retracing=True)
def _anneal(W, b, c, b_base, betas, seed, first, last, v, log_w):
    """AIS steps k = first .. last (of 1 .. K) from the runs' states ``v`` and log
    weights ``log_w``: one compiled loop."""

    def body(k, v, log_w):  # k = first .. last
        beta_prev, beta = betas[k - 1], betas[k]
        vb, vb0, x32 = path_statistics(v, W, b, c, b_base)
        x = tf.cast(x32, tf.float64)
        log_w += log_p_star(vb, vb0, x, beta) - log_p_star(vb, vb0, x, beta_prev)
        # Gibbs step leaving p_beta invariant (harmless extra step after the last beta).
        v = tempered_gibbs_step(x32, beta, W, b, b_base, stateless_uniform(seed, k, 1, tf.shape(x32)),
                                stateless_uniform(seed, k, 2, tf.shape(v)))
        return k + 1, v, log_w

    _, v, log_w = tf.while_loop(lambda k, v, log_w: k <= last, body, (first, v, log_w))
    return v, log_w


def mean_log_probability(v, W, visible_bias, hidden_bias, log_z, *, batch_size=10_000):
    """Mean log p(v) = -F(v) - log Z in nats over the rows of v (n, D).

    ``v`` must be non-empty and binary (the model is over {0, 1}^D; grey levels have no
    probability), with D columns; the parameters finite with matching shapes; ``log_z``
    a finite number; ``batch_size`` an integer >= 1."""
    v = check_binary_data("v", v, W, visible_bias, hidden_bias)
    log_z = check.check_float("log_z", log_z)
    batch_size = check.check_int("batch_size", batch_size, low=1)
    total = 0.0
    for start in range(0, len(v), batch_size):
        fe = free_energy(tf.constant(v[start : start + batch_size]), W, visible_bias, hidden_bias)
        total += float(tf.reduce_sum(tf.cast(fe, tf.float64)))
    return -total / len(v) - float(log_z)


def check_binary_data(name, v, W, visible_bias, hidden_bias):
    """``v`` as a non-empty binary float32 matrix with the D columns of ``W`` (D, H)."""
    W = check_rbm_parameters(W, visible_bias, hidden_bias)[0]
    return check.check_matrix(name, v, n_columns=W.shape[0], binary=True, allow_empty=False,
                              columns_what="W has D =")


def evaluate_log_likelihood(W, visible_bias, hidden_bias, *, base_data, test_data,
                            train_data=None, n_runs=AIS_RUNS, betas=None, seed=0, verbose=0):
    """AIS log Z plus mean test (and train) log-probabilities in nats.

    ``test_data`` and ``train_data`` must be non-empty and binary with D columns,
    ``base_data`` non-empty in [0, 1]; everything is checked before the annealing.

    Returns a JSON-ready dict: the ``AISResult`` fields, ``test_log_prob`` and
    ``train_log_prob``, and ``test_log_prob_lower``/``_upper`` (the log-probability
    implied by log Z +/- 3 std; the *lower* one is the conservative figure).
    """
    check_binary_data("test_data", test_data, W, visible_bias, hidden_bias)
    if train_data is not None:
        check_binary_data("train_data", train_data, W, visible_bias, hidden_bias)
    if base_data is None:
        raise ValueError("base_data=None: evaluate_log_likelihood needs the training data "
                         "that defines the base-rate model")
    result = ais_log_partition(W, visible_bias, hidden_bias, base_data=base_data,
                               betas=betas, n_runs=n_runs, seed=seed, verbose=verbose)
    out = result.as_dict()
    neg_mean_fe = mean_log_probability(test_data, W, visible_bias, hidden_bias, 0.0)
    out["test_log_prob"] = neg_mean_fe - result.log_z
    out["test_log_prob_lower"] = neg_mean_fe - result.log_z_upper
    out["test_log_prob_upper"] = (
        None if result.log_z_lower is None else neg_mean_fe - result.log_z_lower
    )
    if train_data is not None:
        out["train_log_prob"] = mean_log_probability(
            train_data, W, visible_bias, hidden_bias, result.log_z
        )
    return out


summarize = summarize_log_weights  # former name, kept for one release
