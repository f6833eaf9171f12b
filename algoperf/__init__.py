"""algoperf: a benchmark harness for neural-network training algorithms, AlgoPerf-compatible.

Importing this package imports neither JAX nor PyTorch; framework code is loaded lazily by the
registry and the runner.
"""

__version__ = "0.6.0"

# The AlgoPerf benchmark version whose rules (budgets, studies, self-tuning factor) this harness
# implements by default.
BENCHMARK_VERSION = "0.6"
