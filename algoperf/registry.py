"""The workload registry: an explicit table from workload name to config and implementations.

Every workload and variant is a `WorkloadConfig` declared in `workloads/<family>/spec.py`
(`VARIANTS`). Implementations are lazy ``"module:Class"`` strings per framework, one class per
family and framework, configured by the variant's config, so importing this module imports
neither JAX nor PyTorch. A family without an entry in `IMPLEMENTATIONS` is listed with its
upstream numbers but cannot be run yet.
"""

from __future__ import annotations

import difflib
import importlib
from functools import cache
from typing import Any

from algoperf.workload_config import WorkloadConfig

FRAMEWORKS = ("jax", "pytorch")

# Families, in the order `algoperf workloads` lists them.
FAMILIES = (
    "mnist",
    "cifar",
    "criteo1tb",
    "fastmri",
    "imagenet",
    "librispeech",
    "ogbg",
    "wmt",
    "finewebedu_lm",
)

# family -> framework -> "module:Class". A family's class serves all of its variants.
IMPLEMENTATIONS: dict[str, dict[str, str]] = {
    "mnist": {
        "jax": "workloads.mnist.workload_jax:MnistWorkload",
        "pytorch": "workloads.mnist.workload_pytorch:MnistWorkload",
    },
    "cifar": {
        "jax": "workloads.cifar.workload_jax:CifarWorkload",
        "pytorch": "workloads.cifar.workload_pytorch:CifarWorkload",
    },
    # One entry class per framework: it builds the ResNet or ViT workload of config.model["arch"].
    "imagenet": {
        "jax": "workloads.imagenet.workload_jax:ImagenetWorkload",
        "pytorch": "workloads.imagenet.workload_pytorch:ImagenetWorkload",
    },
    "fastmri": {
        "jax": "workloads.fastmri.workload_jax:FastmriWorkload",
        "pytorch": "workloads.fastmri.workload_pytorch:FastmriWorkload",
    },
}

# Upstream's base workloads, in upstream's order (used to map a variant to its base name the way
# upstream does: the first entry that is a substring of the variant's name).
BASE_WORKLOADS = (
    "criteo1tb",
    "fastmri",
    "imagenet_resnet",
    "imagenet_vit",
    "librispeech_conformer",
    "librispeech_deepspeech",
    "ogbg",
    "wmt",
)


class UnknownWorkloadError(ValueError):
    """A workload name that is not registered."""


class NotImplementedWorkloadError(ValueError):
    """A registered workload with no implementation for the requested framework."""


@cache
def all_configs() -> dict[str, WorkloadConfig]:
    """Every registered workload and variant by name, in listing order."""
    configs: dict[str, WorkloadConfig] = {}
    for family in FAMILIES:
        module = importlib.import_module(f"workloads.{family}.spec")
        for name, config in module.VARIANTS.items():
            if name in configs:
                raise RuntimeError(f"workload {name!r} registered twice")
            if config.family != family:
                raise RuntimeError(f"workload {name!r} declares family {config.family!r}")
            configs[name] = config
    return configs


def workload_names() -> list[str]:
    """Registered workload names."""
    return list(all_configs())


def get_config(name: str) -> WorkloadConfig:
    """The config of a registered workload; `UnknownWorkloadError` with suggestions otherwise."""
    configs = all_configs()
    if name not in configs:
        close = difflib.get_close_matches(name, configs, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownWorkloadError(
            f"unknown workload {name!r}.{hint} Run `algoperf workloads` to list all workloads."
        )
    return configs[name]


def implemented_frameworks(name: str) -> tuple[str, ...]:
    """Frameworks this harness can run `name` in."""
    return tuple(IMPLEMENTATIONS.get(get_config(name).family, {}))


def get_base_workload_name(name: str) -> str:
    """Upstream's base name of a workload: used when `get_batch_size` rejects a variant name."""
    for base in BASE_WORKLOADS:
        if base in name:
            return base
    return get_config(name).base_name


def benchmark_workloads() -> list[str]:
    """Base workloads scored in the current benchmark version."""
    return [n for n, c in all_configs().items() if c.benchmark]


def workload_class(name: str, framework: str) -> type:
    """The implementation class for a workload in a framework (imports the framework)."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; choose one of {', '.join(FRAMEWORKS)}")
    config = get_config(name)
    target = IMPLEMENTATIONS.get(config.family, {}).get(framework)
    if target is None:
        available = implemented_frameworks(name)
        raise NotImplementedWorkloadError(
            f"workload {name!r} is registered but has no {framework} implementation yet"
            + (f" (available: {', '.join(available)})" if available else "")
        )
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def get_workload(name: str, framework: str, **kwargs: Any):
    """Instantiate workload `name` for `framework`; returns an `algoperf.spec.Workload`."""
    return workload_class(name, framework)(config=get_config(name), **kwargs)
