"""SGD with momentum importing its optimizer from a module path rooted at its repository.

The update rule is `jit_sgd`'s; only the optimizer's construction differs.
"""

from submissions.self_tuning.rooted.optim import make_optimizer

from tests.integration.submissions.upstream_styles.jit_sgd.submission import (  # noqa: F401
    data_selection,
    get_batch_size,
    update_params,
)


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    del workload, model_state, hyperparameters, rng
    tx = make_optimizer()
    return tx.init(model_params), tx.update
