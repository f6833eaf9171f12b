"""Written to run as a script: imports its sibling top-level, checks classes with isinstance."""

import optax
from vendor_types import SgdConfig


def make_optimizer(config: object) -> optax.GradientTransformation:
    if not isinstance(config, SgdConfig):
        raise NotImplementedError(f"{config!r} not supported")
    return optax.sgd(config.learning_rate, momentum=config.momentum)
