"""The upstream MNIST MLP in flax: flatten -> Dense(128) -> sigmoid -> Dense(10)."""

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax


class MLP(nn.Module):
    hidden_width: int = 128
    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.reshape((x.shape[0], -1))
        x = nn.Dense(self.hidden_width)(x)
        x = nn.sigmoid(x)
        return nn.Dense(self.num_classes)(x)


def build_model(options: Mapping[str, Any]) -> MLP:
    if options.get("activation", "sigmoid") != "sigmoid":
        raise ValueError(f"unsupported MNIST activation {options['activation']!r}")
    return MLP(hidden_width=options["hidden_width"], num_classes=options["num_classes"])
