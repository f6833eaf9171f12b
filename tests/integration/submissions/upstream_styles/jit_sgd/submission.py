"""The update rule of `pmap_sgd` (SGD with momentum) in the jit layout (upstream v0.6 style)."""

import functools

import jax
import optax

from algoperf import spec


def get_batch_size(workload_name):
    return 64


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    del model_state, rng
    tx = optax.sgd(hyperparameters.learning_rate, momentum=0.9)
    return tx.init(model_params), tx.update


@functools.partial(jax.jit, static_argnums=(0, 1))
def _step(workload, update_fn, opt_state, params, batch, rng):
    def loss_fn(p):
        logits, _ = workload.model_fn(p, batch, None, spec.ForwardPassMode.TRAIN, rng, False)
        out = workload.loss_fn(batch["targets"], logits)
        return out["summed"] / out["n_valid_examples"]

    grads = jax.grad(loss_fn)(params)
    updates, opt_state = update_fn(grads, opt_state, params)
    return opt_state, optax.apply_updates(params, updates)


def update_params(
    workload,
    current_param_container,
    current_params_types,
    model_state,
    hyperparameters,
    batch,
    loss_type,
    optimizer_state,
    eval_results,
    global_step,
    rng,
):
    del current_params_types, loss_type, eval_results, global_step
    opt_state, update_fn = optimizer_state
    opt_state, params = _step(workload, update_fn, opt_state, current_param_container, batch, rng)
    return (opt_state, update_fn), params, model_state


def data_selection(
    workload,
    input_queue,
    optimizer_state,
    current_param_container,
    model_state,
    hyperparameters,
    global_step,
    rng,
):
    return next(input_queue)
