"""The template submission (SGD with weight decay, constant learning rate) in JAX.

Read `submission.py` first: it documents every function, its arguments and what is timed. This
file is the same algorithm with JAX's conventions, commented where they differ:

* parameters, model state and optimizer state are pytrees replicated on every device; a batch is
  one global array of shape (global_batch_size, ...) sharded along its leading axis, so sums
  inside `jax.jit` are already global (no explicit all-reduce);
* the optimizer state is a tuple `(optimizer_state_pytree, update_fn)`: the runner checkpoints
  the first element and passes the tuple back unchanged;
* the training step is jitted once and reused: building a new `jax.jit` object every step costs
  time on the clock.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import optax

from algoperf import jax_sharding_utils, spec

DEFAULT_HPARAMS = {"learning_rate": 0.1, "weight_decay": 0.0}


def _hparam(hyperparameters: spec.Hyperparameters, name: str) -> Any:
    """A tuned value, or the default under self-tuning (hyperparameters is None)."""
    if hyperparameters is None:
        return DEFAULT_HPARAMS[name]
    return getattr(hyperparameters, name, DEFAULT_HPARAMS[name])


def get_batch_size(workload_name: str) -> int:
    """Global training batch size; ValueError makes the runner retry with the base name."""
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
    """`(optax state, optax update fn)`. Untimed."""
    del model_params, model_state, rng
    tx = optax.chain(
        optax.add_decayed_weights(_hparam(hyperparameters, "weight_decay")),
        optax.sgd(_hparam(hyperparameters, "learning_rate")),
    )
    # Built from the shapes rather than the parameters, which the first step donates, and
    # replicated like the parameters: a state of another type than the one the first step
    # returns would make the second step compile again, on the clock.
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape_tuple), workload.param_shapes)
    return jax_sharding_utils.replicate(tx.init(zeros)), tx.update


def _train_step(
    workload: spec.Workload,
    update_fn: Callable,
    model_state: Any,
    opt_state: Any,
    params: Any,
    batch: dict[str, jax.Array],
    rng: jax.Array,
) -> tuple[Any, Any, Any, jax.Array]:
    def loss_fn(p: Any) -> tuple[jax.Array, tuple[jax.Array, Any]]:
        logits, new_model_state = workload.model_fn(
            p, batch, model_state, spec.ForwardPassMode.TRAIN, rng, update_batch_norm=True
        )
        loss_dict = workload.loss_fn(
            label_batch=batch["targets"], logits_batch=logits, mask_batch=batch.get("weights")
        )
        return loss_dict["summed"], (loss_dict["n_valid_examples"], new_model_state)

    (summed, (n_valid, new_model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    grads = jax.tree.map(lambda g: g / n_valid, grads)
    updates, new_opt_state = update_fn(grads, opt_state, params)
    return new_opt_state, optax.apply_updates(params, updates), new_model_state, summed / n_valid


@functools.lru_cache(maxsize=4)
def _jitted_train_step(workload: spec.Workload, update_fn: Callable) -> Callable:
    """One compiled step per (workload, optimizer); later calls reuse it."""
    replicated = jax_sharding_utils.get_replicate_sharding()
    sharded = jax_sharding_utils.get_batch_dim_sharding()
    return jax.jit(
        functools.partial(_train_step, workload, update_fn),
        # model_state, opt_state, params: their buffers are reused for the outputs.
        donate_argnums=(0, 1, 2),
        in_shardings=(replicated, replicated, replicated, sharded, replicated),
        out_shardings=(replicated, replicated, replicated, replicated),
    )


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
    """One training step. TIMED. Returns `((opt_state, update_fn), params, model_state)`."""
    del current_params_types, hyperparameters, loss_type, eval_results, train_state
    opt_state, update_fn = optimizer_state
    step = _jitted_train_step(workload, update_fn)
    new_opt_state, new_params, new_model_state, loss = step(
        model_state, opt_state, current_param_container, batch, rng
    )
    # `float(loss)` waits for the device; JAX otherwise returns before the step has finished.
    if global_step % 100 == 0:
        loss_value = float(loss)
        if workload.metrics_logger is not None:
            workload.metrics_logger.append_scalar_metrics({"loss": loss_value}, global_step)
        if not math.isfinite(loss_value):
            raise spec.TrainingCompleteError(f"loss is {loss_value} at step {global_step}")
    return (new_opt_state, update_fn), new_params, new_model_state


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
    """What gets evaluated (TIMED, optional); here the parameters as they are."""
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
    """The next training batch (TIMED)."""
    del workload, optimizer_state, current_param_container, model_state, hyperparameters
    del global_step, rng
    return next(input_queue)
