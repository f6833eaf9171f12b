"""AdamW with linear warmup + cosine decay, in JAX (`optax.adamw`).

Per parameter, with gradient g (after optional clipping), step t = 1, 2, ... and learning rate
lr_t: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
p = p - lr_t * ((m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) + weight_decay * p).
This is what `torch.optim.AdamW` computes, which the PyTorch baseline next door uses.
"""

from __future__ import annotations

import optax

from algoperf import spec
from submissions.baselines import common, jax_common
from submissions.baselines.common import data_selection, get_batch_size, prepare_for_eval
from submissions.baselines.jax_common import update_params

__all__ = [
    "data_selection",
    "get_batch_size",
    "init_optimizer_state",
    "prepare_for_eval",
    "update_params",
]


def init_optimizer_state(
    workload: spec.Workload,
    model_params: spec.ParameterContainer,
    model_state: spec.ModelAuxiliaryState,
    hyperparameters: spec.Hyperparameters,
    rng: spec.RandomState,
) -> spec.OptimizerState:
    """(opt_state, opt_update_fn) for AdamW under warmup + cosine (untimed)."""
    del model_params, model_state, rng
    b1 = common.beta1(hyperparameters)
    b2 = common.beta2(hyperparameters)
    wd = common.weight_decay(hyperparameters)
    return jax_common.init_optimizer_state_with(
        workload,
        hyperparameters,
        lambda learning_rate: optax.adamw(
            learning_rate, b1=b1, b2=b2, eps=common.ADAM_EPS, weight_decay=wd
        ),
    )
