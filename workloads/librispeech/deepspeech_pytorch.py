"""Upstream's DeepSpeech (LibriSpeech CTC model) in PyTorch.

Module and state-dict names as upstream's PyTorch model (``subsample.conv1.kernel``,
``lstms.<i>.bn_normalization_layer.*`` or ``lstms.<i>.normalization_layer.*``,
``lstms.<i>.lstm.*``, ``ffns.<j>.*``, ``ln.*``, ``lin.*``), the same layers as
`deepspeech_jax` (its docstring describes them; the front-end is the Conformer's
``conformer_pytorch.LogMel``, as upstream shares it) and upstream's init: xavier-uniform conv
kernels and linear weights with zero biases, PyTorch's default ``nn.LSTM`` init. The subsample
projection is an ``nn.Linear`` of known input size (upstream's ``LazyLinear`` resolves to the
same shape), so the model can be built on the meta device.

``forward(audio, paddings, dropout_rate)`` returns (logits, output paddings); the LSTMs run
on packed sequences, so outputs at padded frames are zero before the residual sum (not
meaningful either way; the CTC loss masks them). BatchNorm statistics are the valid frames of
the global batch, all DDP ranks together (`batchnorm_pytorch`, as the JAX model's single
program over the sharded batch); ``update_running_stats`` off freezes the running ones. In training, SpecAugment (`specaug_pytorch`, torch's
default generator) masks the features first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from workloads.librispeech import specaug_pytorch
from workloads.librispeech.batchnorm_pytorch import masked_moments, update_running
from workloads.librispeech.conformer_pytorch import LogMel
from workloads.librispeech.deepspeech_param_map import (
    BATCH_NORM_EPSILON,
    BATCH_NORM_MOMENTUM,
    LAYER_NORM_EPSILON,
    deepspeech_options,
    subsampled_bins,
)


def _activation(name: str):
    return torch.tanh if name == "tanh" else F.relu


class LayerNorm(nn.Module):
    """LayerNorm with zero-initialised ``scale`` applied as ``1 + scale`` (upstream's)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], 1 + self.scale, self.bias, LAYER_NORM_EPSILON)


class BatchNorm(nn.Module):
    """Padding-aware BatchNorm over (batch, time): statistics of the valid frames only."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_var", torch.ones(dim))
        self.weight = nn.Parameter(torch.zeros(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.update_running_stats = True

    def forward(self, x: torch.Tensor, paddings: torch.Tensor) -> torch.Tensor:
        mask = (1 - paddings)[:, :, None]
        if self.training:
            mean, var = masked_moments(x, mask)
            if self.update_running_stats:
                update_running(self.running_mean, self.running_var, mean, var, BATCH_NORM_MOMENTUM)
        else:
            mean, var = self.running_mean, self.running_var
        out = (x - mean) * ((1 + self.weight) * torch.rsqrt(var + BATCH_NORM_EPSILON)) + self.bias
        return out * mask


class Conv2dSubsampling(nn.Module):
    """3x3 stride-2 'SAME' conv + activation; paddings subsampled, padded frames zeroed."""

    def __init__(self, in_channels: int, out_channels: int, activation: str) -> None:
        super().__init__()
        self.kernel = nn.Parameter(
            nn.init.xavier_uniform_(torch.empty(out_channels, in_channels, 3, 3))
        )
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.activation = activation

    def forward(self, x: torch.Tensor, paddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # TF 'SAME' for a 3x3 kernel at stride 2: one row/column before, the rest after.
        pads = []
        for size in (x.shape[3], x.shape[2]):
            total = max(3 - (2 if size % 2 == 0 else size % 2), 0)
            pads += [total // 2, total - total // 2]
        y = F.conv2d(F.pad(x, pads), self.kernel, self.bias, stride=2)
        y = _activation(self.activation)(y)
        paddings = paddings[:, ::2]
        return y * (1 - paddings)[:, None, :, None], paddings


class Subsample(nn.Module):
    def __init__(self, o: Mapping[str, Any]) -> None:
        super().__init__()
        dim = o["encoder_dim"]
        self.conv1 = Conv2dSubsampling(1, dim, o["activation"])
        self.conv2 = Conv2dSubsampling(dim, dim, o["activation"])
        self.lin = nn.Linear(dim * subsampled_bins(o["num_bins"]), dim)

    def forward(self, x, paddings, dropout_rate: float):
        y, paddings = self.conv1(x[:, None], paddings)
        y, paddings = self.conv2(y, paddings)
        b, c, t, f = y.shape
        y = self.lin(y.permute(0, 2, 3, 1).reshape(b, t, f * c))
        return F.dropout(y, dropout_rate, training=self.training), paddings


def _norm(o: Mapping[str, Any]) -> tuple[str, nn.Module]:
    if o["layernorm_everywhere"]:
        return "normalization_layer", LayerNorm(o["encoder_dim"])
    return "bn_normalization_layer", BatchNorm(o["encoder_dim"])


class BatchRNN(nn.Module):
    def __init__(self, o: Mapping[str, Any]) -> None:
        super().__init__()
        self.layernorm = o["layernorm_everywhere"]
        name, norm = _norm(o)
        self.add_module(name, norm)
        self.norm_name = name
        dim = o["encoder_dim"]
        self.lstm = nn.LSTM(dim, dim // 2, bidirectional=True, batch_first=True)

    def forward(self, x: torch.Tensor, paddings: torch.Tensor) -> torch.Tensor:
        norm = getattr(self, self.norm_name)
        x = norm(x) if self.layernorm else norm(x, paddings)
        lengths = torch.sum(1 - paddings, dim=1).to(torch.int64).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths, batch_first=True, enforce_sorted=False
        )
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out


class FeedForwardModule(nn.Module):
    def __init__(self, o: Mapping[str, Any]) -> None:
        super().__init__()
        self.layernorm = o["layernorm_everywhere"]
        name, norm = _norm(o)
        self.add_module(name, norm)
        self.norm_name = name
        self.lin = nn.Linear(o["encoder_dim"], o["encoder_dim"])
        self.activation = o["activation"]

    def forward(self, x, paddings, dropout_rate: float):
        norm = getattr(self, self.norm_name)
        x = norm(x) if self.layernorm else norm(x, paddings)
        x = _activation(self.activation)(self.lin(x)) * (1 - paddings)[:, :, None]
        return F.dropout(x, dropout_rate, training=self.training)


class DeepspeechEncoderDecoder(nn.Module):
    """The whole model; ``options`` are a ``config.model`` dict (validated here)."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__()
        o = deepspeech_options(options)
        self.options = o
        self.preprocessor = LogMel()
        self.subsample = Subsample(o)
        self.lstms = nn.ModuleList([BatchRNN(o) for _ in range(o["num_lstm_layers"])])
        self.ffns = nn.ModuleList([FeedForwardModule(o) for _ in range(o["num_ffn_layers"])])
        self.ln = LayerNorm(o["encoder_dim"]) if o["enable_decoder_layer_norm"] else nn.Identity()
        self.lin = nn.Linear(o["encoder_dim"], o["vocab_size"])
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(
        self, audio: torch.Tensor, paddings: torch.Tensor, dropout_rate: float = 0.1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x, paddings = self.preprocessor(audio, paddings)
        o = self.options
        if self.training and o["use_specaug"]:
            x = specaug_pytorch.spec_augment(
                x, paddings, o["freq_mask_count"], o["time_mask_count"]
            )
        x, paddings = self.subsample(x, paddings, dropout_rate)
        residual = self.options["use_residual"]
        for lstm in self.lstms:
            y = lstm(x, paddings)
            x = x + y if residual else y
        for ffn in self.ffns:
            y = ffn(x, paddings, dropout_rate)
            x = x + y if residual else y
        return self.lin(self.ln(x)), paddings


def build_model(options: Mapping[str, Any]) -> DeepspeechEncoderDecoder:
    """The model of a ``config.model`` dict."""
    return DeepspeechEncoderDecoder(options)
