"""Vision models (CIFAR ResNet-18, ResNet-50, ViT-S/16 and variants) in both frameworks.

Full-size models are only ever built abstractly (``jax.eval_shape`` of init; PyTorch on the
``meta`` device), so counting 25M parameters costs no compute. Behaviour (init schemes, batch
norm, dropout, padding) is checked on small layouts of the same code.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch import nn

from algoperf import param_utils, parity, spec
from algoperf.registry import get_config
from workloads.cifar import model_jax as cifar_jax
from workloads.cifar import model_pytorch as cifar_pt
from workloads.cifar import param_map as cifar_map
from workloads.common import resnet_layout as rl
from workloads.common import resnet_pytorch as common_pt
from workloads.imagenet import param_map as pm
from workloads.imagenet import resnet_jax, resnet_pytorch, vit_jax, vit_pytorch

PT = spec.ParameterType

# Trainable parameter counts of upstream's models (reference table, both frameworks).
EXPECTED_PARAMS = {
    "cifar": 11_173_962,
    "imagenet_resnet": 25_557_032,
    "imagenet_resnet_silu": 25_557_032,
    "imagenet_resnet_gelu": 25_557_032,
    "imagenet_resnet_large_bn_init": 25_557_032,
    "imagenet_vit": 22_122_472,
    "imagenet_vit_glu": 50_452_456,
    "imagenet_vit_post_ln": 22_121_704,
    "imagenet_vit_map": 23_896_552,
}
NAMES = list(EXPECTED_PARAMS)


def _family(name: str) -> str:
    return "cifar" if name == "cifar" else ("resnet" if "resnet" in name else "vit")


def _layout(name: str) -> Any:
    options = get_config(name).model
    return {"cifar": cifar_map.layout, "resnet": pm.resnet_layout, "vit": pm.vit_layout}[
        _family(name)
    ](options)


def _rules(name: str) -> list[parity.Rule]:
    layout = _layout(name)
    return pm.vit_rules(layout) if _family(name) == "vit" else rl.resnet_rules(layout)


@functools.cache
def jax_shapes(name: str) -> tuple[Any, Any]:
    """(params, model_state) of the full model as ShapeDtypeStructs (nothing computed)."""
    options = get_config(name).model
    family = _family(name)
    if family == "cifar":
        model, init, shape = cifar_jax.build_model(options), cifar_jax.init, (1, 32, 32, 3)
    elif family == "resnet":
        model, init, shape = resnet_jax.build_model(options), resnet_jax.init, (1, 224, 224, 3)
    else:
        model, init, shape = vit_jax.build_model(options), vit_jax.init, (1, 224, 224, 3)
    return jax.eval_shape(lambda rng: init(model, rng, shape), jax.random.key(0))


@functools.cache
def pt_meta_model(name: str) -> nn.Module:
    """The full PyTorch model on the meta device (shapes only)."""
    options = get_config(name).model
    builder = {
        "cifar": cifar_pt.build_model,
        "resnet": resnet_pytorch.build_model,
        "vit": vit_pytorch.build_model,
    }[_family(name)]
    with torch.device("meta"):
        return builder(options)


# Parameter counts and the map's coverage --------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_jax_param_count(name: str) -> None:
    params, _ = jax_shapes(name)
    count = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
    assert count == EXPECTED_PARAMS[name]


@pytest.mark.parametrize("name", NAMES)
def test_pytorch_param_count(name: str) -> None:
    model = pt_meta_model(name)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == EXPECTED_PARAMS[name]


@pytest.mark.parametrize("name", NAMES)
def test_param_map_covers_both_models_with_matching_shapes(name: str) -> None:
    """The map turns the PyTorch state dict into exactly the flax init tree (keys and shapes)."""
    params, model_state = jax_shapes(name)
    state_dict = {  # zero-stride stand-ins: shapes only, no memory
        k: np.broadcast_to(np.float32(0), tuple(v.shape))
        for k, v in pt_meta_model(name).state_dict().items()
    }
    if _family(name) == "vit":
        got_params, got_state = pm.vit_pytorch_to_jax(state_dict, _layout(name))
    else:
        got_params, got_state = pm.resnet_pytorch_to_jax(state_dict, _layout(name))

    def shapes(tree: Any) -> dict:
        return {p: tuple(v.shape) for p, v in parity.flatten(tree).items()}

    assert shapes(got_params) == shapes(params)
    assert shapes(got_state) == shapes(model_state)


# Parameter types -------------------------------------------------------------------------------


def structural_pt_type(model: nn.Module, name: str) -> PT:
    """The type a PyTorch parameter has by the module that owns it (independent of its name)."""
    module_name, _, attr = name.rpartition(".")
    owner = model.get_submodule(module_name)
    parent_name, _, child = module_name.rpartition(".")
    parent = model.get_submodule(parent_name) if module_name else None
    bias = attr == "bias"
    if isinstance(owner, nn.BatchNorm2d):
        return PT.BATCH_NORM_BIAS if bias else PT.BATCH_NORM_SCALE
    if isinstance(owner, nn.LayerNorm):
        return PT.LAYER_NORM_BIAS if bias else PT.LAYER_NORM_SCALE
    if isinstance(owner, nn.Conv2d):
        return PT.BIAS if bias else PT.CONV_WEIGHT
    if isinstance(parent, vit_pytorch.SelfAttention | vit_pytorch.CrossAttention):
        if bias:
            return PT.ATTENTION_BIAS
        return {
            "query": PT.ATTENTION_Q,
            "key": PT.ATTENTION_K,
            "value": PT.ATTENTION_V,
            "out": PT.ATTENTION_OUT,
            "q_proj": PT.ATTENTION_Q,
            "kv_proj": PT.ATTENTION_KV,
            "out_proj": PT.ATTENTION_OUT,
        }[child]
    return PT.BIAS if bias else PT.WEIGHT


@pytest.mark.parametrize("name", NAMES)
def test_pytorch_param_types_follow_the_modules(name: str) -> None:
    model = pt_meta_model(name)
    types = param_utils.pytorch_param_types(param_utils.pytorch_param_shapes(model))
    assert len(types) == len(list(model.parameters()))
    for key, ptype in types.items():
        assert ptype == structural_pt_type(model, key), key


@pytest.mark.parametrize("name", NAMES)
def test_jax_param_types_match_pytorch(name: str) -> None:
    """Every flax leaf is typed, and as the PyTorch tensor it maps to (fused k/v: K and V)."""
    params, _ = jax_shapes(name)
    jax_types = parity.flatten(param_utils.jax_param_types(params))
    assert set(jax_types) == set(parity.flatten(params))
    assert all(isinstance(t, PT) for t in jax_types.values())
    pt_types = param_utils.pytorch_param_types(
        param_utils.pytorch_param_shapes(pt_meta_model(name))
    )
    for rule in _rules(name):
        if rule.jax[0] != "params":
            continue
        expected = pt_types[rule.pt]
        if expected == PT.ATTENTION_KV:
            expected = PT.ATTENTION_K if rule.rows[0] == 0 else PT.ATTENTION_V
        assert jax_types[rule.jax[1:]] == expected, "/".join(rule.jax)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cifar", {PT.CONV_WEIGHT: 20, PT.BATCH_NORM_SCALE: 20, PT.BATCH_NORM_BIAS: 20}),
        ("imagenet_resnet", {PT.CONV_WEIGHT: 53, PT.BATCH_NORM_SCALE: 53, PT.WEIGHT: 1}),
        (
            "imagenet_vit",
            {PT.CONV_WEIGHT: 1, PT.LAYER_NORM_SCALE: 25, PT.ATTENTION_Q: 12, PT.ATTENTION_OUT: 12},
        ),
        ("imagenet_vit_post_ln", {PT.LAYER_NORM_SCALE: 24, PT.ATTENTION_BIAS: 48}),
        ("imagenet_vit_map", {PT.LAYER_NORM_SCALE: 26, PT.ATTENTION_Q: 13, PT.ATTENTION_K: 13}),
    ],
)
def test_jax_param_type_counts(name: str, expected: dict) -> None:
    params, _ = jax_shapes(name)
    types = list(parity.flatten(param_utils.jax_param_types(params)).values())
    for ptype, count in expected.items():
        assert types.count(ptype) == count, ptype


# Initialisation (small layouts of the same code) -----------------------------------------------

SMALL_RESNET = rl.ResNetLayout(
    stage_sizes=(1, 1), bottleneck=True, num_classes=7, num_filters=16, bn_init_scale=0.5
)
SMALL_VIT = pm.ViTLayout(
    num_classes=7, width=32, depth=1, mlp_dim=64, num_heads=4, patch_size=8, use_glu=True,
    use_map=True,
)  # fmt: skip


@pytest.fixture(scope="module")
def small_resnet_jax() -> tuple[Any, Any, Any]:
    """(model, params, model_state) of `SMALL_RESNET` in flax (initialised once)."""
    model = resnet_jax.ResNet(layout=SMALL_RESNET)
    return (model, *resnet_jax.init(model, jax.random.key(0), (1, 32, 32, 3)))


@pytest.fixture(scope="module")
def small_vit_jax() -> tuple[Any, Any, Any]:
    """(model, params, model_state) of `SMALL_VIT` in flax (initialised once)."""
    model = vit_jax.ViT(layout=SMALL_VIT)
    return (model, *vit_jax.init(model, jax.random.key(0), (1, 32, 32, 3)))


def _check_lecun_truncated(w: np.ndarray, fan_in: int) -> None:
    std = np.sqrt(1.0 / fan_in)
    assert np.abs(w).max() <= 2 * std / 0.87962566103423978 + 1e-6
    assert abs(w.std() / std - 1) < 0.1


def test_pytorch_resnet_init() -> None:
    torch.manual_seed(0)
    model = resnet_pytorch.ResNet(SMALL_RESNET)
    last = {id(m.last_bn) for m in model.modules() if isinstance(m, common_pt.Bottleneck)}
    assert len(last) == 2
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            expected = 0.5 if id(m) in last else 1.0
            assert torch.all(m.weight == expected) and torch.all(m.bias == 0)
            assert torch.all(m.running_mean == 0) and torch.all(m.running_var == 1)
            assert m.momentum == 0.1 and m.eps == 1e-5
        elif isinstance(m, nn.Conv2d) and m.weight.numel() >= 4096:
            _check_lecun_truncated(m.weight.detach().numpy(), m.weight[0].numel())
    assert torch.all(model.fc.bias == 0)
    assert abs(model.fc.weight.std().item() - 0.01) < 0.002


def test_jax_resnet_init(small_resnet_jax: tuple) -> None:
    _, params, state = small_resnet_jax
    flat = {"/".join(p): np.asarray(v) for p, v in parity.flatten(params).items()}
    for path, value in flat.items():
        if path.endswith("BatchNorm_2/scale"):
            np.testing.assert_array_equal(value, 0.5)
        elif path.endswith("scale"):
            np.testing.assert_array_equal(value, 1.0)
        elif "BatchNorm" in path and path.endswith("bias"):
            np.testing.assert_array_equal(value, 0.0)
        elif "Conv" in path and value.size >= 4096:
            _check_lecun_truncated(value, int(np.prod(value.shape[:-1])))
    assert sum(p.endswith("BatchNorm_2/scale") for p in flat) == 2
    np.testing.assert_array_equal(flat["Dense_0/bias"], 0.0)
    assert abs(flat["Dense_0/kernel"].std() - 0.01) < 0.002
    stats = parity.flatten(state["batch_stats"])
    assert all(np.all(np.asarray(v) == (0 if p[-1] == "mean" else 1)) for p, v in stats.items())


def test_pytorch_vit_init() -> None:
    torch.manual_seed(0)
    model = vit_pytorch.ViT(SMALL_VIT)
    sd = model.state_dict()
    assert torch.all(sd["head.weight"] == 0) and torch.all(sd["head.bias"] == 0)
    assert torch.all(sd["encoder.net.0.self_attention1.query.bias"] == 0)
    mlp_bias = sd["encoder.net.0.mlp3.linear1.bias"]
    assert 0 < mlp_bias.abs().max() < 1e-4
    assert torch.all(sd["pre_logits.bias"] == 0) and torch.all(sd["conv_patch_extract.bias"] == 0)
    w = sd["encoder.net.0.mlp3.linear2.weight"]  # Xavier uniform: |w| <= sqrt(6 / (in + out))
    assert w.abs().max() <= np.sqrt(6 / sum(w.shape)) and w.abs().max() > 0.9 * np.sqrt(6 / 96)
    assert not torch.all(vit_pytorch.ViT(SMALL_VIT, head_zeroinit=False).head.weight == 0)


def test_jax_vit_init(small_vit_jax: tuple) -> None:
    _, params, state = small_vit_jax
    assert state == {}
    assert np.all(np.asarray(params["head"]["kernel"]) == 0)
    assert np.all(np.asarray(params["head"]["bias"]) == 0)
    block = params["Transformer"]["encoderblock_0"]
    assert np.all(np.asarray(block["MultiHeadDotProductAttention_1"]["query"]["bias"]) == 0)
    assert 0 < np.abs(np.asarray(block["MlpBlock_3"]["Dense_0"]["bias"])).max() < 1e-4
    k = np.asarray(block["MlpBlock_3"]["Dense_2"]["kernel"])
    assert np.abs(k).max() <= np.sqrt(6 / sum(k.shape))
    probe = np.asarray(params["MAPHead_0"]["probe"])
    assert probe.shape == (1, 1, SMALL_VIT.width) and np.any(probe != 0)


def test_variant_options_reach_the_layouts() -> None:
    assert _layout("imagenet_resnet").bn_init_scale == 0.0
    assert _layout("imagenet_resnet_large_bn_init").bn_init_scale == 8.0
    assert _layout("imagenet_resnet_silu").activation == "silu"
    assert _layout("imagenet_resnet_gelu").activation == "gelu"
    assert _layout("imagenet_vit_glu").use_glu and _layout("imagenet_vit_map").use_map
    assert _layout("imagenet_vit_post_ln").use_post_layer_norm
    vit = _layout("imagenet_vit")
    assert (vit.width, vit.depth, vit.mlp_dim, vit.num_heads, vit.patch_size) == (
        384, 12, 1536, 6, 16,
    )  # fmt: skip
    assert _layout("cifar") == rl.ResNetLayout((2, 2, 2, 2), False, 10, 64, "relu", 0.0, "cifar")


# Batch norm ------------------------------------------------------------------------------------


def _small_resnet_inputs() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((4, 32, 32, 3)).astype(np.float32)


def test_jax_batch_norm_update_switch(small_resnet_jax: tuple) -> None:
    model, params, state = small_resnet_jax
    x = _small_resnet_inputs()
    eval_logits, same = resnet_jax.forward(model, params, state, x, update_batch_norm=False)
    assert same is state
    train_logits, new = resnet_jax.forward(model, params, state, x, update_batch_norm=True)
    assert not np.allclose(train_logits, eval_logits)
    changed = jax.tree.map(lambda a, b: bool(np.any(a != b)), state, new)
    assert all(jax.tree.leaves(changed))
    # use_running_average_bn=True: normalise with (and keep) the running statistics.
    logits, kept = resnet_jax.forward(
        model, params, state, x, update_batch_norm=True, use_running_average_bn=True
    )
    np.testing.assert_allclose(logits, eval_logits, rtol=1e-6)
    assert all(jax.tree.leaves(jax.tree.map(lambda a, b: bool(np.all(a == b)), state, kept)))
    # Batch statistics without an update (PyTorch's train mode with frozen running statistics).
    logits, same = resnet_jax.forward(
        model, params, state, x, update_batch_norm=False, use_running_average_bn=False
    )
    np.testing.assert_allclose(logits, train_logits, rtol=1e-6)
    assert same is state


def test_pytorch_batch_norm_update_switch() -> None:
    torch.manual_seed(0)
    model = resnet_pytorch.ResNet(SMALL_RESNET)
    x = torch.from_numpy(_small_resnet_inputs().transpose(0, 3, 1, 2).copy())

    def stats() -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in model.state_dict().items() if "running" in k}

    before = stats()
    with torch.no_grad():
        resnet_pytorch.set_mode(model, train=True, update_batch_norm=False)
        frozen_logits = model(x)
        assert all(torch.equal(before[k], v) for k, v in stats().items())
        resnet_pytorch.set_mode(model, train=True, update_batch_norm=True)
        np.testing.assert_allclose(model(x).numpy(), frozen_logits.numpy(), rtol=1e-6)
        assert all(not torch.equal(before[k], v) for k, v in stats().items())
        after = stats()
        resnet_pytorch.set_mode(model, train=False, update_batch_norm=False)
        model(x)
        assert all(torch.equal(after[k], v) for k, v in stats().items())
    with pytest.raises(ValueError, match="cannot be updated during evaluation"):
        resnet_pytorch.set_mode(model, train=False, update_batch_norm=True)


# Dropout ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("post_ln", [False, True])
def test_jax_vit_dropout_rate_is_a_call_argument(post_ln: bool, small_vit_jax: tuple) -> None:
    _, params, _ = small_vit_jax
    head = params["head"]  # a non-zero head, or every logit is 0
    kernel = jax.random.normal(jax.random.key(2), head["kernel"].shape)
    params = {**params, "head": {"kernel": kernel, "bias": head["bias"]}}
    model = vit_jax.ViT(layout=dataclasses.replace(SMALL_VIT, use_post_layer_norm=post_ln))
    if post_ln:  # the post-LN model lacks only the final encoder LayerNorm
        encoder = dict(params["Transformer"])
        del encoder["encoder_layernorm"]
        params = {**params, "Transformer": encoder}
    x = jnp.asarray(_small_resnet_inputs())
    traces = []

    @jax.jit
    def train_logits(rate: jax.Array, rng: jax.Array) -> jax.Array:
        traces.append(1)
        return vit_jax.forward(model, params, x, train=True, rng=rng, dropout_rate=rate)

    rng = jax.random.key(1)
    eval_logits = vit_jax.forward(model, params, x, train=False, dropout_rate=0.5)
    np.testing.assert_allclose(
        train_logits(jnp.float32(0.0), rng), eval_logits, rtol=1e-5, atol=1e-6
    )
    dropped = train_logits(jnp.float32(0.3), rng)
    assert not np.allclose(dropped, eval_logits, atol=1e-3)
    assert len(traces) == 1  # a new rate does not recompile


def test_pytorch_vit_dropout_rate_is_a_forward_argument() -> None:
    torch.manual_seed(0)
    model = vit_pytorch.ViT(SMALL_VIT, head_zeroinit=False)
    x = torch.from_numpy(_small_resnet_inputs().transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        model.eval()
        eval_logits = model(x, dropout_rate=0.5)
        np.testing.assert_allclose(model(x, dropout_rate=0.0), eval_logits, rtol=1e-6)
        model.train()
        np.testing.assert_allclose(model(x, dropout_rate=0.0), eval_logits, rtol=1e-5, atol=1e-6)
        assert not torch.allclose(model(x, dropout_rate=0.3), eval_logits, atol=1e-3)


# Padding ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [7, 8])
@pytest.mark.parametrize("stride", [1, 2])
def test_same_pad_conv_matches_flax_same_padding(size: int, stride: int) -> None:
    torch.manual_seed(0)
    conv = common_pt.SamePadConv2d(3, 4, 3, stride=stride, padding=0, bias=False)
    x = np.random.default_rng(0).standard_normal((1, size, size, 3)).astype(np.float32)
    kernel = parity.conv_to_jax(conv.weight.detach().numpy())
    expected = jax.lax.conv_general_dilated(
        x, kernel, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    with torch.no_grad():
        got = conv(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_padding_styles_differ_only_as_upstream_does(small_resnet_jax: tuple) -> None:
    """Upstream's JAX and PyTorch ResNets disagree on stride-2 3x3 convs of even-sized inputs."""
    model_flax, params, state = small_resnet_jax
    model_torch = resnet_jax.ResNet(layout=SMALL_RESNET, padding_style="torch")
    x = _small_resnet_inputs()
    a, _ = resnet_jax.forward(model_flax, params, state, x, update_batch_norm=True)
    b, _ = resnet_jax.forward(model_torch, params, state, x, update_batch_norm=True)
    assert not np.allclose(a, b, atol=1e-3)


# Parameter maps --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layout",
    [
        SMALL_RESNET,
        rl.ResNetLayout((2, 1), False, 5, num_filters=8, stem="cifar"),
        SMALL_VIT,
        pm.ViTLayout(5, width=16, depth=1, mlp_dim=32, num_heads=2, patch_size=8,
                     use_post_layer_norm=True),
    ],
    ids=["resnet-bottleneck", "resnet-basic-cifar", "vit-glu-map", "vit-post-ln"],
)  # fmt: skip
def test_param_map_round_trip_is_exact(layout: Any) -> None:
    torch.manual_seed(0)
    if isinstance(layout, pm.ViTLayout):
        model = vit_pytorch.ViT(layout, head_zeroinit=False)
        sd = {k: v.numpy() for k, v in model.state_dict().items()}
        back = pm.vit_jax_to_pytorch(pm.vit_pytorch_to_jax(sd, layout)[0], layout)
    else:
        model = resnet_pytorch.ResNet(layout)
        for m in model.modules():  # make every batch-norm tensor distinct
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_()
                m.weight.data.normal_()
        sd = {k: v.numpy() for k, v in model.state_dict().items()}
        back = pm.resnet_jax_to_pytorch(*pm.resnet_pytorch_to_jax(sd, layout), layout)
    assert set(back) == set(sd)
    for key, value in sd.items():
        np.testing.assert_array_equal(back[key], value, err_msg=key)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in back.items()})  # strict


def test_param_map_rejects_missing_and_unknown_keys() -> None:
    torch.manual_seed(0)
    sd = {k: v.numpy() for k, v in vit_pytorch.ViT(SMALL_VIT).state_dict().items()}
    with pytest.raises(KeyError, match="lacks 1 mapped keys"):
        pm.vit_pytorch_to_jax({k: v for k, v in sd.items() if k != "head.bias"}, SMALL_VIT)
    with pytest.raises(KeyError, match="no parameter-map rule"):
        pm.vit_pytorch_to_jax({**sd, "extra.weight": sd["head.bias"]}, SMALL_VIT)
    params = pm.vit_pytorch_to_jax(sd, SMALL_VIT)[0]
    del params["head"]["bias"]
    with pytest.raises(KeyError, match="lack 1 mapped leaves"):
        pm.vit_jax_to_pytorch(params, SMALL_VIT)


def test_attention_kernel_layout() -> None:
    """Torch (out, in) rows split head-major into flax (in, heads, head_dim) kernels."""
    w = np.arange(6 * 4, dtype=np.float32).reshape(6, 4)  # d_out = 2 heads x 3, d_in = 4
    (kernel_rule, _) = parity.attention_in_rules("q", ("params", "q"), num_heads=2)
    k = kernel_rule.to_jax(w)
    assert k.shape == (4, 2, 3)
    np.testing.assert_array_equal(k[:, 1, 0], w[3])
    np.testing.assert_array_equal(kernel_rule.to_pt(k), w)
    (out_rule, _) = parity.attention_out_rules("o", ("params", "o"), num_heads=2)
    w_out = np.arange(4 * 6, dtype=np.float32).reshape(4, 6)  # d_out = 4, d_in = 2 heads x 3
    k_out = out_rule.to_jax(w_out)
    assert k_out.shape == (2, 3, 4)
    np.testing.assert_array_equal(k_out[1, 0], w_out[:, 3])
    np.testing.assert_array_equal(out_rule.to_pt(k_out), w_out)


# Bad options -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("builder", "options", "match"),
    [
        (pm.resnet_layout, {"activation": "tanh"}, "unknown ResNet activation 'tanh'"),
        (pm.resnet_layout, {"arch": "resnet101"}, "unknown ResNet arch"),
        (pm.resnet_layout, {"use_glu": True}, r"unknown ResNet model option\(s\) \['use_glu'\]"),
        (pm.vit_layout, {"arch": "vit_x16"}, "unknown ViT arch 'vit_x16'"),
        (pm.vit_layout, {"activation": "relu"}, "unknown ViT model option"),
        (cifar_map.layout, {"bn_init_scale": 1.0}, "unknown CIFAR model option"),
    ],
)
def test_bad_model_options_name_the_spec_file(builder: Any, options: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match) as err:
        builder(options)
    assert "workloads/" in str(err.value) and "spec.py" in str(err.value)
