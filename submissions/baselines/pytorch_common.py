"""PyTorch half of the baselines: optimizer-state construction and the shared training step.

Every PyTorch baseline is `common` + a `torch.optim.Optimizer`: its `init_optimizer_state`
calls `init_optimizer_state_with(workload, hyperparameters, optimizer)` and it re-exports
`update_params` from here.

Conventions (upstream's): the parameter container is the (possibly DDP-wrapped or compiled)
`nn.Module`; `model_state` is None; each rank sees its slice of the global batch, so under DDP
the summed loss and the example count are all-reduced with the autograd-aware
`torch.distributed.nn.all_reduce` before dividing, which makes the loss (and, with DDP's
gradient averaging, the gradient) the global mean.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed.nn as dist_nn
from torch.optim.lr_scheduler import LambdaLR

from algoperf import spec
from algoperf.pytorch_utils import pytorch_setup
from submissions.baselines import common

# Read once from the environment (torchrun sets LOCAL_RANK before the process starts).
USE_PYTORCH_DDP = pytorch_setup()[0]


def init_optimizer_state_with(
    workload: spec.Workload,
    hyperparameters: spec.Hyperparameters,
    optimizer: torch.optim.Optimizer,
) -> spec.OptimizerState:
    """`{'optimizer': optimizer, 'scheduler': LambdaLR(warmup+cosine)}`.

    `optimizer` must be built with the peak learning rate; the scheduler scales it by
    `common.WarmupCosine`, so update ``t`` uses ``peak * factor(t)`` exactly as in the JAX
    baselines (upstream's PyTorch baseline uses `SequentialLR(LinearLR, CosineAnnealingLR)`, whose
    recursive cosine and 1e-10 start factor differ from its JAX schedule in the last digits).
    Both values implement `state_dict()` / `load_state_dict()` for checkpointing.
    """
    schedule = common.WarmupCosine.from_hparams(workload.step_hint, hyperparameters)
    return {"optimizer": optimizer, "scheduler": LambdaLR(optimizer, lr_lambda=schedule)}


def global_grad_norm(model: torch.nn.Module) -> torch.Tensor:
    """L2 norm over all parameter gradients (a device tensor: reading it synchronises)."""
    grads = [p.grad.detach() for p in model.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def update_params(
    workload: spec.Workload,
    current_param_container: spec.ParameterContainer,
    current_params_types: spec.ParameterTypeTree,
    model_state: spec.ModelAuxiliaryState,
    hyperparameters: spec.Hyperparameters,
    batch: dict[str, spec.Tensor],
    loss_type: spec.LossType,
    optimizer_state: spec.OptimizerState,
    eval_results: list[tuple[int, dict[str, float]]],
    global_step: int,
    rng: spec.RandomState,
    train_state: dict[str, Any] | None = None,
) -> spec.UpdateReturn:
    """One timed training step in place; returns (optimizer_state, model, model_state).

    Only on logging steps (`common.should_log`) are the loss and gradient norm read back to
    the host; other steps queue their kernels and return without synchronising.
    """
    del current_params_types, loss_type, eval_results, train_state
    model = current_param_container
    model.train()
    optimizer = optimizer_state["optimizer"]
    optimizer.zero_grad(set_to_none=True)
    options = common.step_options(hyperparameters)
    model_kwargs = {} if options.dropout_rate is None else {"dropout_rate": options.dropout_rate}

    logits, new_model_state = workload.model_fn(
        params=model,
        augmented_and_preprocessed_input_batch=batch,
        model_state=model_state,
        mode=spec.ForwardPassMode.TRAIN,
        rng=rng,
        update_batch_norm=True,
        **model_kwargs,
    )
    loss_dict = workload.loss_fn(
        label_batch=batch["targets"],
        logits_batch=logits,
        mask_batch=batch.get("weights"),
        label_smoothing=options.label_smoothing,
    )
    summed = loss_dict["summed"]
    n_valid = loss_dict["n_valid_examples"]
    if USE_PYTORCH_DDP:
        summed = dist_nn.all_reduce(summed)
        n_valid = dist_nn.all_reduce(torch.as_tensor(n_valid, device=summed.device))
    loss = summed / n_valid
    loss.backward()

    grad_norm = None
    if options.grad_clip is not None:
        # Returns the pre-clipping norm, which is what gets logged (as in the JAX baselines).
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=options.grad_clip)
    optimizer.step()
    optimizer_state["scheduler"].step()

    if common.should_log(workload, global_step):
        if grad_norm is None:
            grad_norm = global_grad_norm(model)
        workload.metrics_logger.append_scalar_metrics(
            {"loss": loss.item(), "grad_norm": grad_norm.item()}, global_step
        )
    return optimizer_state, current_param_container, new_model_state
