"""SGD with momentum in upstream's pmap-era JAX layout (v0.5 names, flax.jax_utils, jax.pmap).

Replicated state comes in with a leading device axis and batches as (devices, per_device, ...);
gradients are averaged over the 'batch' axis, as upstream's v0.5 baselines do.
"""

import functools

import jax
import optax
from flax import jax_utils
from jax import lax

from algorithmic_efficiency import spec


def get_batch_size(workload_name):
    return 64


def _tx(hyperparameters):
    return optax.sgd(hyperparameters.learning_rate, momentum=0.9)


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    del model_state, rng
    params = jax_utils.unreplicate(model_params)
    tx = _tx(hyperparameters)
    return jax_utils.replicate(tx.init(params)), tx.update


@functools.partial(
    jax.pmap, axis_name="batch", in_axes=(None, None, 0, 0, 0, 0), static_broadcasted_argnums=(0, 1)
)
def _step(workload, update_fn, opt_state, params, batch, rng):
    def loss_fn(p):
        logits, _ = workload.model_fn(p, batch, None, spec.ForwardPassMode.TRAIN, rng, False)
        out = workload.loss_fn(batch["targets"], logits)
        return out["summed"], out["n_valid_examples"]

    (summed, n), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    summed, n, grads = lax.psum((summed, n, grads), axis_name="batch")
    grads = jax.tree_map(lambda g: g / n, grads)  # JAX 0.4 name, as v0.5 submissions use
    updates, opt_state = update_fn(grads, opt_state, params)
    return opt_state, optax.apply_updates(params, updates), summed / n


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
    del current_params_types, loss_type, eval_results
    opt_state, update_fn = optimizer_state
    rngs = jax.random.split(rng, jax.local_device_count())
    assert batch["inputs"].shape[0] == jax.local_device_count()  # the pmap batch layout
    opt_state, params, loss = _step(
        workload, update_fn, opt_state, current_param_container, batch, rngs
    )
    if workload.metrics_logger is not None and global_step % 5 == 0:
        workload.metrics_logger.append_scalar_metrics({"loss": float(loss[0])}, global_step)
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
