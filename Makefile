# repro: one entry point for people and CI.  `make book` builds the study, `make test` checks it.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROFILE ?= tiny
# Notebooks at once in `make book` (each after the notebooks it needs, each with its share of the cores).
# 1 on a 2-core machine: there, a notebook on one core ran its stages 1.4-2.2 times slower than alone on
# two, which takes back most of what running two at once gains. Try JOBS=2 on 4 cores or more.
JOBS ?= 1

.PHONY: setup book check-book publish test test-fast bench lab clean clean-runs

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
	$(BIN)/repro run-all --profile $(PROFILE) -j $(JOBS)
	$(BIN)/repro book

## Open every page of the built book in headless Chromium (Debian's chromium package): pages that do not
## load, JavaScript errors, missing images, broken internal links; saves a screenshot of the front page.
check-book: $(STAMP)
	$(BIN)/repro check-book --screenshot _build/screenshots/front-page.png

## Push the built book (_build/html, from `make book`) to the gh-pages branch of origin with ghp-import.
publish: $(STAMP) _build/html/index.html
	$(BIN)/repro publish

_build/html/index.html:
	@echo "no built book at $@: run \`make book\` first" >&2; exit 1

## The test suite (unit tests, then the notebooks on the smoke profile and a smoke book build).
test: $(STAMP)
	$(BIN)/python -m pytest -q --durations=15

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

## Benchmarks (each compares two ways side by side, interleaved; see benchmarks/): results in bench-results/*.json,
## shown by the book's Benchmarks page. About 10 minutes on 2 cores. `make book`'s own cold and warm times:
## `$(BIN)/python -m benchmarks.bench_book` (reads the timings `repro run-all` records in the run store).
## The scripts are modules of the package benchmarks/ (not installed): run with `python -m` from the project root.
bench: $(STAMP)
	mkdir -p bench-results
	$(BIN)/python -m benchmarks.bench_generation --out bench-results/generation.json
	$(BIN)/python -m benchmarks.bench_judging --out bench-results/judging.json
	$(BIN)/python -m benchmarks.bench_flops --out bench-results/flops.json
	$(BIN)/python -m benchmarks.bench_stages --out bench-results/stages.json
	$(BIN)/python -m benchmarks.bench_scaling --base-prompts 125 --out bench-results/scaling.json
	$(BIN)/python -m benchmarks.bench_book --out bench-results/book.json

## JupyterLab on the notebooks; their kernel is the project's "repro" (registered again if it went missing).
KERNEL := $(VENV)/share/jupyter/kernels/repro/kernel.json

$(KERNEL): | $(STAMP)
	$(BIN)/python -m ipykernel install --sys-prefix --name repro --display-name "Python (repro)" >/dev/null

# Jupyter refuses to start as root unless told: a container's root user gets --allow-root.
lab: $(STAMP) $(KERNEL)
	$(BIN)/jupyter lab --notebook-dir=notebooks --MappingKernelManager.default_kernel_name=repro \
		$(if $(filter 0,$(shell id -u)),--allow-root)

clean-runs:
	rm -rf runs book/generated _build

clean: clean-runs
	rm -rf $(VENV)
