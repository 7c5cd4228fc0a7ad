"""Command-line options shared by the experiment scripts (pretraining, fine-tuning, run),
generated from the config dataclasses of ``dbn.training.configs``: their defaults are
the only ones (``config_options`` adds an option per field, ``config_from_args`` builds
the config back), so an option and its config cannot drift apart."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import dataclasses

from dbn import provenance
from dbn import validation as check
from dbn.data import splits
from dbn.training import checkpoint
from dbn.training.configs import HINTON_LAYER, OPTIMIZERS, PRECISIONS, FineTuneConfig

# Option names of the config fields (kept from the scripts' first versions: results and
# shell scripts use them).
LAYER_OPTIONS = {"epochs": "--pretrain-epochs", "learning_rate": "--pretrain-lr",
                 "k": "--pretrain-k", "persistent": "--pcd", "weight_decay": "--weight-decay",
                 "precision": "--pretrain-precision"}
FINETUNE_OPTIONS = {"optimizer": "--optimizer", "learning_rate": "--lr", "momentum": "--momentum",
                    "max_epochs": "--max-epochs", "patience": "--patience",
                    "output_only_epochs": "--output-only-epochs",
                    "plateau_factor": "--plateau-factor", "plateau_patience": "--plateau-patience",
                    "refit": "--refit", "precision": "--finetune-precision",
                    "min_epoch_size": "--min-epoch-size"}
HELP = {
    "persistent": "persistent CD instead of CD-k",
    "optimizer": "adam (default): SGD with lr 0.1 and momentum 0.9 left randomly initialised "
                 "sigmoid networks stuck at chance (measured)",
    "output_only_epochs": "train only the softmax layer for this many epochs first",
    "plateau_factor": "multiply the learning rate by this after every --plateau-patience epochs "
                      "without a new best validation error (1 = constant)",
    "refit": "after early stopping, retrain from the same initial weights on the training + "
             "validation labels for the best number of epochs, with the rates that run used; "
             "report that network's test error",
    "precision": "precision of the training matmuls (weights and updates stay float32)",
    "min_epoch_size": "repeat a smaller training set (whole copies) to at least this many "
                      "examples per epoch, so that patience, plateaus and --max-epochs count "
                      "comparable training for every label budget (0: one pass)",
}
CHOICES = {"optimizer": OPTIMIZERS, "precision": PRECISIONS}


def _dest(option):
    return option.lstrip("-").replace("-", "_")


def config_options(group, defaults, names, *, help=HELP):
    """Add one option per config field in ``names`` (field -> option string) to ``group``,
    its default the field's value in ``defaults`` (a config instance), its type the
    field's; booleans that default to False become flags.  ``parse_args`` builds the
    config from the parsed values, so a bad value stops the script before any work."""
    source = (defaults, names)  # marks the actions, for parse_args' check
    for field in dataclasses.fields(defaults):
        if field.name not in names:
            continue
        default = getattr(defaults, field.name)
        kwargs = {"default": default, "help": help.get(field.name)}
        if isinstance(default, bool):
            if default:
                raise ValueError(f"{field.name} defaults to True: a flag cannot turn it off")
            kwargs["action"] = "store_true"
        else:
            kwargs["type"] = _field_type(field)
            if field.name in CHOICES:
                kwargs["choices"] = list(CHOICES[field.name])
        action = group.add_argument(names[field.name], dest=_dest(names[field.name]), **kwargs)
        action.dbn_config = source


def _field_type(field):
    """int, float or str from a field's annotation (``"int | None"`` -> int)."""
    annotation = str(field.type)
    for kind in (int, float, str):
        if kind.__name__ in annotation:
            return kind
    raise TypeError(f"no command-line type for field {field.name}: {annotation}")


def config_from_args(defaults, names, args):
    """``defaults`` with the fields in ``names`` taken from the parsed ``args``."""
    return dataclasses.replace(defaults, **{f: getattr(args, _dest(o)) for f, o in names.items()})


DEFAULT_CHECKPOINT_DIR = Path(
    os.environ.get("DBN_CHECKPOINT_DIR", Path.home() / ".cache" / "dbn" / "checkpoints"))


def parser(description, *, tune_dropout=False):
    """The DBN experiments' options; ``tune_dropout``: also --tune-dropout (the scripts whose
    runs go through ``comparison``, which uses it)."""
    p = argparse.ArgumentParser(description=description, formatter_class=HelpFormatter)
    config_options(p.add_argument_group("pretraining (every RBM layer)"), HINTON_LAYER,
                   LAYER_OPTIONS)
    g = p.add_argument_group("fine-tuning (identical for every initialisation)")
    config_options(g, FineTuneConfig(), FINETUNE_OPTIONS)
    g.add_argument("--dropout", type=float, nargs="+", default=[0.0],
                   help="one rate: dropout on every hidden and output layer's input; two: "
                        "(input rate, hidden rate), also dropping pixels (Srivastava et al.: 0.2 0.5)")
    g.add_argument("--result-name", default=None,
                   help="write results/<name>.json (default: the experiment's name), e.g. "
                        "dbn_mnist_dropout for the dropout protocol")
    g.add_argument("--tune-lr", type=float, nargs="+", default=None,
                   help="choose each initialisation's learning rate from these on the validation "
                        "split (runs of --tune-seed), then run every seed at its own rate "
                        "(default: --lr for all)")
    g.add_argument("--tune-seed", type=int, default=0, help="the seed the rates are tuned on")
    g.add_argument("--tune-extend", type=int, default=0,
                   help="with --tune-lr: when an initialisation's best rate is the grid's largest "
                        "or smallest (strictly better than every other), try one more beyond it "
                        "(the edge times its ratio to its neighbour: 3e-3 -> 9e-3), at most this "
                        "many times")
    if tune_dropout:
        g.add_argument("--tune-dropout", nargs="+", default=None, metavar="RATE[,RATE]",
                       help="with --tune-lr: other dropout settings (a rate, or INPUT,HIDDEN as "
                            "--dropout's two) tried at each initialisation's chosen rate on "
                            "--tune-seed; the best on the validation split (ties: --dropout) runs "
                            "every seed")
    g = p.add_argument_group("run")
    g.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    g.add_argument("--n-train", type=int, default=None, help="subset of the training split")
    g.add_argument("--out", default="results")
    g.add_argument("--checkpoint-dir", default=str(DEFAULT_CHECKPOINT_DIR),
                   help="resume state (outside the work tree, so a fresh checkout keeps it; "
                        "env DBN_CHECKPOINT_DIR)")
    g.add_argument("--fresh", action="store_true",
                   help="discard the checkpoints this command uses (its runs and pretrained "
                        "layers) and recompute them")
    g.add_argument("--quick", action="store_true",
                   help="tiny end-to-end run (CI): 2,000 images, small layers, 1-2 epochs")
    add_strategy_option(g)
    return p


def add_strategy_option(group, choices=("default", "mirrored")):
    """``--strategy``: the tf.distribute strategy every model is made and trained under
    (``dbn.distribute.make_strategy``)."""
    notes = {"default": "one device", "mirrored": "data-parallel over every local GPU, else over "
             "the CPU's logical devices (one, unless dbn.distribute.split_cpu made more)",
             "multiworker": "data-parallel over the machines of TF_CONFIG (README: More than "
             "one machine)"}
    group.add_argument("--strategy", choices=list(choices), default="default",
                       help="tf.distribute strategy: " + "; ".join(f"{c}: {notes[c]}" for c in choices))


@contextlib.contextmanager
def strategy_scope(name="default"):
    """Make the strategy ``name`` (``dbn.distribute.STRATEGIES``) and enter its scope."""
    from dbn import distribute

    strategy = distribute.make_strategy(name)
    with strategy.scope():
        yield strategy


def setup_logging():
    """Show the package's messages (which checkpoint is reused or resumed, from where) on
    stderr, once per process."""
    logger = logging.getLogger("dbn")
    if not any(getattr(h, "_dbn", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._dbn = True
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def check_output_dir(path, option="--out"):
    """Refuse, before any work, an output directory that cannot be one (an existing file,
    or below one)."""
    if path is None:
        return
    for parent in [Path(path), *Path(path).parents]:
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"{option}={str(path)!r} is not allowed: {parent} is a file; "
                             "give a directory (created if missing)")


@dataclasses.dataclass
class Experiment:
    """What a DBN experiment script works with: its arguments, name, the data of the
    protocol (``n_train`` training labels, split seed 0), and the provenance of the run."""

    args: argparse.Namespace
    name: str
    started: float
    commit: str
    data: object

    @property
    def out(self):
        return Path(self.args.out)

    @property
    def tag(self):
        """Labels progress messages: the name, ``_quick`` in quick mode."""
        return self.name + ("_quick" if self.args.quick else "")

    def write(self, results, *, seed=None, **config):
        """Write ``<out>/<name>.json``: ``results`` with the run's config (``run_config``
        plus ``config``), seed (default: ``--seeds``), commit and wall time."""
        payload = provenance.record(run_config(self.args, self.data, **config),
                                    seed=self.args.seeds if seed is None else seed,
                                    started=self.started, commit=self.commit, results=results)
        provenance.write_json(self.out / f"{self.name}.json", payload)
        return payload


@contextlib.contextmanager
def experiment(args, name):
    """``session(args)`` plus the ``Experiment`` (started now, data loaded)."""
    with session(args):
        started, commit = time.time(), provenance.git_commit()
        name = getattr(args, "result_name", None) or name
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"--result-name={name!r} is not allowed: a plain file name without '/'")
        yield Experiment(args, name, started, commit, splits.load(n_train=args.n_train, seed=0))


@contextlib.contextmanager
def all_images_session(args):
    """``session(args)`` for the experiments that train on every training image (the
    autoencoders, logistic PCA): yields (start time, git commit, the data with no
    validation split, ``--n-train`` images)."""
    with session(args):
        started, commit = time.time(), provenance.git_commit()
        yield started, commit, splits.load(validation_size=0, n_train=args.n_train, seed=0)


@contextlib.contextmanager
def session(args):
    """The context every experiment runs in: ``--out`` checked, logging on, ``--fresh``
    applied, every model made under the ``--strategy`` scope."""
    check_output_dir(getattr(args, "out", None))
    setup_logging()
    with checkpoint.policy(fresh=bool(getattr(args, "fresh", False))), \
            strategy_scope(getattr(args, "strategy", "default")):
        yield


# The shrunken settings every DBN experiment's --quick starts from.
DBN_QUICK = {"n_train": 2000, "pretrain_epochs": 2, "max_epochs": 3, "patience": 2}


def apply_quick(args, base=None, *, keep=(), **overrides):
    """The one place ``--quick`` shrinks a script's parsed ``args`` (in place): ``base``
    (default ``DBN_QUICK``, and the first two ``--seeds`` where the script has them) then
    the script's own ``overrides``, except the options named in ``keep`` (given on the
    command line).  Every key must be an option of the script."""
    if args.quick:
        changes = dict(DBN_QUICK if base is None else base)
        if base is None and hasattr(args, "seeds"):
            changes["seeds"] = args.seeds[:2]
        changes.update(overrides)
        unknown = sorted(k for k in changes if not hasattr(args, k))
        if unknown:
            raise ValueError(f"--quick overrides {unknown}, which are not options of this script")
        for key, value in changes.items():
            if key not in keep:
                setattr(args, key, value)
    return args


def parse_args(parser, argv=None, base=None, **quick):
    """Parse ``argv``; with ``--quick``, ``apply_quick(base, **quick)`` replaces the
    defaults but never an option given a value of its own, and ``--out`` left at its
    default moves under the temporary directory (a quick run never overwrites the
    committed ``results/``)."""
    args = parser.parse_args(argv)
    given = given_options(parser, argv)
    if args.quick and "out" not in given and hasattr(args, "out"):
        args.out = str(Path(tempfile.gettempdir()) / "dbn-quick" / parser.get_default("out"))
    args = apply_quick(args, base, keep=given, **quick)
    _check_configs(parser, args)
    if hasattr(args, "tune_lr"):
        _check_tuning(parser, args)
    return args


def checked(parser, args, check_values):
    """``args`` after ``check_values(parser, args)`` (a script's checks of the values
    argparse cannot check), a ValueError ending the script as argparse does: one line,
    exit status 2, before any work."""
    try:
        check_values(parser, args)
    except ValueError as err:
        parser.error(str(err))
    return args


def _check_tuning(parser, args):
    """--tune-lr, --tune-seed and --tune-extend, refused as argparse does before any work."""
    try:
        if args.tune_lr is not None:
            check.check_rates("--tune-lr", args.tune_lr)
        check.check_seed("--tune-seed", args.tune_seed)
        check.check_int("--tune-extend", args.tune_extend, low=0)
    except ValueError as err:
        parser.error(str(err))
    if args.tune_extend and len(args.tune_lr or []) < 2:
        parser.error(f"--tune-extend {args.tune_extend}: needs --tune-lr with >= 2 rates (the step "
                     "past an edge is the ratio to its neighbour)")
    if getattr(args, "tune_dropout", None) is not None:
        if not args.tune_lr:
            parser.error("--tune-dropout: needs --tune-lr (each dropout is tried at its "
                         "initialisation's chosen rate)")
        try:
            settings = [dropout_setting(text) for text in args.tune_dropout]
            start = dropout(args)
        except ValueError as err:
            parser.error(str(err))
        rates = [(0.0, d) if isinstance(d, float) else d for d in [start, *settings]]
        if len(set(rates)) != len(rates):
            parser.error(f"--tune-dropout {' '.join(args.tune_dropout)}: allowed: settings without "
                         f"repeats, other than --dropout {' '.join(map(str, args.dropout))}")


def dropout_setting(text):
    """One --tune-dropout setting: "RATE" (a float) or "INPUT,HIDDEN" (a pair), every rate a
    finite number in [0, 1); else a ValueError naming it."""
    parts = str(text).split(",")
    try:
        rates = [float(part) for part in parts]
    except ValueError:
        rates = None
    if rates is None or len(rates) not in (1, 2):
        raise ValueError(f"--tune-dropout {text!r}: allowed: a rate, or INPUT,HIDDEN (two rates)")
    for rate in rates:
        check.check_float("--tune-dropout", rate, low=0.0, high=1.0, high_open=True)
    return rates[0] if len(rates) == 1 else tuple(rates)


def given_options(parser, argv=None):
    """The destinations of the options ``argv`` gives a value, including a value equal to
    the default (``--methods cg lbfgs adam`` is given, and ``--quick`` must not replace it):
    ``argv`` parsed again with every default suppressed."""
    actions = {action: action.default for action in parser._actions}
    defaults = dict(parser._defaults)
    try:
        for action in actions:
            action.default = argparse.SUPPRESS
        parser._defaults.clear()
        namespace, _ = parser.parse_known_args(argv)
    finally:
        for action, default in actions.items():
            action.default = default
        parser._defaults.update(defaults)
    return set(vars(namespace))


def _check_configs(parser, args):
    """Build every config whose fields are options of ``parser`` (``config_options``) from
    ``args``: a value the config refuses (``--lr -1``, ``--fast-lr`` with ``--temperatures``)
    ends the script as argparse does -- one line naming the option, exit status 2 -- before
    TensorFlow is imported or anything is written."""
    seen = set()
    for action in parser._actions:
        source = getattr(action, "dbn_config", None)
        if source is None or id(source) in seen:
            continue
        seen.add(id(source))
        try:
            config_from_args(*source, args)
        except ValueError as err:
            option = source[1].get(str(err).split("=", 1)[0])
            parser.error(f"{option}: {err}" if option else str(err))


def check_file_name(parser, option, name):
    """Refuse, as argparse does (one line, exit status 2), an output name ``<out>/<name>.json``
    that is not a plain file name."""
    if not name or "/" in name:
        parser.error(f"{option} {name!r}: allowed: a plain file name without '/'")


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The scripts' docstrings as written, and every option's default in ``--help``."""


def run_config(args, data, **extra):
    """The ``config`` recorded in a DBN experiment's JSON: every option, the resolved
    pretraining and fine-tuning settings and the data protocol."""
    return {**vars(args), "layer_config": layer_config(args).to_dict(),
            "finetune": finetune_config(args).to_dict(),
            "data": {"train_labels": len(data.x_train), "validation": len(data.x_val),
                     "test": len(data.x_test), "split_seed": 0,
                     "pretraining_images": len(data.x_train) + len(data.x_val)},
            **extra}


def comparison(args, data, **compare_kwargs):
    """The pretrained-vs-random runs of an experiment: ``compare`` at ``--lr`` for every
    initialisation or, with ``--tune-lr``, ``compare_tuned`` (each initialisation at its
    own rate, chosen on the validation split; every run records ``learning_rate`` and the
    validation errors behind the choice, ``tuning_val_error``)."""
    from dbn.protocols.comparison import compare, compare_tuned

    common = dict(layer_configs=layer_config(args), finetune_config=finetune_config(args),
                  seeds=args.seeds, checkpoint_root=args.checkpoint_dir, dropout=dropout(args),
                  **compare_kwargs)
    if not args.tune_lr:
        return compare(data, **common)
    return compare_tuned(data, learning_rates=args.tune_lr, tune_seed=args.tune_seed,
                         extend=args.tune_extend,
                         dropouts=[dropout_setting(t) for t in getattr(args, "tune_dropout", None) or []],
                         **common)[0]


def summary(runs):
    """The statistics of ``runs`` (``comparison``'s, all of one label budget and
    architecture): per initialisation (result keys) the mean, std and failed runs, the
    Welch tests (``summarize_errors``) and, with --tune-lr, ``tuning``: each
    initialisation's chosen rate and the validation errors behind the choice,
    ``{result key: {"chosen": rate, "val_error": {rate: error}}}``, with --tune-dropout
    also ``"dropout": {"chosen": setting, "val_error": {setting label: error}}``."""
    from dbn.protocols.statistics import summarize_errors
    from dbn.training.configs import RESULT_KEYS

    errors = {}
    for run in runs:
        errors.setdefault(RESULT_KEYS[run["init"]], []).append(run["test_error"])
    per_init, tests = summarize_errors(errors)
    tuning = {RESULT_KEYS[r["init"]]: {"chosen": r["learning_rate"], "val_error": r["tuning_val_error"],
                                       **({"dropout": {"chosen": r["dropout"],
                                                       "val_error": r["tuning_dropout_val_error"]}}
                                          if "tuning_dropout_val_error" in r else {})}
              for r in runs if "learning_rate" in r}
    return {**per_init, "welch_t_tests": tests, **({"tuning": tuning} if tuning else {})}


def dropout(args):
    """``--dropout`` as ``compare`` takes it: one rate as a number (the keys of runs cached
    before pairs existed), two as a pair (input, hidden); anything else a ValueError."""
    rates = list(args.dropout)
    if len(rates) not in (1, 2):
        raise ValueError(f"--dropout {' '.join(map(str, rates))}: allowed: one rate, or two "
                         "(input rate, hidden rate)")
    return rates[0] if len(rates) == 1 else tuple(rates)


def layer_config(args):
    """The pretraining config of every layer: ``HINTON_LAYER`` with the options given."""
    return config_from_args(HINTON_LAYER, LAYER_OPTIONS, args)


def finetune_config(args):
    """The fine-tuning config: ``FineTuneConfig()`` with the options given."""
    return config_from_args(FineTuneConfig(), FINETUNE_OPTIONS, args)
