"""DBN 784-500-500-2000-10 on MNIST: generative pretraining + fine-tuning vs random init.

Baselines use the same architecture, activations, optimiser, schedule and early stopping,
initialised with Keras' Glorot-uniform and with N(0, 0.01^2). Several seeds; Welch t-tests.
Writes results/dbn_mnist.json and results/dbn_mnist.png (rewritten after every finished
run, with "complete": false until all are done). Resumable: rerun the same command.

  python experiments/dbn_mnist.py                 # full run (hours on 2 cores)
  python experiments/dbn_mnist.py --quick --out /tmp/q
"""

from __future__ import annotations


from dbn import plots
from dbn import options as cli
from dbn.training.configs import RESULT_KEYS


def main(argv=None):
    p = cli.parser(__doc__, tune_dropout=True)
    p.add_argument("--layers", type=int, nargs="+", default=[500, 500, 2000])
    p.add_argument("--inits", nargs="+", default=list(RESULT_KEYS), choices=list(RESULT_KEYS))
    args = cli.parse_args(p, argv, layers=[100, 100, 200])
    with cli.experiment(args, "dbn_mnist") as exp:
        data, layer_sizes = exp.data, [784, *args.layers]

        def write(runs):
            results = cli.summary(runs)
            exp.write({**results, "complete": len(runs) == len(args.seeds) * len(args.inits), "runs": runs},
                      layer_sizes=layer_sizes)
            plots.learning_curves({f"{r['init']} seed {r['seed']}": r["val_error_curve"] for r in runs},
                                  path=exp.out / f"{exp.name}_val_error.png")
            plots.seed_points({k: [100 * e for e in results[k]["test_error"]] for k in results
                               if k in RESULT_KEYS.values()},
                              path=exp.out / f"{exp.name}_seeds.png", ylabel="test error (%)",
                              title="every seed (bar: mean)")

        return cli.comparison(args, data, layer_sizes=layer_sizes, inits=args.inits, tag=exp.tag,
                              on_progress=write)


if __name__ == "__main__":
    main()
