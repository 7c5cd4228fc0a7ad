"""``dbn finetune``: a classifier unrolled from a model directory's pretrained stack,
fine-tuned by backprop with early stopping on the validation split, saved into the
directory."""

from __future__ import annotations

import dataclasses

from dbn import options
from dbn.program import common, modeldir
from dbn import validation as check
from dbn.training.configs import FineTuneConfig

# An option for every FineTuneConfig field, named as in the experiments (dbn.options) where
# it has one, else after the field; not --refit (an experiment's second training on the
# training + validation labels, which `fine_tune` ignores).
FINETUNE_OPTIONS = {f.name: options.FINETUNE_OPTIONS.get(f.name, "--" + f.name.replace("_", "-"))
                    for f in dataclasses.fields(FineTuneConfig)
                    if f.name != "refit" and getattr(FineTuneConfig(), f.name) is not True}
FINETUNE_HELP = {**options.HELP, "learning_rate": "learning rate", "momentum": "SGD's momentum",
                 "max_epochs": "at most this many epochs",
                 "patience": "stop after this many epochs without a new best validation error "
                             "(the best epoch's weights are kept)",
                 "batch_size": "examples per update",
                 "plateau_patience": "see --plateau-factor"}

DESCRIPTION = """\
Unroll the pretrained stack of a model directory into a sigmoid classifier with a softmax
output (the DBN's weights and hidden biases initialise the hidden layers), fine-tune it
on the labelled training split with early stopping on the validation split, and save it
into the directory (model.json records the settings and the outcome).  The test set is
not touched: `dbn evaluate` scores it.  The data settings are the directory's
(recorded by dbn pretrain); --n-train may use fewer labels.

  dbn finetune runs/x
  dbn finetune runs/x --max-epochs 30 --dropout 0.2 0.5
"""


def add_parser(subparsers):
    p = subparsers.add_parser("finetune", help="fine-tune a classifier from a model directory's DBN",
                              description=DESCRIPTION)
    p.add_argument("directory", help="a model directory written by dbn pretrain")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the output layer's weights, the batches and dropout "
                        "(unset: the model's seed)")
    p.add_argument("--force", action="store_true", help="replace a classifier fine-tuned before")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-epoch progress lines")
    options.add_strategy_option(p, choices=("default", "mirrored", "multiworker"))
    g = p.add_argument_group("fine-tuning (defaults: FineTuneConfig)")
    options.config_options(g, FineTuneConfig(), FINETUNE_OPTIONS, help=FINETUNE_HELP)
    g.add_argument("--dropout", type=float, nargs="+", default=[0.0], metavar="RATE",
                   help="one rate: dropout on every hidden and output layer's input; two: "
                        "(input rate, hidden rate), also dropping pixels")
    common.add_data_options(p, validation=False,
                            n_train_help="use only the first N labelled training images "
                                         "(unset: the directory's setting)")
    return p


def prepare(args):
    if args.strategy == "multiworker":  # the cluster first: nothing else can start without it
        from dbn import distribute

        distribute.check_tf_config()
    config = common.config(FineTuneConfig(), FINETUNE_OPTIONS, args)
    modeldir.hold_lock(args, args.directory)  # before reading what it holds
    manifest = modeldir.open_model(args.directory, command="dbn finetune")
    kind = modeldir.kind(manifest)
    if kind == "generative":
        raise modeldir.ModelDirError(
            f"{args.directory} holds {modeldir.describe(manifest)}; dbn finetune fine-tunes a "
            "classifier from a DBN (dbn pretrain without --generative); the generative DBN's "
            "up-down fine-tuning is `dbn experiment dbn_generative`")
    if "classifier" in manifest["holds"] and not args.force:
        raise modeldir.ModelDirError(f"{args.directory} already holds a fine-tuned classifier; "
                                     "--force replaces it")
    seed = common.checked(check.check_seed, "--seed", manifest["seed"] if args.seed is None
                          else args.seed)
    settings = dict(manifest["data"])
    if args.n_train is not None:
        settings["n_train"] = common.checked(check.check_int, "--n-train", args.n_train, low=1)
    data = common.load_data({k: settings[k] for k in ("source", "name", "split_seed", "n_train",
                                                      "validation_size")})
    common.import_tensorflow()
    from dbn import distribute

    strategy = distribute.make_strategy(args.strategy)  # multiworker: before any TensorFlow op
    from dbn.models.classifier import dropout_rates  # imports TensorFlow

    try:
        dropout = dropout_rates(options.dropout(args))
    except ValueError as err:
        raise common.UsageError(common.renamed(err, {"dropout": "--dropout"})) from None
    stack = modeldir.load_dbn(args.directory, manifest)
    return {"args": args, "config": config, "dropout": dropout, "manifest": manifest,
            "seed": seed, "settings": settings, "data": data, "stack": stack, "strategy": strategy}


def run(plan):
    import time

    import keras

    from dbn.training.finetune import fine_tune

    args, data, config = plan["args"], plan["data"], plan["config"]
    dropout = plan["dropout"]
    keras.utils.set_random_seed(plan["seed"])
    strategy = plan["strategy"]
    with strategy.scope():
        model = plan["stack"].to_classifier(data.n_classes, dropout=dropout if dropout[0] else dropout[1],
                                            seed=plan["seed"])
    t0 = time.time()
    result = fine_tune(model, data.x_train, data.y_train, data.x_val, data.y_val, config,
                       seed=plan["seed"], verbose=0 if args.quiet else 2)
    seconds = time.time() - t0
    manifest = plan["manifest"]
    finetuning = {"config": config.to_dict(), "seed": plan["seed"], "dropout": list(dropout),
                  "data": {**plan["settings"], "train_labels": len(data.x_train),
                           "validation": len(data.x_val)},
                  "best_val_error": result["best_val_error"], "best_epoch": result["best_epoch"],
                  "epochs_run": result["epochs_run"], "stopped_early": result["stopped_early"],
                  "history": result["history"], "seconds": seconds,
                  "command": ["dbn", *args.argv],
                  "strategy": {"name": args.strategy, "replicas": strategy.num_replicas_in_sync}}
    if not strategy.extended.should_checkpoint:  # a worker other than the chief writes nothing
        return 0
    holds = [h for h in manifest["holds"] if h != "classifier"] + ["classifier"]
    modeldir.update(args.directory, manifest, holds=holds, finetuning=finetuning,
                    files={"classifier": ("classifier", ".keras", model.save)})
    print(f"dbn finetune: best validation error {result['best_val_error']:.4f} at epoch "
          f"{result['best_epoch']} of {result['epochs_run']} ({len(data.x_train)} labels, "
          f"{seconds:.0f} s); saved the classifier in {args.directory}")
    return 0

