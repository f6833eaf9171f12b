"""DeepSpeech models: upstream's parameter counts (shape-only), names, parameter map, options.

The log-mel front-end is the Conformer's (as upstream shares it); its tests against the numpy
reference are in test_librispeech_conformer.py.
"""

from __future__ import annotations

import math

import jax
import pytest
import torch

from workloads.librispeech import (
    deepspeech_jax,
    deepspeech_param_map,
    deepspeech_pytorch,
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
