"""The optimizer, imported as `submissions.self_tuning.rooted.optim`."""

import optax


def make_optimizer() -> optax.GradientTransformation:
    return optax.sgd(0.05, momentum=0.9)
