"""ImageNet's ResNet-50 (and variants) in flax: the shared `workloads.common.resnet_jax` model
built from the ImageNet ``config.model`` (see there for batch norm and padding)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp

from workloads.common.resnet_jax import ResNet, forward, init
from workloads.imagenet.param_map import resnet_layout

__all__ = ["ResNet", "build_model", "forward", "init"]


def build_model(
    options: Mapping[str, Any], *, padding_style: str = "flax", dtype: Any = jnp.float32
) -> ResNet:
    """The ImageNet ResNet of ``config.model`` (``arch``, ``activation``, ``bn_init_scale``)."""
    return ResNet(layout=resnet_layout(options), padding_style=padding_style, dtype=dtype)
