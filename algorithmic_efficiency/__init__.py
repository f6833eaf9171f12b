"""`algorithmic_efficiency`: upstream AlgoPerf's package name before v0.6, as an alias of `algoperf`.

Submissions of the v0.5 leaderboard (and several of v0.6) import ``algorithmic_efficiency.spec``,
``algorithmic_efficiency.pytorch_utils`` and so on. Every ``algorithmic_efficiency.<name>`` is the
module ``algoperf.<name>`` itself (the same object in ``sys.modules``, so classes, enums and
``isinstance`` checks agree whichever name a submission uses); there is no second copy of the
code. Resolution is lazy: importing this package imports neither JAX nor PyTorch.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from typing import Any

import algoperf
from algoperf.module_alias import ExistingModuleLoader

ALIAS = __name__
TARGET = "algoperf"


def target_name(fullname: str) -> str:
    """`algoperf.X.Y` for `algorithmic_efficiency.X.Y`."""
    return TARGET + fullname[len(ALIAS) :]


class AliasFinder(importlib.abc.MetaPathFinder):
    """Resolves `algorithmic_efficiency.<name>` to the module `algoperf.<name>`."""

    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(ALIAS + "."):
            return None
        real = target_name(fullname)
        try:
            module = importlib.import_module(real)
        except ModuleNotFoundError as e:
            if e.name != real:
                raise  # the algoperf module exists but one of its own imports is missing
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: upstream's pre-v0.6 name maps to {real!r}, which "
                "this harness does not provide (see README, 'Upstream submissions')",
                name=fullname,
            ) from None
        is_package = hasattr(module, "__path__")
        return importlib.machinery.ModuleSpec(
            fullname, ExistingModuleLoader(module), is_package=is_package
        )


def install() -> None:
    """Put the alias finder first on `sys.meta_path` (idempotent)."""
    if not any(isinstance(f, AliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, AliasFinder())


def __getattr__(name: str) -> Any:
    """Attributes of the top-level package (e.g. ``__version__``) are `algoperf`'s."""
    return getattr(algoperf, name)


install()
