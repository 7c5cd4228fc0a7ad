import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from dbn import provenance


def test_environment_versions():
    env = provenance.environment()
    assert env["python"].count(".") == 2 and env["cpu_count"] >= 1
    assert set(env["packages"]) == set(provenance.PACKAGES)
    assert env["packages"]["numpy"] == np.__version__
    assert all(isinstance(v, str) and v for v in env["packages"].values())


def test_cpu_names_the_model_and_its_simd_extensions(tmp_path):
    info = tmp_path / "cpuinfo"
    # Two logical processors as Linux lists them: the first one's fields are taken.
    info.write_text("processor\t: 0\nmodel name\t: AMD  EPYC 9B14\n"
                    "flags\t\t: fpu avx512_bf16 sse4_2 avx2 avx fma avx512f\n\n"
                    "processor\t: 1\nmodel name\t: other\nflags\t\t: fpu\n")
    # In SIMD_FLAGS' order, whatever the file's; flags not in the list left out.
    assert provenance.cpu(info) == "AMD EPYC 9B14 [sse4_2 avx avx2 fma avx512f avx512_bf16]"
    info.write_text("processor\t: 0\nmodel name\t: Old CPU\nflags\t\t: fpu sse4_2\n")
    assert provenance.cpu(info) == "Old CPU [sse4_2]"
    # No /proc/cpuinfo (not Linux): the platform's name, without flags.
    assert "[" not in provenance.cpu(tmp_path / "missing")
    assert provenance.environment()["cpu"] == provenance.cpu()


def test_git_commit_unknown_outside_repo(tmp_path):
    assert provenance.git_commit(tmp_path) == "unknown"
    assert provenance.git_commit(tmp_path / "does-not-exist") == "unknown"
    assert isinstance(provenance.git_commit(), str)


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_commit_hash_and_dirty(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                       check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "f.txt").write_text("a")
    git("add", "f.txt")
    git("commit", "-q", "-m", "init")
    commit = provenance.git_commit(tmp_path)
    assert len(commit) == 40 and all(c in "0123456789abcdef" for c in commit)
    (tmp_path / "untracked.txt").write_text("ignored")
    assert provenance.git_commit(tmp_path) == commit
    (tmp_path / "f.txt").write_text("b")
    assert provenance.git_commit(tmp_path) == commit + "-dirty"


def test_write_json_converts_numpy_and_creates_dirs(tmp_path):
    path = tmp_path / "a" / "b" / "r.json"
    provenance.write_json(path, {"x": np.float32(0.5), "n": np.int64(3), "v": np.arange(3), "p": tmp_path})
    assert json.loads(path.read_text()) == {"x": 0.5, "n": 3, "v": [0, 1, 2], "p": str(tmp_path)}
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # no temp files left


@pytest.mark.parametrize("bad", [float("nan"), np.float32("inf"), np.array([1.0, np.nan])])
def test_write_json_refuses_non_finite_and_keeps_old_file(tmp_path, bad):
    path = tmp_path / "r.json"
    provenance.write_json(path, {"ok": 1})
    with pytest.raises(ValueError, match=r"refusing to write .*r\.json: non-finite"):
        provenance.write_json(path, {"loss": bad})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_write_json_refuses_unserializable(tmp_path):
    with pytest.raises(TypeError, match="cannot write .*r.json: object of type object"):
        provenance.write_json(tmp_path / "r.json", {"x": object()})
    assert not list(tmp_path.iterdir())


def test_atomic_write_leaves_nothing_on_error(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with provenance.atomic_write(path) as f:
            f.write(b"partial")
            raise RuntimeError("boom")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_save_npz_roundtrip_and_refuses_nan(tmp_path):
    path = tmp_path / "sub" / "w.npz"
    provenance.save_npz(path, W=np.ones((3, 2), np.float32), labels=np.arange(4))
    with np.load(path) as data:
        np.testing.assert_array_equal(data["W"], np.ones((3, 2)))
        np.testing.assert_array_equal(data["labels"], np.arange(4))
    with pytest.raises(ValueError, match="array 'b' contains NaN or infinity"):
        provenance.save_npz(tmp_path / "bad.npz", a=np.zeros(2), b=np.array([0.0, np.inf]))
    assert not (tmp_path / "bad.npz").exists()


def test_record_payload(tmp_path):
    started = time.time() - 2.0
    payload = provenance.record({"lr": 0.1}, seed=3, started=started, results={"error": np.float64(0.02)})
    assert list(payload)[:6] == ["config", "seed", "git_commit", "environment", "wall_time_seconds", "started_utc"]
    assert payload["config"] == {"lr": 0.1} and payload["seed"] == 3 and payload["error"] == 0.02
    assert 2.0 <= payload["wall_time_seconds"] < 60
    assert payload["started_utc"].endswith("+00:00")
    provenance.write_json(tmp_path / "r.json", payload)
    assert json.loads((tmp_path / "r.json").read_text())["git_commit"] == payload["git_commit"]
    with pytest.raises(ValueError, match=r"\['seed'\] clash"):
        provenance.record({}, seed=0, started=started, results={"seed": 1})


def test_recorded_config_holds_no_absolute_path_of_this_machine(tmp_path):
    root = provenance._PROJECT_DIR
    config = {"out": str(root / "results"), "ck": Path.home() / ".cache" / "dbn", "repo": str(root),
              "other": str(tmp_path / "x.json"), "nested": [{"p": str(root / "a" / "b.json")}],
              "name": "cd1", "lr": 0.05, "seeds": [0, 1]}
    payload = provenance.record(config, seed=0, started=time.time(), results={})
    assert payload["config"] == {
        "out": "results", "ck": "~/.cache/dbn", "repo": ".",
        "other": "<outside the repository>/x.json", "nested": [{"p": "a/b.json"}],
        "name": "cd1", "lr": 0.05, "seeds": [0, 1]}


# --------------------------------------------------------------------------- committed results
RESULTS = Path(__file__).resolve().parents[1] / "results"


def _finite_json(text):
    """Parse ``text`` as JSON, raising ValueError on a NaN, Infinity or -Infinity number
    (Python's json module accepts them; the words inside strings are text, not numbers)."""
    def refuse(constant):
        raise ValueError(f"non-finite number {constant} in a results file")
    return json.loads(text, parse_constant=refuse)


def test_the_finite_check_catches_a_non_finite_number_but_not_the_word():
    with pytest.raises(ValueError, match="NaN"):
        _finite_json('{"test_error": NaN}')
    with pytest.raises(ValueError, match="Infinity"):
        _finite_json('{"log_z": [1.0, -Infinity]}')
    assert _finite_json('{"description": "x with NaN or Infinity"}')["description"]


def test_write_json_escapes_the_words_so_a_text_scan_finds_no_non_finite_token(tmp_path):
    payload = {"detail": "x contains NaN or inf; Infinity allowed? no", "NaN key": [1.5, -2]}
    text = provenance.write_json(tmp_path / "r.json", payload).read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == payload  # the same strings to any JSON reader


@pytest.mark.parametrize("path", sorted(RESULTS.rglob("*.json")), ids=lambda p: str(p.relative_to(RESULTS)))
def test_every_committed_result_holds_finite_numbers_only(path):
    """A diverged run stops with an error; nothing non-finite reaches results/, and the
    words NaN/Infinity appear only escaped (``provenance.write_json``)."""
    text = path.read_text()
    _finite_json(text)
    assert "NaN" not in text and "Infinity" not in text
