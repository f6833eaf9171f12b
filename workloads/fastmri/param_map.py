"""fastMRI U-Net options and the JAX <-> PyTorch parameter map (framework-free, numpy).

Flax names (upstream's): ``ConvBlock_<k>/{Conv_0,Conv_1}/kernel`` (+ ``LayerNorm_<j>/{scale,bias}``
with ``use_layer_norm``), ``TransposeConvBlock_<i>/ConvTranspose_0/kernel``, ``Conv_0/{kernel,bias}``.
Conv blocks are numbered down blocks first, then the bottleneck, then the up blocks.

Layouts: a flax conv kernel is (kh, kw, in, out), a torch ``Conv2d`` weight (out, in, kh, kw).
A flax ``ConvTranspose`` (``transpose_kernel=False``, 'SAME' padding) with a 2x2 kernel and
stride 2 writes ``x[i] * k[1 - a]`` to output pixel ``2 i + a`` (per axis), while torch's
``ConvTranspose2d`` (weight (in, out, kh, kw)) writes ``x[i] * w[a]``: the map flips the kernel
in both spatial axes besides moving the channel axes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

_DEFAULTS = {
    "num_channels": 32,
    "num_pool_layers": 4,
    "activation": "leaky_relu",
    "use_layer_norm": False,
}
ACTIVATIONS = ("leaky_relu", "tanh")


def unet_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Validated U-Net keyword arguments from ``config.model``; unknown keys are an error."""
    unknown = sorted(set(options) - set(_DEFAULTS))
    if unknown:
        raise ValueError(
            f"workloads/fastmri/spec.py: unknown fastMRI model option(s) {unknown}; "
            f"allowed: {sorted(_DEFAULTS)}"
        )
    out = {**_DEFAULTS, **options}
    if out["activation"] not in ACTIVATIONS:
        raise ValueError(
            f"workloads/fastmri/spec.py: activation {out['activation']!r} is not one of "
            f"{', '.join(ACTIVATIONS)}"
        )
    return {
        "num_channels": int(out["num_channels"]),
        "num_pool_layers": int(out["num_pool_layers"]),
        "activation": str(out["activation"]),
        "use_layer_norm": bool(out["use_layer_norm"]),
    }


def _pairs(options: Mapping[str, Any]) -> Iterator[tuple[tuple[str, ...], str, str]]:
    """(flax path, torch name, kind) for every parameter; kind says how to convert it."""
    opts = unet_options(options)
    n = opts["num_pool_layers"]
    blocks = [f"down_sample_layers.{i}" for i in range(n)] + ["conv"]
    blocks += [f"up_conv.{i}" + (".0" if i == n - 1 else "") for i in range(n)]
    for k, prefix in enumerate(blocks):
        for j, idx in enumerate((0, 4)):
            yield (
                (f"ConvBlock_{k}", f"Conv_{j}", "kernel"),
                f"{prefix}.conv_layers.{idx}.weight",
                "conv",
            )
            if opts["use_layer_norm"]:
                base = f"{prefix}.conv_layers.{idx + 1}"
                yield (f"ConvBlock_{k}", f"LayerNorm_{j}", "scale"), f"{base}.weight", "vector"
                yield (f"ConvBlock_{k}", f"LayerNorm_{j}", "bias"), f"{base}.bias", "vector"
    for i in range(n):
        path = (f"TransposeConvBlock_{i}", "ConvTranspose_0", "kernel")
        yield path, f"up_transpose_conv.{i}.layers.0.weight", "transpose_conv"
    yield ("Conv_0", "kernel"), f"up_conv.{n - 1}.1.weight", "conv"
    yield ("Conv_0", "bias"), f"up_conv.{n - 1}.1.bias", "vector"


def _to_torch(value: np.ndarray, kind: str) -> np.ndarray:
    if kind == "conv":
        return value.transpose(3, 2, 0, 1)
    if kind == "transpose_conv":
        return value[::-1, ::-1].transpose(2, 3, 0, 1)
    return value


def _to_flax(value: np.ndarray, kind: str) -> np.ndarray:
    if kind == "conv":
        return value.transpose(2, 3, 1, 0)
    if kind == "transpose_conv":
        return value.transpose(2, 3, 0, 1)[::-1, ::-1]
    return value


def jax_to_pytorch(params: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """flax params -> a complete PyTorch state dict (numpy, contiguous)."""
    out = {}
    for path, name, kind in _pairs(options):
        node: Any = params
        for part in path:
            node = node[part]
        out[name] = np.ascontiguousarray(_to_torch(np.asarray(node), kind))
    return out


def pytorch_to_jax(state_dict: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """PyTorch state dict (tensors or arrays) -> nested flax params (numpy)."""
    out: dict[str, Any] = {}
    for path, name, kind in _pairs(options):
        value = state_dict[name]
        value = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = np.ascontiguousarray(_to_flax(value, kind))
    return out


def parameter_names(options: Mapping[str, Any]) -> list[str]:
    """Every PyTorch parameter name of the U-Net of `options` (the map's domain)."""
    return [name for _, name, _ in _pairs(options)]
