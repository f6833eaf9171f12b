"""Framework-free data infrastructure: downloads, batch iterators, the data root and data errors.

The datasets themselves are declared by the workload families (`algoperf.registry.Dataset`:
prepare function, options, fixture writer); ``algoperf datasets`` (`algoperf.data.cli`) reads
those declarations. A prepare function downloads into ``<data_dir>/<dataset>/`` and, once every
file is verified, writes a manifest there (`algoperf.data.download.write_manifest`);
``algoperf datasets list`` reads the manifests to say what is ready.
"""

from __future__ import annotations

import os
from pathlib import Path

# Environment variable naming the default data root (then ./data).
DATA_DIR_ENV = "ALGOPERF_DATA_DIR"


class DataError(RuntimeError):
    """Base class of every data-related error; its message is one line that says what to do."""


class DatasetError(DataError):
    """A dataset on disk is missing, incomplete or corrupt."""


class UnknownDatasetError(DataError, ValueError):
    """A dataset name that no workload family declares."""


def default_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """`data_dir` if given, else ``$ALGOPERF_DATA_DIR``, else ``./data``."""
    if data_dir:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else Path("data")
