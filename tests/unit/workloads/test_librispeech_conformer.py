"""Conformer models: shape-only trainable parameter counts (upstream's), options and front-ends.

Counts come from `jax.eval_shape` (no arrays allocated) and the PyTorch meta device, for the
full 320,000-sample input shape. The framework log-mel front-ends are checked against the
float64 numpy reference (`workloads.common.logmel`) on random audio with padding: atol 1e-4
(features are O(1); float32 FFT and log rounding give about 1e-5).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch

from algoperf.registry import get_config
from workloads.common import logmel
from workloads.librispeech import conformer_jax, conformer_param_map, conformer_pytorch

COUNTS = {
    "librispeech_conformer": 32_321_792,
    "librispeech_conformer_attention_temperature": 32_321_792,
    "librispeech_conformer_gelu": 32_321_792,
    "librispeech_conformer_layernorm": 32_317_696,
}


def _jax_count(name: str) -> int:
    model = conformer_jax.build_model(get_config(name).model)
    shapes = jax.eval_shape(lambda r: conformer_jax.init(model, r), jax.random.key(0))
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes["params"]))


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_trainable_parameter_counts(name):
    assert _jax_count(name) == COUNTS[name]
    model = conformer_pytorch.build_model(get_config(name).model, device="meta")
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == COUNTS[name]


def test_variants_are_config_data():
    base = conformer_param_map.conformer_options(get_config("librispeech_conformer").model)
    assert (base.attention_temperature, base.activation, base.use_post_layer_norm) == (
        1.0,
        "swish",
        True,
    )
    opts = {
        n: conformer_param_map.conformer_options(get_config(n).model)
        for n in COUNTS
        if n != "librispeech_conformer"
    }
    assert opts["librispeech_conformer_attention_temperature"].attention_temperature == 1.6
    assert opts["librispeech_conformer_gelu"].activation == "gelu"
    assert opts["librispeech_conformer_layernorm"].use_post_layer_norm is False


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"arch": "deepspeech"}, "arch"),
        ({"activation": "relu"}, "activation"),
        ({"dropout": 0.1}, "unknown conformer model option"),
        ({"encoder_dim": 30, "num_attention_heads": 4}, "multiple"),
    ],
)
def test_bad_options_are_one_line_errors(bad, match):
    with pytest.raises(ValueError, match=match) as err:
        conformer_param_map.conformer_options(bad)
    assert "spec.py" in str(err.value)


def _audio(seed: int = 0, n: int = 4000):
    rng = np.random.default_rng(seed)
    audio = rng.integers(-3000, 3000, size=(2, n)).astype(np.float32)
    paddings = np.zeros((2, n), np.float32)
    paddings[1, 2500:] = 1.0
    return audio, paddings


def test_front_ends_match_the_numpy_reference():
    audio, paddings = _audio()
    ref, ref_pad = logmel.log_mel(audio, paddings)
    feats_j, pad_j = conformer_jax.log_mel(audio, paddings)
    feats_t, pad_t = conformer_pytorch.LogMel()(torch.from_numpy(audio), torch.from_numpy(paddings))
    assert ref.shape == (2, logmel.num_frames(audio.shape[1]), 80)
    np.testing.assert_allclose(np.asarray(feats_j), ref, atol=1e-4, rtol=0)
    np.testing.assert_allclose(feats_t.numpy(), ref, atol=1e-4, rtol=0)
    np.testing.assert_array_equal(np.asarray(pad_j), ref_pad)
    np.testing.assert_array_equal(pad_t.numpy(), ref_pad)
    assert ref_pad[1].sum() > 0 and ref_pad[0].sum() == 0


def _draws(seed: int, b: int, time_count: int, freq_count: int):
    rng = np.random.default_rng(seed)
    counts = (time_count, time_count, freq_count, freq_count)
    return tuple(rng.uniform(0, 1, (b, c)).astype(np.float32) for c in counts)


def _expected_mask(u_len, u_start, length: int, size: int, top: float, ratio: float):
    """Loop-by-loop lingvo rule: width int(top * u) capped at max(int(ratio * length), 1)."""
    mask = np.ones(size, np.float32)
    for a, s in zip(u_len, u_start, strict=True):
        width = min(int(np.float32(top) * a), max(int(np.float32(ratio) * length), 1))
        start = int(s * (length - width + 1))
        mask[start : start + width] = 0.0
    return mask


def test_spec_augment_masks_agree_and_follow_the_rule():
    from workloads.librispeech import specaug_jax, specaug_pytorch

    b, t, bins = 6, 700, 80
    lengths = np.array([700, 650, 400, 120, 37, 5])
    paddings = (np.arange(t)[None] >= lengths[:, None]).astype(np.float32)
    draws = _draws(0, b, 10, 2)
    time_j, freq_j = specaug_jax.masks(draws, paddings, bins)
    time_t, freq_t = specaug_pytorch.masks(
        tuple(map(torch.from_numpy, draws)), torch.from_numpy(paddings), bins
    )
    np.testing.assert_array_equal(np.asarray(time_j), time_t.numpy())
    np.testing.assert_array_equal(np.asarray(freq_j), freq_t.numpy())
    for i in range(b):
        length = int(lengths[i])
        want_t = _expected_mask(draws[0][i], draws[1][i], length, t, 0.05 * length, 0.05)
        want_f = _expected_mask(draws[2][i], draws[3][i], bins, bins, 27, 1.0)
        np.testing.assert_array_equal(np.asarray(time_j)[i], want_t)
        np.testing.assert_array_equal(np.asarray(freq_j)[i], want_f)
        assert np.asarray(time_j)[i, length:].min(initial=1.0) == 1.0  # never masks padding
    assert np.asarray(time_j).min() == 0.0 and np.asarray(freq_j).min() == 0.0


def test_spec_augment_runs_in_train_mode_only():
    """JAX: train-mode logits change with SpecAugment on; PyTorch: train mode changes with it
    on, eval mode is unaffected (both models share `conformer_options`)."""
    opts = {
        **get_config("librispeech_conformer").model,
        "encoder_dim": 16,
        "num_attention_heads": 2,
        "num_encoder_layers": 1,
        "vocab_size": 8,
    }
    audio, paddings = _audio(1, 8000)
    outs = []
    for spec in (True, False):
        model = conformer_jax.build_model({**opts, "use_specaug": spec})
        shapes = jax.eval_shape(
            lambda r, m=model: conformer_jax.init(m, r, 8000), jax.random.key(0)
        )
        rng = np.random.default_rng(2)
        variables = jax.tree.map(
            lambda x, g=rng: (0.1 * g.standard_normal(x.shape)).astype(np.float32), shapes
        )

        @jax.jit
        def train_logits(v, model=model):
            rngs = {"dropout": jax.random.key(5)}
            out, _ = model.apply(
                v, audio, paddings, train=True, dropout_rate=0.0, rngs=rngs, mutable=True
            )
            return out[0]

        outs.append(np.asarray(train_logits(variables)))
    assert np.abs(outs[0] - outs[1]).max() > 1e-3
    x, pad = torch.from_numpy(audio), torch.from_numpy(paddings)
    torch_out = {}
    for spec in (True, False):
        torch.manual_seed(0)
        model = conformer_pytorch.build_model({**opts, "use_specaug": spec})
        with torch.no_grad():
            evaluated = model.eval()(x, pad, 0.0)[0]
            torch_out[spec] = (model.train()(x, pad, 0.0)[0], evaluated)
    assert (torch_out[True][0] - torch_out[False][0]).abs().max() > 1e-3
    torch.testing.assert_close(torch_out[True][1], torch_out[False][1], rtol=0, atol=0)


def test_pytorch_modules_do_not_load_jax():
    import subprocess
    import sys

    from workloads.librispeech import specaug_jax, specaug_pytorch

    assert (specaug_pytorch.FREQ_MASK_MAX_BINS, specaug_pytorch.TIME_MASK_MAX_RATIO) == (
        specaug_jax.FREQ_MASK_MAX_BINS,
        specaug_jax.TIME_MASK_MAX_RATIO,
    )
    probe = "import sys, workloads.librispeech.conformer_pytorch; print('jax' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"
