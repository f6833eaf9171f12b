"""ViT in PyTorch: upstream's PyTorch ViT-S/16 for imagenet_vit and its variants.

Same modules, parameter names, shapes, initialisation and construction order (so the same
seed draws the same initial weights) as upstream's PyTorch model: ``pre_logits`` and
``conv_patch_extract`` with `pytorch_default_init`, encoder blocks
``encoder.net.<i>.{layer_norm0, self_attention1.{query,key,value,out}, layer_norm2,
mlp3.{linear1, glu_linear, linear2}}`` (attention: Xavier-uniform weights, zero biases; MLP:
Xavier-uniform weights, N(0, 1e-6) biases), ``encoder.encoder_norm`` (pre-LN only), a
zero-initialised ``head``, and for ``use_map`` a MAP head ``map.{probe, attn, layer_norm, mlp}``
whose attention keeps upstream's fused key/value projection (``attn.kv_proj``). The MAP
attention module is named ``attn`` (upstream: ``mha``) so its tensors are typed as attention
parameters. LayerNorm epsilon 1e-6. Inputs are NCHW.

Dropout (``dropout_rate`` is a `forward` argument, default 0) sits where upstream's PyTorch
model puts it: after the position embedding, on attention probabilities, on the MLP hidden
layer, on both residual branches, and inside the MAP head (attention probabilities and MLP).
Upstream's JAX model drops neither attention probabilities nor the MAP head's MLP.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from algoperf.frameworks.pytorch import CustomDropout, pytorch_default_init
from workloads.imagenet.param_map import ViTLayout, posemb_sincos_2d, vit_layout


def _attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_heads: int, p: float
) -> torch.Tensor:
    """Softmax(q k^T / sqrt(head_dim)) v over heads; (n, t, d) inputs, (n, t_q, d) output."""
    n, tq, d = q.shape
    tk = k.shape[1]
    q = q.view(n, tq, num_heads, -1).transpose(1, 2)
    k = k.view(n, tk, num_heads, -1).transpose(1, 2)
    v = v.view(n, tk, num_heads, -1).transpose(1, 2)
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
    return out.transpose(1, 2).reshape(n, tq, d)


class MlpBlock(nn.Module):
    """linear1 -> GELU(tanh) [-> * glu_linear] -> dropout -> linear2."""

    def __init__(self, width: int, mlp_dim: int, use_glu: bool = False) -> None:
        super().__init__()
        self.linear1 = nn.Linear(width, mlp_dim)
        self.act_fnc = nn.GELU(approximate="tanh")
        self.glu_linear = nn.Linear(mlp_dim, mlp_dim) if use_glu else None
        self.dropout = CustomDropout()
        self.linear2 = nn.Linear(mlp_dim, width)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.normal_(m.bias, std=1e-6)

    def forward(self, x: torch.Tensor, dropout_rate: float) -> torch.Tensor:
        x = self.act_fnc(self.linear1(x))
        if self.glu_linear is not None:
            x = x * self.glu_linear(x)
        return self.linear2(self.dropout(x, dropout_rate))


class SelfAttention(nn.Module):
    """Multi-head self-attention with separate query/key/value/out projections."""

    def __init__(self, width: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, width)
        self.out = nn.Linear(width, width)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, dropout_rate: float) -> torch.Tensor:
        p = dropout_rate if self.training else 0.0
        ctx = _attention(self.query(x), self.key(x), self.value(x), self.num_heads, p)
        return self.out(ctx)


class Encoder1DBlock(nn.Module):
    """Self-attention + MLP, each a residual branch with dropout (pre-LN or post-LN)."""

    def __init__(self, layout: ViTLayout) -> None:
        super().__init__()
        self.use_post_layer_norm = layout.use_post_layer_norm
        self.layer_norm0 = nn.LayerNorm(layout.width, eps=1e-6)
        self.self_attention1 = SelfAttention(layout.width, layout.num_heads)
        self.layer_norm2 = nn.LayerNorm(layout.width, eps=1e-6)
        self.mlp3 = MlpBlock(layout.width, layout.mlp_dim, layout.use_glu)
        self.dropout = CustomDropout()

    def forward(self, x: torch.Tensor, dropout_rate: float) -> torch.Tensor:
        drop = self.dropout
        if not self.use_post_layer_norm:
            x = x + drop(self.self_attention1(self.layer_norm0(x), dropout_rate), dropout_rate)
            return x + drop(self.mlp3(self.layer_norm2(x), dropout_rate), dropout_rate)
        x = self.layer_norm0(x + drop(self.self_attention1(x, dropout_rate), dropout_rate))
        return self.layer_norm2(x + drop(self.mlp3(x, dropout_rate), dropout_rate))


class Encoder(nn.Module):
    """``depth`` encoder blocks (``net``), then ``encoder_norm`` unless post-LN."""

    def __init__(self, layout: ViTLayout) -> None:
        super().__init__()
        self.net = nn.ModuleList([Encoder1DBlock(layout) for _ in range(layout.depth)])
        self.encoder_norm = (
            None if layout.use_post_layer_norm else nn.LayerNorm(layout.width, eps=1e-6)
        )

    def forward(self, x: torch.Tensor, dropout_rate: float) -> torch.Tensor:
        for block in self.net:
            x = block(x, dropout_rate)
        return x if self.encoder_norm is None else self.encoder_norm(x)


class CrossAttention(nn.Module):
    """Attention of queries over a memory: ``q_proj``, fused ``kv_proj`` (2d rows), ``out_proj``.

    Xavier-uniform weights and N(0, 1e-6) biases (upstream's WMT attention, which its MAP head
    reuses).
    """

    def __init__(self, width: int, num_heads: int) -> None:
        super().__init__()
        self.width, self.num_heads = width, num_heads
        self.q_proj = nn.Linear(width, width)
        self.kv_proj = nn.Linear(width, 2 * width)
        self.out_proj = nn.Linear(width, width)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.normal_(m.bias, std=1e-6)

    def forward(self, x: torch.Tensor, mem: torch.Tensor, dropout_rate: float) -> torch.Tensor:
        k, v = self.kv_proj(mem).split(self.width, dim=2)
        p = dropout_rate if self.training else 0.0
        return self.out_proj(_attention(self.q_proj(x), k, v, self.num_heads, p))


class MAPHead(nn.Module):
    """Multihead attention pooling: a learned probe attends over the tokens, then + MLP(LN(x))."""

    def __init__(self, layout: ViTLayout) -> None:
        super().__init__()
        self.probe = nn.Parameter(torch.zeros((1, 1, layout.width)))
        nn.init.xavier_uniform_(self.probe.data)
        self.attn = CrossAttention(layout.width, layout.num_heads)
        self.layer_norm = nn.LayerNorm(layout.width, eps=1e-6)
        self.mlp = MlpBlock(layout.width, layout.mlp_dim)

    def forward(self, x: torch.Tensor, dropout_rate: float) -> torch.Tensor:
        probe = self.probe.expand(x.shape[0], -1, -1)
        x = self.attn(probe, x, dropout_rate)
        x = x + self.mlp(self.layer_norm(x), dropout_rate)
        return x[:, 0]


class ViT(nn.Module):
    """A ViT described by a `ViTLayout` (inputs NCHW float, outputs logits)."""

    def __init__(self, layout: ViTLayout, head_zeroinit: bool = True) -> None:
        super().__init__()
        self.layout = layout
        # Construction order follows upstream: it fixes the order of random draws at init.
        self.pre_logits = nn.Linear(layout.width, layout.width)
        p = layout.patch_size
        self.conv_patch_extract = nn.Conv2d(3, layout.width, p, stride=p, padding="valid")
        self.encoder = Encoder(layout)
        self.head = nn.Linear(layout.width, layout.num_classes)
        self.map = MAPHead(layout) if layout.use_map else None
        self.dropout = CustomDropout()
        self._posemb: dict[tuple, torch.Tensor] = {}

        pytorch_default_init(self.conv_patch_extract)
        pytorch_default_init(self.pre_logits)
        if head_zeroinit:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        else:
            pytorch_default_init(self.head)

    def _position_embedding(self, h: int, w: int, x: torch.Tensor) -> torch.Tensor:
        key = (h, w, x.shape[-1], x.device, x.dtype)
        if key not in self._posemb:
            pe = posemb_sincos_2d(h, w, x.shape[-1])
            self._posemb[key] = torch.from_numpy(pe).to(device=x.device, dtype=x.dtype)
        return self._posemb[key]

    def forward(self, x: torch.Tensor, dropout_rate: float = 0.0) -> torch.Tensor:
        x = self.conv_patch_extract(x)
        n, c, h, w = x.shape
        x = x.reshape(n, c, h * w).transpose(1, 2)
        x = self.dropout(x + self._position_embedding(h, w, x), dropout_rate)
        x = self.encoder(x, dropout_rate)
        x = torch.mean(x, dim=1) if self.map is None else self.map(x, dropout_rate)
        x = torch.tanh(self.pre_logits(x))
        return self.head(x)


def build_model(options: Mapping[str, Any], *, head_zeroinit: bool = True) -> ViT:
    """The ViT of ``config.model`` (``arch``, ``use_glu``, ``use_post_layer_norm``, ``use_map``)."""
    return ViT(vit_layout(options), head_zeroinit=head_zeroinit)
