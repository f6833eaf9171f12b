"""A numpy log-mel front-end with upstream's LibriSpeech settings: the reference.

Upstream computes this front-end inside the model (JAX ``MelFilterbankFrontend``, PyTorch
``MelFilterbankFrontend``, both ports of lingvo's ``MelAsrFrontend``); the framework front-ends
of the speech family are tested against this one. It is written for clarity and float64
accuracy, not speed. The steps, for 16 kHz audio of int16 sample values (float arrays):

1. zero the padded samples, scale by 2**-15;
2. frames of 401 samples (25 ms plus one for pre-emphasis) every 160 (10 ms), no end padding:
   ``(num_samples - 401) // 160 + 1`` frames (1,998 for 320,000 samples);
3. HTK-flavoured pre-emphasis 0.97 on each frame, 401 -> 400 samples:
   ``[x0 * (1 - 0.97), x[1:-1] - 0.97 * x[:-2]]`` (the frame's last sample is not used);
4. periodic Hann window of 400; real FFT of size 512 (zero padded) -> 257 bins; power ``|X|**2``;
5. 80 triangular mel bands between 125 and 7,600 Hz, HTK mel scale
   ``1127 ln(1 + f / 700)``, triangles linear in mel (``tf.signal.linear_to_mel_weight_matrix``,
   DC bin zeroed);
6. ``log(max(mel, 1e-5))``, then per band ``(x - mean) / std`` with upstream's fixed LibriSpeech
   vectors (`LIBRISPEECH_MEAN`, `LIBRISPEECH_STD`);
7. frame paddings: the minimum of the sample paddings over each frame's 401 samples (upstream's
   ``reduce_window(min)``), so a frame is padded only when all its samples are: an utterance of
   ``n`` real samples has ``ceil(n / 160)`` real frames (at most the frame count), the last
   few of which overlap its padding (zeros after step 1).
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = [
    "LIBRISPEECH",
    "LIBRISPEECH_MEAN",
    "LIBRISPEECH_STD",
    "LogMelConfig",
    "frame_paddings",
    "hertz_to_mel",
    "log_mel",
    "mel_weight_matrix",
    "num_frames",
    "power_spectrum",
]

# Upstream's per-band normalisation of the LibriSpeech log-mel features (identical in its JAX
# and PyTorch preprocessors).
LIBRISPEECH_MEAN: tuple[float, ...] = (
    -7.6047816276550293,
    -7.1206226348876953,
    -6.8864245414733887,
    -6.8705768585205078,
    -6.9667720794677734,
    -7.1084094047546387,
    -6.9528026580810547,
    -6.783994197845459,
    -6.6195521354675293,
    -6.4876265525817871,
    -6.4120659828186035,
    -6.394047737121582,
    -6.4244871139526367,
    -6.3993711471557617,
    -6.5158271789550781,
    -6.7137999534606934,
    -6.8476877212524414,
    -6.9885001182556152,
    -6.9221386909484863,
    -7.146148681640625,
    -7.2040400505065918,
    -7.0537552833557129,
    -7.3140382766723633,
    -7.1223249435424805,
    -7.30251407623291,
    -7.1212143898010254,
    -7.2425732612609863,
    -7.1730537414550781,
    -7.0979413986206055,
    -7.088747501373291,
    -6.9849910736083984,
    -6.8787732124328613,
    -6.7602753639221191,
    -6.6300945281982422,
    -6.5145769119262695,
    -6.4245057106018066,
    -6.356513500213623,
    -6.31787633895874,
    -6.2660770416259766,
    -6.2468328475952148,
    -6.2821526527404785,
    -6.1908388137817383,
    -6.2484354972839355,
    -6.1472640037536621,
    -6.0924725532531738,
    -6.0171003341674805,
    -5.9250402450561523,
    -5.8535833358764648,
    -5.8209109306335449,
    -5.8118929862976074,
    -5.80783748626709,
    -5.7714629173278809,
    -5.7453732490539551,
    -5.7705655097961426,
    -5.7765641212463379,
    -5.7831673622131348,
    -5.7954087257385254,
    -5.7994823455810547,
    -5.8023476600646973,
    -5.8047118186950684,
    -5.8168182373046875,
    -5.8844799995422363,
    -5.9727106094360352,
    -6.0444660186767578,
    -6.1284866333007812,
    -6.2257585525512695,
    -6.3157496452331543,
    -6.39061164855957,
    -6.4928598403930664,
    -6.5498456954956055,
    -6.6054320335388184,
    -6.6508378982543945,
    -6.66917610168457,
    -6.6726889610290527,
    -6.684234619140625,
    -6.6974577903747559,
    -6.75471830368042,
    -6.7949142456054688,
    -6.8634209632873535,
    -6.94186544418335,
)
LIBRISPEECH_STD: tuple[float, ...] = (
    3.4353282451629639,
    3.5962932109832764,
    3.7012472152709961,
    3.7369205951690674,
    3.7535104751586914,
    3.693629264831543,
    3.6922497749328613,
    3.7641522884368896,
    3.8419716358184814,
    3.8999848365783691,
    3.9294240474700928,
    3.9317409992218018,
    3.9139585494995117,
    3.9031598567962646,
    3.8691999912261963,
    3.8155081272125244,
    3.7644970417022705,
    3.7099106311798096,
    3.6965086460113525,
    3.6003766059875488,
    3.5493226051330566,
    3.5465121269226074,
    3.45003604888916,
    3.4712812900543213,
    3.4084610939025879,
    3.4408135414123535,
    3.4104881286621094,
    3.4217638969421387,
    3.4312851428985596,
    3.4199209213256836,
    3.4305806159973145,
    3.4382665157318115,
    3.4580366611480713,
    3.4817991256713867,
    3.4958710670471191,
    3.5036792755126953,
    3.5047574043273926,
    3.4988734722137451,
    3.493056058883667,
    3.4822943210601807,
    3.459430456161499,
    3.4612770080566406,
    3.4559063911437988,
    3.4755423069000244,
    3.4971549510955811,
    3.5326557159423828,
    3.5705199241638184,
    3.5920312404632568,
    3.596907377243042,
    3.5913500785827637,
    3.5865931510925293,
    3.5826809406280518,
    3.5837743282318115,
    3.5895791053771973,
    3.5819313526153564,
    3.5837869644165039,
    3.5861184597015381,
    3.5889589786529541,
    3.592214822769165,
    3.5939455032348633,
    3.5856630802154541,
    3.5884113311767578,
    3.5921022891998291,
    3.5870490074157715,
    3.5806570053100586,
    3.5731067657470703,
    3.5617532730102539,
    3.54980731010437,
    3.5527374744415283,
    3.5475366115570068,
    3.5387849807739258,
    3.5256178379058838,
    3.5031836032867432,
    3.4922726154327393,
    3.4879646301269531,
    3.4725594520568848,
    3.4558389186859131,
    3.4351828098297119,
    3.4284293651580811,
    3.4299170970916748,
)

MEL_BREAK_HZ = 700.0
MEL_HIGH_FREQUENCY_Q = 1127.0


@dataclasses.dataclass(frozen=True)
class LogMelConfig:
    """Front-end settings; the defaults are upstream's LibriSpeech preprocessing config.

    Attributes:
        sample_rate: Hz.
        frame_size_ms / frame_step_ms: window and hop; a frame holds one extra sample for
            pre-emphasis.
        preemph: pre-emphasis coefficient (HTK flavour), 0 for none.
        num_bins: mel bands.
        lower_edge_hz / upper_edge_hz: band edges.
        output_floor: floor of the mel energies before the log.
        input_scale: factor on the samples (int16 values to [-1, 1)).
        normalize: apply the per-band LibriSpeech mean/std.
    """

    sample_rate: float = 16000.0
    frame_size_ms: float = 25.0
    frame_step_ms: float = 10.0
    preemph: float = 0.97
    num_bins: int = 80
    lower_edge_hz: float = 125.0
    upper_edge_hz: float = 7600.0
    output_floor: float = 1e-5
    input_scale: float = 2.0**-15
    normalize: bool = True

    @property
    def frame_step(self) -> int:
        """Hop in samples (160)."""
        return round(self.sample_rate * self.frame_step_ms / 1000.0)

    @property
    def frame_size(self) -> int:
        """Samples per frame including the pre-emphasis sample (401)."""
        return round(self.sample_rate * self.frame_size_ms / 1000.0) + 1

    @property
    def window_size(self) -> int:
        """Samples after pre-emphasis, the window's length (400)."""
        return self.frame_size - 1

    @property
    def fft_size(self) -> int:
        """Next power of two of the frame size (512)."""
        return int(2 ** np.ceil(np.log2(self.frame_size)))


LIBRISPEECH = LogMelConfig()


def hertz_to_mel(hertz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: ``1127 ln(1 + f / 700)``."""
    return MEL_HIGH_FREQUENCY_Q * np.log1p(np.asarray(hertz, np.float64) / MEL_BREAK_HZ)


def mel_weight_matrix(config: LogMelConfig = LIBRISPEECH) -> np.ndarray:
    """float64 (fft_size // 2 + 1, num_bins) triangular weights, linear in mel, DC row zero."""
    c = config
    if not 0.0 <= c.lower_edge_hz < c.upper_edge_hz <= c.sample_rate / 2:
        raise ValueError(
            f"mel edges must satisfy 0 <= lower ({c.lower_edge_hz}) < upper ({c.upper_edge_hz}) "
            f"<= Nyquist ({c.sample_rate / 2})"
        )
    num_spectrogram_bins = c.fft_size // 2 + 1
    frequencies = np.linspace(0.0, c.sample_rate / 2, num_spectrogram_bins)[1:]
    bins_mel = hertz_to_mel(frequencies)[:, None]
    edges = np.linspace(
        hertz_to_mel(c.lower_edge_hz), hertz_to_mel(c.upper_edge_hz), c.num_bins + 2
    )
    lower, center, upper = edges[:-2][None], edges[1:-1][None], edges[2:][None]
    rising = (bins_mel - lower) / (center - lower)
    falling = (upper - bins_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.concatenate([np.zeros((1, c.num_bins)), weights], axis=0)


def num_frames(num_samples: int, config: LogMelConfig = LIBRISPEECH) -> int:
    """Frames of a signal of `num_samples` (no end padding): 1,998 for 320,000."""
    return max(0, (num_samples - config.frame_size) // config.frame_step + 1)


def _frames(x: np.ndarray, config: LogMelConfig) -> np.ndarray:
    """(..., num_frames, frame_size) views of the last axis."""
    n = num_frames(x.shape[-1], config)
    windows = np.lib.stride_tricks.sliding_window_view(x, config.frame_size, axis=-1)
    return windows[..., : (n - 1) * config.frame_step + 1 : config.frame_step, :]


def frame_paddings(paddings: np.ndarray, config: LogMelConfig = LIBRISPEECH) -> np.ndarray:
    """Per-frame paddings (..., num_frames): the minimum over each frame's samples (padded only
    when every sample is)."""
    paddings = np.asarray(paddings)
    return _frames(paddings, config).min(axis=-1).astype(paddings.dtype, copy=False)


def power_spectrum(
    audio: np.ndarray, paddings: np.ndarray | None = None, config: LogMelConfig = LIBRISPEECH
) -> np.ndarray:
    """float64 (..., num_frames, fft_size // 2 + 1) power spectra (steps 1-4 of the module)."""
    x = np.asarray(audio, np.float64)
    if paddings is not None:
        x = x * (1.0 - np.asarray(paddings, np.float64))
    x = x * config.input_scale
    frames = _frames(x, config)
    p = config.preemph
    if p:
        emphasised = np.concatenate(
            [frames[..., :1] * (1.0 - p), frames[..., 1:-1] - p * frames[..., :-2]], axis=-1
        )
    else:
        emphasised = frames[..., :-1]
    n = config.window_size
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)  # periodic Hann
    spectrum = np.fft.rfft(emphasised * window, n=config.fft_size, axis=-1)
    return spectrum.real**2 + spectrum.imag**2


def log_mel(
    audio: np.ndarray, paddings: np.ndarray | None = None, config: LogMelConfig = LIBRISPEECH
) -> tuple[np.ndarray, np.ndarray | None]:
    """Normalised log-mel features of audio, as upstream's model front-end computes them.

    Args:
        audio: (..., num_samples) sample values on the int16 scale (upstream feeds the raw
            int16 values as float32), e.g. (batch, 320000).
        paddings: same shape, 1.0 at padded samples, or None.
        config: front-end settings (upstream's LibriSpeech by default).

    Returns:
        features: float64 (..., num_frames, num_bins); frame paddings (..., num_frames) or None.

    Memory: a few float64 copies of the frames, about 30 MB per 320,000-sample utterance; feed
    large batches in slices.
    """
    audio = np.asarray(audio)
    if paddings is not None and np.shape(paddings) != audio.shape:
        raise ValueError(f"paddings shape {np.shape(paddings)} differs from audio {audio.shape}")
    if audio.shape[-1] < config.frame_size:
        raise ValueError(
            f"audio of {audio.shape[-1]} samples is shorter than one frame ({config.frame_size})"
        )
    mel = power_spectrum(audio, paddings, config) @ mel_weight_matrix(config)
    features = np.log(np.maximum(mel, config.output_floor))
    if config.normalize:
        if config.num_bins != len(LIBRISPEECH_MEAN):
            raise ValueError(
                f"the LibriSpeech normalisation has {len(LIBRISPEECH_MEAN)} bins, config {config.num_bins}"
            )
        features = (features - np.asarray(LIBRISPEECH_MEAN)) / np.asarray(LIBRISPEECH_STD)
    return features, None if paddings is None else frame_paddings(paddings, config)
