"""Run directories: resumable work that cannot come back stale, foreign or corrupt.

Every piece of cached or resumable work (an RBM being trained, a pretrained DBN layer, a
fine-tuning run, a refit, an up-down run) lives in one directory of its own, opened as a
:class:`RunDir`:

* **keyed by everything that changes the result.**  The caller describes the work by a
  JSON-ready ``spec`` (every setting, the seed, and :func:`fingerprint` -- a SHA-256 of
  every byte -- of the data and initial weights).  :func:`run_path` names the directory
  after a hash of the spec, and the spec itself is stored in the manifest and compared
  in full on every open: a directory written for other settings or other data is refused
  (:class:`CheckpointMismatchError`), never resumed.
* **verified.**  ``manifest.json`` lists every file with its SHA-256 and carries a SHA-256
  of its own contents (the state: histories, results); opening a directory re-hashes
  them all.  A flipped byte or a truncated file is refused
  (:class:`CheckpointCorruptError`) with the file's path and the way out.
* **atomic.**  ``save`` writes new files under fresh, versioned names
  (``v000007-last.weights.h5``), then replaces the manifest atomically (write to a
  temporary file, fsync, ``os.replace``), then deletes the files the new manifest no
  longer lists.  A kill at any instant leaves the previous manifest and its files intact;
  unlisted leftovers are removed at the next open.
* **locked.**  ``open`` takes an exclusive ``flock`` on ``.lock`` (released by the kernel
  if the process dies, so a lock is never stale) and writes the holder's PID there.  A
  second process waits for it (``DBN_LOCK_TIMEOUT`` seconds, default forever) or stops
  with :class:`CheckpointInUseError` ("in use by PID n").

``policy(fresh=True)`` (the experiments' ``--fresh``) discards each directory's contents
the first time this process opens it and starts over.

Why not ``tf.train.CheckpointManager`` or ``keras.callbacks.BackupAndRestore``?  The
manager gives versioned checkpoints with an atomically written pointer file (the same
protocol as here) and CRC32C checks of tensors, but only for TensorFlow trackables: our
runs also hold JSON state (histories, early-stopping bookkeeping, results), ``.keras``
models and ``.npz`` arrays, and it has no notion of the settings a checkpoint was written
for, nor a lock.  ``BackupAndRestore`` keys nothing (any run resumes any backup in its
directory), verifies nothing and locks nothing -- the very faults this module exists to
prevent.  Keras' own file formats are kept for the files; this layer adds the key, the
hashes, the atomic manifest and the lock around them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import json
import logging
import os
import re
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from dbn.provenance import atomic_write, cpu, git_commit, sha256_file

log = logging.getLogger("dbn")

FORMAT = 2  # 1: the unverified state.json / result.json layout of dbn <= 62b2b0c
MANIFEST = "manifest.json"
LOCK = ".lock"
_VERSIONED = re.compile(r"^v(\d{6})-(.+)$")
_LEFTOVER = re.compile(r"^\..+\.tmp$")  # atomic_write's temporary files, left by a kill

_policy = {"fresh": False}
_freshened: set[str] = set()
_held: dict[str, "RunDir"] = {}


class CheckpointError(RuntimeError):
    """A run directory cannot be used as it is."""


class CheckpointCorruptError(CheckpointError):
    """A file of a run directory is missing, truncated or differs from its recorded hash."""


class CheckpointMismatchError(CheckpointError, ValueError):
    """A run directory was written for other settings, data or by an older format."""


class CheckpointInUseError(CheckpointError):
    """Another process (or this one) holds the run directory."""


def way_out(path) -> str:
    return (f"rerun with --fresh (or checkpoint.policy(fresh=True)) to discard it and start "
            f"over, or delete the directory {path}")


# --------------------------------------------------------------------------- keys
def fingerprint(*arrays) -> str:
    """SHA-256 of the dtype, shape and *every byte* of each array, in order (hex).

    The full hash of 60,000 MNIST images (188 MB as float32) takes about 0.3 s; a sampled
    hash would let two datasets differing in one row share cached work.
    """
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape};".encode())
        digest.update(memoryview(array.reshape(-1)).cast("B"))
    return digest.hexdigest()


def canonical(spec) -> str:
    """The JSON text a spec is compared and hashed by (sorted keys, no NaN)."""
    return json.dumps(spec, sort_keys=True, allow_nan=False, separators=(",", ":"))


def spec_key(spec, length=16) -> str:
    """Hex digest of ``{"format": FORMAT, "spec": spec}`` (names run directories); ``spec``
    as ``with_distribution`` completes it."""
    spec = with_distribution(spec)
    return hashlib.sha256(canonical({"format": FORMAT, "spec": spec}).encode()).hexdigest()[:length]


def with_distribution(spec):
    """``spec`` plus the tf.distribute strategy in scope (its class and number of
    replicas) when there is one: a run trained under a strategy draws other random
    numbers than one device, so it is other work.  Unchanged without a strategy (the
    keys of every run made before tf.distribute stay valid)."""
    tf = sys.modules.get("tensorflow")
    if spec is None or tf is None or not tf.distribute.has_strategy():
        return spec
    strategy = tf.distribute.get_strategy()
    return {**spec, "distribute": {"strategy": type(strategy).__name__,
                                   "replicas": int(strategy.num_replicas_in_sync)}}


def run_path(root, prefix, spec) -> Path:
    """``root / f"{prefix}_{spec_key(spec)}"``: the directory of the work ``spec`` describes."""
    return Path(root) / f"{prefix}_{spec_key(spec)}"


# --------------------------------------------------------------------------- policy
@contextlib.contextmanager
def policy(*, fresh: bool = False):
    """Within the block, ``fresh=True`` makes the first ``open`` of each run directory in
    this process discard what it holds (``--fresh``)."""
    if not isinstance(fresh, bool):
        raise ValueError(f"fresh={fresh!r} is not allowed: True or False")
    saved = dict(_policy)
    _policy["fresh"] = fresh
    try:
        yield
    finally:
        _policy.update(saved)
        if fresh:
            _freshened.clear()  # the next --fresh block discards again


def lock_timeout() -> float | None:
    """Seconds to wait for a run directory held by another process (``DBN_LOCK_TIMEOUT``;
    unset: wait as long as it takes; 0: stop at once)."""
    raw = os.environ.get("DBN_LOCK_TIMEOUT", "")
    if raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"DBN_LOCK_TIMEOUT={raw!r} is not allowed: a number of seconds >= 0")
    return value


# --------------------------------------------------------------------------- run dirs
class RunDir:
    """One resumable piece of work in its own directory (see the module docstring).

    Parameters
    ----------
    path : str or Path
        The directory (created on open), usually ``run_path(root, prefix, spec)``.
    spec : dict or None
        JSON-ready description of everything that determines the result.  ``None``
        opens an existing directory for reading, whatever it was written for.
    what : str
        Names the work in messages ("DBN layer 1", "fine-tuning run").
    keyed_by_strategy : bool, default True
        Complete ``spec`` with the tf.distribute strategy in scope (``with_distribution``):
        right for work that training produces; False for a saved format (``DBN.save``),
        which reads back the same under any strategy.

    Use as a context manager::

        with RunDir(path, spec, what="RBM training") as run:
            state = run.state("training")          # None for a new run
            ...
            run.save(training={...}, files={"last.weights.h5": rbm.save_weights})
    """

    def __init__(self, path, spec, *, what="run", keyed_by_strategy=True):
        self.path = Path(path)
        self.spec = with_distribution(spec) if keyed_by_strategy else spec
        self.what = what
        self._manifest = None
        self._lock_fd = None
        if spec is not None:
            canonical(spec)  # JSON-ready and finite, before anything is created

    # ---------------------------------------------------------------- open / close
    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def is_open(self):
        return self._lock_fd is not None

    def open(self):
        key = str(self.path.resolve())
        if key in _held:
            raise CheckpointInUseError(f"{self.what}: {self.path} is already open in this process "
                                       f"(PID {os.getpid()})")
        if self.spec is None and not (self.path / MANIFEST).is_file():
            raise FileNotFoundError(f"{self.what}: {self.path / MANIFEST} not found: "
                                    f"{self.path} is not a run directory of this package")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CheckpointError(f"{self.what}: cannot create {self.path}: {err}") from err
        self._lock()
        _held[key] = self
        try:
            if _policy["fresh"] and self.spec is not None and key not in _freshened:
                self._wipe()
                _freshened.add(key)
            self._manifest = self._read_manifest()
            self._remove_unlisted()
        except BaseException:
            self.close()
            raise
        if self._manifest is None:
            log.info("%s: new checkpoint in %s", self.what, self.path)
        else:
            log.info("%s: opening checkpoint %s (written %s by commit %s)", self.what,
                     self.path, self._manifest.get("written_utc", "?"),
                     str(self._manifest.get("git_commit", "?"))[:12])
        return self

    def close(self):
        key = str(self.path.resolve())
        if _held.get(key) is self:
            del _held[key]
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _lock(self):
        timeout, start, announced = lock_timeout(), time.monotonic(), False
        try:
            fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise CheckpointError(f"{self.what}: cannot create the lock file {self.path / LOCK}: {err}"
                                  ) from err
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as err:
                    if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                        raise
                holder = _read_pid(self.path / LOCK)
                if timeout is not None and time.monotonic() - start >= timeout:
                    raise CheckpointInUseError(
                        f"{self.what}: {self.path} is in use by PID {holder} (another run with the "
                        f"same settings); wait for it to finish, or use another --checkpoint-dir")
                if not announced:
                    log.warning("%s: %s is in use by PID %s; waiting for it to finish "
                                "(DBN_LOCK_TIMEOUT=0 stops instead)", self.what, self.path, holder)
                    announced = True
                time.sleep(0.2)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        except BaseException:
            os.close(fd)  # also on Ctrl-C while waiting
            raise
        self._lock_fd = fd

    def _require_open(self):
        if not self.is_open:
            raise CheckpointError(f"{self.what}: {self.path} is not open (use `with RunDir(...)`)")

    # ---------------------------------------------------------------- manifest
    def _foreign(self):
        """Entries that no run directory holds: not the manifest, the lock, a versioned file
        or a leftover temporary file (subdirectories count: runs are never nested)."""
        return sorted(p.name for p in self.path.iterdir()
                      if p.name not in (MANIFEST, LOCK) and not (
                          p.is_file() and (_VERSIONED.match(p.name) or _LEFTOVER.match(p.name))))

    def _read_manifest(self):
        path = self.path / MANIFEST
        foreign = self._foreign()
        if foreign and path.exists():
            raise CheckpointMismatchError(
                f"{self.what}: {self.path} holds entries no run directory has "
                f"({', '.join(foreign[:4])}{', ...' if len(foreign) > 4 else ''}); "
                + way_out(self.path))
        if not path.exists():
            if foreign:
                raise CheckpointMismatchError(
                    f"{self.what}: {self.path} holds files but no {MANIFEST} ({', '.join(sorted(foreign)[:4])}"
                    f"{', ...' if len(foreign) > 4 else ''}): written by an older version of dbn or "
                    f"by something else, so its settings and contents cannot be verified; "
                    + way_out(self.path))
            return None
        try:
            manifest = json.loads(path.read_text())
            files = manifest["files"]
            manifest["state"], manifest["spec"], manifest["version"]  # noqa: B018 (presence)
            if manifest.get("format") == FORMAT and manifest.get("checksum") != _checksum(manifest):
                raise ValueError("its checksum does not match its contents (modified or damaged)")
            if manifest.get("format") != FORMAT:
                raise CheckpointMismatchError(
                    f"{self.what}: {path} has format {manifest.get('format')!r}, this dbn reads "
                    f"format {FORMAT}; " + way_out(self.path))
        except CheckpointMismatchError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise CheckpointCorruptError(
                f"{self.what}: {path} is unreadable or incomplete ({type(err).__name__}: {err}); "
                + way_out(self.path)) from None
        if self.spec is not None and canonical(manifest["spec"]) != canonical(self.spec):
            raise CheckpointMismatchError(
                f"{self.what}: {self.path} was written for other settings or data "
                f"({describe_difference(manifest['spec'], self.spec)}); it is not resumed; "
                + way_out(self.path))
        for name, entry in files.items():
            file = self.path / entry["file"]
            if not file.is_file():
                raise CheckpointCorruptError(f"{self.what}: {file} listed in {path} is missing; "
                                             + way_out(self.path))
            if sha256_file(file) != entry["sha256"]:
                raise CheckpointCorruptError(
                    f"{self.what}: {file} is corrupt (its SHA-256 differs from the one recorded "
                    f"in {MANIFEST}: truncated or modified after it was written); " + way_out(self.path))
        return manifest

    def _remove_unlisted(self):
        """Delete versioned files no manifest lists (left by a kill during ``save``)."""
        listed = {e["file"] for e in (self._manifest or {}).get("files", {}).values()}
        for p in self.path.iterdir():
            if p.is_file() and _VERSIONED.match(p.name) and p.name not in listed:
                p.unlink()
        for p in self.path.iterdir():
            if p.is_file() and _LEFTOVER.match(p.name):
                p.unlink()

    def _wipe(self):
        """``--fresh``: delete what this run saved -- only if the directory holds nothing
        else (never a directory of other files, never another run nested in it)."""
        foreign = self._foreign()
        if foreign:
            raise CheckpointMismatchError(
                f"{self.what}: --fresh refuses to empty {self.path}: it holds entries no run "
                f"directory has ({', '.join(foreign[:4])}{', ...' if len(foreign) > 4 else ''}); "
                "delete or move them yourself, or use another directory")
        log.info("%s: --fresh: discarding %s", self.what, self.path)
        for name in [MANIFEST] + sorted(p.name for p in self.path.iterdir()):  # manifest first
            if name != LOCK and (self.path / name).exists():
                (self.path / name).unlink()

    # ---------------------------------------------------------------- reading
    @property
    def exists(self):
        """Whether anything was saved (a manifest exists)."""
        self._require_open()
        return self._manifest is not None

    def state(self, section, default=None):
        """The JSON value saved under ``section``, or ``default``."""
        self._require_open()
        return (self._manifest or {}).get("state", {}).get(section, default)

    def has(self, name):
        self._require_open()
        return name in (self._manifest or {}).get("files", {})

    def file(self, name) -> Path:
        """Path of the verified file saved as ``name`` (hashes were checked on open)."""
        self._require_open()
        entry = (self._manifest or {}).get("files", {}).get(name)
        if entry is None:
            raise CheckpointCorruptError(f"{self.what}: {self.path} has no file {name!r} "
                                         f"(manifest lists {sorted((self._manifest or {}).get('files', {}))}); "
                                         + way_out(self.path))
        return self.path / entry["file"]

    # ---------------------------------------------------------------- writing
    def save(self, *, files=None, drop=(), **sections):
        """Atomically record new state sections and files.

        Parameters
        ----------
        files : dict[str, callable], optional
            ``name -> writer``; ``writer(path)`` must write the file at ``path`` (its name
            ends with ``name``, so suffixes such as ``.weights.h5`` or ``.keras`` hold).
        drop : sequence of str
            Files to remove from the run.
        **sections
            JSON-ready values replacing the state sections of those names.
        """
        self._require_open()
        old = self._manifest or {"files": {}, "state": {}, "version": 0}
        version = old["version"] + 1
        entries = {k: v for k, v in old["files"].items() if k not in drop}
        for name, writer in (files or {}).items():
            if "/" in name or _VERSIONED.match(name):
                raise ValueError(f"file name {name!r} is not allowed: a plain name without '/'")
            target = self.path / f"v{version:06d}-{name}"
            writer(target)
            if not target.is_file():
                raise CheckpointError(f"{self.what}: the writer of {name!r} did not create {target}")
            entries[name] = {"file": target.name, "sha256": sha256_file(target)}
        manifest = {
            "format": FORMAT, "what": self.what, "version": version, "spec": self.spec,
            "state": {**old["state"], **sections}, "files": entries,
            "written_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "git_commit": _commit(), "pid": os.getpid(),
            # every CPU that wrote a version of this run: a run resumed across machines
            # mixes their float32 rounding (see dbn.provenance.cpu)
            "cpus": list(dict.fromkeys([*old.get("cpus", []), _cpu()])),
        }
        manifest["checksum"] = _checksum(manifest)
        text = json.dumps(manifest, indent=1, allow_nan=False)
        with atomic_write(self.path / MANIFEST) as f:
            f.write(text.encode())
        self._manifest = manifest
        self._remove_unlisted()


def open_for(checkpoint_dir, spec, *, what):
    """A context manager giving the ``RunDir`` for ``spec``: ``checkpoint_dir`` is None
    (gives None: no checkpointing), an open ``RunDir`` (the caller's run, used as is), or a
    path (a run directory there for ``spec``, opened and closed by the block).  ``spec``
    may be a function returning it, called only in the last case (specs hash data)."""
    if checkpoint_dir is None or isinstance(checkpoint_dir, RunDir):
        return contextlib.nullcontext(checkpoint_dir)
    return RunDir(checkpoint_dir, spec() if callable(spec) else spec, what=what)


def section_state(run, section, inputs):
    """The state saved under ``section`` of ``run`` (None if none), refusing state saved
    for other ``inputs`` (a spec: several steps can share one run directory, each keeps
    the key of what it was given in its section)."""
    if run is None:
        return None
    saved = run.state(section)
    if saved is not None and saved.get("inputs") != inputs:
        raise CheckpointMismatchError(
            f"{run.what}: the {section!r} state in {run.path} was written for other inputs "
            f"({describe_difference(saved.get('inputs'), inputs)}); " + way_out(run.path))
    return saved


def describe_difference(saved, wanted, limit=3):
    """``key: saved -> wanted`` for the top-level keys of two specs that differ."""
    if not (isinstance(saved, dict) and isinstance(wanted, dict)):
        return f"{_short(saved)} -> {_short(wanted)}"
    keys = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
    parts = [f"{k}: {_short(saved.get(k))} -> {_short(wanted.get(k))}" for k in keys[:limit]]
    return "; ".join(parts + ([f"{len(keys) - limit} more"] if len(keys) > limit else []))


def _short(value, width=90):
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= width else text[: width - 3] + "..."


_warned_legacy: set[str] = set()


def warn_legacy(root):
    """Say once per process if ``root`` (a checkpoint root: a layer cache, ``runs/``)
    holds checkpoints of the format before run directories: they are never read (their
    keys hashed a sample of the data), so the user should know they can go."""
    root = Path(root)
    if str(root) in _warned_legacy or not root.is_dir():
        return
    _warned_legacy.add(str(root))
    old = sorted(p.name for p in root.iterdir()
                 if (p.is_file() and p.suffix in (".keras", ".json", ".npz", ".h5"))
                 or (p.is_dir() and not (p / MANIFEST).exists()
                     and any((p / f).exists() for f in ("state.json", "result.json"))))
    if old:
        log.warning("%s holds %d checkpoint(s) written by dbn before run directories (e.g. %s): "
                    "they are not read (their keys hashed only a sample of the data), so this run "
                    "computes its own; delete them to free the space", root, len(old), old[0])


def open_existing(path, *, what="run"):
    """A :class:`RunDir` to read a finished run (any spec); use as a context manager."""
    return RunDir(path, None, what=what)


def _checksum(manifest):
    """SHA-256 of the manifest's own contents (all but this field): the state it holds
    (histories, results) is verified like the files it lists."""
    return hashlib.sha256(canonical({k: v for k, v in manifest.items() if k != "checksum"}).encode()
                          ).hexdigest()


def _read_pid(path):
    try:
        return path.read_text().strip() or "?"
    except OSError:
        return "?"


@functools.cache
def _commit():
    return git_commit()


@functools.cache
def _cpu():
    return cpu()
