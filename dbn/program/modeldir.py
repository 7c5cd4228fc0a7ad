"""Model directories: what ``dbn pretrain`` writes and the other commands read.

A model directory holds a manifest, ``model.json``, and the weights it lists::

    runs/x/model.json          what the directory holds and how it was made (below)
    runs/x/dbn/                the pretrained stack, written by ``DBN.save`` (its own
                               verified manifest: SHA-256 of every layer file)
    runs/x/classifier-<token>.keras   the fine-tuned classifier (``dbn finetune``)
    runs/x/generative/         a generative DBN (``dbn pretrain --generative``):
                               ``GenerativeDBN.save``'s top.keras and weights.npz

``model.json``: ``format`` / ``format_version``; ``holds`` (``["rbm"]``, ``["dbn"]``,
``["generative"]``, plus ``"classifier"`` once fine-tuned: a single RBM is a one-layer
stack, ``dbn pretrain --layers 500``); ``layer_sizes``; ``n_classes``; ``seed``;
``pretraining`` (each layer's config, timings, the command line); ``finetuning`` (config,
seed, dropout, early-stopping outcome, command line) once fine-tuned; ``data`` (the
settings every command reloads the same splits from); ``files`` (each entry's path and
SHA-256, checked before it is read: for ``dbn/``, the SHA-256 of its manifest);
``package_version``; ``git_commit`` (``"unknown"`` outside a git checkout); times.

Writes never leave a directory half-written: ``create`` builds the whole directory in a
hidden temporary sibling (``.x.partial-*``) and renames it into place when it is
complete (an existing model directory replaced with ``--force`` is renamed aside first,
then deleted); ``update`` writes new files under fresh names, then replaces
``model.json`` atomically (the commit point), then deletes the files it replaced.  A
killed command leaves at most a hidden ``.x.partial-*`` sibling, or an unlisted file
inside the directory that the next update removes.

``open_model`` and the ``load_*`` functions are the Python API of the format (the
tests compare the commands with them).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from dbn import provenance
from dbn.program.common import UsageError

MANIFEST = "model.json"
FORMAT = "dbn model directory"
FORMAT_VERSION = 1
KINDS = ("rbm", "dbn", "generative")  # what pretraining made; "classifier" is added to it
DBN_DIR = "dbn"
GENERATIVE_DIR = "generative"
_UPDATED_FILE = re.compile(r"^(classifier)-[0-9a-f]{8}\.keras$")  # written by update()


class ModelDirError(UsageError):
    """A path that is not the model directory a command needs: missing, not a model
    directory, unreadable, or holding the wrong kind of model."""


def now():
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_manifest(*, kind, layer_sizes, n_classes, seed, data, pretraining):
    import dbn

    return {"format": FORMAT, "format_version": FORMAT_VERSION, "holds": [kind],
            "layer_sizes": list(layer_sizes), "n_classes": n_classes, "seed": seed,
            "pretraining": pretraining, "finetuning": None, "data": data, "files": {},
            "package_version": dbn.__version__, "git_commit": provenance.git_commit(),
            "created_utc": now(), "updated_utc": now()}


# --------------------------------------------------------------------------- reading
def open_model(path, *, command="this command"):
    """The manifest of the model directory ``path`` (a dict), checked: a ModelDirError
    naming the path and what to do when it is missing, not a model directory, unreadable
    or written by another format."""
    path = Path(path)
    if not path.exists():
        raise ModelDirError(f"{path} does not exist; create a model directory with "
                            f"dbn pretrain --out {path}")
    if not path.is_dir():
        raise ModelDirError(f"{path} is not a directory; {command} needs a model directory "
                            "written by dbn pretrain")
    if not (path / MANIFEST).is_file():
        raise ModelDirError(f"{path} is not a model directory (no {MANIFEST}); create one with "
                            f"dbn pretrain --out {path}")
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError) as err:
        raise ModelDirError(f"{path / MANIFEST} is unreadable ({type(err).__name__}: {err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelDirError(f"{path / MANIFEST} is not the manifest of a dbn model directory "
                            f"(format {manifest.get('format') if isinstance(manifest, dict) else None!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelDirError(f"{path / MANIFEST} has format_version "
                            f"{manifest.get('format_version')!r}; this dbn reads {FORMAT_VERSION}")
    missing = [k for k in ("holds", "layer_sizes", "n_classes", "seed", "data", "files")
               if k not in manifest]
    holds = manifest.get("holds")
    if missing or not isinstance(holds, list) or not holds or holds[0] not in KINDS:
        raise ModelDirError(f"{path / MANIFEST} is incomplete or damaged "
                            f"({'missing ' + ', '.join(missing) if missing else f'holds={holds!r}'})")
    _check_fields(path / MANIFEST, manifest)
    return manifest


def _check_fields(where, manifest):
    """ModelDirError naming ``where`` and the field for a manifest value of the wrong kind
    (the commands read these before any file they list)."""
    def is_int(value, low):
        return isinstance(value, int) and not isinstance(value, bool) and value >= low

    sizes = manifest["layer_sizes"]
    problems = {
        "layer_sizes": not (isinstance(sizes, list) and len(sizes) >= 2
                            and all(is_int(n, 1) for n in sizes)),
        "n_classes": not is_int(manifest["n_classes"], 2),
        "seed": not is_int(manifest["seed"], 0),
        "data": not isinstance(manifest["data"], dict),
        "files": not (isinstance(manifest["files"], dict)
                      and all(isinstance(e, dict) and isinstance(e.get("path"), str)
                              and isinstance(e.get("sha256"), str) for e in manifest["files"].values())),
    }
    for field, bad in problems.items():
        if bad:
            raise ModelDirError(f"{where} is damaged: {field}={manifest[field]!r} (allowed: "
                                + {"layer_sizes": "a list of two or more integers >= 1",
                                   "n_classes": "an integer >= 2", "seed": "an integer >= 0",
                                   "data": "an object", "files": "an object of {path, sha256}"}[field]
                                + ")")


def kind(manifest):
    """What pretraining made: ``"rbm"``, ``"dbn"`` or ``"generative"``."""
    return manifest["holds"][0]


def describe(manifest):
    sizes = "-".join(map(str, manifest["layer_sizes"]))
    return {"rbm": f"a {sizes} RBM", "dbn": f"a {sizes} DBN",
            "generative": f"a {sizes} generative DBN (labelled top RBM)"}[kind(manifest)]


def verified(path, manifest, key):
    """The path of the file (or directory) listed under ``key``, after checking its
    SHA-256 (for a directory: of its manifest) against ``model.json``."""
    path = Path(path)
    entry = manifest["files"].get(key)
    if entry is None:
        raise ModelDirError(f"{path / MANIFEST} lists no {key!r} file")
    target = path / entry["path"]
    hashed = target / "manifest.json" if entry.get("directory") else target
    if not hashed.is_file():
        raise ModelDirError(f"{hashed} listed in {path / MANIFEST} is missing")
    if provenance.sha256_file(hashed) != entry["sha256"]:
        raise ModelDirError(f"{hashed} differs from the SHA-256 recorded in {path / MANIFEST} "
                            "(modified or damaged after it was written)")
    return target


def load_dbn(path, manifest):
    """The pretrained ``DBN`` of a model directory (``rbm`` or ``dbn``), every file verified."""
    from dbn.models.dbn import DBN

    return DBN.load(verified(path, manifest, DBN_DIR), expect_layer_sizes=manifest["layer_sizes"])


def load_classifier(path, manifest):
    """The fine-tuned ``keras.Sequential`` classifier of a model directory, verified."""
    import keras

    target = verified(path, manifest, "classifier")
    model = keras.models.load_model(target)
    # The classifier is hashed, model.json is not: its architecture must match the manifest.
    sizes = [*manifest["layer_sizes"], manifest["n_classes"]]
    kernels = [tuple(w.shape) for w in model.weights if len(w.shape) == 2]
    if kernels != list(zip(sizes, sizes[1:])):
        raise ModelDirError(f"{target} is a {'-'.join(str(k[0]) for k in kernels)}-"
                            f"{kernels[-1][1] if kernels else '?'} classifier; {path / MANIFEST} "
                            f"says {'-'.join(map(str, sizes))} (model.json edited or mixed up)")
    return model


def load_generative(path, manifest):
    """The ``GenerativeDBN`` of a model directory, rebuilt from ``GenerativeDBN.save``'s
    files (that class has ``save`` but no ``load``): the top RBM from ``top.keras``, the
    recognition and generative weights from ``weights.npz`` (``_variables()`` order)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from dbn.models.generative import GenerativeDBN
    from dbn.training.configs import RBMTrainingConfig

    top_file = verified(path, manifest, "generative_top")
    weights_file = verified(path, manifest, "generative_weights")
    configs = [RBMTrainingConfig(**c) for c in manifest["pretraining"]["layer_configs"]]
    model = GenerativeDBN(manifest["layer_sizes"], n_classes=manifest["n_classes"],
                          layer_configs=configs, seed=manifest["seed"])
    model.top = keras.models.load_model(top_file)
    n_lower = len(model.layer_sizes) - 2
    with np.load(weights_file) as f:
        arrays = [f[f"v{i}"] for i in range(len(f.files))]
    sizes = model.layer_sizes
    expected = ([s for i in range(n_lower) for s in ((sizes[i], sizes[i + 1]), (sizes[i + 1],))]
                + [s for i in range(n_lower) for s in ((sizes[i], sizes[i + 1]), (sizes[i],))])
    if [a.shape for a in arrays[: 4 * n_lower]] != expected or len(arrays) != 4 * n_lower + 3:
        raise ModelDirError(f"{weights_file} does not hold the weights of a "
                            f"{'-'.join(map(str, sizes))} generative DBN")
    variables = [tf.Variable(a) for a in arrays[: 4 * n_lower]]
    model.recognition = [(variables[2 * i], variables[2 * i + 1]) for i in range(n_lower)]
    model.generative = [(variables[2 * (n_lower + i)], variables[2 * (n_lower + i) + 1])
                        for i in range(n_lower)]
    return model


# --------------------------------------------------------------------------- writing
def check_new(path, *, force):
    """Refuse, before any work, an ``--out`` that cannot become a model directory: a
    file, below a file, or a non-empty directory (with ``--force``: unless it is a model
    directory, which is then replaced -- never a directory of other files)."""
    if not str(path).strip():
        raise UsageError("--out='' is not allowed: give the model directory's path")
    path = Path(path)
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"--out={str(path)!r} is not allowed: {parent} is a file; give a "
                             "directory (created if missing)")
    if path.is_dir() and any(path.iterdir()):
        if not force:
            raise UsageError(f"--out={str(path)!r} exists and is not empty; --force replaces a "
                             "model directory")
        if not (path / MANIFEST).is_file():
            raise UsageError(f"--out={str(path)!r} holds files but no {MANIFEST}: not a model "
                             "directory, so --force does not replace it; choose another --out")
        foreign = sorted(p.name for p in path.iterdir() if not _model_entry(p.name))
        if foreign:
            raise UsageError(f"--out={str(path)!r} holds files that are not part of a model "
                             f"directory ({', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''}); "
                             "--force would delete them: move them or choose another --out")
    _check_writable(path)
    return path


def _model_entry(name):
    """Whether ``name`` is something a model directory holds (what --force may delete)."""
    return name in (MANIFEST, DBN_DIR, GENERATIVE_DIR) or bool(_UPDATED_FILE.match(name))


def _check_writable(path):
    """UsageError, before any work, if the model directory ``path`` could not be created
    (or replaced) where it is: a directory is made and removed in its nearest existing
    ancestor, as ``create`` will."""
    ancestor = next(d for d in [path.parent, *path.parent.parents] if d.exists())
    try:
        os.rmdir(tempfile.mkdtemp(prefix=f".{path.name}.probe-", dir=ancestor))
    except OSError as err:
        raise UsageError(f"--out={str(path)!r} cannot be written: {err.strerror or err} in "
                         f"{ancestor}") from None


def hold_lock(args, path):
    """Take ``lock(path)`` for the rest of the command (``args.locks``, an ExitStack that
    ``dbn.program.main`` closes when the command ends): from ``prepare``, so a second
    writer is refused before any work.  A multi-worker run's workers other than the chief
    (task index 0) write nowhere that matters and take no lock."""
    if getattr(args, "strategy", "default") == "multiworker":
        from dbn import distribute

        if distribute.check_tf_config()["task"]["index"] != 0:
            return
    args.locks.enter_context(lock(path))


@contextlib.contextmanager
def lock(path):
    """Hold, for the block, the one lock on writing the model directory ``path`` (an
    exclusive ``flock`` on a file named by the real path's SHA-256 in the system's temp
    directory, so nothing appears beside the model; the kernel releases it if the process
    dies).  A second command writing the same directory gets a UsageError at once,
    before any work: two runs never write one directory."""
    import fcntl
    import hashlib

    real = os.path.realpath(path)
    locks = Path(tempfile.gettempdir()) / "dbn-locks"
    if not locks.is_dir():
        locks.mkdir(exist_ok=True)
        with contextlib.suppress(OSError):  # shared by every user, as /tmp itself
            os.chmod(locks, 0o1777)
    name = hashlib.sha256(real.encode()).hexdigest()[:32] + ".lock"
    with open(locks / name, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"{path} is being written by another dbn command; wait for it to "
                             "finish or choose another directory") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def create(path, manifest):
    """Build a new model directory at ``path`` atomically: yields a temporary directory
    (a hidden sibling of ``path``) to write the weights into; on a clean exit writes
    ``manifest`` (with the files listed in it) there and renames it to ``path``; on an
    error or interrupt deletes it (and the parent directories it created) and raises."""
    path = Path(os.path.abspath(path))
    created = _missing_ancestor(path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent))
    try:
        yield tmp
        provenance.write_json(tmp / MANIFEST, manifest)
        os.chmod(tmp, 0o777 & ~_umask())
        if path.is_dir() and any(path.iterdir()):  # a model directory (check_new, --force)
            old = path.with_name(f".{path.name}.replaced-{secrets.token_hex(4)}")
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old)
        else:
            os.rename(tmp, path)  # also replaces an empty directory, atomically
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if created is not None:
            _remove_empty(path.parent, created)
        raise


def update(path, manifest, *, files, **changes):
    """Add files to the model directory ``path`` and change its manifest, atomically.

    ``files`` maps a manifest key to ``(stem, suffix, writer)``: ``writer(file)`` writes
    ``<stem>-<token><suffix>``.  The new files are written first, then ``model.json`` is
    replaced (refused if it changed since ``manifest`` was read), then the files the new
    manifest no longer lists are deleted."""
    path = Path(path)
    token = secrets.token_hex(4)
    entries, written = {}, []
    try:
        for key, (stem, suffix, writer) in files.items():
            target = path / f"{stem}-{token}{suffix}"
            written.append(target)
            writer(target)
            entries[key] = {"path": target.name, "sha256": provenance.sha256_file(target)}
        if open_model(path) != manifest:
            raise ModelDirError(f"{path / MANIFEST} changed while this command ran (another dbn "
                                "command?); nothing was saved")
        new = {**manifest, **changes, "files": {**manifest["files"], **entries},
               "updated_utc": now()}
        provenance.write_json(path / MANIFEST, new)
    except BaseException:
        for target in written:
            target.unlink(missing_ok=True)
        raise
    listed = {e["path"] for e in new["files"].values()}
    for p in path.iterdir():  # replaced files, and leftovers of a killed update
        if _UPDATED_FILE.match(p.name) and p.name not in listed:
            p.unlink()
    return new


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _missing_ancestor(directory):
    """The highest ancestor of ``directory`` (itself included) that does not exist yet."""
    missing = None
    for d in [directory, *directory.parents]:
        if d.exists():
            break
        missing = d
    return missing


def _remove_empty(directory, top):
    """Remove ``directory`` and its parents up to ``top`` while they are empty."""
    for d in [directory, *directory.parents]:
        try:
            d.rmdir()
        except OSError:
            return
        if d == top:
            return
