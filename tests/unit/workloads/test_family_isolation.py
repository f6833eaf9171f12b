"""Families never import each other; what they share lives in `workloads/common/`, which imports
no family. Checked on the source (every import statement, relative ones included), so a
family that reached into another would fail here even where the import is lazy."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

WORKLOADS = Path(__file__).resolve().parents[3] / "workloads"
FAMILIES = sorted(
    p.name for p in WORKLOADS.iterdir() if p.is_dir() and (p / "__init__.py").exists()
)


def imported_packages(path: Path, package: str) -> set[str]:
    """The ``workloads.<name>`` packages a module imports (absolute or relative imports)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ["workloads", package][: max(0, 3 - node.level)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            names = (
                [module] if module != "workloads" else [f"workloads.{a.name}" for a in node.names]
            )
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, (ast.Attribute, ast.Name))
            and getattr(node.func, "attr", getattr(node.func, "id", ""))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        for name in names:
            parts = name.split(".")
            if len(parts) >= 2 and parts[0] == "workloads":
                out.add(parts[1])
    return out


def test_there_are_families_and_a_common_package():
    assert "common" in FAMILIES and {"mnist", "cifar", "imagenet"} <= set(FAMILIES)


@pytest.mark.parametrize("family", FAMILIES)
def test_family_imports_only_itself_and_common(family):
    allowed = {"common"} if family == "common" else {family, "common"}
    bad = {}
    for path in sorted((WORKLOADS / family).rglob("*.py")):
        others = imported_packages(path, family) - allowed
        if others:
            bad[str(path.relative_to(WORKLOADS.parent))] = sorted(others)
    assert not bad, f"cross-family imports (move shared code to workloads/common/): {bad}"


def test_the_checker_sees_every_import_form(tmp_path):
    src = tmp_path / "m.py"
    src.write_text(
        "import workloads.a.x\nfrom workloads.b import y\nfrom workloads import c\n"
        "from ..d import z\nfrom . import own\n"
        "def f():\n    import importlib\n    importlib.import_module('workloads.e.w')\n"
        "    __import__('workloads.f')\n"
    )
    assert imported_packages(src, "own") == {"a", "b", "c", "d", "e", "f", "own"}
