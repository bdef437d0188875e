# ganlab — `make train` and `make test` install what they need first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
ARGS   ?=

.PHONY: help install train test test-slow test-slurm lint format clean distclean bench bench-startup bench-gpu quality

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E -e 's/:[^#]*## /\t/' -e 's/\$$\$$/\$$/g' | expand -t 14

install: $(STAMP)  ## .venv with ganlab (editable) and its dev and export extras

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,export]'
	touch $(STAMP)

train: install  ## DCGAN on MNIST (data under $$GANLAB_DATA_DIR or ./data); extra overrides: make train ARGS="..."
	$(BIN)/python -m ganlab.train $(ARGS)

test: install  ## the fast CPU suite (tests marked slow, gpu or slurm are deselected: make test-slow, test-slurm)
	$(BIN)/python -m pytest $(ARGS)

test-slow: install  ## the tests marked slow (CI runs them as a second step)
	$(BIN)/python -m pytest -m "slow and not gpu" $(ARGS)

test-slurm: install  ## sweeps on real SLURM clusters, one node and two (installs Debian's slurm as root first)
	-bash tests/slurm/setup.sh  # not root or no apt: the tests skip, saying why
	$(BIN)/python -m pytest -m slurm $(ARGS)

lint: install  ## ruff check and format --check of src, tests and examples
	$(BIN)/ruff check src tests examples
	$(BIN)/ruff format --check src tests examples

format: install  ## ruff's fixes and formatting, in place
	$(BIN)/ruff check --fix src tests examples
	$(BIN)/ruff format src tests examples

clean:  ## caches only; run directories under outputs/ are never deleted by make
	rm -rf .pytest_cache .ruff_cache src/*.egg-info
	find src tests -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean  ## also the .venv
	rm -rf $(VENV)

bench: install  ## ganlab vs a plain PyTorch loop on this machine's device (CPU cases without a GPU)
	$(BIN)/python -m ganlab.bench $(ARGS)

GPU_SWITCHES ?= eager,channels_last,bf16,fused_adam,on_device,fast_eager,compile,compile_ro,fast_compile,fast_compile_ro
bench-startup: install  ## seconds each command takes to answer (--help, config errors, missing data, one translate), as a ratio to import torch
	$(BIN)/python -m ganlab.startup $(ARGS)

bench-gpu: install  ## the GPU cases (DCGAN 28/64 px, CycleGAN 256 px) under each speed switch, one by one and combined
	$(BIN)/python -m ganlab.bench --device cuda --switches $(GPU_SWITCHES) $(ARGS)

quality: install  ## sample quality on real MNIST vs a plain PyTorch loop (CPU, ~15 min); ARGS="--cases default,ema --iters 300,600,1200"
	$(BIN)/python -m ganlab.quality $(ARGS)
