"""What every ``dbn`` subcommand shares: the one-line error protocol, option checks that
name the option, output-path rules, the data settings, and a quiet TensorFlow import."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import sys
import tempfile
from pathlib import Path

from dbn import options
from dbn import validation as check

# Exit statuses: 2 for a command that cannot run as given (argparse's own convention),
# 1 for one that stopped during its work for a reason the package reports (divergence).
USAGE, FAILED = 2, 1


class UsageError(ValueError):
    """A command that cannot run as given (a bad value, a missing or wrong model
    directory, an output that exists): reported as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``dbn <cmd>: error: ...``, exit status 2) instead of
    the usage block, and every option's default in ``--help``."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", options.HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(USAGE, one_line(self.prog, message))


def one_line(prog, message):
    return f"{prog}: error: {' '.join(str(message).split())}\n"


# --------------------------------------------------------------------------- checks
def renamed(err, names):
    """``err``'s message with the config field names of ``names`` (field -> option)
    replaced by their options where they name a value (``learning_rate=nan`` -> ``--lr=nan``,
    ``1 <= n_train <= 50000`` -> ``1 <= --n-train <= 50000``)."""
    text = str(err)
    for field, option in sorted(names.items(), key=lambda item: -len(item[0])):
        text = re.sub(rf"(?<![\w-]){re.escape(field)}(?=\s*[=\[<>])", option, text)
    return text


def config(defaults, names, args):
    """``options.config_from_args`` with its ValueError naming the options, not the fields."""
    try:
        return options.config_from_args(defaults, names, args)
    except ValueError as err:
        raise UsageError(renamed(err, names)) from None


def checked(validator, option, value, **kwargs):
    """``validator(option, value, **kwargs)`` (a ``dbn.validation`` check) as a UsageError."""
    try:
        return validator(option, value, **kwargs)
    except ValueError as err:
        raise UsageError(str(err)) from None


def output_file(path, *, option="--out", force=False, suffixes=None):
    """An output file that may be written: not a directory, below no file, ending in one
    of ``suffixes``; an existing file only with ``force``.  Nothing is created here."""
    path = Path(path)
    if suffixes:
        checked(check.check_suffix, option, str(path), suffixes=suffixes)
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"{option}={str(path)!r} is not allowed: {parent} is a file")
    if path.is_dir():
        raise UsageError(f"{option}={str(path)!r} is a directory; allowed: a file path")
    if path.exists() and not force:
        raise UsageError(f"{option}={str(path)!r} exists; --force overwrites it")
    return path


def data_settings(n_train, validation_size):
    """The data a model directory is trained on (recorded in its manifest): MNIST from
    the embedded copy, split seed 0 (the experiments' protocol), ``n_train`` training
    labels (None: all 50,000), ``validation_size`` held-out images."""
    return {"source": "embedded", "name": "mnist", "split_seed": 0,
            "n_train": checked(check.check_int, "--n-train", n_train, low=1, optional=True),
            "validation_size": checked(check.check_int, "--validation-size", validation_size,
                                       low=1)}


def load_data(settings):
    """``dbn.data.load`` for recorded ``settings`` (ranges checked there, as UsageErrors
    naming the options)."""
    from dbn.data import splits

    try:
        return splits.load(settings["name"], source=settings["source"], seed=settings["split_seed"],
                           n_train=settings["n_train"], validation_size=settings["validation_size"])
    except ValueError as err:
        raise UsageError(renamed(err, {"n_train": "--n-train",
                                       "validation_size": "--validation-size"})) from None


def add_data_options(parser, *, n_train_help=None, validation=True):
    g = parser.add_argument_group("data (MNIST, the embedded copy; split seed 0 as in the experiments)")
    g.add_argument("--n-train", type=int, default=None,
                   metavar="N",
                   help=n_train_help or "use only the first N images of the 50,000-image training "
                                        "split (unset: all)")
    if validation:
        g.add_argument("--validation-size", type=int, default=10_000, metavar="N",
                       help="images held out of the 60,000 for early stopping")
    return g


# --------------------------------------------------------------------------- TensorFlow
# absl log lines (``I0000 00:00:1795861824.164015   14226 port.cc:153] message``) at INFO or
# WARNING level, and the CUDA probe's error on a machine without a GPU driver (TensorFlow
# then runs on the CPU, which is what this package does).
_QUIET_LINE = re.compile(r"^([IW]\d{4} \S+\s+\d+ \S+:\d+\] "
                         r"|E\d{4} \S+\s+\d+ \S+:\d+\] failed call to cuInit)")
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called"


def import_tensorflow():
    """Import TensorFlow and Keras without their start-up noise, unless the user chose a
    log level (``TF_CPP_MIN_LOG_LEVEL`` set: everything is shown as they asked).

    ``TF_CPP_MIN_LOG_LEVEL=2`` (INFO and WARNING off) is set for the process.  TensorFlow
    2.21 also writes absl log lines that this setting does not reach, during the import
    and the first device probe (oneDNN, "Could not find cuda drivers", "failed call to
    cuInit");
    during those two steps stderr is captured and written back without absl's INFO and
    WARNING lines and that CUDA probe error -- other errors and anything else pass
    through.  oneDNN itself is left on (``TF_ENABLE_ONEDNN_OPTS`` changes the numbers;
    the commands must compute what the Python API computes)."""
    if "tensorflow" in sys.modules:
        return
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        quiet = contextlib.nullcontext()
    else:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
        quiet = _filtered_stderr()
    with quiet:
        importlib.import_module("keras")
        tf = importlib.import_module("tensorflow")
        tf.config.list_physical_devices("GPU")  # the CUDA probe, here rather than at the first op


@contextlib.contextmanager
def _filtered_stderr():
    """Capture file descriptor 2 in the block (C++ writes included), then write back all
    but the start-up noise of ``_QUIET_LINE`` -- also when the block raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode(errors="replace").splitlines(keepends=True)
                    if not (line.startswith(_ABSL_PREAMBLE) or _QUIET_LINE.match(line))]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


def progress_verbosity(quiet):
    """Keras verbosity of a command's progress bars (on stderr): none with ``--quiet``, a
    live bar on a terminal, one line per bar otherwise (logs, pipes)."""
    return 0 if quiet else (1 if sys.stderr.isatty() else 2)
