"""Upstream's LibriSpeech log-mel front-end in PyTorch (runs inside the speech models).

The same steps as the numpy reference `workloads.common.logmel` (its docstring lists them),
in float32: frames by ``unfold``, HTK pre-emphasis, periodic Hann window, 512-point real FFT,
power, the reference's mel matrix, ``log(max(mel, 1e-5))`` and upstream's per-band
normalisation; frame paddings are the minimum of the sample paddings over each frame.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from workloads.common import logmel


class LogMelFrontend(nn.Module):
    """``forward(audio, paddings)``: (B, samples) -> (B, frames, bins) features and paddings.

    The constants are non-persistent buffers: they follow ``.to(device)`` but stay out of the
    state dict (upstream's PyTorch state dict has none either).
    """

    def __init__(self, config: logmel.LogMelConfig = logmel.LIBRISPEECH) -> None:
        super().__init__()
        self.config = config
        n = config.window_size
        window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)
        buffers = {
            "window": window,
            "mel": logmel.mel_weight_matrix(config),
            "mean": np.asarray(logmel.LIBRISPEECH_MEAN),
            "std": np.asarray(logmel.LIBRISPEECH_STD),
        }
        for name, value in buffers.items():
            self.register_buffer(name, torch.tensor(value, dtype=torch.float32), persistent=False)

    def forward(
        self, audio: torch.Tensor, paddings: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        if logmel.num_frames(audio.shape[-1], c) < 1:
            raise ValueError(f"audio of {audio.shape[-1]} samples is shorter than one frame")
        x = audio.float() * (1.0 - paddings.float()) * c.input_scale
        frames = x.unfold(-1, c.frame_size, c.frame_step)
        p = c.preemph
        if p:
            frames = torch.cat(
                [frames[..., :1] * (1.0 - p), frames[..., 1:-1] - p * frames[..., :-2]], dim=-1
            )
        else:
            frames = frames[..., :-1]
        spectrum = torch.fft.rfft(frames * self.window, n=c.fft_size, dim=-1)
        power = spectrum.real**2 + spectrum.imag**2
        features = torch.log(torch.clamp(power @ self.mel, min=c.output_floor))
        if c.normalize:
            features = (features - self.mean) / self.std
        frame_paddings = paddings.unfold(-1, c.frame_size, c.frame_step).amin(dim=-1)
        return features, frame_paddings
