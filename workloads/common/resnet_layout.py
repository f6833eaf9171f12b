"""The ResNet v1 layout shared by the ImageNet and CIFAR families, and its parameter map.

Framework-free (numpy only). A `ResNetLayout` is the validated architecture: the JAX
(`workloads.common.resnet_jax`) and PyTorch (`workloads.common.resnet_pytorch`) models build
from it and the parameter map derives its name rules from it, so the three cannot disagree
about, say, where a projection shortcut sits. Names on each side are upstream's:

  flax                                           PyTorch
  Conv_init, BatchNorm_init                      conv1, bn1
  {Bottleneck}ResNetBlock_<k>/Conv_<i>           layer<s>.<b>.conv<i+1>
  .../BatchNorm_<i>                              layer<s>.<b>.bn<i+1>
  .../Conv_proj, .../BatchNorm_proj              layer<s>.<b>.downsample.conv / .bn
  Dense_0                                        fc
  batch_stats .../mean, var                      running_mean, running_var

Each family turns its ``config.model`` into a layout (ImageNet: ``arch`` resnet50/resnet18;
CIFAR: ``stage_sizes``, ``num_filters``, the CIFAR stem).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from algoperf import parity
from algoperf.parity import Rule, conv_rule, dense_rule, vector_rule

ACTIVATIONS = ("relu", "silu", "gelu")


@dataclasses.dataclass(frozen=True)
class ResNetLayout:
    """A ResNet v1 (torchvision "v1.5": stride on the 3x3 conv), as upstream builds it.

    Attributes:
        stage_sizes: blocks per stage; stage ``s`` has width ``num_filters * 2**s``.
        bottleneck: Bottleneck blocks (1x1, 3x3, 1x1 x4) instead of basic blocks (3x3, 3x3).
        num_classes: size of the final Dense layer.
        num_filters: width of the stem and the first stage.
        activation: ``relu``, ``silu`` or ``gelu`` (tanh approximation), used everywhere.
        bn_init_scale: initial scale of the last batch norm of every residual branch.
        stem: ``imagenet`` (7x7/2 conv, 3x3/2 max-pool, global mean) or ``cifar`` (3x3/1 conv,
            no pool, 4x4 average pool before the head).
    """

    stage_sizes: tuple[int, ...]
    bottleneck: bool
    num_classes: int
    num_filters: int = 64
    activation: str = "relu"
    bn_init_scale: float = 0.0
    stem: str = "imagenet"

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown ResNet activation {self.activation!r}; use one of {ACTIVATIONS}"
            )
        if self.stem not in ("imagenet", "cifar"):
            raise ValueError(f"ResNet stem must be 'imagenet' or 'cifar', got {self.stem!r}")

    @property
    def expansion(self) -> int:
        return 4 if self.bottleneck else 1

    @property
    def block_name(self) -> str:
        """The flax class name of a block (flax auto-names blocks ``<class>_<k>``)."""
        return "BottleneckResNetBlock" if self.bottleneck else "ResNetBlock"

    def width(self, stage: int) -> int:
        return self.num_filters * 2**stage

    def stride(self, stage: int, block: int) -> int:
        return 2 if stage > 0 and block == 0 else 1

    def has_projection(self, stage: int, block: int) -> bool:
        """A 1x1 conv + BN shortcut where the stride or the channel count changes."""
        if block > 0:
            return False
        in_channels = self.num_filters if stage == 0 else self.width(stage - 1) * self.expansion
        return stage > 0 or in_channels != self.width(stage) * self.expansion

    def blocks(self) -> list[tuple[int, int, int]]:
        """``(global index k, stage s, block b)`` for every block, in forward order."""
        out, k = [], 0
        for s, n in enumerate(self.stage_sizes):
            for b in range(n):
                out.append((k, s, b))
                k += 1
        return out


def _bn_rules(pt: str, jax: tuple[str, ...]) -> list[Rule]:
    return [
        vector_rule(f"{pt}.weight", ("params", *jax, "scale")),
        vector_rule(f"{pt}.bias", ("params", *jax, "bias")),
        vector_rule(f"{pt}.running_mean", ("batch_stats", *jax, "mean")),
        vector_rule(f"{pt}.running_var", ("batch_stats", *jax, "var")),
    ]


def resnet_bn_names(layout: ResNetLayout) -> list[tuple[str, tuple[str, ...]]]:
    """``(PyTorch module name, flax module path)`` of every batch norm, in forward order."""
    out = [("bn1", ("BatchNorm_init",))]
    n_convs = 3 if layout.bottleneck else 2
    for k, s, b in layout.blocks():
        pt, jx = f"layer{s + 1}.{b}", f"{layout.block_name}_{k}"
        out += [(f"{pt}.bn{i + 1}", (jx, f"BatchNorm_{i}")) for i in range(n_convs)]
        if layout.has_projection(s, b):
            out.append((f"{pt}.downsample.bn", (jx, "BatchNorm_proj")))
    return out


def resnet_rules(layout: ResNetLayout) -> list[Rule]:
    """Every parameter and batch statistic of a ResNet, PyTorch key <-> flax path."""
    rules = [conv_rule("conv1.weight", ("params", "Conv_init", "kernel"))]
    n_convs = 3 if layout.bottleneck else 2
    for k, s, b in layout.blocks():
        pt, jx = f"layer{s + 1}.{b}", f"{layout.block_name}_{k}"
        for i in range(n_convs):
            rules.append(
                conv_rule(f"{pt}.conv{i + 1}.weight", ("params", jx, f"Conv_{i}", "kernel"))
            )
        if layout.has_projection(s, b):
            rules.append(
                conv_rule(f"{pt}.downsample.conv.weight", ("params", jx, "Conv_proj", "kernel"))
            )
    for pt, jx in resnet_bn_names(layout):
        rules += _bn_rules(pt, jx)
    rules += [
        dense_rule("fc.weight", ("params", "Dense_0", "kernel")),
        vector_rule("fc.bias", ("params", "Dense_0", "bias")),
    ]
    return rules


def resnet_pytorch_to_jax(
    state_dict: Mapping[str, Any], layout: ResNetLayout
) -> tuple[dict[str, Any], dict[str, Any]]:
    """PyTorch ResNet state dict -> ``(params, {"batch_stats": ...})`` for the flax model."""
    variables = parity.pytorch_to_jax(
        state_dict, resnet_rules(layout), ignore=lambda k: k.endswith("num_batches_tracked")
    )
    return variables["params"], {"batch_stats": variables["batch_stats"]}


def resnet_jax_to_pytorch(
    params: Mapping[str, Any], model_state: Mapping[str, Any], layout: ResNetLayout
) -> dict[str, np.ndarray]:
    """flax ``params`` and ``{"batch_stats": ...}`` -> a complete PyTorch state dict (numpy).

    ``num_batches_tracked`` (PyTorch-only, unused with a fixed momentum) is set to 0.
    """
    variables = {"params": params, "batch_stats": model_state["batch_stats"]}
    state_dict = parity.jax_to_pytorch(variables, resnet_rules(layout))
    for pt, _ in resnet_bn_names(layout):
        state_dict[f"{pt}.num_batches_tracked"] = np.array(0, dtype=np.int64)
    return state_dict
