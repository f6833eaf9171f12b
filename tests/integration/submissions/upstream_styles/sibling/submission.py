"""SGD with momentum whose learning rate comes from a data file, through a relative import.

The update rule is `jit_sgd`'s; only the optimizer's construction differs.
"""

import optax

from tests.integration.submissions.upstream_styles.jit_sgd.submission import (  # noqa: F401
    data_selection,
    get_batch_size,
    update_params,
)

from .helpers import learning_rate


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    del workload, model_state, hyperparameters, rng
    tx = optax.sgd(learning_rate(), momentum=0.9)
    return tx.init(model_params), tx.update
