"""DBN 784-500-500-2000-10 on MNIST: generative pretraining + fine-tuning vs random init.

Baselines use the same architecture, activations, optimiser, schedule and early stopping,
initialised with Keras' Glorot-uniform and with N(0, 0.01^2). Several seeds; Welch t-tests.
Writes results/dbn_mnist.json and results/dbn_mnist.png (rewritten after every finished
run, with "complete": false until all are done). Resumable: rerun the same command.

  python experiments/dbn_mnist.py                 # full run (hours on 2 cores)
  python experiments/dbn_mnist.py --quick --out /tmp/q
"""

from __future__ import annotations

import time
from pathlib import Path

from dbn import plots, provenance
from dbn import options as cli
from dbn import data as datasets
from dbn.protocols.comparison import RESULT_KEYS, compare, summarize_errors


def main(argv=None):
    p = cli.parser(__doc__)
    p.add_argument("--layers", type=int, nargs="+", default=[500, 500, 2000])
    p.add_argument("--inits", nargs="+", default=list(RESULT_KEYS), choices=list(RESULT_KEYS))
    args = cli.apply_quick(p.parse_args(argv), layers=[100, 100, 200])
    with cli.session(args):
        started, commit = time.time(), provenance.git_commit()
        data = datasets.load(n_train=args.n_train, seed=0)
        layer_sizes = [784, *args.layers]
        name = "dbn_mnist"
        out = Path(args.out)

        def write(runs):
            errors = {}
            for run in runs:
                errors.setdefault(RESULT_KEYS[run["init"]], []).append(run["test_error"])
            results, tests = summarize_errors(errors)
            payload = provenance.record(
                cli.run_config(args, data, layer_sizes=layer_sizes),
                seed=args.seeds, started=started, commit=commit,
                results={**results, "welch_t_tests": tests,
                         "complete": len(runs) == len(args.seeds) * len(args.inits), "runs": runs})
            provenance.write_json(out / f"{name}.json", payload)
            plots.learning_curves({f"{r['init']} seed {r['seed']}": r["val_error_curve"] for r in runs},
                                  path=out / f"{name}_val_error.png")

        runs = compare(data, layer_sizes=layer_sizes, layer_configs=cli.layer_config(args),
                       finetune_config=cli.finetune_config(args), seeds=args.seeds, inits=args.inits,
                       checkpoint_root=args.checkpoint_dir, tag=f"{name}{'_quick' if args.quick else ''}",
                       dropout=args.dropout, on_progress=write)
        return runs


if __name__ == "__main__":
    main()
