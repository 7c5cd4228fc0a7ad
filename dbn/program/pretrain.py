"""``dbn pretrain``: greedy layer-wise pretraining of a DBN (or one RBM), written to a new
model directory."""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

from dbn import options
from dbn import validation as check
from dbn.program import common, modeldir
from dbn.training.configs import HINTON_LAYER, RBMTrainingConfig

# An option for every RBMTrainingConfig field but n_hidden (--layers): named as in
# experiments/train_rbm.py where it has one, else after the field (a field added to the
# config gets its option here without an edit; a bool defaulting to True cannot be a flag).
OPTION_NAMES = {"learning_rate": "--lr", "final_learning_rate": "--final-lr",
                "persistent": "--pcd", "n_chains": "--chains",
                "fast_learning_rate": "--fast-lr", "n_temperatures": "--temperatures"}
LAYER_OPTIONS = {f.name: OPTION_NAMES.get(f.name, "--" + f.name.replace("_", "-"))
                 for f in dataclasses.fields(RBMTrainingConfig)
                 if f.name != "n_hidden" and getattr(HINTON_LAYER, f.name) is not True}
LAYER_HELP = {
    "epochs": "training epochs of each layer",
    "batch_size": "images per update",
    "learning_rate": "learning rate (the first update's when --final-lr is given)",
    "final_learning_rate": "learning rate reached linearly by the last update (unset: constant --lr)",
    "initial_momentum": "momentum of the first --momentum-switch-epoch epochs",
    "final_momentum": "momentum after them",
    "momentum_switch_epoch": "epoch at which the momentum switches to --final-momentum",
    "k": "Gibbs steps of CD-k / PCD-k (the first epoch's when --final-k is given)",
    "final_k": "k rises linearly to this by the last epoch (unset: constant --k)",
    "persistent": "persistent contrastive divergence instead of CD-k",
    "n_chains": "persistent chains (--pcd)",
    "weight_decay": "L2 cost on the weights only",
    "sparsity_target": "Hinton's sparsity target for the hidden units' mean activation (unset: off)",
    "sparsity_cost": "weight of the sparsity penalty",
    "fast_learning_rate": "FPCD: learning rate of the fast weights (needs --pcd; unset: off)",
    "fast_decay": "FPCD: the fast weights shrink by this factor every update",
    "n_temperatures": "parallel tempering with this many temperatures (needs --pcd; 1: off)",
    "hidden_units": "hidden unit type: bernoulli, or gaussian (linear with unit-variance noise)",
    "precision": "precision of the training matmuls (weights and updates stay float32)",
}

DESCRIPTION = """\
Greedy layer-wise pretraining (Hinton, Osindero & Teh 2006): one RBM per hidden layer,
the first on pixels binarized stochastically anew every epoch, each higher one on the
hidden probabilities of the layer below.  Pretraining uses no labels and sees the
training and validation images, as the experiments do.  Writes a model directory
(model.json + weights); `--layers 500` trains a single RBM.

With --generative the top RBM also models a one-hot label (the 2006 paper's
784-500-500-(2000 + 10) model): `dbn sample` then draws class-conditional digits and
`dbn evaluate` scores its generative classifier.

  dbn pretrain --layers 500 500 2000 --out runs/x
  dbn pretrain --layers 20 20 --epochs 1 --n-train 500 --out /tmp/tiny
"""


def add_parser(subparsers):
    p = subparsers.add_parser("pretrain", help="greedy DBN pretraining into a model directory",
                              description=DESCRIPTION)
    p.add_argument("--layers", type=int, nargs="+", default=[500, 500, 2000], metavar="N",
                   help="hidden layer sizes, bottom to top (one size: a single RBM)")
    p.add_argument("--out", required=True, default=argparse.SUPPRESS,
                   help="the model directory to write")
    p.add_argument("--force", action="store_true",
                   help="replace --out if it already holds a model directory")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and of training")
    p.add_argument("--generative", action="store_true",
                   help="a generative DBN: the top RBM models [features, one-hot label] "
                        "(needs two or more --layers)")
    p.add_argument("--checkpoint-dir", default=None, metavar="DIR",
                   help="layer cache: resume a killed run and reuse layers pretrained with the "
                        "same settings and data, under DIR/pretrain (the experiments use "
                        f"{options.DEFAULT_CHECKPOINT_DIR}); unset: no cache")
    p.add_argument("--fresh", action="store_true",
                   help="with --checkpoint-dir: discard the cached layers this run would use "
                        "(a corrupt or half-written cache entry) and train them anew")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-epoch progress lines")
    options.add_strategy_option(p, choices=("default", "mirrored", "multiworker"))
    options.config_options(p.add_argument_group("pretraining (every layer; defaults: HINTON_LAYER)"),
                           HINTON_LAYER, LAYER_OPTIONS, help=LAYER_HELP)
    common.add_data_options(p)
    return p


def prepare(args):
    """Every check before any work or any file: the options, --out, the data."""
    layers = common.checked(check.IntegerSequence(1), "--layers", list(args.layers))
    seed = common.checked(check.check_seed, "--seed", args.seed)
    layer_config = common.config(HINTON_LAYER, LAYER_OPTIONS, args)
    if args.generative and len(layers) < 2:
        raise common.UsageError(f"--layers {' '.join(map(str, layers))} with --generative: a "
                                "generative DBN needs at least two hidden layers (the top RBM "
                                "models the layer below it with the label)")
    if args.checkpoint_dir is not None:
        for parent in [Path(args.checkpoint_dir), *Path(args.checkpoint_dir).parents]:
            if parent.exists() and not parent.is_dir():
                raise common.UsageError(f"--checkpoint-dir={args.checkpoint_dir!r} is not allowed: "
                                        f"{parent} is a file")
    if args.fresh and args.checkpoint_dir is None:
        raise common.UsageError("--fresh without --checkpoint-dir is not allowed: there is no "
                                "layer cache to discard")
    if args.strategy == "multiworker":
        from dbn import distribute

        distribute.check_tf_config()
        if args.checkpoint_dir is not None:
            raise common.UsageError("--checkpoint-dir with --strategy multiworker is not allowed: "
                                    "the workers cannot resume from one cache in step")
    modeldir.hold_lock(args, args.out)  # first: what is checked next cannot change under us
    out = modeldir.check_new(args.out, force=args.force)
    settings = common.data_settings(args.n_train, args.validation_size)
    data = common.load_data(settings)
    return {"args": args, "layers": layers, "seed": seed, "layer_config": layer_config,
            "out": out, "settings": settings, "data": data}


def run(plan):
    common.import_tensorflow()
    args = plan["args"]
    with options.strategy_scope(args.strategy) as strategy:  # multiworker: before any op
        if strategy.extended.should_checkpoint:
            return _run(plan, strategy, plan["out"])
        # A worker other than the chief trains in step and writes nowhere it matters.
        with tempfile.TemporaryDirectory() as tmp:
            return _run(plan, strategy, Path(tmp) / "model")


def _run(plan, strategy, out):
    import numpy as np
    import keras

    from dbn.training import checkpoint

    args, data, seed = plan["args"], plan["data"], plan["seed"]
    sizes = [data.x_train.shape[1], *plan["layers"]]
    kind = "generative" if args.generative else ("rbm" if len(sizes) == 2 else "dbn")
    cache = Path(args.checkpoint_dir) if args.checkpoint_dir is not None else None
    if cache is not None:
        options.setup_logging()
    x_unlabelled = np.concatenate([data.x_train, data.x_val])
    verbose = 0 if args.quiet else 2
    keras.utils.set_random_seed(seed)
    timings, t0 = {}, time.time()
    try:
        with checkpoint.policy(fresh=args.fresh):
            model = _pretrain(kind, sizes, plan, data, x_unlabelled, cache, verbose, timings)
    except (checkpoint.CheckpointCorruptError, checkpoint.CheckpointMismatchError,
            checkpoint.CheckpointInUseError) as err:  # the layer cache: the user's to fix
        raise common.UsageError(str(err)) from err
    seconds = time.time() - t0
    layer_configs = (model.layer_configs if kind != "generative"
                     else [*model.lower.layer_configs, model.top_config])
    settings = {**plan["settings"], "train_labels": len(data.x_train), "validation": len(data.x_val),
                "test": len(data.x_test),
                "pretraining_images": len(x_unlabelled),
                "pretraining_labels": len(data.x_train) if kind == "generative" else 0}
    manifest = modeldir.new_manifest(
        kind=kind, layer_sizes=sizes, n_classes=data.n_classes, seed=seed, data=settings,
        pretraining={"layer_configs": [c.to_dict() for c in layer_configs], "sample_hidden": False,
                     "seconds": seconds, "timings": timings,
                     "command": ["dbn", *args.argv],
                     "strategy": {"name": args.strategy, "replicas": strategy.num_replicas_in_sync}})
    with modeldir.create(out, manifest) as tmp:
        if kind == "generative":
            model.save(tmp / modeldir.GENERATIVE_DIR)
            for key, name in (("generative_top", "top.keras"), ("generative_weights", "weights.npz")):
                path = f"{modeldir.GENERATIVE_DIR}/{name}"
                manifest["files"][key] = {"path": path, "sha256": _sha(tmp / path)}
        else:
            model.save(tmp / modeldir.DBN_DIR)
            manifest["files"][modeldir.DBN_DIR] = {
                "path": modeldir.DBN_DIR, "directory": True,
                "sha256": _sha(tmp / modeldir.DBN_DIR / "manifest.json")}
    print(f"dbn pretrain: {modeldir.describe(manifest)} pretrained in {seconds:.0f} s on "
          f"{len(x_unlabelled)} images; wrote {out}")
    return 0


def _pretrain(kind, sizes, plan, data, x_unlabelled, cache, verbose, timings):
    """The pretrained DBN (or generative DBN) of ``plan``, through the layer cache if any."""
    from dbn.models.dbn import DBN
    from dbn.models.generative import GenerativeDBN

    if kind == "generative":
        model = GenerativeDBN(sizes, n_classes=data.n_classes, layer_configs=plan["layer_config"],
                              seed=plan["seed"])
        model.pretrain(data.x_train, data.y_train, x_unlabelled=x_unlabelled,
                       checkpoint_dir=None if cache is None else cache / "generative",
                       layer_cache=None if cache is None else cache / "pretrain",
                       verbose=verbose, timings=timings)
    else:
        model = DBN(sizes, layer_configs=plan["layer_config"], seed=plan["seed"])
        model.pretrain(x_unlabelled, checkpoint_dir=None if cache is None else cache / "pretrain",
                       verbose=verbose, timings=timings)
    return model


def _sha(path):
    from dbn.provenance import sha256_file

    return sha256_file(path)
