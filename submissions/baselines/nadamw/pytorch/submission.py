"""NAdamW with linear warmup + cosine decay, in PyTorch: upstream's v0.6 baseline algorithm.

Same update as the JAX baseline next door (see its docstring for the formulas). `torch.optim.NAdam`
is a different algorithm (it has a momentum-decay schedule), hence the optimizer below.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import torch

from algoperf import spec
from submissions.baselines import common, pytorch_common
from submissions.baselines.common import data_selection, get_batch_size, prepare_for_eval
from submissions.baselines.pytorch_common import update_params

__all__ = [
    "NAdamW",
    "data_selection",
    "get_batch_size",
    "init_optimizer_state",
    "prepare_for_eval",
    "update_params",
]


class NAdamW(torch.optim.Optimizer):
    """NAdam (Choi et al. 2019, Table 1) with decoupled weight decay scaled by the learning rate.

    Per parameter: ``p *= 1 - lr * weight_decay``; ``m = b1 m + (1 - b1) g``;
    ``v = b2 v + (1 - b2) g^2``; ``p -= lr / (1 - b1^t) * (b1 m + (1 - b1) g) /
    (sqrt(v) / sqrt(1 - b2^t) + eps)``. Tensors are updated with `torch._foreach_*` kernels, one
    launch per operation for all parameters that share a step count.

    Args:
      params: parameters or parameter groups.
      lr: learning rate (a scheduler may change it per group).
      betas: (b1, b2), each in [0, 1).
      eps: added to the denominator.
      weight_decay: decoupled weight-decay coefficient, >= 0.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        if not lr >= 0.0:
            raise ValueError(f"NAdamW: invalid learning rate {lr}; it must be >= 0")
        if not eps >= 0.0:
            raise ValueError(f"NAdamW: invalid eps {eps}; it must be >= 0")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"NAdamW: invalid betas[{i}]={beta}; it must be in [0, 1)")
        if not weight_decay >= 0.0:
            raise ValueError(f"NAdamW: invalid weight_decay {weight_decay}; it must be >= 0")
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One update of every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            # Parameters are grouped by step count (equal unless some lacked a gradient on
            # earlier steps) so that bias corrections are scalars per foreach call. The step
            # count is a CPU tensor, as in torch's Adam: reading it does not touch the device.
            by_step: dict[int, list[list[torch.Tensor]]] = defaultdict(lambda: [[], [], [], []])
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("NAdamW does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                lists = by_step[int(state["step"].item())]
                for i, t in enumerate((p, p.grad, state["exp_avg"], state["exp_avg_sq"])):
                    lists[i].append(t)
            for step, (params, grads, exp_avgs, exp_avg_sqs) in by_step.items():
                _nadamw_foreach(params, grads, exp_avgs, exp_avg_sqs, step, group)
        return loss


def _nadamw_foreach(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    exp_avgs: list[torch.Tensor],
    exp_avg_sqs: list[torch.Tensor],
    step: int,
    group: dict[str, Any],
) -> None:
    """The NAdamW update for tensors that share one step count."""
    beta1, beta2 = group["betas"]
    lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
    if weight_decay != 0.0:
        torch._foreach_mul_(params, 1.0 - lr * weight_decay)
    torch._foreach_mul_(exp_avgs, beta1)
    torch._foreach_add_(exp_avgs, grads, alpha=1.0 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1.0 - beta2)
    # The Nesterov look-ahead: one more momentum step with the current gradient.
    numerators = torch._foreach_mul(exp_avgs, beta1)
    torch._foreach_add_(numerators, grads, alpha=1.0 - beta1)
    denominators = torch._foreach_sqrt(exp_avg_sqs)
    torch._foreach_div_(denominators, math.sqrt(1.0 - beta2**step))
    torch._foreach_add_(denominators, eps)
    torch._foreach_addcdiv_(params, numerators, denominators, value=-lr / (1.0 - beta1**step))


def init_optimizer_state(
    workload: spec.Workload,
    model_params: spec.ParameterContainer,
    model_state: spec.ModelAuxiliaryState,
    hyperparameters: spec.Hyperparameters,
    rng: spec.RandomState,
) -> spec.OptimizerState:
    """{'optimizer': NAdamW, 'scheduler': warmup + cosine} (untimed)."""
    del model_state, rng
    optimizer = NAdamW(
        model_params.parameters(),
        lr=common.learning_rate(hyperparameters),
        betas=(common.beta1(hyperparameters), common.beta2(hyperparameters)),
        eps=common.ADAM_EPS,
        weight_decay=common.weight_decay(hyperparameters),
    )
    return pytorch_common.init_optimizer_state_with(workload, hyperparameters, optimizer)
