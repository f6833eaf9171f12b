# algoperf developer and user entry points. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
DATA_DIR ?= data
DEMO_DIR ?= demo_output
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast test-all bench lint format clean lock

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# The CPU build of torch; pinned so pip never pulls CUDA wheels on a CPU machine.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[full,dev]'
	touch $(STAMP)

install: $(STAMP)

# The main job on the embedded default: NAdamW and AdamW baselines on Fashion-MNIST in JAX and
# PyTorch (external tuning, a few trials each), then scoring. Logs, scores and plots land in
# $(DEMO_DIR)/.
demo: $(STAMP)
	$(VENV)/bin/algoperf datasets prepare fashion_mnist --data_dir $(DATA_DIR)
	$(PY) -m algoperf.demo --data_dir $(DATA_DIR) --output_dir $(DEMO_DIR)

test: $(STAMP)
	$(PY) -m pytest -q -n 2 -m "not slow" --durations=15

test-all: $(STAMP)
	$(PY) -m pytest -q -n 2 --durations=15

bench: $(STAMP)
	$(PY) benchmarks/runner_overhead.py
	$(PY) benchmarks/jax_batch_transfer.py
	$(PY) benchmarks/scoring_speed.py
	$(PY) benchmarks/image_pipeline.py
	$(PY) benchmarks/model_step.py
	$(PY) benchmarks/fastmri_pipeline.py
	$(PY) benchmarks/checkpoint.py
	$(PY) benchmarks/ddp_step.py --steps 200

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/hadolint docker/Dockerfile

# Hashed lock files of the Docker/Apptainer images (docker/locks/<framework>-<accelerator>.txt).
lock: $(STAMP)
	UV=$(VENV)/bin/uv bash docker/lock.sh

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(DEMO_DIR) .pytest_cache .ruff_cache
