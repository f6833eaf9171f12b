"""Upstream's finewebedu_lm decoder-only Transformer in PyTorch (the forward pass of `model_jax`).

Module names are upstream's PyTorch names (see `workloads.finewebedu_lm.param_map`), so state
dicts map either way. Where upstream's two models differ, this one follows the JAX model:

* QK-norm is ``q / (||q|| + eps)``; upstream's PyTorch writes ``q / torch.norm(q) + eps``,
  which by operator precedence adds eps after the division;
* mixed precision is the JAX policy, written out: float32 parameters are cast to the compute
  dtype where they are used (upstream's PyTorch runs under ``torch.autocast``, which keeps the
  embedding and the residual stream in float32), so the residual stream is in the compute dtype,
  RMSNorm statistics and RoPE are float32, and logits come back in the compute dtype;
* the tied output layer is the embedding itself (no ``lm_head`` module, so no second state-dict
  key); an untied layout adds ``lm_head``.

Init as both upstream models: normal(0.02) on the embedding and every projection, the two
residual outputs (``attn.w_out``, ``mlp.fc2``) normal(0.02 / sqrt(2 * num_layers)), RMSNorm
weights 1, ``attn_scale`` log2(L^2 - L). Attention is `F.scaled_dot_product_attention` (causal,
scale 1), which picks a fused kernel on a GPU and runs on a CPU.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from workloads.finewebedu_lm.param_map import LmLayout, lm_layout, rope_table


def _dtype(layout: LmLayout) -> torch.dtype:
    return getattr(torch, layout.compute_dtype)


class RMSNorm(nn.Module):
    """flax's RMSNorm: float32 statistics, ``x * rsqrt(mean(x^2) + eps) * scale``."""

    def __init__(self, dim: int, eps: float, dtype: torch.dtype) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        mul = torch.rsqrt(x32.square().mean(-1, keepdim=True) + self.eps)
        mul = mul * self.weight.to(self.dtype).float()
        return (x32 * mul).to(self.dtype)


def apply_rope(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Rotate the (B, L, H, Dh) `x` by RoPE's (L_max, Dh/2, 2) table, in float32."""
    pairs = x.float().unflatten(-1, (-1, 2))
    t = table[None, : x.shape[1], None]
    cos, sin = t[..., 0], t[..., 1]
    a, b = pairs[..., 0], pairs[..., 1]
    out = torch.stack([a * cos - b * sin, b * cos + a * sin], dim=-1)
    return out.flatten(-2).to(x.dtype)


def qk_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    """``x / (||x|| + eps)`` over the head dimension (upstream's JAX definition)."""
    return x / (torch.linalg.vector_norm(x, dim=-1, keepdim=True) + eps)


def _linear(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    return F.linear(x, layer.weight.to(x.dtype))


class Attention(nn.Module):
    """Causal self-attention with RoPE and QK-norm (fused q, k, v projection)."""

    def __init__(self, layout: LmLayout) -> None:
        super().__init__()
        d = layout.model_dim
        self.layout = layout
        self.w_qkv = nn.Linear(d, 3 * d, bias=False)
        self.w_out = nn.Linear(d, d, bias=False)
        self.attn_scale = nn.Parameter(torch.tensor(layout.attn_scale_init, dtype=torch.float32))

    def forward(self, x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
        lay = self.layout
        b, n, d = x.shape
        q, k, v = _linear(x, self.w_qkv).split(d, dim=-1)
        q, k, v = (t.view(b, n, lay.num_heads, lay.head_dim) for t in (q, k, v))
        q, k = apply_rope(q, rope), apply_rope(k, rope)
        q, k = qk_norm(q, lay.qknorm_epsilon), qk_norm(k, lay.qknorm_epsilon)
        q = q * self.attn_scale.to(q.dtype)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True, scale=1.0
        )
        return _linear(out.transpose(1, 2).reshape(b, n, d), self.w_out)


class MLP(nn.Module):
    """Linear to 2F, GLU (first half times sigmoid of the second), Linear to D."""

    def __init__(self, layout: LmLayout) -> None:
        super().__init__()
        self.fc1 = nn.Linear(layout.model_dim, 2 * layout.hidden_dim, bias=False)
        self.fc2 = nn.Linear(layout.hidden_dim, layout.model_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _linear(F.glu(_linear(x, self.fc1), dim=-1), self.fc2)


class Block(nn.Module):
    """Pre-norm block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``."""

    def __init__(self, layout: LmLayout) -> None:
        super().__init__()
        dtype = _dtype(layout)
        self.attn_norm = RMSNorm(layout.model_dim, layout.rmsnorm_epsilon, dtype)
        self.attn = Attention(layout)
        self.mlp_norm = RMSNorm(layout.model_dim, layout.rmsnorm_epsilon, dtype)
        self.mlp = MLP(layout)

    def forward(self, x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), rope)
        return x + self.mlp(self.mlp_norm(x))


class Transformer(nn.Module):
    """The decoder: (B, L) token ids -> (B, L, vocab) logits in the compute dtype."""

    def __init__(self, layout: LmLayout) -> None:
        super().__init__()
        self.layout = layout
        self.compute_dtype = _dtype(layout)
        self.embed_tokens = nn.Embedding(layout.vocab_size, layout.model_dim)
        self.layers = nn.ModuleList(Block(layout) for _ in range(layout.num_layers))
        self.out_norm = RMSNorm(layout.model_dim, layout.rmsnorm_epsilon, self.compute_dtype)
        if not layout.tie_embeddings:
            self.lm_head = nn.Linear(layout.model_dim, layout.vocab_size, bias=False)
        self.register_buffer("rope", torch.from_numpy(rope_table(layout)), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Upstream's init (module docstring)."""
        lay = self.layout
        for name, p in self.named_parameters():
            if name.endswith(("w_out.weight", "fc2.weight")):
                nn.init.normal_(p, std=lay.residual_init_std)
            elif name.endswith("norm.weight"):
                nn.init.ones_(p)
            elif name.endswith("attn_scale"):
                nn.init.constant_(p, lay.attn_scale_init)
            else:
                nn.init.normal_(p, std=0.02)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        dtype = self.compute_dtype
        x = F.embedding(ids, self.embed_tokens.weight.to(dtype))
        rope = self.rope.to(x.device)
        for layer in self.layers:
            x = layer(x, rope)
        x = self.out_norm(x)
        head = self.embed_tokens.weight if self.layout.tie_embeddings else self.lm_head.weight
        return F.linear(x, head.to(dtype))


def build_model(options: Mapping[str, Any]) -> Transformer:
    """The decoder for a ``config.model`` dict (float32 parameters, upstream's init)."""
    return Transformer(lm_layout(options))


def param_shapes(options: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Parameter shapes from a meta-device build (no memory, no init)."""
    with torch.device("meta"):
        model = build_model(options)
    return {name: tuple(p.shape) for name, p in model.named_parameters()}
