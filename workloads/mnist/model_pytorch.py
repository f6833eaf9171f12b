"""The upstream MNIST MLP in PyTorch, with upstream's parameter names (net.layer1, net.layer2).

Initialisation follows what upstream actually runs: PyTorch's default `nn.Linear` init on the
first `init_model_fn` (upstream defines a `reset_parameters` with its LeCun-normal
`pytorch_default_init` but only calls it when the model is initialised a second time).
`reset_parameters()` applies that LeCun-normal init, as upstream's does.
"""

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from algoperf.frameworks.pytorch import pytorch_default_init


class MLP(nn.Module):
    def __init__(self, hidden_width: int = 128, num_classes: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(
            OrderedDict(
                [
                    ("layer1", nn.Linear(28 * 28, hidden_width)),
                    ("layer1_sig", nn.Sigmoid()),
                    ("layer2", nn.Linear(hidden_width, num_classes)),
                ]
            )
        )

    def reset_parameters(self) -> None:
        for m in self.net.modules():
            if isinstance(m, nn.Linear):
                pytorch_default_init(m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(x.shape[0], -1))


def build_model(options: Mapping[str, Any]) -> MLP:
    if options.get("activation", "sigmoid") != "sigmoid":
        raise ValueError(f"unsupported MNIST activation {options['activation']!r}")
    return MLP(hidden_width=options["hidden_width"], num_classes=options["num_classes"])
