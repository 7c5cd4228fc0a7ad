"""Choose the fine-tuning protocol on the validation split (never the test set).

Fine-tunes the dbn_mnist network (784-500-500-2000-10) from its pretrained stack and from
Glorot-uniform initialisation under a few candidate protocols, for one seed, and records
each run's best validation error and epoch count.  Test errors are deliberately not
written: the protocol dbn_mnist uses is chosen from these numbers, and the test set is
then used once, by dbn_mnist.  Runs share dbn_mnist's cache, so the chosen protocol's
seed-0 runs are not trained twice.  Writes results/finetune_protocol.json.

  python experiments/finetune_protocol.py
  python experiments/finetune_protocol.py --quick --out /tmp/q
"""

from __future__ import annotations

import dataclasses

from dbn import options as cli
from dbn.training.configs import RESULT_KEYS

# Changes applied on top of the command line's fine-tuning settings.
CANDIDATES = {
    "constant": {},
    "plateau": {"plateau_factor": 0.5, "plateau_patience": 3},
}


def main(argv=None):
    p = cli.parser(__doc__)
    p.set_defaults(seeds=[0])
    p.add_argument("--layers", type=int, nargs="+", default=[500, 500, 2000])
    p.add_argument("--inits", nargs="+", default=["pretrained", "glorot"], choices=list(RESULT_KEYS))
    p.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    args = cli.parse_args(p, argv, layers=[100, 100, 200])
    if args.refit:
        p.error("--refit does not change validation errors, the only thing this experiment compares")
    from dbn.protocols.comparison import compare  # TensorFlow: after the options are parsed
    with cli.experiment(args, "finetune_protocol") as exp:
        data, layer_sizes = exp.data, [784, *args.layers]
        base = cli.finetune_config(args)
        table = {}
        for candidate in args.candidates:
            config = dataclasses.replace(base, **CANDIDATES[candidate])
            runs = compare(data, layer_sizes=layer_sizes, layer_configs=cli.layer_config(args),
                           finetune_config=config, seeds=args.seeds, inits=args.inits,
                           checkpoint_root=args.checkpoint_dir,
                           tag=f"{exp.tag}_{candidate}",
                           dropout=cli.dropout(args))
            table[candidate] = {
                "finetune": config.to_dict(),
                "runs": [{k: r[k] for k in ("seed", "init", "val_error", "best_epoch", "epochs_run",
                                            "finetune_seconds", "val_error_curve")} for r in runs],
            }
            exp.write({"candidates": table, "complete": len(table) == len(args.candidates)},
                      layer_sizes=layer_sizes)
        return table


if __name__ == "__main__":
    main()
