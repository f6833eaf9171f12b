"""Framework-free data infrastructure: downloads, batch iterators and the dataset table.

`DATASETS` maps every dataset name that ``algoperf datasets`` knows to a lazy ``"module:function"``
string naming its ``prepare(dataset, data_dir, *, offline_fallback=True) -> Path`` function. A new
dataset family registers here with one line; nothing is imported until the dataset is prepared,
so importing this package stays cheap and imports neither JAX nor PyTorch.

A prepare function may also take ``progress: bool`` (progress output on stderr). It downloads
into ``<data_dir>/<dataset>/`` and, once every file is verified, writes a manifest there
(`algoperf.data.download.write_manifest`); ``algoperf datasets list`` reads the manifests to say
what is ready.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path

# dataset name -> "module:function" of its prepare function.
DATASETS: dict[str, str] = {
    "mnist": "workloads.mnist.data:prepare",
    "fashion_mnist": "workloads.mnist.data:prepare",
    "cifar10": "workloads.cifar.data:prepare_dataset",
    "imagenet": "workloads.imagenet.data:prepare_dataset",
}

# Environment variable naming the default data root (then ./data).
DATA_DIR_ENV = "ALGOPERF_DATA_DIR"


class DataError(RuntimeError):
    """Base class of every data-related error; its message is one line that says what to do."""


class DatasetError(DataError):
    """A dataset on disk is missing, incomplete or corrupt."""


class UnknownDatasetError(DataError, ValueError):
    """A dataset name that is not in `DATASETS`."""


def default_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """`data_dir` if given, else ``$ALGOPERF_DATA_DIR``, else ``./data``."""
    if data_dir:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else Path("data")


def get_prepare_fn(dataset: str) -> Callable[..., Path]:
    """The registered prepare function of `dataset` (imported on first use)."""
    try:
        target = DATASETS[dataset]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        raise UnknownDatasetError(f"unknown dataset {dataset!r}; known datasets: {known}") from None
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr)
