"""SGD with Nesterov momentum, linear warmup + cosine decay, in JAX (optax).

Per parameter, with gradient g (after optional clipping), momentum mu = 1 - one_minus_beta1 and
learning rate lr_t: d = g + weight_decay * p (L2 decay, added before momentum as in upstream's
Nesterov baseline and in `torch.optim.SGD`); b = mu * b + d; p = p - lr_t * (d + mu * b).

Schedule: the same warmup + cosine as the NAdamW/AdamW baselines. Upstream's archived Nesterov
baseline decays linearly to `end_factor * lr` over `decay_steps_factor` of the post-warmup steps
instead; one schedule for all baselines keeps their comparison about the update rule.
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
    """(opt_state, opt_update_fn) for Nesterov SGD under warmup + cosine (untimed)."""
    del model_params, model_state, rng
    momentum = common.beta1(hyperparameters)
    wd = common.weight_decay(hyperparameters)
    return jax_common.init_optimizer_state_with(
        workload,
        hyperparameters,
        lambda learning_rate: optax.chain(
            optax.add_decayed_weights(wd),
            optax.sgd(learning_rate, momentum=momentum, nesterov=True),
        ),
    )
