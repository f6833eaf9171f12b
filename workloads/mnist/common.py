"""What the JAX and PyTorch MNIST workloads share: the numpy input pipeline."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from algoperf.data import iterators
from algoperf.data.loader import shard_batches
from workloads.mnist import data


class MnistData:
    """Mixin: batches of normalised (B, 28, 28, 1) float32 images and int32 labels."""

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
        arrays = data.load_split(data_dir, self.config, split)
        if split == "train":
            batches = iterators.train_batches(
                arrays, global_batch_size, seed, start_step=start_step
            )
        else:
            batches = iterators.eval_batches(arrays, global_batch_size, num_examples)
        if shard == (0, 1):
            return batches
        return shard_batches(batches, global_batch_size, shard)

    def is_output_params(self, param_key: str) -> bool:
        return param_key in self._output_param_keys
