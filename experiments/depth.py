"""Depth: 1-4 hidden layers of 500 units, pretrained vs random (Erhan et al. 2010).

Random initialisation is expected to degrade with depth, pretraining not. For one seed the
stacks of different depth share their lower layers (a layer is cached by the layers below
it, their settings, the seed and the data): the depths' rows are correlated, each depth's
comparison is not affected.
Writes results/depth.json and results/depth.png. Resumable.

  python experiments/depth.py
  python experiments/depth.py --quick --out /tmp/q
"""

from __future__ import annotations


from dbn import plots
from dbn import options as cli
from dbn.training.configs import RESULT_KEYS


def main(argv=None):
    p = cli.parser(__doc__, tune_dropout=True)
    p.add_argument("--depths", type=int, nargs="+", default=[1, 2, 3, 4])
    p.add_argument("--width", type=int, default=500)
    p.add_argument("--inits", nargs="+", default=["pretrained", "glorot"], choices=list(RESULT_KEYS))
    args = cli.parse_args(p, argv, depths=[1, 2], width=100)
    with cli.experiment(args, "depth") as exp:
        data = exp.data
        table, finished = {}, []

        def write(depth, runs):  # after every run: the finished depths and this one so far
            table[str(depth)] = {**cli.summary(runs), "layer_sizes": [784] + [args.width] * depth}
            all_runs = finished + [{**r, "depth": depth} for r in runs]
            exp.write({"depths": table, "runs": all_runs,
                       "complete": len(all_runs) == len(args.depths) * len(args.seeds) * len(args.inits)})
            done = [int(d) for d, row in table.items() if all(RESULT_KEYS[i] in row for i in args.inits)]
            if done:
                plots.errorbar_plot(
                    done, [[table[str(d)][RESULT_KEYS[i]]["mean"] * 100 for d in done] for i in args.inits],
                    [[(table[str(d)][RESULT_KEYS[i]]["std"] or 0.0) * 100 for d in done] for i in args.inits],
                    labels=[RESULT_KEYS[i] for i in args.inits], path=exp.out / f"{exp.name}.png",
                    xlabel="hidden layers", ylabel="test error (%)")

        for depth in args.depths:
            runs = cli.comparison(args, data, layer_sizes=[784] + [args.width] * depth, inits=args.inits,
                                  tag=f"{exp.tag}_{depth}", on_progress=lambda runs, d=depth: write(d, runs))
            finished += [{**r, "depth": depth} for r in runs]
        return table


if __name__ == "__main__":
    main()
