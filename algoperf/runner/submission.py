"""Loading and checking a submission module (upstream AlgoPerf format).

A submission is a Python file defining `get_batch_size`, `init_optimizer_state`,
`update_params` and `data_selection` (and optionally `prepare_for_eval`, `get_eval_batch_size`).

**Import as upstream imports it.** Upstream's runner turns ``--submission_path`` into a module
path relative to the working directory (``a/b/submission.py`` -> ``a.b.submission``) and imports
that, so a submission can use relative imports of sibling modules (``from .utils import x``),
absolute imports rooted at the repository it lives in (``submissions.self_tuning.x.muon``) and
data files next to it (``__file__``). We do the same, and in addition:

* the submission's own directory is importable (as when Python runs a file as a script), for
  vendored packages whose modules import each other top-level (``import shampoo_types``);
* a top-level package of the working directory wins over an installed one of the same name: our
  own ``submissions`` package of baselines never shadows a submissions repository's
  ``submissions/`` (theirs is searched first, ours stays reachable for names theirs lacks);
* a module inside the submission's folder can import a top-level sibling of its own folder
  (``from shampoo_types import x``), as a script can; looked up after everything else;
* package paths of earlier layouts of mlcommons/submissions_algorithms that published
  submissions still import (``submissions.submissions_algorithms_v0_5.AlgoPerf_Team_21...``,
  ``submissions_algorithms.leaderboard...``) resolve to where those folders are now
  (`MOVED_PACKAGES`), so they run unmodified from today's checkout (a recorded deviation:
  upstream's runner would fail to import them from there).

A path outside the working directory (or one whose folders are not Python identifiers) cannot be
imported that way; it is loaded from its file instead, which serves self-contained submissions,
and a relative or package import inside it fails with a one-line error saying to run from the
folder that holds its repository. How the module was imported is in the run record
(`import_record`). Problems are reported as one-line `SubmissionError`s naming the file.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from algoperf import spec
from algoperf.module_alias import ExistingModuleLoader

# Parameter names the runner passes by keyword (update_params, prepare_for_eval) must match
# exactly; the positional ones are checked for count.
_KEYWORD_CALLED = {
    "update_params": [
        "workload",
        "current_param_container",
        "current_params_types",
        "model_state",
        "hyperparameters",
        "batch",
        "loss_type",
        "optimizer_state",
        "eval_results",
        "global_step",
        "rng",
    ],
    "prepare_for_eval": [
        "workload",
        "current_param_container",
        "current_params_types",
        "model_state",
        "hyperparameters",
        "loss_type",
        "optimizer_state",
        "eval_results",
        "global_step",
        "rng",
    ],
}
_POSITIONAL_ARITY = {"get_batch_size": 1, "init_optimizer_state": 5, "data_selection": 8}
_IMPORT_RECORD = "__algoperf_import__"
# Old package path -> folder in today's mlcommons/submissions_algorithms (git history of that
# repository: the v0.5 leaderboard repository was cloned into upstream's `submissions/`; the
# v0.6 `leaderboard/` folder became `previous_leaderboards/algoperf_v06/submissions/`).
MOVED_PACKAGES = {
    "submissions.submissions_algorithms_v0_5.AlgoPerf_Team_16.external_tuning.caspr_adaptive": (
        "previous_leaderboards/algoperf_v05/submissions/external_tuning/caspr_adaptive"
    ),
    "submissions.submissions_algorithms_v0_5.AlgoPerf_Team_21.external_tuning.shampoo_submission": (
        "previous_leaderboards/algoperf_v05/submissions/external_tuning/shampoo_submission"
    ),
    "submissions_algorithms.leaderboard.external_tuning.shampoo_submission": (
        "previous_leaderboards/algoperf_v06/submissions/external_tuning/shampoo"
    ),
}


class SubmissionError(ValueError):
    """A submission that cannot be used, with a one-line reason and fix."""


def module_path(path: Path, root: Path) -> str | None:
    """Upstream's module name for `path` relative to `root` (None: outside it, or not dotted)."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        return None
    parts = [*rel.parts[:-1], rel.stem]
    if not parts or not all(p.isidentifier() for p in parts):
        return None
    return ".".join(parts)


def load_submission(path: str | Path, cwd: str | Path | None = None) -> ModuleType:
    """Import the submission at `path` as upstream does and check its functions.

    `cwd` (default: the working directory) is the root module paths are taken relative to.
    Raises `SubmissionError` with a one-line reason and fix.
    """
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise SubmissionError(f"{path}: submission file not found; pass --submission_path FILE.py")
    if path.suffix != ".py":
        raise SubmissionError(f"{path}: a submission must be a .py file")
    root = Path.cwd().resolve() if cwd is None else Path(cwd).resolve()
    name = module_path(path, root)
    _make_importable(str(path.parent))
    _OwnFolderFinder.install_for(path.parent)
    moved = _MovedPackageFinder.install_for(path)
    if name is not None:
        module = _import_module_path(name, path, root)
        record = {"mode": "module_path", "module": name, "root": str(root)}
    else:
        module = _import_file(path, root)
        record = {"mode": "file", "module": module.__name__, "root": None}
    record["moved_packages"] = moved
    setattr(module, _IMPORT_RECORD, record)
    problems = check_submission(module)
    if problems:
        sys.modules.pop(module.__name__, None)
        raise SubmissionError(f"{path}: {problems[0]}")
    return module


def import_record(module: ModuleType) -> dict[str, Any]:
    """How `load_submission` imported `module` (for the run record)."""
    return dict(getattr(module, _IMPORT_RECORD, {"mode": "unknown"}))


def _make_importable(folder: str) -> None:
    if folder not in sys.path:
        sys.path.insert(0, folder)


def _prefer_local_package(top: str, root: Path) -> None:
    """Search `root/top` first for `top`'s submodules, even where an installed `top` exists."""
    local = root / top
    if not local.is_dir():
        return
    try:
        package = importlib.import_module(top)
    except ImportError:
        return
    paths = getattr(package, "__path__", None)
    if isinstance(paths, list) and str(local) not in paths:
        paths.insert(0, str(local))


def _import_module_path(name: str, path: Path, root: Path) -> ModuleType:
    _make_importable(str(root))
    importlib.invalidate_caches()
    existing = sys.modules.get(name)
    if existing is not None:
        if _same_file(existing, path):
            return existing
        del sys.modules[name]  # another file of the same module path (another root)
    top = name.split(".")[0]
    _prefer_local_package(top, root)
    try:
        module = importlib.import_module(name)
    except Exception as e:
        sys.modules.pop(name, None)
        raise SubmissionError(
            f"{path}: importing the submission as module {name!r} (relative to {root}) failed: "
            f"{type(e).__name__}: {_one_line(e)}"
        ) from e
    if not _same_file(module, path):
        sys.modules.pop(name, None)
        raise SubmissionError(
            f"{path}: module path {name!r} resolves to {getattr(module, '__file__', None)}, not "
            f"the submission; rename the installed package {top!r} shadows or run from elsewhere"
        )
    return module


def _import_file(path: Path, root: Path) -> ModuleType:
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    module_name = f"algoperf_submission_{path.stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec_ = importlib.util.spec_from_file_location(module_name, path)
    if spec_ is None or spec_.loader is None:
        raise SubmissionError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec_)
    sys.modules[module_name] = module
    try:
        spec_.loader.exec_module(module)
    except Exception as e:
        del sys.modules[module_name]
        hint = ""
        if isinstance(e, ImportError):
            hint = (
                f" (the submission is outside the working directory {root}, or its path is not "
                "a dotted module name, so it was loaded from its file: relative and "
                "repository-rooted imports need upstream's import; cd to the folder holding its "
                "repository and pass --submission_path relative to it)"
            )
        raise SubmissionError(
            f"{path}: importing the submission failed: {type(e).__name__}: {_one_line(e)}{hint}"
        ) from e
    return module


def _same_file(module: ModuleType, path: Path) -> bool:
    file = getattr(module, "__file__", None)
    return file is not None and Path(file).resolve() == path


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


class _MovedPackageFinder(importlib.abc.MetaPathFinder):
    """Package paths a published submission imports from an earlier layout of its repository.

    `MOVED_PACKAGES` maps each old dotted name to its folder in today's checkout; the folder is
    looked for under every ancestor of the submission file (whatever the working directory).
    Names the normal import system can resolve are left to it.
    """

    def __init__(self) -> None:
        self.targets: dict[str, Path] = {}

    @classmethod
    def install_for(cls, path: Path) -> dict[str, str]:
        """Register the old names whose folders exist around `path`; return them (for the record)."""
        found: dict[str, Path] = {}
        for old, rel in MOVED_PACKAGES.items():
            for parent in path.parents:
                if (parent / rel).is_dir():
                    found[old] = parent / rel
                    break
        if found:
            finder = next((f for f in sys.meta_path if isinstance(f, cls)), None)
            if finder is None:
                finder = cls()
                sys.meta_path.insert(0, finder)
            finder.targets.update(found)
        return {k: str(v) for k, v in found.items()}

    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        folder = self.targets.get(fullname)
        if folder is not None:
            init = folder / "__init__.py"
            if init.is_file():
                return importlib.util.spec_from_file_location(
                    fullname, init, submodule_search_locations=[str(folder)]
                )
            found = importlib.machinery.ModuleSpec(fullname, None, is_package=True)
            found.submodule_search_locations = [str(folder)]
            return found
        if not any(old.startswith(fullname + ".") for old in self.targets):
            return None
        for finder in sys.meta_path:  # an intermediate name: only where nothing else has it
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            if finder.find_spec(fullname, path, target) is not None:
                return None
        empty = importlib.machinery.ModuleSpec(fullname, None, is_package=True)
        empty.submodule_search_locations = []
        return empty


class _OwnFolderFinder(importlib.abc.MetaPathFinder):
    """Imports of modules inside a submission's folder: one file, one module; own-folder fallback.

    Placed first on ``sys.meta_path`` it makes a file of the submission's folder that is already
    imported under one name the same module object under any other name it is reached by
    (``shampoo_types`` and ``optimizers.distributed_shampoo.shampoo_types``), so classes and
    ``isinstance`` checks agree as they would if Python knew one name. Placed last (`fallback`),
    it resolves a top-level import made by a module of the folder in the importer's own folder,
    as when Python runs a file as a script: vendored packages written that way (``from
    shampoo_types import ...`` next to ``shampoo_types.py``) need it for every module, not only
    the submission. Being last, the fallback never shadows an installed name.
    """

    roots: ClassVar[set[Path]] = set()

    def __init__(self, fallback: bool) -> None:
        self.fallback = fallback

    @classmethod
    def install_for(cls, folder: Path) -> None:
        cls.roots.add(folder)
        if not any(isinstance(f, cls) for f in sys.meta_path):
            sys.meta_path.insert(0, cls(fallback=False))
            sys.meta_path.append(cls(fallback=True))

    @classmethod
    def _inside(cls, folder: Path) -> bool:
        return any(folder == root or root in folder.parents for root in cls.roots)

    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if self.fallback:
            found = self._own_folder_spec(fullname, path)
        else:
            found = importlib.machinery.PathFinder.find_spec(fullname, path)
        if found is None or not found.has_location or not found.origin:
            return None
        origin = Path(found.origin).resolve()
        if not self._inside(origin.parent):
            return None
        for module in list(sys.modules.values()):
            if getattr(module, "__name__", fullname) != fullname and _same_file(module, origin):
                return importlib.machinery.ModuleSpec(
                    fullname, ExistingModuleLoader(module), is_package=hasattr(module, "__path__")
                )
        return found if self.fallback else None

    def _own_folder_spec(self, fullname: str, path: Any) -> importlib.machinery.ModuleSpec | None:
        if path is not None or "." in fullname:
            return None
        frame = sys._getframe(2)
        while frame is not None and frame.f_code.co_filename.startswith("<frozen importlib"):
            frame = frame.f_back
        importer = frame.f_globals.get("__file__") if frame is not None else None
        if not importer:
            return None
        folder = Path(importer).resolve().parent
        if not self._inside(folder):
            return None
        return importlib.machinery.PathFinder.find_spec(fullname, [str(folder)])


def check_submission(module: ModuleType) -> list[str]:
    """Every problem with the submission's functions (empty when it is usable)."""
    problems = []
    for name in spec.REQUIRED_SUBMISSION_FUNCTIONS:
        fn = getattr(module, name, None)
        if fn is None:
            problems.append(
                f"missing required function `{name}`; define it (see submissions/template)"
            )
        elif not callable(fn):
            problems.append(f"`{name}` is not a function")
    for name, expected in _KEYWORD_CALLED.items():
        fn = getattr(module, name, None)
        if fn is None or not callable(fn):
            continue
        params = inspect.signature(fn).parameters
        if any(p.kind == p.VAR_KEYWORD for p in params.values()):
            continue
        missing = [p for p in expected if p not in params]
        if missing:
            problems.append(
                f"`{name}` lacks parameter(s) {', '.join(missing)}; the runner passes them by "
                "keyword with upstream's names"
            )
    for name, arity in _POSITIONAL_ARITY.items():
        fn = getattr(module, name, None)
        if fn is None or not callable(fn):
            continue
        try:
            inspect.signature(fn).bind(*([None] * arity))
        except TypeError:
            problems.append(f"`{name}` must accept {arity} positional argument(s) as upstream")
    return problems


def global_batch_size(
    module: ModuleType, workload_name: str, base_name: str, num_devices: int
) -> int:
    """`get_batch_size(name)`, retried with the base workload's name on ValueError or KeyError.

    Upstream retries on ValueError only; its own development submissions index a dict and raise
    KeyError for a workload they do not list (``fashion_mnist``), so KeyError is retried too.
    """
    try:
        size = module.get_batch_size(workload_name)
    except (ValueError, KeyError):
        size = module.get_batch_size(base_name)
    return _check_divisible(int(size), num_devices, "get_batch_size")


def eval_batch_size(module: ModuleType, workload: Any, num_devices: int) -> int:
    """Global eval batch size: the submission's `get_eval_batch_size` if defined, else the workload's."""
    fn = getattr(module, "get_eval_batch_size", None)
    size = int(fn(workload.config.name)) if fn is not None else int(workload.eval_batch_size)
    return _check_divisible(size, num_devices, "eval batch size")


def _check_divisible(size: int, num_devices: int, what: str) -> int:
    if size <= 0 or size % num_devices:
        raise SubmissionError(
            f"{what} returned {size}, which must be a positive multiple of the {num_devices} device(s)"
        )
    return size
