"""DeepSpeech models: upstream's parameter counts (shape-only), names, options, front-ends.

The front-ends of both frameworks are checked against the float64 numpy reference
`workloads.common.logmel` on real-looking audio (a chirp plus noise with padding), features to
2e-3 absolute (features are normalised log energies of magnitude ~1-10; float32 FFTs of
int16-scale audio round at about 1e-4) and paddings exactly.
"""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
import torch

from workloads.common import logmel
from workloads.librispeech import (
    deepspeech_jax,
    deepspeech_param_map,
    deepspeech_pytorch,
    frontend_jax,
    frontend_pytorch,
)
from workloads.librispeech.spec import VARIANTS

# Upstream's trainable parameter counts (JAX, PyTorch): PyTorch's LSTMs carry two bias vectors.
COUNTS = {
    "librispeech_deepspeech": (18_381_312, 18_393_600),
    "librispeech_deepspeech_tanh": (18_381_312, 18_393_600),
    "librispeech_deepspeech_no_resnet": (18_381_312, 18_393_600),
    "librispeech_deepspeech_norm_and_spec_aug": (18_380_288, 18_392_576),
}


def _jax_shapes(options):
    model = deepspeech_jax.build_model(options)
    return jax.eval_shape(lambda r: deepspeech_jax.init(model, r), jax.random.PRNGKey(0))


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_trainable_parameter_counts_are_upstreams(name):
    model = VARIANTS[name].model
    shapes = _jax_shapes(model)
    jax_count = sum(math.prod(x.shape) for x in jax.tree.leaves(shapes["params"]))
    with torch.device("meta"):
        pt = deepspeech_pytorch.build_model(model)
    pt_count = sum(p.numel() for p in pt.parameters() if p.requires_grad)
    assert (jax_count, pt_count) == COUNTS[name]


def test_spec_has_no_conformer_options():
    for name in COUNTS:
        model = VARIANTS[name].model
        assert not {"attention_temperature", "use_post_layer_norm"} & set(model), name
        deepspeech_param_map.deepspeech_options(model)  # every key is known
    assert (
        VARIANTS["librispeech_deepspeech_norm_and_spec_aug"].model["enable_decoder_layer_norm"]
        is False
    )


def test_full_size_names_and_shapes_are_upstreams():
    shapes = _jax_shapes(VARIANTS["librispeech_deepspeech"].model)
    p = shapes["params"]
    assert set(p) == {
        "Subsample_0",
        *(f"BatchRNN_{i}" for i in range(6)),
        *(f"FeedForwardModule_{j}" for j in range(3)),
        "LayerNorm_0",
        "Dense_0",
    }
    assert p["Subsample_0"]["Conv2dSubsampling_0"]["kernel"].shape == (3, 3, 1, 512)
    assert p["Subsample_0"]["Conv2dSubsampling_1"]["kernel"].shape == (3, 3, 512, 512)
    assert p["Subsample_0"]["Dense_0"]["kernel"].shape == (10240, 512)
    cell = p["BatchRNN_0"]["LSTM_0"]["LSTM"]["LSTMSequenceEncoder_1"]["cell"]
    assert cell["ii"]["kernel"].shape == (512, 256) and "bias" not in cell["ii"]
    assert cell["ho"]["kernel"].shape == (256, 256) and cell["ho"]["bias"].shape == (256,)
    assert set(shapes["batch_stats"]["BatchRNN_5"]["BatchNorm_0"]) == {"mean", "var"}
    assert p["Dense_0"]["kernel"].shape == (512, 1024)
    normaug = _jax_shapes(VARIANTS["librispeech_deepspeech_norm_and_spec_aug"].model)
    assert "batch_stats" not in normaug and "LayerNorm_0" not in normaug["params"]
    assert "LayerNorm_0" in normaug["params"]["BatchRNN_0"]


def test_parameter_map_covers_every_full_size_tensor():
    """Every PyTorch tensor has a rule (bias_ih aside) and every flax leaf has one PyTorch home."""
    for name in COUNTS:
        options = VARIANTS[name].model
        rules = deepspeech_param_map.rules(options)
        with torch.device("meta"):
            sd = deepspeech_pytorch.build_model(options).state_dict()
        leaves = {tuple(k.key for k in path) for path, _ in jax.tree_util.tree_leaves_with_path(
            _jax_shapes(options)
        )}  # fmt: skip
        assert {r.jax for r in rules} == leaves
        assert {r.pt for r in rules} == {k for k in sd if ".bias_ih_l0" not in k}


def test_bad_options_name_the_spec():
    with pytest.raises(ValueError, match=r"spec\.py.*unknown"):
        deepspeech_param_map.deepspeech_options({"attention_temperature": 1.0})
    with pytest.raises(ValueError, match="activation"):
        deepspeech_param_map.deepspeech_options({"activation": "gelu"})


def _audio(seed: int = 0, samples: int = 8000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 16000.0
    chirp = 8000 * np.sin(2 * np.pi * (200 + 3000 * t) * t)
    audio = np.stack([chirp, chirp[::-1]]) + rng.normal(0, 300, (2, samples))
    paddings = np.zeros((2, samples))
    paddings[1, 5123:] = 1.0
    return audio.astype(np.float32), paddings.astype(np.float32)


def test_frontends_match_the_numpy_reference():
    audio, paddings = _audio()
    want, want_pad = logmel.log_mel(audio, paddings)
    got, got_pad = jax.jit(frontend_jax.log_mel)(audio, paddings)
    np.testing.assert_allclose(np.asarray(got), want, atol=2e-3, rtol=0)
    np.testing.assert_array_equal(np.asarray(got_pad), want_pad)
    got, got_pad = frontend_pytorch.LogMelFrontend()(torch.tensor(audio), torch.tensor(paddings))
    np.testing.assert_allclose(got.numpy(), want, atol=2e-3, rtol=0)
    np.testing.assert_array_equal(got_pad.numpy(), want_pad)
    assert frontend_pytorch.LogMelFrontend().state_dict() == {}
