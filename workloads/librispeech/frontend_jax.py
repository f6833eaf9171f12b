"""Upstream's LibriSpeech log-mel front-end in JAX (runs inside the speech models).

The same steps as the numpy reference `workloads.common.logmel` (its docstring lists them),
in float32: frames by gathering, HTK pre-emphasis, periodic Hann window, 512-point real FFT,
power, the reference's mel matrix, ``log(max(mel, 1e-5))`` and upstream's per-band
normalisation; frame paddings are the minimum of the sample paddings over each frame.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from workloads.common import logmel


def _frame_index(num_samples: int, config: logmel.LogMelConfig) -> np.ndarray:
    n = logmel.num_frames(num_samples, config)
    if n < 1:
        raise ValueError(f"audio of {num_samples} samples is shorter than one frame")
    return np.arange(n)[:, None] * config.frame_step + np.arange(config.frame_size)[None]


def log_mel(
    audio: jax.Array, paddings: jax.Array, config: logmel.LogMelConfig = logmel.LIBRISPEECH
) -> tuple[jax.Array, jax.Array]:
    """(B, samples) int16-scale audio and 0/1 paddings -> (B, frames, bins) features, paddings."""
    index = _frame_index(audio.shape[-1], config)
    x = audio.astype(jnp.float32) * (1.0 - paddings.astype(jnp.float32)) * config.input_scale
    frames = x[:, index]
    p = config.preemph
    if p:
        frames = jnp.concatenate(
            [frames[..., :1] * (1.0 - p), frames[..., 1:-1] - p * frames[..., :-2]], axis=-1
        )
    else:
        frames = frames[..., :-1]
    n = config.window_size
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)
    spectrum = jnp.fft.rfft(frames * window, n=config.fft_size, axis=-1)
    power = jnp.real(spectrum) ** 2 + jnp.imag(spectrum) ** 2
    mel = power @ logmel.mel_weight_matrix(config).astype(np.float32)
    features = jnp.log(jnp.maximum(mel, config.output_floor))
    if config.normalize:
        mean = np.asarray(logmel.LIBRISPEECH_MEAN, np.float32)
        std = np.asarray(logmel.LIBRISPEECH_STD, np.float32)
        features = (features - mean) / std
    frame_paddings = jnp.min(paddings[:, index], axis=-1).astype(paddings.dtype)
    return features, frame_paddings
