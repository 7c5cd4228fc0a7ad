# Two commands: `make demo` (the package's main job) and `make test`.
# Both create .venv and install the package with its dev extra when missing or stale.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench results-tables clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) experiments/demo.py --out results/demo

test: $(STAMP)
	$(PY) -m pytest -q --durations=10

bench: $(STAMP)
	$(PY) experiments/benchmark_cd.py

clean:
	rm -rf $(VENV) .pytest_cache
