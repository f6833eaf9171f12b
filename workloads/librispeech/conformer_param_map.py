"""Conformer options (from ``config.model``) and the JAX <-> PyTorch parameter map (numpy).

Flax names are upstream's: ``Subsample_0/{Conv2dSubsampling_0,Conv2dSubsampling_1}/{kernel,bias}``
and ``Subsample_0/Dense_0``; per block ``ConformerBlock_<i>/`` ``FeedForwardModule_{0,1}/
{LayerNorm_0,Dense_0,Dense_1}``, ``MultiHeadedSelfAttention_0/LayerNorm_0`` and
``.../MultiHeadDotProductAttention_0/{query,key,value,out,QueryScaler_0}``,
``ConvolutionBlock_0/{LayerNorm_0,Dense_0,Dense_1,Conv_0,BatchNorm_0,Dense_2}`` and the post
``LayerNorm_0``; then the final ``LayerNorm_0`` and the output ``Dense_0``. PyTorch names are
upstream's too (``subsample.conv1``, ``conformers.<i>.ff1.linear1``, the fused
``mhsa.self_attention.in_proj`` (rows q, k, v), ``conv.conv1`` (depthwise), ``conv.bn``, ``ln``,
``lin``). Note that with ``use_post_layer_norm`` off a block has no ``LayerNorm`` of its own, so
flax numbering is unchanged (the post norm is the block's only direct ``LayerNorm``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from algoperf import parity

ACTIVATIONS = ("swish", "gelu")


@dataclasses.dataclass(frozen=True)
class ConformerOptions:
    """Model hyperparameters; defaults are upstream's ``ConformerConfig`` as its workload uses it.

    ``activation`` applies in the feed-forward modules and after the conv module's BatchNorm;
    ``gelu`` is the tanh approximation in both places and both frameworks (see the model docs).
    SpecAugment (``use_specaug``, mask counts) applies in train mode only.
    """

    vocab_size: int = 1024
    encoder_dim: int = 512
    num_attention_heads: int = 8
    num_encoder_layers: int = 4
    convolution_kernel_size: int = 5
    feed_forward_expansion_factor: int = 4
    batch_norm_momentum: float = 0.999
    batch_norm_epsilon: float = 1e-3
    attention_temperature: float = 1.0
    activation: str = "swish"
    use_post_layer_norm: bool = True
    num_bins: int = 80
    use_specaug: bool = True
    freq_mask_count: int = 2
    time_mask_count: int = 10

    @property
    def head_dim(self) -> int:
        return self.encoder_dim // self.num_attention_heads


_FIELDS = {f.name for f in dataclasses.fields(ConformerOptions)}


def conformer_options(options: Mapping[str, Any]) -> ConformerOptions:
    """Validated options from ``config.model`` (``arch`` must be ``conformer``; unknown keys fail)."""
    opts = dict(options)
    arch = opts.pop("arch", "conformer")
    if arch != "conformer":
        raise ValueError(f"workloads/librispeech/spec.py: arch {arch!r} is not 'conformer'")
    unknown = sorted(set(opts) - _FIELDS)
    if unknown:
        raise ValueError(
            f"workloads/librispeech/spec.py: unknown conformer model option(s) {unknown}; "
            f"allowed: {sorted(_FIELDS)}"
        )
    out = ConformerOptions(**opts)
    if out.activation not in ACTIVATIONS:
        raise ValueError(
            f"workloads/librispeech/spec.py: activation {out.activation!r} is not one of "
            f"{', '.join(ACTIVATIONS)}"
        )
    if out.encoder_dim % out.num_attention_heads:
        raise ValueError(
            f"workloads/librispeech/spec.py: encoder_dim {out.encoder_dim} is not a multiple of "
            f"num_attention_heads {out.num_attention_heads}"
        )
    return out


def _depthwise_to_jax(w: np.ndarray) -> np.ndarray:
    """(C, 1, K) torch depthwise Conv1d weight -> flax (K, 1, C)."""
    return np.transpose(w, (2, 1, 0))


def _depthwise_to_pt(k: np.ndarray) -> np.ndarray:
    return np.transpose(k, (2, 1, 0))


def _layer_norm(pt: str, jax: tuple[str, ...]) -> list[parity.Rule]:
    return [
        parity.vector_rule(f"{pt}.scale", (*jax, "scale")),
        parity.vector_rule(f"{pt}.bias", (*jax, "bias")),
    ]


def _dense(pt: str, jax: tuple[str, ...]) -> list[parity.Rule]:
    return [
        parity.dense_rule(f"{pt}.weight", (*jax, "kernel")),
        parity.vector_rule(f"{pt}.bias", (*jax, "bias")),
    ]


def rules(options: Mapping[str, Any]) -> list[parity.Rule]:
    """One `algoperf.parity.Rule` per tensor: ``params`` and the BatchNorm ``batch_stats``."""
    o = conformer_options(options)
    d, h = o.encoder_dim, o.num_attention_heads
    p = ("params",)
    sub = (*p, "Subsample_0")
    out = []
    for i in (0, 1):
        conv = (*sub, f"Conv2dSubsampling_{i}")
        out.append(parity.conv_rule(f"subsample.conv{i + 1}.kernel", (*conv, "kernel")))
        out.append(parity.vector_rule(f"subsample.conv{i + 1}.bias", (*conv, "bias")))
    out += _dense("subsample.linear", (*sub, "Dense_0"))
    for i in range(o.num_encoder_layers):
        pt, blk = f"conformers.{i}", (*p, f"ConformerBlock_{i}")
        for j in (0, 1):
            ff, jf = f"{pt}.ff{j + 1}", (*blk, f"FeedForwardModule_{j}")
            out += _layer_norm(f"{ff}.ln", (*jf, "LayerNorm_0"))
            out += _dense(f"{ff}.linear1", (*jf, "Dense_0"))
            out += _dense(f"{ff}.linear2", (*jf, "Dense_1"))
        mh, jm = f"{pt}.mhsa", (*blk, "MultiHeadedSelfAttention_0")
        out += _layer_norm(f"{mh}.ln", (*jm, "LayerNorm_0"))
        att = (*jm, "MultiHeadDotProductAttention_0")
        for k, name in enumerate(("query", "key", "value")):
            out += parity.attention_in_rules(
                f"{mh}.self_attention.in_proj", (*att, name), h, rows=(k * d, (k + 1) * d)
            )
        out += parity.attention_out_rules(f"{mh}.self_attention.out_proj", (*att, "out"), h)
        out.append(
            parity.vector_rule(f"{mh}.self_attention.qs.scale", (*att, "QueryScaler_0", "scale"))
        )
        cv, jc = f"{pt}.conv", (*blk, "ConvolutionBlock_0")
        out += _layer_norm(f"{cv}.ln", (*jc, "LayerNorm_0"))
        out += _dense(f"{cv}.lin1", (*jc, "Dense_0"))
        out += _dense(f"{cv}.lin2", (*jc, "Dense_1"))
        out.append(
            parity.Rule(
                f"{cv}.conv1.weight", (*jc, "Conv_0", "kernel"), _depthwise_to_jax, _depthwise_to_pt
            )
        )
        out += _layer_norm(f"{cv}.bn", (*jc, "BatchNorm_0"))
        stats = ("batch_stats", *jc[1:], "BatchNorm_0")
        out.append(parity.vector_rule(f"{cv}.bn.running_mean", (*stats, "mean")))
        out.append(parity.vector_rule(f"{cv}.bn.running_var", (*stats, "var")))
        out += _dense(f"{cv}.lin3", (*jc, "Dense_2"))
        if o.use_post_layer_norm:
            out += _layer_norm(f"{pt}.ln", (*blk, "LayerNorm_0"))
    out += _layer_norm("ln", (*p, "LayerNorm_0"))
    out += _dense("lin", (*p, "Dense_0"))
    return out


def pytorch_to_jax(state_dict: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """PyTorch state dict -> flax ``{"params": ..., "batch_stats": ...}``."""
    return parity.pytorch_to_jax(state_dict, rules(options))


def jax_to_pytorch(variables: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """Flax ``{"params": ..., "batch_stats": ...}`` -> PyTorch state dict (numpy)."""
    return parity.jax_to_pytorch(variables, rules(options))
