"""SGD with Nesterov momentum, linear warmup + cosine decay, in PyTorch (`torch.optim.SGD`).

Same update and schedule as the JAX baseline next door (see its docstring).
"""

from __future__ import annotations

import torch

from algoperf import spec
from submissions.baselines import common, pytorch_common
from submissions.baselines.common import data_selection, get_batch_size, prepare_for_eval
from submissions.baselines.pytorch_common import update_params

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
    """{'optimizer': SGD(nesterov=True), 'scheduler': warmup + cosine} (untimed)."""
    del model_state, rng
    optimizer = torch.optim.SGD(
        model_params.parameters(),
        lr=common.learning_rate(hyperparameters),
        momentum=common.beta1(hyperparameters),
        weight_decay=common.weight_decay(hyperparameters),
        nesterov=True,
    )
    return pytorch_common.init_optimizer_state_with(workload, hyperparameters, optimizer)
