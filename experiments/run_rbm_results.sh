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
# The samplers at equal wall time: PCD-1, FPCD-1 and PCD-1 with 10 tempered chains, each for
# the epochs benchmark_samplers.py measured to cost rbm_best's training time on this machine
# (results/benchmark_samplers.json, summary.equal_time_epochs), the same recipe otherwise.
equal_time() { $PY -c "import json, sys; print(json.load(open('results/benchmark_samplers.json'))['summary']['equal_time_epochs'][sys.argv[1]])" "$1"; }
$PY experiments/train_rbm.py --name pcd1 --epochs "$(equal_time pcd1)" --k 1 --pcd --lr 0.05 --seed 0
$PY experiments/train_rbm.py --name fpcd1 --epochs "$(equal_time fpcd1)" --k 1 --pcd --fast-lr 0.05 --lr 0.05 --seed 0
$PY experiments/train_rbm.py --name pt10 --epochs "$(equal_time pt10)" --k 1 --pcd --temperatures 10 --lr 0.05 --seed 0
# rbm_best's entry is likelihood_bracket.json's (same settings, same model: make_tables checks)
$PY experiments/likelihood_bracket.py --models rbm_pcd1 rbm_fpcd1 rbm_pt10 --name likelihood_samplers
