# Two commands: `make demo` (the package's main job) and `make test`.
# Both create .venv and install the package with its dev extra when missing or stale.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench results-tables clean lock

# The exact versions of requirements.lock (what produced results/), then the package
# itself without resolving anything again.
$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Re-resolve the loose ranges of pyproject.toml in a scratch venv and pin the result.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet ".[dev,bench]"
	{ echo "# The exact versions that produced results/ (Linux x86_64)."; \
	  echo "# make installs these by default; pyproject.toml keeps the loose ranges for library users."; \
	  echo "# Regenerate with: make lock"; \
	  .lock-venv/bin/pip freeze --exclude-editable | grep -v '^dbn @'; } > requirements.lock
	rm -rf .lock-venv

demo: $(STAMP)
	$(PY) experiments/demo.py --out results/demo

test: $(STAMP)
	$(PY) -m pytest -q --durations=10

bench: $(STAMP)
	$(PY) experiments/benchmark_cd.py

clean:
	rm -rf $(VENV) .pytest_cache
