"""The MNIST-family MLP in flax: flatten -> [Dense -> activation] per hidden width -> Dense.

Upstream's MNIST model is one sigmoid hidden layer of 128 (``hidden_widths=(128,)``); variants
choose the input shape, the hidden widths and the activation in ``config.model``.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax

from workloads.mnist.common import check_model_options

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {"sigmoid": nn.sigmoid, "relu": nn.relu}


class MLP(nn.Module):
    hidden_widths: Sequence[int] = (128,)
    num_classes: int = 10
    activation: str = "sigmoid"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.reshape((x.shape[0], -1))
        for width in self.hidden_widths:
            x = ACTIVATIONS[self.activation](nn.Dense(width)(x))
        return nn.Dense(self.num_classes)(x)


def build_model(options: Mapping[str, Any]) -> MLP:
    """The MLP `options` (a config's ``model``) describe; ValueError for unknown options."""
    opts = check_model_options(options)
    return MLP(
        hidden_widths=tuple(opts["hidden_widths"]),
        num_classes=opts["num_classes"],
        activation=opts["activation"],
    )
