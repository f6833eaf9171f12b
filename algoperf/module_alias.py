"""A loader that makes an already imported module importable under a second name (no re-execution).

Used by the `algorithmic_efficiency` alias package and by submission loading (one file, one
module), so that both names are the same object and classes, enums and ``isinstance`` agree.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
from types import ModuleType


class ExistingModuleLoader(importlib.abc.Loader):
    """Hands back `module` itself; its own ``__spec__`` stays authoritative."""

    def __init__(self, module: ModuleType) -> None:
        self._module = module
        self._spec = module.__spec__

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return self._module

    def exec_module(self, module: ModuleType) -> None:
        # The import system stamps the new name's spec on the module; restore the real one.
        module.__spec__ = self._spec
