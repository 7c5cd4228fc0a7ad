"""``dbn sample``: digits drawn from a model directory's generative model, as one PNG."""

from __future__ import annotations

import argparse
import math

from dbn import validation as check
from dbn.program import common, modeldir

DESCRIPTION = """\
Draw digits from the pretrained model of a model directory: a Gibbs chain of
--gibbs-steps steps in the top RBM from a random start, then one top-down pass through
the lower layers' generative weights (pixel probabilities at the bottom).  From a
generative DBN (dbn pretrain --generative) the chains are class-conditional: the label
is clamped to 0, 1, ..., 9, 0, 1, ... in reading order.

The PNG is the grid itself at one image pixel per PNG pixel: ceil(sqrt(n)) columns of
28x28 digits with 1-pixel white separators (-n 100: 289x289 pixels), white = 1.

  dbn sample runs/x -n 100 --out digits.png
"""


MAX_DIGITS = 100_000  # one PNG: 317 x 317 digits, 9,200 pixels a side


def add_parser(subparsers):
    p = subparsers.add_parser("sample", help="sample digits from a model directory into a PNG",
                              description=DESCRIPTION)
    p.add_argument("directory", help="a model directory written by dbn pretrain")
    p.add_argument("-n", type=int, default=100, help=f"number of digits (at most {MAX_DIGITS:,})")
    p.add_argument("--out", required=True, default=argparse.SUPPRESS, help="the PNG file to write")
    p.add_argument("--gibbs-steps", type=int, default=1000, help="Gibbs steps of each chain")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the chains (unset: the model's seed)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def grid_shape(n):
    """(rows, columns) of the grid of ``n`` digits."""
    n_cols = math.ceil(math.sqrt(n))
    return math.ceil(n / n_cols), n_cols


def prepare(args):
    n = common.checked(check.check_int, "-n", args.n, low=1, high=MAX_DIGITS)
    steps = common.checked(check.check_int, "--gibbs-steps", args.gibbs_steps, low=1)
    seed = common.checked(check.check_seed, "--seed", args.seed, optional=True)
    out = common.output_file(args.out, force=args.force, suffixes=(".png",))
    manifest = modeldir.open_model(args.directory, command="dbn sample")
    common.import_tensorflow()
    if modeldir.kind(manifest) == "generative":
        model = modeldir.load_generative(args.directory, manifest)
    else:
        model = modeldir.load_dbn(args.directory, manifest)
    return {"n": n, "steps": steps, "seed": manifest["seed"] if seed is None else seed,
            "out": out, "manifest": manifest, "model": model,
            "verbose": common.progress_verbosity(args.quiet)}


def run(plan):
    import matplotlib.image
    import numpy as np

    from dbn.plots import _mosaic
    from dbn.provenance import atomic_write

    n, manifest = plan["n"], plan["manifest"]
    if modeldir.kind(manifest) == "generative":
        labels = np.arange(n) % manifest["n_classes"]
        images = plan["model"].generate(labels, gibbs_steps=plan["steps"], seed=plan["seed"],
                                        verbose=plan["verbose"])
    else:
        images = plan["model"].generate(n, gibbs_steps=plan["steps"], seed=plan["seed"],
                                        verbose=plan["verbose"])
    check.check_values("samples", images, low=0.0, high=1.0)  # never a PNG of NaNs
    mosaic = _mosaic(images, *grid_shape(n), (28, 28))
    with atomic_write(plan["out"]) as f:
        matplotlib.image.imsave(f, mosaic, cmap="gray", vmin=0.0, vmax=1.0, format="png")
    rows, cols = grid_shape(n)
    print(f"dbn sample: {n} digits from {modeldir.describe(manifest)} ({plan['steps']} Gibbs "
          f"steps, seed {plan['seed']}) -> {plan['out']} ({mosaic.shape[1]}x{mosaic.shape[0]} "
          f"pixels, {rows}x{cols} grid)")
    return 0
