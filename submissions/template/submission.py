"""A copy-me AlgoPerf submission: SGD with weight decay and a constant learning rate (PyTorch).

Copy this directory, keep the five functions and their signatures, and replace the optimizer.
`submission_jax.py` next to it is the same submission in JAX; the comments there cover only what
differs between the frameworks. `README.md` explains how to run it.

A submission is a Python module the runner imports from its path (the directory and its parents
need an `__init__.py`, because the path is turned into a dotted module name). The runner calls:

    get_batch_size(workload_name)                              once, untimed
    init_optimizer_state(workload, params, model_state, ...)  once, untimed (before the clock)
    loop:
        data_selection(...)                                    every step, TIMED
        update_params(...)                                     every step, TIMED
        when an evaluation is due (every workload.eval_period_time_sec of wall time):
            prepare_for_eval(...)                              TIMED (optional function)
            budget check, then the evaluation itself           untimed

The score of a run is the timed ("submission") time until the validation target is reached.
The clock runs from the end of the previous step's bookkeeping to the end of `update_params`,
so anything the step leaves queued on the device is paid for when the next step's timing
synchronises; evaluation, logging and checkpointing are off the clock.

All functions are called with keyword arguments named exactly as below (upstream AlgoPerf's
names): renaming an argument breaks the call.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed.nn as dist_nn

from algoperf import spec
from algoperf.pytorch_utils import pytorch_setup

# (use_ddp, rank, device, n_gpus), read from the environment: under `torchrun` every GPU runs
# its own process (DistributedDataParallel); otherwise a single process.
USE_PYTORCH_DDP, RANK, DEVICE, N_GPUS = pytorch_setup()

# Used when `hyperparameters` is None (self-tuning ruleset: the submission gets no tuned values
# and must choose its own; the budget is then 1.5x longer).
DEFAULT_HPARAMS = {"learning_rate": 0.1, "weight_decay": 0.0}


def _hparam(hyperparameters: spec.Hyperparameters, name: str) -> Any:
    """A tuned value, or the default under self-tuning (hyperparameters is None)."""
    if hyperparameters is None:
        return DEFAULT_HPARAMS[name]
    return getattr(hyperparameters, name, DEFAULT_HPARAMS[name])


def get_batch_size(workload_name: str) -> int:
    """Global training batch size (summed over all devices) for `workload_name`. Untimed.

    Called first with the full name (e.g. 'imagenet_resnet_silu'); if that raises ValueError the
    runner retries with the base workload name ('imagenet_resnet'), so variants can share their
    base's entry. The size must be divisible by the number of devices.
    """
    batch_sizes = {
        "criteo1tb": 262_144,
        "fastmri": 32,
        "imagenet_resnet": 1024,
        "imagenet_vit": 1024,
        "librispeech_conformer": 256,
        "librispeech_deepspeech": 256,
        "ogbg": 512,
        "wmt": 128,
        "finewebedu_lm": 64,
        "mnist": 16,
        "cifar": 128,
    }
    if workload_name not in batch_sizes:
        raise ValueError(f"Unsupported workload name: {workload_name}.")
    return batch_sizes[workload_name]


def init_optimizer_state(
    workload: spec.Workload,
    model_params: spec.ParameterContainer,
    model_state: spec.ModelAuxiliaryState,
    hyperparameters: spec.Hyperparameters,
    rng: spec.RandomState,
) -> spec.OptimizerState:
    """Build the optimizer state. Untimed: called once before the clock starts.

    Args:
      workload: the `spec.Workload`; `workload.step_hint` (steps the reference baseline takes in
        the budget) is what learning-rate schedules are usually built from.
      model_params: PyTorch: the `nn.Module` (possibly DDP-wrapped and/or `torch.compile`d).
        JAX: a nested dict of arrays.
      model_state: non-trained state such as batch-norm statistics (None in PyTorch, where it
        lives inside the module).
      hyperparameters: a namedtuple with the fields of `tuning_search_space.json` (one drawn
        point per tuning trial), or None under the self-tuning ruleset.
      rng: PyTorch: a numpy pair of ints emulating a JAX key. JAX: a PRNG key.

    Returns:
      PyTorch: a dict whose values implement `state_dict()` / `load_state_dict()`, so the runner
      can checkpoint them. JAX: a tuple `(optimizer_state_pytree, update_fn)`.
    """
    del model_state, rng
    optimizer = torch.optim.SGD(
        model_params.parameters(),
        lr=_hparam(hyperparameters, "learning_rate"),
        weight_decay=_hparam(hyperparameters, "weight_decay"),
    )
    return {"optimizer": optimizer}


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
    """One training step. TIMED.

    Args:
      current_param_container: the parameters (see `init_optimizer_state`).
      current_params_types: `spec.ParameterType` of each parameter (weight, bias, batch-norm
        scale, attention Q/K/V, ...), e.g. to exclude some from weight decay.
      batch: this rank's batch from `data_selection`: 'inputs', 'targets' and usually
        'weights' (1 for real examples, 0 for padding). PyTorch: per-rank tensors of shape
        (global_batch_size // n_gpus, ...). JAX: global arrays sharded on the leading axis.
      loss_type: `spec.LossType` of `workload.loss_fn`.
      optimizer_state: what `init_optimizer_state` or the previous step returned.
      eval_results: list of (global_step, metrics dict) of the evaluations so far.
      global_step: number of `update_params` calls before this one.
      rng: a fresh key for this step (dropout and any randomness of the submission).
      train_state: the runner's bookkeeping as a read-only mapping, passed only because this
        signature names it: 'accumulated_submission_time', 'last_eval_time',
        'validation_goal_reached', 'test_goal_reached', 'is_time_remaining',
        'training_complete', ... Leave the parameter out if the submission does not need it.

    Returns:
      (new_optimizer_state, new_params, new_model_state).

    Raises:
      spec.TrainingCompleteError: to end training now; the runner runs a final evaluation.
    """
    del current_params_types, loss_type, eval_results, train_state
    model = current_param_container
    model.train()
    optimizer = optimizer_state["optimizer"]
    optimizer.zero_grad(set_to_none=True)

    # The workload's forward pass. `dropout_rate` may be changed at every call; omit it to use
    # the workload's default. `update_batch_norm=True` updates batch-norm running statistics.
    logits, new_model_state = workload.model_fn(
        params=model,
        augmented_and_preprocessed_input_batch=batch,
        model_state=model_state,
        mode=spec.ForwardPassMode.TRAIN,
        rng=rng,
        update_batch_norm=True,
    )
    # `loss_fn` returns per-rank sums: {'summed', 'n_valid_examples', 'per_example'}.
    loss_dict = workload.loss_fn(
        label_batch=batch["targets"],
        logits_batch=logits,
        mask_batch=batch.get("weights"),
        label_smoothing=0.0,
    )
    summed, n_valid = loss_dict["summed"], loss_dict["n_valid_examples"]
    if USE_PYTORCH_DDP:
        # Sum over ranks with the autograd-aware all-reduce, so that the loss is the global mean
        # and, with DDP's gradient averaging, so is the gradient.
        summed = dist_nn.all_reduce(summed)
        n_valid = dist_nn.all_reduce(torch.as_tensor(n_valid, device=summed.device))
    loss = summed / n_valid
    loss.backward()
    optimizer.step()

    # Reading a value back from the GPU (`.item()`) waits for all queued work: do it rarely.
    if global_step % 100 == 0:
        loss_value = loss.item()
        if workload.metrics_logger is not None:  # attached by the runner on rank 0 when logging
            workload.metrics_logger.append_scalar_metrics({"loss": loss_value}, global_step)
        if not math.isfinite(loss_value):
            # Diverged: stop instead of spending the rest of the budget.
            raise spec.TrainingCompleteError(f"loss is {loss_value} at step {global_step}")
    return optimizer_state, current_param_container, new_model_state


def prepare_for_eval(
    workload: spec.Workload,
    current_param_container: spec.ParameterContainer,
    current_params_types: spec.ParameterTypeTree,
    model_state: spec.ModelAuxiliaryState,
    hyperparameters: spec.Hyperparameters,
    loss_type: spec.LossType,
    optimizer_state: spec.OptimizerState,
    eval_results: list[tuple[int, dict[str, float]]],
    global_step: int,
    rng: spec.RandomState,
) -> spec.UpdateReturn:
    """Return what gets evaluated. TIMED; optional (the runner looks it up with getattr).

    Called whenever an evaluation is due, before the budget check. The returned parameters are
    evaluated and then passed to the next `update_params`: a submission that evaluates averaged
    weights (EMA, Polyak, schedule-free) swaps them in here and back in `update_params`.
    Same arguments as `update_params` without `batch` and `train_state`.
    """
    del workload, current_params_types, hyperparameters, loss_type, eval_results
    del global_step, rng
    return optimizer_state, current_param_container, model_state


def data_selection(
    workload: spec.Workload,
    input_queue: Iterator[dict[str, spec.Tensor]],
    optimizer_state: spec.OptimizerState,
    current_param_container: spec.ParameterContainer,
    model_state: spec.ModelAuxiliaryState,
    hyperparameters: spec.Hyperparameters,
    global_step: int,
    rng: spec.RandomState,
) -> dict[str, spec.Tensor]:
    """The next training batch. TIMED.

    `input_queue` is the workload's infinite, pre-shuffled iterator. A submission may skip or
    reorder batches, but must not change parameters, optimizer state or hyperparameters here.
    """
    del workload, optimizer_state, current_param_container, model_state, hyperparameters
    del global_step, rng
    return next(input_queue)
