"""Look at the embedded MNIST: a grid of training digits (grey and
threshold-binarized), the training class histogram, and per-class counts
of every split in a JSON file."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from dbn import plots, provenance
from dbn import data as datasets


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("results/demo"), help="output directory")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/validation split")
    parser.add_argument("--validation-size", type=int, default=10_000)
    args = parser.parse_args(argv)
    started = time.time()

    splits = datasets.load("mnist", seed=args.seed, validation_size=args.validation_size)
    digits = splits.x_train[:100]
    plots.image_grid(digits, n_rows=10, path=args.out / "digits_grey.png", title="training digits")
    plots.image_grid(
        datasets.binarize(digits, "threshold"), n_rows=10, path=args.out / "digits_threshold.png",
        title="threshold-binarized (x > 0.5)",
    )
    plots.class_histogram(splits.y_train, n_classes=splits.n_classes, path=args.out / "class_histogram.png")

    counts = {
        split: np.bincount(getattr(splits, f"y_{split}"), minlength=splits.n_classes)
        for split in ("train", "val", "test")
    }
    payload = provenance.record(vars(args), seed=args.seed, started=started, results={"class_counts": counts})
    print(provenance.write_json(args.out / "demo_data.json", payload))


if __name__ == "__main__":
    main()
