"""SGD with momentum from a vendored package whose modules import each other top-level.

The update rule is `jit_sgd`'s; only the optimizer's construction differs.
"""

from vendor.core import make_optimizer
from vendor.vendor_types import SgdConfig

from tests.integration.submissions.upstream_styles.jit_sgd.submission import (  # noqa: F401
    data_selection,
    get_batch_size,
    update_params,
)


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    del workload, model_state, hyperparameters, rng
    tx = make_optimizer(SgdConfig(0.05, 0.9))
    return tx.init(model_params), tx.update
