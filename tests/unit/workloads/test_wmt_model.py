"""wmt Transformer: parameter counts, upstream's names, the parameter map, init, options."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch

from algoperf.parity import flatten
from algoperf.registry import get_config
from workloads.wmt import model_jax, model_pytorch, param_map

COUNTS = {"wmt": 133_521_408, "wmt_post_ln": 133_517_312, "wmt_glu_tanh": 146_116_608}
COUNTS["wmt_attention_temp"] = 133_521_408
SMALL = {"vocab_size": 37, "emb_dim": 16, "num_heads": 2, "num_layers": 2, "mlp_dim": 24}


def _jax_shapes(options):
    model = model_jax.build_model(options)
    return jax.eval_shape(lambda r: model_jax.init(model, r), jax.random.PRNGKey(0))


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_trainable_parameter_counts_are_upstreams(name):
    options = get_config(name).model
    shapes = _jax_shapes(options)
    assert sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes)) == COUNTS[name]
    with torch.device("meta"):
        pt = model_pytorch.build_model(options)
    assert sum(p.numel() for p in pt.parameters() if p.requires_grad) == COUNTS[name]


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_map_rules_cover_both_models_exactly_with_matching_sizes(name):
    """Every flax leaf and every PyTorch tensor has one rule, and the element counts agree."""
    options = {**get_config(name).model, **SMALL}
    layout = param_map.transformer_layout(options)
    flax_leaves = flatten({"params": _jax_shapes(options)})
    pt = model_pytorch.build_model(options)
    state = pt.state_dict()
    rules = param_map.rules(layout)
    assert {r.jax for r in rules} == set(flax_leaves)
    assert {r.pt for r in rules} == set(state)
    for rule in rules:
        rows = state[rule.pt].shape[0] if rule.rows is None else rule.rows[1] - rule.rows[0]
        pt_size = rows * int(np.prod(state[rule.pt].shape[1:]))
        assert pt_size == int(np.prod(flax_leaves[rule.jax].shape)), rule


def test_upstream_names_and_shapes():
    options = {**get_config("wmt_glu_tanh").model, **SMALL}
    shapes = _jax_shapes(options)
    assert set(shapes) == {"shared_embedding", "encoder", "decoder"}
    assert set(shapes["encoder"]) == {"encoderblock_0", "encoderblock_1", "encoder_layernorm"}
    block = shapes["decoder"]["encoderdecoderblock_1"]
    assert set(block) == {
        "LayerNorm_0",
        "LayerNorm_1",
        "LayerNorm_2",
        "MultiHeadDotProductAttention_0",
        "MultiHeadDotProductAttention_1",
        "MlpBlock_0",
    }
    assert set(block["MultiHeadDotProductAttention_1"]) == {"query", "key", "value", "out"}
    assert block["MultiHeadDotProductAttention_1"]["query"]["kernel"].shape == (16, 2, 8)
    assert "bias" not in block["MultiHeadDotProductAttention_1"]["out"]
    mlp = block["MlpBlock_0"]
    assert [mlp[f"Dense_{k}"]["kernel"].shape for k in range(3)] == [(16, 24), (16, 24), (24, 16)]
    post = _jax_shapes({**get_config("wmt_post_ln").model, **SMALL})
    assert "encoder_layernorm" not in post["encoder"]
    assert "encoderdecoder_layernorm" not in post["decoder"]
    keys = set(model_pytorch.build_model(options).state_dict())
    assert {
        "shared_embedding.weight",
        "encoder.encoder.layers.1.self_attn.in_proj.weight",
        "encoder.encoder.layers.0.linear_glu.bias",
        "encoder.encoder.norm.weight",
        "decoder.decoder.layers.0.multihead_attn.kv_proj.weight",
        "decoder.decoder.layers.0.multihead_attn.q_proj.weight",
        "decoder.decoder.layers.1.norm3.bias",
        "decoder.decoder.norm.bias",
    } <= keys


def test_round_trip_and_upstream_alias_keys_are_ignored():
    options = {**get_config("wmt").model, **SMALL}
    torch.manual_seed(0)
    state = {k: v.numpy() for k, v in model_pytorch.build_model(options).state_dict().items()}
    params = param_map.pytorch_to_jax_params(state, options)
    back = param_map.jax_to_pytorch_params(params, options)
    assert set(back) == set(state)
    for key, value in state.items():
        np.testing.assert_array_equal(back[key], value)
    d = SMALL["emb_dim"]
    in_proj = state["encoder.encoder.layers.0.self_attn.in_proj.weight"]
    attn = params["encoder"]["encoderblock_0"]["MultiHeadDotProductAttention_0"]
    np.testing.assert_array_equal(attn["value"]["kernel"].reshape(d, d), in_proj[2 * d :].T)
    upstream = dict(state)
    upstream["encoder.shared_embedding.weight"] = state["shared_embedding.weight"]
    upstream["decoder.pos_encoder.pe"] = np.zeros((1, 256, d), np.float32)
    assert flatten(param_map.pytorch_to_jax_params(upstream, options)).keys() == (
        flatten(params).keys()
    )
    with pytest.raises(KeyError, match="no parameter-map rule"):
        param_map.pytorch_to_jax_params({**state, "extra.weight": in_proj}, options)


def test_init_is_upstreams():
    options = {**get_config("wmt").model, "vocab_size": 500, "num_layers": 1}
    options |= {"emb_dim": 64, "mlp_dim": 64, "num_heads": 4}
    model = model_jax.build_model(options)
    params = jax.jit(lambda r: model_jax.init(model, r))(jax.random.PRNGKey(0))
    torch.manual_seed(0)
    pt = model_pytorch.build_model(options)
    emb_j = np.asarray(params["shared_embedding"]["embedding"])
    assert abs(emb_j.std() - 1.0) < 0.01
    assert abs(pt.shared_embedding.weight.std().item() - 1.0) < 0.01
    mlp = params["encoder"]["encoderblock_0"]["MlpBlock_0"]["Dense_0"]
    bound = np.sqrt(6 / 128)
    assert np.abs(mlp["kernel"]).max() <= bound
    assert np.abs(mlp["kernel"]).max() > 0.99 * bound
    assert 0 < np.abs(mlp["bias"]).max() < 1e-5
    linear1 = pt.encoder.encoder.layers[0].linear1
    assert bound * 0.99 < linear1.weight.abs().max().item() <= bound
    assert 0 < linear1.bias.abs().max().item() < 1e-5
    # upstream's PyTorch applies Xavier to the fused (3d, d) projection as one matrix
    in_proj = pt.encoder.encoder.layers[0].self_attn.in_proj.weight
    assert in_proj.abs().max().item() <= np.sqrt(6 / 256)
    norm = params["decoder"]["encoderdecoder_layernorm"]
    assert np.all(np.asarray(norm["scale"]) == 1) and np.all(np.asarray(norm["bias"]) == 0)


def test_sinusoidal_table_and_shift_right():
    table = param_map.sinusoidal_table(256, 8)
    assert table.shape == (1, 256, 8)
    div = np.exp(np.arange(4) * -np.log(10_000.0) / 3)
    np.testing.assert_allclose(table[0, 7, :4], np.sin(7 * div), rtol=1e-6)
    np.testing.assert_allclose(table[0, 7, 4:], np.cos(7 * div), rtol=1e-6)
    x = np.array([[5, 6, 7], [8, 9, 0]])
    expected = [[0, 5, 6], [0, 8, 9]]
    assert np.asarray(model_jax.shift_right(x)).tolist() == expected
    assert model_pytorch.shift_right(torch.from_numpy(x)).tolist() == expected


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"activation": "gelu"}, "activation 'gelu'"),
        ({"emb_dim": 30, "num_heads": 4}, "not divisible"),
        ({"qkv_dim": 512}, "unknown wmt model option"),
    ],
)
def test_bad_options_are_refused_naming_the_spec(options, message):
    with pytest.raises(ValueError, match=message) as info:
        param_map.transformer_layout(options)
    assert "workloads/wmt/spec.py" in str(info.value)
