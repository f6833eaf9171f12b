# algoperf developer and user entry points. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
DATA_DIR ?= data
DEMO_DIR ?= demo_output
# The SWORD Bibles (Debian sword-text-web / sword-text-sparv) that wmt_bible and lm_bible read;
# scripts/debian_testdata.sh fetches them into DEBIAN_CACHE without root when they are missing.
DEBIAN_CACHE ?= $(CURDIR)/.cache/debian
ALGOPERF_SWORD_DIR ?= $(DEBIAN_CACHE)/usr/share/sword
export ALGOPERF_SWORD_DIR
MINI_PLAN ?= plans/mini.toml
# One compute thread per JAX run (PyTorch runs get OMP_NUM_THREADS=1 from the plan's cores_per_job).
MINI_XLA_FLAGS := --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1
STAMP := $(VENV)/.installed

.PHONY: install mini-data demo mini test test-fast test-all bench lint format clean lock venv-jax07 test-jax07

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# The CPU build of torch; pinned so pip never pulls CUDA wheels on a CPU machine.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[full,dev]'
	touch $(STAMP)

install: $(STAMP)

# The datasets of the mini benchmark (Fashion-MNIST, MNIST-1D, the solubility molecules, the
# Bibles), each prepared once: a prepared dataset is verified and left as it is.
mini-data: $(STAMP)
	test -d "$(ALGOPERF_SWORD_DIR)/mods.d" || bash scripts/debian_testdata.sh "$(DEBIAN_CACHE)"
	$(VENV)/bin/algoperf datasets prepare --data_dir $(DATA_DIR) \
	  $$($(PY) -m algoperf.demo --print_datasets)

# The main job: the mini benchmark (five small real-data workloads) with the NAdamW, AdamW and
# SGD-Nesterov baselines in PyTorch (DEMO_ARGS=--framework=jax for JAX), 2 trials each, two
# single-thread runs at a time, scored with --benchmark_version mini. Logs, scores, charts and
# the report land in $(DEMO_DIR)/.
demo: mini-data
	$(PY) -m algoperf.demo --data_dir $(DATA_DIR) --output_dir $(DEMO_DIR) $(DEMO_ARGS)

# The full mini benchmark: plans/mini.toml (3 baselines x 5 workloads x JAX and PyTorch x 3
# studies x 2 trials on two single-thread workers; rerun to resume), then each framework scored
# with --benchmark_version mini and the two compared. Logs in demo_output/mini/. A failed trial
# (listed by the sweep) is scored as far as it got and makes the target fail after scoring; a
# stopped sweep (exit 143) is not scored.
mini: mini-data
	XLA_FLAGS="$(MINI_XLA_FLAGS)" $(VENV)/bin/algoperf sweep run $(MINI_PLAN) --wait; rc=$$?; \
	  if [ $$rc -le 1 ]; then $(PY) -m algoperf.demo --compare_frameworks $(MINI_PLAN) || rc=$$?; fi; \
	  exit $$rc

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
	$(PY) benchmarks/ogbg_pipeline.py
	$(PY) benchmarks/librispeech_pipeline.py
	$(PY) benchmarks/criteo_pipeline.py
	$(PY) benchmarks/text_pipeline.py
	$(PY) benchmarks/wmt_decode.py
	$(PY) benchmarks/checkpoint.py
	$(PY) benchmarks/ddp_step.py --steps 200

# Upstream's pinned JAX stack (algorithmic-efficiency pyproject: jax 0.7.0, flax 0.10.7, optax
# 0.2.2, chex 0.1.86), so submissions written against upstream's environment run in it: a second
# virtualenv without PyTorch, and the JAX tests run with it.
JAX07 ?= .venv-jax07
UPSTREAM_JAX_PINS := jax==0.7.0 jaxlib==0.7.0 flax==0.10.7 optax==0.2.2 chex==0.1.86 jraph==0.0.6.dev0
$(JAX07)/.installed: pyproject.toml
	test -x $(JAX07)/bin/python || $(PYTHON) -m venv $(JAX07)
	$(JAX07)/bin/python -m pip install --quiet --upgrade pip
	$(JAX07)/bin/python -m pip install --quiet -e '.[dev]' $(UPSTREAM_JAX_PINS)
	touch $@

venv-jax07: $(JAX07)/.installed

test-jax07: $(JAX07)/.installed
	$(JAX07)/bin/python -m pytest -q -n 2 --durations=10 \
	  tests/integration/test_upstream_submissions.py tests/unit/test_alias.py
	$(JAX07)/bin/python -m pytest -q -n 2 -m "not slow" -k "jax" \
	  tests/integration/test_run_cli.py tests/unit/runner/test_loop.py

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
