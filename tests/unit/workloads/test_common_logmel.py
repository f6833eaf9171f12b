"""The numpy log-mel reference front-end (workloads.common.logmel) against independent computations."""

import dataclasses
import math

import numpy as np
import pytest

from workloads.common import librivox_testdata
from workloads.common.logmel import (
    LIBRISPEECH,
    LIBRISPEECH_MEAN,
    LIBRISPEECH_STD,
    frame_paddings,
    log_mel,
    mel_weight_matrix,
    num_frames,
)

RAW = dataclasses.replace(LIBRISPEECH, normalize=False)


def _mel(hz: float) -> float:
    return 1127.0 * math.log(1.0 + hz / 700.0)


def test_upstream_settings():
    c = LIBRISPEECH
    assert (c.sample_rate, c.frame_size, c.frame_step, c.fft_size, c.num_bins) == (
        16000,
        401,
        160,
        512,
        80,
    )
    assert num_frames(320_000) == 1998  # upstream's frames for a full-length utterance
    assert len(LIBRISPEECH_MEAN) == len(LIBRISPEECH_STD) == 80
    features, paddings = log_mel(np.zeros((2, 320_000)), np.zeros((2, 320_000)))
    assert features.shape == (2, 1998, 80) and paddings.shape == (2, 1998)


def test_one_frame_by_direct_dft():
    # Frame k by the definitions, written out with scalar loops and an explicit DFT sum.
    rng = np.random.default_rng(0)
    audio = rng.integers(-20000, 20000, size=3000).astype(np.float64)
    features, _ = log_mel(audio, config=RAW)
    k = 7
    s = [v * 2.0**-15 for v in audio[160 * k : 160 * k + 401]]
    y = [s[0] * (1 - 0.97)] + [s[n] - 0.97 * s[n - 1] for n in range(1, 400)]
    y = [y[n] * math.sin(math.pi * n / 400) ** 2 for n in range(400)]  # periodic Hann
    n = np.arange(400)
    power = []
    for b in range(257):
        re = sum(y * np.cos(2 * np.pi * b * n / 512))
        im = sum(y * np.sin(2 * np.pi * b * n / 512))
        power.append(re * re + im * im)
    lo, hi = _mel(125.0), _mel(7600.0)
    expected = []
    for m in range(80):
        left, center, right = (lo + (hi - lo) * (m + j) / 81 for j in range(3))
        energy = 0.0
        for b in range(1, 257):
            f = _mel(b * 8000.0 / 256)
            weight = max(0.0, min((f - left) / (center - left), (right - f) / (right - center)))
            energy += weight * power[b]
        expected.append(math.log(max(energy, 1e-5)))
    np.testing.assert_allclose(features[k], expected, rtol=1e-9, atol=1e-9)
    normalized, _ = log_mel(audio)
    np.testing.assert_allclose(
        normalized[k], (np.array(expected) - LIBRISPEECH_MEAN) / LIBRISPEECH_STD, rtol=1e-9
    )


def test_mel_filterbank_properties():
    w = mel_weight_matrix()
    assert w.shape == (257, 80)
    assert not w[0].any()  # DC excluded (HTK)
    hz = np.arange(257) * 8000.0 / 256
    assert not w[hz <= 125.0].any() and not w[hz >= 7600.0].any()
    assert (w >= 0).all() and (w <= 1).all()
    # Triangles linear in mel: neighbours sum to 1 between the first and last band centres.
    lo, hi = _mel(125.0), _mel(7600.0)
    centres = [_mel_to_hz(lo + (hi - lo) * (m + 1) / 81) for m in range(80)]
    inside = (hz > centres[0]) & (hz < centres[-1])
    np.testing.assert_allclose(w[inside].sum(axis=1), 1.0, rtol=1e-12)
    assert ((w > 0).sum(axis=0) >= 1).all()  # every band sees at least one FFT bin


def _mel_to_hz(mel: float) -> float:
    return 700.0 * (math.exp(mel / 1127.0) - 1.0)


@pytest.mark.parametrize("hz", [440.0, 1000.0, 3000.0])
def test_pure_tone_peaks_in_its_band(hz):
    t = np.arange(16000) / 16000.0
    features, _ = log_mel(8000 * np.sin(2 * np.pi * hz * t), config=RAW)
    lo, hi = _mel(125.0), _mel(7600.0)
    centres = np.array([lo + (hi - lo) * (m + 1) / 81 for m in range(80)])
    nearest = int(np.argmin(np.abs(centres - _mel(hz))))
    peak = np.bincount(features.argmax(axis=1), minlength=80).argmax()
    assert abs(int(peak) - nearest) <= 1


def test_scaling_silence_and_floor():
    rng = np.random.default_rng(1)
    audio = rng.normal(0, 3000, size=8000)
    a, _ = log_mel(audio, config=RAW)
    b, _ = log_mel(2 * audio, config=RAW)
    above = a > math.log(1e-5) + 1
    np.testing.assert_allclose((b - a)[above], math.log(4.0), rtol=1e-9)
    silent, _ = log_mel(np.zeros(8000), config=RAW)
    np.testing.assert_array_equal(silent, math.log(1e-5))


def test_paddings_mask_samples_and_frames():
    rng = np.random.default_rng(2)
    length, real = 6000, 3333
    paddings = (np.arange(length) >= real).astype(np.float32)
    audio = rng.integers(-9000, 9000, size=length).astype(np.float64)
    frames = frame_paddings(paddings)
    n_real = math.ceil(real / 160)  # frames holding at least one real sample (upstream's min)
    assert n_real > (real - 401) // 160 + 1  # more than the frames of real samples only
    np.testing.assert_array_equal(frames, np.arange(num_frames(length)) >= n_real)
    # Padded samples are zeroed first: their values change nothing.
    garbage = audio.copy()
    garbage[real:] = rng.integers(-30000, 30000, size=length - real)
    zeros = audio.copy()
    zeros[real:] = 0
    f1, p1 = log_mel(garbage, paddings)
    f2, _ = log_mel(zeros)
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(p1, frames)
    batch, batch_paddings = log_mel(np.stack([garbage, audio]), np.stack([paddings, 0 * paddings]))
    np.testing.assert_array_equal(batch[0], f1)
    assert not batch_paddings[1].any()


def test_bad_input():
    with pytest.raises(ValueError, match="shorter than one frame"):
        log_mel(np.zeros(400))
    with pytest.raises(ValueError, match="paddings shape"):
        log_mel(np.zeros(1000), np.zeros(999))
    with pytest.raises(ValueError, match="Nyquist"):
        mel_weight_matrix(dataclasses.replace(LIBRISPEECH, upper_edge_hz=9000.0))


def test_real_speech_matches_the_normalisation_statistics():
    # Upstream's mean/std vectors are LibriSpeech statistics: on real LibriVox speech the
    # normalised features of the real frames are about zero-mean, unit-variance per band.
    directory = librivox_testdata.find_dir()
    if directory is None:
        pytest.skip(f"no LibriVox audio: {librivox_testdata.INSTALL_HINT}")
    from workloads.common.sequences import pad_sequences

    samples = [u.samples() for u in librivox_testdata.load(directory)]
    audio, paddings = pad_sequences(samples, 320_000)
    features, frames = log_mel(audio.astype(np.float32), paddings)
    assert features.shape == (len(samples), 1998, 80)
    real = frames == 0
    np.testing.assert_array_equal(real.sum(axis=1), [math.ceil(len(s) / 160) for s in samples])
    values = features[real]  # (real frames, 80)
    assert np.abs(values.mean(axis=0)).mean() < 0.5
    assert 0.6 < values.std(axis=0).mean() < 1.4
