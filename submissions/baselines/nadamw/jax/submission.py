"""NAdamW with linear warmup + cosine decay, in JAX (optax): upstream's v0.6 baseline algorithm.

The NAdam variant is the one of Dozat (2016) as written in Table 1 of Choi et al. (2019,
arXiv:1910.05446): no momentum-decay schedule, standard Adam bias corrections. Per parameter,
with gradient g (after optional clipping), step count t = 1, 2, ... and learning rate lr_t:

    m   = b1 * m + (1 - b1) * g
    v   = b2 * v + (1 - b2) * g**2
    upd = ((b1 * m + (1 - b1) * g) / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps)
    p   = p - lr_t * (upd + weight_decay * p)

This differs from `optax.nadamw`, whose Nesterov bias correction uses 1 - b1**(t+1) for the
momentum term. The PyTorch baseline next door implements the same formulas.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from algoperf import spec
from submissions.baselines import common, jax_common
from submissions.baselines.common import data_selection, get_batch_size, prepare_for_eval
from submissions.baselines.jax_common import update_params

__all__ = [
    "data_selection",
    "get_batch_size",
    "init_optimizer_state",
    "nadamw",
    "prepare_for_eval",
    "scale_by_nadam",
    "update_params",
]


def scale_by_nadam(b1: float, b2: float, eps: float) -> optax.GradientTransformation:
    """The NAdam direction of the module docstring (state reuses optax's Adam state type)."""

    def init_fn(params: optax.Params) -> optax.ScaleByAdamState:
        return optax.ScaleByAdamState(
            count=jnp.zeros([], jnp.int32),
            mu=jax.tree.map(jnp.zeros_like, params),
            nu=jax.tree.map(jnp.zeros_like, params),
        )

    def update_fn(
        updates: optax.Updates, state: optax.ScaleByAdamState, params: Any = None
    ) -> tuple[optax.Updates, optax.ScaleByAdamState]:
        del params
        count = optax.safe_increment(state.count)
        mu = jax.tree.map(lambda g, m: b1 * m + (1 - b1) * g, updates, state.mu)
        nu = jax.tree.map(lambda g, v: b2 * v + (1 - b2) * g * g, updates, state.nu)
        correction1 = 1 - b1**count
        correction2 = 1 - b2**count

        def direction(g: jax.Array, m: jax.Array, v: jax.Array) -> jax.Array:
            nesterov_m = (b1 * m + (1 - b1) * g) / correction1.astype(g.dtype)
            return nesterov_m / (jnp.sqrt(v / correction2.astype(v.dtype)) + eps)

        new_updates = jax.tree.map(direction, updates, mu, nu)
        return new_updates, optax.ScaleByAdamState(count=count, mu=mu, nu=nu)

    return optax.GradientTransformation(init_fn, update_fn)


def nadamw(
    learning_rate: optax.ScalarOrSchedule,
    b1: float,
    b2: float,
    eps: float,
    weight_decay: float,
) -> optax.GradientTransformation:
    """NAdam direction + decoupled weight decay (multiplied by the learning rate, as AdamW)."""
    return optax.chain(
        scale_by_nadam(b1, b2, eps),
        optax.add_decayed_weights(weight_decay),
        optax.scale_by_learning_rate(learning_rate),
    )


def init_optimizer_state(
    workload: spec.Workload,
    model_params: spec.ParameterContainer,
    model_state: spec.ModelAuxiliaryState,
    hyperparameters: spec.Hyperparameters,
    rng: spec.RandomState,
) -> spec.OptimizerState:
    """(opt_state, opt_update_fn) for NAdamW under warmup + cosine (untimed)."""
    del model_params, model_state, rng
    b1 = common.beta1(hyperparameters)
    b2 = common.beta2(hyperparameters)
    wd = common.weight_decay(hyperparameters)
    return jax_common.init_optimizer_state_with(
        workload,
        hyperparameters,
        lambda learning_rate: nadamw(learning_rate, b1, b2, common.ADAM_EPS, wd),
    )
