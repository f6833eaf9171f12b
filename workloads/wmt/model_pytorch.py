"""Upstream's wmt encoder-decoder Transformer in PyTorch (same forward pass as `model_jax`).

Module names are upstream's PyTorch names (see `workloads.wmt.param_map`), so state dicts map
either way. Two choices differ from upstream's PyTorch model and follow its JAX model instead:
no dropout on the attention probabilities (upstream's PyTorch drops them at the main rate) and
the GLU gate of every decoder block is ``Linear(emb_dim, mlp_dim)`` (upstream's PyTorch declares
``Linear(mlp_dim, mlp_dim)``, the same shape at full size). The shared embedding and the
sinusoidal table (a non-persistent buffer) are held once, at the top, not aliased into the
encoder and decoder. Init as upstream's PyTorch: Xavier-uniform on every Linear weight as built
(the fused q/k/v and k/v projections too), normal(1e-6) biases, embedding normal(1.0).
Masks are additive -1e10, as upstream's PyTorch.

Incremental decoding (`Transformer.decode_step`): one target token per call; each decoder layer
keeps its self-attention keys and values in a cache of (batch, heads, max_decode_len, head_dim)
tensors written at the step index, and the cross-attention keys and values of the encoding are
projected once per source batch (`Transformer.memory_kv`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from workloads.wmt.param_map import TransformerLayout, sinusoidal_table, transformer_layout

_ACTIVATIONS = {"relu": F.relu, "tanh": torch.tanh}
_NEG = -1e10


def _additive(mask: torch.Tensor) -> torch.Tensor:
    """(batch, q, k) boolean keep-mask -> (batch, 1, q, k) additive float mask."""
    return torch.zeros(mask.shape, dtype=torch.float32, device=mask.device).masked_fill(
        ~mask, _NEG
    )[:, None]


class MultiheadAttention(nn.Module):
    """Bias-free attention; fused ``in_proj`` for self-attention, ``q_proj`` + ``kv_proj`` else."""

    def __init__(self, layout: TransformerLayout, self_attn: bool) -> None:
        super().__init__()
        d = layout.emb_dim
        self.num_heads, self.self_attn, self.attention_temp = (
            layout.num_heads,
            self_attn,
            layout.attention_temp,
        )
        if self_attn:
            self.in_proj = nn.Linear(d, 3 * d, bias=False)
        else:
            self.q_proj = nn.Linear(d, d, bias=False)
            self.kv_proj = nn.Linear(d, 2 * d, bias=False)
        self.out_proj = nn.Linear(d, d, bias=False)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        return t.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

    def memory_kv(self, mem: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-attention (k, v) of `mem`, each (batch, heads, length, head_dim)."""
        k, v = self.kv_proj(mem).split(mem.shape[-1], dim=-1)
        return self._heads(k), self._heads(v)

    def project(self, x: torch.Tensor, mem: torch.Tensor | None = None, kv=None) -> tuple:
        """(q, k, v), each (batch, heads, length, head_dim); q scaled by the temperature."""
        d = x.shape[-1]
        if self.self_attn:
            q, k, v = self.in_proj(x).split(d, dim=-1)
            k, v = self._heads(k), self._heads(v)
        else:
            q = self.q_proj(x)
            k, v = self.memory_kv(mem) if kv is None else kv
        return self._heads(self.attention_temp * q), k, v

    def attend(self, q, k, v, mask: torch.Tensor | None) -> torch.Tensor:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).flatten(-2))

    def forward(self, x, mem=None, mask=None, kv=None) -> torch.Tensor:
        return self.attend(*self.project(x, mem, kv), mask)

    def cached(self, x: torch.Tensor, cache: dict[str, torch.Tensor], index: int) -> torch.Tensor:
        """Self-attention of the (batch, 1, d) step `x` over the cached steps 0..index.

        Writes this step's keys and values into ``cache['k']``/``cache['v']`` at `index`.
        """
        q, k, v = self.project(x)
        cache["k"][:, :, index] = k[:, :, 0]
        cache["v"][:, :, index] = v[:, :, 0]
        return self.attend(q, cache["k"][:, :, : index + 1], cache["v"][:, :, : index + 1], None)


class _Block(nn.Module):
    """The MLP shared by encoder and decoder layers."""

    def _init_mlp(self, layout: TransformerLayout) -> None:
        self.linear1 = nn.Linear(layout.emb_dim, layout.mlp_dim)
        self.glu = layout.glu
        if layout.glu:
            self.linear_glu = nn.Linear(layout.emb_dim, layout.mlp_dim)
        self.linear2 = nn.Linear(layout.mlp_dim, layout.emb_dim)
        self.activation = _ACTIVATIONS[layout.activation]
        self.pre_ln = layout.pre_ln

    def _ff_block(self, inputs: torch.Tensor, p: float) -> torch.Tensor:
        x = self.activation(self.linear1(inputs))
        if self.glu:
            x = x * self.linear_glu(inputs)
        x = self.linear2(F.dropout(x, p, self.training))
        return F.dropout(x, p, self.training)

    def _sub(self, x, norm: nn.Module, fn, p: float) -> torch.Tensor:
        """One residual sub-layer, pre-LN or post-LN."""
        if self.pre_ln:
            return x + F.dropout(fn(norm(x)), p, self.training)
        return norm(x + F.dropout(fn(x), p, self.training))


class TransformerEncoderLayer(_Block):
    def __init__(self, layout: TransformerLayout) -> None:
        super().__init__()
        self.self_attn = MultiheadAttention(layout, self_attn=True)
        self._init_mlp(layout)
        self.norm1 = nn.LayerNorm(layout.emb_dim, eps=1e-6)
        self.norm2 = nn.LayerNorm(layout.emb_dim, eps=1e-6)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, p: float) -> torch.Tensor:
        x = self._sub(x, self.norm1, lambda h: self.self_attn(h, mask=mask), p)
        if self.pre_ln:
            return x + self._ff_block(self.norm2(x), p)
        return self.norm2(x + self._ff_block(x, p))


class TransformerDecoderLayer(_Block):
    def __init__(self, layout: TransformerLayout) -> None:
        super().__init__()
        self.self_attn = MultiheadAttention(layout, self_attn=True)
        self.multihead_attn = MultiheadAttention(layout, self_attn=False)
        self._init_mlp(layout)
        self.norm1 = nn.LayerNorm(layout.emb_dim, eps=1e-6)
        self.norm2 = nn.LayerNorm(layout.emb_dim, eps=1e-6)
        self.norm3 = nn.LayerNorm(layout.emb_dim, eps=1e-6)

    def forward(
        self, x, memory, tgt_mask, memory_mask, p: float, cache=None, index: int = 0, kv=None
    ) -> torch.Tensor:
        """Teacher-forced, or one decoding step when `cache` (and the memory's `kv`) is given."""
        if cache is None:
            attend = lambda h: self.self_attn(h, mask=tgt_mask)  # noqa: E731
        else:
            attend = lambda h: self.self_attn.cached(h, cache, index)  # noqa: E731
        x = self._sub(x, self.norm1, attend, p)
        cross = lambda h: self.multihead_attn(h, memory, memory_mask, kv)  # noqa: E731
        x = self._sub(x, self.norm2, cross, p)
        if self.pre_ln:
            return x + self._ff_block(self.norm3(x), p)
        return self.norm3(x + self._ff_block(x, p))


class _Stack(nn.Module):
    def __init__(self, layers: list[nn.Module], layout: TransformerLayout) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = nn.LayerNorm(layout.emb_dim, eps=1e-6) if layout.pre_ln else None


class Encoder(nn.Module):
    def __init__(self, layout: TransformerLayout) -> None:
        super().__init__()
        layers = [TransformerEncoderLayer(layout) for _ in range(layout.num_layers)]
        self.encoder = _Stack(layers, layout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, p: float) -> torch.Tensor:
        for layer in self.encoder.layers:
            x = layer(x, mask, p)
        return x if self.encoder.norm is None else self.encoder.norm(x)


class Decoder(nn.Module):
    def __init__(self, layout: TransformerLayout) -> None:
        super().__init__()
        layers = [TransformerDecoderLayer(layout) for _ in range(layout.num_layers)]
        self.decoder = _Stack(layers, layout)

    def forward(self, y, memory, tgt_mask, memory_mask, p: float) -> torch.Tensor:
        for layer in self.decoder.layers:
            y = layer(y, memory, tgt_mask, memory_mask, p)
        return y if self.decoder.norm is None else self.decoder.norm(y)


def shift_right(x: torch.Tensor) -> torch.Tensor:
    """Prepend a 0 (the decoder's start token) and drop the last position."""
    return F.pad(x, (1, 0))[:, :-1]


def _pair_mask(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(batch, len_a, len_b) mask of both positions being non-padding."""
    return (a > 0)[:, :, None] & (b > 0)[:, None, :]


def _same(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a[:, :, None] == b[:, None, :]


class Transformer(nn.Module):
    """``forward(src, tgt, ...)`` returns (batch, target length, vocab) logits."""

    def __init__(self, layout: TransformerLayout) -> None:
        super().__init__()
        self.layout = layout
        self.shared_embedding = nn.Embedding(layout.vocab_size, layout.emb_dim)
        # A storage of its own (the numpy table's leading axis has stride 0, which DDP's
        # in-place buffer broadcast refuses).
        table = torch.from_numpy(sinusoidal_table(layout.max_len, layout.emb_dim))
        self.register_buffer("pe", table.clone(memory_format=torch.contiguous_format), False)
        self.encoder = Encoder(layout)
        self.decoder = Decoder(layout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Upstream's PyTorch init (module docstring); the embedding is normal(1.0)."""
        nn.init.normal_(self.shared_embedding.weight, std=1.0)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.normal_(module.bias, std=1e-6)

    def _embed(self, tokens: torch.Tensor, positions: torch.Tensor | None, p: float):
        x = self.shared_embedding(tokens)
        pe = self.pe[:, : x.shape[1]] if positions is None else self.pe[0, positions]
        return F.dropout(x + pe, p, self.training)

    def encode(self, src, inputs_positions=None, inputs_segmentation=None, dropout_rate=0.0):
        """Encoder output; padding (id 0) and other segments are masked out of attention."""
        src = src.long()
        mask = _pair_mask(src, src)
        if inputs_segmentation is not None:
            mask = mask & _same(inputs_segmentation, inputs_segmentation)
        x = self._embed(src, inputs_positions, dropout_rate)
        return self.encoder(x, _additive(mask), dropout_rate)

    def logits(self, y: torch.Tensor) -> torch.Tensor:
        """Tied output layer: y @ embedding^T / sqrt(emb_dim)."""
        return y.float() @ self.shared_embedding.weight.T / math.sqrt(y.shape[-1])

    def decode(
        self,
        memory,
        src,
        tgt,
        targets_positions=None,
        inputs_segmentation=None,
        targets_segmentation=None,
        dropout_rate=0.0,
    ) -> torch.Tensor:
        """Teacher-forced decoder logits (causal, padding and segment masks)."""
        src, tgt = src.long(), tgt.long()
        n = tgt.shape[1]
        causal = torch.ones(n, n, dtype=torch.bool, device=tgt.device).tril()
        tgt_mask = _pair_mask(tgt, tgt) & causal
        memory_mask = _pair_mask(tgt, src)
        if inputs_segmentation is not None:
            tgt_mask = tgt_mask & _same(targets_segmentation, targets_segmentation)
            memory_mask = memory_mask & _same(targets_segmentation, inputs_segmentation)
        y = self._embed(shift_right(tgt), targets_positions, dropout_rate)
        y = self.decoder(y, memory, _additive(tgt_mask), _additive(memory_mask), dropout_rate)
        return self.logits(y)

    def forward(
        self,
        src: torch.Tensor,
        tgt: torch.Tensor,
        inputs_positions: torch.Tensor | None = None,
        targets_positions: torch.Tensor | None = None,
        inputs_segmentation: torch.Tensor | None = None,
        targets_segmentation: torch.Tensor | None = None,
        dropout_rate: float = 0.0,
    ) -> torch.Tensor:
        memory = self.encode(src, inputs_positions, inputs_segmentation, dropout_rate)
        return self.decode(
            memory,
            src,
            tgt,
            targets_positions,
            inputs_segmentation,
            targets_segmentation,
            dropout_rate,
        )


def build_model(options: Mapping[str, Any]) -> Transformer:
    """The Transformer of a wmt ``config.model`` dict (works under ``torch.device('meta')``)."""
    return Transformer(transformer_layout(options))


def decode_step(
    model: Transformer,
    memory_kv: list[tuple[torch.Tensor, torch.Tensor]],
    src: torch.Tensor,
    token: torch.Tensor,
    cache: list[dict[str, torch.Tensor]],
    index: int,
) -> torch.Tensor:
    """(batch, vocab) next-token logits after feeding the (batch,) `token` at position `index`.

    `memory_kv` comes from `memory_kv`, `cache` from `init_cache`; the cache is written in place.
    """
    memory_mask = _additive((src > 0)[:, None, :])
    y = model.shared_embedding(token.long()[:, None]) + model.pe[:, index : index + 1]
    for layer, kv, layer_cache in zip(model.decoder.decoder.layers, memory_kv, cache, strict=True):
        y = layer(y, None, None, memory_mask, 0.0, layer_cache, index, kv)
    if model.decoder.decoder.norm is not None:
        y = model.decoder.decoder.norm(y)
    return model.logits(y)[:, 0]


def memory_kv(model: Transformer, memory: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Every decoder layer's cross-attention (k, v) of the encoder output `memory`."""
    return [layer.multihead_attn.memory_kv(memory) for layer in model.decoder.decoder.layers]


def init_cache(
    model: Transformer, batch_size: int, max_decode_len: int
) -> list[dict[str, torch.Tensor]]:
    """Zero self-attention caches, one {'k', 'v'} per decoder layer."""
    cfg = model.layout
    if max_decode_len > cfg.max_len:
        raise ValueError(
            f"workloads/wmt/model_pytorch.py: max_decode_len {max_decode_len} exceeds the "
            f"model's max_len {cfg.max_len}; pass max_decode_len <= max_len"
        )
    weight = model.shared_embedding.weight
    shape = (batch_size, cfg.num_heads, max_decode_len, cfg.emb_dim // cfg.num_heads)
    return [
        {n: torch.zeros(shape, dtype=weight.dtype, device=weight.device) for n in ("k", "v")}
        for _ in range(cfg.num_layers)
    ]
