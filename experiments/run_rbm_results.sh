#!/usr/bin/env bash
# Regenerates the committed RBM results (resumable: rerun after an interruption).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
$PY experiments/train_rbm.py --name cd1 --epochs 60 --k 1 --lr 0.05 --seed 0
$PY experiments/train_rbm.py --name best --epochs 60 --k 1 --final-k 25 --lr 0.05 --seed 0
# Both sides of the likelihood of those two RBMs, and the DBN grown from rbm_best.
$PY experiments/likelihood_bracket.py
$PY experiments/dbn_likelihood.py --top-data probabilities
$PY experiments/dbn_likelihood.py --top-init lower --hidden 784 --name dbn_likelihood_lower
