"""ViT in flax linen: upstream's JAX ViT-S/16 for imagenet_vit and its variants.

Same layers, parameter names, shapes and initialisation as upstream's JAX model: patch
embedding Conv (flax default init), fixed sin-cos position embedding, no class token, encoder
blocks (pre-LN by default; post-LN with ``use_post_layer_norm``) with flax
``MultiHeadDotProductAttention`` (Xavier-uniform kernels, zero biases) and an MLP (Xavier-uniform
kernels, N(0, 1e-6) biases, tanh-GELU, optional GLU), final LayerNorm (pre-LN only), mean
pooling or a MAP head (``use_map``), tanh ``pre_logits`` Dense and a zero-initialised ``head``.
LayerNorm epsilon is flax's default 1e-6. Inputs are NHWC.

Dropout (``dropout_rate`` is a call argument, a traced value under jit, so changing it does not
recompile; default 0): after the position embedding, on the MLP hidden layer and on both
residual branches, as upstream. As upstream's JAX model, attention probabilities and the MAP
head's MLP get no dropout (upstream's PyTorch model does drop both; see `vit_pytorch`).

Upstream's JAX post-LN branch calls the dropout layer's *output* as a function
(``Dropout(...)(y, train)(rate=...)``), which raises; this module implements the intended
``Dropout(y, rate)`` there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from workloads.common.flax_dropout import Dropout
from workloads.imagenet.param_map import ViTLayout, posemb_sincos_2d, vit_layout


class MlpBlock(nn.Module):
    """Dense(mlp_dim) -> GELU [-> * Dense(mlp_dim) (GLU)] -> dropout -> Dense(d)."""

    mlp_dim: int
    use_glu: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool, dropout_rate: Any) -> jax.Array:
        inits = {
            "kernel_init": nn.initializers.xavier_uniform(),
            "bias_init": nn.initializers.normal(stddev=1e-6),
        }
        d = x.shape[-1]
        x = nn.gelu(nn.Dense(self.mlp_dim, name="Dense_0", **inits)(x))
        if self.use_glu:
            x = x * nn.Dense(self.mlp_dim, name="Dense_1", **inits)(x)
        x = Dropout()(x, train, dropout_rate)
        return nn.Dense(d, name="Dense_2" if self.use_glu else "Dense_1", **inits)(x)


def _self_attention(num_heads: int, name: str) -> nn.MultiHeadDotProductAttention:
    return nn.MultiHeadDotProductAttention(
        num_heads=num_heads, kernel_init=nn.initializers.xavier_uniform(), name=name
    )


class Encoder1DBlock(nn.Module):
    """Self-attention + MLP, each a residual branch with dropout (pre-LN or post-LN)."""

    mlp_dim: int
    num_heads: int
    use_glu: bool = False
    use_post_layer_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool, dropout_rate: Any) -> jax.Array:
        attention = _self_attention(self.num_heads, "MultiHeadDotProductAttention_1")
        mlp = MlpBlock(mlp_dim=self.mlp_dim, use_glu=self.use_glu, name="MlpBlock_3")
        ln0, ln2 = nn.LayerNorm(name="LayerNorm_0"), nn.LayerNorm(name="LayerNorm_2")
        if not self.use_post_layer_norm:
            x = x + Dropout()(attention(ln0(x)), train, dropout_rate)
            return x + Dropout()(mlp(ln2(x), train, dropout_rate), train, dropout_rate)
        x = ln0(x + Dropout()(attention(x), train, dropout_rate))
        return ln2(x + Dropout()(mlp(x, train, dropout_rate), train, dropout_rate))


class Encoder(nn.Module):
    """``depth`` encoder blocks, then a LayerNorm unless post-LN."""

    depth: int
    mlp_dim: int
    num_heads: int
    use_glu: bool = False
    use_post_layer_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool, dropout_rate: Any) -> jax.Array:
        for i in range(self.depth):
            x = Encoder1DBlock(
                mlp_dim=self.mlp_dim,
                num_heads=self.num_heads,
                use_glu=self.use_glu,
                use_post_layer_norm=self.use_post_layer_norm,
                name=f"encoderblock_{i}",
            )(x, train, dropout_rate)
        if self.use_post_layer_norm:
            return x
        return nn.LayerNorm(name="encoder_layernorm")(x)


class MAPHead(nn.Module):
    """Multihead attention pooling: a learned probe attends over the tokens, then + MLP(LN(x))."""

    mlp_dim: int
    num_heads: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        n, _, d = x.shape
        probe = self.param("probe", nn.initializers.xavier_uniform(), (1, 1, d), x.dtype)
        probe = jnp.tile(probe, [n, 1, 1])
        x = nn.MultiHeadDotProductAttention(
            num_heads=self.num_heads,
            kernel_init=nn.initializers.xavier_uniform(),
            name="MultiHeadDotProductAttention_0",
        )(probe, x)
        y = nn.LayerNorm(name="LayerNorm_0")(x)
        # Upstream's JAX MAP head runs its MLP without dropout.
        x = x + MlpBlock(mlp_dim=self.mlp_dim, name="MlpBlock_0")(y, False, 0.0)
        return x[:, 0]


class ViT(nn.Module):
    """A ViT described by a `ViTLayout` (inputs NHWC float, outputs logits)."""

    layout: ViTLayout
    head_zeroinit: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False, dropout_rate: Any = 0.0) -> jax.Array:
        lay = self.layout
        p = lay.patch_size
        x = nn.Conv(lay.width, (p, p), strides=(p, p), padding="VALID", name="conv_patch_extract")(
            x
        )
        n, h, w, c = x.shape
        x = jnp.reshape(x, (n, h * w, c))
        x = x + jnp.asarray(posemb_sincos_2d(h, w, c), x.dtype)
        x = Dropout()(x, train, dropout_rate)
        x = Encoder(
            depth=lay.depth,
            mlp_dim=lay.mlp_dim,
            num_heads=lay.num_heads,
            use_glu=lay.use_glu,
            use_post_layer_norm=lay.use_post_layer_norm,
            name="Transformer",
        )(x, train, dropout_rate)
        if lay.use_map:
            x = MAPHead(mlp_dim=lay.mlp_dim, num_heads=lay.num_heads, name="MAPHead_0")(x)
        else:
            x = jnp.mean(x, axis=1)
        x = nn.tanh(nn.Dense(lay.width, name="pre_logits")(x))
        head_init = {"kernel_init": nn.initializers.zeros} if self.head_zeroinit else {}
        return nn.Dense(lay.num_classes, name="head", **head_init)(x)


def build_model(options: Mapping[str, Any], *, head_zeroinit: bool = True) -> ViT:
    """The ViT of ``config.model`` (``arch``, ``use_glu``, ``use_post_layer_norm``, ``use_map``)."""
    return ViT(layout=vit_layout(options), head_zeroinit=head_zeroinit)


def init(
    model: nn.Module, rng: jax.Array, input_shape: tuple[int, ...] = (1, 224, 224, 3)
) -> tuple[Any, Any]:
    """``(params, model_state)``; the ViT has no model state (``{}``).

    Works under `jax.eval_shape` (shapes only, nothing allocated).
    """
    variables = dict(jax.jit(model.init)({"params": rng}, jnp.ones(input_shape, jnp.float32)))
    params = variables.pop("params")
    return params, variables


def forward(
    model: nn.Module,
    params: Any,
    inputs: jax.Array,
    *,
    train: bool,
    rng: jax.Array | None = None,
    dropout_rate: Any = 0.0,
) -> jax.Array:
    """Logits; in train mode dropout draws from `rng` (required then unless the rate is a
    concrete 0)."""
    rngs = {"dropout": rng} if rng is not None else {}
    return model.apply(
        {"params": params}, inputs, train=train, dropout_rate=dropout_rate, rngs=rngs
    )
