"""ImageNet model layouts shared by both frameworks, and the JAX <-> PyTorch parameter maps.

The ResNet layout and map are `workloads.common.resnet_layout` (CIFAR shares them); this module
reads the ImageNet ``config.model`` into one and defines the ViT's.

Framework-free (numpy only). A *layout* is the validated architecture read from
``config.model``: the JAX and PyTorch model files build from it and the parameter map derives
its name rules from it, so the three cannot disagree about, say, where a projection shortcut
sits. Names on each side are upstream's:

ViT (flax)                                     ViT (PyTorch)
  conv_patch_extract                             conv_patch_extract
  Transformer/encoderblock_<i>/LayerNorm_0       encoder.net.<i>.layer_norm0
  .../MultiHeadDotProductAttention_1/query ...   encoder.net.<i>.self_attention1.query ...
  .../LayerNorm_2                                encoder.net.<i>.layer_norm2
  .../MlpBlock_3/Dense_0 [Dense_1 glu] Dense_n   encoder.net.<i>.mlp3.linear1 [glu_linear] linear2
  Transformer/encoder_layernorm (pre-LN only)    encoder.encoder_norm
  MAPHead_0/probe, /MultiHeadDotProductAttention_0/{query, key, value, out}
                                                 map.probe, map.attn.{q_proj, kv_proj, out_proj}
  MAPHead_0/LayerNorm_0, /MlpBlock_0             map.layer_norm, map.mlp
  pre_logits, head                               pre_logits, head

The MAP head's PyTorch attention keeps upstream's fused key/value projection (one (2d, d)
tensor split into the flax key and value kernels) but sits in a module named ``attn`` rather
than upstream's ``mha``, so `algoperf.param_utils.pytorch_param_type` types its tensors as
attention parameters.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from algoperf import parity
from algoperf.parity import Rule, conv_rule, dense_rule, vector_rule
from workloads.common.resnet_layout import ACTIVATIONS, ResNetLayout

# The ResNet map, re-exported: this module is the family's one parameter map.
from workloads.common.resnet_layout import resnet_jax_to_pytorch as resnet_jax_to_pytorch
from workloads.common.resnet_layout import resnet_pytorch_to_jax as resnet_pytorch_to_jax

_RESNET_ARCHS = {"resnet18": ((2, 2, 2, 2), False), "resnet50": ((3, 4, 6, 3), True)}
# ViT size table (width, depth, mlp_dim, num_heads) from "Scaling Vision Transformers", Table 2.
_VIT_SIZES = {"s": (384, 12, 1536, 6), "b": (768, 12, 3072, 12)}
_SPEC = "workloads/imagenet/spec.py"


def _check_keys(options: Mapping[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(
            f"{_SPEC}: unknown {what} model option(s) {unknown}; allowed: {sorted(allowed)}"
        )


# ResNet ----------------------------------------------------------------------------------------


def resnet_layout(options: Mapping[str, Any]) -> ResNetLayout:
    """The ResNet layout of an ImageNet ``config.model`` (``arch`` resnet50 or resnet18)."""
    _check_keys(options, {"arch", "activation", "bn_init_scale", "num_classes"}, "ResNet")
    arch = options.get("arch", "resnet50")
    if arch not in _RESNET_ARCHS:
        raise ValueError(f"{_SPEC}: unknown ResNet arch {arch!r}; use one of {list(_RESNET_ARCHS)}")
    stage_sizes, bottleneck = _RESNET_ARCHS[arch]
    if options.get("activation", "relu") not in ACTIVATIONS:
        raise ValueError(
            f"{_SPEC}: unknown ResNet activation {options['activation']!r}; "
            f"use one of {ACTIVATIONS}"
        )
    return ResNetLayout(
        stage_sizes=stage_sizes,
        bottleneck=bottleneck,
        num_classes=int(options.get("num_classes", 1000)),
        activation=options.get("activation", "relu"),
        bn_init_scale=float(options.get("bn_init_scale", 0.0)),
    )


# ViT -------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ViTLayout:
    """A ViT without class token, sin-cos position embedding, mean pooling (or MAP) and tanh
    pre-logits, as upstream builds it (``decode_variant('S/16')``)."""

    num_classes: int
    width: int = 384
    depth: int = 12
    mlp_dim: int = 1536
    num_heads: int = 6
    patch_size: int = 16
    use_glu: bool = False
    use_post_layer_norm: bool = False
    use_map: bool = False

    def __post_init__(self) -> None:
        if self.width % 4 or self.width % self.num_heads:
            raise ValueError(
                f"ViT width {self.width} must be a multiple of 4 and of num_heads {self.num_heads}"
            )


def vit_layout(options: Mapping[str, Any]) -> ViTLayout:
    """The ViT layout of an ImageNet ``config.model`` (``arch`` ``vit_s16``, ``vit_b16``, ...)."""
    _check_keys(
        options, {"arch", "use_glu", "use_post_layer_norm", "use_map", "num_classes"}, "ViT"
    )
    arch = str(options.get("arch", "vit_s16"))
    match = re.fullmatch(r"vit_([a-z]+)(\d+)", arch)
    if match is None or match.group(1) not in _VIT_SIZES:
        raise ValueError(
            f"{_SPEC}: unknown ViT arch {arch!r}; use vit_<size><patch> with size in "
            f"{sorted(_VIT_SIZES)}, e.g. vit_s16"
        )
    width, depth, mlp_dim, num_heads = _VIT_SIZES[match.group(1)]
    return ViTLayout(
        num_classes=int(options.get("num_classes", 1000)),
        width=width,
        depth=depth,
        mlp_dim=mlp_dim,
        num_heads=num_heads,
        patch_size=int(match.group(2)),
        use_glu=bool(options.get("use_glu", False)),
        use_post_layer_norm=bool(options.get("use_post_layer_norm", False)),
        use_map=bool(options.get("use_map", False)),
    )


def posemb_sincos_2d(h: int, w: int, width: int, temperature: float = 10_000.0) -> np.ndarray:
    """Fixed 2-D sin-cos position embedding (MoCo v3), shape (1, h * w, width), float32.

    Token ``t = row * w + col`` gets ``[sin(col * om), cos(col * om), sin(row * om),
    cos(row * om)]`` with ``om_k = temperature ** -(k / (width / 4 - 1))``, ``k < width / 4``.
    Computed once in float64 here so both frameworks add the very same constant.
    """
    if width % 4:
        raise ValueError(f"sin-cos position embedding needs a width divisible by 4, got {width}")
    rows, cols = np.mgrid[:h, :w]
    omega = 1.0 / temperature ** (np.arange(width // 4) / (width // 4 - 1))
    y = rows.reshape(-1)[:, None] * omega[None, :]
    x = cols.reshape(-1)[:, None] * omega[None, :]
    pe = np.concatenate([np.sin(x), np.cos(x), np.sin(y), np.cos(y)], axis=1)
    return pe[None].astype(np.float32)


def _ln_rules(pt: str, jax: tuple[str, ...]) -> list[Rule]:
    return [vector_rule(f"{pt}.weight", (*jax, "scale")), vector_rule(f"{pt}.bias", (*jax, "bias"))]


def _linear_rules(pt: str, jax: tuple[str, ...]) -> list[Rule]:
    return [
        dense_rule(f"{pt}.weight", (*jax, "kernel")),
        vector_rule(f"{pt}.bias", (*jax, "bias")),
    ]


def _mlp_rules(pt: str, jax: tuple[str, ...], use_glu: bool) -> list[Rule]:
    rules = _linear_rules(f"{pt}.linear1", (*jax, "Dense_0"))
    if use_glu:
        rules += _linear_rules(f"{pt}.glu_linear", (*jax, "Dense_1"))
    return rules + _linear_rules(f"{pt}.linear2", (*jax, "Dense_2" if use_glu else "Dense_1"))


def vit_rules(layout: ViTLayout) -> list[Rule]:
    """Every parameter of a ViT, PyTorch key <-> flax path."""
    h, d = layout.num_heads, layout.width
    rules = [
        conv_rule("conv_patch_extract.weight", ("params", "conv_patch_extract", "kernel")),
        vector_rule("conv_patch_extract.bias", ("params", "conv_patch_extract", "bias")),
    ]
    for i in range(layout.depth):
        pt, jx = f"encoder.net.{i}", ("params", "Transformer", f"encoderblock_{i}")
        attn_pt, attn_jx = f"{pt}.self_attention1", (*jx, "MultiHeadDotProductAttention_1")
        rules += _ln_rules(f"{pt}.layer_norm0", (*jx, "LayerNorm_0"))
        for name in ("query", "key", "value"):
            rules += parity.attention_in_rules(f"{attn_pt}.{name}", (*attn_jx, name), h)
        rules += parity.attention_out_rules(f"{attn_pt}.out", (*attn_jx, "out"), h)
        rules += _ln_rules(f"{pt}.layer_norm2", (*jx, "LayerNorm_2"))
        rules += _mlp_rules(f"{pt}.mlp3", (*jx, "MlpBlock_3"), layout.use_glu)
    if not layout.use_post_layer_norm:
        rules += _ln_rules("encoder.encoder_norm", ("params", "Transformer", "encoder_layernorm"))
    if layout.use_map:
        jx = ("params", "MAPHead_0")
        attn_jx = (*jx, "MultiHeadDotProductAttention_0")
        rules.append(vector_rule("map.probe", (*jx, "probe")))
        rules += parity.attention_in_rules("map.attn.q_proj", (*attn_jx, "query"), h)
        rules += parity.attention_in_rules("map.attn.kv_proj", (*attn_jx, "key"), h, (0, d))
        rules += parity.attention_in_rules("map.attn.kv_proj", (*attn_jx, "value"), h, (d, 2 * d))
        rules += parity.attention_out_rules("map.attn.out_proj", (*attn_jx, "out"), h)
        rules += _ln_rules("map.layer_norm", (*jx, "LayerNorm_0"))
        rules += _mlp_rules("map.mlp", (*jx, "MlpBlock_0"), use_glu=False)
    rules += _linear_rules("pre_logits", ("params", "pre_logits"))
    rules += _linear_rules("head", ("params", "head"))
    return rules


def vit_pytorch_to_jax(
    state_dict: Mapping[str, Any], layout: ViTLayout
) -> tuple[dict[str, Any], dict[str, Any]]:
    """PyTorch ViT state dict -> ``(params, {})`` (the ViT has no model state)."""
    return parity.pytorch_to_jax(state_dict, vit_rules(layout))["params"], {}


def vit_jax_to_pytorch(params: Mapping[str, Any], layout: ViTLayout) -> dict[str, np.ndarray]:
    """flax ViT ``params`` -> a PyTorch state dict (numpy)."""
    return parity.jax_to_pytorch({"params": params}, vit_rules(layout))
