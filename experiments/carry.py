"""Carry run directories from one machine (or session) to the next through the repository.

Runs longer than a session (the 300-epoch up-down run: hours on 2 cores) resume from
their run directories, which live outside the work tree (~/.cache/dbn/checkpoints) and
do not outlive a machine that is replaced between sessions. `save` copies chosen run
directories into carry/ (tracked by git: commit them), `restore` copies them back under
the checkpoint root, where the experiment resumes them. Nothing is trusted on the way:
every directory is opened and verified (manifest checksum, SHA-256 of every file) before
it is saved and again when it is restored; a restored directory never replaces one that
is as far along on the target machine (finished before unfinished, then the higher
manifest version).

A finished comparison run (``runs/...``: one fine-tuning of ``dbn_mnist``, ``label_scarcity``,
``depth``) is carried by ``--result-only``: its manifest with the spec and the ``result`` state
only (kilobytes, not the network's megabytes; each experiment's JSON is assembled from these
results).  Restored, the run is reused by ``compare`` exactly as a finished run on this
machine, since it is keyed and checked by the same spec; its network is not there, so
``load_classifier`` refuses it by name (the generative experiment's judge needs a run
fine-tuned on the machine or carried whole).  Unfinished runs are never carried this way.

  python experiments/carry.py save pretrain/layer0_784-500_seed0_... dbn_generative/up_down_...
  python experiments/carry.py save --result-only --finished-under runs
  python experiments/carry.py restore
  python experiments/carry.py list
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
from pathlib import Path

from dbn import options
from dbn.training import checkpoint

ROOT = Path(__file__).resolve().parents[1]
CARRY = ROOT / "carry"


def _manifest(path):
    """The manifest of the run directory at ``path``, after opening (verifying) it."""
    with checkpoint.open_existing(path, what=f"carried run {path}") as run:
        if not run.exists:
            raise checkpoint.CheckpointCorruptError(f"{path} holds no manifest: not a finished save")
        return json.loads((Path(path) / checkpoint.MANIFEST).read_text())


def _verified(path):
    """Open (verify) the run directory at ``path``; return how far along it is: (whether
    it holds a finished ``result``, its manifest version), which orders two copies of a
    run (a result-only copy, version 1, is ahead of an unfinished run at any version)."""
    manifest = _manifest(path)
    return "result" in manifest["state"], manifest["version"]


def _copy(source, manifest, target):
    """Copy a run directory's manifest and listed files (no lock, no leftovers)."""
    tmp = target.with_name(target.name + ".carry-tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for entry in manifest["files"].values():
        shutil.copy2(source / entry["file"], tmp / entry["file"])
    shutil.copy2(source / checkpoint.MANIFEST, tmp / checkpoint.MANIFEST)
    _verified(tmp)
    (tmp / checkpoint.LOCK).unlink(missing_ok=True)  # a lock file is made by every open
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(target)
    return "saved"


def _copy_result(source, manifest, target):
    """Carry the finished run at ``source`` as its spec and ``result`` state alone, with
    where it came from (``carried_from``: the source's version, time, commit and the CPUs that
    computed it); a carried
    copy with the same spec and result is left as it is."""
    if (target / checkpoint.MANIFEST).exists():
        carried = _manifest(target)
        if carried["spec"] == manifest["spec"] and carried["state"].get("result") == manifest["state"]["result"]:
            return "unchanged"
    tmp = target.with_name(target.name + ".carry-tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with checkpoint.RunDir(tmp, manifest["spec"], what=manifest["what"], keyed_by_strategy=False) as run:
        run.save(result=manifest["state"]["result"],  # the spec as stored: it names the strategy
                 carried_from={k: manifest.get(k) for k in ("version", "written_utc", "git_commit", "cpus")})
    (tmp / checkpoint.LOCK).unlink(missing_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(target)
    return "saved (result only)"


def finished_under(root, folder):
    """The run directories under ``root / folder`` (a folder inside the checkpoint root)
    holding a finished ``result``, each verified; one in use by another process (being
    trained) is skipped, not waited for."""
    where = (root / folder).resolve()
    if Path(folder).is_absolute() or not where.is_relative_to(root.resolve()) or not where.is_dir():
        raise SystemExit(f"carry save --finished-under {folder}: allowed: a folder inside the checkpoint "
                         f"root {root} (e.g. runs); {where} is not one")
    names = []
    for manifest in sorted((root / folder).glob(f"*/{checkpoint.MANIFEST}")):
        try:
            with _no_wait():
                finished, _ = _verified(manifest.parent)
        except checkpoint.CheckpointInUseError:  # being trained now: not finished
            print(f"skipped {manifest.parent}: in use by another process")
            continue
        if finished:
            names.append(str(manifest.parent.relative_to(root)))
    if not names:
        raise SystemExit(f"carry save --finished-under {folder}: no finished run under {root / folder}")
    return names


@contextlib.contextmanager
def _no_wait():
    """Open run directories without waiting for one another process holds (it raises)."""
    before = os.environ.get("DBN_LOCK_TIMEOUT")
    os.environ["DBN_LOCK_TIMEOUT"] = "0"
    try:
        yield
    finally:
        if before is None:
            del os.environ["DBN_LOCK_TIMEOUT"]
        else:
            os.environ["DBN_LOCK_TIMEOUT"] = before


def save(root, names, *, result_only=False):
    """Check every run first (a directory, verified, with a ``result`` for --result-only),
    then carry them: nothing is carried when one of them is refused."""
    checked = []
    for name in names:
        source = root / name
        if Path(name).is_absolute() or not source.is_dir():
            raise SystemExit(f"carry save: {source} is not a run directory under {root}")
        manifest = _manifest(source)
        if result_only and "result" not in manifest["state"]:
            raise SystemExit(f"carry save --result-only: {source} holds no `result` state (an unfinished "
                             f"run, or not a comparison run): carry it whole, without --result-only")
        checked.append((name, source, manifest))
    for name, source, manifest in checked:
        done = (_copy_result if result_only else _copy)(source, manifest, CARRY / name)
        print(f"{name} (version {manifest['version']}): {done} in {CARRY / name}")


def restore(root):
    """Verify every carried directory first, then restore them: nothing is restored when
    one of them is damaged."""
    if not CARRY.is_dir():
        print("nothing to restore: no carry/ directory")
        return
    carried_runs = [(m.parent, _manifest(m.parent)) for m in sorted(CARRY.rglob(checkpoint.MANIFEST))]
    for source, carried_manifest in carried_runs:
        name = source.relative_to(CARRY)
        target = root / name
        carried = "result" in carried_manifest["state"], carried_manifest["version"]
        if (target / checkpoint.MANIFEST).exists():
            present = _verified(target)
            if present >= carried:
                print(f"kept {target} ({_progress(present)}: as far as the carried {_progress(carried)})")
                continue
        _copy(source, carried_manifest, target)
        print(f"restored {name} ({_progress(carried)}) to {target}")


def _progress(progress):
    finished, version = progress
    return f"version {version}{', finished' if finished else ''}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=options.HelpFormatter)
    p.add_argument("action", choices=["save", "restore", "list"])
    p.add_argument("runs", nargs="*", help="run directories relative to --checkpoint-dir (save)")
    p.add_argument("--checkpoint-dir", default=str(options.DEFAULT_CHECKPOINT_DIR))
    p.add_argument("--result-only", action="store_true",
                   help="save: carry each finished run's spec and result, not its files")
    p.add_argument("--finished-under", metavar="FOLDER",
                   help="save: also every run directory under FOLDER holding a finished result")
    args = p.parse_intermixed_args(argv)  # options before or after the run names
    root = Path(args.checkpoint_dir).expanduser()
    if args.action != "save" and (args.result_only or args.finished_under):
        p.error("--result-only and --finished-under apply to save only")
    if args.action == "save":
        runs = list(args.runs) + (finished_under(root, args.finished_under) if args.finished_under else [])
        if not runs:
            p.error("save needs the run directories to carry")
        save(root, runs, result_only=args.result_only)
    elif args.action == "restore":
        restore(root)
    else:
        for manifest in sorted(CARRY.rglob(checkpoint.MANIFEST)) if CARRY.is_dir() else []:
            m = json.loads(manifest.read_text())
            origin = m["state"].get("carried_from")
            if origin:  # a result-only copy: where its result was computed
                m = {**m, **origin, "what": m["what"] + " (result only)"}
            print(f"{manifest.parent.relative_to(CARRY)}: {m['what']}, version {m['version']}, "
                  f"written {m['written_utc']} by {str(m['git_commit'])[:10]}"
                  f" on {' + '.join(m.get('cpus') or ['an unrecorded CPU'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
