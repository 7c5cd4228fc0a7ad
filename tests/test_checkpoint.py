"""Tests of dbn.checkpoint: keys, manifest verification, atomic saves, locks, --fresh;
and of the scripts that use it (train_rbm.py keyed by its settings, the demo's cache).

Planted bugs these tests were checked against: hashing a strided sample of rows
(``fingerprint``), skipping the hash check on open, writing the manifest before the
files, comparing only the key (not the stored spec), a lock that is not exclusive,
keying train_rbm's checkpoint on ``--name`` only.
"""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from dbn import provenance
from dbn.training import checkpoint
from dbn.training.checkpoint import (CheckpointCorruptError, CheckpointInUseError, CheckpointMismatchError, RunDir, fingerprint, run_path, spec_key)

ROOT = Path(__file__).resolve().parent.parent
SPEC = {"what": "test", "lr": 0.1, "data": "abc"}


def write_text(text):
    return lambda path: Path(path).write_text(text)


def saved(tmp_path, spec=SPEC, **sections):
    with RunDir(tmp_path / "run", spec) as run:
        run.save(files={"a.txt": write_text("alpha"), "b.npz": lambda p: np.savez(p, x=np.arange(3))},
                 **(sections or {"state": {"epoch": 1}}))
    return tmp_path / "run"


def manifest(path):
    return json.loads((path / checkpoint.MANIFEST).read_text())


# --------------------------------------------------------------------------- keys
def test_fingerprint_hashes_every_byte_dtype_and_shape():
    x = np.zeros((3000, 784), np.float32)
    base = fingerprint(x)
    for row in (0, 1, 1500, 2999):  # any single row, including ones a strided sample skips
        y = x.copy()
        y[row, 5] = 1.0
        assert fingerprint(y) != base, row
    assert fingerprint(x.astype(np.float64)) != base
    assert fingerprint(x.reshape(784, 3000)) != base
    assert fingerprint(x, x) != fingerprint(x)  # the number and order of arrays count
    assert fingerprint(np.asfortranarray(x)) == base  # memory layout does not
    assert len(base) == 64


def test_run_path_depends_on_every_setting():
    paths = {run_path("r", "p", {**SPEC, "lr": lr}) for lr in (0.1, 0.01, 0.1000001)}
    assert len(paths) == 3
    assert run_path("r", "p", SPEC) == run_path("r", "p", dict(reversed(SPEC.items())))
    assert spec_key(SPEC) != spec_key({**SPEC, "data": "abd"})


# --------------------------------------------------------------------------- manifest
def test_save_and_reopen_round_trip(tmp_path):
    path = saved(tmp_path)
    with RunDir(path, SPEC) as run:
        assert run.exists and run.state("state") == {"epoch": 1}
        assert run.file("a.txt").read_text() == "alpha"
        with np.load(run.file("b.npz")) as f:
            np.testing.assert_array_equal(f["x"], np.arange(3))
        run.save(state={"epoch": 2}, files={"a.txt": write_text("beta")})
        assert run.file("a.txt").read_text() == "beta"
    # Old versions are deleted once the new manifest is in place.
    names = sorted(p.name for p in path.iterdir())
    assert names == [".lock", "manifest.json", "v000001-b.npz", "v000002-a.txt"]
    assert manifest(path)["git_commit"] and manifest(path)["written_utc"]
    assert manifest(path)["cpus"] == [provenance.cpu()]


def test_manifest_names_every_cpu_that_wrote_the_run(tmp_path, monkeypatch):
    # A run resumed on another machine mixes two CPUs' float32 rounding: both are named,
    # each once, in the order they wrote.
    path = saved(tmp_path)
    first = manifest(path)["cpus"]
    monkeypatch.setattr(checkpoint, "_cpu", lambda: "Other CPU [avx2]")
    for epoch in (2, 3):
        with RunDir(path, SPEC) as run:
            run.save(state={"epoch": epoch})
    assert manifest(path)["cpus"] == [*first, "Other CPU [avx2]"]


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "empty"])
@pytest.mark.parametrize("name", ["a.txt", "b.npz"])
def test_damaged_file_is_refused_naming_it(tmp_path, damage, name):
    path = saved(tmp_path)
    file = path / manifest(path)["files"][name]["file"]
    data = bytearray(file.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x10
        file.write_bytes(bytes(data))
    elif damage == "truncate":
        file.write_bytes(bytes(data[:-1]))
    elif damage == "empty":
        file.write_bytes(b"")
    else:
        file.unlink()
    with pytest.raises(CheckpointCorruptError, match=file.name) as err:
        RunDir(path, SPEC).open()
    assert "--fresh" in str(err.value) and str(path) in str(err.value)
    with checkpoint.policy(fresh=True), RunDir(path, SPEC) as run:
        assert not run.exists  # discarded, starts over
    assert sorted(p.name for p in path.iterdir()) == [".lock"]


@pytest.mark.parametrize("text", ["", "{", '{"format": 2}', "[]", '{"files": 3}'])
def test_damaged_manifest_is_refused_naming_it(tmp_path, text):
    path = saved(tmp_path)
    (path / checkpoint.MANIFEST).write_text(text)
    with pytest.raises(CheckpointCorruptError, match="manifest.json.*--fresh"):
        RunDir(path, SPEC).open()


def test_edited_state_in_the_manifest_is_refused(tmp_path):
    """A result edited (or a byte flipped) inside the manifest's JSON is detected by the
    manifest's own checksum, not returned."""
    path = saved(tmp_path, result={"test_error": 0.8702})
    text = (path / checkpoint.MANIFEST).read_text()
    (path / checkpoint.MANIFEST).write_text(text.replace("0.8702", "0.1702"))
    with pytest.raises(CheckpointCorruptError, match="checksum"):
        RunDir(path, SPEC).open()


def test_other_settings_are_refused_with_the_difference(tmp_path):
    path = saved(tmp_path)
    with pytest.raises(CheckpointMismatchError, match=r"lr: 0\.1 -> 0\.01.*--fresh"):
        RunDir(path, {**SPEC, "lr": 0.01}).open()
    assert issubclass(CheckpointMismatchError, ValueError)
    with RunDir(path, SPEC) as run:  # left untouched
        assert run.state("state") == {"epoch": 1}


def test_directory_without_manifest_is_refused(tmp_path):
    """An old-format directory (state.json, last.weights.h5; no manifest) is never resumed."""
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "state.json").write_text('{"epoch": 3}')
    with pytest.raises(CheckpointMismatchError, match="no manifest.json .state.json.*--fresh"):
        RunDir(legacy, SPEC).open()


def test_kill_during_save_keeps_the_previous_version(tmp_path, monkeypatch):
    path = saved(tmp_path)

    def crash(path):
        Path(path).write_text("half")
        raise KeyboardInterrupt  # killed while writing the new version

    with pytest.raises(KeyboardInterrupt), RunDir(path, SPEC) as run:
        run.save(state={"epoch": 2}, files={"a.txt": crash})
    leftovers = sorted(p.name for p in path.iterdir())
    assert "v000002-a.txt" in leftovers
    with RunDir(path, SPEC) as run:  # the old version, verified; the leftover is removed
        assert run.state("state") == {"epoch": 1} and run.file("a.txt").read_text() == "alpha"
    assert "v000002-a.txt" not in [p.name for p in path.iterdir()]


@pytest.mark.parametrize("leftover", [".manifest.json.k2j3.tmp", ".v000001-best.npz.x8y9.tmp"])
def test_kill_during_the_first_save_leaves_a_usable_directory(tmp_path, leftover):
    """atomic_write's temporary file, left by a kill during a run's first save, is not
    mistaken for foreign contents: the run starts over and the leftover is removed."""
    path = tmp_path / "run"
    path.mkdir()
    (path / leftover).write_text("half")
    (path / "v000001-best.npz").write_text("half")
    with RunDir(path, SPEC) as run:
        assert not run.exists
    assert sorted(p.name for p in path.iterdir()) == [".lock"]
    saved(tmp_path)
    (path / leftover).write_text("half")
    with RunDir(path, SPEC) as run:  # with a manifest too
        assert run.state("state") == {"epoch": 1}
    assert not (path / leftover).exists()


def test_fresh_never_empties_a_directory_that_is_not_a_run(tmp_path):
    """--fresh deletes only what a run saved: not a directory of other files, not runs
    nested below it (and a run is never opened in such a directory)."""
    other = tmp_path / "results"
    other.mkdir()
    (other / "paper_table.json").write_text("{}")
    (other / "nested").mkdir()
    with checkpoint.policy(fresh=True), pytest.raises(CheckpointMismatchError, match="refuses"):
        RunDir(other, SPEC).open()
    assert (other / "paper_table.json").exists() and (other / "nested").is_dir()
    (other / "paper_table.json").unlink()
    with pytest.raises(CheckpointMismatchError, match="nested"):  # a directory of runs
        RunDir(other, SPEC).open()
    path = saved(tmp_path)
    (path / "notes.txt").write_text("mine")
    with pytest.raises(CheckpointMismatchError, match="notes.txt"):
        RunDir(path, SPEC).open()


def test_non_finite_state_is_never_written(tmp_path):
    with RunDir(tmp_path / "run", SPEC) as run:
        with pytest.raises(ValueError):
            run.save(state={"loss": float("nan")})
        assert not run.exists
    with pytest.raises(ValueError):
        RunDir(tmp_path / "other", {"lr": float("nan")})


def test_checkpoints_of_the_old_format_are_named_not_read(tmp_path, caplog):
    """Checkpoints written before run directories (keys from a sampled data hash) are
    never read; the user is told they exist and can be deleted."""
    (tmp_path / "layer0_784-500_seed0_0123456789ab.keras").write_bytes(b"old")
    (tmp_path / "rbm_cd1").mkdir()
    (tmp_path / "rbm_cd1" / "state.json").write_text("{}")
    saved(tmp_path)  # a current run directory is not old
    caplog.set_level("WARNING", logger="dbn")
    checkpoint.warn_legacy(tmp_path)
    assert "2 checkpoint(s) written by dbn before run directories" in caplog.text
    caplog.clear()
    checkpoint.warn_legacy(tmp_path)
    assert caplog.text == ""  # once per process


def test_open_existing_needs_a_run_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        checkpoint.open_existing(tmp_path / "nothing").open()
    assert not (tmp_path / "nothing").exists()


# --------------------------------------------------------------------------- locks
def test_second_open_in_this_process_is_refused(tmp_path):
    with RunDir(tmp_path / "run", SPEC):
        with pytest.raises(CheckpointInUseError, match=f"PID {os.getpid()}"):
            RunDir(tmp_path / "run", SPEC).open()
    with RunDir(tmp_path / "run", SPEC):  # released
        pass


HOLDER = textwrap.dedent("""
    import sys, time
    from dbn.checkpoint import RunDir
    with RunDir(sys.argv[1], {"what": "test"}):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def hold(path, seconds):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(seconds)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_directory_held_by_another_process_stops_or_waits(tmp_path, monkeypatch):
    path = tmp_path / "run"
    proc = hold(path, 30)
    try:
        monkeypatch.setenv("DBN_LOCK_TIMEOUT", "0")
        with pytest.raises(CheckpointInUseError, match=f"in use by PID {proc.pid}"):
            RunDir(path, {"what": "test"}).open()
    finally:
        proc.kill()
        proc.wait()
    # The kernel released the killed holder's lock: no stale lock.
    with RunDir(path, {"what": "test"}):
        pass
    proc = hold(path, 1.5)
    monkeypatch.setenv("DBN_LOCK_TIMEOUT", "60")
    start = time.monotonic()
    with RunDir(path, {"what": "test"}):  # waits for the holder to release it
        assert time.monotonic() - start > 1.0
    proc.wait()


@pytest.mark.parametrize("value", ["-1", "nan", "soon", "inf"])
def test_bad_lock_timeout_is_refused(tmp_path, monkeypatch, value):
    monkeypatch.setenv("DBN_LOCK_TIMEOUT", value)
    with pytest.raises(ValueError, match="DBN_LOCK_TIMEOUT"):
        RunDir(tmp_path / "run", SPEC).open()


def test_fresh_discards_once_per_block(tmp_path):
    path = saved(tmp_path)
    with checkpoint.policy(fresh=True):
        with RunDir(path, SPEC) as run:
            assert not run.exists
            run.save(state={"epoch": 5})
        with RunDir(path, SPEC) as run:  # the work done since is kept
            assert run.state("state") == {"epoch": 5}
    with checkpoint.policy(fresh=True), RunDir(path, SPEC) as run:  # a new block discards again
        assert not run.exists
    with pytest.raises(ValueError, match="fresh"):
        with checkpoint.policy(fresh=1):
            pass


# --------------------------------------------------------------------------- scripts
def train_rbm_main():
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_rbm", ROOT / "experiments" / "train_rbm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_train_rbm_rerun_with_other_settings_trains_anew(tmp_path, caplog):
    """The old checkpoint was keyed on --name only: a rerun with another --lr trained 0
    epochs and returned the old weights under the new settings.  Now every setting keys
    it; the same command reuses it and says so; --fresh retrains."""
    main = train_rbm_main()
    base = ["--hidden", "20", "--epochs", "1", "--n-train", "1000", "--validation-size", "100",
            "--ais-runs", "2", "--ais-betas", "coarse", "--sample-steps", "2",
            "--checkpoint-dir", str(tmp_path / "ck")]

    def weights(out):
        with np.load(out / "rbm_cd1.npz") as f:
            return f["W"]

    first = main([*base, "--out", str(tmp_path / "a")])
    caplog.set_level("INFO", logger="dbn")
    caplog.clear()
    main([*base, "--out", str(tmp_path / "b")])
    assert "opening checkpoint" in caplog.text and "rbm_cd1_" in caplog.text
    np.testing.assert_array_equal(weights(tmp_path / "a"), weights(tmp_path / "b"))
    for extra in (["--lr", "0.01"], ["--n-train", "1500"], ["--hidden", "60"]):
        out = tmp_path / extra[0].strip("-")
        caplog.clear()
        payload = main([*base, *extra, "--out", str(out)])
        assert "new checkpoint" in caplog.text, extra
        epochs = len(first["history"]["reconstruction_error"])
        assert len(payload["history"]["epoch_seconds"]) == epochs  # trained here, not reused
        assert weights(out).shape != weights(tmp_path / "a").shape or not np.array_equal(
            weights(out), weights(tmp_path / "a")), extra
    runs = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert len(runs) == 4 and all(r.startswith("rbm_cd1_") for r in runs)
    caplog.clear()
    main([*base, "--fresh", "--out", str(tmp_path / "c")])
    assert "discarding" in caplog.text
    np.testing.assert_array_equal(weights(tmp_path / "a"), weights(tmp_path / "c"))  # deterministic


def test_demo_checkpoints_live_in_the_work_tree():
    """A new clone must not reuse ~/.cache/dbn/checkpoints/demo written by another clone."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("demo", ROOT / "experiments" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.DEMO_CHECKPOINTS == ROOT / "checkpoints" / "demo"
    assert "checkpoints/" in (ROOT / ".gitignore").read_text().split()


@pytest.mark.parametrize("extra, match", [
    (["--out", "FILE"], "--out=.*is a file"),
    (["--ais-runs", "1"], "--ais-runs=1"),
    (["--sample-steps", "0"], "--sample-steps=0"),
])
def test_train_rbm_checks_its_late_options_before_training(tmp_path, monkeypatch, extra, match):
    """Options used only after training (the output directory, AIS runs, sampling) are
    refused before a single epoch is trained."""
    import dbn.training.pretrain

    (tmp_path / "FILE").write_text("x")
    extra = [str(tmp_path / "FILE") if a == "FILE" else a for a in extra]
    monkeypatch.setattr(dbn.training.pretrain.RBM, "fit", lambda *a, **k: pytest.fail("trained"))
    args = ["--hidden", "5", "--epochs", "1", "--n-train", "500", "--validation-size", "100",
            "--checkpoint-dir", str(tmp_path / "ck"), "--out", str(tmp_path / "out"), *extra]
    with pytest.raises(ValueError, match=match):
        train_rbm_main()(args)
