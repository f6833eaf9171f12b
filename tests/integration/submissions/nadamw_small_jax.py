"""The NAdamW baseline (jax) with small batches, for end-to-end runs on tiny fixture datasets.

Everything but `get_batch_size` is the baseline's own code.
"""

from submissions.baselines.nadamw.jax.submission import *  # noqa: F403

# Global training batch sizes small enough for a CPU test run (the baseline asks for up to 1024).
SMALL_BATCH_SIZES = {"cifar": 4, "imagenet": 2, "fastmri": 2, "ogbg": 8}


def get_batch_size(workload_name: str) -> int:
    for prefix, size in SMALL_BATCH_SIZES.items():
        if workload_name.startswith(prefix):
            return size
    raise ValueError(f"Unsupported workload name: {workload_name}.")
