"""Hinton, Osindero & Teh (2006): generative DBN with joint label units, class-conditional
digits, up-down fine-tuning, the paper's protocol in full.

784-500-500-(2000 + 10 labels). Steps (each resumable; rerun the same command after a kill):

1. greedy pretraining (lower layers on all 60,000 training images, the labelled top RBM on
   the 50,000 labelled images of the training split);
2. tuning of the up-down learning rate, momentum and weight cost on the validation split:
   every combination of --updown-lr x --updown-momentum x --updown-weight-decay runs
   --updown-tune-epochs up-down epochs (k = 3) from the pretrained weights; the lowest mean
   validation error of the last three epochs wins (a single combination: no tuning);
3. --updown-epochs up-down epochs (thirds with k = 3, 6, 10) on the 50,000 images with the
   chosen values, the validation error logged per epoch;
4. the paper's continuation: up-down on all 60,000 labelled images (k = 10) until the
   generative classifier's error on those 60,000 is no higher than its final error on the
   50,000 of step 3 (at most --continue-epochs epochs);
5. test errors after steps 1, 3 and 4: deterministic up-pass + lowest free energy (the
   paper's best), and the stochastic up-pass (--stochastic-repeats passes, mean label
   log-probability);
6. sample quality: 1,000 samples per class with the label clamped, judged by dbn_mnist's
   fine-tuned pretrained classifier of the same seed under the fine-tuning options given
   (our best, dbn_mnist's tuned pretrained seed: --plateau-factor 0.5 --refit --lr 3e-3,
   1.11% test error, cached by dbn_mnist); the judge's confidence
   per class and the least convincing samples.

Writes results/dbn_generative.json, results/dbn_generative_samples.npz (100 per class,
uint8 = probability x 255), results/dbn_generative_grid.png (one row per class),
results/dbn_generative_chain.png, results/dbn_generative_worst.png (per class the 10
samples the judge finds least like their label) and results/dbn_generative_val_error.png.

  python experiments/dbn_generative.py --plateau-factor 0.5 --refit
  python experiments/dbn_generative.py --quick --out /tmp/q
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from pathlib import Path

import numpy as np

from dbn import plots, provenance
from dbn import options as cli
from dbn.training.checkpoint import RunDir, fingerprint, run_path
from dbn.training.configs import UpDownConfig

TUNE_WINDOW = 3  # candidates are scored by the mean validation error of their last epochs


def tune(model, data, grid, checkpoint_dir):
    """Each candidate ``UpDownConfig`` of ``grid`` from the model's current weights, scored
    by its mean validation error over the last ``TUNE_WINDOW`` epochs (None if it
    diverged); the model's weights are restored afterwards.  The table is kept in a run
    directory of its own (a few kB, keyed by the model, the grid and the data), so a
    finished tuning is reused without the candidates' checkpoints."""
    spec = {"what": "up_down_tuning", "model": model.cache_key, "window": TUNE_WINDOW,
            "grid": [c.cache_settings() for c in grid],
            "initial_weights": fingerprint(*(v.numpy() for v in model._variables())),
            "data": fingerprint(data.x_train, data.y_train),
            "validation": fingerprint(data.x_val, data.y_val)}
    with RunDir(run_path(checkpoint_dir, "tuning", spec), spec, what="up-down tuning") as run:
        tuning = run.state("tuning")
        if tuning is not None:
            return tuning
        start, tuning = [v.numpy().copy() for v in model._variables()], []
        for config in grid:
            for v, value in zip(model._variables(), start):
                v.assign(value)
            try:
                history = model.up_down(data.x_train, data.y_train, config,
                                        checkpoint_dir=checkpoint_dir,
                                        validation=(data.x_val, data.y_val))
                score = float(np.mean(history["val_error"][-TUNE_WINDOW:]))
            except FloatingPointError as err:  # a diverged candidate loses, and is reported
                history, score = {"diverged": str(err)}, None
            tuning.append({"config": config.cache_settings(), "score": score,
                           "val_error": history.get("val_error")})
        for v, value in zip(model._variables(), start):
            v.assign(value)
        run.save(tuning=tuning)
        return tuning


def main(argv=None):
    p = cli.parser(__doc__)
    p.add_argument("--layers", type=int, nargs="+", default=[500, 500, 2000])
    g = p.add_argument_group("up-down")
    g.add_argument("--updown-epochs", type=int, default=300)
    g.add_argument("--updown-lr", type=float, nargs="+", default=[0.003, 0.01],
                   help="learning rates tuned on the validation split")
    g.add_argument("--updown-momentum", type=float, nargs="+", default=[0.5, 0.9])
    g.add_argument("--updown-weight-decay", type=float, nargs="+", default=[0.0, 2e-4])
    g.add_argument("--updown-tune-epochs", type=int, default=8)
    g.add_argument("--updown-binarization", choices=["stochastic", "none"], default="stochastic",
                   help="wake-phase pixels: binarized anew every epoch, or the grey levels as "
                        "probabilities (the paper's data)")
    g.add_argument("--continue-epochs", type=int, default=100,
                   help="cap of the continuation on all 60,000 labelled images")
    g.add_argument("--stochastic-repeats", type=int, default=20)
    g = p.add_argument_group("samples")
    g.add_argument("--gibbs-steps", type=int, default=1000)
    g.add_argument("--samples-per-class", type=int, default=1000)
    args = cli.parse_args(p, argv, layers=[200, 200, 500], updown_epochs=3,
                          updown_lr=[0.01], updown_momentum=[0.0, 0.5], updown_weight_decay=[0.0],
                          updown_tune_epochs=3,
                          continue_epochs=2, stochastic_repeats=3, gibbs_steps=100,
                          samples_per_class=50, pretrain_epochs=8, n_train=5000)
    grid = [UpDownConfig(epochs=args.updown_tune_epochs, learning_rate=lr, momentum=m, weight_decay=wd,
                         k_schedule=(3,), binarization=args.updown_binarization)
            for lr, m, wd in itertools.product(args.updown_lr, args.updown_momentum,
                                              args.updown_weight_decay)]
    for name in ("updown_epochs", "continue_epochs", "stochastic_repeats", "gibbs_steps",
                 "samples_per_class"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')}={getattr(args, name)}: allowed: an integer >= 1")
    if args.updown_tune_epochs < TUNE_WINDOW and len(grid) > 1:
        p.error(f"--updown-tune-epochs={args.updown_tune_epochs}: allowed: >= {TUNE_WINDOW} when tuning "
                f"(candidates are scored on their last {TUNE_WINDOW} epochs)")
    # TensorFlow: after the options are parsed, so --help and option errors are instant.
    from dbn.models.generative import GenerativeDBN
    from dbn.protocols.comparison import compare, load_classifier

    with cli.experiment(args, "dbn_generative") as exp:
        seed, data, layer_sizes = args.seeds[0], exp.data, [784, *args.layers]
        out, ckpt, tag = exp.out, Path(args.checkpoint_dir), exp.tag
        timings = {}

        def test_errors(model):
            return {"deterministic": model.error_rate(data.x_test, data.y_test),
                    "stochastic": model.error_rate(data.x_test, data.y_test, stochastic=True,
                                                   repeats=args.stochastic_repeats, seed=seed)}

        model = GenerativeDBN(layer_sizes, layer_configs=cli.layer_config(args), seed=seed)
        # Lower layers: all 60,000 training images without labels, from the layer cache shared
        # with dbn_mnist; the labelled top RBM: the 50,000 labelled training images.
        model.pretrain(data.x_train, data.y_train, x_unlabelled=np.concatenate([data.x_train, data.x_val]),
                       checkpoint_dir=ckpt / tag, layer_cache=ckpt / "pretrain", timings=timings)
        errors = {"pretrained": test_errors(model)}

        # Step 2: tuning on the validation split, every candidate from the pretrained weights.
        t0 = time.time()
        tuning = tune(model, data, grid, ckpt / tag) if len(grid) > 1 else []
        timings["tuning_seconds"] = time.time() - t0
        scored = [t for t in tuning if t["score"] is not None]
        best = min(scored, key=lambda t: t["score"])["config"] if scored else grid[0].to_dict()

        # Step 3: the long run on the training split.
        updown = dataclasses.replace(grid[0], epochs=args.updown_epochs, k_schedule=(3, 6, 10),
                                     learning_rate=best["learning_rate"],
                                     momentum=best.get("momentum", 0.0),
                                     weight_decay=best.get("weight_decay", 0.0))
        history = model.up_down(data.x_train, data.y_train, updown, checkpoint_dir=ckpt / tag,
                                validation=(data.x_val, data.y_val))
        timings["up_down_seconds"] = float(sum(history["epoch_seconds"]))
        errors["up_down"] = test_errors(model)
        final_train_error = model.error_rate(data.x_train, data.y_train)
        common = dict(seed=seed, layer_sizes=layer_sizes, up_down=updown.to_dict())
        so_far = {"generative_test_error_before_up_down": errors["pretrained"]["deterministic"],
                  "generative_test_error_up_down": errors["up_down"]["deterministic"],
                  "final_train_error_50k": final_train_error,
                  "tuning": tuning, "chosen": best, "up_down_history": history}
        # Written now, marked partial: the continuation and the samples take hours more, and
        # a run stopped in them keeps the up-down's test errors.
        exp.write({**so_far, "test_errors": errors, "timing": timings, "complete": False}, **common)
        print(f"generative test error {errors['pretrained']['deterministic']:.4f} pretrained -> "
              f"{errors['up_down']['deterministic']:.4f} after {updown.epochs} up-down epochs "
              f"(stochastic up-pass {errors['up_down']['stochastic']:.4f}); training error "
              f"{final_train_error:.4f}", flush=True)

        # Step 4: continue on all 60,000 labelled images until their error matches.
        x_all = np.concatenate([data.x_train, data.x_val])
        y_all = np.concatenate([data.y_train, data.y_val])
        continuation = dataclasses.replace(updown, epochs=args.continue_epochs,
                                           k_schedule=(updown.k_schedule[-1],))
        continued = model.up_down(x_all, y_all, continuation, checkpoint_dir=ckpt / tag,
                                  stop_at_train_error=final_train_error)
        timings["continuation_seconds"] = float(sum(continued["epoch_seconds"]))
        errors["continued"] = test_errors(model)

        # Step 6: the judge, dbn_mnist's fine-tuned pretrained classifier (shared checkpoint).
        judge_tag = "dbn_mnist" + ("_quick" if args.quick else "")
        (judge_run,) = compare(data, layer_sizes=layer_sizes, layer_configs=cli.layer_config(args),
                               finetune_config=cli.finetune_config(args), seeds=[seed],
                               inits=["pretrained"], checkpoint_root=ckpt, tag=judge_tag)
        judge = load_classifier(ckpt, judge_run["run_dir"])

        labels = np.repeat(np.arange(data.n_classes), args.samples_per_class)
        t0 = time.time()
        images = model.generate(labels, gibbs_steps=args.gibbs_steps, seed=seed,
                                verbose=0 if args.quick else 2)
        timings["generate_seconds"] = time.time() - t0
        probabilities = judge.predict(images, batch_size=1000, verbose=0)
        predicted = np.argmax(probabilities, axis=1)
        confidence = probabilities[np.arange(len(labels)), labels]  # the judge's p(clamped label)
        per_class = [float(np.mean(predicted[labels == c] == c)) for c in range(data.n_classes)]

        keep = np.concatenate([np.flatnonzero(labels == c)[:100] for c in range(data.n_classes)])
        provenance.save_npz(out / "dbn_generative_samples.npz",
                            images=np.round(images[keep] * 255).astype(np.uint8), labels=labels[keep])
        grid_rows = np.concatenate([np.flatnonzero(labels == c)[:10] for c in range(data.n_classes)])
        plots.image_grid(images[grid_rows], n_rows=data.n_classes, path=out / "dbn_generative_grid.png",
                         title=f"label clamped per row, {args.gibbs_steps} Gibbs steps")
        worst = np.concatenate([np.flatnonzero(labels == c)[np.argsort(confidence[labels == c])[:10]]
                                for c in range(data.n_classes)])
        plots.image_grid(images[worst], n_rows=data.n_classes, path=out / "dbn_generative_worst.png",
                         title="per class, the 10 samples the judge finds least like their label")
        strip_labels = np.arange(data.n_classes)
        _, chain = model.generate(strip_labels, gibbs_steps=args.gibbs_steps, seed=seed + 1,
                                  return_chain=max(1, args.gibbs_steps // 10))
        plots.image_grid(chain.transpose(1, 0, 2).reshape(-1, chain.shape[-1]), n_rows=data.n_classes,
                         path=out / "dbn_generative_chain.png",
                         title=f"one chain per class, every {max(1, args.gibbs_steps // 10)} steps")
        plots.learning_curves({"up-down, validation split": history["val_error"]},
                              path=out / "dbn_generative_val_error.png")
        payload = exp.write(
            {**so_far,
             "generative_test_error": errors["continued"]["deterministic"],
             "test_errors": errors,
             "continuation_epochs": len(continued["k"]),
             "conditional_accuracy": {"overall": float(np.mean(predicted == labels)),
                                      "per_class": per_class},
             "judge_confidence": {"mean_per_class": [float(np.mean(confidence[labels == c]))
                                                     for c in range(data.n_classes)],
                                  "std_per_class": [float(np.std(confidence[labels == c]))
                                                    for c in range(data.n_classes)]},
             "continuation_history": continued, "timing": timings, "complete": True},
            **common, continuation=continuation.to_dict(),
            judge=f"{judge_tag} seed {seed} pretrained classifier "
                  f"({judge_run['test_error']:.4f} test error)")
        print(f"generative test error {errors['pretrained']['deterministic']:.4f} -> "
              f"{errors['up_down']['deterministic']:.4f} after up-down -> "
              f"{errors['continued']['deterministic']:.4f} after the 60k continuation; "
              f"conditional accuracy {np.mean(predicted == labels):.3f}")
        return payload


if __name__ == "__main__":
    main()
