"""Regenerate the README's results tables from results/*.json (nobody types numbers).

Each table sits between `<!-- table:NAME -->` and `<!-- /table:NAME -->` in README.md;
a table whose JSON is missing says so. `--check` exits 1 if the README is out of date.

  python experiments/make_tables.py [--check]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(results, name):
    path = Path(results) / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _pct(mean, std=None):
    return f"{100 * mean:.2f}%" + (f" ± {100 * std:.2f}" if std is not None else "")


def _status(r):
    """How far the run that wrote ``r`` got: complete, or partial."""
    return "complete" if r.get("complete") else "**partial (run still in progress)**"


def _commit(r):
    return r["git_commit"][:10]


def _rbm_sampler(t):
    """The sampler of an RBM training config (``RBMTrainingConfig.to_dict()``), as named in
    the literature: CD-k (k rising to final_k), PCD, FPCD, parallel tempering."""
    k = f"{t['k']}" + (f"→{t['final_k']}" if t.get("final_k") else "")
    if t.get("fast_learning_rate") is not None:
        return f"FPCD-{k} (fast lr {t['fast_learning_rate']}, decay {t.get('fast_decay', 0.95)})"
    if t.get("n_temperatures", 1) > 1:
        return f"PCD-{k} with parallel tempering ({t['n_temperatures']} temperatures)"
    return f"{'PCD' if t['persistent'] else 'CD'}-{k}"


def _rbm_recipe(t):
    how = (f"{_rbm_sampler(t)}, {t['epochs']} epochs, lr {t['learning_rate']}→{t['final_learning_rate']}, "
           f"L2 {t['weight_decay']}")
    if t.get("precision", "float32") != "float32":
        how += f", {t['precision']} products"
    return how


def rbm_table(results):
    rows = ["| run | training | test log p, nats (with log Z + 3 std) | train log p | log Z ± std (AIS runs × betas) | train time | commit |",
            "|---|---|---|---|---|---|---|"]
    for name in ("rbm_cd1", "rbm_best", "rbm_best_bf16"):
        r = _load(results, name)
        if r is None:
            rows.append(f"| {name} | not run yet | | | | | |")
            continue
        t, a = r["config"]["training"], r["ais"]
        rows.append(f"| {name} | {_rbm_recipe(t)} | **{a['test_log_prob']:.2f}** ({a['test_log_prob_lower']:.2f}) | {a['train_log_prob']:.2f} | "
                    f"{a['log_z']:.2f} ± {a['log_z_std']:.3f} ({a['runs']} × {a['betas']}) | "
                    f"{r['timing']['train_seconds'] / 60:.1f} min | `{_commit(r)}` |")
    rows.append("| Salakhutdinov & Murray 2008, CD-1 (500 hidden) | | ≈ -125 | | | | |")
    rows.append("| Salakhutdinov & Murray 2008, CD-25 (500 hidden) | | -86.34 | | | | |")
    return "\n".join(rows)


def benchmark_table(results):
    r = _load(results, "benchmark_cd")
    if r is None:
        return "_not run yet_"
    s = r["summary"]
    med, n = s["median_seconds"], r["config"]["n"]
    flops = r["flops_per_epoch"]
    rows = [
        "| | samples/s | GFLOP/s | median epoch (s) |", "|---|---|---|---|",
        f"| dbn (TensorFlow) | {s['dbn_samples_per_second']:.0f} | {s['dbn_gflops']:.1f} | {med['dbn']:.2f} |"]
    for side, label in (("dbn_bf16", "dbn, `precision=\"bfloat16\"`"),
                        ("dbn_xla", "dbn compiled by XLA (`jit_compile`, not offered)"),
                        ("dbn_array", "dbn, the README's `RBM.fit(array, batch_size=100)`")):
        if side in med:
            rows.append(f"| {label} | {n / med[side]:.0f} | {flops / med[side] / 1e9:.1f} | {med[side]:.2f} |")
    rows += [
        f"| scikit-learn BernoulliRBM | {s['sklearn_samples_per_second']:.0f} | {s['sklearn_gflops']:.1f} | {med['sklearn']:.2f} |",
        f"| float32 matmul 2048³ (peak) | | {s['matmul_peak_gflops']:.1f} | |"]
    for side, label in (("matmul_cd", "float32"), ("matmul_cd_bf16", "bfloat16")):
        if f"{side}_gflops" in s:
            rows.append(f"| {label} 100x784 @ 784x500 (the CD step's own product) | | {s[side + '_gflops']:.1f} | |")
    rows += ["", f"Speed-up vs scikit-learn: **{s['speedup_vs_sklearn']:.2f}x**; dbn reaches "
             f"**{100 * s['dbn_fraction_of_peak']:.0f}%** of the matmul peak"
             + (f" and {100 * s['share_of_epoch_in_matmuls']:.0f}% of its own product shape's rate (the"
                " share of the epoch in its five products)" if "share_of_epoch_in_matmuls" in s else "")
             + f" (median of {r['config']['repeats']} interleaved subprocess runs, commit `{_commit(r)}`)."]
    if "breakdown_share_of_epoch" in s:
        shares = s["breakdown_share_of_epoch"]
        rows += ["", "Where the dbn epoch goes (the step's maths built up in compiled loops): "
                 + ", ".join(f"{name.replace('_', ' ')} {100 * share:.0f}%" for name, share in shares.items())
                 + "."]
    return "\n".join(rows)


def _protocol(r):
    """The fine-tuning protocol a DBN experiment ran with, from its recorded config."""
    f = r["config"]["finetune"]
    rate = (f"× {f['plateau_factor']:g} after every {f['plateau_patience']} epochs without improvement"
            if f.get("plateau_factor", 1.0) < 1.0 else "constant")
    refit = (", then retrained on training + validation labels for the early-stopped number of "
             "epochs" if f.get("refit") else "")
    if f.get("min_epoch_size"):
        refit = (f", epochs of at least {f['min_epoch_size']:,} examples (a smaller label set "
                 "repeated)") + refit
    grid = r["config"].get("tune_lr")
    extend = r["config"].get("tune_extend")
    lr = (f"at each initialisation's own rate from {{{', '.join(f'{x:g}' for x in grid)}}}"
          + (f" (extended past a winning edge, up to {extend} rates)" if extend else "")
          + f", chosen on the validation split of seed {r['config']['tune_seed']}" if grid
          else f"{f['learning_rate']:g}")
    if grid and r["config"].get("tune_dropout"):
        from dbn.protocols.statistics import setting_label  # numpy, no TensorFlow

        settings = [r["config"]["dropout"], *([float(x) for x in text.split(",")]
                                               for text in r["config"]["tune_dropout"])]
        lr += (", then its dropout chosen on the same split at that rate from {"
               + "; ".join(setting_label(d if len(d) == 2 else d[0]) for d in settings) + "}")
    layer = r["config"].get("layer_config", {})
    precision = "".join(f", {what} products in {p}" for what, p in
                        (("pretraining", layer.get("precision")), ("fine-tuning", f.get("precision")))
                        if p not in (None, "float32"))
    return f"fine-tuning {f['optimizer']} {lr} ({rate}){refit}{precision}"


def _init_cells(entry, inits):
    return " | ".join(_pct(entry[i]["mean"], entry[i]["std"]) if i in entry else "–" for i in inits)


DBN_ANCHORS = ("Anchors: 1.2% pretrained vs 1.6% random (Hinton & Salakhutdinov 2006); "
               "1.34% (Theano DBN tutorial); 1.15% (Hinton).")
DROPOUT_ANCHORS = ("Anchor: 0.92% for a DBN fine-tuned with dropout (Srivastava et al. 2014, "
                   "Table 2); goal <= 0.95%.")


def _pretrained_reference(results, name, label, reference_label):
    """The pretrained seeds of ``name`` against ``dbn_mnist``'s, run under the same
    protocol but for one setting (``label`` there, ``reference_label`` in dbn_mnist):
    the reference's mean and, with >= 2 seeds on each side, the Welch difference."""
    r = _load(results, "dbn_mnist")
    if r is None or "pretrained" not in r:
        return f"Reference: the {reference_label} dbn_mnist run (not run yet)."
    p = r["pretrained"]
    line = (f"Reference: {reference_label}, the same protocol, seeds {r['config']['seeds']}: "
            f"{_pct(p['mean'], p['std'])} pretrained (the dbn_mnist table).")
    side = _load(results, name)
    if side is None or "pretrained" not in side or len(side["pretrained"]["test_error"]) < 2:
        return line
    from dbn.protocols.statistics import summarize_errors  # numpy + scipy, no TensorFlow

    t = summarize_errors({label: side["pretrained"]["test_error"], reference_label: p["test_error"]},
                         reference=label)[1][f"{label}_vs_{reference_label}"]
    return line + f" {label} − {reference_label}, points [95% CI]: {_difference(t)}."


def dbn_table(results, name="dbn_mnist", anchors=DBN_ANCHORS):
    r = _load(results, name)
    if r is None:
        return "_not run yet_"
    inits = ["pretrained", "random_glorot", "random_normal"]
    rows = ["| | " + " | ".join(inits) + " |", "|---|---|---|---|",
            "| test error, mean ± std over seeds | " + _init_cells(r, inits) + " |",
            "| per seed | " + " | ".join(", ".join(_pct(e) for e in r[i]["test_error"]) if i in r else "–" for i in inits) + " |"]
    if r["config"]["finetune"].get("refit"):  # the early-stopped networks the refits retrained
        before = {}
        for run in r["runs"]:  # run inits are the result keys without "random_"
            before.setdefault(run["init"], []).append(run["early_stopped_test_error"])
        n_labels = f"{r['config']['data']['train_labels']:,}"
        rows.append(f"| before the refit (early-stopped, {n_labels} labels) | " + " | ".join(
            _pct(statistics.mean(before[i]), statistics.stdev(before[i]) if len(before[i]) > 1 else None)
            if i in before else "–" for i in (k.removeprefix("random_") for k in inits)) + " |")
    if "tuning" in r:  # each initialisation's own rate, chosen on the validation split
        rows.append("| fine-tuning rate chosen (validation error per rate, seed "
                    f"{r['config']['tune_seed']}) | " + " | ".join(
                        f"{r['tuning'][i]['chosen']:g} (" + ", ".join(
                            f"{lr}: {_pct(v)}" for lr, v in r["tuning"][i]["val_error"].items()) + ")"
                        if i in r["tuning"] else "–" for i in inits) + " |")
    if any("dropout" in entry for entry in r.get("tuning", {}).values()):
        from dbn.protocols.statistics import setting_label  # numpy, no TensorFlow

        rows.append("| dropout chosen at that rate (validation error per setting, seed "
                    f"{r['config']['tune_seed']}) | " + " | ".join(
                        f"{setting_label(r['tuning'][i]['dropout']['chosen'])} (" + ", ".join(
                            f"{k}: {_pct(v)}" for k, v in r["tuning"][i]["dropout"]["val_error"].items()) + ")"
                        if "dropout" in r["tuning"].get(i, {}) else "–" for i in inits) + " |")
    if any(r[i].get("n_failed") for i in inits if i in r):
        rows.append("| runs that failed to train (test error > 50%) | " + " | ".join(
            str(r[i]["n_failed"]) if i in r else "–" for i in inits) + " |")
    for name, t in r.get("welch_t_tests", {}).items():
        rows.append(f"\nWelch t-test {name}, difference in points [95% CI]: {_difference(t)}"
                    + (f", t = {t['t']:.2f}." if t.get("t") is not None else "."))
    held_out = _without_tuning_seed(r, r.get("runs", []))
    if held_out:
        rows.append(f"\nWithout seed {r['config']['tune_seed']}, whose validation runs chose the rates: "
                    f"{held_out} (points [95% CI], Welch p).")
    status = _status(r)
    rows.append(f"\nSeeds {r['config']['seeds']}, {status}, {_protocol(r)}, commit `{_commit(r)}`. "
                + anchors)
    return "\n".join(rows)


def _cell(entry, init):
    """Mean ± std over seeds, with the runs that failed to train named beside it."""
    if init not in entry:
        return "–"
    e = entry[init]
    cell = _pct(e["mean"], e["std"])
    if e.get("n_failed"):
        trained = _pct(e["mean_trained"]) if e["mean_trained"] is not None else "–"
        cell += f" ({e['n_failed']} of {e['n_seeds']} failed to train; the others {trained})"
    return cell


def _gap_cell(entry, init):
    """pretrained − ``init``: the difference of means, its 95% CI and the Welch p-value;
    where runs failed, over the runs that trained, with the failure counts (Fisher's exact
    p) and the rank-sum p over every run beside it."""
    t = entry.get("welch_t_tests", {}).get(f"pretrained_vs_{init}")
    if t is None:
        return "–"
    return _difference(t)


def _difference(t):
    """One test of ``summarize_errors`` as text: the difference in points [95% CI], p."""
    text = f"{100 * t['mean_difference']:+.2f}" if t["mean_difference"] is not None else "–"
    if "ci95" in t:  # (results older than the intervals have none)
        text += f" [{100 * t['ci95'][0]:+.2f}, {100 * t['ci95'][1]:+.2f}]"
    if t.get("p_value") is not None:
        text += f", p = {t['p_value']:.2g}"
    if t.get("runs") == "trained":
        (fa, fb), (na, nb) = t["n_failed"], t["n_seeds"]
        text += (f" over the runs that trained; failed {fa} of {na} vs {fb} of {nb} (Fisher p = "
                 f"{t['fisher_p']:.2g}); every run, rank-sum p = {t['rank_sum_p']:.2g}")
    return text


def _tuning_cell(entry, init):
    """The chosen rate and the validation error of every rate of the grid (and, where it was
    tuned, the dropout chosen at that rate)."""
    t = entry.get("tuning", {}).get(init)
    if t is None:
        return "–"
    cell = f"**{t['chosen']:g}** (" + ", ".join(f"{float(lr):g}: {_pct(v)}" for lr, v in t["val_error"].items()) + ")"
    if "dropout" in t:  # then the dropout, chosen at that rate
        from dbn.protocols.statistics import setting_label  # numpy, no TensorFlow

        cell += (f"; dropout **{setting_label(t['dropout']['chosen'])}** ("
                 + ", ".join(f"{k}: {_pct(v)}" for k, v in t["dropout"]["val_error"].items()) + ")")
    return cell


def _grid_table(results, name, key, label, unit):
    r = _load(results, name)
    if r is None:
        return "_not run yet_"
    inits = [k for k in ("pretrained", "random_glorot", "random_normal")
             if any(k in row for row in r[key].values())]
    randoms = [i for i in inits if i != "pretrained"]
    rows = [f"| {label} | " + " | ".join(inits) + " | "
            + " | ".join(f"pretrained − {i.removeprefix('random_')} (points, 95% CI, Welch p)" for i in randoms)
            + " |", "|---" * (len(inits) + len(randoms) + 1) + "|"]
    for k, entry in r[key].items():
        rows.append(f"| {k} | " + " | ".join(_cell(entry, i) for i in inits) + " | "
                    + " | ".join(_gap_cell(entry, i) for i in randoms) + " |")
    if any("tuning" in entry for entry in r[key].values()):
        rows += ["", f"Fine-tuning rate chosen per {unit} and initialisation (bold), "
                     f"from the validation error of each rate on seed {r['config']['tune_seed']}:", "",
                 f"| {label} | " + " | ".join(inits) + " |", "|---" * (len(inits) + 1) + "|"]
        rows += [f"| {k} | " + " | ".join(_tuning_cell(entry, i) for i in inits) + " |"
                 for k, entry in r[key].items()]
    from dbn.protocols.statistics import budget_key  # (no TensorFlow)

    by_key = {}
    for run in r.get("runs", []):
        by_key.setdefault(str(run["depth"]) if key == "depths" else budget_key(run["label_budget"]), []).append(run)
    held_out = {k: _without_tuning_seed(r, runs) for k, runs in by_key.items()}
    if any(held_out.values()):
        rows += ["", f"The same gaps without seed {r['config']['tune_seed']}, whose validation runs chose "
                     "the rates (a check that the choice did not favour one side on its own seed):", ""]
        rows += [f"- {label} {k}: {text}" for k, text in held_out.items() if text]
    status = _status(r)
    rows.append(f"\nSeeds {r['config']['seeds']}, {status}, {_protocol(r)}, commit `{_commit(r)}`.")
    return "\n".join(rows)


def _without_tuning_seed(r, runs):
    """pretrained − each random init over the seeds of ``runs`` other than the tuning seed
    (``r``'s rates were chosen on its validation runs), as text; None if not tuned or
    fewer than two other seeds."""
    if not r["config"].get("tune_lr"):
        return None
    from dbn.protocols.statistics import summarize_errors  # numpy + scipy, no TensorFlow

    errors = {}
    for run in runs:
        if run["seed"] != r["config"]["tune_seed"]:
            errors.setdefault(run["init"], []).append(run["test_error"])
    if len(errors.get("pretrained", [])) < 2:
        return None
    tests = summarize_errors(errors)[1]
    return "; ".join(f"pretrained − {name.removeprefix('pretrained_vs_')} {_difference(t)}"
                     for name, t in tests.items())


def protocol_table(results):
    r = _load(results, "finetune_protocol")
    if r is None:
        return "_not run yet_"
    inits = [i for i in ("pretrained", "glorot", "normal") if i in r["config"]["inits"]]
    rows = ["| candidate | " + " | ".join(f"{i}: best val error (epoch / run)" for i in inits) + " |",
            "|---" * (len(inits) + 1) + "|"]
    for name, candidate in r["candidates"].items():
        by_init = {run["init"]: run for run in candidate["runs"]}
        rows.append(f"| {name} | " + " | ".join(
            f"{_pct(by_init[i]['val_error'])} ({by_init[i]['best_epoch']} / {by_init[i]['epochs_run']})"
            if i in by_init else "–" for i in inits) + " |")
    status = _status(r)
    rows.append(f"\nValidation split of {r['config']['data']['validation']:,} images, seeds "
                f"{r['config']['seeds']}, {status}, commit `{_commit(r)}`.")
    return "\n".join(rows)


def generative_table(results):
    r = _load(results, "dbn_generative")
    if r is None:
        return "_not run yet_"
    acc, t, c = r.get("conditional_accuracy"), r["timing"], r["config"]
    if "test_errors" not in r:  # the 30-epoch run, before the full protocol
        return _generative_table_v1(r, acc, t, c)
    e, u = r["test_errors"], c["up_down"]
    chosen = f"lr {u['learning_rate']}, momentum {u['momentum']}, weight cost {u['weight_decay']}"
    tuned = (f"chosen on the validation split from {len(r['tuning'])} candidates of "
             f"{c['updown_tune_epochs']} epochs" if r["tuning"] else "given, not tuned")
    errors = [
        "| | deterministic up-pass | stochastic up-pass (mean log p over "
        f"{c['stochastic_repeats']} passes) | paper |", "|---|---|---|---|",
        f"| generative test error, pretrained | {_pct(e['pretrained']['deterministic'])} | {_pct(e['pretrained']['stochastic'])} | |",
        f"| after {u['epochs']} up-down epochs on 50,000 ({chosen}; {tuned}) | **{_pct(e['up_down']['deterministic'])}** | {_pct(e['up_down']['stochastic'])} | 1.39% (44,000 images) |"]
    if "continued" not in e:  # written after the up-down, before the continuation and samples
        return "\n".join(errors + [
            f"| on all 60,000 until the training error matches {_pct(r['final_train_error_50k'])} | "
            "not run yet | | 1.25% |",
            f"\nSeed {r['seed']}; {_status(r)}: the continuation and the samples follow; "
            f"commit `{_commit(r)}`."])
    conf = r["judge_confidence"]
    return "\n".join(errors + [
        f"| after {r['continuation_epochs']} more epochs on all 60,000 (until the training error matched {_pct(r['final_train_error_50k'])}) | **{_pct(e['continued']['deterministic'])}** | {_pct(e['continued']['stochastic'])} | 1.25% |",
        "",
        "| samples | value |", "|---|---|",
        f"| conditional accuracy, overall ({c['samples_per_class']} samples/class, {c['gibbs_steps']} Gibbs steps) | **{100 * acc['overall']:.1f}%** (goal ≥ 95%, every class ≥ 90%) |",
        "| conditional accuracy per class 0-9 (%) | " + ", ".join(f"{100 * a:.0f}" for a in acc["per_class"]) + " |",
        "| judge's p(clamped label), mean ± std per class 0-9 | " + ", ".join(
            f"{m:.2f} ± {s:.2f}" for m, s in zip(conf["mean_per_class"], conf["std_per_class"])) + " |",
        f"| wall time: tuning / up-down / continuation / generating {10 * c['samples_per_class']:,} samples | "
        f"{t['tuning_seconds'] / 60:.0f} / {t['up_down_seconds'] / 60:.0f} / {t['continuation_seconds'] / 60:.0f} / "
        f"{t['generate_seconds'] / 60:.1f} min |",
        f"\nSeed {r['seed']}, judge: {c['judge']}, commit `{_commit(r)}`.",
        "\n![class-conditional samples](results/dbn_generative_grid.png) "
        "![least convincing](results/dbn_generative_worst.png) "
        "![chains](results/dbn_generative_chain.png)",
    ])


def _generative_table_v1(r, acc, t, c):
    return "\n".join([
        "| | value |", "|---|---|",
        f"| generative test error before up-down | {_pct(r['generative_test_error_before_up_down'])} |",
        f"| generative test error after {c['up_down']['epochs']} up-down epochs | **{_pct(r['generative_test_error'])}** (paper: 1.25%, after much longer up-down training) |",
        f"| conditional accuracy, overall ({c['samples_per_class']} samples/class, {c['gibbs_steps']} Gibbs steps) | **{100 * acc['overall']:.1f}%** (goal ≥ 95%) |",
        "| conditional accuracy per class 0-9 (%) | " + ", ".join(f"{100 * a:.0f}" for a in acc["per_class"]) + " |",
        *([f"| wall time: training the top RBM | {t['pretrain_top_training_seconds'] / 60:.1f} min |"]
          if "pretrain_top_training_seconds" in t else []),
        f"| wall time: {c['up_down']['epochs']} up-down epochs / generating {10 * c['samples_per_class']:,} samples | "
        f"{t['up_down_seconds'] / 60:.1f} / {t['generate_seconds'] / 60:.1f} min |",
        f"\nSeed {r['seed']}, judge: {c['judge']}, commit `{_commit(r)}`.",
        "\n![class-conditional samples](results/dbn_generative_grid.png) "
        "![chains](results/dbn_generative_chain.png)",
    ])


def bracket_table(results):
    r = _load(results, "likelihood_bracket")
    if r is None:
        return "_not run yet_"
    rows = ["| model | forward AIS, all 10,000 test images (with log Z + 3 std) | forward AIS, RAISE subset | RAISE | gap (± s.e., paired) |",
            "|---|---|---|---|---|"]
    for name, m in r["models"].items():
        f, q = m["forward_ais"], m["raise"]
        rows.append(f"| {name} | {f['test_log_prob']:.2f} ({f['test_log_prob_lower']:.2f}) | "
                    f"{f['test_log_prob_subset']:.2f} | **{q['raise_log_prob']:.2f}** | "
                    f"{m['gap_subset']:.2f}" + (f" ± {m['gap_subset_sem']:.2f}" if "gap_subset_sem" in m else "") + " |")
    q = next(iter(r["models"].values()))["raise"]
    f = next(iter(r["models"].values()))["forward_ais"]
    rows.append(f"\nForward AIS: {f['runs']} runs; RAISE: {q['raise_runs']} reverse chain per image on "
                f"{q['subset_size']} test images chosen at random (seed {q['subset_seed']}); both "
                f"{r['n_betas']:,} temperatures and the same base-rate model; nats; commit `{_commit(r)}`.")
    return "\n".join(rows)


# The samplers compared at equal wall time (experiments/run_rbm_results.sh): rbm_best
# (CD-1→25) and the runs whose epochs benchmark_samplers.json sized to its training time.
SAMPLER_RUNS = ("rbm_best", "rbm_pcd1", "rbm_fpcd1", "rbm_pt10")
LIKELIHOOD_GOAL = -84.0  # nats, the best 500-hidden RBM's goal (the 2-layer DBM: -84.62)


BRACKET_SETTINGS = ("raise_examples", "raise_runs", "betas", "seed")  # what a RAISE figure depends on


def _sampler_brackets(results):
    """The likelihood_bracket.py entry of each model, from likelihood_samplers.json, or
    else from likelihood_bracket.json when that run used the same settings on the same
    model (trained by the same commit, with the log Z its JSON records): not rerun for a
    quarter of an hour. Returns
    ``(models, bracket, borrowed)``: ``bracket`` the samplers' JSON (None if not run),
    ``borrowed`` the names taken from likelihood_bracket.json, each with its commit."""
    bracket = _load(results, "likelihood_samplers")
    if bracket is None:
        return {}, None, {}
    models, borrowed = dict(bracket["models"]), {}
    other = _load(results, "likelihood_bracket")
    if other is not None and all(other["config"][k] == bracket["config"][k] for k in BRACKET_SETTINGS):
        for name, entry in other["models"].items():
            model = _load(results, name)  # the very model: the commit that trained it, and its AIS
            if (model is not None and name not in models and entry["model_commit"] == model["git_commit"]
                    and entry["forward_ais"]["recorded_log_z"] == model["ais"]["log_z"]):
                models[name], borrowed[name] = entry, _commit(other)
    return models, bracket, borrowed


def samplers_table(results):
    models, bracket, borrowed = _sampler_brackets(results)
    rows = ["| run | sampler | epochs | train time | forward AIS, test (log Z + 3 std) | RAISE, subset | forward AIS, subset | gap |",
            "|---|---|---|---|---|---|---|---|"]
    for name in SAMPLER_RUNS:
        r = _load(results, name)
        if r is None:
            rows.append(f"| {name} | not run yet | | | | | | |")
            continue
        t, a = r["config"]["training"], r["ais"]
        m = models.get(name)
        raise_cells = ("| | | " if m is None else
                       f"| **{m['raise']['raise_log_prob']:.2f}** | {m['forward_ais']['test_log_prob_subset']:.2f} | "
                       f"{m['gap_subset']:.2f} ")
        rows.append(f"| {name} | {_rbm_sampler(t)} | {t['epochs']} | {r['timing']['train_seconds'] / 60:.1f} min | "
                    f"**{a['test_log_prob']:.2f}** ({a['test_log_prob_lower']:.2f}) {raise_cells}|")
    if bracket is not None:
        q = next(iter(bracket["models"].values()))["raise"]
        rows.append(f"\nRAISE: {q['raise_runs']} reverse chain per image on {q['subset_size']} test images "
                    f"(seed {q['subset_seed']}), {bracket['n_betas']:,} temperatures; commit `{_commit(bracket)}`. "
                    + "".join(f"{name}'s RAISE: the bracket table's run (same model, same settings), "
                              f"commit `{commit}`. " for name, commit in borrowed.items() if name in SAMPLER_RUNS)
                    + f"Goal: forward AIS >= {LIKELIHOOD_GOAL} nats with RAISE within 2 nats of it.")
    return "\n".join(rows)


def dbn_likelihood_table(results):
    found = [r for r in (_load(results, name) for name in ("dbn_likelihood", "dbn_likelihood_lower")) if r]
    if not found:
        return "_not run yet_"
    rbm = found[0]["rbm"]
    rows = ["| model | second layer | test log p, nats | conservative (log Z + 3 std) | log Z of the top RBM (AIS runs × betas) | commit |",
            "|---|---|---|---|---|---|",
            f"| {rbm['name']} (784-500 RBM), forward AIS | | {rbm['test_log_prob']:.2f} | {rbm['test_log_prob_lower']:.2f} | | `{rbm['model_commit'][:10]}` |"]
    for r in found:
        d, top, c = r["dbn"], r["config"]["top_rbm"], r["config"]
        k = f"CD-{top['k']}" + (f"→{top['final_k']}" if top["final_k"] else "")
        data = "binary h1 drawn every epoch" if c.get("top_data") == "samples" else "the probabilities Q(h1|v)"
        init = "from W1ᵀ (the RBM's own prior)" if c.get("top_init") == "lower" else "random init"
        how = f"{k}, {top['epochs']} epochs on {data}, {init}, {r['timing']['train_seconds'] / 60:.0f} min"
        sizes = "-".join(str(n) for n in d["layer_sizes"])
        rows.append(f"| DBN {sizes}, variational lower bound ({d['samples']} draws of h1 per image) | {how} | "
                    f"**{d['bound']:.2f}** ± {d['bound_sem']:.2f} | {d['bound_conservative']:.2f} | "
                    f"{d['top_ais']['log_z']:.2f} ± {d['top_ais']['log_z_std']:.3f} ({d['top_ais']['runs']} × {d['top_ais']['betas']}) | `{_commit(r)}` |")
    rows.append("| Salakhutdinov & Murray 2008: RBM CD-25 (500) / DBN 784-500-2000 bound | | -86.34 / **-86.22** | | | |")
    return "\n".join(rows)


def baselines_table(results):
    r = _load(results, "baselines")
    if r is None:
        return "_not run yet_"
    rows = ["| network | recipe | rate (how chosen) | test error, mean ± std (seeds) | best test epoch (Nielsen's way) | train time per run | anchor |",
            "|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        e, rc = row["test_error"], row["recipe"]
        sizes = "-".join(str(n) for n in [784, *rc["hidden"], 10])
        how = (f"{rc['optimizer']}, batch {rc['batch_size']}, {rc['loss']} loss, "
               + (f"early stopping (≤ {rc['epochs']} epochs)" if rc["early_stopping"] else f"{rc['epochs']} epochs")
               + (", batch norm" if rc.get("batch_norm") else "")
               + (f", dropout {rc['input_dropout']}/{rc['dropout']}" if rc.get("dropout") else ""))
        tuned = (f"{row['learning_rate']:g} (validation, from " + ", ".join(row["tuned"]["val_error"]) + ")"
                 if isinstance(row["tuned"], dict) else f"{row['learning_rate']:g} (the recipe's)")
        rows.append(f"| {row['name']} {sizes} {rc['activation']} | {how} | {tuned} | "
                    f"{_pct(statistics.mean(e), statistics.stdev(e) if len(e) > 1 else None)} ({len(e)}) | "
                    f"{_pct(statistics.mean(row['best_test_epoch_error']))} | "
                    f"{statistics.mean(row['train_seconds']) / 60:.1f} min | {row['anchor'] or '–'} |")
    status = _status(r)
    rows.append(f"\nSame split as the DBN experiments (50,000 / 10,000 / 10,000), epoch chosen on the "
                f"validation split; {status}; commit `{_commit(r)}`.")
    return "\n".join(rows)


def finetune_speed_table(results):
    r = _load(results, "benchmark_finetune")
    if r is None:
        return "_not run yet_"
    sm = r["summary"]
    med, gf = sm["median_epoch_seconds"], sm["gflops"]
    layers = "-".join(str(n) for n in [784, *r["config"]["layers"], 10])
    flops = r["flops_per_epoch"]
    rows = [
        "| | median epoch (s) | GFLOP/s |", "|---|---|---|",
        f"| one step per call (Keras' default) | {med['one_step_per_call']:.2f} | {gf['one_step_per_call']:.0f} |",
        f"| {sm['steps_per_execution']} steps per call | {med['steps_per_execution']:.2f} | {gf['steps_per_execution']:.0f} |"]
    if "in_graph_epochs" in med:
        rows.append(f"| in-graph epochs over stacked batches (the package) | {med['in_graph_epochs']:.2f} | "
                    f"{gf['in_graph_epochs']:.0f} |")
    if "in_graph_epochs_bfloat16" in med:
        rows.append(f"| the same, `FineTuneConfig(precision=\"bfloat16\")` | "
                    f"{med['in_graph_epochs_bfloat16']:.2f} | {gf['in_graph_epochs_bfloat16']:.0f} |")
    stages = sm.get("breakdown_epoch_seconds")
    if stages:  # the same epoch as one compiled loop, stage by stage
        names = {"forward": "in-graph loop: forward pass only",
                 "forward_backward": "in-graph loop: forward + backward",
                 "forward_backward_sgd_momentum": "in-graph loop: + SGD-momentum update",
                 "forward_backward_adam": "in-graph loop: + Adam update (the package's optimizer)"}
        rows += [f"| {names[k]} | {v:.2f} | {flops / v / 1e9:.0f} |" if k != "forward" else
                 f"| {names[k]} | {v:.2f} | {flops / 3 / v / 1e9:.0f} |" for k, v in stages.items()]
    rows.append(
        f"\nSpeed-up over Keras' default **{sm.get('in_graph_speedup', sm['speedup']):.2f}x**; {layers}, "
        f"{r['config']['n']:,} images, batch "
        f"{r['config']['batch_size']}, median of {r['config']['repeats']} interleaved subprocess runs "
        f"(epochs 2-3 of each), commit `{_commit(r)}`."
        + (f" Adam's update is {100 * sm['adam_share_of_loop']:.0f}% of the loop; with no optimizer "
           f"at all an epoch could be at most {sm['speedup_bound_without_optimizer']:.2f}x faster than "
           "the package's." if stages else ""))
    return "\n".join(rows)


def _mean_cell(values):
    if not values:
        return "not run yet"
    if len(values) == 1:
        return f"{values[0]:.2f} (1 run)"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f} ({len(values)} seeds)"


def autoencoder_table(results, name="autoencoder_mnist"):
    r = _load(results, name)
    if r is None:
        return "_not run yet_"
    e, a, c = r["test_squared_error"], r["anchor"], r["config"]
    sizes = "-".join(map(str, c["layer_sizes"]))
    ft = c["fine_tuning"]
    selection = r.get("epoch_selection")

    def how(m, run="dbn"):
        f = ft.get(m, {})
        name = {"cg": "CG", "lbfgs": "L-BFGS", "adam": "Adam"}.get(m, m)
        chosen = [v for k, v in (selection or {}).items() if k.startswith(run) and k.endswith(f"_{m}")
                  and isinstance(v, dict)]
        if chosen:  # --validation: epochs chosen on held-out images, then the refit on all
            epochs = "/".join(str(v["chosen_epochs"]) for v in chosen)
            return (f"{name}, batch {f.get('batch_size', '?')}, {epochs} epochs chosen on "
                    f"{selection['validation_images']:,} held-out training images (patience "
                    f"{selection['patience']}), then retrained on all {c['data']['train']:,}")
        runs = [v for k, v in r["curves"].items() if k.startswith(run) and k.endswith(f"_{m}")]
        minutes = "/".join(f"{v['seconds'][-1] / 60:.0f}" for v in runs if v.get("seconds"))
        work = "/".join(f"{v['gradient_examples'][-1] / 1e6:.0f}" for v in runs if v.get("gradient_examples"))
        return (f"{name}, {'/'.join(str(len(v.get('epoch', []))) for v in runs) or 0} of "
                f"{f.get('epochs', '?')} epochs, batch {f.get('batch_size', '?')}"
                + (f", {minutes} min" if minutes else "")
                + (f", {work} M examples through forward + backward" if work else ""))
    rows = ["| model | fine-tuning | test squared error (sum over pixels, mean over 10,000) | paper |",
            "|---|---|---|---|"]
    for m in c["methods"]:  # finished runs in bold; a run in progress: its error so far
        run, err = r.get("curves", {}).get(f"dbn_{m}"), r.get("by_optimizer", {}).get(m)
        if err is not None:
            mark = " (headline)" if m == r.get("headline_optimizer") else ""
            cells = f"{mark} | {how(m)} | **{err:.2f}**"
        elif run and run["test_squared_error"]:
            cells = f" | {how(m)} (in progress) | {run['test_squared_error'][-1]:.2f} so far"
        else:
            continue
        rows.append(f"| DBN-pretrained {sizes}{cells} | {a['dbn']:.2f} (CG, 200 epochs) |")
    rm = r.get("random_method") or c.get("random_method")
    if e["random"] or c.get("random_seeds"):  # (the optimiser comparison runs no random init)
        rows.append(f"| same shape, random (Glorot) init | {how(rm, 'random') if rm else '–'} | {_mean_cell(e['random'])} | fails (reconstructs the mean) |")
    rows.append(f"| PCA, {r['pca_components']} components | – | {e['pca'][0]:.2f} | {a['pca']:.2f} |")
    if "pretrained_unrolled_test_squared_error" in r:
        rows.append(f"| DBN unrolled, before fine-tuning | – | {r['pretrained_unrolled_test_squared_error']:.2f} | |")
    rows.append(f"\n{_status(r)}; commit `{_commit(r)}`.")
    return "\n".join(rows)


def logistic_pca_table(results):
    r = _load(results, "logistic_pca")
    if r is None:
        return "_not run yet_"
    e, a, c, o = r["test_squared_error"], r["anchor"], r["config"], r["optimisation"]
    k = c["components"]
    return "\n".join([
        "| model | test squared error (sum over pixels, mean over 10,000) | paper |", "|---|---|---|",
        f"| logistic PCA, {k} components | **{e['logistic_pca']:.2f}** | {a['logistic_pca']:.2f} |",
        f"| PCA, {k} components | {e['pca']:.2f} | {a['pca']:.2f} |",
        f"\nFit on {c['data']['train']:,} training images: {o['fit']['iterations']} L-BFGS iterations "
        f"({o['fit']['message'].lower()}), {o['fit']['mean_cross_entropy']:.1f} nats per image; test codes "
        f"of {c['data']['test']:,} images: {o['test']['iterations']} iterations ({o['test']['message'].lower()}), "
        f"{o['test']['mean_cross_entropy']:.1f} nats per image; {r['seconds'] / 60:.0f} min; {_status(r)}; "
        f"commit `{_commit(r)}`."])


def autoencoder_2d_table(results):
    r = _load(results, "autoencoder_2d")
    if r is None:
        return "_not run yet_"
    sizes = "-".join(map(str, r["config"]["layer_sizes"]))
    names = {"dbn": f"DBN autoencoder {sizes}", "pca": "PCA, first 2 components",
             "random_sigmoid": "same shape, random sigmoid init", "leaky_relu6": "same shape, leaky ReLU6, random init"}
    ft = r["config"]["fine_tuning"]
    rows = [f"| 2-D code map | {r['knn_k']}-NN accuracy (test codes vs training codes) | test squared error |",
            "|---|---|---|"]
    for k, name in names.items():
        rows.append(f"| {name} | **{100 * r['knn_accuracy'][k]:.1f}%** | {r['test_squared_error'][k]:.2f} |")
    rows.append(f"\nAutoencoders fine-tuned with {ft['method']} for {ft['epochs']} epochs (batch {ft['batch_size']}); "
                f"{_status(r)}; commit `{_commit(r)}`.")
    return "\n".join(rows)


def sklearn_digits_table(results):
    r = _load(results, "sklearn_digits")
    if r is None:
        return "_not run yet_"
    c, seeds = r["config"], list(r["runs"])
    rows = ["| RBM features (Pipeline + GridSearchCV) | test accuracy per seed "
            f"(random_state {', '.join(seeds)}) | mean ± std | learning rate chosen |", "|---|---|---|---|"]
    for name, label in (("RBMTransformer", "`dbn.sklearn.RBMTransformer`"),
                        ("BernoulliRBM", "scikit-learn's `BernoulliRBM`")):
        acc = [r["runs"][s][name]["test_accuracy"] for s in seeds]
        spread = f"{statistics.mean(acc):.4f}" + (f" ± {statistics.stdev(acc):.4f}" if len(acc) > 1 else "")
        rows.append(f"| {label} | {', '.join(f'{a:.4f}' for a in acc)} | **{spread}** | "
                    f"{', '.join(str(r['runs'][s][name]['learning_rate']) for s in seeds)} |")
    rows.append(f"\nscikit-learn's 8x8 digits scaled to [0, 1]: {c['data']['train']:,} training / "
                f"{c['data']['test']:,} test images; {c['n_components']} hidden units, {c['epochs']} epochs, "
                f"batch {c['batch_size']}, rate from {{{', '.join(map(str, c['learning_rates']))}}} by "
                f"{c['cv']}-fold CV, `{c['classifier']}`; {_status(r)}; commit `{_commit(r)}`.")
    return "\n".join(rows)


TABLES = {
    "autoencoder": autoencoder_table,
    "autoencoder_optimizers": lambda results: autoencoder_table(results, "autoencoder_optimizers"),
    "logistic_pca": logistic_pca_table,
    "autoencoder_2d": autoencoder_2d_table,
    "generative": generative_table,
    "baselines": baselines_table,
    "sklearn_digits": sklearn_digits_table,
    "rbm": rbm_table,
    "likelihood_bracket": bracket_table,
    "samplers": samplers_table,
    "dbn_likelihood": dbn_likelihood_table,
    "benchmark": benchmark_table,
    "finetune_speed": finetune_speed_table,
    "finetune_protocol": protocol_table,
    "dbn_mnist": dbn_table,
    "dbn_mnist_dropout": lambda results: dbn_table(results, "dbn_mnist_dropout", DROPOUT_ANCHORS + " " + (
        _pretrained_reference(results, "dbn_mnist_dropout", "dropout", "without dropout"))),
    "dbn_mnist_bf16": lambda results: dbn_table(results, "dbn_mnist_bf16", _pretrained_reference(
        results, "dbn_mnist_bf16", "bfloat16", "float32")),
    "label_scarcity": lambda results: _grid_table(results, "label_scarcity", "budgets", "labels",
                                                  "label budget"),
    "depth": lambda results: _grid_table(results, "depth", "depths", "hidden layers", "depth"),
}


def render(text, results=ROOT / "results"):
    """``text`` with every table regenerated from the JSON files in ``results``."""
    for name, make in TABLES.items():
        pattern = re.compile(rf"(<!-- table:{name} -->\n).*?(<!-- /table:{name} -->)", re.S)
        table = make(results)
        text = pattern.sub(lambda m: m.group(1) + table + "\n" + m.group(2), text)
    return text


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="fail if README.md is out of date")
    p.add_argument("--readme", default=str(ROOT / "README.md"))
    p.add_argument("--results", default=str(ROOT / "results"), help="directory of the JSON results")
    args = p.parse_args(argv)
    readme = Path(args.readme)
    old = readme.read_text()
    new = render(old, args.results)
    if args.check:
        if new != old:
            print("README.md tables are out of date: run python experiments/make_tables.py")
            return 1
        return 0
    readme.write_text(new)
    print(f"updated {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
