"""``dbn experiment NAME [args...]``: run one of the committed scripts of ``experiments/``."""

from __future__ import annotations

import argparse
import os
import re
import sys
import textwrap
from pathlib import Path

from dbn.program import common

ENV = "DBN_EXPERIMENTS_DIR"


def experiments_dir():
    """The ``experiments/`` folder: ``$DBN_EXPERIMENTS_DIR`` if set, else the one beside
    the package in a source checkout (``<checkout>/experiments``); None when there is
    none (a wheel install ships the package only)."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    candidate = Path(__file__).resolve().parent.parent.parent / "experiments"
    return candidate if candidate.is_dir() else None


def names(directory):
    """The experiment names of ``directory``: its ``*.py`` scripts, without the suffix."""
    if directory is None or not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.py") if not p.name.startswith("_"))


def summary(script):
    """The first line of ``script``'s docstring ("" if it has none)."""
    try:
        head = script.read_text(errors="replace")[:600]
    except OSError:
        return ""
    match = re.match(r'\s*(?:#[^\n]*\n\s*)*[rbuRBU]?("""|\'\'\')\s*([^\n]*)', head)
    return match.group(2).rstrip('"\' .') if match else ""


def _description():
    directory = experiments_dir()
    found = names(directory)
    width = max((len(name) for name in found), default=0)
    room = max(88 - width - 4, 20)
    listing = ("\n".join(f"  {name:<{width}}  "
                         + textwrap.shorten(summary(directory / f"{name}.py") or "-", room,
                                            placeholder=" ...")
                         for name in found) if found else
               f"  (none: no experiments folder {'at ' + str(directory) if directory else 'beside the package'})")
    return f"""\
Run a script of the repository's experiments/ folder with the same Python, passing the
remaining arguments to it (they are the script's own: `dbn experiment NAME --help`).
Equivalent to `python experiments/NAME.py [args...]`; results go where the script
writes them (most take --out, default results/ under the current directory).

Experiments:
{listing}

The folder is found beside the installed package (a source checkout, e.g. pip install
-e .); a wheel install has none: set {ENV} to a checkout's experiments/ folder.

  dbn experiment demo --quick --out /tmp/demo
"""


def add_parser(subparsers):
    p = subparsers.add_parser("experiment", help="run a committed script of experiments/",
                              description=_description())
    p.add_argument("name", help="an experiment (listed above)")
    p.add_argument("script_args", nargs=argparse.REMAINDER, metavar="args",
                   help="the script's arguments")
    return p


def prepare(args):
    directory = experiments_dir()
    if directory is None or not directory.is_dir():
        where = (f"{ENV}={os.environ[ENV]!r} is not a directory" if os.environ.get(ENV) else
                 "no experiments/ folder beside the installed package (a wheel install has "
                 f"none); run from a source checkout (pip install -e .) or set {ENV} to a "
                 "checkout's experiments/ folder")
        raise common.UsageError(where)
    found = names(directory)
    if args.name not in found:
        raise common.UsageError(f"unknown experiment {args.name!r}; allowed: {', '.join(found)}")
    return {"script": directory / f"{args.name}.py", "args": list(args.script_args)}


def run(plan):
    """Replace this process by ``python script args...``: its output, signals and exit
    status are the script's own."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, str(plan["script"]), *plan["args"]])
