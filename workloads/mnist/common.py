"""What the JAX and PyTorch MNIST-family workloads share: model options and the numpy pipeline."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from algoperf.data import iterators
from algoperf.data.loader import shard_batches
from workloads.mnist import data

# ``config.model`` keys and their defaults (upstream's MNIST MLP).
MODEL_DEFAULTS: dict[str, Any] = {
    "input_shape": data.IMAGE_SHAPE,
    "hidden_widths": (128,),
    "activation": "sigmoid",
    "num_classes": data.NUM_CLASSES,
    # "upstream": PyTorch's nn.Linear default on the first init (as upstream's MNIST runs);
    # "lecun_normal": flax Dense's distribution in both frameworks (see model_pytorch).
    "init": "upstream",
}
ACTIVATIONS = ("sigmoid", "relu")
INITS = ("upstream", "lecun_normal")


def check_model_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """`options` (a config's ``model``) completed with the defaults; ValueError if unusable."""
    unknown = sorted(set(options) - set(MODEL_DEFAULTS))
    if unknown:
        raise ValueError(
            f"unknown MNIST-family model option(s) {', '.join(unknown)}; expected "
            f"{', '.join(MODEL_DEFAULTS)}"
        )
    opts = {**MODEL_DEFAULTS, **options}
    if opts["activation"] not in ACTIVATIONS:
        raise ValueError(
            f"unsupported MNIST activation {opts['activation']!r}; expected one of "
            f"{', '.join(ACTIVATIONS)}"
        )
    if opts["init"] not in INITS:
        raise ValueError(f"unknown MNIST init {opts['init']!r}; expected one of {', '.join(INITS)}")
    if not opts["hidden_widths"] or any(int(w) < 1 for w in opts["hidden_widths"]):
        raise ValueError(f"MNIST hidden_widths must be positive, got {opts['hidden_widths']!r}")
    return opts


def num_dense_layers(options: Mapping[str, Any]) -> int:
    """Dense layers of the MLP `options` describe (hidden layers + the output layer)."""
    return len(check_model_options(options)["hidden_widths"]) + 1


class MnistData:
    """Mixin: batches of normalised float32 inputs (B, *input_shape) and int32 labels."""

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

    _output_param_keys: tuple[str, ...]  # the output layer's keys, set by the model plumbing

    def is_output_params(self, param_key: str) -> bool:
        return param_key in self._output_param_keys
