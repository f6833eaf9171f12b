"""JAX half of the baselines: optimizer-state construction and a cached, sharded train step.

Every JAX baseline is `common` + an optax transformation: its `init_optimizer_state` calls
`init_optimizer_state_with(workload, hyperparameters, make_tx)` and it re-exports
`update_params` from here.

Layout (upstream's current jit + sharding convention): params, model state and optimizer state
are replicated over the device mesh; the batch is one global array sharded along its leading
axis; under `jit` the loss sum and example count are global, so no explicit all-reduce is needed.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from algoperf import jax_sharding_utils, spec
from submissions.baselines import common

MakeTransformation = Callable[[Any], optax.GradientTransformation]


def warmup_cosine_schedule(step_hint: int, hyperparameters: spec.Hyperparameters) -> optax.Schedule:
    """Learning rate at optimizer step `count`: peak lr times `common.WarmupCosine`."""
    shape = common.WarmupCosine.from_hparams(step_hint, hyperparameters)
    peak = common.learning_rate(hyperparameters)
    return lambda count: peak * shape.factor(count, jnp)


def init_optimizer_state_with(
    workload: spec.Workload,
    hyperparameters: spec.Hyperparameters,
    make_tx: MakeTransformation,
) -> spec.OptimizerState:
    """Build `(opt_state, opt_update_fn)` for `make_tx(learning_rate)` under the warmup+cosine.

    The learning rate is injected with `optax.inject_hyperparams`, so the rate used by the most
    recent update is readable (and checkpointed) as `opt_state.hyperparams['learning_rate']`.
    The state is built from `workload.param_shapes`, not the parameters (as upstream does), and
    replicated over the mesh now, untimed: left on one device, its type would differ from the
    replicated state the first step returns and the second step would compile again, on the
    clock.
    """
    tx = optax.inject_hyperparams(make_tx)(
        learning_rate=warmup_cosine_schedule(workload.step_hint, hyperparameters)
    )
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape_tuple), workload.param_shapes)
    return jax_sharding_utils.replicate(tx.init(zeros)), tx.update


def _train_step(
    workload: spec.Workload,
    opt_update_fn: optax.TransformUpdateFn,
    model_state: spec.ModelAuxiliaryState,
    optimizer_state: optax.OptState,
    params: spec.ParameterContainer,
    batch: dict[str, spec.Tensor],
    rng: spec.RandomState,
    grad_clip: float | None,
    label_smoothing: float,
    dropout_rate: float | None,
) -> tuple[Any, Any, Any, jax.Array, jax.Array]:
    """One mean-loss gradient step; returns (opt_state, params, model_state, loss, grad_norm)."""
    # None arguments are empty pytrees, so this branch is resolved at trace time.
    model_kwargs = {} if dropout_rate is None else {"dropout_rate": dropout_rate}

    def loss_fn(p: Any) -> tuple[jax.Array, tuple[jax.Array, Any]]:
        logits, new_model_state = workload.model_fn(
            p,
            batch,
            model_state,
            spec.ForwardPassMode.TRAIN,
            rng,
            update_batch_norm=True,
            **model_kwargs,
        )
        loss_dict = workload.loss_fn(
            label_batch=batch["targets"],
            logits_batch=logits,
            mask_batch=batch.get("weights"),
            label_smoothing=label_smoothing,
        )
        return loss_dict["summed"], (loss_dict["n_valid_examples"], new_model_state)

    (summed, (n_valid, new_model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    loss = summed / n_valid
    grads = jax.tree.map(lambda g: g / n_valid, grads)
    grad_norm = optax.tree.norm(grads)
    if grad_clip is not None:
        scale = jnp.clip(grad_clip / (grad_norm + common.GRAD_CLIP_EPS), 0.0, 1.0)
        grads = jax.tree.map(lambda g: g * scale, grads)
    updates, new_optimizer_state = opt_update_fn(grads, optimizer_state, params)
    new_params = optax.apply_updates(params, updates)
    return new_optimizer_state, new_params, new_model_state, loss, grad_norm


# (id(workload), id(opt_update_fn)) -> (workload, opt_update_fn, jitted step). The objects are
# kept alive by the entry, so their ids cannot be reused while it exists; a few entries cover
# the trials of one process (each trial builds a new update function).
_TRAIN_STEP_CACHE: OrderedDict[tuple[int, int], tuple[Any, Any, Callable]] = OrderedDict()
_TRAIN_STEP_CACHE_SIZE = 4


def jitted_train_step(workload: spec.Workload, opt_update_fn: Callable) -> Callable:
    """The sharded, jitted `_train_step` for this workload and optimizer, built once.

    Building a new `jax.jit` object on every call (as upstream's baseline does) costs a Python
    re-wrap and a cache lookup by hash each step; this keeps one per (workload, update fn).
    Arguments after the two bound ones: (model_state, optimizer_state, params, batch, rng,
    grad_clip, label_smoothing, dropout_rate); the first three are donated.
    """
    key = (id(workload), id(opt_update_fn))
    entry = _TRAIN_STEP_CACHE.get(key)
    if entry is not None:
        _TRAIN_STEP_CACHE.move_to_end(key)
        return entry[2]
    replicated = jax_sharding_utils.get_replicate_sharding()
    sharded = jax_sharding_utils.get_batch_dim_sharding()
    step = jax.jit(
        functools.partial(_train_step, workload, opt_update_fn),
        donate_argnums=(0, 1, 2),
        in_shardings=(
            replicated,  # model_state
            replicated,  # optimizer_state
            replicated,  # params
            sharded,  # batch
            replicated,  # rng
            replicated,  # grad_clip
            replicated,  # label_smoothing
            replicated,  # dropout_rate
        ),
        out_shardings=(replicated,) * 5,
    )
    _TRAIN_STEP_CACHE[key] = (workload, opt_update_fn, step)
    while len(_TRAIN_STEP_CACHE) > _TRAIN_STEP_CACHE_SIZE:
        _TRAIN_STEP_CACHE.popitem(last=False)
    return step


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
    """One timed training step; returns ((opt_state, opt_update_fn), params, model_state).

    The input params, model state and optimizer state are donated to the step: do not use them
    after this call. Only on logging steps (`common.should_log`) are the loss and gradient norm
    read back to the host; other steps return without waiting for the device.
    """
    del current_params_types, loss_type, eval_results, train_state
    opt_state, opt_update_fn = optimizer_state
    options = common.step_options(hyperparameters)
    step = jitted_train_step(workload, opt_update_fn)
    new_opt_state, new_params, new_model_state, loss, grad_norm = step(
        model_state,
        opt_state,
        current_param_container,
        batch,
        rng,
        options.grad_clip,
        options.label_smoothing,
        options.dropout_rate,
    )
    if common.should_log(workload, global_step):
        workload.metrics_logger.append_scalar_metrics(
            {"loss": float(loss), "grad_norm": float(grad_norm)}, global_step
        )
    return (new_opt_state, opt_update_fn), new_params, new_model_state
