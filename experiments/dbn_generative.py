"""Hinton, Osindero & Teh (2006): generative DBN with joint label units, class-conditional
digits, up-down fine-tuning.

784-500-500-(2000 + 10 labels). Reports the generative classifier's test error (lowest
free energy of [features, label] in the top RBM, no backprop) before and after up-down
fine-tuning, and measures sample quality: 1,000 samples per class generated with the label
clamped, classified by the fine-tuned backprop classifier of dbn_mnist (seed 0, pretrained;
trained here if its checkpoint is missing). Writes results/dbn_generative.json,
results/dbn_generative_samples.npz (100 per class, uint8 = probability x 255),
results/dbn_generative_grid.png (one row per class), results/dbn_generative_chain.png.
Resumable.

  python experiments/dbn_generative.py
  python experiments/dbn_generative.py --quick --out /tmp/q
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from dbn import plots, provenance
from dbn import options as cli
from dbn.protocols.comparison import compare, load_classifier
from dbn.models.generative import GenerativeDBN
from dbn.training.configs import UpDownConfig


def main(argv=None):
    p = cli.parser(__doc__)
    p.add_argument("--layers", type=int, nargs="+", default=[500, 500, 2000])
    p.add_argument("--updown-epochs", type=int, default=30)
    p.add_argument("--updown-lr", type=float, default=0.01)
    p.add_argument("--gibbs-steps", type=int, default=1000)
    p.add_argument("--samples-per-class", type=int, default=1000)
    args = cli.parse_args(p, argv, layers=[200, 200, 500], updown_epochs=2,
                           gibbs_steps=100, samples_per_class=50, pretrain_epochs=8, n_train=5000)
    with cli.experiment(args, "dbn_generative") as exp:
        seed, data, layer_sizes = args.seeds[0], exp.data, [784, *args.layers]
        out, ckpt, tag = exp.out, Path(args.checkpoint_dir), exp.tag
        timings = {}

        model = GenerativeDBN(layer_sizes, layer_configs=cli.layer_config(args), seed=seed)
        # Lower layers: all 60,000 training images without labels, from the layer cache shared
        # with dbn_mnist; the labelled top RBM: the 50,000 labelled training images.
        model.pretrain(data.x_train, data.y_train, x_unlabelled=np.concatenate([data.x_train, data.x_val]),
                       checkpoint_dir=ckpt / tag, layer_cache=ckpt / "pretrain", timings=timings)
        error_before = model.error_rate(data.x_test, data.y_test)
        updown = UpDownConfig(epochs=args.updown_epochs, learning_rate=args.updown_lr)
        t0 = time.time()
        history = model.up_down(data.x_train, data.y_train, updown, checkpoint_dir=ckpt / tag,
                                validation=(data.x_val, data.y_val))
        timings["up_down_seconds_this_session"] = time.time() - t0
        timings["up_down_seconds"] = float(sum(history["epoch_seconds"]))
        error_after = model.error_rate(data.x_test, data.y_test)

        # The judge: dbn_mnist's fine-tuned pretrained classifier (shared checkpoint).
        judge_tag = "dbn_mnist" + ("_quick" if args.quick else "")
        (judge_run,) = compare(data, layer_sizes=layer_sizes, layer_configs=cli.layer_config(args),
                               finetune_config=cli.finetune_config(args), seeds=[seed],
                               inits=["pretrained"], checkpoint_root=ckpt, tag=judge_tag)
        judge = load_classifier(ckpt, judge_run["run_dir"])

        labels = np.repeat(np.arange(data.n_classes), args.samples_per_class)
        t0 = time.time()
        images = model.generate(labels, gibbs_steps=args.gibbs_steps, seed=seed)
        timings["generate_seconds"] = time.time() - t0
        predicted = np.argmax(judge.predict(images, batch_size=1000, verbose=0), axis=1)
        per_class = [float(np.mean(predicted[labels == c] == c)) for c in range(data.n_classes)]

        keep = np.concatenate([np.flatnonzero(labels == c)[:100] for c in range(data.n_classes)])
        provenance.save_npz(out / "dbn_generative_samples.npz",
                            images=np.round(images[keep] * 255).astype(np.uint8), labels=labels[keep])
        grid = np.concatenate([np.flatnonzero(labels == c)[:10] for c in range(data.n_classes)])
        plots.image_grid(images[grid], n_rows=data.n_classes, path=out / "dbn_generative_grid.png",
                         title=f"label clamped per row, {args.gibbs_steps} Gibbs steps")
        strip_labels = np.arange(data.n_classes)
        _, chain = model.generate(strip_labels, gibbs_steps=args.gibbs_steps, seed=seed + 1,
                                  return_chain=max(1, args.gibbs_steps // 10))
        plots.image_grid(chain.transpose(1, 0, 2).reshape(-1, chain.shape[-1]), n_rows=data.n_classes,
                         path=out / "dbn_generative_chain.png",
                         title=f"one chain per class, every {max(1, args.gibbs_steps // 10)} steps")
        payload = exp.write(
            {"generative_test_error_before_up_down": error_before,
             "generative_test_error": error_after,
             "conditional_accuracy": {"overall": float(np.mean(predicted == labels)),
                                      "per_class": per_class},
             "up_down_history": history, "timing": timings},
            seed=seed, layer_sizes=layer_sizes, up_down=updown.to_dict(),
            judge=f"{judge_tag} seed {seed} pretrained classifier")
        print(f"generative test error {error_before:.4f} -> {error_after:.4f} after up-down; "
              f"conditional accuracy {np.mean(predicted == labels):.3f}")
        return payload


if __name__ == "__main__":
    main()
