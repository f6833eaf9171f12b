"""JAX vs PyTorch parity of the Conformers on identical weights and audio (fp32, CPU).

A tiny Conformer (d=32, 4 heads, 2 blocks, vocab 16; the front-end and subsampling as the
workload's) for every variant's model options: the flax model is initialised, every parameter
and running statistic randomised (so no LayerNorm/BatchNorm/QueryScaler offset is trivially 0),
the parameter map copies them into the PyTorch model, and two utterances of 6,000 samples (the
second padded after 3,500) go through both, in EVAL mode (running BatchNorm statistics) and in
TRAIN mode with dropout rate 0 (batch statistics over valid frames; running statistics
updated), with SpecAugment off (its masks are checked on identical draws in the unit tests).

Tolerance: logits (O(1)) 2e-5 absolute on valid frames (seen at most 3e-6: float32 FFT,
convolution and attention rounding; padded frames agree too, as both mask attention queries and
keys alike); the updated running statistics 1e-5. A map with q and k swapped differs by 0.4, and
each variant's option changes the logits by far more than the tolerance.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch

from algoperf.registry import get_config
from workloads.librispeech import conformer_jax, conformer_param_map, conformer_pytorch

ATOL = 2e-5
STATS_ATOL = 1e-5
TINY = {
    "encoder_dim": 32,
    "num_attention_heads": 4,
    "num_encoder_layers": 2,
    "vocab_size": 16,
    "use_specaug": False,
}
NAMES = (
    "librispeech_conformer",
    "librispeech_conformer_attention_temperature",
    "librispeech_conformer_layernorm",
    "librispeech_conformer_gelu",
)


def _options(name: str) -> dict:
    return {**get_config(name).model, **TINY}


def _randomised(variables, seed: int):
    rng = np.random.default_rng(seed)

    def leaf(path, x):
        keys = [getattr(p, "key", "") for p in path]
        if keys[-1] == "var":
            return rng.uniform(0.5, 1.5, x.shape).astype(np.float32)
        if len(x.shape) >= 2:
            fan_in = int(np.prod(x.shape[:2])) if keys[-2] == "out" else int(x.shape[0])
            if len(x.shape) == 4:  # conv HWIO
                fan_in = int(np.prod(x.shape[:-1]))
            return (rng.standard_normal(x.shape) / np.sqrt(fan_in)).astype(np.float32)
        return (0.2 * rng.standard_normal(x.shape)).astype(np.float32)

    return jax.tree_util.tree_map_with_path(leaf, variables)


def _audio():
    rng = np.random.default_rng(7)
    audio = rng.integers(-4000, 4000, size=(2, 6000)).astype(np.float32)
    paddings = np.zeros_like(audio)
    paddings[1, 3500:] = 1.0
    audio[1, 3500:] = 0.0
    return audio, paddings


def _both(name: str, train: bool, swap_qk: bool = False):
    options = _options(name)
    flax_model = conformer_jax.build_model(options)
    shapes = jax.eval_shape(lambda r: conformer_jax.init(flax_model, r, 6000), jax.random.key(0))
    variables = _randomised(shapes, 1)
    sd = conformer_param_map.jax_to_pytorch(variables, options)
    if swap_qk:
        for key, w in sd.items():
            if key.endswith("in_proj.weight"):
                d = w.shape[1]
                sd[key] = np.concatenate([w[d : 2 * d], w[:d], w[2 * d :]])
    torch_model = conformer_pytorch.build_model(options)
    torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    audio, paddings = _audio()
    if train:
        (out_j, pad_j), state = flax_model.apply(
            variables,
            audio,
            paddings,
            train=True,
            dropout_rate=0.0,
            rngs={"dropout": jax.random.key(3)},
            mutable=["batch_stats"],
        )
    else:
        out_j, pad_j = flax_model.apply(variables, audio, paddings, train=False)
        state = None
    torch_model.train(train)
    with torch.set_grad_enabled(train):
        out_t, pad_t = torch_model(torch.from_numpy(audio), torch.from_numpy(paddings), 0.0)
    return (
        (np.asarray(out_j), np.asarray(pad_j)),
        (out_t.detach().numpy(), pad_t.numpy()),
        state,
        torch_model,
        options,
    )


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_logits_agree_on_valid_frames(name, train):
    (out_j, pad_j), (out_t, pad_t), state, torch_model, _ = _both(name, train)
    np.testing.assert_array_equal(pad_j, pad_t)
    valid = pad_j < 0.5
    assert valid[0].all() and not valid[1].all() and valid[1].any()
    assert out_j.shape == out_t.shape == (2, pad_j.shape[1], 16)
    assert np.abs(out_j[valid]).max() > 0.1
    np.testing.assert_allclose(out_j[valid], out_t[valid], atol=ATOL, rtol=0)
    if train:
        sd = {k: v.numpy() for k, v in torch_model.state_dict().items()}
        stats = jax.tree_util.tree_leaves_with_path(state["batch_stats"])
        assert len(stats) == 2 * TINY["num_encoder_layers"]
        for i in range(TINY["num_encoder_layers"]):
            bn = state["batch_stats"][f"ConformerBlock_{i}"]["ConvolutionBlock_0"]["BatchNorm_0"]
            for jk, pk in (("mean", "running_mean"), ("var", "running_var")):
                np.testing.assert_allclose(
                    np.asarray(bn[jk]), sd[f"conformers.{i}.conv.bn.{pk}"], atol=STATS_ATOL
                )


def test_a_mis_mapped_attention_is_caught():
    (out_j, pad_j), (out_t, _), *_ = _both("librispeech_conformer", False, swap_qk=True)
    valid = pad_j < 0.5
    assert np.abs(out_j[valid] - out_t[valid]).max() > 100 * ATOL


def test_map_round_trips():
    options = _options("librispeech_conformer_layernorm")
    sd = {k: v.numpy() for k, v in conformer_pytorch.build_model(options).state_dict().items()}
    back = conformer_param_map.jax_to_pytorch(
        conformer_param_map.pytorch_to_jax(sd, options), options
    )
    assert set(back) == set(sd)
    for key, value in sd.items():
        np.testing.assert_array_equal(back[key], value)


def _without_post_layer_norm(variables):
    params = {
        k: {kk: vv for kk, vv in v.items() if kk != "LayerNorm_0"} if "Block" in k else v
        for k, v in variables["params"].items()
    }
    return {**variables, "params": params}


@pytest.mark.parametrize("name", NAMES[1:])
def test_each_variant_option_changes_the_model(name):
    base = conformer_jax.build_model(_options("librispeech_conformer"))
    variant = conformer_jax.build_model(_options(name))
    shapes = jax.eval_shape(lambda r: conformer_jax.init(base, r, 6000), jax.random.key(0))
    variables = _randomised(shapes, 1)
    audio, paddings = _audio()
    out_b, pad = base.apply(variables, audio, paddings, train=False)
    if name.endswith("_layernorm"):
        variables = _without_post_layer_norm(variables)
    out_v, _ = variant.apply(variables, audio, paddings, train=False)
    valid = np.asarray(pad) < 0.5
    assert np.abs(np.asarray(out_b)[valid] - np.asarray(out_v)[valid]).max() > 100 * ATOL
