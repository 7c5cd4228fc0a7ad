"""Command-line options shared by the DBN experiment scripts (pretraining, fine-tuning,
quick mode), so every experiment spells them the same way."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path

from dbn import checkpoint

from dbn.dbn import HINTON_LAYER
from dbn.finetune import FineTuneConfig
from dbn.training import RBMTrainingConfig


DEFAULT_CHECKPOINT_DIR = Path(
    os.environ.get("DBN_CHECKPOINT_DIR", Path.home() / ".cache" / "dbn" / "checkpoints"))


def parser(description):
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("pretraining (every RBM layer)")
    g.add_argument("--pretrain-epochs", type=int, default=HINTON_LAYER.epochs)
    g.add_argument("--pretrain-lr", type=float, default=HINTON_LAYER.learning_rate)
    g.add_argument("--pretrain-k", type=int, default=HINTON_LAYER.k)
    g.add_argument("--pcd", action="store_true", help="persistent CD instead of CD-k")
    g.add_argument("--weight-decay", type=float, default=HINTON_LAYER.weight_decay)
    g = p.add_argument_group("fine-tuning (identical for every initialisation)")
    g.add_argument("--optimizer", choices=["sgd", "adam"], default="adam",
                   help="adam (default): SGD with lr 0.1 and momentum 0.9 left randomly "
                        "initialised sigmoid networks stuck at chance (measured)")
    g.add_argument("--lr", type=float, default=1e-3)
    g.add_argument("--momentum", type=float, default=0.9)
    g.add_argument("--max-epochs", type=int, default=100)
    g.add_argument("--patience", type=int, default=10)
    g.add_argument("--output-only-epochs", type=int, default=0,
                   help="train only the softmax layer for this many epochs first")
    g.add_argument("--plateau-factor", type=float, default=1.0,
                   help="multiply the learning rate by this after every --plateau-patience "
                        "epochs without a new best validation error (1 = constant)")
    g.add_argument("--plateau-patience", type=int, default=3)
    g.add_argument("--refit", action="store_true",
                   help="after early stopping, retrain from the same initial weights on the "
                        "training + validation labels for the best number of epochs, with the "
                        "rates that run used; report that network's test error")
    g.add_argument("--dropout", type=float, default=0.0)
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
    return p


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


@contextlib.contextmanager
def session(args):
    """The context every experiment runs in: logging on, ``--fresh`` applied."""
    setup_logging()
    with checkpoint.policy(fresh=bool(getattr(args, "fresh", False))):
        yield


def apply_quick(args, **overrides):
    """Shrink ``args`` in place for ``--quick`` (plus experiment-specific overrides)."""
    if args.quick:
        args.n_train, args.pretrain_epochs, args.max_epochs, args.patience = 2000, 2, 3, 2
        args.seeds = args.seeds[:2]
        for key, value in overrides.items():
            setattr(args, key, value)
    return args


def run_config(args, data, **extra):
    """The ``config`` recorded in a DBN experiment's JSON: every option, the resolved
    pretraining and fine-tuning settings and the data protocol."""
    return {**vars(args), "layer_config": layer_config(args).to_dict(),
            "finetune": finetune_config(args).to_dict(),
            "data": {"train_labels": len(data.x_train), "validation": len(data.x_val),
                     "test": len(data.x_test), "split_seed": 0,
                     "pretraining_images": len(data.x_train) + len(data.x_val)},
            **extra}


def layer_config(args):
    return RBMTrainingConfig(
        epochs=args.pretrain_epochs, learning_rate=args.pretrain_lr, final_learning_rate=None,
        k=args.pretrain_k, persistent=args.pcd, weight_decay=args.weight_decay,
    )


def finetune_config(args):
    return FineTuneConfig(
        optimizer=args.optimizer, learning_rate=args.lr, momentum=args.momentum,
        max_epochs=args.max_epochs, patience=args.patience,
        output_only_epochs=args.output_only_epochs, plateau_factor=args.plateau_factor,
        plateau_patience=args.plateau_patience, refit=args.refit,
    )
