"""JAX vs PyTorch parity of the vision models on identical weights and batches (fp32, CPU).

For every variant (cifar; imagenet_resnet, _silu, _gelu, _large_bn_init; imagenet_vit, _glu,
_post_ln, _map) the PyTorch model gets random weights (every tensor non-zero and random,
including batch-norm scales, running statistics and the head, which upstream initialises to
zero and would make the check vacuous), the parameter map copies them into the flax model,
and the same batch (2 images) goes through both:

* eval mode: logits and per-example softmax cross-entropy agree;
* train mode (batch statistics, dropout rate 0, for the ViT through the traced-rate dropout
  path): logits and loss agree, and the updated batch-norm running statistics agree.
  PyTorch updates the running variance with the unbiased batch variance, flax with the biased
  one; the comparison converts one into the other with each layer's element count n.

ResNets run in two directions, because upstream's two frameworks pad stride-2 3x3 convs
differently (see `workloads.imagenet.resnet_jax`): the JAX default model against PyTorch with
flax padding ("jax-default"), and the PyTorch default model against JAX with torch padding
("pt-default").

Tolerances (absolute unless stated; logits are O(1)-O(10)) with the largest differences seen:
eval logits/loss 1e-4 for every model (seen: ResNet-50 1e-5, CIFAR and ViT 1e-6); train-mode
logits/loss 1e-4 for the ViT (seen 1e-6) and 3e-4 for the ResNets (seen 5e-5: batch statistics
of 2 images amplify the float32 rounding differences of the two conv libraries); running means
1e-5 (seen 2e-6); running variances 1e-4 relative (seen 1e-5). The base ResNet (both
directions), the base ViT and CIFAR run by default (about 45 s on 2 cores); the other ImageNet
variants are marked slow (about 10 s each).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
import torch.nn.functional as F

from algoperf.registry import get_config
from workloads.cifar import model_jax as cifar_jax
from workloads.cifar import model_pytorch as cifar_pt
from workloads.cifar import param_map as cifar_map
from workloads.imagenet import param_map as imagenet_map
from workloads.imagenet import resnet_jax, resnet_pytorch, vit_jax, vit_pytorch

BATCH = 2
EVAL_ATOL = 1e-4
TRAIN_ATOL = {"resnet": 3e-4, "vit": 1e-4}
slow = pytest.mark.slow

RESNET_CASES = [
    pytest.param(("cifar", "jax-default"), id="cifar-jax-default"),
    pytest.param(("cifar", "pt-default"), id="cifar-pt-default"),
    pytest.param(("imagenet_resnet", "jax-default"), id="imagenet_resnet-jax-default"),
    pytest.param(("imagenet_resnet", "pt-default"), id="imagenet_resnet-pt-default"),
] + [
    pytest.param((name, direction), id=f"{name}-{direction}", marks=slow)
    for name in ("imagenet_resnet_silu", "imagenet_resnet_gelu", "imagenet_resnet_large_bn_init")
    for direction in ("jax-default", "pt-default")
]
VIT_CASES = [
    pytest.param("imagenet_vit", id="imagenet_vit"),
    pytest.param("imagenet_vit_glu", id="imagenet_vit_glu", marks=slow),
    pytest.param("imagenet_vit_post_ln", id="imagenet_vit_post_ln", marks=slow),
    pytest.param("imagenet_vit_map", id="imagenet_vit_map", marks=slow),
]


@dataclasses.dataclass
class Outputs:
    """What one framework produced for the shared batch."""

    eval_logits: np.ndarray
    eval_loss: np.ndarray
    train_logits: np.ndarray
    train_loss: np.ndarray
    new_stats: dict[str, np.ndarray] | None = None  # PyTorch-named running statistics


@dataclasses.dataclass
class Case:
    pt: Outputs
    jax: Outputs
    old_stats: dict[str, np.ndarray] | None = None
    bn_counts: dict[str, int] | None = None  # elements per channel seen by each batch norm


def random_state_dict(model: torch.nn.Module, seed: int) -> dict[str, np.ndarray]:
    """Random, non-degenerate values for every tensor of `model`'s state dict."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, value in model.state_dict().items():
        shape = tuple(value.shape)
        if key.endswith("num_batches_tracked"):
            out[key] = np.array(0, dtype=np.int64)
            continue
        if key.endswith("running_var"):
            x = rng.uniform(0.5, 1.5, shape)
        elif key.endswith("running_mean"):
            x = 0.1 * rng.standard_normal(shape)
        elif len(shape) >= 2:  # conv / linear weights, the MAP probe
            x = rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))
        elif key.endswith("weight") and ("bn" in key or "norm" in key):
            x = 1.0 + 0.2 * rng.standard_normal(shape)
        else:
            x = 0.1 * rng.standard_normal(shape)
        out[key] = x.astype(np.float32)
    return out


def load(model: torch.nn.Module, state_dict: dict[str, np.ndarray]) -> None:
    model.to_empty(device="cpu")
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state_dict.items()})


def batch(image_size: int, num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, image_size, image_size, 3)).astype(np.float32)
    return x, rng.integers(0, num_classes, BATCH).astype(np.int32)


def pt_loss(logits: torch.Tensor, labels: np.ndarray) -> np.ndarray:
    return F.cross_entropy(logits, torch.from_numpy(labels).long(), reduction="none").numpy()


def jax_loss(logits: jax.Array, labels: np.ndarray) -> np.ndarray:
    return np.asarray(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


# ResNets ---------------------------------------------------------------------------------------


def _resnet_models(name: str, direction: str) -> tuple[Any, torch.nn.Module, Any, int]:
    """(layout, PyTorch model on the meta device, flax model, image size)."""
    pad = "flax" if direction == "jax-default" else "torch"
    options = get_config(name).model
    with torch.device("meta"):
        if name == "cifar":
            pt = cifar_pt.build_model(options, padding_style=pad)
        else:
            pt = resnet_pytorch.build_model(options, padding_style=pad)
    if name == "cifar":
        return cifar_map.layout(options), pt, cifar_jax.build_model(options, padding_style=pad), 32
    layout = imagenet_map.resnet_layout(options)
    return layout, pt, resnet_jax.build_model(options, padding_style=pad), 224


@pytest.fixture(scope="module", params=RESNET_CASES)
def resnet_case(request: pytest.FixtureRequest) -> Case:
    name, direction = request.param
    layout, pt, jm, size = _resnet_models(name, direction)
    state_dict = random_state_dict(pt, seed=0)
    load(pt, state_dict)
    params, model_state = imagenet_map.resnet_pytorch_to_jax(state_dict, layout)
    x, labels = batch(size, layout.num_classes, seed=1)
    x_pt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())

    counts: dict[str, int] = {}
    hooks = [
        m.register_forward_hook(
            lambda mod, inp, out, name=n: counts.__setitem__(
                name, inp[0].numel() // inp[0].shape[1]
            )
        )
        for n, m in pt.named_modules()
        if isinstance(m, torch.nn.BatchNorm2d)
    ]
    with torch.no_grad():
        resnet_pytorch.set_mode(pt, train=False, update_batch_norm=False)
        pt_eval = pt(x_pt)
        resnet_pytorch.set_mode(pt, train=True, update_batch_norm=True)
        pt_train = pt(x_pt)
    for h in hooks:
        h.remove()
    new_pt = {k: v.numpy() for k, v in pt.state_dict().items() if "running" in k}

    j_eval, same_state = resnet_jax.forward(jm, params, model_state, x, update_batch_norm=False)
    assert same_state is model_state
    j_train, new_state = resnet_jax.forward(jm, params, model_state, x, update_batch_norm=True)
    new_jax = imagenet_map.resnet_jax_to_pytorch(params, jax.device_get(new_state), layout)
    return Case(
        pt=Outputs(
            pt_eval.numpy(), pt_loss(pt_eval, labels), pt_train.numpy(), pt_loss(pt_train, labels),
            new_pt,
        ),
        jax=Outputs(
            np.asarray(j_eval), jax_loss(j_eval, labels), np.asarray(j_train),
            jax_loss(j_train, labels), {k: v for k, v in new_jax.items() if "running" in k},
        ),
        old_stats={k: v for k, v in state_dict.items() if "running" in k},
        bn_counts=counts,
    )  # fmt: skip


def test_resnet_eval_logits_and_loss(resnet_case: Case) -> None:
    assert np.abs(resnet_case.pt.eval_logits).max() > 0.1  # not a vacuous comparison
    np.testing.assert_allclose(
        resnet_case.jax.eval_logits, resnet_case.pt.eval_logits, atol=EVAL_ATOL, rtol=0
    )
    np.testing.assert_allclose(
        resnet_case.jax.eval_loss, resnet_case.pt.eval_loss, atol=EVAL_ATOL, rtol=0
    )


def test_resnet_train_logits_and_loss(resnet_case: Case) -> None:
    atol = TRAIN_ATOL["resnet"]
    assert not np.allclose(resnet_case.pt.train_logits, resnet_case.pt.eval_logits, atol=1e-2)
    np.testing.assert_allclose(
        resnet_case.jax.train_logits, resnet_case.pt.train_logits, atol=atol, rtol=0
    )
    np.testing.assert_allclose(
        resnet_case.jax.train_loss, resnet_case.pt.train_loss, atol=atol, rtol=0
    )


def test_resnet_batch_norm_statistics(resnet_case: Case) -> None:
    pt, jx, old = resnet_case.pt.new_stats, resnet_case.jax.new_stats, resnet_case.old_stats
    assert set(pt) == set(jx) == set(old)
    assert len(resnet_case.bn_counts) == len(pt) // 2
    for key in sorted(pt):
        assert not np.allclose(pt[key], old[key]), f"{key} was not updated"
        if key.endswith("running_mean"):
            np.testing.assert_allclose(jx[key], pt[key], atol=1e-5, rtol=0, err_msg=key)
            continue
        # PyTorch: 0.9 old + 0.1 * unbiased var; flax: 0.9 old + 0.1 * biased var.
        n = resnet_case.bn_counts[key.removesuffix(".running_var")]
        biased = (pt[key] - 0.9 * old[key]) / 0.1 * (n - 1) / n
        np.testing.assert_allclose(jx[key], 0.9 * old[key] + 0.1 * biased, rtol=1e-4, err_msg=key)


# ViTs ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=VIT_CASES)
def vit_case(request: pytest.FixtureRequest) -> Case:
    options = get_config(request.param).model
    layout = imagenet_map.vit_layout(options)
    with torch.device("meta"):
        pt = vit_pytorch.build_model(options)
    state_dict = random_state_dict(pt, seed=0)
    load(pt, state_dict)
    jm = vit_jax.build_model(options)
    params, _ = imagenet_map.vit_pytorch_to_jax(state_dict, layout)
    x, labels = batch(224, layout.num_classes, seed=1)
    x_pt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        pt.eval()
        pt_eval = pt(x_pt, dropout_rate=0.0)
        pt.train()
        pt_train = pt(x_pt, dropout_rate=0.0)
    j_eval = vit_jax.forward(jm, params, x, train=False)
    # A traced (array) rate takes the masking path, as under the workload's jit.
    j_train = vit_jax.forward(
        jm, params, x, train=True, rng=jax.random.key(0), dropout_rate=jnp.float32(0.0)
    )
    return Case(
        pt=Outputs(
            pt_eval.numpy(), pt_loss(pt_eval, labels), pt_train.numpy(), pt_loss(pt_train, labels)
        ),
        jax=Outputs(
            np.asarray(j_eval), jax_loss(j_eval, labels), np.asarray(j_train),
            jax_loss(j_train, labels),
        ),
    )  # fmt: skip


def test_vit_eval_logits_and_loss(vit_case: Case) -> None:
    assert np.abs(vit_case.pt.eval_logits).max() > 0.1  # the random head is not zero
    np.testing.assert_allclose(
        vit_case.jax.eval_logits, vit_case.pt.eval_logits, atol=EVAL_ATOL, rtol=0
    )
    np.testing.assert_allclose(
        vit_case.jax.eval_loss, vit_case.pt.eval_loss, atol=EVAL_ATOL, rtol=0
    )


def test_vit_train_logits_and_loss(vit_case: Case) -> None:
    atol = TRAIN_ATOL["vit"]
    np.testing.assert_allclose(
        vit_case.jax.train_logits, vit_case.pt.train_logits, atol=atol, rtol=0
    )
    np.testing.assert_allclose(vit_case.jax.train_loss, vit_case.pt.train_loss, atol=atol, rtol=0)
