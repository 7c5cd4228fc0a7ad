"""Trust audit (issue 12): bad input, stale/foreign/corrupt caches, faults and
concurrency must give a clear error or the right result -- never a wrong number.

Each case is a small Python snippet run against one checkout of the package
(``PYTHONPATH=<checkout>``) in a fresh process whose working directory is a temporary
directory of its own, with a fake ``HOME`` and ``DBN_CHECKPOINT_DIR`` (the real caches
are never touched).  The snippet prints a verdict:

* ``ok``: the expected outcome -- a clear error (a ``ValueError``, ``FileNotFoundError``,
  ... whose message names the parameter, the file, "in use by PID", ``--fresh``, ...;
  not a TensorFlow/numpy/h5py/json internal error, not AttributeError, KeyError,
  ZeroDivisionError, BlockingIOError...) or the right result (a resumed run equals the
  uninterrupted one, a changed setting trains anew, a valid input is accepted);
* ``defective``: a silent wrong result, a wrong or obscure error, or a hang (timeout);
* ``error``: the snippet itself failed before reaching a verdict (a harness problem or
  an API the snippet does not know; counted apart, read its detail).

Usage::

    python experiments/trust_audit.py --repo /path/to/checkout [--out results/trust_audit.json]
        [--report summary.md] [--only PATTERN ...] [-j 2] [--spawn] [--legacy-repo DIR] [--list]

    # before/after table of issue 12: the commit before the fixes and the current tree
    git worktree add /tmp/dbn-62b2b0c 62b2b0c
    python experiments/trust_audit.py --repo /tmp/dbn-62b2b0c --out /tmp/before.json
    python experiments/trust_audit.py --repo . --legacy-repo /tmp/dbn-62b2b0c --out /tmp/after.json

``--only`` takes a glob or a substring of case ids, or a category (``input:rbm``,
``cache``, ``concurrency``, ``faults``...).  ``--legacy-repo`` is the version whose
checkpoints the ``legacy-*`` cases hand to the audited one (default: the audited one).

By default the cases of one worker are forked from a process that has already imported
TensorFlow and the audited package (no TensorFlow op has run in it, so every case gets a
fresh TensorFlow runtime) -- seconds instead of minutes for the bad-input categories.
``--spawn`` starts a new interpreter per case instead.  Cases that run experiment
scripts start those as separate interpreters in either mode; the small ``train_rbm.py``
run that many cache cases start from is run once per audit and copied into each case's
directory.  The whole audit takes about 6 minutes with ``-j 2`` on 2 cores.

The JSON holds the audited commit, the harness commit, versions, wall time, every case
(id, category, description, expected outcome, outcome, detail, seconds) and the counts.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

# --------------------------------------------------------------------------- prelude
# Executed at the top of every case (in the case's process).
PRELUDE = r'''
import json, os, re, sys, math, time, signal, shutil, subprocess, inspect, gzip, hashlib
from pathlib import Path
import numpy as np

REPO = Path(os.environ["AUDIT_REPO"])
PY = os.environ.get("AUDIT_PY", sys.executable)
HERE = Path.cwd()

# The cases import the module paths of 62b2b0c (dbn.datasets, dbn.rbm, ...). Where a
# checkout no longer has one of them, it is served lazily from the modules that took over
# its names (the layout of issue 13), so the same snippets run on both layouts.
import importlib, importlib.util, types
_MOVED = {
    "dbn.datasets": ["dbn.data", "dbn.data.mnist", "dbn.data.splits", "dbn.data.pipeline", "dbn.data.tfds"],
    "dbn.rbm": ["dbn.models.rbm", "dbn.ops", "dbn.estimation.exact", "dbn.training.callbacks"],
    "dbn.dbn": ["dbn.models.dbn", "dbn.models.classifier", "dbn.training.configs"],
    "dbn.finetune": ["dbn.training.finetune", "dbn.training.configs"],
    "dbn.ais": ["dbn.estimation.ais"],
    "dbn.generative": ["dbn.models.generative", "dbn.training.configs"],
    "dbn.comparison": ["dbn.protocols.comparison"],
}


def _serve_moved(old, new):
    module = types.ModuleType(old)

    def __getattr__(name):
        for candidate in new:
            try:
                found = importlib.import_module(candidate)
            except ImportError:
                continue
            if hasattr(found, name):
                return getattr(found, name)
        raise AttributeError(f"none of {new} has {name!r} (for {old})")

    module.__getattr__ = __getattr__
    sys.modules[old] = module
    setattr(importlib.import_module("dbn"), old.split(".", 1)[1], module)


for _old, _new in _MOVED.items():
    try:
        _missing = importlib.util.find_spec(_old) is None
    except ImportError:
        _missing = True
    if _missing:
        _serve_moved(_old, _new)


class _Done(BaseException):
    pass


def _emit(outcome, detail=""):
    sys.stdout.write("\nAUDIT_VERDICT " + json.dumps({"outcome": outcome, "detail": str(detail)[:1500]}) + "\n")
    sys.stdout.flush()
    raise _Done()


def ok(detail=""):
    _emit("ok", detail)


def bad(detail=""):
    _emit("defective", detail)


def short(value, n=160):
    if isinstance(value, np.ndarray):
        return f"array{value.shape} {value.dtype}"
    text = " ".join(repr(value).split())
    if len(text) > n and not isinstance(value, (str, int, float, list, tuple, dict)):
        return f"<{type(value).__name__} object>"
    return text if len(text) <= n else text[:n] + "..."


def describe(e):
    t = type(e)
    name = t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__name__}"
    text = str(e).strip().replace("\n", " | ")
    return f"{name}: {text[:600]}"


# Error types that are never a clear answer to bad input, and modules whose errors are
# internal (the message speaks about their internals, not about the user's input).
OBSCURE = (AttributeError, KeyError, IndexError, ZeroDivisionError, NameError, AssertionError,
           BlockingIOError, UnboundLocalError, RecursionError, json.JSONDecodeError,
           UnicodeDecodeError, NotImplementedError, StopIteration)
INTERNAL = ("tensorflow", "keras", "numpy", "h5py", "json", "zipfile", "absl", "google",
            "jax", "pickle", "_pickle", "ml_dtypes", "optree")


def names(text, words):
    """Does ``text`` contain one of ``words`` (case-insensitive, not inside a longer name)?"""
    for w in words:
        w = str(w)
        if re.search(r"(?<![A-Za-z0-9_])" + re.escape(w) + r"(?![A-Za-z0-9_])", text, re.I):
            return True
    return False


def judge_error(e, words, context=""):
    """ok if ``e`` is a clear error naming one of ``words``, else defective."""
    text = describe(e)
    own = type(e).__module__.split(".")[0] == "dbn"  # an error class of the package itself
    if isinstance(e, OBSCURE) and not own:
        bad(f"{context}obscure error {text}")
    if type(e).__module__.split(".")[0] in INTERNAL or (not own and re.search(
            r"in user code:|Graph execution error|\{\{function_node|not enough values to unpack|"
            r"too many values to unpack", str(e))):
        bad(f"{context}internal error {text}")
    if not isinstance(e, Exception):
        bad(f"{context}{text}")
    if words and not names(str(e), words):
        bad(f"{context}error does not name {list(words)}: {text}")
    ok(text)


def judge_corruption_error(e, paths, context=""):
    """An error after a checkpoint file was damaged: it must name the file (or its
    directory) and must not claim that an existing file is missing."""
    if re.search(r"not found|no such file|does not exist|is missing", str(e), re.I) and all(Path(p).exists() for p in paths):
        bad(f"{context}misleading error (the file exists): {describe(e)}")
    judge_error(e, file_words(paths), context=context)


def expect_error(fn, *words):
    """The call must raise a clear error naming one of ``words``."""
    try:
        result = fn()
    except _Done:
        raise
    except BaseException as e:
        judge_error(e, words)
    bad(f"accepted silently; returned {short(result)}")


def expect_ok(fn, check=None):
    """The call must work (and ``check(result)`` hold, if given: it returns an error text or None)."""
    try:
        result = fn()
    except _Done:
        raise
    except BaseException as e:
        bad(f"valid input refused: {describe(e)}")
    problem = check(result) if check is not None else None
    if problem:
        bad(problem)
    ok(f"accepted; returned {short(result)}")


# ---------------------------------------------------------------- data
def binary(n=200, d=784, seed=0, p=0.3):
    return (np.random.default_rng(seed).random((n, d)) < p).astype(np.float32)


def grey(n=200, d=784, seed=0):
    return np.random.default_rng(seed).random((n, d)).astype(np.float32)


def mnist(n_train=500, validation_size=200, binarization="none", seed=0):
    from dbn import datasets
    return datasets.load(n_train=n_train, validation_size=validation_size,
                         binarization=binarization, seed=seed)


def tiny_classifier(sizes=(784, 16), n_classes=10, init="glorot", seed=0):
    from dbn.dbn import build_classifier
    return build_classifier(list(sizes), n_classes, init=init, seed=seed)


def quiet_config(**kw):
    from dbn.finetune import FineTuneConfig
    base = dict(max_epochs=1, patience=1, batch_size=50)
    base.update(kw)
    return FineTuneConfig(**base)


def layer_config(**kw):
    from dbn.training import RBMTrainingConfig
    base = dict(n_hidden=16, epochs=1, batch_size=50, learning_rate=0.05, final_learning_rate=None)
    base.update(kw)
    return RBMTrainingConfig(**base)


def call_with(fn, *args, **kwargs):
    """Call ``fn`` passing only the keyword arguments it accepts; a path to a checkpoint
    may be called checkpoint_dir, backup_dir or cache_dir depending on the version."""
    params = inspect.signature(fn).parameters
    if "checkpoint_dir" in kwargs and "checkpoint_dir" not in params:
        for alt in ("backup_dir", "cache_dir", "run_dir", "directory"):
            if alt in params:
                kwargs[alt] = kwargs.pop("checkpoint_dir")
                break
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    return fn(*args, **kwargs)


# ---------------------------------------------------------------- files
def files_under(root, suffixes=None, contains=None):
    """Every file below ``root`` (sorted) whose name ends with one of ``suffixes`` and
    contains ``contains`` (any layout: the old one or a run directory with a manifest)."""
    out = []
    for p in sorted(Path(root).rglob("*")):
        if not p.is_file():
            continue
        if suffixes and not any(p.name.endswith(s) for s in suffixes):
            continue
        if contains and contains not in p.name:
            continue
        out.append(p)
    return out


def _h5_target(path, prefer=None, avoid=None):
    """(offset, nbytes) of the largest contiguous dataset of an HDF5 file (its name
    containing ``prefer`` if any does), or None."""
    try:
        import h5py
    except ImportError:
        return None
    found = []
    try:
        with h5py.File(path, "r") as f:
            def visit(name, obj):
                if isinstance(obj, h5py.Dataset) and obj.size > 4:
                    offset = obj.id.get_offset()
                    if offset is not None:
                        found.append((name, int(offset), int(obj.id.get_storage_size())))
            f.visititems(visit)
    except Exception:
        return None
    if avoid:
        found = [t for t in found if avoid not in t[0]] or found
    if prefer:
        preferred = [t for t in found if prefer in t[0]]
        found = preferred or found
    if not found:
        return None
    name, offset, size = max(found, key=lambda t: t[2])
    return name, offset, size


def flip_byte(path, prefer=None, avoid=None):
    """Flip one byte inside the data of ``path`` (an HDF5 file: inside its largest
    dataset, e.g. a weight matrix; otherwise the middle byte). Returns a description."""
    path = Path(path)
    data = bytearray(path.read_bytes())
    target = _h5_target(path, prefer, avoid) if path.name.endswith(".h5") else None
    if target:
        name, offset, size = target
        position = offset + size // 2 + 1
        where = f"dataset {name}"
    else:
        position = len(data) // 2
        where = "middle"
    data[position] ^= 0x5A
    path.write_bytes(bytes(data))
    return f"{path.name}: byte {position} ({where}) flipped"


def truncate(path, keep=0.5):
    path = Path(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return f"{path.name}: truncated {len(data)} -> {int(len(data) * keep)} bytes"


def npz(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def same_arrays(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def file_words(paths):
    """Words by which an error can name ``paths``: file names, relative and absolute paths
    of the files and of their directories."""
    words = []
    for p in map(Path, paths):
        words += [p.name, str(p), str(p.resolve()), str(p.parent.resolve())]
        if str(p.parent) not in (".", ""):
            words.append(str(p.parent) + "/")
    return [w for w in dict.fromkeys(words) if len(w) > 3]


def names_file(text, paths):
    """Does ``text`` name one of ``paths`` (file name, path, or its directory's path)?"""
    return any(w in text for w in file_words(paths))


_OBSCURE_SCRIPT = ("JSONDecodeError", "BlockingIOError", "KeyError", "AttributeError", "ZeroDivisionError",
                   "IndexError", "BadZipFile", "InvalidArgumentError", "UnboundLocalError", "DataLossError",
                   "NotFoundError", "TypeError", "UnicodeDecodeError")


def final_error(text):
    """The last message of a failed script: its last lines that are not traceback source
    lines or TensorFlow log lines."""
    lines = [l for l in (text or "").splitlines()
             if l.strip() and not l.startswith((" ", "\t", "Traceback", "I0000", "W0000", "E0000",
                                                "WARNING: All log", "During handling", "The above"))
             and not re.match(r"^\d+/\d+ .*step", l)]
    return " | ".join(lines[-2:])


def judge_script_failure(r, paths=(), words=(), context=""):
    """A script exited non-zero: ok if its final message names one of ``paths`` or
    ``words`` and is not an obscure/internal error."""
    msg = final_error((r.stdout or "") + "\n" + (r.stderr or ""))
    last = msg.split(" | ")[-1]
    kind = re.match(r"^([A-Za-z_][\w.]*)(:|$)", last)
    if kind and kind.group(1).split(".")[-1] in _OBSCURE_SCRIPT:
        bad(f"{context}obscure failure: {msg[:600]}")
    if paths and re.search(r"not found|no such file|does not exist", msg, re.I) and all(Path(p).exists() for p in paths):
        bad(f"{context}misleading error (the file exists): {msg[:600]}")
    if names_file(msg, paths) or any(w in msg for w in words):
        ok(f"{context}{msg[:600]}")
    bad(f"{context}failure not naming {[Path(p).name for p in paths] + list(words)}: {msg[:600]}")


# ---------------------------------------------------------------- scripts
def script_env(**extra):
    env = dict(os.environ)
    env.update({k: str(v) for k, v in extra.items() if v is not None})
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
    return env


def run_script(name, *args, env=None, timeout=300, cwd=None, preexec_fn=None):
    """Run ``experiments/<name>`` of the audited checkout; returns CompletedProcess."""
    cmd = [PY, str(REPO / "experiments" / name), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=env or os.environ, cwd=cwd or HERE, preexec_fn=preexec_fn)


def start_script(name, *args, env=None, cwd=None, log=None):
    cmd = [PY, str(REPO / "experiments" / name), *map(str, args)]
    out = open(log or os.devnull, "w")
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True,
                            env=env or os.environ, cwd=cwd or HERE)


def tail(text, n=700):
    text = (text or "").strip()
    lines = [l for l in text.splitlines() if not re.match(r"^(WARNING: All log|I0000|E0000|W0000)", l)]
    text = "\n".join(lines)
    return text[-n:].replace("\n", " | ")



def edit_test_error(p):
    """Change one digit of the first "test_error" number of a JSON file (still valid JSON)."""
    text = p.read_text()
    m = re.search(r'"test_error": (\d)\.(\d)', text)
    if not m:
        return f"{p.name}: no test_error"
    p.write_text(text[:m.start(2)] + str((int(m.group(2)) + 3) % 10) + text[m.end(2):])
    return f"{p.name}: test_error edited"


WEIGHT_SUFFIXES = (".keras", ".h5", ".npz", ".index", ".ckpt")


def weight_files(root):
    """Weight-like files below ``root``: Keras/HDF5/npz files and TensorFlow checkpoints."""
    return [p for p in files_under(root)
            if p.name.endswith(WEIGHT_SUFFIXES) or ".data-" in p.name]


def json_files(root):
    return files_under(root, (".json",))


def corrupt_all(paths, how):
    if not paths:
        _emit("error", "no file to corrupt found")
    return "; ".join(how(p) for p in paths)


def run_py(code, timeout=300, env=None):
    """Run ``code`` in a new interpreter (PYTHONPATH is the audited checkout)."""
    return subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=timeout,
                          env=env or os.environ, cwd=HERE)


def wait_for(predicate, timeout=120, proc=None):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return predicate()
        time.sleep(0.05)
    return False


def pretrain_stack(x, ck, sizes=(784, 16), seed=0, **cfg):
    """Pretrain a small DBN with a checkpoint directory; its layers' weights."""
    from dbn.dbn import DBN
    stack = DBN(list(sizes), layer_configs=layer_config(**cfg), seed=seed)
    stack.pretrain(x, checkpoint_dir=ck, verbose=0)
    return [r.W.numpy() for r in stack.rbms]


def equal_lists(a, b):
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))


RBM_SMALL = ["--hidden", 16, "--epochs", 1, "--n-train", 300, "--validation-size", 100,
             "--ais-runs", 2, "--ais-betas", "coarse", "--sample-steps", 2]


def rbm_args(name="t", out="out", ckpt="ck", **changes):
    """train_rbm.py arguments of a small run; ``changes`` override option values."""
    args = list(RBM_SMALL)
    opts = {}
    for i in range(0, len(args), 2):
        opts[args[i]] = args[i + 1]
    for key, value in changes.items():
        opts["--" + key.replace("_", "-")] = value
    flat = []
    for k, v in opts.items():
        if v is True:
            flat.append(k)
        elif v is not False and v is not None:
            flat += [k, v]
    return ["--name", name, "--out", out, "--checkpoint-dir", ckpt, *flat]


def rbm_run(name="t", out="out", ckpt="ck", timeout=300, env=None, **changes):
    r = run_script("train_rbm.py", *rbm_args(name, out, ckpt, **changes), timeout=timeout, env=env)
    result = HERE / out / f"rbm_{name}.npz"
    return r, (npz(result) if r.returncode == 0 and result.exists() else None)


def trained(r):
    """Did a train_rbm.py run finish an epoch (Keras' epoch log line)?"""
    return bool(re.search(r"reconstruction_error: ", (r.stdout or "") + (r.stderr or "")))


def shared_rbm_baseline(out="out1", ckpt="ck"):
    """The small train_rbm.py run of ``rbm_args()``: run once per audit (under a lock, in
    AUDIT_SHARED) and copied here -- its checkpoint directory as ``ckpt``, its results as
    ``out`` -- exactly as if this case had run it.  AUDIT_SHARED unset: run it here."""
    shared = os.environ.get("AUDIT_SHARED")
    if not shared:
        return rbm_run(out=out, ckpt=ckpt)
    import fcntl
    base = Path(shared) / "rbm_baseline"
    base.mkdir(parents=True, exist_ok=True)
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (base / "done").exists():
            r = run_script("train_rbm.py", *rbm_args("t", str(base / "out"), str(base / "ck")), timeout=300)
            (base / "stderr.txt").write_text(r.stderr)
            if r.returncode != 0:
                _emit("error", "baseline run failed: " + tail(r.stderr))
            (base / "done").write_text("ok")
    shutil.copytree(base / "ck", HERE / ckpt)
    shutil.copytree(base / "out", HERE / out)
    class R:
        returncode, stdout, stderr = 0, "", (base / "stderr.txt").read_text()
    return R(), npz(HERE / out / "rbm_t.npz")


def rerun_after_change(change):
    """Run, rerun into the same checkpoint directory with one setting changed: the
    second run must train anew (different weights) or refuse clearly."""
    r1, w1 = shared_rbm_baseline()
    r2, w2 = rbm_run(out="out2", **change)
    if w2 is None:
        judge_script_failure(r2, [HERE / "ck"], ["--fresh", "in use by PID"], context="refused: ")
    if w1["W"].shape == w2["W"].shape and all(np.array_equal(w1[k], w2[k]) for k in w1):
        bad(f"rerun with {change} returned the first run's weights (trained 0 epochs)")
    ok(f"rerun with {change} trained anew")


def corrupt_and_rerun(paths, how, rerun):
    """Corrupt ``paths`` with ``how`` and call ``rerun``: an error there is judged (it must
    name a corrupted file); otherwise returns (what was done, what ``rerun`` returned)."""
    done = corrupt_all(paths, how)
    try:
        return done, rerun()
    except _Done:
        raise
    except Exception as e:
        judge_corruption_error(e, paths, context=done + " -> ")


def concurrent_outcome(label, rc, log_text, weights_path, clean, differs):
    """One of two runs started at once: "same as clean" (exit 0 with the weights ``clean``),
    "refused: ..." (stopped naming the lock), or a defective verdict."""
    if rc == 0:
        if not same_arrays(npz(weights_path), clean):
            bad(f"{label} {differs}")
        return "same as clean"
    if re.search(r"in use by PID|in use by process|locked by PID", final_error(log_text), re.I):
        return "refused: " + final_error(log_text)[:200]
    bad(f"{label} failed: " + final_error(log_text)[:600])


def kill_after_checkpoint(p, log, pause, finished="finished"):
    """SIGKILL ``p`` ``pause`` s after a weights file appeared in "ck" (its output in ``log``)."""
    if not wait_for(lambda: weight_files("ck"), timeout=300, proc=p):
        _emit("error", "no checkpoint appeared: " + tail(Path(log).read_text()))
    time.sleep(pause)
    p.kill(); rc = p.wait()
    if rc == 0:
        _emit("error", f"{finished} before the kill (inconclusive)")


def refused_before_training(r, accepted, naming, not_naming):
    """A train_rbm.py run with a bad option: it must fail before training, its final message
    matching the regex ``naming`` and not ``not_naming`` (``accepted``: the verdict on exit 0)."""
    if r.returncode == 0:
        bad(accepted)
    msg = final_error(r.stderr)
    if trained(r):
        bad("refused only after training: " + msg[:500])
    ok(msg[:300]) if re.search(naming, msg) and not re.search(not_naming, msg) else bad(msg[:600])
'''

# --------------------------------------------------------------------------- worker
# One per parallel slot (fork mode): imports TensorFlow and the audited package, then
# forks a child per case. Reads one JSON job per line on stdin, answers one per line.
WORKER = r'''
import json, os, signal, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy, importlib, pathlib
try:
    import tensorflow, keras
except Exception:
    pass
repo = pathlib.Path(os.environ["AUDIT_REPO"])
for p in sorted((repo / "dbn").glob("*.py")):
    try:
        importlib.import_module("dbn." + p.stem)
    except Exception:
        pass
out = sys.stdout
sys.stdout = sys.stderr
print("READY", file=out, flush=True)
for line in sys.stdin:
    job = json.loads(line)
    t0 = time.time()
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            os.chdir(job["cwd"])
            fd_out = os.open(job["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            fd_err = os.open(job["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd_out, 1)
            os.dup2(fd_err, 2)
            sys.stdout = open(1, "w", closefd=False)
            sys.stderr = open(2, "w", closefd=False)
            g = {"__name__": "__main__", "__file__": job["script"]}
            try:
                exec(compile(open(job["script"]).read(), job["script"], "exec"), g)
                rc = 0
            except BaseException as e:
                if type(e).__name__ == "_Done":
                    rc = 0
                elif isinstance(e, SystemExit):
                    rc = e.code if isinstance(e.code, int) else 1
                else:
                    import traceback
                    traceback.print_exc()
                    rc = 1
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(locals().get("rc", 1))
    timed_out, status = False, None
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.time() - t0 > job["timeout"]:
            timed_out = True
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            break
        time.sleep(0.05)
    rc = None if timed_out else (os.waitstatus_to_exitcode(status) if status is not None else None)
    print(json.dumps({"rc": rc, "timeout": timed_out, "seconds": time.time() - t0}), file=out, flush=True)
'''

# Runs a case file as __main__ in spawn mode (so that a _Done verdict exits cleanly).
SPAWN_RUNNER = r'''
import sys
code = compile(open(sys.argv[1]).read(), sys.argv[1], "exec")
try:
    exec(code, {"__name__": "__main__", "__file__": sys.argv[1]})
except BaseException as e:
    if type(e).__name__ != "_Done":
        raise
'''


# --------------------------------------------------------------------------- cases
CASES = []


def case(id, category, description, expected, code, timeout=120):
    CASES.append({"id": id, "category": category, "description": description,
                  "expected": expected, "code": textwrap.dedent(code).strip() + "\n",
                  "timeout": timeout})


def err_case(id, category, description, call, words, setup="", timeout=120):
    """A bad input: ``call`` (an expression) must raise a clear error naming one of ``words``."""
    code = f"{textwrap.dedent(setup).strip()}\nexpect_error(lambda: {call}, *{tuple(words)!r})\n"
    CASES.append({"id": id, "category": category, "description": description,
                  "expected": f"clear error naming one of {list(words)}", "code": code,
                  "timeout": timeout})


def ok_case(id, category, description, call, setup="", check=None, timeout=120):
    """A valid (if unusual) input: ``call`` must work."""
    code = (f"{textwrap.dedent(setup).strip()}\n"
            f"expect_ok(lambda: {call}{', ' + check if check else ''})\n")
    CASES.append({"id": id, "category": category, "description": description,
                  "expected": "accepted (works)", "code": code, "timeout": timeout})



# ---------------------------------------------------------------- 1. bad input: datasets
D = "input:datasets"
LOAD = "from dbn import datasets"
for value, label in [("2.5", "float"), ("True", "bool"), ("-1", "negative"), ("'10'", "string"),
                     ("float('nan')", "nan"), ("0", "zero"), ("10**9", "huge")]:
    err_case(f"load-n_train-{label}", D, f"datasets.load(n_train={value})",
             f"datasets.load(n_train={value}, validation_size=100)", ["n_train"], LOAD)
ok_case("load-n_train-np-int64", D, "datasets.load(n_train=np.int64(100)) is accepted",
        "datasets.load(n_train=np.int64(100), validation_size=100)", LOAD,
        check="lambda d: None if len(d.x_train) == 100 else f'{len(d.x_train)} rows'")
for value, label in [("2.5", "float"), ("True", "bool"), ("-1", "negative"), ("'10'", "string"),
                     ("float('nan')", "nan"), ("60000", "too-large")]:
    err_case(f"load-validation_size-{label}", D, f"datasets.load(validation_size={value})",
             f"datasets.load(validation_size={value}, n_train=100)", ["validation_size"], LOAD)
for value, label in [("25", "not-multiple"), ("2.5", "float"), ("True", "bool"), ("-10", "negative"),
                     ("'100'", "string"), ("10**7", "huge")]:
    err_case(f"load-label_budget-{label}", D, f"datasets.load(label_budget={value})",
             f"datasets.load(label_budget={value}, n_train=500, validation_size=100)",
             ["label_budget"], LOAD)
for value, label in [("-1", "negative"), ("2.5", "float"), ("True", "bool"), ("'0'", "string")]:
    err_case(f"load-seed-{label}", D, f"datasets.load(seed={value})",
             f"datasets.load(seed={value}, n_train=100, validation_size=100)", ["seed"], LOAD)
err_case("load-name-unknown", D, "datasets.load('fashion') from the embedded source",
         "datasets.load('fashion')", ["fashion", "name", "source"], LOAD)
err_case("load-source-unknown", D, "datasets.load(source='web')", "datasets.load(source='web')",
         ["source", "web"], LOAD)
err_case("load-binarization-unknown", D, "datasets.load(binarization='binary')",
         "datasets.load(binarization='binary')", ["binarization", "binary"], LOAD)
err_case("load-data_dir-missing", D, "datasets.load(data_dir=<missing directory>)",
         "datasets.load(data_dir=HERE / 'nowhere')", ["SHA256SUMS", "nowhere", "data_dir"], LOAD)

BIN = "from dbn import datasets\nx = mnist(200, 100).x_train"
RANGE = ["[0, 1]", "[0,1]", "range", "x"]
for label, description, args, words in [
    ("0-255-stochastic", "binarize(x * 255, 'stochastic') (grey levels 0-255)", "x * 255, 'stochastic', seed=0", RANGE),
    ("0-255-threshold", "binarize(x * 255, 'threshold')", "x * 255, 'threshold'", RANGE),
    ("0-255-none", "binarize(x * 255, 'none') (probabilities outside [0, 1])", "x * 255, 'none'", RANGE),
    ("nan-threshold", "binarize(x with NaN, 'threshold')", "np.where(x > 0.9, np.nan, x), 'threshold'", ["x"]),
    ("nan-stochastic", "binarize(x with NaN, 'stochastic')", "np.where(x > 0.9, np.nan, x), 'stochastic', seed=0",
     ["x"]),
    ("negative", "binarize(x - 0.5, 'threshold') (negative values)", "x - 0.5, 'threshold'", RANGE),
    ("mode-unknown", "binarize(x, 'binary')", "x, 'binary'", ["binarization", "mode", "binary"]),
    ("stochastic-no-seed", "binarize(x, 'stochastic') without a seed", "x, 'stochastic'", ["seed"]),
    ("seed-negative", "binarize(x, 'stochastic', seed=-1)", "x, 'stochastic', seed=-1", ["seed"]),
]:
    err_case(f"binarize-{label}", D, description, f"datasets.binarize({args})", words, BIN)

BAL = "from dbn import datasets\ny = np.repeat(np.arange(10), 20)"
LABELS = ["label", "labels", "y"]
BUDGET = ["budget", "label_budget"]
for label, description, args, words in [
    ("label-10", "balanced_subset(y with a label 10)", "np.append(y, 10), 100, seed=0", LABELS + ["class"]),
    ("label-negative", "balanced_subset(y with a label -1)", "np.append(y, -1), 100, seed=0", LABELS + ["class"]),
    ("float-labels", "balanced_subset(y as floats 0.5, 1.5, ...)", "y + 0.5, 100, seed=0", LABELS + ["integer"]),
    ("budget-not-multiple", "balanced_subset(y, 15)", "y, 15, seed=0", BUDGET),
    ("budget-float", "balanced_subset(y, 2.5)", "y, 2.5, seed=0", BUDGET),
    ("budget-bool", "balanced_subset(y, True)", "y, True, seed=0", BUDGET),
    ("seed-negative", "balanced_subset(y, 100, seed=-1)", "y, 100, seed=-1", ["seed"]),
]:
    err_case(f"balanced_subset-{label}", D, description, f"datasets.balanced_subset({args})", words, BAL)

TDS = "from dbn import datasets\nx = binary(200)"
for value, label in [("0", "zero"), ("2.5", "float"), ("True", "bool")]:
    err_case(f"to_dataset-batch_size-{label}", D, f"to_dataset(x, batch_size={value})",
             f"datasets.to_dataset(x, batch_size={value})", ["batch_size"], TDS)
err_case("to_dataset-nan", D, "to_dataset(x with NaN)",
         "datasets.to_dataset(np.where(x > 0, np.nan, x))", ["x"], TDS)
err_case("to_dataset-y-length", D, "to_dataset(x, y of another length)",
         "datasets.to_dataset(x, np.zeros(10, int))", ["y", "rows", "length", "labels"], TDS)
err_case("to_dataset-batches_per_element-zero", D, "to_dataset(x, batches_per_element=0)",
         "datasets.to_dataset(x, batches_per_element=0)", ["batches_per_element"], TDS)

# Checksum-consistent copies of the embedded MNIST files with one change.
IDX = r'''
from dbn import datasets
SRC = datasets.DATASET_DIR
def copy_mnist(dst="mnist_copy", edit=None, sums=None):
    dst = HERE / dst
    dst.mkdir(exist_ok=True)
    for name in datasets.FILES.values():
        data = (SRC / name).read_bytes()
        if edit and name in edit:
            raw = bytearray(gzip.decompress(data))
            edit[name](raw)
            data = gzip.compress(bytes(raw))
        (dst / name).write_bytes(data)
    text = "".join(f"{hashlib.sha256((dst / n).read_bytes()).hexdigest()}  {n}\n"
                   for n in datasets.FILES.values())
    (dst / datasets.CHECKSUM_FILE).write_text(sums(text) if sums else text)
    return dst
'''
err_case("idx-sha256sums-malformed-line", D, "SHA256SUMS with a line holding no file name",
         "datasets.verify_checksums(d)", ["SHA256SUMS", "line"],
         IDX + "d = copy_mnist(sums=lambda t: t + 'deadbeef\\n')")
err_case("idx-label-byte-200", D, "a label byte of 200 in a checksum-consistent IDX file",
         "datasets.load(data_dir=d, n_train=100, validation_size=100)", ["label", "labels", "200"],
         IDX + "def poke(raw): raw[8 + 5] = 200\n"
               "d = copy_mnist(edit={datasets.FILES['y_train']: poke})")
err_case("idx-test-label-byte-200", D, "a test label byte of 200 in a checksum-consistent IDX file",
         "datasets.load(data_dir=d, n_train=100, validation_size=100)", ["label", "labels", "200"],
         IDX + "def poke(raw): raw[8 + 7] = 200\n"
               "d = copy_mnist(edit={datasets.FILES['y_test']: poke})")
err_case("idx-checksum-mismatch", D, "a data file that does not match SHA256SUMS",
         "datasets.load(data_dir=d)", ["checksum", "sha256"],
         IDX + "d = copy_mnist()\n"
               "p = d / datasets.FILES['x_test']; b = bytearray(p.read_bytes()); b[100] ^= 1; "
               "p.write_bytes(bytes(b))")
err_case("idx-not-gzip", D, "read_idx of a file that is not gzip",
         "datasets.read_idx(p)", ["gzip", "junk.gz"],
         "from dbn import datasets\np = HERE / 'junk.gz'; p.write_bytes(b'not gzip at all')")
err_case("idx-count-mismatch", D, "a checksum-consistent label file with fewer labels than images",
         "datasets.load(data_dir=d)", ["label", "labels", "images", "match"],
         IDX + "import struct\n"
               "def cut(raw):\n"
               "    n = struct.unpack('>I', raw[4:8])[0]\n"
               "    raw[4:8] = struct.pack('>I', n - 1); del raw[-1]\n"
               "d = copy_mnist(edit={datasets.FILES['y_train']: cut})")
err_case("idx-sums-missing-entry", D, "SHA256SUMS without the entry of one file",
         "datasets.verify_checksums(d)", ["SHA256SUMS", "checksum"],
         IDX + "d = copy_mnist(sums=lambda t: ''.join(l + '\\n' for l in t.splitlines()[1:]))")
ok_case("idx-sums-uppercase-binary-mode", D,
        "SHA256SUMS with upper-case digests and '*name' (binary mode) is accepted",
        "datasets.load(data_dir=d, n_train=100, validation_size=100)",
        IDX + "d = copy_mnist(sums=lambda t: ''.join(l.split()[0].upper() + ' *' + l.split()[1] + '\\n' "
              "for l in t.splitlines()))")
err_case("idx-file-missing", D, "data_dir with a data file missing",
         "datasets.load(data_dir=d)", ["t10k-images-idx3-ubyte.gz", "missing"],
         IDX + "d = copy_mnist(); (d / datasets.FILES['x_test']).unlink()")


# ---------------------------------------------------------------- 1. bad input: RBM
R = "input:rbm"
RB = "from dbn.rbm import RBM"
for param, value, label, words in [
    ("n_hidden", "0", "zero", ["n_hidden"]), ("n_hidden", "2.5", "float", ["n_hidden"]),
    ("n_hidden", "True", "bool", ["n_hidden"]), ("n_hidden", "'10'", "string", ["n_hidden"]),
    ("k", "0", "zero", ["k"]), ("k", "2.5", "float", ["k"]), ("n_chains", "0", "zero", ["n_chains"]),
    ("weight_decay", "float('nan')", "nan", ["weight_decay"]),
    ("weight_decay", "float('inf')", "inf", ["weight_decay"]),
    ("weight_decay", "-1.0", "negative", ["weight_decay"]),
    ("sparsity_cost", "float('nan')", "nan", ["sparsity_cost"]),
    ("sparsity_cost", "-0.1", "negative", ["sparsity_cost"]),
    ("sparsity_target", "1.5", "above-1", ["sparsity_target"]),
    ("sparsity_target", "float('nan')", "nan", ["sparsity_target"]),
    ("sparsity_decay", "5.0", "above-1", ["sparsity_decay"]),
    ("sparsity_decay", "-0.5", "negative", ["sparsity_decay"]),
    ("sparsity_decay", "float('nan')", "nan", ["sparsity_decay"]),
    ("visible_data", "'grey'", "unknown", ["visible_data"]),
    ("n_labels", "-1", "negative", ["n_labels"]), ("n_labels", "2.5", "float", ["n_labels"]),
]:
    call = f"RBM({value}, seed=0)" if param == "n_hidden" else f"RBM(10, {param}={value}, seed=0)"
    err_case(f"rbm-{param}-{label}", R, call, call, words, RB)
ok_case("rbm-n_hidden-np-int64", R, "RBM(np.int64(5)) is accepted", "RBM(np.int64(5), seed=0)", RB)

FIT = ("import keras\nfrom dbn.rbm import RBM\n"
       "rbm = RBM(8, seed=0, visible_data=VD)\n"
       "rbm.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.5))\n")
def fit_case(id, description, x, words, vd="binary", extra="", setup=""):
    err_case(id, R, description, f"rbm.fit({x}, epochs=1, batch_size=50, verbose=0{extra})", words,
             f"VD = {vd!r}\n" + FIT + textwrap.dedent(setup))
fit_case("rbm-fit-empty", "RBM.fit on an empty (0, 784) array", "np.zeros((0, 784), np.float32)",
         ["empty", "no rows", "0 rows", "no examples", "at least one", "zero rows", "x"])
fit_case("rbm-fit-grey-binary", "RBM.fit of grey levels on a binary RBM", "grey(200)",
         ["binary", "visible_data"])
fit_case("rbm-fit-0-255", "RBM.fit of 0-255 pixels", "binary(200) * 255",
         ["[0, 1]", "[0,1]", "range", "x"], vd="probabilities")
fit_case("rbm-fit-nan", "RBM.fit of data with NaN", "np.where(binary(200) > 0, np.nan, 0.0)",
         ["x"], vd="probabilities")
fit_case("rbm-fit-1d", "RBM.fit of a 1-D array", "binary(1)[0]", ["2-D", "shape", "x", "dimension"])
fit_case("rbm-fit-wrong-width", "RBM.fit of 100-column data on an RBM built for 784",
         "binary(200, 100)", ["features", "784", "columns", "width", "shape", "x"],
         setup="rbm.fit(binary(100), epochs=1, batch_size=50, verbose=0)\n")
fit_case("rbm-fit-validation-grey", "RBM.fit with grey validation data on a binary RBM",
         "binary(200)", ["validation_data", "binary"], extra=", validation_data=grey(50)")
STREAM = ("import tensorflow as tf\n"
          "def stream(later):\n"
          "    first = binary(2000, seed=1)\n"
          "    return tf.data.Dataset.from_tensor_slices(np.concatenate([first, later])).batch(100)\n")
fit_case("rbm-fit-stream-later-grey", "RBM.fit on a tf.data stream whose later batches are grey",
         "stream(grey(300))", ["binary", "visible_data", "[0, 1]", "grey"], setup=STREAM)
fit_case("rbm-fit-stream-later-0-255", "RBM.fit (probabilities) on a stream whose later batches are 0-255",
         "stream(binary(300) * 255)", ["[0, 1]", "[0,1]", "range", "x"], vd="probabilities", setup=STREAM)
fit_case("rbm-fit-stream-later-nan", "RBM.fit (probabilities) on a stream whose later batches hold NaN",
         "stream(np.full((300, 784), np.nan, np.float32))", ["x"], vd="probabilities",
         setup=STREAM)
fit_case("rbm-fit-built-stream-later-grey",
         "a second RBM.fit (built model) on a stream whose later batches are grey",
         "stream(grey(300))", ["binary", "visible_data", "[0, 1]", "grey"],
         setup=STREAM + "rbm.fit(binary(200), epochs=1, batch_size=50, verbose=0)\n")
fit_case("rbm-fit-built-stream-later-0-255",
         "a second RBM.fit (built, probabilities) on a stream whose later batches are 0-255",
         "stream(binary(300) * 255)", ["[0, 1]", "[0,1]", "range", "x"], vd="probabilities",
         setup=STREAM + "rbm.fit(binary(200), epochs=1, batch_size=50, verbose=0)\n")
err_case("rbm-sample-unbuilt", R, "RBM.sample on an unbuilt RBM", "RBM(8, seed=0).sample(5, 10)",
         ["built", "fit", "build", "trained", "initial"], RB)
SAMPLE = RB + "\nrbm = RBM(8, seed=0)\nrbm.initialize_from_data(binary(100))"
for value, label in [("0", "zero"), ("2.5", "float"), ("True", "bool")]:
    err_case(f"rbm-sample-steps-{label}", R, f"RBM.sample(5, steps={value})",
             f"rbm.sample(5, steps={value})", ["steps"], SAMPLE)
err_case("rbm-sample-n-zero", R, "RBM.sample(0)", "rbm.sample(0, 10)", ["n"], SAMPLE)
err_case("rbm-save-h5", R, "rbm.save('x.h5') (legacy format)", "rbm.save(str(HERE / 'x.h5'))",
         [".keras", "x.h5", "h5", "format"], SAMPLE)
err_case("rbm-transform-wrong-width", R, "RBM.transform of 100-column data",
         "rbm.transform(binary(5, 100))", ["features", "784", "columns", "shape", "v"], SAMPLE)
err_case("rbm-sample-labels-out-of-range", R, "RBM(n_labels=10).sample(labels=[10])",
         "rbm.sample(1, 10, labels=np.array([10]))", ["labels", "label"],
         RB + "\nrbm = RBM(8, n_labels=10, visible_data='probabilities', seed=0)\n"
              "rbm.initialize_from_data(np.concatenate([grey(100, 20), np.eye(10)[np.arange(100) % 10]], 1))")
err_case("rbm-momentum-schedule-adam", R, "MomentumSchedule with an optimizer without momentum",
         "rbm.fit(binary(200), epochs=1, batch_size=50, verbose=0, callbacks=[MomentumSchedule()])",
         ["momentum", "MomentumSchedule"],
         "import keras\nfrom dbn.rbm import RBM, MomentumSchedule\nrbm = RBM(8, seed=0)\n"
         "rbm.compile(optimizer=keras.optimizers.Adam(0.01))")


# ---------------------------------------------------------------- 1. bad input: configs
T = "input:training"
TC = "from dbn.training import RBMTrainingConfig"
for param, value, label in [
    ("epochs", "True", "bool"), ("epochs", "0", "zero"), ("final_k", "2.5", "float"),
    ("final_k", "0", "below-k"), ("final_learning_rate", "-0.1", "negative"),
    ("final_learning_rate", "float('nan')", "nan"), ("learning_rate", "float('inf')", "inf"),
    ("learning_rate", "float('nan')", "nan"), ("learning_rate", "0.0", "zero"),
    ("batch_size", "2.5", "float"), ("initial_momentum", "1.5", "above-1"),
    ("final_momentum", "-0.1", "negative"), ("initial_momentum", "float('nan')", "nan"),
    ("weight_decay", "-1.0", "negative"), ("weight_decay", "float('nan')", "nan"),
    ("sparsity_target", "2.0", "above-1"), ("momentum_switch_epoch", "-1", "negative"),
    ("n_chains", "True", "bool"),
]:
    err_case(f"rbmconfig-{param}-{label}", T, f"RBMTrainingConfig({param}={value})",
             f"RBMTrainingConfig({param}={value})", [param, "momentum"] if "momentum" in param else [param], TC)
ok_case("rbmconfig-n_hidden-np-int64", T, "RBMTrainingConfig(n_hidden=np.int64(5)) is accepted",
        "RBMTrainingConfig(n_hidden=np.int64(5))", TC)
ok_case("rbmconfig-epochs-np-int64", T, "RBMTrainingConfig(epochs=np.int64(3)) is accepted",
        "RBMTrainingConfig(epochs=np.int64(3))", TC)

F = "input:finetune"
FC = "from dbn.finetune import FineTuneConfig"
for param, value, label in [
    ("batch_size", "2.5", "float"), ("max_epochs", "'10'", "string"), ("max_epochs", "True", "bool"),
    ("optimizer", "'rmsprop'", "unknown"), ("patience", "0", "zero"), ("patience", "2.5", "float"),
    ("learning_rate", "float('nan')", "nan"), ("learning_rate", "-1.0", "negative"),
    ("learning_rate", "float('inf')", "inf"), ("momentum", "1.5", "above-1"), ("momentum", "float('nan')", "nan"),
    ("plateau_factor", "0.0", "zero"), ("plateau_factor", "float('nan')", "nan"),
    ("output_only_epochs", "-1", "negative"), ("refit", "'yes'", "string"),
]:
    err_case(f"ftconfig-{param}-{label}", F, f"FineTuneConfig({param}={value})",
             f"FineTuneConfig({param}={value})", [param], FC)

FT = ("from dbn.finetune import fine_tune, error_rate\n"
      "d = mnist(300, 100)\nmodel = tiny_classifier()\ncfg = quiet_config()\n")
def ft_case(id, description, args, words):
    err_case(id, F, description, f"fine_tune(model, {args}, cfg)", words, FT)
ft_case("fine_tune-label-10", "fine_tune with a training label 10",
        "d.x_train, np.where(np.arange(300) == 7, 10, d.y_train), d.x_val, d.y_val",
        ["label", "labels", "y_train", "10"])
ft_case("fine_tune-label-negative", "fine_tune with a training label -1",
        "d.x_train, np.where(np.arange(300) == 7, -1, d.y_train), d.x_val, d.y_val",
        ["label", "labels", "y_train"])
ft_case("fine_tune-float-labels", "fine_tune with float labels (3.7, ...)",
        "d.x_train, d.y_train + 0.7, d.x_val, d.y_val", ["label", "labels", "y_train", "integer"])
ft_case("fine_tune-nan-x", "fine_tune with NaN in x_train",
        "np.where(np.arange(784) == 300, np.nan, d.x_train).astype(np.float32), d.y_train, d.x_val, d.y_val",
        ["x_train", "x"])
ft_case("fine_tune-length-mismatch", "fine_tune with 300 images and 200 labels",
        "d.x_train, d.y_train[:200], d.x_val, d.y_val", ["y_train", "x_train", "rows", "length", "labels"])
ft_case("fine_tune-empty-validation", "fine_tune with an empty validation split",
        "d.x_train, d.y_train, d.x_val[:0], d.y_val[:0]", ["validation", "x_val", "empty"])
ft_case("fine_tune-val-label-10", "fine_tune with a validation label 10",
        "d.x_train, d.y_train, d.x_val, np.where(np.arange(100) == 3, 10, d.y_val)",
        ["label", "labels", "y_val", "10"])
ft_case("fine_tune-x-0-255", "fine_tune on 0-255 pixels",
        "d.x_train * 255, d.y_train, d.x_val * 255, d.y_val", ["[0, 1]", "[0,1]", "range", "x_train"])
ft_case("fine_tune-wrong-width", "fine_tune with 100-column inputs on a 784-input network",
        "d.x_train[:, :100], d.y_train, d.x_val[:, :100], d.y_val", ["x_train", "features", "columns"])
err_case("error_rate-length-mismatch", F, "error_rate(model, x, y[:1])",
         "error_rate(model, d.x_val, d.y_val[:1])", ["y", "rows", "length", "labels"], FT)
err_case("error_rate-empty", F, "error_rate(model, x[:0], y[:0])",
         "error_rate(model, d.x_val[:0], d.y_val[:0])", ["empty", "no rows", "0 rows", "x"], FT)
err_case("error_rate-label-10", F, "error_rate with a label 10",
         "error_rate(model, d.x_val, np.full(100, 10))", ["label", "labels", "y"], FT)
err_case("fit_schedule-rates-nan", F, "fit_schedule with a NaN learning rate",
         "fit_schedule(model, d.x_train, d.y_train, cfg, [float('nan')])",
         ["learning_rates", "learning_rate", "rates"], FT + "from dbn.finetune import fit_schedule")


# ---------------------------------------------------------------- 1. bad input: AIS
A = "input:ais"
AIS = ("from dbn import ais\nrng = np.random.default_rng(0)\n"
       "W = (0.01 * rng.standard_normal((784, 10))).astype(np.float32)\n"
       "b = np.zeros(784, np.float32); c = np.zeros(10, np.float32)\n"
       "base = binary(100)\nbetas = ais.make_betas([(1.0, 0.01)])\n")
def ais_case(id, description, call, words):
    err_case(id, A, description, call, words, AIS)
ais_case("ais-visible_bias-shape", "ais_log_partition with visible_bias of length 100 for W (784, 10)",
         "ais.ais_log_partition(W, b[:100], c, betas=betas, n_runs=4)", ["visible_bias", "shape"])
ais_case("ais-hidden_bias-shape", "ais_log_partition with hidden_bias of length 5 for W (784, 10)",
         "ais.ais_log_partition(W, b, c[:5], betas=betas, n_runs=4)", ["hidden_bias", "shape"])
ais_case("ais-W-1d", "ais_log_partition with a 1-D W",
         "ais.ais_log_partition(W[:, 0], b, c, betas=betas, n_runs=4)", ["W", "shape", "2-D"])
ais_case("ais-base_visible_bias-shape", "ais_log_partition with base_visible_bias of length 100",
         "ais.ais_log_partition(W, b, c, base_visible_bias=b[:100], betas=betas, n_runs=4)",
         ["base_visible_bias", "shape"])
ais_case("ais-base_data-width", "ais_log_partition with base_data of 100 columns",
         "ais.ais_log_partition(W, b, c, base_data=binary(50, 100), betas=betas, n_runs=4)",
         ["base_data", "columns", "features"])
ais_case("ais-base_data-0-255", "ais_log_partition with base_data in 0-255",
         "ais.ais_log_partition(W, b, c, base_data=base * 255, betas=betas, n_runs=4)",
         ["base_data", "[0, 1]", "range"])
ais_case("ais-base_data-nan", "ais_log_partition with NaN in base_data",
         "ais.ais_log_partition(W, b, c, base_data=np.where(base > 0, np.nan, 0), betas=betas, n_runs=4)",
         ["base_data"])
ais_case("ais-W-nan", "ais_log_partition with NaN in W",
         "ais.ais_log_partition(np.where(W > 0.01, np.nan, W), b, c, betas=betas, n_runs=4)",
         ["W"])
ais_case("ais-n_runs-1", "ais_log_partition(n_runs=1)",
         "ais.ais_log_partition(W, b, c, betas=betas, n_runs=1)", ["n_runs"])
ais_case("ais-n_runs-float", "ais_log_partition(n_runs=2.5)",
         "ais.ais_log_partition(W, b, c, betas=betas, n_runs=2.5)", ["n_runs"])
ais_case("ais-betas-not-from-0", "ais_log_partition with betas starting at 0.5",
         "ais.ais_log_partition(W, b, c, betas=np.linspace(0.5, 1, 11), n_runs=4)", ["betas"])
ais_case("ais-betas-nan", "ais_log_partition with a NaN inside betas",
         "ais.ais_log_partition(W, b, c, betas=np.array([0.0, np.nan, 1.0]), n_runs=4)", ["betas"])
ais_case("ais-make_betas-zero-step", "make_betas([(1.0, 0)])", "ais.make_betas([(1.0, 0)])",
         ["step", "steps", "segment"])
EVAL = "ais.evaluate_log_likelihood(W, b, c, base_data=base, betas=betas, n_runs=4, test_data={})"
ais_case("ais-eval-test-0-255", "evaluate_log_likelihood with test data in 0-255",
         EVAL.format("binary(50) * 255"), ["test_data", "[0, 1]", "range"])
ais_case("ais-eval-test-grey", "evaluate_log_likelihood with non-binary (grey) test data",
         EVAL.format("grey(50)"), ["test_data", "binary"])
ais_case("ais-eval-test-empty", "evaluate_log_likelihood with empty test data",
         EVAL.format("binary(50)[:0]"), ["test_data", "empty"])
ais_case("ais-eval-test-width", "evaluate_log_likelihood with 100-column test data",
         EVAL.format("binary(50, 100)"), ["test_data", "columns", "features"])

# ---------------------------------------------------------------- 1. bad input: DBN
B = "input:dbn"
DB = "from dbn.dbn import DBN, build_classifier"
for sizes, label, words in [("[784, 0]", "zero", ["layer_sizes"]), ("[784, 2.5]", "float", ["layer_sizes"]),
                            ("[784, True]", "bool", ["layer_sizes"]), ("[784]", "one-entry", ["layer_sizes"]),
                            ("[784, -5]", "negative", ["layer_sizes"]), ("'784-500'", "string", ["layer_sizes"])]:
    err_case(f"dbn-layer_sizes-{label}", B, f"DBN({sizes})", f"DBN({sizes})", words, DB)
ok_case("dbn-layer_sizes-np-int64", B, "DBN([784, np.int64(10)]) is accepted", "DBN([784, np.int64(10)])", DB)
err_case("dbn-layer_configs-count", B, "DBN([784, 10, 10]) with 3 layer configs",
         "DBN([784, 10, 10], layer_configs=[layer_config()] * 3)", ["layer_configs", "layer config", "configs"], DB)
err_case("dbn-layer_configs-type", B, "DBN with layer_configs=['fast']",
         "DBN([784, 10], layer_configs=['fast'])", ["layer_configs", "RBMTrainingConfig"], DB)
PRE = DB + "\nstack = DBN([784, 8], layer_configs=layer_config(), seed=0)"
err_case("dbn-pretrain-wrong-width", B, "DBN.pretrain on 100-column data", "stack.pretrain(grey(100, 100), verbose=0)",
         ["x", "784", "shape", "columns"], PRE)
err_case("dbn-pretrain-nan", B, "DBN.pretrain on data with NaN",
         "stack.pretrain(np.where(grey(100) > 0.9, np.nan, 0.5), verbose=0)", ["x"], PRE)
err_case("dbn-pretrain-0-255", B, "DBN.pretrain on 0-255 pixels", "stack.pretrain(grey(100) * 255, verbose=0)",
         ["[0, 1]", "[0,1]", "range", "x"], PRE)
err_case("dbn-pretrain-empty", B, "DBN.pretrain on an empty array", "stack.pretrain(grey(100)[:0], verbose=0)",
         ["empty", "no rows", "0 rows", "x", "at least"], PRE)
err_case("dbn-seed-negative", B, "DBN(..., seed=-1)",
         "DBN([784, 8], layer_configs=layer_config(), seed=-1).pretrain(grey(100), verbose=0)", ["seed"], DB)
for call, label, words in [("build_classifier([784, 10], 10, init='xavier')", "init-unknown", ["init"]),
                           ("build_classifier([784, 10], 10, dropout=1.0)", "dropout-1", ["dropout"]),
                           ("build_classifier([784, 10], 10, dropout=float('nan'))", "dropout-nan", ["dropout"]),
                           ("build_classifier([784, 10], 10, dropout=-0.1)", "dropout-negative", ["dropout"]),
                           ("build_classifier([784, 10], 0)", "n_classes-zero", ["n_classes"]),
                           ("build_classifier([784, 10], 2.5)", "n_classes-float", ["n_classes"]),
                           ("build_classifier([784, 10], 10, init='pretrained')", "pretrained-no-rbms",
                            ["rbms", "pretrained"])]:
    err_case(f"build_classifier-{label}", B, call, call, words, DB)
err_case("dbn-to_classifier-unpretrained", B, "to_classifier before pretrain",
         "DBN([784, 8]).to_classifier(10)", ["pretrain", "pretrained"], DB)
err_case("dbn-generate-gibbs_steps-zero", B, "DBN.generate(gibbs_steps=0)",
         "stack.generate(5, gibbs_steps=0)", ["gibbs_steps"], PRE + "\nstack.pretrain(grey(100), verbose=0)")
case("dbn-load-not-a-dbn", B, "DBN.load of a directory that DBN.save did not write",
     "a clear error naming the directory or the file it lacks", DB + """
expect_error(lambda: DBN.load(HERE), "dbn.json", "manifest.json", "DBN.save", *file_words([HERE / "x"]))
""")

# ---------------------------------------------------------------- 1. bad input: generative
G = "input:generative"
GEN = ("from dbn.generative import GenerativeDBN, UpDownConfig\n"
       "d = mnist(300, 100)\n"
       "g = GenerativeDBN([784, 8, 8], n_classes=10, layer_configs=layer_config(), seed=0)\n")
GEN_TRAINED = GEN + "g.pretrain(d.x_train, d.y_train, verbose=0)\n"
err_case("generative-layer_sizes-two", G, "GenerativeDBN([784, 10])", "GenerativeDBN([784, 10])",
         ["layer_sizes"], "from dbn.generative import GenerativeDBN")
err_case("generative-pretrain-label-10", G, "GenerativeDBN.pretrain with a label 10",
         "g.pretrain(d.x_train, np.where(np.arange(300) == 3, 10, d.y_train), verbose=0)",
         ["label", "labels"], GEN)
err_case("generative-pretrain-float-labels", G, "GenerativeDBN.pretrain with float labels",
         "g.pretrain(d.x_train, d.y_train + 0.5, verbose=0)", ["label", "labels", "integer"], GEN)
err_case("generative-pretrain-length", G, "GenerativeDBN.pretrain with 300 images and 200 labels",
         "g.pretrain(d.x_train, d.y_train[:200], verbose=0)", ["label", "labels", "images"], GEN)
err_case("generative-generate-label-10", G, "GenerativeDBN.generate([10])",
         "g.generate(np.array([10]), gibbs_steps=5)", ["label", "labels"], GEN_TRAINED)
err_case("generative-generate-float-label", G, "GenerativeDBN.generate([2.5])",
         "g.generate(np.array([2.5]), gibbs_steps=5)", ["label", "labels", "integer"], GEN_TRAINED)
err_case("generative-classify-wrong-width", G, "GenerativeDBN.classify on 100-column data",
         "g.classify(grey(10, 100))", ["x", "784", "columns", "features", "shape"], GEN_TRAINED)
err_case("generative-up_down-label-negative", G, "up_down with a label -1",
         "g.up_down(d.x_train, np.where(np.arange(300) == 3, -1, d.y_train), UpDownConfig(epochs=1), verbose=0)",
         ["label", "labels"], GEN_TRAINED)
err_case("generative-up_down-x-0-255", G, "up_down on 0-255 pixels",
         "g.up_down(d.x_train * 255, d.y_train, UpDownConfig(epochs=1), verbose=0)",
         ["[0, 1]", "[0,1]", "range", "x"], GEN_TRAINED)
UD = "from dbn.generative import UpDownConfig"
for param, value, label in [("learning_rate", "float('nan')", "nan"), ("learning_rate", "float('inf')", "inf"),
                            ("epochs", "0", "zero"), ("k_schedule", "(3, 0)", "zero-entry"),
                            ("k_schedule", "()", "empty"), ("batch_size", "True", "bool"),
                            ("epochs", "2.5", "float")]:
    err_case(f"updown-{param}-{label}", G, f"UpDownConfig({param}={value})", f"UpDownConfig({param}={value})",
             [param, "k_schedule entry"], UD)


# ---------------------------------------------------------------- 2. stale, foreign, corrupt caches
C = "cache"
for change, label in [("{'lr': 0.01}", "lr"), ("{'n_train': 200}", "n-train"), ("{'hidden': 20}", "hidden"),
                      ("{'k': 2}", "k"), ("{'weight_decay': 0.001}", "weight-decay"), ("{'seed': 1}", "seed"),
                      ("{'pcd': True}", "pcd"), ("{'final_lr': 0.01}", "final-lr"),
                      ("{'batch_size': 50}", "batch-size")]:
    case(f"train_rbm-rerun-changed-{label}", C,
         f"train_rbm.py rerun into the same checkpoint dir with --{label} changed",
         "trains anew (weights differ from the first run's) or refuses naming --fresh / the checkpoint",
         f"rerun_after_change({change})", timeout=240)
case("train_rbm-rerun-more-epochs", C,
     "train_rbm.py rerun with --epochs 2 after a 1-epoch run (the lr decay differs): equals a fresh 2-epoch run",
     "the result of a fresh 2-epoch run, or a clear refusal",
     """
     r1, w1 = shared_rbm_baseline()
     r2, w2 = rbm_run(out="out2", epochs=2)
     if w2 is None:
         judge_script_failure(r2, [HERE / "ck"], ["--fresh", "in use by PID"], context="refused: ")
     r3, w3 = rbm_run(out="out3", ckpt="ck_fresh", epochs=2)
     if w3 is None:
         _emit("error", "fresh run failed: " + tail(r3.stderr))
     if same_arrays(w2, w3):
         ok("equals a fresh 2-epoch run")
     bad("differs from a fresh 2-epoch run (resumed the 1-epoch run under another schedule)")
     """, timeout=300)
case("train_rbm-rerun-same", C, "train_rbm.py rerun of the same command: reuses, same weights",
     "identical weights", """
     r1, w1 = shared_rbm_baseline()
     r2, w2 = rbm_run(out="out2")
     if w2 is None:
         bad("rerun failed: " + tail(r2.stderr))
     ok("identical weights") if same_arrays(w1, w2) else bad("the same command gave other weights")
     """, timeout=240)
case("train_rbm-rerun-says-reuse", C,
     "train_rbm.py rerun of the same command says that it reuses cached work, and from where",
     "output mentions reuse/resume and the checkpoint path", """
     r1, w1 = shared_rbm_baseline()
     r2, w2 = rbm_run(out="out2", ckpt="ck")
     text = r2.stdout + r2.stderr
     said = re.search(r"reus|resum|cached|from cache|loaded", text, re.I)
     where = str((HERE / "ck").resolve()) in text or "ck/" in text
     ok(tail(text, 300)) if said and where else bad("silent reuse: " + tail(text, 300))
     """, timeout=240)


def script_corruption(id, description, how, target, mid=False):
    """train_rbm.py run, corrupt files of its checkpoint, rerun the same command: the
    weights must equal the clean run's or the rerun must fail naming a corrupted file."""
    case(id, C, description, "same weights as the clean run, or an error naming the file", f"""
     r1, w1 = shared_rbm_baseline()
     paths = {target}
     done = corrupt_all(paths, {how})
     r2, w2 = rbm_run(out="out2")
     if w2 is None:
         judge_script_failure(r2, paths, ["--fresh"], context=done + " -> ")
     ok(done + " -> recomputed, same weights") if same_arrays(w1, w2) else bad(done + " -> silently different weights")
     """, timeout=240)


script_corruption("train_rbm-flip-weights", "train_rbm.py checkpoint: a byte flipped in the weights (W) of every weights file",
                  "lambda p: flip_byte(p, avoid='optimizer')", "weight_files('ck')")
script_corruption("train_rbm-truncate-json", "train_rbm.py checkpoint: every .json file (state) truncated",
                  "truncate", "json_files('ck')")
script_corruption("train_rbm-truncate-weights", "train_rbm.py checkpoint: every weights file truncated",
                  "truncate", "weight_files('ck')")
script_corruption("train_rbm-empty-json", "train_rbm.py checkpoint: every .json file emptied (0 bytes)",
                  "lambda p: truncate(p, 0.0)", "json_files('ck')")

case("train_rbm-fresh-after-corruption", C,
     "train_rbm.py rerun with --fresh after a byte flip in its checkpoint (the way out the issue asks for)",
     "--fresh exists and gives the clean result", """
     r1, w1 = shared_rbm_baseline()
     helptext = run_script("train_rbm.py", "--help", timeout=120).stdout
     if "--fresh" not in helptext:
         bad("train_rbm.py has no --fresh option")
     done = corrupt_all(weight_files("ck"), lambda p: flip_byte(p, avoid="optimizer"))
     r2 = run_script("train_rbm.py", *rbm_args(out="out2"), "--fresh", timeout=300)
     if r2.returncode != 0:
         bad(done + " -> --fresh failed: " + final_error(r2.stderr)[:500])
     ok("--fresh gave the clean result") if same_arrays(w1, npz(HERE / "out2" / "rbm_t.npz")) else bad("--fresh gave other weights")
     """, timeout=300)

# Mid-run corruption through the API: train_rbm crashes at the start of epoch 2, a file
# of its checkpoint is corrupted, the run is resumed.
MIDRUN = r'''
import keras
from dbn.training import build_rbm, epoch_batches, train_rbm
cfg = layer_config(epochs=3, n_hidden=16)
x = binary(500)
class Crash(Exception):
    pass
class CrashAt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__(); self.epoch = epoch
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Crash()
def train(ck, crash_at=None):
    keras.utils.set_random_seed(0)
    rbm = build_rbm(cfg, seed=0)
    cbs = [CrashAt(crash_at)] if crash_at is not None else []
    call_with(train_rbm, rbm, epoch_batches(x, batch_size=50, seed=0), cfg, steps_per_epoch=10,
              init_data=x, checkpoint_dir=HERE / ck, data_key="audit binary(500, seed=0), batches of 50",
              callbacks=cbs, verbose=0)
    return [rbm.W.numpy(), rbm.visible_bias.numpy(), rbm.hidden_bias.numpy()]
clean = train("clean")
try:
    train("ck", crash_at=1)
    _emit("error", "the crash callback did not stop training")
except Crash:
    pass
'''


def midrun_corruption(id, description, how, target):
    case(id, C, description, "resumed weights equal the uninterrupted run's, or an error naming the file",
         MIDRUN + f"""
paths = {target}
done, resumed = corrupt_and_rerun(paths, {how}, lambda: train("ck"))
ok(done + " -> recomputed, equal") if equal_lists(clean, resumed) else bad(done + " -> resumed silently with different weights")
""")


midrun_corruption("train_rbm-midrun-flip-W", "train_rbm resumed after a byte flip in the saved W",
                  "lambda p: flip_byte(p, avoid='optimizer')", "weight_files('ck')")
midrun_corruption("train_rbm-midrun-flip-momentum", "train_rbm resumed after a byte flip in the optimizer momentum",
                  "lambda p: flip_byte(p, prefer='optimizer')", "weight_files('ck')")
midrun_corruption("train_rbm-midrun-truncate-state", "train_rbm resumed with a truncated state (.json) file",
                  "truncate", "json_files('ck')")
midrun_corruption("train_rbm-midrun-truncate-weights", "train_rbm resumed with truncated weights files",
                  "truncate", "weight_files('ck')")
case("train_rbm-midrun-resume-exact", C, "train_rbm crashed at epoch 2 and resumed (no corruption)",
     "bit-identical to the uninterrupted run",
     MIDRUN + """
resumed = train("ck")
ok("bit-identical") if equal_lists(clean, resumed) else bad("resumed run differs from the uninterrupted one")
""")

# DBN layer cache.
case("dbn-cache-one-row-differs", C,
     "DBN.pretrain on two 3,000-row datasets differing in one row, sharing a cache",
     "the second dataset's layer is trained on it (differs from the first's)", """
     x = binary(3000, seed=0)
     y = x.copy(); y[1234] = binary(1, seed=9)[0]
     first = pretrain_stack(x, "cache")
     second = pretrain_stack(y, "cache")
     fresh = pretrain_stack(y, "fresh")
     if equal_lists(first, second):
         bad("reused the layer trained on the other dataset")
     ok("trained anew, equal to a fresh run") if equal_lists(second, fresh) else bad("differs from a fresh run on that data")
     """, timeout=180)
case("dbn-cache-one-pixel-differs", C,
     "DBN.pretrain on two 3,000-row datasets differing in one pixel of one row (row 2999), sharing a cache",
     "the second dataset's layer is trained on it", """
     x = binary(3000, seed=0)
     y = x.copy(); y[2999, 400] = 1.0 - y[2999, 400]
     first = pretrain_stack(x, "cache")
     second = pretrain_stack(y, "cache")
     ok("trained anew") if not equal_lists(first, second) else bad("reused the layer trained on the other dataset")
     """, timeout=180)
case("dbn-cache-config-changed", C, "DBN.pretrain with another learning rate sharing a cache",
     "trained anew", """
     x = binary(1000)
     first = pretrain_stack(x, "cache")
     second = pretrain_stack(x, "cache", learning_rate=0.01)
     ok("trained anew") if not equal_lists(first, second) else bad("reused the layer of the other settings")
     """)
case("dbn-cache-seed-changed", C, "DBN.pretrain with another seed sharing a cache", "trained anew", """
     x = binary(1000)
     first = pretrain_stack(x, "cache")
     second = pretrain_stack(x, "cache", seed=1)
     ok("trained anew") if not equal_lists(first, second) else bad("reused the layer of another seed")
     """)
case("dbn-cache-reuse", C, "DBN.pretrain twice on the same data and settings sharing a cache",
     "reuses: identical weights", """
     x = binary(1000)
     first = pretrain_stack(x, "cache")
     second = pretrain_stack(x, "cache")
     ok("identical") if equal_lists(first, second) else bad("the same settings gave other weights")
     """)


def dbn_cache_corruption(id, description, how, target):
    case(id, C, description, "same layers as the clean run, or an error naming the file", f"""
     x = binary(1000)
     first = pretrain_stack(x, "cache")
     paths = {target}
     done, second = corrupt_and_rerun(paths, {how}, lambda: pretrain_stack(x, "cache"))
     ok(done + " -> recomputed, equal") if equal_lists(first, second) else bad(done + " -> silently different layer")
     """)


dbn_cache_corruption("dbn-cache-flip-layer", "DBN layer cache: a byte flipped in every weights file",
                     "lambda p: flip_byte(p, avoid='optimizer')", "weight_files('cache')")
dbn_cache_corruption("dbn-cache-truncate-layer", "DBN layer cache: every weights file truncated",
                     "truncate", "weight_files('cache')")
dbn_cache_corruption("dbn-cache-truncate-json", "DBN layer cache: every .json file truncated",
                     "truncate", "json_files('cache')")
case("dbn-load-flip", C, "DBN.save then DBN.load with a byte flipped in a saved layer",
     "same weights or an error naming the file", """
     from dbn.dbn import DBN
     stack = DBN([784, 16], layer_configs=layer_config(), seed=0)
     stack.pretrain(binary(500), verbose=0)
     stack.save(HERE / "saved")
     paths = weight_files("saved")
     done, loaded = corrupt_and_rerun(paths, lambda p: flip_byte(p, avoid="optimizer"), lambda: DBN.load(HERE / "saved"))
     ok("same weights") if np.array_equal(loaded.rbms[0].W.numpy(), stack.rbms[0].W.numpy()) else bad(done + " -> loaded different weights silently")
     """)

# Fine-tuning checkpoints.
FTCK = r'''
from dbn.finetune import fine_tune
d = mnist(400, 200)
def ft(ck, y=None, **cfg):
    model = tiny_classifier()
    r = fine_tune(model, d.x_train, d.y_train if y is None else y, d.x_val, d.y_val,
                  quiet_config(**{"max_epochs": 2, "patience": 5, **cfg}), seed=0, checkpoint_dir=HERE / ck)
    return [w.copy() for w in model.get_weights()], r
'''
case("fine_tune-rerun-other-labels", C, "fine_tune rerun into the same checkpoint dir with other labels",
     "trains anew on the new labels or refuses clearly", FTCK + """
first, _ = ft("ck")
y2 = (d.y_train + 1) % 10
try:
    second, _ = ft("ck", y=y2)
except Exception as e:
    judge_error(e, ["--fresh", "ck", str(HERE / "ck"), "checkpoint"])
fresh, _ = ft("fresh", y=y2)
ok("trained anew") if equal_lists(second, fresh) else bad("returned the weights trained on the other labels" if equal_lists(first, second) else "differs from a fresh run")
""")
case("fine_tune-rerun-other-config", C, "fine_tune rerun into the same checkpoint dir with another learning rate",
     "trains anew or refuses clearly", FTCK + """
first, _ = ft("ck")
try:
    second, _ = ft("ck", learning_rate=0.01)
except Exception as e:
    judge_error(e, ["--fresh", "ck", str(HERE / "ck"), "checkpoint"])
fresh, _ = ft("fresh", learning_rate=0.01)
ok("trained anew") if equal_lists(second, fresh) else bad("returned the weights of the other settings" if equal_lists(first, second) else "differs from a fresh run")
""")


def ft_corruption(id, description, how, target):
    case(id, C, description, "same weights as the clean run, or an error naming the file", FTCK + f"""
first, _ = ft("ck")
paths = {target}
done, (second, _) = corrupt_and_rerun(paths, {how}, lambda: ft("ck"))
ok(done + " -> recomputed, equal") if equal_lists(first, second) else bad(done + " -> silently different weights")
""")


ft_corruption("fine_tune-truncate-state", "fine_tune checkpoint: every .json file truncated", "truncate",
              "json_files('ck')")
ft_corruption("fine_tune-flip-weights", "fine_tune checkpoint: a byte flipped in every weights file (.npz/.h5/...)",
              "lambda p: flip_byte(p, avoid='optimizer')", "weight_files('ck')")
ft_corruption("fine_tune-truncate-weights", "fine_tune checkpoint: every weights file truncated", "truncate",
              "weight_files('ck')")

# Cached results of the comparison protocol.
CMP = r'''
from dbn.comparison import compare
d = mnist(300, 100)
def run():
    runs = compare(d, layer_sizes=[784, 16], layer_configs=layer_config(), finetune_config=quiet_config(),
                   seeds=[0], inits=["pretrained", "glorot"], checkpoint_root=HERE / "root", tag="audit", verbose=0)
    return sorted((r["init"], r["test_error"]) for r in runs)
first = run()
'''



for case_id, description, expected, target, how in [
    ("compare-truncate-result", "compare(): a cached result .json truncated",
     "same results, or an error naming the file",
     """[p for p in json_files("root") if "result" in p.name] or json_files("root")""", "truncate"),
    ("compare-edited-result", "compare(): a digit of test_error edited in a cached result (valid JSON)",
     "the edit is detected (error naming the file) or the result recomputed",
     """[p for p in json_files("root") if '"test_error"' in p.read_text()]""", "edit_test_error"),
]:
    case(case_id, C, description, expected, CMP + f"""
paths = {target}
done, second = corrupt_and_rerun(paths, {how}, run)
ok("recomputed, equal") if second == first else bad(f"{{done}} -> {{second}} instead of {{first}}")
""", timeout=180)

# Dropout tuning: bad settings refused before any run (the rate grid alone is hours).
TUNE = r'''
from dbn.protocols.comparison import compare_tuned
d = mnist(300, 100)
def tuned(dropouts):
    return compare_tuned(d, learning_rates=[1e-3, 3e-3], tune_seed=0, seeds=[0], inits=["glorot"],
                         layer_sizes=[784, 16], layer_configs=layer_config(), finetune_config=quiet_config(),
                         checkpoint_root=HERE / "root", tag="audit", verbose=0, dropout=(0.2, 0.5),
                         dropouts=dropouts)
'''
for value, label in [("[1.5]", "rate-1.5"), ("0.3", "not-a-list"), ("[(0.2, 0.5)]", "the-start"),
                     ("[0.3, 0.3]", "repeated"), ("[(0.1, float('nan'))]", "nan"), ("[(0.1, 0.2, 0.3)]", "triple")]:
    case(f"compare_tuned-dropouts-{label}", F, f"compare_tuned(dropouts={value}), starting at (0.2, 0.5)",
         "clear error naming dropout(s), before any fine-tuning run", TUNE + f"""
try:
    tuned({value})
except Exception as e:
    if any((HERE / "root").rglob("manifest.json")):
        bad(f"refused only after fine-tuning runs: {{describe(e)}}")
    judge_error(e, ["dropouts", "dropout", "dropout[1]"])
bad("accepted")
""")

# Results carried to another machine without their network (carry.py save --result-only).
CARRY = CMP + r'''
import importlib.util
spec = importlib.util.spec_from_file_location("carry", REPO / "experiments" / "carry.py")
carry = importlib.util.module_from_spec(spec)
spec.loader.exec_module(carry)
carry.CARRY = HERE / "carried"  # never the audited checkout's own carry/
def save(*args):
    return carry.main(["save", *args, "--checkpoint-dir", str(HERE / "root")])
def restore(where):
    return carry.main(["restore", "--checkpoint-dir", str(HERE / where)])
'''
case("carry-result-only-edited", C,
     "carry save --result-only, then a digit of test_error edited in the carried manifest (valid JSON), restore",
     "the edit is detected (error naming the file); nothing restored", CARRY + """
save("--result-only", "--finished-under", "runs")
paths = [p for p in json_files("carried") if '"test_error"' in p.read_text()][-1:]  # the last one restored
done = corrupt_all(paths, edit_test_error)
try:
    restore("there")
except Exception as e:
    if any((HERE / "there").rglob("manifest.json")):
        bad(f"{done} -> refused only after restoring some runs: {describe(e)}")
    judge_corruption_error(e, paths, context=done + " -> ")
bad(f"{done} -> restored silently")
""", timeout=180)
case("carry-result-only-reused", C,
     "carry save --result-only, restore on a fresh root, compare again there",
     "the same results, nothing fine-tuned again; load_classifier refuses the missing network by name",
     CARRY + """
save("--result-only", "--finished-under", "runs")
restore("there")
from dbn.protocols import comparison
def fail(*a, **k):
    raise AssertionError("fine-tuned again")
comparison.run_one = comparison.refit_one = fail
runs = compare(d, layer_sizes=[784, 16], layer_configs=layer_config(), finetune_config=quiet_config(),
               seeds=[0], inits=["pretrained", "glorot"], checkpoint_root=HERE / "there", tag="audit", verbose=0)
second = sorted((r["init"], r["test_error"]) for r in runs)
if second != first:
    bad(f"{second} instead of {first}")
try:
    comparison.load_classifier(HERE / "there", runs[0]["run_dir"])
except Exception as e:
    judge_error(e, ["result-only"])
bad("load_classifier returned a network the carried run does not hold")
""", timeout=180)
case("carry-result-only-unfinished", C,
     "carry save --result-only of an unfinished run among finished ones",
     "clear error naming the run, nothing carried", CARRY + """
from dbn.training.checkpoint import RunDir
with RunDir(HERE / "root" / "runs" / "unfinished", {"what": "audit"}) as run:
    run.save(training={"epoch": 1})
finished = carry.finished_under(HERE / "root", "runs")
try:
    save("--result-only", *finished, "runs/unfinished")
except BaseException as e:
    if (HERE / "carried").exists() and any((HERE / "carried").rglob("manifest.json")):
        bad(f"refused after carrying some runs: {e}")
    if isinstance(e, SystemExit) and "unfinished" in str(e) and "result" in str(e):
        ok(str(e))
    judge_error(e, ["unfinished"])
bad("accepted")
""", timeout=180)


# Up-down checkpoints.
UDCK = r'''
from dbn.generative import GenerativeDBN, UpDownConfig
d = mnist(300, 100)
def up_down(ck, **cfg):
    g = GenerativeDBN([784, 8, 8], n_classes=10, layer_configs=layer_config(), seed=0)
    g.pretrain(d.x_train, d.y_train, verbose=0)
    g.up_down(d.x_train, d.y_train, UpDownConfig(**{"epochs": 2, "batch_size": 50, **cfg}),
              checkpoint_dir=HERE / ck, verbose=0)
    return [v.numpy().copy() for v in g._variables()]
first = up_down("ck")
'''
for case_id, description, target, how in [
    ("up_down-truncate-state", "up_down checkpoint: every .json file truncated", 'json_files("ck")', "truncate"),
    ("up_down-flip-weights", "up_down checkpoint: a byte flipped in every weights file", 'weight_files("ck")',
     'lambda p: flip_byte(p, avoid="optimizer")'),
]:
    case(case_id, C, description, "same weights, or an error naming the file", UDCK + f"""
paths = {target}
done, second = corrupt_and_rerun(paths, {how}, lambda: up_down("ck"))
ok("recomputed, equal") if equal_lists(first, second) else bad(done + " -> silently different weights")
""", timeout=180)
case("up_down-rerun-other-config", C, "up_down rerun into the same checkpoint dir with another learning rate",
     "trains anew", UDCK + """
second = up_down("ck", learning_rate=0.05)
ok("trained anew") if not equal_lists(first, second) else bad("returned the weights of the other settings")
""", timeout=180)

# The demo and a cache of another clone.
case("demo-foreign-clone-cache", C,
     "demo in a second clone with the same HOME: reuses the first clone's ~/.cache/dbn/checkpoints/demo silently?",
     "does not reuse another clone's cache, or says it reuses it and from where", """
     home = HERE / "home"; home.mkdir()
     env = script_env(HOME=home, DBN_CHECKPOINT_DIR=None)
     # Two clones of the audited checkout (copies without .git, caches, results), so that
     # nothing is written into the audited work tree.
     skip = shutil.ignore_patterns(".git", ".venv", "results", "checkpoints", "*.pyc", "__pycache__", ".pytest_cache")
     first, clone = HERE / "clone_a", HERE / "clone_b"
     shutil.copytree(REPO, first, ignore=skip)
     shutil.copytree(REPO, clone, ignore=skip)
     env = dict(env, PYTHONPATH=str(first))
     r = subprocess.run([PY, str(first / "experiments" / "demo.py"), "--help"], capture_output=True, text=True, env=env, cwd=HERE)
     args = ["--quick"] if "--quick" in r.stdout else ["--n-train", 200, "--layers", 16, "--pretrain-epochs", 1, "--max-epochs", 1]
     r1 = subprocess.run([PY, str(first / "experiments" / "demo.py"), "--out", "out1", *map(str, args)],
                         capture_output=True, text=True, env=env, cwd=HERE, timeout=400)
     if r1.returncode != 0:
         _emit("error", "first demo failed: " + tail(r1.stderr))
     before = {p for p in HERE.rglob("*") if p.is_file()}
     env2 = dict(env, PYTHONPATH=str(clone))
     r2 = subprocess.run([PY, str(clone / "experiments" / "demo.py"), "--out", "out2", *map(str, args)],
                         capture_output=True, text=True, env=env2, cwd=HERE, timeout=400)
     text = r2.stdout + r2.stderr
     if r2.returncode != 0:
         judge_script_failure(r2, [], ["--fresh", "in use by PID", "another clone", str(home)], context="refused: ")
     after = {p for p in HERE.rglob("*") if p.is_file()}
     new_weights = [p for p in after - before if p.name.endswith(WEIGHT_SUFFIXES) or ".data-" in p.name]
     said = re.search(r"reus|resum|cached|from cache", text, re.I) and (str(home) in text or ".cache" in text)
     if said:
         ok("says it reuses: " + tail(text, 300))
     if new_weights:
         ok(f"trained its own ({len(new_weights)} new weight files)")
     bad("silently reused the other clone's cache: " + tail(r2.stdout, 300))
     """, timeout=600)


# Checkpoints written by another version of the package (--legacy-repo, default: the
# audited checkout itself): reused with the same result, or refused naming the way out.
case("legacy-train_rbm-checkpoint", C,
     "train_rbm.py run with the legacy version's checkpoint dir of the same command",
     "same weights as the legacy run (reused or retrained), or a refusal naming --fresh / the directory", """
     legacy = os.environ.get("AUDIT_LEGACY_REPO") or str(REPO)
     env = script_env(PYTHONPATH=legacy)
     r1 = subprocess.run([PY, str(Path(legacy) / "experiments" / "train_rbm.py"), *map(str, rbm_args(out="out1"))],
                         capture_output=True, text=True, cwd=HERE, env=env, timeout=300)
     if r1.returncode != 0:
         _emit("error", "legacy run failed: " + final_error(r1.stderr))
     w1 = npz(HERE / "out1" / "rbm_t.npz")
     r2, w2 = rbm_run(out="out2")
     if w2 is None:
         judge_script_failure(r2, [HERE / "ck"], ["--fresh"], context="refused: ")
     ok("same weights as the legacy run") if same_arrays(w1, w2) else bad("other weights than the legacy run")
     """, timeout=300)
LEGACY_COMPARE_JOB = '''
import sys, json
exec(open("prelude.py").read())
from dbn.comparison import compare
d = mnist(300, 100)
runs = compare(d, layer_sizes=[784, 16], layer_configs=layer_config(), finetune_config=quiet_config(),
               seeds=[0], inits=["pretrained", "glorot"], checkpoint_root=HERE / "root", tag="audit", verbose=0)
Path(sys.argv[1]).write_text(json.dumps(sorted((r["init"], r["test_error"]) for r in runs)))
'''
case("legacy-compare-cache", C,
     "compare() with the legacy version's checkpoint root (pretrained layers, fine-tuning runs, results)",
     "the legacy results (reused or recomputed), or a refusal naming --fresh / the directory",
     f"Path('job.py').write_text({LEGACY_COMPARE_JOB!r})\n" + textwrap.dedent("""
     legacy = os.environ.get("AUDIT_LEGACY_REPO") or str(REPO)
     r1 = subprocess.run([PY, "job.py", "legacy.json"], capture_output=True, text=True, cwd=HERE,
                         env=script_env(PYTHONPATH=legacy), timeout=300)
     if r1.returncode != 0:
         _emit("error", "legacy run failed: " + final_error(r1.stderr))
     r2 = subprocess.run([PY, "job.py", "new.json"], capture_output=True, text=True, cwd=HERE, timeout=300)
     if r2.returncode != 0:
         judge_script_failure(r2, [HERE / "root"], ["--fresh"], context="refused: ")
     a, b = json.loads(Path("legacy.json").read_text()), json.loads(Path("new.json").read_text())
     ok(f"same results {b}") if a == b else bad(f"{b} instead of the legacy {a}")
     """), timeout=300)


# ---------------------------------------------------------------- 2b. concurrency
K = "concurrency"
case("train_rbm-two-at-once", K, "two train_rbm.py runs of the same command into one checkpoint dir at the same time",
     "both finish with the clean result (one waits) or one stops with 'in use by PID'", """
     p1 = start_script("train_rbm.py", *rbm_args(out="out_a", ckpt="ck", epochs=20), log="a.log")
     p2 = start_script("train_rbm.py", *rbm_args(out="out_b", ckpt="ck", epochs=20), log="b.log")
     rc1, rc2 = p1.wait(timeout=400), p2.wait(timeout=400)
     r3, clean = rbm_run(out="out_c", ckpt="ck_clean", epochs=20)
     logs = {"a": Path("a.log").read_text(), "b": Path("b.log").read_text()}
     results = {}
     for key, rc in (("a", rc1), ("b", rc2)):
         results[key] = concurrent_outcome(f"run {key}", rc, logs[key], HERE / f"out_{key}" / "rbm_t.npz", clean,
                                           "finished with weights that differ from a clean run")
     ok(str(results)) if any(v == "same as clean" for v in results.values()) else bad(str(results))
     """, timeout=600)
case("train_rbm-two-settings-at-once", K,
     "train_rbm.py with --lr 0.05 and --lr 0.01 (same --name) into one checkpoint dir at the same time",
     "each run gets the result of its own settings (or one stops with 'in use by PID')", """
     p1 = start_script("train_rbm.py", *rbm_args(out="out_a", ckpt="ck", epochs=10), log="a.log")
     p2 = start_script("train_rbm.py", *rbm_args(out="out_b", ckpt="ck", epochs=10, lr=0.01), log="b.log")
     rc = {"a": p1.wait(timeout=400), "b": p2.wait(timeout=400)}
     ra, clean_a = rbm_run(out="out_ca", ckpt="ck_a", epochs=10)
     rb, clean_b = rbm_run(out="out_cb", ckpt="ck_b", epochs=10, lr=0.01)
     results = {}
     for key, clean in (("a", clean_a), ("b", clean_b)):
         results[key] = concurrent_outcome(f"run {key}", rc[key], Path(f"{key}.log").read_text(),
                                           HERE / f"out_{key}" / "rbm_t.npz", clean,
                                           "finished with weights that differ from a clean run of its settings")
     ok(str(results)) if "same as clean" in results.values() else bad(str(results))
     """, timeout=600)
# Two processes run the same job.py into one checkpoint dir "ck" at once; then a clean run.
TWO_JOBS_AT_ONCE = r"""
     procs = [subprocess.Popen([PY, "job.py", "ck", f"w{i}.npz"], stdout=open(f"log{i}", "w"),
                               stderr=subprocess.STDOUT, cwd=HERE) for i in (0, 1)]
     rcs = [p.wait(timeout=400) for p in procs]
     subprocess.run([PY, "job.py", "clean", "wc.npz"], cwd=HERE, capture_output=True, timeout=400)
     clean = npz("wc.npz")
     outcome = [concurrent_outcome(f"process {i}", rc, Path(f"log{i}").read_text(), f"w{i}.npz", clean,
                                   "got weights that differ from a clean run") for i, rc in enumerate(rcs)]
     ok(str(outcome)) if "same as clean" in outcome else bad(str(outcome))
"""


# job.py of the two-at-once cases below and of the kill9 ones: checkpoint dir and weights file in argv[1:3].
PRETRAIN_JOB = ('\nimport sys\nexec(open("prelude.py").read())\nfrom dbn.dbn import DBN\n'
                'stack = DBN({sizes}, layer_configs=layer_config(epochs={epochs}), seed=0)\n'
                'stack.pretrain(binary({n}), checkpoint_dir=HERE / sys.argv[1], verbose=0)\n'
                'np.savez(sys.argv[2], *[r.W.numpy() for r in stack.rbms])\n')
FINETUNE_JOB = ('\nimport sys\nexec(open("prelude.py").read())\nfrom dbn.finetune import fine_tune\n'
                'd = mnist({n}, {n_val})\nmodel = tiny_classifier((784, {hidden}))\n'
                'fine_tune(model, d.x_train, d.y_train, d.x_val, d.y_val, '
                'quiet_config(max_epochs={epochs}, patience={patience}),\n'
                '          seed=0, checkpoint_dir=HERE / sys.argv[1])\n'
                'np.savez(sys.argv[2], *model.get_weights())\n')


def job_case(id, category, description, expected, job, then):
    """A case that writes ``job`` to job.py, then runs ``then`` (TWO_JOBS_AT_ONCE, KILL9_RESUME)."""
    case(id, category, description, expected, f"\n     Path(\"job.py\").write_text({job!r})\n     " + then,
         timeout=600)


job_case("dbn-pretrain-two-at-once", K, "two processes pretrain the same DBN into one checkpoint dir at the same time",
         "both get the clean result (one waits) or one stops with 'in use by PID'",
         PRETRAIN_JOB.format(sizes=[784, 32, 16], epochs=8, n=1000), TWO_JOBS_AT_ONCE)
job_case("fine_tune-two-at-once", K, "two processes fine-tune into one checkpoint dir at the same time",
         "both get the clean result (one waits) or one stops with 'in use by PID'",
         FINETUNE_JOB.format(n=1000, n_val=200, hidden=32, epochs=10, patience=20), TWO_JOBS_AT_ONCE)

# ---------------------------------------------------------------- 3. faults
X = "faults"
case("train_rbm-kill9-resume", X, "train_rbm.py killed with SIGKILL mid-run, then rerun",
     "bit-identical to an uninterrupted run", """
     args = dict(epochs=6, n_train=3000, hidden=64)
     p = start_script("train_rbm.py", *rbm_args(out="out1", ckpt="ck", **args), log="killed.log")
     kill_after_checkpoint(p, "killed.log", 0.7, finished="the run finished")
     r2, resumed = rbm_run(out="out2", ckpt="ck", **args)
     r3, clean = rbm_run(out="out3", ckpt="ck_clean", **args)
     if resumed is None:
         bad("resume failed: " + tail(r2.stderr))
     ok("bit-identical") if same_arrays(resumed, clean) else bad("resumed run differs from the uninterrupted one")
     """, timeout=600)
# job.py killed with SIGKILL once its first checkpoint exists, rerun, compared with a clean run.
KILL9_RESUME = r"""
     p = subprocess.Popen([PY, "job.py", "ck", "w1.npz"], stdout=open("log1", "w"), stderr=subprocess.STDOUT, cwd=HERE)
     kill_after_checkpoint(p, "log1", 0.5)
     r2 = subprocess.run([PY, "job.py", "ck", "w2.npz"], capture_output=True, text=True, cwd=HERE, timeout=400)
     r3 = subprocess.run([PY, "job.py", "clean", "w3.npz"], capture_output=True, text=True, cwd=HERE, timeout=400)
     if r2.returncode != 0:
         bad("resume failed: " + tail(r2.stderr))
     ok("bit-identical") if same_arrays(npz("w2.npz"), npz("w3.npz")) else bad("resumed run differs")
"""


job_case("dbn-pretrain-kill9-resume", X, "DBN.pretrain killed with SIGKILL mid-run, then rerun",
         "bit-identical to an uninterrupted run", PRETRAIN_JOB.format(sizes=[784, 64, 32], epochs=4, n=3000),
         KILL9_RESUME)
job_case("fine_tune-kill9-resume", X, "fine_tune killed with SIGKILL mid-run, then rerun",
         "bit-identical to an uninterrupted run",
         FINETUNE_JOB.format(n=3000, n_val=300, hidden=64, epochs=6, patience=10), KILL9_RESUME)
case("train_rbm-disk-full", X,
     "train_rbm.py whose checkpoint write fails (file size limit, like a full disk), then rerun without the limit",
     "the first run fails with an error; the rerun gives the clean result", """
     import resource
     def limit():
         signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
         resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
     r1 = subprocess.run([PY, str(REPO / "experiments" / "train_rbm.py"), *map(str, rbm_args(out="out1"))],
                         capture_output=True, text=True, cwd=HERE, timeout=300, preexec_fn=limit)
     if r1.returncode == 0:
         bad("the run with a 20 kB file size limit reported success")
     r2, resumed = rbm_run(out="out2")
     r3, clean = shared_rbm_baseline(out="out3", ckpt="ck_clean")
     if resumed is None:
         bad("rerun after the failed write failed: " + final_error(r2.stderr)[:600])
     ok("first failed (" + final_error(r1.stderr)[:200] + "), rerun equals clean") if same_arrays(resumed, clean) else bad("rerun after a failed write differs from a clean run")
     """, timeout=400)
case("train_rbm-checkpoint-dir-is-file", X, "train_rbm.py --checkpoint-dir pointing at a regular file",
     "a clear error naming the path", """
     Path("notadir").write_text("x")
     r, w = rbm_run(out="out1", ckpt="notadir")
     if r.returncode == 0:
         bad("accepted a file as checkpoint directory")
     judge_script_failure(r, [HERE / "notadir"], ["notadir"])
     """, timeout=240)
case("train_rbm-out-is-file", X, "train_rbm.py --out pointing at a regular file",
     "a clear error naming the path, before training", """
     Path("outfile").write_text("x")
     r, w = rbm_run(out="outfile")
     if r.returncode == 0:
         bad("accepted a file as output directory")
     if trained(r):
         bad("refused only after training: " + final_error(r.stderr)[:500])
     judge_script_failure(r, [HERE / "outfile"], ["outfile"])
     """, timeout=240)
for value in ("inf", "nan", "-0.05", "0"):
    case(f"train_rbm-lr-{value}", X, f"train_rbm.py --lr {value}",
         "an error naming the learning rate, before training", f"""
     r, w = rbm_run(lr="{value}")
     refused_before_training(r, "trained with --lr {value}: exit 0", r"--lr|learning.rate|\\blr\\b", r"diverged")
     """, timeout=240)
for flag, value in (("--epochs", 0), ("--hidden", 0), ("--n-train", -5), ("--batch-size", 0), ("--ais-runs", 1)):
    name = flag.lstrip("-")
    words = {"--epochs": "epochs", "--hidden": "hidden", "--n-train": "n.train",
             "--batch-size": "batch.size", "--ais-runs": "ais.runs|n_runs"}[flag]
    case(f"train_rbm-{name}-{value}", X, f"train_rbm.py {flag} {value}", "an error naming the option, before training", f"""
     r, w = rbm_run(**{{"{name.replace('-', '_')}": {value}}})
     refused_before_training(r, "accepted {flag} {value}", r"{words}", r"^(TypeError|ZeroDivisionError|IndexError)")
     """, timeout=240)
case("rbm-fit-sgd-nan-lr", X, "RBM.fit with SGD(learning_rate=nan)", "an error naming the learning rate", """
     import keras
     from dbn.rbm import RBM
     rbm = RBM(8, seed=0)
     rbm.compile(optimizer=keras.optimizers.SGD(float("nan"), momentum=0.5))
     expect_error(lambda: rbm.fit(binary(200), epochs=1, batch_size=50, verbose=0), "learning rate", "learning_rate")
     """)
case("write_json-nan", X, "provenance.write_json of a payload holding NaN", "an error naming the file", """
     from dbn import provenance
     expect_error(lambda: provenance.write_json(HERE / "r.json", {"x": float("nan")}), "r.json")
     """)


# --------------------------------------------------------------------------- driver
def _git(repo, *args):
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              timeout=30).stdout.strip() or None
    except Exception:
        return None


def _env(repo, tmp, python, legacy=None):
    env = dict(os.environ)
    env.update(AUDIT_REPO=str(repo), AUDIT_PY=python, PYTHONPATH=str(repo), HOME=str(tmp / "home"),
               DBN_CHECKPOINT_DIR=str(tmp / "default_checkpoints"), TF_CPP_MIN_LOG_LEVEL="2",
               CUDA_VISIBLE_DEVICES="", PYTHONHASHSEED="0", MPLBACKEND="Agg",
               PYTHONDONTWRITEBYTECODE="1", AUDIT_SHARED=str(tmp / "shared"),
               AUDIT_LEGACY_REPO=str(legacy or repo))
    (tmp / "home").mkdir(exist_ok=True)
    (tmp / "shared").mkdir(exist_ok=True)
    return env


def _verdict(stdout_text, stderr_text, rc, timed_out, timeout):
    if timed_out:
        return "defective", f"hang: no verdict within {timeout} s (timeout)"
    for line in reversed(stdout_text.splitlines()):
        if line.startswith("AUDIT_VERDICT "):
            v = json.loads(line[len("AUDIT_VERDICT "):])
            return v["outcome"], v["detail"]
    lines = [l for l in stderr_text.strip().splitlines() if l.strip() and not l.startswith(("I0000", "W0000", "E0000", "WARNING: All log"))]
    return "error", f"no verdict (exit {rc}): " + " | ".join(lines[-4:])[-800:]


class Worker:
    """A forking worker process (fork mode) or a spawner (spawn mode)."""

    def __init__(self, env, python, spawn):
        self.env, self.python, self.spawn = env, python, spawn
        self.proc = None
        if not spawn:
            self._start()

    def _start(self):
        self.proc = subprocess.Popen([self.python, "-c", WORKER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=self.env, cwd=self.env["HOME"], text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "READY":
            raise RuntimeError("the audit worker did not start")

    def run(self, script, cwd, stdout, stderr, timeout):
        if self.spawn:
            t0 = time.time()
            with open(stdout, "w") as out, open(stderr, "w") as err:
                proc = subprocess.Popen([self.python, "-c", SPAWN_RUNNER, str(script)], stdout=out,
                                        stderr=err, cwd=cwd, env=self.env, start_new_session=True)
                try:
                    rc = proc.wait(timeout=timeout)
                    return {"rc": rc, "timeout": False, "seconds": time.time() - t0}
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    return {"rc": None, "timeout": True, "seconds": time.time() - t0}
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        job = {"script": str(script), "cwd": str(cwd), "stdout": str(stdout), "stderr": str(stderr),
               "timeout": timeout}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.proc = None
            return {"rc": None, "timeout": False, "seconds": 0.0, "worker_died": True}
        return json.loads(line)

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def run_cases(cases, repo, python, jobs, spawn, tmp, progress=True, legacy=None):
    env = _env(repo, tmp, python, legacy)
    # Long cases (experiment scripts) first, so that no long case starts last.
    queue = sorted(enumerate(cases), key=lambda item: -item[1]["timeout"])
    results = [None] * len(cases)
    lock = threading.Lock()

    def work():
        worker = Worker(env, python, spawn)
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    index, c = queue.pop(0)
                cwd = tmp / "cases" / c["id"]
                cwd.mkdir(parents=True, exist_ok=True)
                (cwd / "prelude.py").write_text(PRELUDE)
                script = cwd / "case.py"
                script.write_text(PRELUDE + "\n# ---- case\n" + c["code"])
                info = worker.run(script, cwd, cwd / "stdout.txt", cwd / "stderr.txt", c["timeout"])
                outcome, detail = _verdict((cwd / "stdout.txt").read_text(errors="replace"),
                                           (cwd / "stderr.txt").read_text(errors="replace"),
                                           info["rc"], info["timeout"], c["timeout"])
                result = {k: c[k] for k in ("id", "category", "description", "expected")}
                result.update(outcome=outcome, detail=detail, seconds=round(info["seconds"], 2))
                results[index] = result
                if progress:
                    with lock:
                        done = sum(r is not None for r in results)
                        print(f"[{done:3d}/{len(cases)}] {outcome:9s} {c['id']} ({info['seconds']:.1f}s)",
                              flush=True)
        finally:
            worker.close()

    threads = [threading.Thread(target=work) for _ in range(max(1, jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def counts(results):
    table = {}
    for r in results:
        row = table.setdefault(r["category"], {"cases": 0, "ok": 0, "defective": 0, "error": 0})
        row["cases"] += 1
        row[r["outcome"]] = row.get(r["outcome"], 0) + 1
    total = {"cases": len(results)}
    for key in ("ok", "defective", "error"):
        total[key] = sum(row[key] for row in table.values())
    return {"by_category": table, "total": total}


def format_table(count):
    lines = ["| category | cases | ok | defective | error |", "|---|---|---|---|---|"]
    for category, row in count["by_category"].items():
        lines.append(f"| {category} | {row['cases']} | {row['ok']} | {row['defective']} | {row['error']} |")
    t = count["total"]
    lines.append(f"| **total** | {t['cases']} | {t['ok']} | {t['defective']} | {t['error']} |")
    return "\n".join(lines)


def markdown_report(payload, repo, seconds):
    results = payload["cases"]
    moved = payload.get("repo_commit_at_end") not in (None, payload["repo_commit"])
    lines = [f"# Trust audit of `{repo}` at `{payload['repo_commit']}`"
             f"{' (with uncommitted changes)' if payload['repo_dirty'] else ''}"
             f"{' (moved to ' + payload['repo_commit_at_end'][:10] + ' during the audit)' if moved else ''}", "",
             f"{len(results)} cases, {seconds:.0f} s (`experiments/trust_audit.py`).", "",
             format_table(payload["counts"]), ""]
    for outcome in ("defective", "error"):
        chosen = [r for r in results if r["outcome"] == outcome]
        if chosen:
            lines += [f"## {outcome} ({len(chosen)})", ""]
            for r in chosen:
                detail = " ".join(r["detail"].split())[:300]
                lines.append(f"- `{r['id']}` ({r['category']}): {r['description']} -- {detail}")
            lines.append("")
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", required=True, help="checkout of the package to audit")
    p.add_argument("--out", default="results/trust_audit.json", help="JSON written here")
    p.add_argument("--only", action="append", default=[],
                   help="run only cases whose id or category matches this glob (repeatable; "
                        "a plain word matches as a substring)")
    p.add_argument("-j", "--jobs", type=int, default=2, help="cases run in parallel")
    p.add_argument("--spawn", action="store_true", help="a new interpreter per case (no fork server)")
    p.add_argument("--python", default=sys.executable, help="interpreter with TensorFlow and the dependencies")
    p.add_argument("--keep", action="store_true", help="keep the case directories (printed)")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.add_argument("--report", help="also write a Markdown summary (table, every case not ok) here")
    p.add_argument("--legacy-repo", help="another version of the package whose checkpoints the legacy-* "
                                         "cases feed to the audited one (default: the audited one)")
    return p.parse_args(argv)


def select(cases, patterns):
    if not patterns:
        return list(cases)
    def match(c, pat):
        if any(ch in pat for ch in "*?["):
            return fnmatch.fnmatch(c["id"], pat) or fnmatch.fnmatch(c["category"], pat)
        return pat in c["id"] or pat == c["category"]
    return [c for c in cases if any(match(c, pat) for pat in patterns)]


def scrub_paths(results, names):
    """Case details without this machine's paths: each ``{path: name}`` and every case
    directory (``<tmp>/trust_audit_*/cases/<id>``) replaced by a placeholder."""
    def scrub(text):
        for path, name in names.items():
            if path is not None:
                text = text.replace(str(path), name)
        return re.sub(r"/\S*?/trust_audit_[^/\s]*/cases/[^/\s:\"']*", "<case dir>", text)
    return [{k: scrub(v) if isinstance(v, str) else v for k, v in r.items()} for r in results]


def main(argv=None):
    args = parse_args(argv)
    ids = [c["id"] for c in CASES]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise SystemExit(f"duplicate case ids: {sorted(duplicates)}")
    cases = select(CASES, args.only)
    if args.list:
        for c in cases:
            print(f"{c['category']:18s} {c['id']:45s} {c['description']}")
        print(f"{len(cases)} cases")
        return 0
    repo = Path(args.repo).resolve()
    if not (repo / "dbn").is_dir():
        raise SystemExit(f"--repo {repo}: no dbn/ package there")
    started = time.time()
    commit_at_start = _git(repo, "rev-parse", "HEAD")
    tmp = Path(tempfile.mkdtemp(prefix="trust_audit_"))
    try:
        legacy = Path(args.legacy_repo).resolve() if args.legacy_repo else None
        results = run_cases(cases, repo, args.python, args.jobs, args.spawn, tmp, legacy=legacy)
    finally:
        if args.keep:
            print(f"case directories kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    results = scrub_paths(results, {repo: "<repo>", legacy: "<legacy repo>"})
    count = counts(results)
    config = {"repo": str(repo), "legacy_repo": args.legacy_repo, "only": args.only, "jobs": args.jobs,
              "mode": "spawn" if args.spawn else "fork", "python": args.python}
    commit_at_end = _git(repo, "rev-parse", "HEAD")
    payload_results = {"repo_commit": commit_at_start,
                       "repo_commit_at_end": commit_at_end,
                       "repo_dirty": bool(_git(repo, "status", "--porcelain", "--untracked-files=no")),
                       "legacy_repo_commit": _git(args.legacy_repo or repo, "rev-parse", "HEAD"),
                       "counts": count, "cases": results}
    try:  # the harness's own package (not the audited checkout) writes the JSON
        from dbn import provenance
        payload = provenance.record(config, seed=None, started=started, results=payload_results)
        provenance.write_json(args.out, payload)
    except Exception as err:  # the package may be mid-edit: plain JSON then
        print(f"(provenance helpers unavailable: {err}; writing plain JSON)")
        payload = {"config": config, "wall_time_seconds": time.time() - started, **payload_results}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(payload, indent=2) + "\n")
    print()
    if commit_at_end != commit_at_start:
        print(f"warning: {repo} moved from {commit_at_start} to {commit_at_end} during the audit")
    print(f"audited {repo} at {payload_results['repo_commit']}"
          f"{' (uncommitted changes)' if payload_results['repo_dirty'] else ''}: "
          f"{len(results)} cases in {time.time() - started:.0f} s")
    print(format_table(count))
    not_ok = [r for r in results if r["outcome"] != "ok"]
    if not_ok:
        print("\nnot ok:")
        for r in not_ok:
            print(f"  {r['outcome']:9s} {r['id']}: {r['detail'][:200]}")
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(markdown_report(payload_results, repo, time.time() - started))
        print(f"wrote {args.report}")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
