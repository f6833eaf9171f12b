"""CIFAR ResNet-18 layout and its JAX <-> PyTorch parameter map (framework-free).

The model is upstream's CIFAR ResNet-18 (3x3/1 stem, no max-pool, basic blocks (2, 2, 2, 2),
4x4 average pool, Dense 10), built by the shared ResNet code (`workloads.common`) from this layout; names and
the map are those of `workloads.common.resnet_layout` (blocks are ``ResNetBlock_<k>`` in flax).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from workloads.common.resnet_layout import (
    ResNetLayout,
    resnet_jax_to_pytorch,
    resnet_pytorch_to_jax,
)

_ALLOWED = {"num_classes", "stage_sizes", "num_filters"}


def layout(options: Mapping[str, Any]) -> ResNetLayout:
    """The ResNet layout of the CIFAR ``config.model`` (num_classes, stage_sizes, num_filters)."""
    unknown = sorted(set(options) - _ALLOWED)
    if unknown:
        raise ValueError(
            f"workloads/cifar/spec.py: unknown CIFAR model option(s) {unknown}; "
            f"allowed: {sorted(_ALLOWED)}"
        )
    return ResNetLayout(
        stage_sizes=tuple(int(n) for n in options.get("stage_sizes", (2, 2, 2, 2))),
        bottleneck=False,
        num_classes=int(options.get("num_classes", 10)),
        num_filters=int(options.get("num_filters", 64)),
        activation="relu",
        bn_init_scale=0.0,
        stem="cifar",
    )


def pytorch_to_jax(
    state_dict: Mapping[str, Any], options: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """PyTorch state dict -> ``(params, {"batch_stats": ...})``."""
    return resnet_pytorch_to_jax(state_dict, layout(options))


def jax_to_pytorch(
    params: Mapping[str, Any], model_state: Mapping[str, Any], options: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    """flax params and model state -> a complete PyTorch state dict (numpy)."""
    return resnet_jax_to_pytorch(params, model_state, layout(options))
