# One front door: make serve | test | train | lint. Each creates and fills .venv when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
# one worker per CPU this process may use (docs/performance.md, Workers)
WORKERS ?= auto
MODELS ?= models

# the shipped model: full MNIST, Bernoulli likelihood, dynamic binarization
RUN_DIR ?= runs/mnist
TRAIN_ARGS ?= --dataset mnist --epochs 800 --lr 1e-3 --min-lr 5e-5 --warmup-epochs 10 \
              --batch-size 128 --seed 0
EVAL_K ?= 1000
NAME ?= mnist
VERSION ?= 1
# models/mnist/2: the VampPrior (500 pseudo-inputs) trained with the importance-weighted objective
# (k = 10); 287 s on one H200 GPU (docs/training.md), about 90 minutes on 2 CPU cores
V2_ARGS ?= --dataset mnist --prior vamp --pseudo-inputs 500 --iw-samples 10 --latent-dim 32 \
           --epochs 109 --lr 1e-3 --min-lr 5e-5 --warmup-epochs 10 --batch-size 128 --seed 0
# models/mnist2d/1: two latent dimensions, so that the web page can draw the whole latent space as a map
TRAIN_2D_ARGS ?= --dataset mnist --latent-dim 2 --epochs 100 --lr 1e-3 --min-lr 5e-5 --warmup-epochs 5 \
                 --batch-size 128 --seed 0 --threads 1

# programs from Debian's packages for the end-to-end gateway test (nginx, Prometheus) and `make bench` (wrk)
SYSTEM_PACKAGES := nginx-light prometheus wrk
# and for building and running the image and the compose topology here (no Docker engine, no registry)
CONTAINER_PACKAGES := podman runc catatonit netavark aardvark-dns mmdebstrap
# and for the web page's test in a real browser (`apt-get update` first, so that the browser and
# its driver come from one release of the lists and agree on their version)
BROWSER_PACKAGES := chromium chromium-driver
# `make image`: docker when it is there, else podman (which needs --format docker for HEALTHCHECK)
ENGINE ?= $(shell command -v docker >/dev/null 2>&1 && echo docker || echo podman)
IMAGE ?= vae-service:latest
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo) DEBIAN_FRONTEND=noninteractive

.PHONY: serve test test-fast fuzz image image-test compose-test container-deps browser-test browser-deps bench bench-compare bench-client bench-uploads bench-page bench-peers bench-pytriton bench-profile bench-tune soak reliability system-deps lock train train-v2 train-2d evaluate export lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# stamps record what is installed; they are rebuilt when pyproject.toml changes
$(VENV)/.serve: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev: pyproject.toml client/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[train,dev]' -e ./client
	touch $@ $(VENV)/.serve

serve: $(VENV)/.serve
	VAE_HOST=$(HOST) VAE_PORT=$(PORT) VAE_WORKERS=$(WORKERS) VAE_MODELS_DIR=$(MODELS) $(BIN)/python -m service

test: $(VENV)/.dev
	$(BIN)/python -m pytest

# the inner loop: in-process tests only, no servers started and no torch training (under a minute)
test-fast: $(VENV)/.dev
	$(BIN)/python -m pytest -q -m "not server and not torch and not container"

# property-based fuzzing of the API with more examples than the suite's (~5 min)
fuzz: $(VENV)/.dev
	VAE_FUZZ_EXAMPLES=300 $(BIN)/python -m pytest -q tests/reliability/test_fuzz.py

# throughput and latency over HTTP against onnxruntime's ceiling; writes benchmarks/results.md (~6 min)
bench: $(VENV)/.dev system-deps
	$(BIN)/python -m benchmarks

# this tree against an earlier commit (BEFORE=rev), side by side; writes benchmarks/compare.md
bench-compare: $(VENV)/.dev system-deps
	$(BIN)/python -m benchmarks.compare --before $(BEFORE)

# vae-client encoding 10,000 PNG digits end to end; writes benchmarks/client.md (~1 min)
bench-client: $(VENV)/.dev
	$(BIN)/python -m benchmarks.client

# people's own digit images (scans, drawings, photos) through /encode, /decode and /score, with
# out-of-distribution AUROC and the cost of K; writes benchmarks/uploads.md and docs/uploads.png (~20 min)
bench-uploads: $(VENV)/.dev
	$(BIN)/python -m benchmarks.uploads

# the web page in headless Chromium: time to the first sample grid, bytes transferred; writes
# benchmarks/page.md (~1 min)
bench-page: $(VENV)/.dev browser-deps
	$(BIN)/python -m benchmarks.page

# /decode against the naive FastAPI app (benchmarks/naive.py), interleaved rounds; writes
# benchmarks/peers.md (~3 min)
bench-peers: $(VENV)/.dev system-deps
	$(BIN)/python -m benchmarks.peers

# Open Inference Protocol inference against PyTriton (benchmarks/pytriton_peer.py), an optional peer
# kept out of `make test`: its own environment, made with the system's Python 3.11, since Triton's
# Python backend stub loads the system's libpython3.11 and must find the same version's standard
# library (under another 3.11 build the model's start failed). Writes benchmarks/pytriton.md (~3 min)
PYTRITON_PYTHON ?= /usr/bin/python3.11
PYTRITON_VENV := .venv-pytriton
$(PYTRITON_VENV)/.done:
	$(PYTRITON_PYTHON) -m venv $(PYTRITON_VENV)
	$(PYTRITON_VENV)/bin/pip install --quiet nvidia-pytriton==0.7.0 onnxruntime==1.32.0 numpy==1.26.4
	touch $@

bench-pytriton: $(VENV)/.dev system-deps $(PYTRITON_VENV)/.done
	$(BIN)/python -m benchmarks.peers --peer pytriton --pytriton $(PYTRITON_VENV)/bin/python \
		--out benchmarks/pytriton.md

# where a request's time goes: the service under cProfile while wrk sends /encode and /decode;
# writes benchmarks/profile.md (~1 min)
bench-profile: $(VENV)/.dev system-deps
	$(BIN)/python -m benchmarks.profile

# the sweeps behind the service's defaults; writes benchmarks/tuning.md (~7 min)
bench-tune: $(VENV)/.dev system-deps
	$(BIN)/python -m benchmarks.tune

# mixed valid and invalid traffic at 32 connections for 10 minutes; writes reliability/soak.md
soak: $(VENV)/.dev
	$(BIN)/python -m reliability.soak --seconds 600

# hostile inputs with memory measured, overload with and without admission limits, and 256
# maximum-size bodies at once (~3 min); write reliability/hostile.md, overload.md and memory.md
reliability: $(VENV)/.dev
	$(BIN)/python -m reliability.hostile
	$(BIN)/python -m reliability.overload
	$(BIN)/python -m reliability.memory

# the serving image (PYTHON_IMAGE=..., PIP_INDEX_URL=... and a CA bundle for pip: see the Dockerfile)
image:
	$(ENGINE) build $(if $(findstring podman,$(ENGINE)),--format docker) -t $(IMAGE) .

# builds the image here with podman on a base built from Debian's packages, runs it and checks it
image-test: $(VENV)/.dev container-deps
	$(BIN)/python -m pytest -m container tests/containers/test_image.py

# the compose topology under podman-compose with stand-in images: load, kill, scale, restart, stop
compose-test: $(VENV)/.dev container-deps
	$(BIN)/python -m pytest -m container tests/containers/test_compose.py

# the web page in headless Chromium driven by Selenium: draw, sample, interpolate, map, token, errors;
# screenshots in runs/browser/
browser-test: $(VENV)/.dev browser-deps
	$(BIN)/python -m pytest -m browser tests/browser

browser-deps:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
	  $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends $(BROWSER_PACKAGES); \
	fi

container-deps:
	@missing=; for tool in podman runc mmdebstrap netavark; do command -v $$tool >/dev/null 2>&1 || \
	  [ -x /usr/lib/podman/$$tool ] || missing=1; done; [ -x /usr/libexec/podman/catatonit ] || missing=1; \
	if [ -n "$$missing" ]; then \
	  $(SUDO) apt-get install -y --no-install-recommends $(CONTAINER_PACKAGES) || \
	  { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends $(CONTAINER_PACKAGES); }; \
	fi

# installs only what is missing; refreshes the package lists once when the first attempt fails
system-deps:
	@if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then :; else missing=1; fi; \
	command -v prometheus >/dev/null 2>&1 && command -v wrk >/dev/null 2>&1 || missing=1; \
	if [ -n "$$missing" ]; then \
	  $(SUDO) apt-get install -y --no-install-recommends $(SYSTEM_PACKAGES) || \
	  { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends $(SYSTEM_PACKAGES); }; \
	fi

# pins the serving dependencies of pyproject.toml, with hashes, for the Docker image
lock: $(VENV)/.dev
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url \
	  --no-emit-find-links --no-emit-trusted-host --output-file=deploy/requirements.txt pyproject.toml

train: $(VENV)/.dev
	$(BIN)/python -m training train $(TRAIN_ARGS) --run-dir $(RUN_DIR)
	$(MAKE) export

train-v2:
	$(MAKE) train RUN_DIR=runs/mnist-v2 TRAIN_ARGS="$(V2_ARGS)" VERSION=2 EVAL_K=5000

train-2d:
	$(MAKE) train RUN_DIR=runs/mnist2d TRAIN_ARGS="$(TRAIN_2D_ARGS)" NAME=mnist2d VERSION=1

export: $(VENV)/.dev
	$(BIN)/python -m training evaluate $(RUN_DIR) --k $(EVAL_K)
	$(BIN)/python -m training export $(RUN_DIR) --name $(NAME) --version $(VERSION) --models-dir $(MODELS) --force

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache *.egg-info
