"""wmt Transformer layout and its JAX <-> PyTorch parameter map (framework-free).

The layout comes from the family's ``config.model`` dict (`workloads/wmt/spec.py`): sizes
(``vocab_size``, ``emb_dim``, ``num_heads``, ``num_layers``, ``mlp_dim``, ``max_len``) and the
variant switches (``pre_ln``, ``attention_temp``, ``activation``, ``glu``). The attention width
(upstream's ``qkv_dim``) equals ``emb_dim``, as in both of upstream's models.

Names are upstream's. flax: ``shared_embedding/embedding``; ``encoder/encoderblock_<i>`` with
``LayerNorm_0``, ``MultiHeadDotProductAttention_0`` (``query``/``key``/``value``/``out``, no
biases), ``LayerNorm_1``, ``MlpBlock_0`` (``Dense_0``, then ``Dense_1`` = GLU gate and
``Dense_2`` = output with GLU, else ``Dense_1`` = output); ``encoder/encoder_layernorm`` (pre-LN
only); ``decoder/encoderdecoderblock_<i>`` with ``LayerNorm_0..2``, self-attention
``MultiHeadDotProductAttention_0``, cross-attention ``MultiHeadDotProductAttention_1`` and
``MlpBlock_0``; ``decoder/encoderdecoder_layernorm`` (pre-LN only). PyTorch:
``shared_embedding``, ``encoder.encoder.layers.<i>.{self_attn.in_proj, self_attn.out_proj,
linear1, linear_glu, linear2, norm1, norm2}``, ``encoder.encoder.norm``,
``decoder.decoder.layers.<i>.{self_attn.in_proj, multihead_attn.q_proj, multihead_attn.kv_proj,
multihead_attn.out_proj, linear1, linear_glu, linear2, norm1..3}``, ``decoder.decoder.norm``.
The fused ``in_proj`` (q, k, v rows) and ``kv_proj`` (k, v rows) map to row blocks. Upstream's
PyTorch state dicts also carry aliases of the shared embedding and the sinusoidal table
(``encoder.shared_embedding.weight``, ``*pos_encoder.pe``); `pytorch_to_jax_params` ignores them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from algoperf.parity import (
    Rule,
    attention_in_rules,
    attention_out_rules,
    dense_rule,
    jax_to_pytorch,
    pytorch_to_jax,
    vector_rule,
)

ACTIVATIONS = ("relu", "tanh")
_SIZES = ("vocab_size", "emb_dim", "num_heads", "num_layers", "mlp_dim", "max_len")
# Eval options, read by `workloads.wmt.common` (translation, held-out prefixes), not the layout.
_EVAL_OPTIONS = {"max_decode_len", "beam_size", "eval_bleu", "eval_prefix"}
_ALLOWED = {*_SIZES, "pre_ln", "attention_temp", "activation", "glu", *_EVAL_OPTIONS}
_SPEC = "workloads/wmt/spec.py"


@dataclasses.dataclass(frozen=True)
class TransformerLayout:
    """What fixes the Transformer's parameters and its forward pass (upstream's defaults)."""

    vocab_size: int = 32_000
    emb_dim: int = 1024
    num_heads: int = 16
    num_layers: int = 6
    mlp_dim: int = 1024
    max_len: int = 256
    pre_ln: bool = True
    attention_temp: float = 1.0
    activation: str = "relu"
    glu: bool = False


def transformer_layout(options: Mapping[str, Any]) -> TransformerLayout:
    """The layout of a wmt ``config.model`` (unknown keys, activations and head splits refused)."""
    unknown = sorted(set(options) - _ALLOWED)
    if unknown:
        raise ValueError(
            f"{_SPEC}: unknown wmt model option(s) {unknown}; allowed: {sorted(_ALLOWED)}"
        )
    activation = str(options.get("activation", "relu"))
    if activation not in ACTIVATIONS:
        raise ValueError(f"{_SPEC}: activation {activation!r} is not one of {ACTIVATIONS}")
    defaults = TransformerLayout()
    sizes = {k: int(options.get(k, getattr(defaults, k))) for k in _SIZES}
    if sizes["emb_dim"] % sizes["num_heads"]:
        raise ValueError(
            f"{_SPEC}: emb_dim {sizes['emb_dim']} is not divisible by num_heads "
            f"{sizes['num_heads']}"
        )
    return TransformerLayout(
        **sizes,
        pre_ln=bool(options.get("pre_ln", True)),
        attention_temp=float(options.get("attention_temp", 1.0)),
        activation=activation,
        glu=bool(options.get("glu", False)),
    )


def sinusoidal_table(max_len: int, dim: int) -> np.ndarray:
    """Upstream's fixed position table (1, max_len, dim): sines in the first half, cosines next."""
    half = dim // 2
    position = np.arange(max_len, dtype=np.float64)[:, None]
    div_term = np.exp(np.arange(half) * (-np.log(10_000.0) / (half - 1)))
    table = np.zeros((max_len, dim), np.float32)
    table[:, :half] = np.sin(position * div_term)
    table[:, half : 2 * half] = np.cos(position * div_term)
    return table[None]


def _norm(pt: str, jax: tuple[str, ...]) -> list[Rule]:
    return [vector_rule(f"{pt}.weight", (*jax, "scale")), vector_rule(f"{pt}.bias", (*jax, "bias"))]


def _dense(pt: str, jax: tuple[str, ...]) -> list[Rule]:
    return [dense_rule(f"{pt}.weight", (*jax, "kernel")), vector_rule(f"{pt}.bias", (*jax, "bias"))]


def _attention(pt: str, jax: tuple[str, ...], layout: TransformerLayout, fused_q: bool) -> list:
    """Bias-free attention: fused in_proj (self) or q_proj + fused kv_proj (cross)."""
    d, h = layout.emb_dim, layout.num_heads
    out = []
    if fused_q:
        blocks = [("in_proj", "query", 0), ("in_proj", "key", 1), ("in_proj", "value", 2)]
    else:
        blocks = [("q_proj", "query", 0), ("kv_proj", "key", 0), ("kv_proj", "value", 1)]
    for pt_name, jax_name, k in blocks:
        rows = (k * d, (k + 1) * d) if pt_name != "q_proj" else None
        out += attention_in_rules(f"{pt}.{pt_name}", (*jax, jax_name), h, rows)[:1]
    return out + attention_out_rules(f"{pt}.out_proj", (*jax, "out"), h)[:1]


def _mlp(pt: str, jax: tuple[str, ...], layout: TransformerLayout) -> list[Rule]:
    names = ["linear1", "linear_glu", "linear2"] if layout.glu else ["linear1", "linear2"]
    out = []
    for k, name in enumerate(names):
        out += _dense(f"{pt}.{name}", (*jax, "MlpBlock_0", f"Dense_{k}"))
    return out


def rules(layout: TransformerLayout) -> list[Rule]:
    """One rule per parameter tensor (or row block), PyTorch key <-> flax path."""
    out = [vector_rule("shared_embedding.weight", ("params", "shared_embedding", "embedding"))]
    for i in range(layout.num_layers):
        pt, jx = f"encoder.encoder.layers.{i}", ("params", "encoder", f"encoderblock_{i}")
        out += _norm(f"{pt}.norm1", (*jx, "LayerNorm_0"))
        out += _attention(f"{pt}.self_attn", (*jx, "MultiHeadDotProductAttention_0"), layout, True)
        out += _norm(f"{pt}.norm2", (*jx, "LayerNorm_1"))
        out += _mlp(pt, jx, layout)
    for i in range(layout.num_layers):
        pt, jx = f"decoder.decoder.layers.{i}", ("params", "decoder", f"encoderdecoderblock_{i}")
        for k in range(3):
            out += _norm(f"{pt}.norm{k + 1}", (*jx, f"LayerNorm_{k}"))
        out += _attention(f"{pt}.self_attn", (*jx, "MultiHeadDotProductAttention_0"), layout, True)
        mha = (*jx, "MultiHeadDotProductAttention_1")
        out += _attention(f"{pt}.multihead_attn", mha, layout, False)
        out += _mlp(pt, jx, layout)
    if layout.pre_ln:
        out += _norm("encoder.encoder.norm", ("params", "encoder", "encoder_layernorm"))
        out += _norm("decoder.decoder.norm", ("params", "decoder", "encoderdecoder_layernorm"))
    return out


def _upstream_alias(key: str) -> bool:
    """Keys of upstream's PyTorch state dicts that repeat a shared tensor or a constant."""
    return key.endswith("pos_encoder.pe") or key in {
        "encoder.shared_embedding.weight",
        "decoder.shared_embedding.weight",
    }


def pytorch_to_jax_params(state_dict: Mapping[str, Any], options: Mapping[str, Any]) -> dict:
    """PyTorch state dict (this project's or upstream's) -> flax ``params`` tree (numpy)."""
    layout = transformer_layout(options)
    return pytorch_to_jax(state_dict, rules(layout), ignore=_upstream_alias)["params"]


def jax_to_pytorch_params(
    params: Mapping[str, Any], options: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    """flax ``params`` -> a complete PyTorch state dict of `model_pytorch.Transformer` (numpy)."""
    return jax_to_pytorch({"params": params}, rules(transformer_layout(options)))
