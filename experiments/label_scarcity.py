"""Label scarcity: does pretraining help more when labels are few?

Pretraining always uses all 60,000 training images without labels (the stacks are shared
with dbn_mnist when the settings match); fine-tuning uses a class-balanced budget of
labelled examples, or all 50,000 labels of the training split ("all": the other 10,000
are the validation split used for early stopping, identical for every budget).  An epoch
is at least --min-epoch-size examples (default 10,000: a budget of 100 labels is repeated
100 times per epoch), so early stopping's patience, the plateau schedule and --max-epochs
count the same amount of training at every budget; at "all" it repeats nothing and the
runs are dbn_mnist's.  --refit is not defined here (it would add the validation labels).
Writes results/label_scarcity.json and results/label_scarcity.png. Resumable.

  python experiments/label_scarcity.py
  python experiments/label_scarcity.py --quick --out /tmp/q
"""

from __future__ import annotations


from dbn import plots
from dbn import options as cli
from dbn.protocols.statistics import budget_key
from dbn.training.configs import RESULT_KEYS


def budget_arg(text):
    return None if text == "all" else int(text)


def main(argv=None):
    p = cli.parser(__doc__, tune_dropout=True)
    p.add_argument("--layers", type=int, nargs="+", default=[500, 500, 2000])
    p.add_argument("--budgets", type=budget_arg, nargs="+", default=[100, 1000, 10000, None],
                   help="labelled examples per run ('all' = the whole training split)")
    p.add_argument("--inits", nargs="+", default=["pretrained", "glorot"], choices=list(RESULT_KEYS))
    p.set_defaults(min_epoch_size=10_000)
    args = cli.parse_args(p, argv, layers=[100, 100, 200], budgets=[100, None], min_epoch_size=1000)
    with cli.experiment(args, "label_scarcity") as exp:
        data, layer_sizes = exp.data, [784, *args.layers]

        def write(runs):
            table = {}
            for budget in args.budgets:
                these = [r for r in runs if r["label_budget"] == budget]
                if these:
                    table[budget_key(budget)] = {**cli.summary(these), "n_labels": these[0]["n_labels"]}
            exp.write({"budgets": table, "runs": runs,
                       "complete": len(runs) == len(args.seeds) * len(args.budgets) * len(args.inits)},
                      layer_sizes=layer_sizes)
            rows = [b for b in table if all(RESULT_KEYS[i] in table[b] for i in args.inits)]
            if rows:
                plots.errorbar_plot(
                    [table[b]["n_labels"] for b in rows],
                    [[table[b][RESULT_KEYS[i]]["mean"] * 100 for b in rows] for i in args.inits],
                    [[(table[b][RESULT_KEYS[i]]["std"] or 0.0) * 100 for b in rows] for i in args.inits],
                    labels=[RESULT_KEYS[i] for i in args.inits], path=exp.out / f"{exp.name}.png",
                    xlabel="labelled training examples", ylabel="test error (%)", logx=True)

        return cli.comparison(args, data, layer_sizes=layer_sizes, inits=args.inits,
                              label_budgets=args.budgets, tag=exp.tag, on_progress=write)


if __name__ == "__main__":
    main()
