"""Upstream's CIFAR ResNet-18 in flax linen (NHWC inputs), built by the shared ResNet code.

See `workloads.common.resnet_jax` for batch-norm handling and padding. Upstream's JAX CIFAR
``init_model_fn`` returns the *params* as ``model_state``; `init` here returns the batch
statistics, as intended.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from workloads.cifar.param_map import layout
from workloads.common import resnet_jax
from workloads.common.resnet_jax import ResNet, forward

__all__ = ["ResNet", "build_model", "forward", "init"]


def build_model(
    options: Mapping[str, Any], *, padding_style: str = "flax", dtype: Any = jnp.float32
) -> ResNet:
    """The CIFAR ResNet of ``config.model`` (num_classes, stage_sizes, num_filters)."""
    return ResNet(layout=layout(options), padding_style=padding_style, dtype=dtype)


def init(
    model: ResNet, rng: jax.Array, input_shape: tuple[int, ...] = (1, 32, 32, 3)
) -> tuple[Any, Any]:
    """``(params, {"batch_stats": ...})``; works under `jax.eval_shape`."""
    return resnet_jax.init(model, rng, input_shape)
