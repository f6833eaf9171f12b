"""Upstream's fastMRI U-Net in flax linen (NHWC inside; (B, H, W) images in and out).

Structure, parameter names and defaults as upstream's JAX model (``ConvBlock_0..``,
``TransposeConvBlock_0..``, the final 1x1 ``Conv_0`` with bias), so parameter trees and counts
match: 7,756,097 (32 channels, 4 pools), 7,692,929 (64 channels, 3 pools), 7,761,985 with
LayerNorm. Options come from ``config.model``: ``num_channels``, ``num_pool_layers``,
``activation`` (``leaky_relu`` (slope 0.2) or ``tanh``) and ``use_layer_norm`` (LayerNorm over
H, W, C with per-channel affine in the conv blocks, instead of instance norm).

Instance norm has no parameters and uses upstream's one-pass variance
``max(0, E[x^2] - E[x]^2)`` (PyTorch's ``InstanceNorm2d`` is two-pass: outputs differ by about
1e-6). Channel dropout (one mask per image and channel, as ``Dropout2d``) follows each conv of a
conv block; its rate is a call argument, so changing it does not recompile.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from workloads.fastmri.param_map import unet_options


def _instance_norm(x: jax.Array, epsilon: float = 1e-5) -> jax.Array:
    x = x.astype(jnp.promote_types(jnp.float32, x.dtype))
    mean = jnp.mean(x, axis=(1, 2), keepdims=True)
    var = jnp.maximum(0.0, jnp.mean(jnp.square(x), axis=(1, 2), keepdims=True) - jnp.square(mean))
    return (x - mean) / jnp.sqrt(var + epsilon)


def _activation(name: str):
    if name == "tanh":
        return jnp.tanh
    return lambda x: jax.nn.leaky_relu(x, negative_slope=0.2)


class ChannelDropout(nn.Module):
    """``Dropout2d``: zeroes whole channels of NHWC maps (rate is a call argument)."""

    @nn.compact
    def __call__(self, x: jax.Array, train: bool, rate: Any) -> jax.Array:
        if not train:
            return x
        keep = 1.0 - rate
        shape = (x.shape[0], 1, 1, x.shape[3])
        mask = jax.random.bernoulli(self.make_rng("dropout"), keep, shape)
        return jnp.where(mask, x / jnp.maximum(keep, 1e-12), 0.0).astype(x.dtype)


class ConvBlock(nn.Module):
    """[3x3 conv (no bias) -> instance norm or LayerNorm -> activation -> channel dropout] x 2."""

    out_channels: int
    activation: str
    use_layer_norm: bool

    @nn.compact
    def __call__(self, x: jax.Array, train: bool, dropout_rate: Any) -> jax.Array:
        act = _activation(self.activation)
        for _ in range(2):
            x = nn.Conv(self.out_channels, kernel_size=(3, 3), strides=(1, 1), use_bias=False)(x)
            if self.use_layer_norm:
                x = nn.LayerNorm(reduction_axes=(1, 2, 3))(x)
            else:
                x = _instance_norm(x)
            x = ChannelDropout()(act(x), train, dropout_rate)
        return x


class TransposeConvBlock(nn.Module):
    """2x2 stride-2 transposed conv (no bias) -> instance norm -> activation (no dropout)."""

    out_channels: int
    activation: str

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.ConvTranspose(self.out_channels, kernel_size=(2, 2), strides=(2, 2), use_bias=False)(
            x
        )
        return _activation(self.activation)(_instance_norm(x))


class UNet(nn.Module):
    """U-Net: `num_pool_layers` down blocks (avg-pool 2x2), a bottleneck, as many up blocks."""

    num_channels: int = 32
    num_pool_layers: int = 4
    activation: str = "leaky_relu"
    use_layer_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, dropout_rate: Any = 0.0) -> jax.Array:
        def conv_block(ch: int) -> ConvBlock:
            return ConvBlock(ch, self.activation, self.use_layer_norm)

        # Created in upstream's order, so the auto-names (ConvBlock_<k>) match.
        ch = self.num_channels
        down = [conv_block(ch)]
        for _ in range(self.num_pool_layers - 1):
            ch *= 2
            down.append(conv_block(ch))
        bottleneck = conv_block(ch * 2)
        up_transpose, up_conv = [], []
        for _ in range(self.num_pool_layers):
            up_transpose.append(TransposeConvBlock(ch, self.activation))
            up_conv.append(conv_block(ch))
            ch //= 2

        out = x[..., None]
        stack = []
        for block in down:
            out = block(out, train, dropout_rate)
            stack.append(out)
            out = nn.avg_pool(out, window_shape=(2, 2), strides=(2, 2))
        out = bottleneck(out, train, dropout_rate)
        for transpose, block in zip(up_transpose, up_conv):
            skip = stack.pop()
            out = transpose(out)
            pad_bottom = int(out.shape[1] != skip.shape[1])
            pad_right = int(out.shape[2] != skip.shape[2])
            if pad_bottom or pad_right:  # odd sizes: reflect-pad right/bottom, as upstream
                out = jnp.pad(out, ((0, 0), (0, pad_bottom), (0, pad_right), (0, 0)), "reflect")
            out = block(jnp.concatenate([out, skip], axis=-1), train, dropout_rate)
        out = nn.Conv(1, kernel_size=(1, 1), strides=(1, 1))(out)
        return out[..., 0]


def build_model(options: Mapping[str, Any]) -> UNet:
    """The U-Net of ``config.model``."""
    return UNet(**unet_options(options))


def init(model: UNet, rng: jax.Array, image_shape: tuple[int, int] = (320, 320)) -> Any:
    """The params of `model` (upstream initialises on a (13, 320, 320) batch with the first half
    of a split key); works under `jax.eval_shape`."""
    params_rng, _ = jax.random.split(rng)
    variables = jax.jit(lambda r: model.init({"params": r}, jnp.zeros((13, *image_shape))))(
        params_rng
    )
    return variables["params"]
