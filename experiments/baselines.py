"""Reference networks beside the DBN: the ones our users learn first and a modern one.

Every network is trained on the 50,000 images of the training split, its epoch chosen on
the 10,000-image validation split, and scored once on the 10,000 test images (the DBN
experiments' split, seed 0). Nielsen's book reports the best epoch's accuracy *on the
test set*; that optimistic figure is recorded too (``best_test_epoch_error``), only to
compare with his anchors.

Rows (recipe, how it was tuned):
  nielsen_30     784-30-10 sigmoid, N(0, 1) init, quadratic cost, SGD batch 10, eta 3.0,
                 30 epochs (Nielsen, ch. 1; his values, not tuned)
  nielsen_100    784-100-10, same
  wide_sigmoid   784-2000-10 sigmoid, Adam, batch 1000, early stopping (rate tuned)
  relu_100       784-100-10 ReLU, Adam 1e-3, batch 32, 5 epochs (the lecture's recipe)
  modern         784-500-500-2000-10 ReLU, He init, batch norm, dropout 0.2 input / 0.5
                 hidden, Adam, early stopping (rate tuned)
"Rate tuned": each rate of --tune-lr is trained on seed --tune-seed and the lowest best
validation error chooses the rate for every seed. Every run checkpoints each epoch in a
verified run directory per (recipe, rate, seed): rerun the same command after a kill and
it resumes after the last finished epoch, with the numbers of an uninterrupted run.
Writes results/baselines.json: {"rows": [{"name", "recipe", "test_error": [...], "anchor", ...}]}.

  python experiments/baselines.py
  python experiments/baselines.py --quick --out /tmp/q
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from dbn import options as cli
from dbn.protocols.statistics import best_rate, extend_past_edge
from dbn.training.checkpoint import RunDir, fingerprint, run_path

RECIPES = {
    "nielsen_30": dict(hidden=[30], activation="sigmoid", init="nielsen", loss="quadratic",
                       optimizer="sgd", learning_rates=[3.0], batch_size=10, epochs=30,
                       early_stopping=False, anchor="95.42% accuracy (best epoch, Nielsen ch. 1)"),
    "nielsen_100": dict(hidden=[100], activation="sigmoid", init="nielsen", loss="quadratic",
                        optimizer="sgd", learning_rates=[3.0], batch_size=10, epochs=30,
                        early_stopping=False, anchor="96.59% accuracy (best epoch, Nielsen ch. 1)"),
    "wide_sigmoid": dict(hidden=[2000], activation="sigmoid", init="glorot", loss="crossentropy",
                         optimizer="adam", learning_rates=None, batch_size=1000, epochs=100,
                         early_stopping=True, anchor=None),
    "relu_100": dict(hidden=[100], activation="relu", init="glorot", loss="crossentropy",
                     optimizer="adam", learning_rates=[1e-3], batch_size=32, epochs=5,
                     early_stopping=False, anchor=None),
    "modern": dict(hidden=[500, 500, 2000], activation="relu", init="he", loss="crossentropy",
                   optimizer="adam", learning_rates=None, batch_size=100, epochs=100,
                   early_stopping=True, batch_norm=True, input_dropout=0.2, dropout=0.5,
                   anchor="modern reference"),
}
PATIENCE = 10  # epochs without a new best validation error before early stopping


def build(recipe, seed):
    """The Keras network of ``recipe`` (a ``RECIPES`` entry), seeded."""
    import keras

    keras.utils.set_random_seed(seed)
    init = {"nielsen": keras.initializers.RandomNormal(0.0, 1.0, seed=seed),
            "glorot": keras.initializers.GlorotUniform(seed=seed),
            "he": keras.initializers.HeNormal(seed=seed)}[recipe["init"]]
    bias = keras.initializers.RandomNormal(0.0, 1.0, seed=seed + 1) if recipe["init"] == "nielsen" else "zeros"
    layers = [keras.Input((784,))]
    if recipe.get("input_dropout"):
        layers.append(keras.layers.Dropout(recipe["input_dropout"], seed=seed))
    for i, n in enumerate(recipe["hidden"]):
        layers.append(keras.layers.Dense(n, kernel_initializer=init, bias_initializer=bias,
                                         use_bias=not recipe.get("batch_norm")))
        if recipe.get("batch_norm"):
            layers.append(keras.layers.BatchNormalization())
        layers.append(keras.layers.Activation(recipe["activation"]))
        if recipe.get("dropout"):
            layers.append(keras.layers.Dropout(recipe["dropout"], seed=seed + 10 + i))
    output = "sigmoid" if recipe["loss"] == "quadratic" else "softmax"
    layers.append(keras.layers.Dense(10, activation=output, kernel_initializer=init, bias_initializer=bias))
    return keras.Sequential(layers)


def quadratic_cost(y_true, y_pred):
    """Nielsen's C = 1/2 ||y - a||^2 per example (one-hot y), averaged over the batch."""
    import keras.ops as ops

    onehot = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), 10)
    return 0.5 * ops.sum(ops.square(onehot - y_pred), axis=-1)


LAST_FILE = "last.weights.h5"  # the network and its optimizer after the last finished epoch


def _dropout_generators(model):
    """The seed generators of the network's Dropout layers, in order: their states are not
    in the weights file, so a checkpoint keeps them beside it (the masks of a resumed run
    are the ones the uninterrupted run drew)."""
    return [layer.seed_generator for layer in model.layers if getattr(layer, "seed_generator", None)]


def train(recipe, learning_rate, seed, data, run=None):
    """Train one network; per-epoch validation and test errors, the validation-chosen
    epoch's test error and the wall time.  With ``run`` (an open ``RunDir``) every epoch
    is checkpointed (weights, optimizer, curves) and a killed run resumes after its last
    finished epoch, ending with the numbers of an uninterrupted one."""
    import keras

    model = build(recipe, seed)
    optimizer = (keras.optimizers.SGD(learning_rate) if recipe["optimizer"] == "sgd"
                 else keras.optimizers.Adam(learning_rate))
    loss = quadratic_cost if recipe["loss"] == "quadratic" else "sparse_categorical_crossentropy"
    model.compile(optimizer=optimizer, loss=loss, steps_per_execution=50)
    model.optimizer.build(model.trainable_variables)  # its variables exist before a load
    state = (run.state("progress") if run is not None else None) or {
        "epoch": 0, "val_error": [], "test_error": [], "best": None, "wait": 0, "seconds": 0.0}
    if state["epoch"]:
        model.load_weights(run.file(LAST_FILE))
        for generator, value in zip(_dropout_generators(model), state["dropout_seed_states"], strict=True):
            generator.state.assign(np.asarray(value, dtype=generator.state.dtype))
    val_error, test_error = state["val_error"], state["test_error"]
    for epoch in range(state["epoch"], recipe["epochs"]):
        if recipe["early_stopping"] and state["wait"] >= PATIENCE:
            break
        t0 = time.time()
        order = np.random.default_rng([seed, epoch]).permutation(len(data.x_train))
        model.fit(data.x_train[order], data.y_train[order], batch_size=recipe["batch_size"], epochs=1,
                  shuffle=False, verbose=0)
        for errors, x, y in ((val_error, data.x_val, data.y_val), (test_error, data.x_test, data.y_test)):
            errors.append(float(np.mean(np.argmax(model.predict(x, batch_size=2000, verbose=0), 1) != y)))
        if not np.isfinite(model.evaluate(data.x_val[:1000], data.y_val[:1000], verbose=0)):
            raise FloatingPointError(f"{recipe}: diverged at epoch {epoch + 1} (learning rate {learning_rate})")
        if state["best"] is None or val_error[-1] < val_error[state["best"]]:
            state.update(best=epoch, wait=0)
        else:
            state["wait"] += 1
        state.update(epoch=epoch + 1, seconds=state["seconds"] + time.time() - t0,
                     dropout_seed_states=[g.state.numpy().tolist() for g in _dropout_generators(model)])
        if run is not None:
            run.save(files={LAST_FILE: model.save_weights}, progress=state)
    best = state["best"]
    return {"val_error_curve": val_error, "test_error_curve": test_error, "best_epoch": best + 1,
            "val_error": val_error[best], "test_error": test_error[best],
            "best_test_epoch_error": float(min(test_error)), "seconds": state["seconds"],
            "learning_rate": learning_rate}


def cached_train(name, recipe, learning_rate, seed, data, checkpoint_dir):
    spec = {"what": "baseline", "name": name, "recipe": {k: v for k, v in recipe.items() if k != "anchor"},
            "learning_rate": learning_rate, "seed": seed,
            "data": fingerprint(data.x_train, data.y_train, data.x_val, data.y_val, data.x_test, data.y_test)}
    with RunDir(run_path(Path(checkpoint_dir) / "baselines", f"{name}_seed{seed}", spec), spec,
                what=f"baseline {name} seed {seed} lr {learning_rate:g}") as run:
        result = run.state("result")
        if result is None:
            result = train(recipe, learning_rate, seed, data, run)
            run.save(result=result, drop=[LAST_FILE])
        return result


def main(argv=None):
    p = cli.parser(__doc__)
    p.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    p.set_defaults(tune_lr=[3e-4, 1e-3, 3e-3])  # (a recipe of one rate is not tuned)
    args = cli.parse_args(p, argv, seeds=[0], n_train=3000, tune_lr=[1e-3, 3e-3])
    grid = args.tune_lr  # (checked by the parser)
    with cli.experiment(args, "baselines") as exp:
        data, rows = exp.data, []
        for name in args.recipes:
            recipe = dict(RECIPES[name])
            if args.quick:  # shrink every recipe for the CI run
                recipe.update(epochs=min(recipe["epochs"], 2), hidden=[min(n, 50) for n in recipe["hidden"]])
            rates = recipe["learning_rates"] or grid
            tuning = {}

            def tune(lr):  # the validation error of rate lr on the tuning seed
                tuning[str(lr)] = cached_train(name, recipe, lr, args.tune_seed, data, args.checkpoint_dir)["val_error"]
            if len(rates) > 1:
                for lr in rates:
                    tune(lr)
                extend_past_edge(tuning, args.tune_extend, tune)  # past a winning edge, as the DBN's grid
            lr = best_rate(tuning) if tuning else rates[0]
            runs = [cached_train(name, recipe, lr, seed, data, args.checkpoint_dir) for seed in args.seeds]
            rows.append({"name": name, "recipe": {k: v for k, v in recipe.items() if k != "anchor"},
                         "tuned": ({"grid": rates, "extend": args.tune_extend, "val_error": tuning,
                                    "seed": args.tune_seed}
                                   if tuning else "the recipe's own settings, not tuned"),
                         "learning_rate": lr, "test_error": [r["test_error"] for r in runs],
                         "best_test_epoch_error": [r["best_test_epoch_error"] for r in runs],
                         "val_error": [r["val_error"] for r in runs],
                         "best_epoch": [r["best_epoch"] for r in runs],
                         "train_seconds": [r["seconds"] for r in runs], "anchor": RECIPES[name]["anchor"]})
            print(f"{name}: test error {np.mean(rows[-1]['test_error']):.4f} over seeds {args.seeds} "
                  f"(lr {lr:g})", flush=True)
            exp.write({"rows": rows, "complete": len(rows) == len(args.recipes)})
        return exp.write({"rows": rows, "complete": True})


if __name__ == "__main__":
    main()
