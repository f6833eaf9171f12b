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
