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

from collections.abc import Mapping
from typing import Any

import numpy as np

from algoperf import parity

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


def _transpose_conv_to_jax(w: np.ndarray) -> np.ndarray:
    """(in, out, kh, kw) torch ConvTranspose2d weight -> flax (kh, kw, in, out), flipped."""
    return np.transpose(w, (2, 3, 0, 1))[::-1, ::-1]


def _transpose_conv_to_pt(k: np.ndarray) -> np.ndarray:
    return np.transpose(k[::-1, ::-1], (2, 3, 0, 1))


def rules(options: Mapping[str, Any]) -> list[parity.Rule]:
    """One `algoperf.parity.Rule` per parameter of the U-Net of `options` (flax ``params``)."""
    opts = unet_options(options)
    n = opts["num_pool_layers"]
    blocks = [f"down_sample_layers.{i}" for i in range(n)] + ["conv"]
    blocks += [f"up_conv.{i}" + (".0" if i == n - 1 else "") for i in range(n)]
    out = []
    for k, prefix in enumerate(blocks):
        for j, idx in enumerate((0, 4)):
            block = ("params", f"ConvBlock_{k}")
            out.append(
                parity.conv_rule(
                    f"{prefix}.conv_layers.{idx}.weight", (*block, f"Conv_{j}", "kernel")
                )
            )
            if opts["use_layer_norm"]:
                norm = f"{prefix}.conv_layers.{idx + 1}"
                out.append(
                    parity.vector_rule(f"{norm}.weight", (*block, f"LayerNorm_{j}", "scale"))
                )
                out.append(parity.vector_rule(f"{norm}.bias", (*block, f"LayerNorm_{j}", "bias")))
    for i in range(n):
        out.append(
            parity.Rule(
                f"up_transpose_conv.{i}.layers.0.weight",
                ("params", f"TransposeConvBlock_{i}", "ConvTranspose_0", "kernel"),
                _transpose_conv_to_jax,
                _transpose_conv_to_pt,
            )
        )
    out.append(parity.conv_rule(f"up_conv.{n - 1}.1.weight", ("params", "Conv_0", "kernel")))
    out.append(parity.vector_rule(f"up_conv.{n - 1}.1.bias", ("params", "Conv_0", "bias")))
    return out


def jax_to_pytorch(params: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """flax params -> a complete PyTorch state dict (numpy); fails on any unmapped leaf."""
    return parity.jax_to_pytorch({"params": params}, rules(options))


def pytorch_to_jax(state_dict: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """PyTorch state dict -> nested flax params (numpy); fails on any unmapped key."""
    sd = {k: v.detach().cpu().numpy() if hasattr(v, "detach") else v for k, v in state_dict.items()}
    return parity.pytorch_to_jax(sd, rules(options))["params"]
