"""The MNIST-family MLP in PyTorch, with upstream's parameter names (net.layer1, net.layer2).

Layer ``k`` (1-based) is ``net.layer<k>``, its activation ``net.layer<k>_sig`` (or ``_relu``), so
upstream's one-hidden-layer MNIST model has exactly upstream's state-dict keys.

Initialisation (``config.model["init"]``): ``"upstream"`` follows what upstream actually runs for
MNIST: PyTorch's default `nn.Linear` init on the first `init_model_fn` (upstream defines a
`reset_parameters` with its LeCun-normal `pytorch_default_init` but only calls it when the model is
initialised a second time). ``"lecun_normal"`` always applies that LeCun-normal init, which is the
distribution flax's `Dense` draws from, so both frameworks start from the same distribution
(variants that are not upstream's use it). `reset_parameters()` applies it in either case.
"""

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from algoperf.frameworks.pytorch import pytorch_default_init
from workloads.mnist.common import check_model_options

ACTIVATIONS: dict[str, tuple[str, type[nn.Module]]] = {
    "sigmoid": ("sig", nn.Sigmoid),
    "relu": ("relu", nn.ReLU),
}


class MLP(nn.Module):
    def __init__(
        self,
        input_size: int = 28 * 28,
        hidden_widths: Sequence[int] = (128,),
        num_classes: int = 10,
        activation: str = "sigmoid",
    ) -> None:
        super().__init__()
        suffix, act = ACTIVATIONS[activation]
        layers: list[tuple[str, nn.Module]] = []
        width = input_size
        for k, hidden in enumerate(hidden_widths, 1):
            layers += [(f"layer{k}", nn.Linear(width, hidden)), (f"layer{k}_{suffix}", act())]
            width = hidden
        layers.append((f"layer{len(hidden_widths) + 1}", nn.Linear(width, num_classes)))
        self.net = nn.Sequential(OrderedDict(layers))

    def reset_parameters(self) -> None:
        for m in self.net.modules():
            if isinstance(m, nn.Linear):
                pytorch_default_init(m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(x.shape[0], -1))


def build_model(options: Mapping[str, Any]) -> MLP:
    """The MLP `options` (a config's ``model``) describe; ValueError for unknown options."""
    opts = check_model_options(options)
    input_size = 1
    for dim in opts["input_shape"]:
        input_size *= int(dim)
    model = MLP(
        input_size=input_size,
        hidden_widths=tuple(opts["hidden_widths"]),
        num_classes=opts["num_classes"],
        activation=opts["activation"],
    )
    if opts["init"] == "lecun_normal":
        model.reset_parameters()
    return model
