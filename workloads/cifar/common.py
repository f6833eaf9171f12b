"""What the JAX and PyTorch CIFAR-10 workloads share: the numpy input pipeline.

Batches come from `workloads.cifar.data.numpy_batches` (NHWC float32 32x32 images, int32 labels;
eval batches with 'weights'). Split sizes come from the config: a real run reads the official
50,000 training and 10,000 test images; tests pass configs sized for their fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from algoperf.data.loader import shard_batches
from algoperf.workload_config import WorkloadConfig
from workloads.cifar import data


class CifarData:
    """Mixin: CIFAR-10 numpy batches and the fail-early data check."""

    config: WorkloadConfig
    _output_param_keys: tuple[str, ...]  # set by the model plumbing class

    def _numpy_batches(
        self,
        split: str,
        data_dir: str,
        global_batch_size: int,
        seed: int,
        num_examples: int | None = None,
        start_step: int = 0,
        shard: tuple[int, int] = (0, 1),
    ) -> Iterator[dict[str, np.ndarray]]:
        """Train or eval batches; ``shard=(r, W)``: rank r's rows of each (the framework layer's)."""
        batches = data.numpy_batches(
            data_dir, self.config, split, global_batch_size, seed, num_examples, start_step
        )
        if shard == (0, 1):
            return batches
        return shard_batches(batches, global_batch_size, shard)

    def check_data(self, data_dir: str) -> None:
        """Fail before any log is written if a split cannot be read (decoded once, cached)."""
        for split in data.SPLITS:
            data.load_split(data_dir, self.config, split)

    def is_output_params(self, param_key: Any) -> bool:
        return param_key in self._output_param_keys
