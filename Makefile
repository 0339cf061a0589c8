# One front door: make serve | test | train | lint. Each creates and fills .venv when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
WORKERS ?= 1
MODELS ?= models

# the shipped model: full MNIST, Bernoulli likelihood, dynamic binarization
RUN_DIR ?= runs/mnist
TRAIN_ARGS ?= --dataset mnist --epochs 800 --lr 1e-3 --min-lr 5e-5 --warmup-epochs 10 \
              --batch-size 128 --seed 0
EVAL_K ?= 1000

.PHONY: serve test train evaluate export lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# stamps record what is installed; they are rebuilt when pyproject.toml changes
$(VENV)/.serve: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[train,dev]'
	touch $@ $(VENV)/.serve

serve: $(VENV)/.serve
	VAE_HOST=$(HOST) VAE_PORT=$(PORT) VAE_WORKERS=$(WORKERS) VAE_MODELS_DIR=$(MODELS) $(BIN)/python -m service

test: $(VENV)/.dev
	$(BIN)/python -m pytest

train: $(VENV)/.dev
	$(BIN)/python -m training train $(TRAIN_ARGS) --run-dir $(RUN_DIR)
	$(MAKE) export

export: $(VENV)/.dev
	$(BIN)/python -m training evaluate $(RUN_DIR) --k $(EVAL_K)
	$(BIN)/python -m training export $(RUN_DIR) --name mnist --version 1 --models-dir $(MODELS) --force

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache *.egg-info
