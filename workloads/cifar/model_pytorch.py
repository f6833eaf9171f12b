"""Upstream's CIFAR ResNet-18 in PyTorch (NCHW inputs), built by the shared ResNet code.

Parameter names as upstream (``conv1``, ``bn1``, ``layer<s>.<b>.conv<i>`` / ``bn<i>``,
``...downsample.conv`` / ``.bn``, ``fc``). See `workloads.common.resnet_pytorch` for
batch-norm handling (`set_mode`) and padding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workloads.cifar.param_map import layout
from workloads.common.resnet_pytorch import ResNet, set_mode

__all__ = ["ResNet", "build_model", "set_mode"]


def build_model(options: Mapping[str, Any], *, padding_style: str = "torch") -> ResNet:
    """The CIFAR ResNet of ``config.model`` (num_classes, stage_sizes, num_filters)."""
    return ResNet(layout(options), padding_style=padding_style)
