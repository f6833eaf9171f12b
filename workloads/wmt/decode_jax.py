"""wmt translation in JAX: greedy or upstream's beam search over the flax model's decoding cache.

The search rules are `decode_common`'s; here the whole search (encoder, then one cached decoder
step per loop iteration) is one jitted function with ``lax.while_loop``, compiled once per model,
batch shape, beam size, alpha, length and EOS id.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from workloads.wmt import decode_common, model_jax


class JaxOps(decode_common.NumpyOps):
    """`decode_common.ArrayOps` in jax.numpy (usable under jit; `index` may be traced)."""

    def __init__(self) -> None:
        super().__init__(jnp)

    def top_k(self, x, k):
        return lax.top_k(x, k)

    def set_position(self, seqs, index, ids):
        return lax.dynamic_update_slice_in_dim(seqs, ids[:, :, None].astype(seqs.dtype), index, 2)

    def get_position(self, seqs, index):
        return lax.dynamic_index_in_dim(seqs, index, 2, keepdims=False)

    def log_softmax(self, x):
        return jax.nn.log_softmax(x)


_OPS = JaxOps()


@functools.partial(
    jax.jit, static_argnames=("model", "beam_size", "alpha", "max_decode_len", "eos_id")
)
def _search(
    model: model_jax.Transformer,
    params: Any,
    inputs: jax.Array,
    *,
    beam_size: int,
    alpha: float,
    max_decode_len: int,
    eos_id: int,
) -> jax.Array:
    batch = inputs.shape[0]
    encoded = model.apply({"params": params}, inputs, method="encode")
    # Rows repeated per beam, beams of one source adjacent (upstream's flat_batch_beam_expand).
    encoded, flat_inputs = (jnp.repeat(x, beam_size, axis=0) for x in (encoded, inputs))
    decoder = model_jax.decoding_model(model)
    cache = model_jax.init_cache(model, batch * beam_size, max_decode_len)
    state = jax.tree.map(jnp.asarray, decode_common.search_init(batch, beam_size, max_decode_len))
    offsets = (jnp.arange(batch) * beam_size)[:, None]

    def cond(carry):
        index, state, _ = carry
        return decode_common.search_continue(state, index, _OPS, alpha, max_decode_len)

    def body(carry):
        index, state, cache = carry
        tokens = decode_common.current_tokens(state, index, _OPS)[:, None]
        logits, variables = decoder.apply(
            {"params": params, "cache": cache},
            encoded,
            flat_inputs,
            tokens,
            mutable=["cache"],
            method="decode",
        )
        logits = logits.reshape(batch, beam_size, -1)
        state, parents = decode_common.search_step(state, logits, index, _OPS, alpha, eos_id)
        cache = variables["cache"]
        if parents is not None:
            rows = (parents + offsets).reshape(-1)
            cache = jax.tree.map(lambda x: x[rows] if x.ndim else x, cache)
        return index + 1, state, cache

    _, state, _ = lax.while_loop(cond, body, (jnp.int32(0), state, cache))
    return decode_common.search_result(state, _OPS)


def translate(
    model: model_jax.Transformer,
    params: Any,
    inputs: Any,
    *,
    beam_size: int = 4,
    alpha: float = 0.6,
    max_decode_len: int = 256,
    eos_id: int = decode_common.EOS_ID,
) -> np.ndarray:
    """(batch, max_decode_len) int32 translations of the 0-padded (batch, src_len) `inputs`.

    `model` is `model_jax.build_model(config.model)`, `params` its parameters; ``beam_size=1``
    is greedy. Rows are cut after the first EOS (kept), as `decode_common.finalize` says.
    """
    seqs = _search(
        model,
        params,
        jnp.asarray(inputs, jnp.int32),
        beam_size=int(beam_size),
        alpha=float(alpha),
        max_decode_len=int(max_decode_len),
        eos_id=int(eos_id),
    )
    return decode_common.finalize(np.asarray(seqs), eos_id)
