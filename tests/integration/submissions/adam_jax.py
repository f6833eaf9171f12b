"""A minimal Adam submission (JAX) for end-to-end tests."""

import jax
import optax

from algoperf import spec


def get_batch_size(name):
    if name == "mnist":
        return 128
    raise ValueError(name)


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    tx = optax.adam(hyperparameters.learning_rate)
    return tx.init(model_params), tx.update


_STEP = {}


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
    train_state=None,
):
    opt_state, update_fn = optimizer_state
    if "f" not in _STEP:

        def step(params, opt_state, batch):
            def loss(p):
                logits, _ = workload.model_fn(
                    p, batch, None, spec.ForwardPassMode.TRAIN, rng, False
                )
                d = workload.loss_fn(batch["targets"], logits)
                return d["summed"] / d["n_valid_examples"]

            g = jax.grad(loss)(params)
            u, opt_state = update_fn(g, opt_state, params)
            return optax.apply_updates(params, u), opt_state

        _STEP["f"] = jax.jit(step)
    params, opt_state = _STEP["f"](current_param_container, opt_state, batch)
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
