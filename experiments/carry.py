"""Carry run directories from one machine (or session) to the next through the repository.

Runs longer than a session (the 300-epoch up-down run: hours on 2 cores) resume from
their run directories, which live outside the work tree (~/.cache/dbn/checkpoints) and
do not outlive a machine that is replaced between sessions. `save` copies chosen run
directories into carry/ (tracked by git: commit them), `restore` copies them back under
the checkpoint root, where the experiment resumes them. Nothing is trusted on the way:
every directory is opened and verified (manifest checksum, SHA-256 of every file) before
it is saved and again when it is restored; a restored directory never replaces one that
is further along (a higher manifest version) on the target machine.

  python experiments/carry.py save pretrain/layer0_784-500_seed0_... dbn_generative/up_down_...
  python experiments/carry.py restore
  python experiments/carry.py list
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from dbn import options
from dbn.training import checkpoint

ROOT = Path(__file__).resolve().parents[1]
CARRY = ROOT / "carry"


def _verified(path):
    """Open (verify) the run directory at ``path``; return its manifest version."""
    with checkpoint.open_existing(path, what=f"carried run {path}") as run:
        if not run.exists:
            raise checkpoint.CheckpointCorruptError(f"{path} holds no manifest: not a finished save")
    return json.loads((Path(path) / checkpoint.MANIFEST).read_text())["version"]


def _copy(source, target):
    """Copy a run directory's manifest and listed files (no lock, no leftovers)."""
    manifest = json.loads((source / checkpoint.MANIFEST).read_text())
    tmp = target.with_name(target.name + ".carry-tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for entry in manifest["files"].values():
        shutil.copy2(source / entry["file"], tmp / entry["file"])
    shutil.copy2(source / checkpoint.MANIFEST, tmp / checkpoint.MANIFEST)
    _verified(tmp)
    (tmp / checkpoint.LOCK).unlink(missing_ok=True)  # a lock file is made by every open
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


def save(root, names):
    for name in names:
        source = root / name
        if not source.is_dir():
            raise SystemExit(f"carry save: {source} is not a run directory")
        version = _verified(source)
        _copy(source, CARRY / name)
        print(f"saved {name} (version {version}) to {CARRY / name}")


def restore(root):
    if not CARRY.is_dir():
        print("nothing to restore: no carry/ directory")
        return
    for manifest in sorted(CARRY.rglob(checkpoint.MANIFEST)):
        source = manifest.parent
        name = source.relative_to(CARRY)
        target = root / name
        version = _verified(source)
        if (target / checkpoint.MANIFEST).exists():
            present = _verified(target)
            if present >= version:
                print(f"kept {target} (version {present} >= carried {version})")
                continue
        target.parent.mkdir(parents=True, exist_ok=True)
        _copy(source, target)
        print(f"restored {name} (version {version}) to {target}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=options.HelpFormatter)
    p.add_argument("action", choices=["save", "restore", "list"])
    p.add_argument("runs", nargs="*", help="run directories relative to --checkpoint-dir (save)")
    p.add_argument("--checkpoint-dir", default=str(options.DEFAULT_CHECKPOINT_DIR))
    args = p.parse_args(argv)
    root = Path(args.checkpoint_dir).expanduser()
    if args.action == "save":
        if not args.runs:
            p.error("save needs the run directories to carry")
        save(root, args.runs)
    elif args.action == "restore":
        restore(root)
    else:
        for manifest in sorted(CARRY.rglob(checkpoint.MANIFEST)) if CARRY.is_dir() else []:
            m = json.loads(manifest.read_text())
            print(f"{manifest.parent.relative_to(CARRY)}: {m['what']}, version {m['version']}, "
                  f"written {m['written_utc']} by {m['git_commit'][:10]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
