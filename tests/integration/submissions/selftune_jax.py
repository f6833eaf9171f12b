"""Self-tuning Adam (jax) for end-to-end tests: no hyperparameters from the runner.

It checks what the self-tuning ruleset gives it: `hyperparameters` is None, and `train_state`
times are wall-clock (`time.time()`-comparable) seconds, as upstream's runner gives them.
"""

import collections
import time

import adam_jax as adam

get_batch_size = adam.get_batch_size
data_selection = adam.data_selection
OWN = collections.namedtuple("Hyperparameters", ["learning_rate"])(learning_rate=2e-3)


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    if hyperparameters is not None:
        raise AssertionError(f"self-tuning got hyperparameters {hyperparameters}")
    return adam.init_optimizer_state(workload, model_params, model_state, OWN, rng)


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
    if abs(time.time() - train_state["last_step_end_time"]) > 3600:
        raise AssertionError(f"train_state times are not wall-clock: {dict(train_state)}")
    return adam.update_params(
        workload,
        current_param_container,
        current_params_types,
        model_state,
        OWN,
        batch,
        loss_type,
        optimizer_state,
        eval_results,
        global_step,
        rng,
    )
