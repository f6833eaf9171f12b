"""ResNet v1 in flax linen (upstream's JAX ResNet-50 and CIFAR ResNet-18) and its workload plumbing.

Shared by the ImageNet and CIFAR families: each builds a `ResNet` from its own
`workloads.common.resnet_layout.ResNetLayout` and its workload class mixes its data into
`ResNetModel`.

Same layers, parameter names, shapes and initialisation as upstream's JAX model: flax default
init for convs (truncated LeCun normal, no bias), batch norm momentum 0.9 / epsilon 1e-5 with
scale 1 and bias 0 except the last batch norm of every residual branch (scale
``bn_init_scale``), and a head Dense with kernel N(0, 0.01) and zero bias. Inputs are NHWC.

Batch norm: running statistics live in the ``batch_stats`` collection (the workload's
``model_state``). ``update_batch_norm=True`` normalises with batch statistics and returns
updated running statistics; ``False`` normalises with the running statistics and leaves them
alone. ``use_running_average_bn`` overrides which statistics normalise (upstream's option),
e.g. ``update_batch_norm=True, use_running_average_bn=True`` is an eval-like forward.

Convolution padding: upstream's flax 3x3 convs use "SAME" padding, which for stride 2 on an
even-sized input pads one pixel on the bottom/right only, while upstream's PyTorch model pads
one pixel on every side. The two upstream models therefore differ in the stride-2 3x3 convs.
``padding_style="flax"`` (default) keeps upstream's JAX behaviour; ``"torch"`` pads
symmetrically like PyTorch (used by the parity test to compare against the PyTorch default).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from algoperf import spec
from algoperf.frameworks import jax as fjax
from algoperf.frameworks.jax_workload import JaxClassificationWorkload
from workloads.common.resnet_layout import ResNetLayout

# nn.gelu defaults to the tanh approximation, as upstream's GELU variant uses.
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "silu": nn.silu,
    "gelu": nn.gelu,
}
PADDING_STYLES = ("flax", "torch")


class ResNetBlock(nn.Module):
    """Basic block: 3x3 -> BN -> act -> 3x3 -> BN(scale bn_init_scale), plus shortcut, act."""

    filters: int
    conv: Any
    norm: Any
    act: Callable[[jax.Array], jax.Array]
    strides: tuple[int, int] = (1, 1)
    bn_init_scale: float = 0.0
    pad3x3: Any = "SAME"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        y = self.conv(self.filters, (3, 3), self.strides, padding=self.pad3x3, name="Conv_0")(x)
        y = self.act(self.norm(name="BatchNorm_0")(y))
        y = self.conv(self.filters, (3, 3), padding=self.pad3x3, name="Conv_1")(y)
        y = self.norm(scale_init=nn.initializers.constant(self.bn_init_scale), name="BatchNorm_1")(
            y
        )
        return self.act(_shortcut(self, x, y) + y)


class BottleneckResNetBlock(nn.Module):
    """Bottleneck: 1x1 -> BN -> act -> 3x3 (stride) -> BN -> act -> 1x1 (x4) -> BN, shortcut, act."""

    filters: int
    conv: Any
    norm: Any
    act: Callable[[jax.Array], jax.Array]
    strides: tuple[int, int] = (1, 1)
    bn_init_scale: float = 0.0
    pad3x3: Any = "SAME"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        y = self.conv(self.filters, (1, 1), name="Conv_0")(x)
        y = self.act(self.norm(name="BatchNorm_0")(y))
        y = self.conv(self.filters, (3, 3), self.strides, padding=self.pad3x3, name="Conv_1")(y)
        y = self.act(self.norm(name="BatchNorm_1")(y))
        y = self.conv(self.filters * 4, (1, 1), name="Conv_2")(y)
        y = self.norm(scale_init=nn.initializers.constant(self.bn_init_scale), name="BatchNorm_2")(
            y
        )
        return self.act(_shortcut(self, x, y) + y)


def _shortcut(block: nn.Module, x: jax.Array, y: jax.Array) -> jax.Array:
    """Identity, or a strided 1x1 conv + BN where the shape or the stride changes (as upstream)."""
    if x.shape == y.shape and tuple(block.strides) == (1, 1):
        return x
    x = block.conv(y.shape[-1], (1, 1), block.strides, name="Conv_proj")(x)
    return block.norm(name="BatchNorm_proj")(x)


class ResNet(nn.Module):
    """A ResNet v1 described by a `ResNetLayout` (inputs NHWC float, outputs logits)."""

    layout: ResNetLayout
    padding_style: str = "flax"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        update_batch_norm: bool = True,
        use_running_average_bn: bool | None = None,
    ) -> jax.Array:
        lay = self.layout
        if self.padding_style not in PADDING_STYLES:
            raise ValueError(f"padding_style must be one of {PADDING_STYLES}")
        if use_running_average_bn is None:
            use_running_average_bn = not update_batch_norm
        act = ACTIVATIONS[lay.activation]
        conv = functools.partial(nn.Conv, use_bias=False, dtype=self.dtype)
        norm = functools.partial(
            nn.BatchNorm,
            use_running_average=use_running_average_bn,
            momentum=0.9,
            epsilon=1e-5,
            dtype=self.dtype,
        )
        pad3x3 = "SAME" if self.padding_style == "flax" else ((1, 1), (1, 1))

        if lay.stem == "imagenet":
            x = conv(lay.num_filters, (7, 7), (2, 2), padding=((3, 3), (3, 3)), name="Conv_init")(x)
        else:
            x = conv(lay.num_filters, (3, 3), (1, 1), padding=((1, 1), (1, 1)), name="Conv_init")(x)
        x = act(norm(name="BatchNorm_init")(x))
        if lay.stem == "imagenet":
            x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))

        block_cls = BottleneckResNetBlock if lay.bottleneck else ResNetBlock
        for k, s, b in lay.blocks():
            stride = lay.stride(s, b)
            x = block_cls(
                lay.width(s),
                conv=conv,
                norm=norm,
                act=act,
                strides=(stride, stride),
                bn_init_scale=lay.bn_init_scale,
                pad3x3=pad3x3,
                name=f"{lay.block_name}_{k}",
            )(x)

        if lay.stem == "cifar":
            x = nn.avg_pool(x, (4, 4), strides=(4, 4))
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(
            lay.num_classes,
            kernel_init=nn.initializers.normal(stddev=1e-2),
            dtype=self.dtype,
            name="Dense_0",
        )(x)


def init(
    model: nn.Module, rng: jax.Array, input_shape: tuple[int, ...] = (1, 224, 224, 3)
) -> tuple[Any, Any]:
    """``(params, model_state)`` with ``model_state = {"batch_stats": ...}`` (mean 0, var 1).

    Works under `jax.eval_shape` (shapes only, nothing allocated).
    """
    variables = dict(jax.jit(model.init)({"params": rng}, jnp.ones(input_shape, jnp.float32)))
    params = variables.pop("params")
    return params, variables


def forward(
    model: nn.Module,
    params: Any,
    model_state: Any,
    inputs: jax.Array,
    *,
    update_batch_norm: bool,
    use_running_average_bn: bool | None = None,
) -> tuple[jax.Array, Any]:
    """Logits and the model state after this forward (updated only if `update_batch_norm`).

    ``update_batch_norm=False, use_running_average_bn=False`` normalises with batch statistics
    and returns `model_state` unchanged (PyTorch's train mode with frozen statistics); upstream's
    JAX model_fn raises on this combination instead.
    """
    variables = {"params": params, **model_state}
    if update_batch_norm or use_running_average_bn is False:
        logits, new_state = model.apply(
            variables,
            inputs,
            update_batch_norm=True,
            use_running_average_bn=use_running_average_bn,
            mutable=["batch_stats"],
        )
        return logits, (dict(new_state) if update_batch_norm else model_state)
    logits = model.apply(
        variables, inputs, update_batch_norm=False, use_running_average_bn=use_running_average_bn
    )
    return logits, model_state


class ResNetModel(JaxClassificationWorkload):
    """A flax ResNet workload: ``model_state = {"batch_stats": ...}``, updated only if asked.

    ``model_fn`` follows upstream's JAX ResNet: the mode is ignored; batch statistics normalise
    and the running statistics are updated when ``update_batch_norm``, running statistics
    normalise otherwise (so EVAL, called with ``update_batch_norm=False``, uses the running
    averages); ``use_running_average_bn`` overrides which statistics normalise. Families
    implement `_build_model` (their ``config.model`` -> `ResNet`) and set `input_shape`.
    """

    _output_param_keys = ("Dense_0",)
    # Shape of the dummy batch `init` traces (upstream's; parameters do not depend on it).
    input_shape: tuple[int, ...] = (1, 224, 224, 3)

    def _build_model(self) -> ResNet:
        raise NotImplementedError(f"{type(self).__name__} must build its ResNet")

    def init_model_fn(self, rng: spec.RandomState) -> spec.ModelInitState:
        self._model = self._build_model()
        params, model_state = init(self._model, rng, self.input_shape)
        self._finish_init(params)
        return fjax.replicate(params), fjax.replicate(model_state)

    def model_fn(
        self,
        params: spec.ParameterContainer,
        augmented_and_preprocessed_input_batch: dict[str, spec.Tensor],
        model_state: spec.ModelAuxiliaryState,
        mode: spec.ForwardPassMode,
        rng: spec.RandomState,
        update_batch_norm: bool,
        dropout_rate: float | None = None,
        use_running_average_bn: bool | None = None,
    ) -> tuple[spec.Tensor, spec.ModelAuxiliaryState]:
        del mode, rng, dropout_rate  # no dropout in a ResNet
        return forward(
            self._model,
            params,
            model_state,
            augmented_and_preprocessed_input_batch["inputs"],
            update_batch_norm=update_batch_norm,
            use_running_average_bn=use_running_average_bn,
        )
