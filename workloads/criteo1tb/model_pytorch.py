"""Upstream's DLRM-small (and its ResNet variant) in PyTorch (same structure as `model_jax`).

Module names are upstream's (``bot_mlp``, ``top_mlp``, ``embed_ln``; ResNet blocks wrap their
layers in ``.module``), except the embedding table: upstream registers four row blocks
``embedding_chunk_{0..3}`` and ``torch.cat`` s them on every forward pass (at full size a 2 GiB
copy per step, and its 2 GiB gradient split back into the blocks); here it is one
``embedding_table`` parameter read with ``F.embedding``, whose backward writes the gradient of
the rows used into one dense (vocab, 128) tensor. Values and gradients are the same;
`workloads.criteo1tb.param_map.from_upstream_pytorch` loads upstream's chunked state dicts.

Init as upstream: bottom Linears Glorot uniform, biases normal(sqrt(1/out)); top Linears
normal(sqrt(2/(in+out))), biases normal(sqrt(1/out)); the table uniform [0, 1) times
``embedding_scale``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from algoperf.frameworks.pytorch import CustomDropout, SequentialWithDropout
from workloads.criteo1tb.param_map import (
    NUM_DENSE_FEATURES,
    NUM_SPARSE_FEATURES,
    DlrmLayout,
    dlrm_layout,
)


class DenseBlock(nn.Module):
    """``module(x)``, plus ``x`` when residual (upstream's block, names included)."""

    def __init__(self, module: nn.Module, resnet: bool = False) -> None:
        super().__init__()
        self.module = module
        self.resnet = resnet

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x) + x if self.resnet else self.module(x)


class DenseBlockWithDropout(DenseBlock):
    """`DenseBlock` whose module takes the dropout rate."""

    def __init__(self, module: nn.Module, resnet: bool = False) -> None:
        super().__init__(module, resnet)
        self._supports_custom_dropout = True

    def forward(self, x: torch.Tensor, p: float) -> torch.Tensor:  # type: ignore[override]
        return self.module(x, p) + x if self.resnet else self.module(x, p)


def _init_bottom(linear: nn.Linear) -> None:
    limit = math.sqrt(6.0 / (linear.in_features + linear.out_features))
    nn.init.uniform_(linear.weight, -limit, limit)
    nn.init.normal_(linear.bias, 0.0, math.sqrt(1.0 / linear.out_features))


def _init_top(linear: nn.Linear) -> None:
    std = math.sqrt(2.0 / (linear.in_features + linear.out_features))
    nn.init.normal_(linear.weight, 0.0, std)
    nn.init.normal_(linear.bias, 0.0, math.sqrt(1.0 / linear.out_features))


class DLRM(nn.Module):
    """DLRM-small or DLRM-ResNet; ``forward(x, dropout_rate)`` -> (batch, 1) logits."""

    def __init__(self, layout: DlrmLayout) -> None:
        super().__init__()
        self.layout = layout
        self.embedding_table = nn.Parameter(torch.empty(layout.vocab_size, layout.embed_dim))
        with torch.no_grad():
            self.embedding_table.uniform_(0.0, 1.0).mul_(layout.embedding_scale)
        bottom, top = layout.bottom_dims, layout.top_dims
        fan_in = NUM_DENSE_FEATURES
        bot: list[nn.Module] = []
        for i, width in enumerate(bottom):
            linear = nn.Linear(fan_in, width)
            _init_bottom(linear)
            if layout.use_resnet:
                bot.append(DenseBlock(nn.Sequential(linear, nn.ReLU()), resnet=i > 0))
            else:
                bot += [linear, nn.ReLU()]
                if layout.layer_norm:
                    bot.append(nn.LayerNorm(width, eps=1e-6))
            fan_in = width
        self.bot_mlp = nn.Sequential(*bot)
        self.embed_ln = nn.LayerNorm(layout.embed_dim, eps=1e-6) if layout.layer_norm else None
        if not layout.use_resnet:
            rows, cols = torch.triu_indices(NUM_SPARSE_FEATURES + 1, NUM_SPARSE_FEATURES + 1)
            self.register_buffer("triu_rows", rows, persistent=False)
            self.register_buffer("triu_cols", cols, persistent=False)
        fan_in = layout.top_input_dim
        top_layers: list[nn.Module] = []
        for i, fan_out in enumerate(top):
            linear = nn.Linear(fan_in, fan_out)
            _init_top(linear)
            block: list[nn.Module] = [linear]
            if i < len(top) - 1:
                block.append(nn.ReLU())
                if layout.layer_norm:
                    block.append(nn.LayerNorm(fan_out, eps=1e-6))
            if i == len(top) - 2:
                block.append(CustomDropout())
            if layout.use_resnet:
                residual = 0 < i < len(top) - 1
                top_layers.append(DenseBlockWithDropout(SequentialWithDropout(*block), residual))
            else:
                top_layers += block
            fan_in = fan_out
        self.top_mlp = SequentialWithDropout(*top_layers)

    def embed(self, sparse: torch.Tensor) -> torch.Tensor:
        """(batch, 26) float ids -> (batch, 26, embed_dim) rows of the table (id % vocab)."""
        ids = sparse.to(torch.int32) % self.layout.vocab_size
        return F.embedding(ids, self.embedding_table)

    def forward(self, x: torch.Tensor, dropout_rate: float = 0.0) -> torch.Tensor:
        dense, sparse = torch.split(x, [NUM_DENSE_FEATURES, NUM_SPARSE_FEATURES], dim=1)
        h = self.bot_mlp(dense)
        embedded = self.embed(sparse)
        if self.layout.use_resnet:
            y = torch.cat([h, embedded.reshape(x.shape[0], -1)], dim=1)
        else:
            if self.embed_ln is not None:
                embedded = self.embed_ln(embedded)
            stack = torch.cat([h.unsqueeze(1), embedded], dim=1)
            xactions = torch.bmm(stack, stack.transpose(1, 2))
            y = torch.cat([h, xactions[:, self.triu_rows, self.triu_cols]], dim=1)
        return self.top_mlp(y, dropout_rate)


def build_model(options: Mapping[str, Any]) -> DLRM:
    """The PyTorch model of a criteo1tb ``config.model`` mapping (on the current device)."""
    return DLRM(dlrm_layout(options))
