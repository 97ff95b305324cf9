# Two entry points (README §"The two commands"): `make run` (set up + the whole pipeline on the built-in
# benchmark) and `make test` (set up + the test suite). Both create .venv on first use.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed-stamp
CORES ?= all

.PHONY: setup run test test-fast lint bench bench-seeds gpu-check clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: setup
	$(VENV)/bin/snakemake --cores $(CORES) --profile profiles/local

# CI runs exactly this (.ci/run); the 15 slowest tests are listed at the end.
test: setup
	$(VENV)/bin/python -m pytest --durations=15

test-fast: setup
	$(VENV)/bin/python -m pytest -m "not pipeline and not rerun and not slurm"

lint: setup
	$(VENV)/bin/snakemake --lint
	$(VENV)/bin/snakefmt --check Snakefile rules
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: setup
	for name in pseudo_labels metrics camstore loader; do $(VENV)/bin/python bench/bench_$$name.py; done

bench-seeds: setup
	$(VENV)/bin/python bench/bench_seeds.py

# The CUDA test tier, then speed, memory and MFU of the GPU stages, projected VOC GPU-hours, the
# tiny pipeline on the GPU.
gpu-check: setup
	$(VENV)/bin/python -m pytest -m cuda -q
	$(VENV)/bin/python -m bench.gpu_check

clean:
	rm -rf results .snakemake
