"""Upstream's fastMRI U-Net in PyTorch ((B, H, W) images in and out; NCHW inside).

Module names as upstream (``down_sample_layers.<i>.conv_layers.<j>``, ``conv``,
``up_transpose_conv.<i>.layers.0``, ``up_conv.<i>``, the last up block a sequence of its conv
block and the final 1x1 conv ``up_conv.<n-1>.1`` with bias). Conv and transposed-conv weights
get upstream's ``pytorch_default_init`` (truncated LeCun normal; for a transposed conv PyTorch's
fan-in is computed from weight dimension 1, the output channels, as upstream). LayerNorm is
``GroupNorm(1, C, eps=1e-6)`` (normalises over C, H, W with per-channel affine) in the conv
blocks; instance norm (``InstanceNorm2d``, no affine, eps 1e-5) everywhere else. See
`workloads.fastmri.model_jax` for the options.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from algoperf.frameworks.pytorch import (
    CustomDropout2d,
    SequentialWithDropout,
    pytorch_default_init,
)
from workloads.fastmri.param_map import unet_options


def _activation(name: str) -> nn.Module:
    return nn.Tanh() if name == "tanh" else nn.LeakyReLU(negative_slope=0.2, inplace=True)


class ConvBlock(nn.Module):
    """[3x3 conv (no bias) -> norm -> activation -> channel dropout] x 2."""

    def __init__(self, in_ch: int, out_ch: int, activation: str, use_layer_norm: bool) -> None:
        super().__init__()
        self._supports_custom_dropout = True

        def norm() -> nn.Module:
            return (
                nn.GroupNorm(1, out_ch, eps=1e-6) if use_layer_norm else nn.InstanceNorm2d(out_ch)
            )

        act = _activation(activation)
        self.conv_layers = SequentialWithDropout(
            nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1, bias=False),
            norm(),
            act,
            CustomDropout2d(),
            nn.Conv2d(out_ch, out_ch, kernel_size=3, padding=1, bias=False),
            norm(),
            act,
            CustomDropout2d(),
        )

    def forward(self, x: torch.Tensor, dropout_rate: float) -> torch.Tensor:
        return self.conv_layers(x, dropout_rate)


class TransposeConvBlock(nn.Module):
    """2x2 stride-2 transposed conv (no bias) -> instance norm -> activation."""

    def __init__(self, in_ch: int, out_ch: int, activation: str) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.ConvTranspose2d(in_ch, out_ch, kernel_size=2, stride=2, bias=False),
            nn.InstanceNorm2d(out_ch),
            _activation(activation),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class UNet(nn.Module):
    """U-Net: `num_pool_layers` down blocks (avg-pool 2x2), a bottleneck, as many up blocks."""

    def __init__(
        self,
        num_channels: int = 32,
        num_pool_layers: int = 4,
        activation: str = "leaky_relu",
        use_layer_norm: bool = False,
    ) -> None:
        super().__init__()
        ch = num_channels
        self.down_sample_layers = nn.ModuleList([ConvBlock(1, ch, activation, use_layer_norm)])
        for _ in range(num_pool_layers - 1):
            self.down_sample_layers.append(ConvBlock(ch, ch * 2, activation, use_layer_norm))
            ch *= 2
        self.conv = ConvBlock(ch, ch * 2, activation, use_layer_norm)
        self.up_conv = nn.ModuleList()
        self.up_transpose_conv = nn.ModuleList()
        for i in range(num_pool_layers):
            self.up_transpose_conv.append(TransposeConvBlock(ch * 2, ch, activation))
            block = ConvBlock(ch * 2, ch, activation, use_layer_norm)
            if i == num_pool_layers - 1:
                block = SequentialWithDropout(block, nn.Conv2d(ch, 1, kernel_size=1, stride=1))
            self.up_conv.append(block)
            ch //= 2
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
                pytorch_default_init(m)

    def forward(self, x: torch.Tensor, dropout_rate: float = 0.0) -> torch.Tensor:
        out = x.unsqueeze(1)
        stack = []
        for layer in self.down_sample_layers:
            out = layer(out, dropout_rate)
            stack.append(out)
            out = F.avg_pool2d(out, kernel_size=2, stride=2, padding=0)
        out = self.conv(out, dropout_rate)
        for transpose, block in zip(self.up_transpose_conv, self.up_conv):
            skip = stack.pop()
            out = transpose(out)
            pad_right = int(out.shape[-1] != skip.shape[-1])
            pad_bottom = int(out.shape[-2] != skip.shape[-2])
            if pad_right or pad_bottom:  # odd sizes: reflect-pad right/bottom, as upstream
                out = F.pad(out, [0, pad_right, 0, pad_bottom], "reflect")
            out = block(torch.cat([out, skip], dim=1), dropout_rate)
        return out.squeeze(1)


def build_model(options: Mapping[str, Any]) -> UNet:
    """The U-Net of ``config.model``."""
    return UNet(**unet_options(options))
