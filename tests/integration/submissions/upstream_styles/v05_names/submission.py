"""SGD in PyTorch, written against upstream's pre-v0.6 package name `algorithmic_efficiency`."""

import torch
from algorithmic_efficiency.pytorch_utils import pytorch_setup

from algorithmic_efficiency import spec

USE_PYTORCH_DDP, RANK, DEVICE, N_GPUS = pytorch_setup()


def get_batch_size(workload_name):
    return 64


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    del model_state, rng
    return {
        "optimizer": torch.optim.SGD(model_params.parameters(), lr=hyperparameters.learning_rate)
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
    del current_params_types, loss_type, eval_results, global_step
    current_param_container.train()
    optimizer_state["optimizer"].zero_grad()
    logits, new_state = workload.model_fn(
        params=current_param_container,
        augmented_and_preprocessed_input_batch=batch,
        model_state=model_state,
        mode=spec.ForwardPassMode.TRAIN,
        rng=rng,
        update_batch_norm=True,
    )
    loss = workload.loss_fn(label_batch=batch["targets"], logits_batch=logits)
    (loss["summed"] / loss["n_valid_examples"]).backward()
    optimizer_state["optimizer"].step()
    return optimizer_state, current_param_container, new_state


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
