# repro: one entry point for people and CI.  `make book` builds the study, `make test` checks it.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROFILE ?= tiny

.PHONY: setup book test test-fast bench lab clean clean-runs

# The environment: a virtualenv in the checkout with the pinned versions of requirements/constraints.txt,
# the package installed editable with its dev extra, and the project's named Jupyter kernel "repro".
$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=23"
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name repro --display-name "Python (repro)" >/dev/null
	touch $(STAMP)

setup: $(STAMP)

## Execute every notebook on the tiny profile (finished stages are reused) and build the book.
book: $(STAMP)
	$(BIN)/repro run-all --profile $(PROFILE)
	$(BIN)/repro book

## The test suite (unit tests, then the notebooks on the smoke profile and a smoke book build).
test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	mkdir -p bench-results
	$(BIN)/python benchmarks/bench_generation.py --out bench-results/generation.json

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

clean-runs:
	rm -rf runs book/generated _build

clean: clean-runs
	rm -rf $(VENV)
