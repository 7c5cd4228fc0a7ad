"""Pretrained-vs-random benchmark shared by the DBN experiments.

Protocol (identical for every initialisation, so that only the initial weights differ):
the DBN is pretrained, without labels, on all training images (the training *and*
validation splits: labels are never used); each classifier is fine-tuned by
``dbn.training.finetune.fine_tune`` on the labelled training examples (optionally a balanced
label budget), early-stopped on the validation split, and its test error is computed
once, at the end.  A pretrained stack is checkpointed per (architecture, settings, seed)
in a layer cache under ``checkpoint_root/pretrain`` shared by every experiment (stacks
with the same lower layers, settings, seed and data reuse them).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from pathlib import Path

import keras
import numpy as np

from dbn import validation as check
from dbn.data import pipeline, splits
from dbn.models.classifier import INITS, build_classifier, check_layer_sizes, dropout_key, dropout_rates
from dbn.models.dbn import DBN, check_layer_configs
from dbn.training.checkpoint import (CheckpointError, CheckpointMismatchError, RunDir, fingerprint,
                                     open_existing, open_for, run_path, warn_legacy)
from dbn.protocols.statistics import (FAILED_ERROR, best_rate, budget_key,  # noqa: F401 (public here too)
                                      extend_past_edge, rate_beyond_edge, setting_label,
                                      summarize_errors)
from dbn.training.configs import RESULT_KEYS, FineTuneConfig
from dbn.training.finetune import error_rate, fine_tune, fit_schedule, refit_schedule

log = logging.getLogger("dbn")


def pretrained_dbn(x_unlabelled, *, layer_sizes, layer_configs, seed, checkpoint_root, verbose=2):
    """Pretrain (or resume / reload from the shared layer cache) a DBN; returns it and
    per-layer wall times (near zero for cached layers)."""
    model = DBN(layer_sizes, layer_configs=layer_configs, seed=seed)
    timings = {}
    model.pretrain(x_unlabelled, checkpoint_dir=Path(checkpoint_root) / "pretrain",
                   verbose=verbose, timings=timings)
    return model, timings


def _check_run_arguments(data, *, init, dbn_model, finetune_config, seed, dropout):
    """The arguments shared by ``run_one`` and ``refit_one``, checked before any work."""
    if not isinstance(data, splits.Splits):
        raise ValueError(f"data must be a dbn.data.Splits (dbn.data.load(...)); got "
                         f"{type(data).__name__}")
    init = check.check_choice("init", init, INITS)
    if init == "pretrained" and not (isinstance(dbn_model, DBN) and dbn_model.pretrained):
        raise ValueError(f"init='pretrained' needs dbn_model, a pretrained DBN; got {dbn_model!r}")
    if not isinstance(finetune_config, FineTuneConfig):
        raise ValueError(f"finetune_config={finetune_config!r} must be a FineTuneConfig")
    check.check_seed("seed", seed)
    dropout_rates(dropout)


def _classifier(data, *, init, dbn_model, layer_sizes, seed, dropout):
    """A fresh classifier: the same initial weights for the same (init, seed)."""
    if init not in INITS:
        raise ValueError(f"init={init!r}; allowed: {INITS}")
    keras.utils.set_random_seed(seed)
    if init == "pretrained":
        return dbn_model.to_classifier(data.n_classes, init=init, dropout=dropout, seed=seed)
    return build_classifier(layer_sizes, data.n_classes, init=init, dropout=dropout, seed=seed)


def run_one(data, *, init, dbn_model, layer_sizes, finetune_config, seed, label_budget=None,
            checkpoint_dir=None, dropout=0.0):
    """Fine-tune one classifier; returns its test error, validation error and timings.

    ``dbn_model`` (a pretrained ``DBN``) is required for ``init="pretrained"``.
    ``data`` is a ``Splits``; ``seed`` an integer >= 0; ``label_budget`` None or a
    positive multiple of the number of classes; ``dropout`` a rate in [0, 1) or a pair
    (input rate, hidden rate) (``dbn.models.classifier.dropout_rates``).
    """
    _check_run_arguments(data, init=init, dbn_model=dbn_model, finetune_config=finetune_config,
                         seed=seed, dropout=dropout)
    label_budget = check.check_int("label_budget", label_budget, optional=True)
    x, y = data.x_train, data.y_train
    if label_budget is not None:
        idx = pipeline.balanced_subset(y, label_budget, seed=seed, n_classes=data.n_classes)
        x, y = x[idx], y[idx]
    model = _classifier(data, init=init, dbn_model=dbn_model, layer_sizes=layer_sizes, seed=seed,
                        dropout=dropout)
    t0 = time.time()
    spec = lambda: _inputs("run_one", data, model, finetune_config, seed, dropout,  # noqa: E731
                           label_budget=label_budget)
    with open_for(checkpoint_dir, spec, what="fine-tuning run") as run:
        result = fine_tune(model, x, y, data.x_val, data.y_val, finetune_config, seed=seed,
                           checkpoint_dir=run)
        test_error = _save_and_test(model, data, run)
    return {
        "test_error": test_error,
        "val_error": result["best_val_error"],
        "best_epoch": result["best_epoch"],
        "epochs_run": result["epochs_run"],
        "final_learning_rate": result["final_learning_rate"],
        "n_labels": int(len(y)),
        "finetune_seconds": time.time() - t0,
        "val_error_curve": result["history"]["val_error"],
    }


MODEL_FILE = "model.keras"


def _inputs(what, data, model, finetune_config, seed, dropout, **extra):
    """Everything that determines a run: settings, seed, initial weights, all the data."""
    return {"what": what, "finetune": finetune_config.cache_settings(), "seed": seed,
            "dropout": dropout_key(dropout), "initial_weights": fingerprint(*model.get_weights()),
            "data": data_key(data), **extra}


def data_key(data):
    """SHA-256 of every byte of all six arrays of ``data`` (a ``splits.Splits``)."""
    return fingerprint(data.x_train, data.y_train, data.x_val, data.y_val, data.x_test, data.y_test)


def _save_and_test(model, data, run):
    """Save the trained classifier in ``run`` (``MODEL_FILE``, if given); its test error."""
    if run is not None:
        run.save(files={MODEL_FILE: model.save})
    return error_rate(model, data.x_test, data.y_test)


def load_classifier(checkpoint_root, run_dir):
    """The classifier a ``compare`` run reports (its ``run_dir``), loaded after the
    run directory's hashes were verified."""
    with open_existing(Path(checkpoint_root) / run_dir, what="fine-tuning run") as run:
        if not run.has(MODEL_FILE) and run.state("result") is not None:
            raise CheckpointError(f"{run.path} holds the run's result but not its network (carried "
                                  f"by carry.py --result-only): delete that directory to fine-tune the "
                                  f"network again here (a refit needs only its early-stopped run's result)")
        return keras.models.load_model(run.file(MODEL_FILE))


def refit_one(data, *, init, dbn_model, layer_sizes, finetune_config, seed, val_error_curve,
              checkpoint_dir=None, dropout=0.0):
    """Retrain the classifier of an early-stopped ``run_one`` from the same initial
    weights on the training *and* validation labels, for its best number of epochs with
    the learning rates it used (``refit_schedule`` of its ``val_error_curve``); returns
    the refitted network's test error and timings.  Arguments as for ``run_one``."""
    _check_run_arguments(data, init=init, dbn_model=dbn_model, finetune_config=finetune_config,
                         seed=seed, dropout=dropout)
    rates = refit_schedule(val_error_curve, finetune_config)
    x = np.concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    model = _classifier(data, init=init, dbn_model=dbn_model, layer_sizes=layer_sizes, seed=seed,
                        dropout=dropout)
    t0 = time.time()
    spec = lambda: _inputs("refit_one", data, model, finetune_config, seed, dropout,  # noqa: E731
                           learning_rates=rates)
    with open_for(checkpoint_dir, spec, what="refit") as run:
        result = fit_schedule(model, x, y, finetune_config, rates, seed=seed, checkpoint_dir=run)
        test_error = _save_and_test(model, data, run)
    return {
        "test_error": test_error,
        "epochs": len(rates),
        "learning_rates": rates,
        "n_labels": int(len(y)),
        "finetune_seconds": time.time() - t0,
        "loss_curve": result["history"]["loss"],
    }


def compare(data, *, layer_sizes, layer_configs, finetune_config, seeds, inits=INITS,
            label_budgets=(None,), checkpoint_root="checkpoints", tag, dropout=0.0, verbose=2,
            on_progress=None):
    """Run every (seed, label budget, init) fine-tuning, resuming finished ones.

    Each run is a verified, locked run directory ``checkpoint_root/runs/<run>``
    (``dbn.training.checkpoint.RunDir``), its name made of the seed, label budget, init and a hash
    of every setting that determines it and of every byte of the data (all six arrays),
    the full spec stored and compared on every open; so an interrupted experiment redoes
    nothing, a changed setting never reuses a result, and experiments share identical runs (the
    all-labels runs of ``label_scarcity`` are those of ``dbn_mnist``).  ``tag`` only
    labels the progress messages.  ``on_progress(runs)`` is called after each run (e.g.
    to write partial results).  With ``finetune_config.refit`` each early-stopped run is
    then retrained on the training and validation labels (``refit_one``, cached in a run
    directory of its own beside the early-stopped run's), and its ``test_error`` is the
    refitted network's.

    Returns
    -------
    runs : list of dict
        One per run: seed, init, label_budget, test_error, timings, ..., and ``run_dir``,
        the run's directory relative to ``checkpoint_root`` (holding the network whose test
        error is reported: ``load_classifier(checkpoint_root, run_dir)``); with refit also ``refit`` (its epochs,
        rates and timings), ``early_stopped_test_error`` and ``early_stopped_run_dir``.

    Raises
    ------
    ValueError
        Before any work, for ``data`` that is not a ``Splits``, bad ``layer_sizes`` or
        ``layer_configs``, a ``finetune_config`` that is not a ``FineTuneConfig``, an
        empty or repeated ``seeds`` / ``inits`` / ``label_budgets`` list or a bad entry
        (seeds integers >= 0, inits from ``INITS``, budgets None or integers), a
        ``dropout`` that is not a rate in [0, 1) or a pair of them, a non-callable
        ``on_progress``.
    """
    if not isinstance(data, splits.Splits):
        raise ValueError(f"data must be a dbn.data.Splits (dbn.data.load(...)); got "
                         f"{type(data).__name__}")
    if not isinstance(finetune_config, FineTuneConfig):
        raise ValueError(f"finetune_config={finetune_config!r} must be a FineTuneConfig")
    sizes = check_layer_sizes(layer_sizes)
    check_layer_configs(layer_configs, len(sizes) - 1)
    lists = {}
    for name, values, item in (("seeds", seeds, lambda n, v: check.check_seed(n, v)),
                               ("inits", inits, lambda n, v: check.check_choice(n, v, INITS)),
                               ("label_budgets", label_budgets,
                                lambda n, v: check.check_int(n, v, low=1, optional=True))):
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise ValueError(f"{name}={values!r} must be a non-empty list")
        lists[name] = values = list(values)
        if not values or len(set(values)) != len(values):
            raise ValueError(f"{name}={values!r} must be a non-empty list without repeats")
        for i, value in enumerate(values):
            item(f"{name}[{i}]", value)
    seeds, inits = lists["seeds"], lists["inits"]
    dropout_rates(dropout)
    if on_progress is not None and not callable(on_progress):
        raise ValueError(f"on_progress={on_progress!r} must be callable or None")
    label_budgets = _check_refit(finetune_config, label_budgets)
    root = Path(checkpoint_root)
    warn_legacy(root / "runs")
    x_unlabelled = np.concatenate([data.x_train, data.x_val])
    # The early-stopped runs are shared with the runs that refit them (the refit spec adds
    # to theirs).
    early_stopping = dataclasses.replace(finetune_config, refit=False)
    configs = layer_configs if isinstance(layer_configs, (list, tuple)) else [layer_configs]
    common_spec = {"what": "compare_run", "layer_sizes": list(layer_sizes),
                   "layers": [c.to_dict() for c in configs], "dropout": dropout_key(dropout), "data": data_key(data)}
    runs = []
    for seed in seeds:
        @functools.cache
        def pretrained():  # the seed's DBN and pretraining times, built once, when first needed
            return pretrained_dbn(x_unlabelled, layer_sizes=layer_sizes, layer_configs=layer_configs,
                                  seed=seed, checkpoint_root=root, verbose=verbose)

        for budget in label_budgets:
            # As it acts on this budget's examples: an epoch size that repeats nothing is
            # left out of the key (the all-labels runs are shared across experiments).
            budget_config = early_stopping.for_examples(budget or len(data.x_train))
            for init in inits:
                spec = {**common_spec, "finetune": budget_config.cache_settings(), "seed": seed,
                        "init": init, "label_budget": budget}
                run_dir = run_path(root / "runs", f"seed{seed}_labels{budget or 'all'}_{init}", spec)
                is_pretrained = init == "pretrained"
                common = dict(init=init, layer_sizes=layer_sizes, finetune_config=budget_config,
                              seed=seed, dropout=dropout)
                what = f"[{tag}] seed {seed} labels {budget or 'all'} {init}"
                with RunDir(run_dir, spec, what=what) as run:
                    result = _cached(run, lambda: {
                        **run_one(data, dbn_model=pretrained()[0] if is_pretrained else None,
                                  label_budget=budget, checkpoint_dir=run, **common),
                        "seed": seed, "init": init, "label_budget": budget,
                        "pretrain_timings": pretrained()[1] if is_pretrained else {}})
                result["run_dir"] = str(run_dir.relative_to(root))
                if finetune_config.refit:
                    # Its own run directory beside the early-stopped one (never nested: a
                    # --fresh of one run must not delete another run's locked directory).
                    refit_spec = {**spec, "what": "compare_refit"}
                    refit_dir = run_path(root / "runs", f"seed{seed}_labelsall_{init}_refit", refit_spec)
                    with RunDir(refit_dir, refit_spec, what=f"{what} refit") as run:
                        refit = _cached(run, lambda: refit_one(
                            data, dbn_model=pretrained()[0] if is_pretrained else None,
                            val_error_curve=result["val_error_curve"], checkpoint_dir=run, **common))
                        _check_refit_schedule(run, refit, result, budget_config, run_dir)
                    result.update(early_stopped_test_error=result["test_error"],
                                  early_stopped_run_dir=result["run_dir"],
                                  test_error=refit["test_error"], refit=refit,
                                  run_dir=str(refit_dir.relative_to(root)))
                runs.append(result)
                if verbose:
                    print(f"{what}: test error {result['test_error']:.4f} (val {result['val_error']:.4f}, "
                          f"best epoch {result['best_epoch']}{', refit' if finetune_config.refit else ''})",
                          flush=True)
                if on_progress is not None:
                    on_progress(runs)
    return runs


def tune_learning_rates(data, *, learning_rates, tune_seed, finetune_config, inits=INITS,
                        label_budgets=(None,), extend=0, **compare_kwargs):
    """The fine-tuning learning rate of each (label budget, init), chosen on the validation
    split: every rate of ``learning_rates`` is run (``compare``, early stopping, no refit)
    on the seed ``tune_seed``; the lowest best validation error wins (ties: the first
    rate).  The runs are ``compare``'s own, cached and shared: the chosen rate's run on
    ``tune_seed`` is the seed's run of the comparison that follows.

    ``extend`` (int >= 0): a winner at an edge of the grid (strictly better than every
    other rate) says the best rate may lie beyond it; up to ``extend`` times per (budget,
    init), the grid of that (budget, init) grows past the winning edge by the ratio of the edge to its neighbour (rounded to one
    significant digit: 3e-4 1e-3 3e-3 -> 9e-3 above, 9e-5 below), until the winner is
    inside the grid.

    Returns ``{budget ("all" or the number as a string): {init: {"chosen": rate,
    "val_error": {rate (str): best validation error}}}}`` (rates in the order run).
    ``learning_rates`` is a non-empty list of distinct finite rates > 0; the other
    arguments as ``compare``'s.
    """
    learning_rates = check.check_rates("learning_rates", learning_rates)
    extend = check.check_int("extend", extend, low=0)
    if extend and len(learning_rates) < 2:
        raise ValueError(f"extend={extend} needs learning_rates with >= 2 rates (the step past an "
                         f"edge is the ratio to its neighbour), got {learning_rates!r}")
    if not isinstance(finetune_config, FineTuneConfig):
        raise ValueError(f"finetune_config={finetune_config!r} must be a FineTuneConfig")
    table = {}

    def tune(lr, inits, budgets):
        config = dataclasses.replace(finetune_config, learning_rate=lr, refit=False)
        for run in compare(data, finetune_config=config, seeds=[tune_seed], inits=inits,
                           label_budgets=budgets, **compare_kwargs):
            entry = table.setdefault(budget_key(run["label_budget"]), {}).setdefault(
                run["init"], {"val_error": {}})
            entry["val_error"][str(lr)] = run["val_error"]

    for lr in learning_rates:
        tune(lr, inits, label_budgets)
    for budget in label_budgets:
        for init in inits:
            extend_past_edge(table[budget_key(budget)][init]["val_error"], extend,
                             lambda lr, init=init, budget=budget: tune(lr, [init], [budget]))
    for per_init in table.values():
        for entry in per_init.values():
            entry["chosen"] = best_rate(entry["val_error"])
    return table


def dropout_label(dropout):
    """``dropout`` (a rate, or a pair (input, hidden)), checked, as a key of a tuning table
    (``setting_label``: "0.5", "0.2,0.5", "0")."""
    return setting_label(dropout_key(dropout))


def dropout_candidates(dropout, dropouts):
    """``[dropout, *dropouts]`` and their labels, checked: ``dropouts`` a non-empty list of
    valid settings, no two of them (nor the starting point ``dropout``) the same rates."""
    if isinstance(dropouts, (str, bytes)) or not isinstance(dropouts, (list, tuple)):
        raise ValueError(f"dropouts={dropouts!r}: allowed: a list of dropout settings (rates, or "
                         f"pairs (input rate, hidden rate))")
    candidates = [dropout, *dropouts]
    labels = [dropout_label(d) for d in candidates]  # validates every setting
    if not dropouts or len({dropout_rates(d) for d in candidates}) != len(candidates):
        raise ValueError(f"dropouts={list(dropouts)!r}: allowed: a non-empty list of dropout settings "
                         f"without repeats, other than the starting point dropout={dropout!r}")
    return candidates, labels


def tune_dropout(data, tuning, *, dropouts, tune_seed, finetune_config, inits=INITS,
                 label_budgets=(None,), dropout=0.0, **compare_kwargs):
    """Each (label budget, init)'s dropout, chosen on the validation split after its
    learning rate: at the rate ``tuning`` chose (``tune_learning_rates``' table, at
    ``dropout``), every setting of ``dropouts`` is run on ``tune_seed`` (``compare``, early
    stopping, no refit, cached and shared); the lowest best validation error wins, ties
    going to ``dropout`` (the starting point, whose error is the rate tuning's own).  One
    coordinate after the other: the rate is not chosen again at the new dropout.

    Adds ``"dropout": {"chosen": setting (a rate or [input, hidden]), "val_error": {label:
    error}}`` (labels by ``dropout_label``, the starting point first) to each entry of
    ``tuning`` and returns it.  ``dropouts``: a non-empty list of settings other than
    ``dropout``, without repeats.
    """
    candidates, labels = dropout_candidates(dropout, dropouts)
    for budget in label_budgets:
        for init in inits:
            entry = tuning[budget_key(budget)][init]
            config = dataclasses.replace(finetune_config, learning_rate=entry["chosen"], refit=False)
            val_error = {labels[0]: entry["val_error"][str(entry["chosen"])]}  # the rate tuning's run
            for label, setting in zip(labels[1:], candidates[1:]):
                (run,) = compare(data, finetune_config=config, seeds=[tune_seed], inits=[init],
                                 label_budgets=[budget], dropout=setting, **compare_kwargs)
                val_error[label] = run["val_error"]
            best = min(labels, key=lambda k: (val_error[k], labels.index(k)))
            entry["dropout"] = {"chosen": dropout_key(candidates[labels.index(best)]),
                                "val_error": val_error}
    return tuning


def _check_refit(finetune_config, label_budgets):
    """``label_budgets`` as a list; a ValueError if ``finetune_config.refit`` is asked of a
    label budget."""
    label_budgets = list(label_budgets)
    if finetune_config.refit and any(budget is not None for budget in label_budgets):
        raise ValueError(f"refit retrains on the training and validation labels, so it is defined "
                         f"for the all-labels runs only; got label_budgets={label_budgets}")
    return label_budgets


def compare_tuned(data, *, learning_rates, tune_seed, finetune_config, seeds, inits=INITS,
                  label_budgets=(None,), extend=0, dropouts=(), on_progress=None, **compare_kwargs):
    """``compare`` with each (label budget, init) fine-tuned at its own learning rate,
    chosen by ``tune_learning_rates`` from one grid shared by all: a random-init baseline
    is never run at a rate tuned for the pretrained network.  With ``dropouts`` (other
    settings than ``dropout``), each (label budget, init)'s dropout is then chosen at its
    rate (``tune_dropout``) and its seeds run with it.  Returns ``(runs, tuning)``; each run
    records its ``learning_rate`` and ``tuning_val_error`` (the grid's validation errors
    behind the choice) and, with ``dropouts``, its ``dropout`` and
    ``tuning_dropout_val_error``.  ``extend`` as in ``tune_learning_rates``;
    ``on_progress(runs)`` as in ``compare``."""
    dropout = compare_kwargs.pop("dropout", 0.0)
    tune_dropouts = not (dropouts is None or (isinstance(dropouts, (list, tuple)) and not dropouts))
    # checked before hours of rate tuning (which runs without refits)
    _check_refit(finetune_config, label_budgets)
    if tune_dropouts:
        dropout_candidates(dropout, dropouts)
    tuning = tune_learning_rates(data, learning_rates=learning_rates, tune_seed=tune_seed,
                                 finetune_config=finetune_config, inits=inits,
                                 label_budgets=label_budgets, extend=extend, dropout=dropout,
                                 **compare_kwargs)
    if tune_dropouts:
        tune_dropout(data, tuning, dropouts=dropouts, tune_seed=tune_seed, finetune_config=finetune_config,
                     inits=inits, label_budgets=label_budgets, dropout=dropout, **compare_kwargs)
    runs = []
    for budget in label_budgets:
        for init in inits:
            entry = tuning[budget_key(budget)][init]
            chosen = entry["dropout"]["chosen"] if tune_dropouts else dropout

            def label(these, entry=entry):
                return [{**r, "learning_rate": entry["chosen"], "tuning_val_error": entry["val_error"],
                         **({"dropout": entry["dropout"]["chosen"],
                             "tuning_dropout_val_error": entry["dropout"]["val_error"]}
                            if "dropout" in entry else {})}
                        for r in these]

            done = list(runs)
            new = compare(data, finetune_config=dataclasses.replace(finetune_config,
                                                                    learning_rate=entry["chosen"]),
                          seeds=seeds, inits=[init], label_budgets=[budget], dropout=chosen,
                          on_progress=None if on_progress is None else (
                              lambda these, done=done, label=label: on_progress(done + label(these))),
                          **compare_kwargs)
            runs += label(new)
    return runs, tuning


def _check_refit_schedule(run, refit, result, finetune_config, run_dir):
    """A refit's key is its early-stopped run's key, not that run's outcome: refuse a
    finished refit whose epochs and rates are not the schedule its early-stopped run
    (``result``, in ``run_dir``) calls for now, as after that run was recomputed (on
    another CPU, its best epoch can differ) while the refit was kept."""
    wanted = refit_schedule(result["val_error_curve"], finetune_config)
    if [float(r) for r in refit["learning_rates"]] != wanted:
        raise CheckpointMismatchError(
            f"{run.what}: the finished refit in {run.path} trained {len(refit['learning_rates'])} "
            f"epochs at rates {refit['learning_rates']}, but its early-stopped run in {run_dir} "
            f"now calls for {len(wanted)} epochs at rates {wanted} (most likely that run was "
            f"recomputed after the refit, e.g. on another CPU); delete the refit's directory "
            f"{run.path} alone to refit anew (--fresh would discard every run of the command)")


def _cached(run, compute):
    """The result saved in ``run`` (an open ``RunDir``), or ``compute()`` saved there."""
    result = run.state("result")
    if result is not None:
        log.info("%s: reusing the finished result in %s", run.what, run.path)
        return result
    result = compute()
    run.save(result=result)
    return result


summarize = summarize_errors  # former name, kept for one release
