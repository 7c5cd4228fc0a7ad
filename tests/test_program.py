"""The ``dbn`` command (``dbn.program``).

The chain ``dbn pretrain && dbn finetune && dbn sample && dbn evaluate`` runs through the
*installed* entry point (``<venv>/bin/dbn``, next to this Python; after adding the script
entry: ``pip install -e . --no-deps``), each command its own process, on tiny data (500
labels, a 784-20-20 DBN, one epoch per layer); its outputs are checked against what the
Python API computes on the same saved model.  So are the one-line errors: exit status
2, one line ``dbn <cmd>: error: ...`` naming the option or path, nothing written.  The
paths that need no fresh process (a single RBM's AIS, the generative DBN, failures
during the work, --force) call ``dbn.program.main`` in this process.
"""

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dbn.program import common, main, modeldir

DBN = Path(sys.executable).parent / "dbn"
# Tiny data: 500 training images with labels, 500 validation images (pretraining sees
# both), the full test set for evaluation.
DATA = ["--n-train", "500", "--validation-size", "500"]
TINY = ["--epochs", "1", *DATA, "-q"]
NOISE = ("absl::InitializeLog", "I0000", "cuInit", "oneDNN", "cuda drivers")


def env_without_log_level():
    """The environment of a user who did not set TF_CPP_MIN_LOG_LEVEL (conftest sets it
    for this process): the command must quiet TensorFlow itself."""
    return {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


def dbn(*args, cwd, env=None):
    assert DBN.is_file(), (f"{DBN} missing: install the entry point with "
                           f"{Path(sys.executable).parent / 'pip'} install -e . --no-deps")
    return subprocess.run([str(DBN), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          env=env or env_without_log_level(), timeout=600)


def tree(root):
    """Every entry below ``root``: files with their size and modification time,
    directories by name (their mtime moves when a file is created and deleted), and not
    the ``.lock`` of a saved DBN (``DBN.load`` writes its PID there)."""
    return sorted((str(p.relative_to(root)),) + ((p.stat().st_size, p.stat().st_mtime_ns)
                                                   if p.is_file() else ())
                  for p in Path(root).rglob("*") if p.name != ".lock")


def png_size(path):
    """(width, height) from a PNG's IHDR chunk."""
    header = Path(path).read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def assert_one_line_error(result, command):
    prog = f"dbn {command}" if command else "dbn"
    lines = result.stderr.splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    assert result.stdout == ""
    return lines[0]


def data():
    import dbn

    return dbn.load(n_train=500, validation_size=500, seed=0)


# --------------------------------------------------------------------------- the chain
@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """pretrain -> evaluate (refused: not fine-tuned) -> finetune -> sample -> evaluate."""
    cwd = tmp_path_factory.mktemp("chain")
    steps = {"pretrain": dbn("pretrain", "--layers", 20, 20, "--out", "runs/x", *TINY, cwd=cwd)}
    before = tree(cwd)
    steps["evaluate_before_finetune"] = dbn("evaluate", "runs/x", "--json", "early.json", cwd=cwd)
    steps["unchanged_by_refusal"] = tree(cwd) == before
    steps["finetune"] = dbn("finetune", "runs/x", "--max-epochs", 5, "--lr", 0.01, "-q", cwd=cwd)
    steps["sample"] = dbn("sample", "runs/x", "-n", 12, "--gibbs-steps", 20, "--out", "digits.png",
                          cwd=cwd)
    steps["evaluate"] = dbn("evaluate", "runs/x", "--json", "eval.json", cwd=cwd)
    return cwd, steps


def test_chain_runs_without_start_up_noise(chain):
    cwd, steps = chain
    for name in ("pretrain", "finetune", "sample", "evaluate"):
        result = steps[name]
        assert result.returncode == 0, (name, result.stderr)
        assert not [line for line in result.stderr.splitlines() if any(n in line for n in NOISE)], \
            (name, result.stderr)
        assert result.stdout.strip(), name
    assert "784-20-20 DBN" in steps["pretrain"].stdout
    assert "test error: " in steps["evaluate"].stdout


def test_evaluate_refuses_a_dbn_that_was_never_fine_tuned(chain):
    cwd, steps = chain
    line = assert_one_line_error(steps["evaluate_before_finetune"], "evaluate")
    assert "never fine-tuned" in line and "dbn finetune runs/x" in line
    assert steps["unchanged_by_refusal"]


def test_model_directory_manifest(chain):
    import dbn as package

    cwd, _ = chain
    directory = cwd / "runs" / "x"
    manifest = json.loads((directory / "model.json").read_text())
    assert manifest["format"] == modeldir.FORMAT and manifest["format_version"] == 1
    assert manifest["holds"] == ["dbn", "classifier"]
    assert manifest["layer_sizes"] == [784, 20, 20] and manifest["n_classes"] == 10
    assert manifest["seed"] == 0 and manifest["package_version"] == package.__version__
    assert manifest["git_commit"]
    assert manifest["data"]["n_train"] == 500 and manifest["data"]["validation_size"] == 500
    assert manifest["data"]["pretraining_images"] == 1000
    assert [c["n_hidden"] for c in manifest["pretraining"]["layer_configs"]] == [20, 20]
    assert all(c["epochs"] == 1 for c in manifest["pretraining"]["layer_configs"])
    assert manifest["finetuning"]["config"]["learning_rate"] == 0.01
    assert manifest["finetuning"]["config"]["max_epochs"] == 5
    # Every listed file is there with its recorded hash; nothing else was left behind.
    for key in manifest["files"]:
        assert modeldir.verified(directory, manifest, key).exists()
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        ["model.json", "dbn", manifest["files"]["classifier"]["path"]])
    assert sorted(p.name for p in (cwd / "runs").iterdir()) == ["x"]  # no .partial-* left


def test_evaluate_json_matches_the_python_api(chain):
    import keras

    import dbn as package

    cwd, _ = chain
    directory = cwd / "runs" / "x"
    payload = json.loads((cwd / "eval.json").read_text())
    error = payload["test_error"]
    assert isinstance(error, float) and 0.0 <= error <= 1.0
    assert error < 0.85, "the fine-tuned 784-20-20 network learned nothing (chance is 0.9)"
    assert payload["test_images"] == 10_000 and payload["git_commit"]
    manifest = json.loads((directory / "model.json").read_text())
    model = keras.models.load_model(directory / manifest["files"]["classifier"]["path"])
    splits = data()
    # The same model on the same images: the same predictions (one image of slack for a
    # rounding tie between two processes).
    assert error == pytest.approx(package.error_rate(model, splits.x_test, splits.y_test), abs=1.5e-4)
    # The saved classifier is the early-stopped best one, not the last epoch's.
    best = manifest["finetuning"]["best_val_error"]
    assert package.error_rate(model, splits.x_val, splits.y_val) == pytest.approx(best, abs=1.5e-4)


def test_sample_png_is_the_dbn_s_samples(chain):
    import matplotlib.image

    from dbn.models.dbn import DBN
    from dbn.plots import _mosaic

    cwd, _ = chain
    # 12 digits: 4 columns x 3 rows of 28x28 with 1-pixel separators.
    assert png_size(cwd / "digits.png") == (4 * 29 - 1, 3 * 29 - 1)
    pixels = matplotlib.image.imread(cwd / "digits.png")[..., 0]
    expected = _mosaic(DBN.load(cwd / "runs" / "x" / "dbn").generate(12, gibbs_steps=20, seed=0),
                       3, 4, (28, 28))
    assert pixels.std() > 0.05  # digits, not a blank image
    # imsave maps a value through the 256-entry gray colormap to 8 bits: <= 2 levels off.
    np.testing.assert_allclose(pixels, expected, atol=2.01 / 255)


# --------------------------------------------------------------------------- errors
def fake_model(path, holds, **changes):
    """A model directory's manifest alone (the refusals below happen before any weight
    file is read)."""
    path.mkdir(parents=True)
    manifest = {"format": modeldir.FORMAT, "format_version": 1, "holds": holds,
                "layer_sizes": [784, 20, 20], "n_classes": 10, "seed": 0,
                "data": common.data_settings(500, 500), "files": {}, **changes}
    (path / "model.json").write_text(json.dumps(manifest))


@pytest.fixture
def workspace(tmp_path):
    fake_model(tmp_path / "model_dbn", ["dbn"])
    fake_model(tmp_path / "model_tuned", ["dbn", "classifier"])
    fake_model(tmp_path / "model_generative", ["generative"])
    fake_model(tmp_path / "model_newer", ["dbn"], format_version=99)
    (tmp_path / "model_garbage").mkdir()
    (tmp_path / "model_garbage" / "model.json").write_text("{not json")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file").write_text("user data")
    (tmp_path / "existing.png").write_bytes(b"not overwritten")
    fake_model(tmp_path / "model_notes", ["dbn"])
    (tmp_path / "model_notes" / "notes.txt").write_text("the user's own notes")
    fake_model(tmp_path / "model_bad_seed", ["dbn"], seed="zero")
    fake_model(tmp_path / "model_bad_sizes", ["dbn"], layer_sizes=[784, 0])
    return tmp_path


NEW = ["--layers", "20", "--out", "new"]
ERRORS = [  # (arguments, words the one line must contain)
    (["pretrain", *NEW, "--lr", "-1"], ["--lr=-1", "> 0"]),
    (["pretrain", *NEW, "--lr", "nan"], ["--lr=nan", "finite"]),
    (["pretrain", *NEW, "--epochs", "2.5"], ["--epochs", "'2.5'", "int"]),
    (["pretrain", *NEW, "--epochs", "True"], ["--epochs", "'True'"]),
    (["pretrain", *NEW, "--pcd", "True"], ["unrecognized", "True"]),
    (["pretrain", *NEW, "--weight-decay", "-0.1"], ["--weight-decay=-0.1", ">= 0"]),
    (["pretrain", "--layers", "20", "0", "--out", "new"], ["--layers=[20, 0]", ">= 1"]),
    (["pretrain", *NEW, "--n-train", "0"], ["--n-train=0", ">= 1"]),
    (["pretrain", *NEW, "--n-train", "60000"], ["--n-train=60000", "50000"]),
    (["pretrain", *NEW, "--fast-lr", "0.1"], ["--fast-lr=0.1", "--pcd"]),
    (["pretrain", *NEW, "--generative"], ["--generative", "two hidden layers"]),
    (["pretrain", "--layers", "20", "--out", "model_dbn"], ["model_dbn", "not empty", "--force"]),
    (["pretrain", "--layers", "20", "--out", "junk", "--force"], ["junk", "not a model directory"]),
    (["pretrain", "--layers", "20", "--out", "junk/file/sub"], ["junk/file", "is a file"]),
    (["pretrain", "--layers", "20", "--out", "model_notes", "--force"],
     ["model_notes", "notes.txt", "--force would delete them"]),
    (["pretrain", "--layers", "20", "--out", "/proc/dbn_out"], ["/proc/dbn_out", "cannot be written"]),
    (["pretrain", "--layers", "20", "--out", ""], ["--out=''", "not allowed"]),
    (["finetune", "model_bad_seed"], ["model.json is damaged", "seed='zero'", "integer >= 0"]),
    (["sample", "model_bad_sizes", "--out", "d.png"], ["layer_sizes=[784, 0]", "integers >= 1"]),
    (["sample", "model_dbn", "-n", "100000000", "--out", "d.png"], ["-n=100000000", "100000"]),
    (["finetune", "missing"], ["missing does not exist", "dbn pretrain"]),
    (["finetune", "junk"], ["junk", "no model.json"]),
    (["finetune", "model_generative"], ["generative DBN", "dbn finetune"]),
    (["finetune", "model_tuned"], ["already holds", "--force"]),
    (["finetune", "model_dbn", "--lr", "0"], ["--lr=0", "> 0"]),
    (["finetune", "model_dbn", "--max-epochs", "3", "--output-only-epochs", "3"],
     ["--output-only-epochs=3", "--max-epochs=3"]),
    (["finetune", "model_dbn", "--optimizer", "rmsprop"], ["--optimizer", "rmsprop", "adam"]),
    (["finetune", "model_newer"], ["format_version", "99"]),
    (["finetune", "model_garbage"], ["model.json", "unreadable"]),
    (["sample", "model_dbn", "-n", "0", "--out", "d.png"], ["-n=0", "[1, 100000]"]),
    (["sample", "model_dbn", "--out", "d.jpg"], ["--out='d.jpg'", ".png"]),
    (["sample", "model_dbn", "--out", "existing.png"], ["existing.png", "--force"]),
    (["sample", "model_dbn", "--gibbs-steps", "-5", "--out", "d.png"], ["--gibbs-steps=-5"]),
    (["evaluate", "model_dbn"], ["never fine-tuned", "dbn finetune model_dbn"]),
    (["evaluate", "model_tuned", "--ais-runs", "1"], ["--ais-runs=1", ">= 2"]),
    (["evaluate", "model_tuned", "--json", "junk"], ["--json='junk'", "directory"]),
    (["experiment", "no_such_script"], ["no_such_script", "demo", "train_rbm"]),
    (["frobnicate"], ["frobnicate", "pretrain"]),
]


@pytest.mark.parametrize("argv, words", ERRORS, ids=[" ".join(a) for a, _ in ERRORS])
def test_bad_command_lines_fail_in_one_line_and_write_nothing(workspace, argv, words):
    before = tree(workspace)
    result = dbn(*argv, cwd=workspace)
    line = assert_one_line_error(result, argv[0] if argv[0] in ("pretrain", "finetune", "sample",
                                                                "evaluate", "experiment") else None)
    for word in words:
        assert word in line, (word, line)
    assert tree(workspace) == before


def test_experiment_without_an_experiments_folder(tmp_path):
    env = {**env_without_log_level(), "DBN_EXPERIMENTS_DIR": str(tmp_path / "none")}
    line = assert_one_line_error(dbn("experiment", "demo", cwd=tmp_path, env=env), "experiment")
    assert "DBN_EXPERIMENTS_DIR" in line and "not a directory" in line


def test_experiment_runs_the_committed_script(tmp_path):
    result = dbn("experiment", "demo_data", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: demo_data.py")
    listing = dbn("experiment", "--help", cwd=tmp_path).stdout
    for name in ("demo", "dbn_mnist", "train_rbm", "make_tables"):
        assert f"\n  {name} " in listing


def test_help_lists_the_commands_and_imports_no_tensorflow(tmp_path):
    result = dbn("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("pretrain", "finetune", "sample", "evaluate", "experiment"):
        assert f"\n    {command}" in result.stdout
        assert dbn(command, "--help", cwd=tmp_path).returncode == 0
    probe = ("import sys\nfrom dbn.program import main\n"
             "try:\n    main(['pretrain', '--help'])\nexcept SystemExit:\n    pass\n"
             "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.strip().endswith("False"), out.stdout


def test_start_up_noise_filter_keeps_everything_else(capfd):
    lines = [b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
             b"I0000 00:00:1795861824.164015   14226 port.cc:153] oneDNN custom operations are on.",
             b"W0000 00:00:1795861824.164510   14226 x.cc:31] a warning",
             b"E0000 00:00:1795861829.663022   14226 cuda_platform.cc:52] failed call to cuInit: (303)",
             b"E0000 00:00:1795861829.663022   14226 other.cc:1] a real error",
             b"plain text"]
    with common._filtered_stderr():
        os.write(2, b"\n".join(lines) + b"\n")
    assert capfd.readouterr().err.splitlines() == [
        "E0000 00:00:1795861829.663022   14226 other.cc:1] a real error", "plain text"]


# --------------------------------------------------------------------------- in this process
def run_main(*args):
    return main([str(a) for a in args])


def test_single_rbm_ais_matches_the_python_api(tmp_path, capsys):
    from dbn.estimation import ais
    from dbn.data import likelihood_splits

    directory = tmp_path / "rbm"
    assert run_main("pretrain", "--layers", 20, "--out", directory, *TINY) == 0
    assert run_main("evaluate", directory, "--ais-runs", 16, "--ais-betas", "coarse",
                    "--json", tmp_path / "ais.json") == 0
    assert "test log p:" in capsys.readouterr().out
    payload = json.loads((tmp_path / "ais.json").read_text())
    assert payload["holds"] == ["rbm"] and "test_error" not in payload
    rbm = modeldir.load_dbn(directory, modeldir.open_model(directory)).rbms[0]
    fixed = likelihood_splits(seed=0, n_train=500, validation_size=500)
    expected = ais.evaluate_log_likelihood(
        rbm.W.numpy(), rbm.visible_bias.numpy(), rbm.hidden_bias.numpy(), base_data=fixed.train,
        test_data=fixed.test, train_data=fixed.train, n_runs=16,
        betas=ais.make_betas([(1.0, 1e-3)]), seed=0)
    for key in ("log_z", "test_log_prob", "train_log_prob"):
        assert payload["ais"][key] == pytest.approx(expected[key], rel=1e-9), key
    assert -550 < payload["ais"]["test_log_prob"] < -60  # a 20-unit RBM: far from both ends


def test_generative_dbn_samples_and_scores(tmp_path, capsys):
    import dataclasses

    import keras

    from dbn.models.generative import GenerativeDBN
    from dbn.training.configs import HINTON_LAYER

    directory = tmp_path / "gen"
    assert run_main("pretrain", "--generative", "--layers", 20, 20, "--out", directory, *TINY) == 0
    manifest = modeldir.open_model(directory)
    assert manifest["holds"] == ["generative"] and sorted(manifest["files"]) == [
        "generative_top", "generative_weights"]
    assert run_main("sample", directory, "-n", 20, "--gibbs-steps", 10,
                    "--out", tmp_path / "g.png") == 0
    assert png_size(tmp_path / "g.png") == (5 * 29 - 1, 4 * 29 - 1)
    assert run_main("evaluate", directory, "--json", tmp_path / "g.json") == 0
    capsys.readouterr()
    error = json.loads((tmp_path / "g.json").read_text())["test_error"]
    splits = data()
    loaded = modeldir.load_generative(directory, manifest)
    assert 0.0 <= error <= 1.0
    assert error == pytest.approx(loaded.error_rate(splits.x_test, splits.y_test), abs=1.5e-4)
    # The directory holds the model the Python API trains with the same settings.
    keras.utils.set_random_seed(0)
    model = GenerativeDBN([784, 20, 20], layer_configs=dataclasses.replace(HINTON_LAYER, epochs=1),
                          seed=0)
    model.pretrain(splits.x_train, splits.y_train, verbose=0,
                   x_unlabelled=np.concatenate([splits.x_train, splits.x_val]))
    for ours, theirs in zip(loaded._variables(), model._variables(), strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    x = splits.x_test[:500]
    np.testing.assert_allclose(loaded.features(x), model.features(x), atol=1e-6)
    np.testing.assert_allclose(loaded.label_log_probabilities(x), model.label_log_probabilities(x),
                               atol=1e-4)
    np.testing.assert_allclose(loaded.generate(np.arange(10), gibbs_steps=5, seed=3),
                               model.generate(np.arange(10), gibbs_steps=5, seed=3), atol=1e-5)
    # Finetune refuses it (a classifier needs a DBN) and leaves it as it was.
    before = tree(tmp_path)
    assert run_main("finetune", directory) == 2
    assert "generative DBN" in capsys.readouterr().err
    assert tree(tmp_path) == before


def test_divergence_is_one_line_and_writes_nothing(tmp_path, capsys):
    status = run_main("pretrain", "--layers", 20, "--out", tmp_path / "runs" / "x", "--lr", 1e30,
                      *TINY)
    err = capsys.readouterr().err
    assert status == 1 and err.startswith("dbn pretrain: error: ") and "diverged" in err
    assert len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_corrupt_layer_cache_is_one_line_and_fresh_retrains_it(tmp_path, capsys):
    """A byte flipped in a cached layer: exit 2, one line naming the file and --fresh,
    no model directory; --fresh discards that cache entry and trains it anew."""
    cache = tmp_path / "cache"
    argv = ["pretrain", "--layers", 20, "--checkpoint-dir", cache, *TINY]
    assert run_main(*argv, "--out", tmp_path / "a") == 0
    weights = sorted(cache.rglob("*.weights.h5")) + sorted(cache.rglob("*.keras"))
    assert weights, sorted(cache.rglob("*"))
    raw = bytearray(weights[0].read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    weights[0].write_bytes(bytes(raw))
    capsys.readouterr()
    assert run_main(*argv, "--out", tmp_path / "b") == 2
    err = capsys.readouterr().err
    assert err.startswith("dbn pretrain: error: ") and len(err.splitlines()) == 1, err
    assert weights[0].name in err and "--fresh" in err
    assert not (tmp_path / "b").exists()
    assert run_main(*argv, "--out", tmp_path / "b", "--fresh") == 0
    # Retrained from the same seed and data: the same weights as the first run (one
    # process, one CPU: the same operations in the same order, bit for bit).
    from dbn.models.dbn import DBN

    first, second = (DBN.load(tmp_path / d / modeldir.DBN_DIR).rbms[0].get_weights() for d in "ab")
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert run_main("pretrain", "--layers", 20, "--out", tmp_path / "c", "--fresh", *TINY) == 2
    assert "--fresh without --checkpoint-dir" in capsys.readouterr().err


def test_a_failure_while_writing_leaves_nothing(tmp_path, monkeypatch, capsys):
    """Created parents, the staged directory and a replaced model directory: a failure
    during the write leaves the tree as it was (and keeps its traceback)."""
    from dbn.models.dbn import DBN

    def failing_save(self, directory):
        Path(directory).mkdir()
        (Path(directory) / "half").write_text("half-written")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(DBN, "save", failing_save)
    with pytest.raises(OSError, match="No space left"):
        run_main("pretrain", "--layers", 20, "--out", tmp_path / "a" / "b" / "x", *TINY)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    directory = tmp_path / "x"
    assert run_main("pretrain", "--layers", 20, "--out", directory, *TINY) == 0
    before = tree(tmp_path)
    monkeypatch.setattr(DBN, "save", failing_save)
    with pytest.raises(OSError, match="No space left"):
        run_main("pretrain", "--layers", 20, "--out", directory, "--force", "--seed", 1, *TINY)
    assert tree(tmp_path) == before
    monkeypatch.undo()
    assert run_main("pretrain", "--layers", 20, "--out", directory, "--force", "--seed", 1, *TINY) == 0
    assert modeldir.open_model(directory)["seed"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["x"]  # the replaced directory is gone
    capsys.readouterr()


def test_a_failed_finetune_keeps_the_directory_as_it_was(tmp_path, monkeypatch, capsys):
    from dbn import provenance

    directory = tmp_path / "x"
    assert run_main("pretrain", "--layers", 20, 20, "--out", directory, *TINY) == 0
    before = tree(tmp_path)

    def failing_write_json(path, payload):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(provenance, "write_json", failing_write_json)
    with pytest.raises(OSError, match="No space left"):
        run_main("finetune", directory, "--max-epochs", 1, "-q")
    assert tree(tmp_path) == before  # the classifier written before the manifest is gone
    monkeypatch.undo()
    assert run_main("finetune", directory, "--max-epochs", 1, "-q") == 0
    assert modeldir.open_model(directory)["holds"] == ["dbn", "classifier"]
    capsys.readouterr()


# --------------------------------------------------------------------------- tf.distribute
def test_a_second_writer_of_one_model_directory_is_refused_before_any_work(tmp_path, capsys):
    # Two `dbn pretrain --out m` at once once both printed "wrote m" (one replaced the
    # other); two `dbn finetune` raced to model.json.  The lock is taken in prepare.
    fake_model(tmp_path / "m", ["dbn"])
    before = tree(tmp_path)
    with modeldir.lock(tmp_path / "m"):  # another command, writing m
        for argv in (["pretrain", "--layers", 20, "--out", tmp_path / "m", "--force"],
                     ["finetune", tmp_path / "m"]):
            assert run_main(*argv) == 2
            assert "being written by another dbn command" in capsys.readouterr().err
        assert tree(tmp_path) == before
    # A relative spelling of the same directory is the same lock; released after the block.
    with modeldir.lock(tmp_path / "x" / ".." / "m"):
        with pytest.raises(common.UsageError, match="being written"):
            with modeldir.lock(tmp_path / "m"):
                pass
    with modeldir.lock(tmp_path / "m"):
        pass


def test_a_classifier_that_does_not_match_model_json_is_refused(tmp_path):
    import keras

    from dbn import provenance

    classifier = keras.Sequential([keras.Input((784,)), keras.layers.Dense(6, "sigmoid"),
                                   keras.layers.Dense(4, "sigmoid"), keras.layers.Dense(10, "softmax")])
    classifier.save(tmp_path / "c.keras")
    entry = {"path": "c.keras", "sha256": provenance.sha256_file(tmp_path / "c.keras")}
    for sizes, ok in (([784, 6, 4], True), ([784, 30, 20], False)):
        manifest = {"layer_sizes": sizes, "n_classes": 10, "files": {"classifier": entry}}
        if ok:
            assert isinstance(modeldir.load_classifier(tmp_path, manifest), keras.Model)
        else:
            with pytest.raises(modeldir.ModelDirError, match="784-6-4-10 classifier.*784-30-20-10"):
                modeldir.load_classifier(tmp_path, manifest)


def test_pretrain_under_a_mirrored_strategy_records_it(tmp_path):
    directory = tmp_path / "rbm"
    assert run_main("pretrain", "--layers", 20, "--strategy", "mirrored", "--out", directory, *TINY) == 0
    manifest = modeldir.open_model(directory)
    assert manifest["pretraining"]["strategy"] == {"name": "mirrored", "replicas": 1}
    assert run_main("finetune", directory, "--strategy", "mirrored", "--max-epochs", 1, "-q") == 0
    assert modeldir.open_model(directory)["finetuning"]["strategy"] == {"name": "mirrored", "replicas": 1}


@pytest.mark.parametrize("extra, match", [
    ([], "TF_CONFIG environment variable"),
    (["--checkpoint-dir", "cache"], "cannot resume from one cache"),
])
def test_pretrain_multiworker_needs_a_cluster_and_no_cache(tmp_path, monkeypatch, capsys, extra, match):
    monkeypatch.chdir(tmp_path)
    if extra:
        monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["localhost:1"]}, '
                                        '"task": {"type": "worker", "index": 0}}')
    else:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    assert run_main("pretrain", "--layers", 20, "--strategy", "multiworker", "--out", "m",
                    *extra, *TINY) == 2
    assert match in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_finetune_multiworker_needs_a_cluster(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert run_main("finetune", tmp_path / "missing", "--strategy", "multiworker") == 2
    assert "TF_CONFIG environment variable" in capsys.readouterr().err
