#!/usr/bin/env bash
# Regenerates the committed DBN results, most informative first. Resumable: every step
# caches finished work under $DBN_CHECKPOINT_DIR (default ~/.cache/dbn/checkpoints), so
# rerunning after an interruption continues where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
$PY experiments/dbn_mnist.py --seeds 0          # one full seed: pretrained + both baselines
$PY experiments/dbn_generative.py --seeds 0     # shares seed 0's lower layers and classifier
$PY experiments/dbn_mnist.py                    # seeds 0 1 2 (seed 0 cached)
$PY experiments/label_scarcity.py               # shares the pretrained stacks
$PY experiments/depth.py                        # shares layers 1-2
$PY experiments/make_tables.py
