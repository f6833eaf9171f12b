"""Upstream's finewebedu_lm decoder-only Transformer in flax (names and structure as upstream's JAX).

Structure (upstream commit 4c37f2aa, `param_map` for names): token embedding (normal(0.02));
``num_layers`` pre-norm blocks ``x + attn(RMSNorm(x))`` then ``x + mlp(RMSNorm(x))``; a final
RMSNorm; logits = output @ embedding^T (tied) or a separate ``output_proj``. No biases, no
dropout. Attention: q, k, v ``DenseGeneral`` to (heads, head_dim); RoPE (interleaved pairs, theta
5e5) on q and k; QK-norm ``q / (||q|| + eps)``, ``k / (||k|| + eps)``; q times the learned scalar
``attn_scale`` (init log2(L^2 - L)); causal softmax attention with scale 1; output projection.
MLP: Dense to 2F, GLU ``a * sigmoid(b)`` (a the first half), Dense to D. Init: normal(0.02)
kernels, the two residual outputs normal(0.02 / sqrt(2 * num_layers)), RMSNorm scales 1.

Mixed precision as upstream's ``jmp`` policy: parameters are float32; `apply` casts every
parameter to the compute dtype (bfloat16 by default) before the forward pass, so the whole
network runs in it, with RMSNorm statistics and RoPE in float32 (flax's RMSNorm promotes its
statistics; RoPE rotates in float32 and casts back). Logits come back in the compute dtype.

Attention implementation: ``layout.attention`` ``auto`` uses cuDNN on a GPU in bfloat16 (as
upstream, which asks for cuDNN whenever the compute dtype is not float32 and so fails on a CPU)
and XLA's reference implementation otherwise, which runs anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from workloads.finewebedu_lm.param_map import LmLayout, lm_layout, rope_table

_INIT = nn.initializers.normal(stddev=0.02)


def _dtype(layout: LmLayout) -> Any:
    return jnp.dtype(layout.compute_dtype)


def _rmsnorm(layout: LmLayout, name: str | None = None) -> nn.RMSNorm:
    return nn.RMSNorm(
        epsilon=layout.rmsnorm_epsilon, dtype=_dtype(layout), param_dtype=jnp.float32, name=name
    )


def apply_rope(x: jax.Array, table: jax.Array) -> jax.Array:
    """Rotate the (B, L, H, Dh) `x` by RoPE's (L_max, Dh/2, 2) table, in float32."""
    pairs = x.reshape(*x.shape[:-1], -1, 2).astype(jnp.float32)
    t = table[None, : x.shape[1], None]
    cos, sin = t[..., 0], t[..., 1]
    a, b = pairs[..., 0], pairs[..., 1]
    out = jnp.stack([a * cos - b * sin, b * cos + a * sin], axis=-1)
    return out.reshape(x.shape).astype(x.dtype)


def qk_norm(x: jax.Array, eps: float) -> jax.Array:
    """``x / (||x|| + eps)`` over the head dimension."""
    return x / (jnp.linalg.norm(x, axis=-1, keepdims=True) + eps)


def attention_implementation(layout: LmLayout) -> str | None:
    """`jax.nn.dot_product_attention`'s ``implementation`` for this layout and backend."""
    if layout.attention == "cudnn":
        return "cudnn"
    if layout.attention == "xla":
        return None
    on_gpu = jax.default_backend() == "gpu"
    return "cudnn" if on_gpu and layout.compute_dtype != "float32" else None


class CausalAttn(nn.Module):
    """Causal self-attention with RoPE and QK-norm (upstream's JAX definition)."""

    layout: LmLayout

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        lay = self.layout
        dtype = _dtype(lay)

        def proj(name: str) -> jax.Array:
            return nn.DenseGeneral(
                (lay.num_heads, lay.head_dim),
                use_bias=False,
                kernel_init=_INIT,
                dtype=dtype,
                param_dtype=jnp.float32,
                name=name,
            )(x)

        q, k, v = proj("query"), proj("key"), proj("value")
        table = jnp.asarray(rope_table(lay))
        q, k = apply_rope(q, table), apply_rope(k, table)
        q, k = qk_norm(q, lay.qknorm_epsilon), qk_norm(k, lay.qknorm_epsilon)
        scale = self.param(
            "attn_scale", nn.initializers.constant(lay.attn_scale_init), (), jnp.float32
        )
        q = q * scale.astype(q.dtype)
        out = jax.nn.dot_product_attention(
            q, k, v, is_causal=True, scale=1.0, implementation=attention_implementation(lay)
        )
        out = out.reshape(*x.shape[:-1], lay.model_dim)
        return nn.DenseGeneral(
            lay.model_dim,
            use_bias=False,
            kernel_init=nn.initializers.normal(lay.residual_init_std),
            dtype=dtype,
            param_dtype=jnp.float32,
            name="attn_out_proj",
        )(out)


class Mlp(nn.Module):
    """Dense to 2F, GLU (first half times sigmoid of the second), Dense to D."""

    layout: LmLayout

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        lay = self.layout
        dtype = _dtype(lay)
        h = nn.Dense(
            2 * lay.hidden_dim,
            use_bias=False,
            kernel_init=_INIT,
            dtype=dtype,
            param_dtype=jnp.float32,
        )(x)
        h = nn.glu(h, axis=-1)
        return nn.Dense(
            lay.model_dim,
            use_bias=False,
            kernel_init=nn.initializers.normal(lay.residual_init_std),
            dtype=dtype,
            param_dtype=jnp.float32,
        )(h)


class TBlock(nn.Module):
    """Pre-norm block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``."""

    layout: LmLayout

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x + CausalAttn(self.layout)(_rmsnorm(self.layout)(x))
        return x + Mlp(self.layout)(_rmsnorm(self.layout)(x))


class TransformerDo(nn.Module):
    """The decoder: (B, L) token ids -> (B, L, vocab) logits in the compute dtype."""

    layout: LmLayout

    def setup(self) -> None:
        lay = self.layout
        self.embed = nn.Embed(
            lay.vocab_size,
            lay.model_dim,
            embedding_init=_INIT,
            dtype=_dtype(lay),
            param_dtype=jnp.float32,
        )
        self.blocks = [TBlock(lay) for _ in range(lay.num_layers)]
        self.out_ln = _rmsnorm(lay)
        if not lay.tie_embeddings:
            self.output_proj = nn.Dense(
                lay.vocab_size,
                use_bias=False,
                kernel_init=_INIT,
                dtype=_dtype(lay),
                param_dtype=jnp.float32,
            )

    def __call__(self, ids: jax.Array) -> jax.Array:
        x = self.embed(ids)
        for block in self.blocks:
            x = block(x)
        x = self.out_ln(x)
        return self.embed.attend(x) if self.layout.tie_embeddings else self.output_proj(x)


def build_model(options: Mapping[str, Any]) -> TransformerDo:
    """The decoder for a ``config.model`` dict."""
    return TransformerDo(lm_layout(options))


def init(model: TransformerDo, rng: jax.Array) -> Any:
    """float32 ``params`` (jit-compiled init on a (1, seq_len) dummy batch)."""
    ids = jnp.zeros((1, model.layout.seq_len), jnp.int32)
    return jax.jit(model.init)({"params": rng}, ids)["params"]


def param_shapes(options: Mapping[str, Any]) -> Any:
    """Shape-only ``params`` (`jax.eval_shape`: no memory, no compute)."""
    model = build_model(options)
    ids = jax.ShapeDtypeStruct((1, model.layout.seq_len), jnp.int32)
    return jax.eval_shape(model.init, jax.random.PRNGKey(0), ids)["params"]


def cast_to_compute(params: Any, layout: LmLayout) -> Any:
    """Every floating parameter in the compute dtype (upstream's ``cast_to_compute``)."""
    dtype = _dtype(layout)
    return jax.tree.map(
        lambda p: p.astype(dtype) if jnp.issubdtype(p.dtype, jnp.floating) else p, params
    )


def apply(model: TransformerDo, params: Any, ids: jax.Array) -> jax.Array:
    """(B, L) ids -> (B, L, vocab) logits, parameters cast to the compute dtype first."""
    return model.apply({"params": cast_to_compute(params, model.layout)}, ids)
