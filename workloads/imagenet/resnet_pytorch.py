"""ImageNet's ResNet-50 (and variants) in PyTorch: the shared `workloads.common.resnet_pytorch`
model built from the ImageNet ``config.model`` (see there for batch norm and padding)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workloads.common.resnet_pytorch import ResNet, set_mode
from workloads.imagenet.param_map import resnet_layout

__all__ = ["ResNet", "build_model", "set_mode"]


def build_model(options: Mapping[str, Any], *, padding_style: str = "torch") -> ResNet:
    """The ImageNet ResNet of ``config.model`` (``arch``, ``activation``, ``bn_init_scale``)."""
    return ResNet(resnet_layout(options), padding_style=padding_style)
