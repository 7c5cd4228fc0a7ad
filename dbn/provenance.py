"""Provenance of results: environment, git commit, atomic JSON / npz writers.

Every experiment writes one JSON built by :func:`record`::

    {"config": ..., "seed": ..., "git_commit": ..., "environment": ...,
     "wall_time_seconds": ..., "started_utc": ..., **results}
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np

PACKAGES = ("tensorflow", "keras", "numpy", "scipy", "matplotlib", "tensorflow-datasets", "scikit-learn")
# The instruction-set extensions that change float32 results (oneDNN picks its kernels,
# and so its summation order and bfloat16 paths, by them) or their speed.
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16",
              "amx_tile", "amx_bf16")
_PROJECT_DIR = Path(__file__).resolve().parent.parent


def cpu(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU as one line: model name and the SIMD extensions of :data:`SIMD_FLAGS` it has.

    The same code gives float32 results that differ in the last bits, and speeds that
    differ by up to 2x, on CPUs of one "kind" (AVX2 against AVX-512 with bfloat16), so
    every result and checkpoint names the CPU that computed it.

    Returns
    -------
    str
        E.g. ``"AMD EPYC 9B14 [sse4_2 avx avx2 fma avx512f avx512_bf16]"``; where
        `cpuinfo` cannot be read (not Linux), ``platform.processor()`` or ``"unknown"``
        with no flags.
    """
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return platform.processor() or "unknown"
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("model name", "flags") and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    flags = set(fields.get("flags", "").split())
    model = " ".join(fields.get("model name", platform.processor() or "unknown").split())
    return f"{model} [{' '.join(f for f in SIMD_FLAGS if f in flags)}]"


def environment() -> dict:
    """Python, platform, CPU, CPU count and versions of the main packages.

    Returns
    -------
    dict
        ``{"python": str, "platform": str, "cpu": str (:func:`cpu`), "cpu_count": int,
        "packages": {distribution name: version or "not installed"}}``.
    """

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu(),
        "cpu_count": os.cpu_count(),
        "packages": {package: version(package) for package in PACKAGES},
    }


def git_commit(repo_dir: str | Path | None = None) -> str:
    """Commit hash of the work tree at `repo_dir` (default: this project).

    Returns
    -------
    str
        The full hash, suffixed ``"-dirty"`` if tracked files have
        uncommitted changes, or ``"unknown"`` when there is no git, no
        repository or no commit. Never raises.
    """
    repo_dir = _PROJECT_DIR if repo_dir is None else repo_dir

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo_dir), *args], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--verify", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_write(path: str | Path):
    """Open a temporary binary file that replaces `path` only on success.

    The temporary file lives in the same directory (created if needed), so
    the final ``os.replace`` is atomic; on error it is removed and `path` is
    left untouched.

    Yields
    ------
    file
        Binary file object to write to.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _to_builtin(obj):
    """``json.dumps`` hook for numpy values and paths."""
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serializable")


def write_json(path: str | Path, payload) -> Path:
    """Write `payload` as indented JSON, atomically.

    Numpy scalars and arrays become Python numbers and lists, paths strings.

    Raises
    ------
    ValueError
        If `payload` contains NaN or infinity (nothing is written).
    TypeError
        If `payload` contains an object JSON cannot represent.
    """
    try:
        text = json.dumps(payload, allow_nan=False, indent=2, sort_keys=False, default=_to_builtin)
    except ValueError as err:
        raise ValueError(f"refusing to write {path}: non-finite number (NaN/inf) in payload ({err})") from err
    except TypeError as err:
        raise TypeError(f"cannot write {path}: {err}") from err
    # With allow_nan=False the tokens NaN and Infinity can only stand inside strings (an
    # error message, a case's description); their first letter is written as a JSON
    # escape, the same string to any JSON reader, so a plain-text scan of a results file
    # for NaN/Infinity finds non-finite numbers only -- of which there are none.
    text = text.replace("NaN", "\\u004eaN").replace("Infinity", "\\u0049nfinity")
    with atomic_write(path) as f:
        f.write((text + "\n").encode())
    return Path(path)


def save_npz(path: str | Path, **arrays) -> Path:
    """Save arrays into an uncompressed ``.npz`` file, atomically.

    Raises
    ------
    ValueError
        If a floating-point array contains NaN or infinity (nothing is written).
    """
    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    for name, array in arrays.items():
        if array.dtype.kind in "fc" and not np.isfinite(array).all():
            raise ValueError(f"refusing to write {path}: array {name!r} contains NaN or infinity")
    with atomic_write(path) as f:
        np.savez(f, **arrays)
    return Path(path)


def portable(value):
    """``value`` (a config: dicts, lists, strings, paths) with every absolute path made
    machine-independent: relative to the repository when inside it, ``~/...`` when in the
    home directory, else ``<outside the repository>/<name>``."""
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(v) for v in value]
    if isinstance(value, Path) or (isinstance(value, str) and value.startswith("/")):
        path = Path(os.path.abspath(value))
        for base, prefix in ((_PROJECT_DIR, ""), (Path.home(), "~/")):
            if path == base or base in path.parents:
                return prefix + (str(path.relative_to(base)) if path != base else ".")
        return f"<outside the repository>/{path.name}"
    return value


def record(config: dict, *, seed, started: float, results: dict, commit: str | None = None) -> dict:
    """Standard results payload of one run.

    Parameters
    ----------
    config : dict
        Everything needed to rerun (e.g. ``vars(args)``); its absolute paths are
        recorded machine-independently (``portable``).
    seed : int
    started : float
        ``time.time()`` at the start of the run.
    results : dict
        Measurements; merged into the top level.
    commit : str, optional
        ``git_commit()`` taken when the run *started* (default: now). Long runs should
        pass it, so that edits made while they run are not attributed to them.

    Returns
    -------
    dict
        ``{"config", "seed", "git_commit", "environment",
        "wall_time_seconds", "started_utc", **results}``.
    """
    if not isinstance(config, dict):
        raise ValueError(f"config={config!r} must be a dict (e.g. vars(args))")
    if not isinstance(results, dict):
        raise ValueError(f"results={results!r} must be a dict of measurements")
    if (isinstance(started, bool) or not isinstance(started, (int, float, np.integer, np.floating))
            or not np.isfinite(started) or started < 0):
        raise ValueError(f"started={started!r} must be a finite time.time() value >= 0")
    if commit is not None and not isinstance(commit, str):
        raise ValueError(f"commit={commit!r} must be a str or None")
    payload = {
        "config": portable(config),
        "seed": seed,
        "git_commit": commit if commit is not None else git_commit(),
        "environment": environment(),
        "wall_time_seconds": time.time() - started,
        "started_utc": datetime.fromtimestamp(started, timezone.utc).isoformat(),
    }
    clashes = payload.keys() & results.keys()
    if clashes:
        raise ValueError(f"results keys {sorted(clashes)} clash with the standard provenance keys")
    return {**payload, **results}
