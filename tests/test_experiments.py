"""End-to-end tests of the experiment scripts in their ``--quick`` modes.

The scripts are imported from experiments/ and their ``main(argv)`` is called in this
process (one TensorFlow import for all). They share one output directory and one
checkpoint root, as a user running them one after the other would: the pretrained
stacks of dbn_mnist are then reused by label_scarcity and depth (shared layer cache),
which the tests check. These are the slowest tests of the suite (~2-3 minutes on 2
busy cores, a third of it benchmark_cd's three subprocesses).

The numbers of the quick runs are bounded by what they reach (measured on seed 0/1,
written next to each bound, with margin for other CPUs' rounding) and checked against
each other and against baselines (pretrained vs random, the base-rate model), so a
run that learns nothing or reports the wrong number fails here.
"""

import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import pytest

import dbn.protocols.comparison
import dbn.models.dbn
import dbn.training.minimize
from dbn import data as datasets

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"
SCRIPTS = ["autoencoder_mnist", "autoencoder_2d", "benchmark_pipeline", "train_rbm", "likelihood_bracket", "dbn_likelihood", "dbn_mnist", "label_scarcity", "depth", "finetune_protocol", "demo",
           "benchmark_cd", "benchmark_finetune",
           "demo_data", "dbn_generative", "make_tables", "trust_audit", "carry", "baselines",
           "benchmark_samplers", "nielsen_reference", "logistic_pca"]
PROVENANCE_KEYS = {"config", "seed", "git_commit", "environment", "wall_time_seconds",
                   "started_utc"}


def load_script(name):
    spec = importlib.util.spec_from_file_location(f"experiment_{name}", EXPERIMENTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_json(path):
    return json.loads(Path(path).read_text())


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def check_provenance(payload):
    assert PROVENANCE_KEYS <= payload.keys()
    assert payload["wall_time_seconds"] > 0
    assert isinstance(payload["environment"]["packages"], dict)
    assert payload["git_commit"]


def without_timing(payload):
    """A result payload without the fields that legitimately change between runs."""
    return {k: v for k, v in payload.items()
            if k not in ("wall_time_seconds", "started_utc", "git_commit", "environment")}


def forbid_training(monkeypatch):
    """Make any pretraining or fine-tuning fail: everything must come from caches."""
    def fail(*args, **kwargs):
        raise AssertionError("a cached run or layer was recomputed")

    monkeypatch.setattr(dbn.models.dbn, "train_rbm", fail)
    monkeypatch.setattr(dbn.protocols.comparison, "run_one", fail)
    monkeypatch.setattr(dbn.protocols.comparison, "refit_one", fail)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("experiments")
    return {"out": root / "results", "ck": root / "checkpoints"}


def common_args(workdir, *extra):
    return ["--quick", "--out", str(workdir["out"]), "--checkpoint-dir", str(workdir["ck"]), *extra]


# --------------------------------------------------------------------------- --help
@pytest.mark.parametrize("name", SCRIPTS)
def test_help_exits_zero(name, capsys):
    module = load_script(name)
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and ("--out" in out or name in ("make_tables", "carry"))



def test_help_is_instant_no_tensorflow_imported():
    """``--help`` of every script answers without importing TensorFlow (seconds, and
    its log lines on stderr): the heavy imports wait until the options are parsed.
    One fresh interpreter runs every script's --help in turn and names the first
    script after which TensorFlow (or Keras) is in ``sys.modules``."""
    import subprocess
    import sys

    probe = (
        "import runpy, sys\n"
        "for path in sys.argv[1:]:\n"
        "    sys.argv = [path, '--help']\n"
        "    try:\n"
        "        runpy.run_path(path, run_name='__main__')\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, (path, e.code)\n"
        "    heavy = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)\n"
        "    if heavy:\n"
        "        print('IMPORTED', path, heavy, file=sys.stderr)\n"
        "        sys.exit(3)\n"
    )
    paths = sorted(str(p) for p in EXPERIMENTS.glob("*.py"))
    assert len(paths) >= len(SCRIPTS)
    result = subprocess.run([sys.executable, "-c", probe, *paths], capture_output=True, text=True,
                            cwd=EXPERIMENTS.parent, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


# --------------------------------------------------------------------------- train_rbm
def test_train_rbm_quick_and_resume(workdir):
    main = load_script("train_rbm").main
    args = common_args(workdir)
    payload, first_seconds = timed(main, args)
    out = workdir["out"]
    written = read_json(out / "rbm_cd1.json")
    check_provenance(written)
    assert written["seed"] == 0 and written["config"]["quick"] is True
    ais = written["ais"]
    assert {"log_z", "log_z_std", "test_log_prob", "train_log_prob", "runs", "betas"} <= ais.keys()
    assert ais["runs"] == 16 and ais["betas"] == 1001
    assert np.isfinite(ais["log_z"]) and 0 <= ais["log_z_std"] < 0.02  # measured 0.003
    # The base-rate model (independent pixels at the training means, what an untrained
    # RBM is) on the same fixed binarizations scores -206.03 (test) / -208.00 (train);
    # the quick RBM measured -205.65 / -207.66, its AIS interval +-0.01.
    base_test, base_train = base_rate_log_probs(seed=0, n_train=2000, validation_size=500)
    assert base_test + 0.15 < ais["test_log_prob_lower"] <= ais["test_log_prob"], (ais, base_test)
    assert ais["test_log_prob"] <= ais["test_log_prob_upper"] < base_test + 3.0, (ais, base_test)
    assert ais["test_log_prob_upper"] - ais["test_log_prob_lower"] < 0.1
    assert base_train + 0.15 < ais["train_log_prob"] < base_train + 3.0, (ais, base_train)
    assert len(written["history"]["reconstruction_error"]) == 2  # 2 epochs in quick mode
    # Pixel squared error of the base-rate reconstruction ~0.086; measured 0.0868, 0.0865.
    assert all(0.06 < e < 0.095 for e in written["history"]["reconstruction_error"])
    with np.load(out / "rbm_cd1.npz") as f:
        arrays = {k: f[k] for k in f.files}
    assert arrays["W"].shape == (784, 50)
    assert arrays["visible_bias"].shape == (784,) and arrays["hidden_bias"].shape == (50,)
    for png in ("rbm_cd1_curves.png", "rbm_cd1_filters.png", "rbm_cd1_samples.png"):
        assert (out / png).stat().st_size > 0

    # A rerun resumes from the finished backup: no epoch is retrained, same model and
    # the same (seeded) AIS estimate.
    again, second_seconds = timed(main, args)
    with np.load(out / "rbm_cd1.npz") as f:
        for k in arrays:
            np.testing.assert_array_equal(f[k], arrays[k])
    assert again["ais"] == payload["ais"]
    assert again["history"] == payload["history"]
    print(f"train_rbm --quick: {first_seconds:.1f}s, rerun {second_seconds:.1f}s")


def test_likelihood_bracket_quick(workdir):
    """Forward AIS rerun on train_rbm's quick model reproduces its recorded log Z exactly
    (same data rebuilt, same seed); RAISE on 100 test images agrees with it closely for
    this nearly base-rate model (measured: 0.001 nats apart), and missing models are
    refused before any work."""
    main = load_script("likelihood_bracket").main
    if not (workdir["out"] / "rbm_cd1.json").exists():
        pytest.skip("needs train_rbm's quick run (run the whole file)")
    payload = main(["--quick", "--models-dir", str(workdir["out"]), "--out", str(workdir["out"])])
    check_provenance(payload)
    r = read_json(workdir["out"] / "likelihood_bracket.json")["models"]["rbm_cd1"]
    recorded = read_json(workdir["out"] / "rbm_cd1.json")["ais"]
    assert r["forward_ais"]["log_z"] == recorded["log_z"]
    assert r["forward_ais"]["test_log_prob"] == recorded["test_log_prob"]
    assert r["raise"]["raise_examples"] == 100 and r["raise"]["raise_betas"] == 1001
    assert abs(r["gap_subset"]) < 0.05, r["gap_subset"]
    base_test, _ = base_rate_log_probs(seed=0, n_train=2000, validation_size=500)
    assert r["raise"]["raise_log_prob"] < base_test + 3.0  # the quick RBM is near base rate
    with pytest.raises(SystemExit) as exit_info:
        main(["--quick", "--models-dir", str(workdir["out"]), "--models", "rbm_nothing"])
    assert exit_info.value.code == 2


def test_dbn_likelihood_quick(workdir):
    """A second layer on train_rbm's quick RBM: the RBM's AIS is reproduced exactly, the
    DBN's bound is close to the RBM's log p (a near-base-rate first layer leaves little
    to model; measured -205.66 vs -205.65), and the conservative figure is lower."""
    main = load_script("dbn_likelihood").main
    if not (workdir["out"] / "rbm_cd1.json").exists():
        pytest.skip("needs train_rbm's quick run (run the whole file)")
    payload = main(common_args(workdir, "--models-dir", str(workdir["out"])))
    check_provenance(payload)
    r = read_json(workdir["out"] / "dbn_likelihood.json")
    assert r["rbm"]["test_log_prob"] == read_json(workdir["out"] / "rbm_cd1.json")["ais"]["test_log_prob"]
    dbn = r["dbn"]
    assert dbn["layer_sizes"] == [784, 50, 30] and dbn["examples"] == 10_000 and dbn["samples"] == 3
    assert dbn["bound_conservative"] <= dbn["bound"]
    assert abs(r["improvement_over_rbm"]) < 1.0, r["improvement_over_rbm"]
    assert len(r["history"]["reconstruction_error"]) == 2


def base_rate_log_probs(*, seed, n_train, validation_size):
    """Mean log p of the test and training images under the base-rate model fitted to
    the training images, with train_rbm's fixed stochastic binarizations (seed+1, +3)."""
    from dbn.ops import logit_base_rate

    data = datasets.load(validation_size=validation_size, n_train=n_train, seed=seed)
    train = datasets.binarize(data.x_train, "stochastic", seed=seed + 1)
    test = datasets.binarize(data.x_test, "stochastic", seed=seed + 3)
    b = logit_base_rate(train).astype(np.float64)
    log_z = np.logaddexp(0.0, b).sum()
    return float(np.mean(test @ b) - log_z), float(np.mean(train @ b) - log_z)


# --------------------------------------------------------------------------- dbn_mnist
# Quick-mode test errors, measured (seed 0, seed 1): pretrained 0.297, 0.304; Glorot
# 0.580, 0.540; N(0, 0.01^2) 0.857, 0.832 (chance 0.9).
QUICK_ERROR_BOUNDS = {"pretrained": (0.2, 0.4), "random_glorot": (0.4, 0.75),
                      "random_normal": (0.7, 0.92)}


@pytest.fixture(scope="module")
def dbn_mnist_run(workdir):
    """dbn_mnist --quick (2 seeds x 3 inits): pretrains the 784-100-100-200 stacks."""
    main = load_script("dbn_mnist").main
    _, seconds = timed(main, common_args(workdir))
    return read_json(workdir["out"] / "dbn_mnist.json"), seconds


def test_dbn_mnist_quick(dbn_mnist_run, workdir):
    payload, _ = dbn_mnist_run
    check_provenance(payload)
    assert payload["complete"] is True
    assert payload["seed"] == [0, 1]
    for key in ("pretrained", "random_glorot", "random_normal"):
        errors = payload[key]["test_error"]
        low, high = QUICK_ERROR_BOUNDS[key]
        assert len(errors) == 2 and all(low < e < high for e in errors), (key, errors)
        assert payload[key]["mean"] == pytest.approx(np.mean(errors))
    # Pretraining helps even in the quick runs, seed by seed (margins 0.24-0.28, 0.53).
    for pretrained, glorot, normal in zip(*(payload[k]["test_error"] for k in QUICK_ERROR_BOUNDS)):
        assert pretrained + 0.15 < glorot and pretrained + 0.3 < normal
    for run in payload["runs"]:  # the validation error tracks the test error (measured < 0.02)
        assert abs(run["val_error"] - run["test_error"]) < 0.06, run
        assert 1 <= run["best_epoch"] <= run["epochs_run"] <= 3
    tests = payload["welch_t_tests"]
    assert set(tests) == {"pretrained_vs_random_glorot", "pretrained_vs_random_normal"}
    for name, test in tests.items():
        failed = [payload[k]["n_failed"] for k in ("pretrained", name.removeprefix("pretrained_vs_"))]
        if any(failed):  # quick N(0, 0.01^2) nets sit near chance: failures counted, ranks compared
            assert test["runs"] == "trained" and test["n_failed"] == failed
            assert 0.0 <= test["fisher_p"] <= 1.0 and 0.0 <= test["rank_sum_p"] <= 1.0
        else:
            assert test["runs"] == "all" and test["p_value"] is not None and 0.0 <= test["p_value"] <= 1.0
    assert len(payload["runs"]) == 6
    assert payload["config"]["layer_sizes"] == [784, 100, 100, 200]
    assert (workdir["out"] / "dbn_mnist_val_error.png").stat().st_size > 0


def test_dbn_mnist_rerun_reuses_every_cached_run(dbn_mnist_run, workdir, monkeypatch):
    payload, first_seconds = dbn_mnist_run
    forbid_training(monkeypatch)
    main = load_script("dbn_mnist").main
    _, second_seconds = timed(main, common_args(workdir))
    again = read_json(workdir["out"] / "dbn_mnist.json")
    assert without_timing(again) == without_timing(payload)
    assert second_seconds < 0.5 * first_seconds, (first_seconds, second_seconds)


def test_dbn_mnist_tuned_rates_reuse_the_runs_at_the_rate_they_share(dbn_mnist_run, workdir, monkeypatch):
    """--tune-lr 0.001 0.003 --seeds 0: the rate-0.001 runs of seed 0 are dbn_mnist's
    (reused, not retrained); only the 0.003 runs are new; each initialisation reports the
    rate it was given and the validation errors behind it, and the per-seed figure."""
    trained = []
    run_one = dbn.protocols.comparison.run_one

    def counting_run_one(*args, **kwargs):
        trained.append((kwargs["init"], kwargs["finetune_config"].learning_rate))
        return run_one(*args, **kwargs)

    monkeypatch.setattr(dbn.protocols.comparison, "run_one", counting_run_one)
    out = workdir["out"] / "tuned"
    load_script("dbn_mnist").main(["--quick", "--out", str(out), "--checkpoint-dir", str(workdir["ck"]),
                                   "--tune-lr", "0.001", "0.003", "--seeds", "0"])
    assert sorted(trained) == [("glorot", 0.003), ("normal", 0.003), ("pretrained", 0.003)]
    payload = read_json(out / "dbn_mnist.json")
    mnist, _ = dbn_mnist_run
    for key in ("pretrained", "random_glorot", "random_normal"):
        tuning = payload["tuning"][key]
        assert set(tuning["val_error"]) == {"0.001", "0.003"}
        assert tuning["chosen"] == float(min(tuning["val_error"], key=tuning["val_error"].get))
        seed0 = next(r for r in mnist["runs"] if RESULT_KEYS_BY_NAME[key] == r["init"] and r["seed"] == 0)
        assert tuning["val_error"]["0.001"] == seed0["val_error"]
    assert (out / "dbn_mnist_seeds.png").stat().st_size > 0


def test_dbn_mnist_dropout_protocol_writes_its_own_results(dbn_mnist_run, workdir):
    """--dropout 0.2 0.5 --result-name dbn_mnist_dropout: input and hidden dropout, its own
    runs (the no-dropout ones are not reused: the dropout is in their key) and its own
    JSON, in dbn_mnist's format."""
    out = workdir["out"] / "dropout"
    load_script("dbn_mnist").main(["--quick", "--out", str(out), "--checkpoint-dir", str(workdir["ck"]),
                                   "--dropout", "0.2", "0.5", "--result-name", "dbn_mnist_dropout",
                                   "--seeds", "0", "--inits", "pretrained"])
    payload = read_json(out / "dbn_mnist_dropout.json")
    assert not (out / "dbn_mnist.json").exists()
    assert payload["config"]["dropout"] == [0.2, 0.5] and payload["complete"] is True
    mnist, _ = dbn_mnist_run
    assert payload["pretrained"]["test_error"][0] != mnist["pretrained"]["test_error"][0]
    assert 0.05 < payload["pretrained"]["test_error"][0] < 0.5  # quick: 2,000 labels, 3 epochs
    with pytest.raises(ValueError, match="--dropout 0.1 0.2 0.3"):
        load_script("dbn_mnist").main(["--quick", "--out", str(out), "--checkpoint-dir", str(workdir["ck"]),
                                       "--dropout", "0.1", "0.2", "0.3"])


def test_dbn_mnist_tuned_dropout_reuses_the_no_dropout_run_and_reports_the_choice(dbn_mnist_run, workdir,
                                                                                  monkeypatch):
    """--dropout 0.2 0.5 --tune-lr 0.001 --tune-dropout 0: the no-dropout candidate at rate
    0.001 is dbn_mnist's own run of seed 0 (its validation error comes back, not
    retrained), the lower validation error wins, the seed runs with it, and the table says
    which setting won from which errors."""
    trained = []
    run_one = dbn.protocols.comparison.run_one

    def counting_run_one(*args, **kwargs):
        trained.append(kwargs["dropout"])
        return run_one(*args, **kwargs)

    monkeypatch.setattr(dbn.protocols.comparison, "run_one", counting_run_one)
    out = workdir["out"] / "dropout_tuned"
    load_script("dbn_mnist").main(["--quick", "--out", str(out), "--checkpoint-dir", str(workdir["ck"]),
                                   "--dropout", "0.2", "0.5", "--result-name", "dbn_mnist_dropout",
                                   "--tune-lr", "0.001", "--tune-dropout", "0", "--seeds", "0",
                                   "--inits", "pretrained"])
    assert all(d != 0.0 for d in trained), trained  # only the dropout run may be new
    payload = read_json(out / "dbn_mnist_dropout.json")
    mnist, _ = dbn_mnist_run
    seed0 = next(r for r in mnist["runs"] if r["init"] == "pretrained" and r["seed"] == 0)
    tuning = payload["tuning"]["pretrained"]["dropout"]
    assert list(tuning["val_error"]) == ["0.2,0.5", "0"]
    assert tuning["val_error"]["0"] == seed0["val_error"]
    chosen = min(tuning["val_error"], key=lambda k: (tuning["val_error"][k], k != "0.2,0.5"))
    assert tuning["chosen"] == ([0.2, 0.5] if chosen == "0.2,0.5" else 0.0)
    (run,) = payload["runs"]
    assert run["dropout"] == tuning["chosen"]
    if chosen == "0":  # the seed's run is dbn_mnist's
        assert run["test_error"] == seed0["test_error"]
    table = load_script("make_tables").dbn_table(out, "dbn_mnist_dropout")
    assert f"| dropout chosen at that rate (validation error per setting, seed 0) | {chosen} (0.2,0.5: " in table
    assert "then its dropout chosen on the same split at that rate from {0.2,0.5; 0}" in table


RESULT_KEYS_BY_NAME = {"pretrained": "pretrained", "random_glorot": "glorot", "random_normal": "normal"}
RESULT_KEYS = {v: k for k, v in RESULT_KEYS_BY_NAME.items()}


def test_dbn_mnist_refit_retrains_the_cached_early_stopped_runs(dbn_mnist_run, workdir, monkeypatch):
    """--refit reuses dbn_mnist's early-stopped runs and stacks (nothing is fine-tuned or
    pretrained again), retrains each on training + validation labels for its best number
    of epochs, and reports the refitted test errors; a rerun reuses the refits."""
    payload, _ = dbn_mnist_run
    refit_one, refits = dbn.protocols.comparison.refit_one, []

    def recording_refit_one(*args, **kwargs):
        refits.append(kwargs["init"])
        return refit_one(*args, **kwargs)

    forbid_training(monkeypatch)  # no pretraining, no early-stopped run ...
    monkeypatch.setattr(dbn.protocols.comparison, "refit_one", recording_refit_one)  # ... only refits
    out = workdir["out"] / "refit"
    args = ["--quick", "--out", str(out), "--checkpoint-dir", str(workdir["ck"]), "--refit",
            "--seeds", "1", "--inits", "pretrained", "glorot"]
    load_script("dbn_mnist").main(args)
    refitted = read_json(out / "dbn_mnist.json")
    assert refitted["complete"] and refitted["config"]["finetune"]["refit"] is True
    assert sorted(refits) == ["glorot", "pretrained"]
    before = {(r["seed"], r["init"]): r for r in payload["runs"]}
    data = datasets.load(n_train=2000, seed=0)
    for run in refitted["runs"]:
        early = before[(run["seed"], run["init"])]
        assert run["early_stopped_test_error"] == early["test_error"]
        assert run["val_error"] == early["val_error"]
        assert run["refit"]["epochs"] == len(run["refit"]["learning_rates"]) == early["best_epoch"]
        assert run["refit"]["n_labels"] == len(data.x_train) + len(data.x_val)
        assert run["test_error"] == run["refit"]["test_error"]
        assert "_refit_" in run["run_dir"] and run["run_dir"] != run["early_stopped_run_dir"]
        model = dbn.protocols.comparison.load_classifier(workdir["ck"], run["run_dir"])  # hashes verified
        assert model.count_params() > 0
    assert refitted["pretrained"]["test_error"] == [
        r["refit"]["test_error"] for r in refitted["runs"] if r["init"] == "pretrained"]
    # 12,000 labels instead of 2,000: measured 0.091 (pretrained) and 0.109 (Glorot) after
    # the refit, from 0.304 and 0.540 early-stopped.
    for run in refitted["runs"]:
        assert run["test_error"] < 0.2 and run["test_error"] < run["early_stopped_test_error"] - 0.1
    table = load_script("make_tables").dbn_table(out)
    assert "before the refit" in table and "retrained on training + validation" in table

    monkeypatch.setattr(dbn.protocols.comparison, "refit_one", lambda *a, **k: pytest.fail("refit redone"))
    load_script("dbn_mnist").main(args)
    assert without_timing(read_json(out / "dbn_mnist.json")) == without_timing(refitted)


def test_refit_with_a_label_budget_is_refused(workdir):
    with pytest.raises(ValueError, match="refit.*label_budgets"):
        load_script("label_scarcity").main(common_args(workdir, "--refit"))


# --------------------------------------------------------------------------- label scarcity, depth
def test_label_scarcity_quick_reuses_dbn_mnist_stacks_and_runs(dbn_mnist_run, workdir, monkeypatch):
    def no_pretraining(*args, **kwargs):
        raise AssertionError("label_scarcity retrained a layer dbn_mnist had pretrained")

    fine_tuned = []
    run_one = dbn.protocols.comparison.run_one

    def counting_run_one(*args, **kwargs):
        fine_tuned.append((kwargs["label_budget"], kwargs["finetune_config"].min_epoch_size))
        return run_one(*args, **kwargs)

    monkeypatch.setattr(dbn.models.dbn, "train_rbm", no_pretraining)
    monkeypatch.setattr(dbn.protocols.comparison, "run_one", counting_run_one)
    load_script("label_scarcity").main(common_args(workdir, "--seeds", "0"))
    payload = read_json(workdir["out"] / "label_scarcity.json")
    check_provenance(payload)
    assert payload["complete"] is True
    assert set(payload["budgets"]) == {"100", "all"}
    # Only the 100-label runs are new, 10 copies per epoch (quick: --min-epoch-size 1000);
    # the all-labels runs (2,000 >= 1,000: nothing repeated) are dbn_mnist's.
    assert fine_tuned == [(100, 1000), (100, 1000)]
    mnist, _ = dbn_mnist_run
    all_labels = payload["budgets"]["all"]
    for key in ("pretrained", "random_glorot"):
        assert all_labels[key]["test_error"] == mnist[key]["test_error"][:1]
    assert all_labels["n_labels"] == payload["config"]["data"]["train_labels"]
    assert payload["budgets"]["100"]["n_labels"] == 100
    for row in payload["budgets"].values():
        for key in ("pretrained", "random_glorot"):
            assert len(row[key]["test_error"]) == 1 and 0.0 <= row[key]["mean"] <= 1.0
        assert "pretrained_vs_random_glorot" in row["welch_t_tests"]
    # 100 labels x 10 copies, 3 epochs: measured 0.438 (pretrained), 0.634 (Glorot),
    # against 0.297 and 0.580 with all 2,000 labels: fewer labels, more errors.
    few = payload["budgets"]["100"]
    assert few["pretrained"]["mean"] < 0.9 and few["random_glorot"]["mean"] < 0.95
    for key in ("pretrained", "random_glorot"):
        assert few[key]["mean"] > all_labels[key]["mean"] + 0.03
    assert len(payload["runs"]) == 4
    assert (workdir["out"] / "label_scarcity.png").stat().st_size > 0


def test_depth_quick(dbn_mnist_run, workdir, monkeypatch):
    def no_pretraining(*args, **kwargs):
        raise AssertionError("depth retrained a layer shared with dbn_mnist's stack")

    # 784-100 and 784-100-100 (seed 0) are prefixes of dbn_mnist's 784-100-100-200 stack.
    monkeypatch.setattr(dbn.models.dbn, "train_rbm", no_pretraining)
    load_script("depth").main(common_args(workdir, "--seeds", "0"))
    payload = read_json(workdir["out"] / "depth.json")
    check_provenance(payload)
    assert payload["complete"] is True
    assert set(payload["depths"]) == {"1", "2"}
    assert payload["depths"]["1"]["layer_sizes"] == [784, 100]
    assert payload["depths"]["2"]["layer_sizes"] == [784, 100, 100]
    for row in payload["depths"].values():
        for key in ("pretrained", "random_glorot"):
            # Measured: depth 1 0.272 / 0.202, depth 2 0.325 / 0.361 (pretrained / Glorot).
            assert len(row[key]["test_error"]) == 1 and 0.1 < row[key]["mean"] < 0.5
    assert len(payload["runs"]) == 4
    assert (workdir["out"] / "depth.png").stat().st_size > 0


def test_depth_writes_every_finished_run_and_each_depths_tuning(dbn_mnist_run, workdir, monkeypatch):
    """--tune-lr: each depth's row records every initialisation's chosen rate (the lowest
    validation error of the grid) and the errors behind it, which the README table shows;
    and the JSON is written after every run, so a run killed within a depth (here: the
    Glorot net of the seeds' phase fails) leaves the finished runs on disk, marked partial."""
    out = workdir["out"] / "depth_tuned"
    args = ["--quick", "--out", str(out), "--checkpoint-dir", str(workdir["ck"]), "--depths", "1",
            "--seeds", "0", "1", "--tune-lr", "0.001", "0.003"]
    run_one = dbn.protocols.comparison.run_one

    def dies_on_seed_1_glorot(*a, **k):
        if k["seed"] == 1 and k["init"] == "glorot":
            raise KeyboardInterrupt
        return run_one(*a, **k)

    monkeypatch.setattr(dbn.protocols.comparison, "run_one", dies_on_seed_1_glorot)
    with pytest.raises(KeyboardInterrupt):
        load_script("depth").main(args)
    partial = read_json(out / "depth.json")
    assert partial["complete"] is False
    assert sorted((r["init"], r["seed"]) for r in partial["runs"]) == [
        ("glorot", 0), ("pretrained", 0), ("pretrained", 1)]
    monkeypatch.setattr(dbn.protocols.comparison, "run_one", run_one)
    load_script("depth").main(args)
    payload = read_json(out / "depth.json")
    assert payload["complete"] is True and len(payload["runs"]) == 4
    row = payload["depths"]["1"]
    for key in ("pretrained", "random_glorot"):
        tuning = row["tuning"][key]
        assert set(tuning["val_error"]) == {"0.001", "0.003"}
        assert tuning["chosen"] == float(min(tuning["val_error"], key=tuning["val_error"].get))
        assert all(r["learning_rate"] == tuning["chosen"] for r in payload["runs"]
                   if RESULT_KEYS[r["init"]] == key)
    table = load_script("make_tables")._grid_table(out, "depth", "depths", "hidden layers", "depth")
    chosen = row["tuning"]["random_glorot"]["chosen"]
    assert f"**{chosen:g}** (0.001: {100 * row['tuning']['random_glorot']['val_error']['0.001']:.2f}%" in table


def test_grid_table_reports_failed_runs_beside_the_mean_and_the_gaps_interval(tmp_path):
    from dbn.protocols.statistics import summarize_errors

    per_init, tests = summarize_errors({"pretrained": [0.17, 0.15, 0.16],
                                        "random_glorot": [0.30, 0.89, 0.28, 0.88]})
    (tmp_path / "label_scarcity.json").write_text(json.dumps({
        "budgets": {"100": {**per_init, "welch_t_tests": tests}}, "complete": True, "git_commit": "abc",
        "config": {"seeds": [0, 1, 2], "finetune": {"optimizer": "adam", "learning_rate": 0.001}}}))
    table = load_script("make_tables")._grid_table(tmp_path, "label_scarcity", "budgets", "labels", "label budget")
    row = next(line for line in table.splitlines() if line.startswith("| 100 |"))
    t = tests["pretrained_vs_random_glorot"]
    assert "58.75% ± 34.36 (2 of 4 failed to train; the others 29.00%)" in row
    # The gap and its interval are over the runs that trained (an interval over all runs
    # would mix two clusters), the failures are counted beside it.
    assert f"{100 * (0.16 - 0.29):+.2f} [{100 * t['ci95'][0]:+.2f}, {100 * t['ci95'][1]:+.2f}], p = {t['p_value']:.2g}" \
        " over the runs that trained; failed 0 of 3 vs 2 of 4 (Fisher p = 0.43); every run, rank-sum p = " in row


def test_grid_table_gives_the_gaps_without_the_tuning_seed(tmp_path):
    """The tuning seed chose the rates on its own validation runs: the table adds each gap
    over the other seeds alone (here seed 0 holds the largest gap; dropping it changes
    the numbers, and so would dropping any other seed)."""
    from dbn.protocols.statistics import summarize_errors

    errors = {"pretrained": [0.010, 0.011, 0.012, 0.013], "glorot": [0.030, 0.017, 0.018, 0.016]}
    runs = [{"seed": seed, "init": init, "label_budget": None, "test_error": e}
            for init, per_seed in errors.items() for seed, e in zip([3, 0, 1, 2], per_seed)]
    per_init, tests = summarize_errors({"pretrained": errors["pretrained"], "random_glorot": errors["glorot"]})
    (tmp_path / "label_scarcity.json").write_text(json.dumps({
        "budgets": {"all": {**per_init, "welch_t_tests": tests}}, "runs": runs, "complete": True,
        "git_commit": "abc", "config": {"seeds": [3, 0, 1, 2], "tune_seed": 3, "tune_lr": [1e-3, 3e-3],
                                        "finetune": {"optimizer": "adam", "learning_rate": 0.001}}}))
    table = load_script("make_tables")._grid_table(tmp_path, "label_scarcity", "budgets", "labels", "label budget")
    line = next(line for line in table.splitlines() if line.startswith("- labels all:"))
    held_out = summarize_errors({"pretrained": [0.011, 0.012, 0.013], "glorot": [0.017, 0.018, 0.016]})[1]
    t = held_out["pretrained_vs_glorot"]
    assert line == (f"- labels all: pretrained − glorot {100 * t['mean_difference']:+.2f} "
                    f"[{100 * t['ci95'][0]:+.2f}, {100 * t['ci95'][1]:+.2f}], p = {t['p_value']:.2g}")
    assert "without seed 3" in table


def test_finetune_protocol_quick_reports_validation_only(dbn_mnist_run, workdir, monkeypatch):
    """Candidates are scored on validation error; the test set is left for dbn_mnist.
    The constant-rate candidate is dbn_mnist's own protocol, so its runs are reused."""
    fine_tuned = []
    run_one = dbn.protocols.comparison.run_one

    def counting_run_one(*args, **kwargs):
        fine_tuned.append((kwargs["init"], kwargs["finetune_config"].plateau_factor))
        return run_one(*args, **kwargs)

    monkeypatch.setattr(dbn.protocols.comparison, "run_one", counting_run_one)
    load_script("finetune_protocol").main(common_args(workdir))
    path = workdir["out"] / "finetune_protocol.json"
    payload = read_json(path)
    check_provenance(payload)
    assert payload["complete"] is True
    assert "test_error" not in path.read_text()
    candidates = payload["candidates"]
    assert set(candidates) == {"constant", "plateau"}
    assert fine_tuned == [("pretrained", 0.5), ("glorot", 0.5)]
    mnist, _ = dbn_mnist_run
    for run in candidates["constant"]["runs"]:
        (twin,) = [r for r in mnist["runs"] if (r["seed"], r["init"]) == (0, run["init"])]
        assert run["val_error"] == twin["val_error"]
    assert candidates["plateau"]["finetune"]["plateau_factor"] == 0.5
    for candidate in candidates.values():
        assert [r["init"] for r in candidate["runs"]] == ["pretrained", "glorot"]
        # Measured (both candidates): 0.312 pretrained, 0.580 Glorot.
        pretrained, glorot = (r["val_error"] for r in candidate["runs"])
        assert 0.2 < pretrained < 0.4 and 0.4 < glorot < 0.75 and pretrained + 0.15 < glorot


# --------------------------------------------------------------------------- benchmark, data demo
def test_benchmark_cd_quick(workdir):
    path = workdir["out"] / "benchmark_cd.json"  # the name make_tables reads
    # Six of the nine sides (each is a subprocess starting TensorFlow: ~10 s apiece).
    load_script("benchmark_cd").main(["--quick", "--out", str(path), "--sides", "dbn", "dbn_bf16",
                                      "breakdown", "sklearn", "matmul", "matmul_cd"])
    payload = read_json(path)
    check_provenance(payload)
    assert payload["config"]["n"] == 6000 and payload["config"]["repeats"] == 1
    assert payload["flops_per_epoch"] == 5 * 2 * 6000 * 784 * 500
    summary = payload["summary"]
    for key in ("dbn_samples_per_second", "sklearn_samples_per_second", "speedup_vs_sklearn",
                "dbn_gflops", "matmul_peak_gflops", "dbn_fraction_of_peak"):
        assert summary[key] > 0, key
    assert set(payload["runs"]) == {"dbn", "dbn_bf16", "breakdown", "sklearn", "matmul", "matmul_cd"}
    # The breakdown's increments and the Keras step account for the whole dbn epoch.
    shares = summary["breakdown_share_of_epoch"]
    assert list(shares) == ["products", "sigmoid", "sampling", "update", "keras_step"]
    assert sum(shares.values()) == pytest.approx(1.0)
    assert list(summary["breakdown_epoch_seconds"]) == list(load_script("benchmark_cd").BREAKDOWN_STAGES)
    assert all(len(runs) == 1 for runs in payload["runs"].values())
    # The epoch's five products can take no more than the whole epoch (rounding aside).
    assert 0 < summary["share_of_epoch_in_matmuls"] < 1.2
    assert summary["matmul_cd_gflops"] > 0 and summary["dbn_bf16_speedup_vs_sklearn"] > 0
    assert "bf16_share_of_epoch_in_matmuls" not in summary  # matmul_cd_bf16 was not run
    with pytest.raises(SystemExit):  # the headline ratios need dbn, sklearn and matmul
        load_script("benchmark_cd").main(["--quick", "--out", str(path), "--sides", "dbn", "matmul"])


def test_benchmark_pipeline_quick(workdir):
    path = workdir["out"] / "benchmark_pipeline.json"
    load_script("benchmark_pipeline").main(["--quick", "--out", str(path)])
    payload = read_json(path)
    check_provenance(payload)
    s = payload["summary"]
    stages = s["median_stage_seconds"]
    # The stages add up to the total; the three layers to the pretraining (each timed
    # inside it, so a little less).
    parts = ("import_seconds", "load_seconds", "pretraining_seconds", "fine_tuning_seconds",
             "evaluation_seconds")
    assert abs(sum(stages[k] for k in parts) - stages["total_seconds"]) < 1e-6
    layers = sum(stages[f"pretrain_layer_{i}_seconds"] for i in range(3))
    assert 0 < layers <= stages["pretraining_seconds"] + 1e-6
    assert s["peak_rss_mib"] > 100 and 0 < s["test_error"][0] < 0.9  # 2,000 labels, 3 epochs
    assert s["goal_met"] == (s["median_total_minutes"] <= 10.0)


def test_benchmark_finetune_quick(workdir):
    """The benchmark's subprocesses run the package's fine-tuning with 1 and with
    STEPS_PER_EXECUTION steps per call (the speed is not judged here: nothing is timed in
    the suite)."""
    from dbn.training.finetune import STEPS_PER_EXECUTION

    path = workdir["out"] / "benchmark_finetune.json"
    load_script("benchmark_finetune").main(["--quick", "--out", str(path)])
    payload = read_json(path)
    check_provenance(payload)
    assert payload["config"]["n"] == 3000 and payload["config"]["layers"] == [100, 100]
    assert payload["flops_per_epoch"] == 6 * 3000 * (784 * 100 + 100 * 100 + 100 * 10)
    summary = payload["summary"]
    assert summary["steps_per_execution"] == STEPS_PER_EXECUTION
    sides = ("one_step_per_call", "steps_per_execution", "in_graph_epochs", "in_graph_epochs_bfloat16")
    assert set(payload["runs"]) == {*sides, "breakdown"}
    assert all(run["seconds"] > 0 for side in sides for run in payload["runs"][side])
    assert summary["bfloat16_speedup"] == pytest.approx(
        summary["median_epoch_seconds"]["in_graph_epochs"]
        / summary["median_epoch_seconds"]["in_graph_epochs_bfloat16"])
    stages = summary["breakdown_epoch_seconds"]
    assert list(stages) == ["forward", "forward_backward", "forward_backward_sgd_momentum",
                            "forward_backward_adam"]
    assert all(v > 0 for v in stages.values())
    assert summary["speedup_bound_without_optimizer"] == pytest.approx(
        summary["median_epoch_seconds"]["in_graph_epochs"] / stages["forward_backward"])


def test_benchmark_samplers_quick(workdir):
    """Two samplers in their own processes; the equal-time budget follows rbm_best's
    recorded epochs from the CD-1 and CD-25 epoch costs (nothing is judged on speed)."""
    path = workdir["out"] / "benchmark_samplers.json"
    load_script("benchmark_samplers").main(["--quick", "--n", "300", "--samplers", "cd1", "cd25",
                                            "--out", str(path)])
    summary = read_json(path)["summary"]
    med = summary["median_epoch_seconds"]
    assert set(med) == {"cd1", "cd25"} and all(v > 0 for v in med.values())
    assert summary["reference"]["estimated_here_seconds"] == pytest.approx(60 * (med["cd1"] + med["cd25"]) / 2)
    here = summary["reference"]["estimated_here_seconds"]
    assert summary["equal_time_epochs"] == {s: int(here // med[s]) for s in med}


def test_demo_data(workdir):
    out = workdir["out"] / "demo"
    load_script("demo_data").main(["--out", str(out)])
    payload = read_json(out / "demo_data.json")
    check_provenance(payload)
    counts = payload["class_counts"]
    assert {split: sum(c) for split, c in counts.items()} == {"train": 50_000, "val": 10_000,
                                                             "test": 10_000}
    assert all(len(c) == 10 and min(c) > 0 for c in counts.values())
    for png in ("digits_grey.png", "digits_threshold.png", "class_histogram.png"):
        assert (out / png).stat().st_size > 0


def test_dbn_generative_quick(workdir):
    payload = load_script("dbn_generative").main(common_args(workdir, "--seeds", "0"))
    check_provenance(payload)
    saved = read_json(workdir["out"] / "dbn_generative.json")
    assert saved["generative_test_error"] == payload["generative_test_error"]
    assert 0.03 < saved["generative_test_error"] < 0.2  # measured 0.089; chance is 0.9
    errors = saved["test_errors"]
    # Up-down and the continuation do not make the classifier worse (measured 0.100 ->
    # 0.095 -> 0.089; one epoch's noise on 10,000 test images is about 0.005).
    assert errors["continued"]["deterministic"] <= errors["pretrained"]["deterministic"] + 0.005
    assert abs(errors["up_down"]["stochastic"] - errors["up_down"]["deterministic"]) < 0.03
    # Tuning: two candidates on the validation split, the lower score chosen.
    scores = {t["config"].get("momentum", 0.0): t["score"] for t in saved["tuning"]}
    assert set(scores) == {0.0, 0.5}
    assert saved["chosen"].get("momentum", 0.0) == min(scores, key=scores.get)
    assert saved["config"]["up_down"]["momentum"] == min(scores, key=scores.get)
    assert saved["config"]["up_down"]["epochs"] == 3 and saved["up_down_history"]["k"] == [3, 6, 10]
    # The continuation ran on all labelled images until its training error met the 50k one.
    continued = saved["continuation_history"]
    assert saved["continuation_epochs"] == len(continued["k"]) <= 2
    assert (continued["train_error"][-1] <= saved["final_train_error_50k"]
            or saved["continuation_epochs"] == 2)
    confidence = saved["judge_confidence"]
    assert all(0 < m <= 1 for m in confidence["mean_per_class"])
    accuracy = saved["conditional_accuracy"]
    assert len(accuracy["per_class"]) == 10 and accuracy["overall"] > 0.5  # measured 0.69; chance 0.1
    with np.load(workdir["out"] / "dbn_generative_samples.npz") as f:
        assert f["images"].dtype == np.uint8 and f["images"].shape == (500, 784)
        np.testing.assert_array_equal(f["labels"], np.repeat(np.arange(10), 50))
    for png in ("dbn_generative_grid.png", "dbn_generative_chain.png", "dbn_generative_worst.png",
                "dbn_generative_val_error.png"):
        assert (workdir["out"] / png).stat().st_size > 0
    assert saved["complete"] is True


def test_dbn_generative_stopped_in_the_continuation_keeps_the_up_down_results(workdir, tmp_path,
                                                                             monkeypatch):
    """The continuation (hours in the full run) is cut short by a fault: the JSON already
    holds the up-down's test errors, marked partial, and the README table renders it."""
    import dbn.models.generative

    up_down = dbn.models.generative.GenerativeDBN.up_down

    def faulty(self, *args, **kwargs):
        if kwargs.get("stop_at_train_error") is not None:  # the continuation
            raise RuntimeError("planted fault in the continuation")
        return up_down(self, *args, **kwargs)

    monkeypatch.setattr(dbn.models.generative.GenerativeDBN, "up_down", faulty)
    with pytest.raises(RuntimeError, match="planted fault"):
        load_script("dbn_generative").main(["--quick", "--seeds", "0", "--out", str(tmp_path),
                                             "--checkpoint-dir", str(workdir["ck"])])
    partial = read_json(tmp_path / "dbn_generative.json")
    check_provenance(partial)
    assert partial["complete"] is False and "continued" not in partial["test_errors"]
    assert partial["generative_test_error_up_down"] == partial["test_errors"]["up_down"]["deterministic"]
    assert 0.03 < partial["generative_test_error_up_down"] < 0.2  # the quick run: measured 0.095
    table = load_script("make_tables").generative_table(tmp_path)
    assert f"**{100 * partial['generative_test_error_up_down']:.2f}%**" in table
    assert "not run yet" in table and "partial" in table


def test_samplers_table_takes_rbm_best_from_the_bracket_run_only_if_same_model_and_settings(tmp_path):
    """rbm_best's RAISE comes from likelihood_bracket.json (not rerun) only when that run
    estimated the very same model (its training commit) with the same settings."""
    make_tables = load_script("make_tables")
    settings = {"raise_examples": 1000, "raise_runs": 1, "betas": "full", "seed": 0}

    def entry(commit, value, log_z=300.5):
        return {"model_commit": commit, "raise": {"raise_log_prob": value},
                "forward_ais": {"recorded_log_z": log_z}}

    def write(name, data):
        (tmp_path / f"{name}.json").write_text(json.dumps(data))

    write("likelihood_samplers", {"config": settings, "models": {"rbm_pcd1": entry("c1", -107.0)}})
    write("likelihood_bracket", {"config": settings, "git_commit": "b0b0b0b0b0b0",
                                 "models": {"rbm_best": entry("c0", -85.1), "rbm_cd1": entry("c9", -99.0)}})
    write("rbm_best", {"git_commit": "c0", "ais": {"log_z": 300.5}})  # rbm_cd1.json absent: not taken
    models, _, borrowed = make_tables._sampler_brackets(tmp_path)
    assert {n: m["raise"]["raise_log_prob"] for n, m in models.items()} == {"rbm_pcd1": -107.0,
                                                                          "rbm_best": -85.1}
    assert borrowed == {"rbm_best": "b0b0b0b0b0"}  # the table names where it came from
    write("rbm_best", {"git_commit": "c2", "ais": {"log_z": 300.5}})  # retrained since: stale
    assert set(make_tables._sampler_brackets(tmp_path)[0]) == {"rbm_pcd1"}
    write("rbm_best", {"git_commit": "c0", "ais": {"log_z": 301.0}})  # same commit, another model
    assert set(make_tables._sampler_brackets(tmp_path)[0]) == {"rbm_pcd1"}
    write("rbm_best", {"git_commit": "c0", "ais": {"log_z": 300.5}})
    write("likelihood_bracket", {"config": {**settings, "betas": "coarse"},
                                 "models": {"rbm_best": entry("c0", -85.1)}})
    assert set(make_tables._sampler_brackets(tmp_path)[0]) == {"rbm_pcd1"}


def stale_readme(names):
    """A README holding one out-of-date table per name."""
    return "\n".join(f"<!-- table:{name} -->\nstale\n<!-- /table:{name} -->" for name in names)


def test_readme_tables_are_generated_from_the_committed_results():
    make_tables = load_script("make_tables")
    assert make_tables.main(["--check"]) == 0, "run python experiments/make_tables.py"
    rendered = make_tables.render(stale_readme(make_tables.TABLES))
    assert "stale" not in rendered and rendered.count("<!-- table:") == len(make_tables.TABLES)


def test_one_setting_tables_state_their_difference_from_dbn_mnist(tmp_path):
    """The bfloat16 and dropout tables end with the Welch difference of their pretrained
    seeds from dbn_mnist's, in that order (setting minus reference), from the JSON."""
    import json
    import shutil

    from scipy import stats

    make_tables = load_script("make_tables")
    results = EXPERIMENTS.parent / "results"
    shutil.copy(results / "dbn_mnist.json", tmp_path)
    assert make_tables._pretrained_reference(tmp_path, "dbn_mnist_dropout", "dropout", "without dropout") == (
        "Reference: without dropout, the same protocol, seeds [0, 1, 2, 3, 4]: "
        f"{make_tables._pct(*(json.loads((results / 'dbn_mnist.json').read_text())['pretrained'][k] for k in ('mean', 'std')))}"
        " pretrained (the dbn_mnist table).")  # no dropout run yet: the reference alone
    shutil.copy(results / "dbn_mnist_bf16.json", tmp_path)
    line = make_tables._pretrained_reference(tmp_path, "dbn_mnist_bf16", "bfloat16", "float32")
    a, b = (json.loads((results / f"{n}.json").read_text())["pretrained"]["test_error"]
            for n in ("dbn_mnist_bf16", "dbn_mnist"))
    t = stats.ttest_ind(a, b, equal_var=False)
    ci = t.confidence_interval(0.95)
    assert line.endswith(f" bfloat16 − float32, points [95% CI]: {100 * (np.mean(a) - np.mean(b)):+.2f} "
                         f"[{100 * ci.low:+.2f}, {100 * ci.high:+.2f}], p = {t.pvalue:.2g}.")


# --------------------------------------------------------------------------- demo
def test_demo_quick(dbn_mnist_run, workdir):
    """``make demo`` in its quick mode: pretrained and Glorot networks of 784-100-100,
    DBN samples, filters and curves (run after dbn_mnist with the same checkpoint root,
    as the other scripts are, so its pretrained layers may come from that cache)."""
    out = workdir["out"] / "demo_quick"
    load_script("demo").main(common_args(workdir, "--out", str(out)))
    payload = read_json(out / "demo.json")
    check_provenance(payload)
    assert payload["config"]["quick"] is True and payload["config"]["gibbs_steps"] == 100
    summary = payload["summary"]
    assert set(summary) == {"pretrained", "glorot"}
    # Measured: 0.325 pretrained, 0.361 Glorot (3 epochs on 2,000 labels; chance 0.9).
    for init, s in summary.items():
        assert 0.2 < s["test_error"] < 0.5 and 1 <= s["best_epoch"] <= 3, (init, s)
    assert [r["init"] for r in payload["runs"]] == ["pretrained", "glorot"]
    for png in ("digits.png", "samples.png", "filters.png", "val_error.png"):
        assert (out / png).stat().st_size > 1000, png


def test_trust_audit_runs_its_cases_against_this_checkout(tmp_path):
    """A few cases of the trust audit (experiments/trust_audit.py, 271 cases in all, run
    in full by hand) through the script itself: each must be ok on this tree."""
    import subprocess
    import sys

    out = tmp_path / "audit.json"
    subprocess.run([sys.executable, str(EXPERIMENTS / "trust_audit.py"), "--repo", str(EXPERIMENTS.parent),
                    "--only", "load-n_train-float", "--only", "rbm-weight_decay-nan",
                    "--only", "binarize-0-255-stochastic", "--out", str(out), "-j", "1"],
                   check=True, capture_output=True, timeout=600)
    payload = read_json(out)
    check_provenance(payload)
    outcomes = {case["id"]: case["outcome"] for case in payload["cases"]}
    assert outcomes == {"load-n_train-float": "ok", "rbm-weight_decay-nan": "ok",
                        "binarize-0-255-stochastic": "ok"}, payload["cases"]


# --------------------------------------------------------------------------- logistic_pca
def test_logistic_pca_quick(tmp_path, capsys):
    """--quick: the JSON with provenance, both errors, the paper's anchors and the
    optimiser's report; logistic PCA below PCA (quick, 50 iterations: measured 6.0 against
    14.7); bad options stop the parser."""
    main = load_script("logistic_pca").main
    payload = main(["--quick", "--out", str(tmp_path)])
    check_provenance(payload)
    written = read_json(tmp_path / "logistic_pca.json")
    errors = written["test_squared_error"]
    assert errors["logistic_pca"] < errors["pca"] - 5.0, errors
    assert written["anchor"] == {"logistic_pca": 8.01, "pca": 13.87, "dbn_autoencoder": 3.00}
    assert written["optimisation"]["fit"]["iterations"] <= 50 and written["config"]["components"] == 30
    for argv, named in ((["--components", "0"], "--components"), (["--max-iter", "-1"], "--max-iter"),
                        (["--n-train", "10"], "--n-train")):
        with pytest.raises(SystemExit) as exit_info:
            main(argv + ["--out", str(tmp_path)])
        assert exit_info.value.code == 2 and named in capsys.readouterr().err


# --------------------------------------------------------------------------- carry
def test_carry_saves_and_restores_verified_run_directories(tmp_path, monkeypatch):
    from dbn.training.checkpoint import CheckpointCorruptError, RunDir

    carry = load_script("carry")
    monkeypatch.setattr(carry, "CARRY", tmp_path / "carry")
    here, there = tmp_path / "here", tmp_path / "there"
    spec = {"what": "test", "n": 1}
    with RunDir(here / "group" / "run_a", spec, what="test run") as run:
        for epoch in (1, 2):
            run.save(files={"w.npy": lambda path: np.save(path, np.arange(epoch))}, state={"epoch": epoch})
    assert carry.main(["save", "group/run_a", "--checkpoint-dir", str(here)]) == 0
    assert not (tmp_path / "carry" / "group" / "run_a" / ".lock").exists()
    assert carry.main(["restore", "--checkpoint-dir", str(there)]) == 0
    with RunDir(there / "group" / "run_a", spec, what="test run") as run:  # verified on open
        assert run.state("state") == {"epoch": 2}
        np.testing.assert_array_equal(np.load(run.file("w.npy")), np.arange(2))
        run.save(state={"epoch": 3})  # the target moves on: a later restore keeps it
    assert carry.main(["restore", "--checkpoint-dir", str(there)]) == 0
    with RunDir(there / "group" / "run_a", spec, what="test run") as run:
        assert run.state("state") == {"epoch": 3}
    # A damaged carried file is refused with its path, never restored.
    carried = next((tmp_path / "carry" / "group" / "run_a").glob("*w.npy"))
    damaged = bytearray(carried.read_bytes())
    damaged[-1] ^= 0xFF
    carried.write_bytes(bytes(damaged))
    with pytest.raises(CheckpointCorruptError, match="w.npy"):
        carry.main(["restore", "--checkpoint-dir", str(tmp_path / "elsewhere")])
    with pytest.raises(SystemExit):
        carry.main(["save", "group/missing", "--checkpoint-dir", str(here)])


def test_carry_result_only_is_reused_by_compare_and_refuses_the_missing_network(tmp_path, monkeypatch):
    """A comparison carried by --result-only (spec + result, no network) is reused on
    another machine as the finished run (nothing trains again, the same numbers come
    back); its network is refused by name, not reported as corrupt; an unfinished run is
    not carried that way; the carried runs are kilobytes."""
    import dataclasses

    from dbn import data as datasets
    from dbn.protocols import comparison
    from dbn.training.checkpoint import CheckpointError, RunDir
    from dbn.training.configs import FineTuneConfig, RBMTrainingConfig

    carry = load_script("carry")
    monkeypatch.setattr(carry, "CARRY", tmp_path / "carry")
    here, there = tmp_path / "here", tmp_path / "there"
    d = datasets.load(n_train=200, validation_size=100, seed=0)
    d = dataclasses.replace(d, x_test=d.x_test[:200], y_test=d.y_test[:200])
    kwargs = dict(layer_sizes=[784, 8], layer_configs=RBMTrainingConfig(epochs=1, final_learning_rate=None),
                  finetune_config=FineTuneConfig(max_epochs=2, patience=2, refit=True), seeds=[0],
                  inits=("pretrained", "glorot"), tag="test", verbose=0)
    runs = comparison.compare(d, checkpoint_root=here, **kwargs)
    with RunDir(here / "runs" / "unfinished", {"what": "test"}) as run:
        run.save(training={"epoch": 1})
    assert carry.finished_under(here, "runs") == sorted(
        [run["run_dir"] for run in runs] + [run["early_stopped_run_dir"] for run in runs])
    # A run another process holds (being trained) is skipped at once, not waited for.
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(here / runs[0]['run_dir'] / '.lock')!r}, os.O_RDWR)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(60)\n")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.perf_counter()
        assert runs[0]["run_dir"] not in carry.finished_under(here, "runs")
        assert time.perf_counter() - t0 < 10
    finally:
        holder.kill()
        holder.wait()
    assert carry.main(["save", "--result-only", "--finished-under", "runs", "--checkpoint-dir", str(here)]) == 0
    carried = [f for f in (tmp_path / "carry").rglob("*") if f.is_file()]
    assert {f.name for f in carried} == {"manifest.json"} and len(carried) == 4
    assert max(f.stat().st_size for f in carried) < 100_000
    # Each names where its result was computed: the source's commit and CPUs.
    source = read_json(here / runs[0]["run_dir"] / "manifest.json")
    origin = read_json(tmp_path / "carry" / runs[0]["run_dir"] / "manifest.json")["state"]["carried_from"]
    assert origin == {k: source[k] for k in ("version", "written_utc", "git_commit", "cpus")}
    # Saved again, an unchanged result is left as it is (no new manifest to commit).
    before = {f: f.read_bytes() for f in carried}
    assert carry.main(["save", "--result-only", "--finished-under", "runs", "--checkpoint-dir", str(here)]) == 0
    assert {f: f.read_bytes() for f in carried} == before
    # Refused before anything is carried: an unfinished run among finished ones, a folder
    # outside the root or with no finished run.
    with pytest.raises(SystemExit, match="no `result` state"):
        carry.main(["save", "--result-only", runs[1]["run_dir"], "runs/unfinished", "--checkpoint-dir", str(here)])
    for folder, message in ((str(tmp_path), "allowed: a folder inside the checkpoint root"),
                            ("../..", "allowed: a folder inside the checkpoint root"),
                            ("pretrain", "no finished run under")):
        with pytest.raises(SystemExit, match=message):
            carry.main(["save", "--result-only", "--finished-under", folder, "--checkpoint-dir", str(here)])
    # The target machine holds one of the runs unfinished, further along in versions: the
    # carried result (version 1) still replaces it.
    spec = read_json(tmp_path / "carry" / runs[0]["run_dir"] / "manifest.json")["spec"]
    with RunDir(there / runs[0]["run_dir"], spec, keyed_by_strategy=False) as run:
        for epoch in range(3):
            run.save(training={"epoch": epoch})
    assert carry.main(["restore", "--checkpoint-dir", str(there)]) == 0
    forbid_training(monkeypatch)
    again = comparison.compare(d, checkpoint_root=there, **kwargs)
    assert again == runs
    with pytest.raises(CheckpointError, match="result-only.*delete that directory"):
        comparison.load_classifier(there, runs[0]["run_dir"])
    with pytest.raises(SystemExit):  # result-only is a save option
        carry.main(["restore", "--result-only", "--checkpoint-dir", str(there)])



# --------------------------------------------------------------------------- baselines
def test_baselines_quick(workdir):
    """Two reference networks (Nielsen's quadratic-cost SGD recipe, not tuned, and a tuned
    Adam one) train in quick mode; the tuned row chooses its rate on the validation split,
    the other keeps its recipe's; the JSON has the issue's format."""
    baselines = load_script("baselines")
    payload = baselines.main(common_args(workdir, "--seeds", "0", "--recipes", "nielsen_30", "relu_100",
                                         "wide_sigmoid"))
    check_provenance(payload)
    rows = {row["name"]: row for row in read_json(workdir["out"] / "baselines.json")["rows"]}
    assert set(rows) == {"nielsen_30", "relu_100", "wide_sigmoid"}
    for name, row in rows.items():
        assert {"name", "recipe", "test_error", "anchor"} <= row.keys()
        assert len(row["test_error"]) == 1 and 0.0 <= row["test_error"][0] < 0.9, (name, row["test_error"])
        assert row["best_test_epoch_error"][0] <= row["test_error"][0]  # the optimistic figure
        if isinstance(row["tuned"], dict):
            errors = row["tuned"]["val_error"]
            assert row["learning_rate"] == float(min(errors, key=errors.get))
        else:
            assert row["learning_rate"] == baselines.RECIPES[name]["learning_rates"][0]
    assert rows["relu_100"]["test_error"][0] < 0.2  # measured 0.11 after 2 quick epochs


def test_baselines_extend_a_tuned_grid_past_its_winning_edge(workdir, monkeypatch):
    """--tune-extend: the tuned recipe's grid grows past a winning edge as the DBN's does
    (validation error falling towards larger rates: 3e-3 wins, then 9e-3), and every seed
    runs at the new rate; a fake trainer, so only the choice is tested."""
    baselines = load_script("baselines")
    trained = []

    def fake_train(name, recipe, learning_rate, seed, data, checkpoint_dir):
        trained.append((learning_rate, seed))
        error = {3e-4: 0.05, 1e-3: 0.04, 3e-3: 0.03, 9e-3: 0.02, 3e-2: 0.9}[learning_rate]
        return {"val_error": error, "test_error": error, "best_test_epoch_error": error, "best_epoch": 1,
                "seconds": 0.0}

    monkeypatch.setattr(baselines, "cached_train", fake_train)
    baselines.main(common_args(workdir, "--seeds", "0", "1", "--recipes", "wide_sigmoid",
                               "--tune-lr", "3e-4", "1e-3", "3e-3", "--tune-extend", "3"))
    row = read_json(workdir["out"] / "baselines.json")["rows"][0]
    assert list(row["tuned"]["val_error"]) == ["0.0003", "0.001", "0.003", "0.009", "0.03"]
    assert row["learning_rate"] == 9e-3 and trained[-2:] == [(9e-3, 0), (9e-3, 1)]
    # Without --tune-lr the script's own grid is extended (--quick's 1e-3 3e-3 here).
    baselines.main(common_args(workdir, "--seeds", "0", "--recipes", "wide_sigmoid", "--tune-extend", "1"))
    row = read_json(workdir["out"] / "baselines.json")["rows"][0]
    assert list(row["tuned"]["val_error"]) == ["0.001", "0.003", "0.009"] and row["tuned"]["extend"] == 1


def test_baselines_resume_after_kill_equals_uninterrupted(tmp_path, monkeypatch):
    """A baseline killed after its first epoch resumes from its checkpoint (weights,
    optimizer, the dropout layers' seed states, curves) and ends with exactly the numbers of
    an uninterrupted run: the modern recipe, shrunk (batch norm, input and hidden dropout)."""
    import types

    from dbn import data as datasets
    from dbn.training.checkpoint import RunDir

    baselines = load_script("baselines")
    d = datasets.load(n_train=600, seed=0)
    data = types.SimpleNamespace(x_train=d.x_train, y_train=d.y_train, x_val=d.x_val[:300],
                                 y_val=d.y_val[:300], x_test=d.x_test[:300], y_test=d.y_test[:300])
    recipe = dict(baselines.RECIPES["modern"], hidden=[32, 16], epochs=3)
    spec = {"what": "test baseline"}
    uninterrupted = baselines.train(recipe, 1e-3, 0, data)

    class Killed(Exception):
        pass

    real = RunDir.save

    def save_then_die(self, **kwargs):
        real(self, **kwargs)
        if kwargs.get("progress", {}).get("epoch") == 1:
            raise Killed

    monkeypatch.setattr(RunDir, "save", save_then_die)
    with pytest.raises(Killed), RunDir(tmp_path / "run", spec, what="test baseline") as run:
        baselines.train(recipe, 1e-3, 0, data, run)
    monkeypatch.setattr(RunDir, "save", real)
    with RunDir(tmp_path / "run", spec, what="test baseline") as run:
        assert run.state("progress")["epoch"] == 1
        resumed = baselines.train(recipe, 1e-3, 0, data, run)
    for key in ("val_error_curve", "test_error_curve", "best_epoch", "test_error"):
        assert resumed[key] == uninterrupted[key], key
    assert len(resumed["val_error_curve"]) == 3


def test_nielsen_reference_quick(workdir):
    payload = load_script("nielsen_reference").main(common_args(workdir)[:3] + ["--hidden", "30"])
    check_provenance(payload)
    curve = read_json(workdir["out"] / "nielsen_reference.json")["val_error_curves"]["0"]
    assert len(curve) == 2 and curve[-1] < 0.5  # 2,000 images, 2 epochs: measured 0.2-0.3


def test_quadratic_cost_is_nielsens():
    """C = 1/2 ||y - a||^2 per example with y one-hot, averaged over the batch (so eta = 3.0
    means what it means in his book)."""
    baselines = load_script("baselines")
    rng = np.random.default_rng(0)
    a = rng.random((5, 10)).astype(np.float32)
    y = rng.integers(0, 10, 5)
    expected = 0.5 * np.sum((np.eye(10)[y] - a) ** 2, axis=1)
    np.testing.assert_allclose(np.asarray(baselines.quadratic_cost(y, a)), expected, rtol=1e-6)


# --------------------------------------------------------------------------- autoencoders
def test_autoencoder_mnist_quick_and_resume(workdir, monkeypatch):
    """784-64-32-16-8 on 2,000 images: the stack is pretrained, unrolled, fine-tuned by CG
    and Adam, a random twin by CG; the rerun recomputes nothing and writes the same numbers."""
    script = load_script("autoencoder_mnist")
    script.main(common_args(workdir))
    payload = read_json(workdir["out"] / "autoencoder_mnist.json")
    check_provenance(payload)
    errors = payload["test_squared_error"]
    assert payload["complete"] is True and set(errors) == {"dbn", "random", "pca"}
    assert len(errors["dbn"]) == 1 and len(errors["random"]) == 1
    # PCA with 8 components on 2,000 images: measured 29.6; the quick autoencoders
    # (2 epochs) sit near the mean image (~53).
    assert 20 < errors["pca"][0] < 40
    assert 0 < errors["dbn"][0] < 60
    assert set(payload["curves"]) == {"dbn_cg", "dbn_adam", "random0_cg"}
    # Work, the figure's second panel: each CG evaluation is one full batch of 500 (2,000
    # images in 4 batches); an Adam epoch is one pass over the 2,000 images.
    cg, adam = payload["curves"]["dbn_cg"], payload["curves"]["dbn_adam"]
    assert cg["gradient_examples"] == (np.cumsum(cg["evaluations"]) * 500.0).tolist()
    assert cg["evaluations"][0] > 4 and adam["gradient_examples"] == [2000.0, 4000.0]
    f = np.load(workdir["out"] / "autoencoder_quick.npz")
    assert sorted(f.files) == sorted([f"W{i}" for i in range(8)] + [f"b{i}" for i in range(8)])
    for png in ("autoencoder_mnist_reconstructions.png", "autoencoder_mnist_curves.png"):
        assert (workdir["out"] / png).stat().st_size > 1000

    def fail(*args, **kwargs):
        raise AssertionError("a finished run was recomputed")
    monkeypatch.setattr(dbn.models.dbn, "train_rbm", fail)
    monkeypatch.setattr(dbn.training.minimize, "scipy_step", fail)
    monkeypatch.setattr(dbn.training.minimize, "_adam_step", fail)
    script.main(common_args(workdir))
    again = read_json(workdir["out"] / "autoencoder_mnist.json")
    assert again["test_squared_error"] == errors and again["curves"] == payload["curves"]


def test_autoencoder_run_in_progress_is_published(workdir, monkeypatch):
    """A fine-tuning run killed in its second epoch has left its curve so far in the JSON
    ("complete" false) and the table shows it as in progress, beside the finished run."""
    from dbn.protocols import autoencoder

    script = load_script("autoencoder_mnist")
    monkeypatch.setattr(script, "PUBLISH_SECONDS", 0)
    real = autoencoder.finetune_run

    def killed(*args, on_epoch, **kwargs):
        def then_kill(history):
            on_epoch(history)
            if kwargs["name"] == "dbn_adam" and len(history["loss"]) == 1:
                raise KeyboardInterrupt
        return real(*args, on_epoch=then_kill, **kwargs)
    monkeypatch.setattr(autoencoder, "finetune_run", killed)
    # A rate of its own: the module's other quick runs have cached a finished Adam run.
    argv = common_args(workdir, "--methods", "cg", "adam", "--epochs", "1", "2", "--random-seeds",
                       "--adam-lr", "0.0021", "--result-name", "ae_partial")
    with pytest.raises(KeyboardInterrupt):
        script.main(argv)
    payload = read_json(workdir["out"] / "ae_partial.json")
    assert payload["complete"] is False and set(payload["by_optimizer"]) == {"cg"}
    assert payload["curves"]["dbn_adam"]["epoch"] == [1]  # (--quick caps epochs at 2)
    assert payload["curves"]["dbn_adam"]["in_progress"] is True  # marked, in the figure too
    assert payload["curves"]["dbn_adam"]["planned_epochs"] == 2 and "in_progress" not in payload["curves"]["dbn_cg"]
    table = load_script("make_tables").autoencoder_table(workdir["out"], "ae_partial")
    row = next(line for line in table.splitlines() if "Adam" in line)
    assert "Adam, 1 of 2 epochs" in row and "(in progress)" in row
    assert f"{payload['curves']['dbn_adam']['test_squared_error'][-1]:.2f} so far" in row
    assert "**partial" in table


def test_autoencoder_epochs_chosen_on_validation(workdir):
    """--validation: each run's epoch count comes from a run on the other images that
    stops after --patience epochs without a lower validation error; the reported error
    is the refit's on all images, trained for exactly that many epochs."""
    script = load_script("autoencoder_mnist")
    script.main(common_args(workdir) + ["--validation", "400", "--patience", "1", "--methods", "adam",
                                        "--epochs", "3", "--random-seeds", "0"])
    payload = read_json(workdir["out"] / "autoencoder_mnist.json")
    selection = payload["epoch_selection"]
    assert selection["validation_images"] == 400 and selection["patience"] == 1
    for name in ("dbn_adam", "random0_adam"):
        chosen = selection[name]["chosen_epochs"]
        choose = payload["curves"][f"{name}_choose"]
        assert chosen == int(np.argmin(choose["validation_squared_error"])) + 1
        assert len(choose["epoch"]) <= min(3, chosen + 1)  # patience 1 stops one epoch after the best
        assert len(payload["curves"][name]["epoch"]) == chosen  # the refit
        assert selection[name]["best_validation_squared_error"] == min(choose["validation_squared_error"])
    assert payload["test_squared_error"]["dbn"] == [payload["curves"]["dbn_adam"]["test_squared_error"][-1]]


@pytest.mark.parametrize("bad, named", [
    (["--validation", "-1"], "--validation"), (["--patience", "0"], "--patience"),
    (["--validation", "1.5"], "--validation"), (["--result-name", "../elsewhere"], "--result-name"),
    (["--result-name", ""], "--result-name"),
    (["--wolfe", "0.1", "0.05"], "--wolfe: wolfe=(0.1, 0.05) must be a pair (c1, c2) with 0 < c1 < c2 < 1"),
    (["--wolfe", "0.05", "nan"], "--wolfe: wolfe[1]=nan"),
    (["--methods", "adam", "--wolfe", "0.05", "0.1"], "--wolfe 0.05 0.1: no run uses CG"),
    (["--n-train", "50"], "--n-train=50"),  # named itself, not as --validation's bound
    (["--pca-components", "0"], "--pca-components=0"),  # was silently the code size
])
def test_autoencoder_bad_selection_options(workdir, bad, named, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        load_script("autoencoder_mnist").main(common_args(workdir) + bad + ["--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2 and named in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before any work


def test_autoencoder_2d_quick(workdir):
    load_script("autoencoder_2d").main(common_args(workdir))
    payload = read_json(workdir["out"] / "autoencoder_2d.json")
    check_provenance(payload)
    knn = payload["knn_accuracy"]
    assert set(knn) == {"dbn", "pca", "random_sigmoid", "leaky_relu6"}
    # 10 classes: chance is ~0.1; PCA's 2-D map of 2,000 images measured 0.44.
    assert all(0.0 <= v <= 1.0 for v in knn.values()) and knn["pca"] > 0.3
    assert (workdir["out"] / "autoencoder_2d.png").stat().st_size > 1000


@pytest.mark.parametrize("bad, named", [
    (["--knn", "2001"], "--knn=2001"),  # --quick trains on 2,000 images: not that many neighbours
    (["--knn", "0"], "--knn=0"), (["--epochs", "0"], "--epochs=0"),
    (["--batch-size", "0"], "--batch-size / --lr: batch_size=0"),
    (["--lr", "nan"], "--batch-size / --lr: learning_rate=nan"),
    (["--lr=-1e-3"], "--batch-size / --lr: learning_rate=-0.001"),
    (["--n-train", "99"], "--n-train=99"), (["--layers", "64", "32", "3"], "the code layer must have 2 units"),
])
def test_autoencoder_2d_refuses_bad_options_before_any_work(workdir, bad, named, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        load_script("autoencoder_2d").main(common_args(workdir) + bad + ["--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2 and named in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_sklearn_digits_refuses_bad_options_before_any_work(tmp_path):
    script = load_script("sklearn_digits")
    for argv, error in ((["--epochs", "0"], ValueError), (["--seeds", "-1"], ValueError),
                        (["--seeds", "1", "1"], SystemExit), (["--epochs", "2.5"], SystemExit)):
        with pytest.raises(error):
            script.main([*argv, "--out", str(tmp_path)])
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------- last: every table
def test_readme_tables_render_every_experiments_output(workdir):
    """Every table renders from freshly written result files (the quick runs above), not
    only from the committed ones: a renamed JSON key fails here, not after a long run."""
    if not (workdir["out"] / "dbn_generative.json").exists():
        pytest.skip("needs the quick runs of this module (run the whole file)")
    # The dbn_mnist variants of the README (their own result names), one quick seed each:
    # the dropout protocol, and bfloat16 pretraining + fine-tuning (the options' wiring).
    dbn_mnist = load_script("dbn_mnist")
    dbn_mnist.main(common_args(workdir, "--seeds", "0", "--inits", "pretrained", "glorot",
                               "--dropout", "0.2", "0.5", "--result-name", "dbn_mnist_dropout"))
    dbn_mnist.main(common_args(workdir, "--seeds", "0", "--inits", "pretrained",
                               "--pretrain-precision", "bfloat16", "--finetune-precision", "bfloat16",
                               "--result-name", "dbn_mnist_bf16"))
    # The deep autoencoder's three optimisers from one pretrained net (its own result name).
    load_script("autoencoder_mnist").main(common_args(workdir, "--result-name", "autoencoder_optimizers",
                                                      "--methods", "cg", "lbfgs", "adam", "--random-seeds"))
    half = read_json(workdir["out"] / "dbn_mnist_bf16.json")["config"]
    assert half["finetune"]["precision"] == half["layer_config"]["precision"] == "bfloat16"
    # The samplers' table (run_rbm_results.sh's last section): an FPCD run, both sides of
    # its likelihood under the table's own result name.
    load_script("train_rbm").main(common_args(workdir, "--name", "fpcd1", "--pcd", "--fast-lr", "0.05"))
    load_script("likelihood_bracket").main(["--quick", "--models-dir", str(workdir["out"]), "--out",
                                            str(workdir["out"]), "--models", "rbm_fpcd1",
                                            "--name", "likelihood_samplers"])
    fpcd = read_json(workdir["out"] / "likelihood_samplers.json")["models"]["rbm_fpcd1"]
    load_script("logistic_pca").main(["--quick", "--out", str(workdir["out"])])
    load_script("sklearn_digits").main(["--quick", "--out", str(workdir["out"])])
    make_tables = load_script("make_tables")
    rendered = make_tables.render(stale_readme(make_tables.TABLES), workdir["out"])
    assert "pretraining products in bfloat16, fine-tuning products in bfloat16" in rendered
    optimizers = rendered.split("<!-- table:autoencoder_optimizers -->")[1]
    for name in ("CG, 2 of 2 epochs", "L-BFGS, 2 of 2 epochs", "Adam, 2 of 2 epochs"):
        assert name in optimizers.split("<!-- /table")[0], name
    assert "random (Glorot) init" not in optimizers.split("<!-- /table")[0]  # none was run
    assert (workdir["out"] / "autoencoder_optimizers_curves.png").stat().st_size > 1000
    row = next(line for line in rendered.splitlines() if line.startswith("| rbm_fpcd1 |"))
    assert "FPCD-1 (fast lr 0.05, decay 0.95)" in row and f"**{fpcd['raise']['raise_log_prob']:.2f}**" in row
    for name in make_tables.TABLES:
        table = rendered.split(f"<!-- table:{name} -->\n")[1].split(f"<!-- /table:{name} -->")[0]
        assert not table.startswith("_not run yet_"), name
        assert "| rbm_cd1 | not run yet" not in table  # the quick train_rbm wrote rbm_cd1
        assert any(ch.isdigit() for ch in table), (name, table)
