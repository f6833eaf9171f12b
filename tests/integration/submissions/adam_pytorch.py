"""A minimal Adam submission (PyTorch) for end-to-end tests."""

import torch

from algoperf import spec


def get_batch_size(name):
    if name == "mnist":
        return 128
    raise ValueError(name)


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    return {
        "optimizer": torch.optim.Adam(model_params.parameters(), lr=hyperparameters.learning_rate)
    }


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
    opt = optimizer_state["optimizer"]
    opt.zero_grad()
    logits, _ = workload.model_fn(
        current_param_container, batch, None, spec.ForwardPassMode.TRAIN, rng, False
    )
    d = workload.loss_fn(batch["targets"], logits)
    (d["summed"] / d["n_valid_examples"]).backward()
    opt.step()
    return optimizer_state, current_param_container, model_state


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
