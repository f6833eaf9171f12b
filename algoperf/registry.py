"""The workload registry: every family declares itself in its own folder; this module finds them.

A **family** is a package (``workloads/<family>/`` here, or any installed package) whose
``spec.py`` defines ``FAMILY = registry.Family(...)``. The declaration is data: it imports
neither JAX nor PyTorch (implementations and functions are lazy ``"module:attr"`` strings), so
listing workloads stays cheap. Everything that needs to know about workloads reads it: this
registry (`get_config`, `get_workload`), ``algoperf workloads`` (its ``--params`` counts),
``algoperf datasets`` (datasets, prepare options, ``--fixture``), ``algoperf check`` (synthetic
batches) and the contract suite (upstream parameter counts). Adding a family edits nothing
outside its folder. A complete declaration::

    # workloads/toy/spec.py (framework-free)
    from algoperf.registry import Dataset, Family, PrepareOption
    from algoperf.spec import LossType
    from algoperf.workload_config import WorkloadConfig

    TOY = WorkloadConfig(name="toy", base_name="toy", family="toy", dataset="toy", ...)

    FAMILY = Family(
        name="toy",                                   # = the configs' `family`
        variants={c.name: c for c in (TOY, TOY.variant("toy_gelu", ...))},
        implementations={                             # one class per framework, all variants
            "jax": "workloads.toy.workload_jax:ToyWorkload",
            "pytorch": "workloads.toy.workload_pytorch:ToyWorkload",
        },
        datasets=(
            Dataset(
                name="toy",                           # = the configs' `dataset`
                prepare="workloads.toy.data:prepare_dataset",
                fixture="workloads.toy.data:write_fixture",
                options=(PrepareOption("--toy_archive", "archive", "the downloaded toy.tar"),),
                description="what it is and where it comes from",
            ),
        ),
        synthetic_batch="workloads.toy.data:synthetic_batch",
        param_counts={"toy": 1234, "toy_gelu": 1234}, # upstream's trainable parameter counts
                                                      # (or {"jax": ..., "pytorch": ...} per name)
    )

The functions the strings name:

- ``prepare(dataset: str, data_dir: Path, *, offline_fallback: bool = True, [progress: bool],
  **options) -> Path``: download/verify/convert into ``<data_dir>/<dataset>/`` and return it
  (raising `algoperf.data.DataError` with a one-line fix). ``options`` are the keywords of the
  dataset's `PrepareOption` s that the user gave.
- ``write_fixture(dataset: str, data_dir: Path) -> Mapping[str, Any]``: write a small dataset in
  the real on-disk format into ``<data_dir>/<dataset>/`` (through the real prepare path where
  there is one) and return the `WorkloadConfig` fields that fit it: split sizes
  (``num_train_examples`` ...) and optionally ``eval_batch_size`` (a cap). `write_fixture` here
  records them in ``<data_dir>/<dataset>/fixture.json``; ``get_config(name, data_dir=D)`` then
  returns the config sized for the fixture, marked in its ``notes`` (see `fixture_overrides`).
- ``synthetic_batch(config, global_batch_size: int, seed: int) -> dict[str, np.ndarray]``: a
  host batch of the workload's shapes (used by ``algoperf check`` and the contract tests).

**Discovery** (`families`): every sub-package of the ``workloads`` package whose ``spec`` module
defines ``FAMILY``, then every entry point of the group ``algoperf.workloads`` (installed
packages: ``[project.entry-points."algoperf.workloads"] toy = "toy_pkg.spec"``; the value names
a module defining ``FAMILY`` or the `Family` object itself). A family that fails to import is an
error, never skipped, and so is a ``spec`` module without ``FAMILY``. Families are listed by
(`Family.rank`, name).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.metadata
import importlib.util
import json
import pkgutil
import types
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal

from algoperf.workload_config import WorkloadConfig

FRAMEWORKS = ("jax", "pytorch")

# Entry-point group through which installed packages register families.
ENTRY_POINT_GROUP = "algoperf.workloads"

# Written by `write_fixture` into the dataset folder; read by `fixture_overrides`.
FIXTURE_FILE = "fixture.json"

# Config fields a fixture writer may set; `eval_batch_size` only caps the registered value.
FIXTURE_FIELDS = (
    "num_train_examples",
    "num_eval_train_examples",
    "num_validation_examples",
    "num_test_examples",
    "eval_batch_size",
)

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


class RegistrationError(RuntimeError):
    """A family declaration that is malformed or clashes with another one."""


@dataclasses.dataclass(frozen=True)
class PrepareOption:
    """One ``algoperf datasets prepare`` flag forwarded to a dataset's prepare function.

    Attributes:
        flag: the command-line flag, e.g. ``--imagenet_train_tar`` (prefix it with the dataset
            name: flags of all datasets share one parser, and a flag is refused unless its
            dataset is being prepared).
        keyword: the prepare function's keyword argument that receives the value.
        help: one line for ``--help``.
        kind: ``path`` / ``str`` / ``int`` (a value), ``bool`` (``--flag`` / ``--no-flag``), or
            ``const`` (a switch that passes `const`).
        const: the value passed for a ``const`` switch.
    """

    flag: str
    keyword: str
    help: str
    kind: Literal["path", "str", "int", "bool", "const"] = "path"
    const: Any = None

    def __post_init__(self) -> None:
        if not self.flag.startswith("--"):
            raise RegistrationError(f"prepare option {self.flag!r} must start with '--'")


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A dataset ``algoperf datasets`` can prepare (see the module docstring for signatures).

    Attributes:
        name: the dataset key (a config's ``dataset``; the folder under the data root).
        prepare: ``"module:function"`` of its prepare function.
        fixture: ``"module:function"`` of its fixture writer (None: none yet).
        options: extra prepare flags.
        exclusive: groups of option keywords of which at most one may be given.
        description: one line shown by ``algoperf datasets list``.
    """

    name: str
    prepare: str
    fixture: str | None = None
    options: tuple[PrepareOption, ...] = ()
    exclusive: tuple[tuple[str, ...], ...] = ()
    description: str = ""


@dataclasses.dataclass(frozen=True)
class Family:
    """A workload family's declaration (``FAMILY`` in its ``spec.py``).

    Attributes:
        name: the family name; every config in `variants` has ``family == name``.
        variants: workload name -> config, base workloads and variants, in listing order.
        implementations: framework -> ``"module:Class"``; the class is built as
            ``Class(config=config)`` for every variant. Empty: listed, not runnable yet.
        datasets: the datasets its configs read.
        synthetic_batch: ``"module:function"`` making host batches of the workload's shapes.
        param_counts: workload name -> upstream's trainable parameter count (the contract suite
            checks every implemented workload against it): one int, or a ``{framework: int}``
            mapping where upstream's two models differ (DeepSpeech's PyTorch LSTMs carry a
            second bias per gate). Read it with `param_count`.
        rank: listing position (families sort by (rank, name)).
    """

    name: str
    variants: Mapping[str, WorkloadConfig]
    implementations: Mapping[str, str] = dataclasses.field(default_factory=dict)
    datasets: tuple[Dataset, ...] = ()
    synthetic_batch: str | None = None
    param_counts: Mapping[str, int | Mapping[str, int]] = dataclasses.field(default_factory=dict)
    rank: int = 100

    def __post_init__(self) -> None:
        object.__setattr__(self, "variants", types.MappingProxyType(dict(self.variants)))
        object.__setattr__(
            self, "implementations", types.MappingProxyType(dict(self.implementations))
        )
        counts = {
            name: count if isinstance(count, int) else types.MappingProxyType(dict(count))
            for name, count in self.param_counts.items()
        }
        object.__setattr__(self, "param_counts", types.MappingProxyType(counts))
        object.__setattr__(self, "datasets", tuple(self.datasets))

    def param_count(self, name: str, framework: str) -> int | None:
        """Upstream's trainable parameter count of workload `name` in `framework` (None: not
        declared)."""
        count = self.param_counts.get(name)
        if count is None or isinstance(count, int):
            return count
        return count.get(framework)


def load_target(target: str) -> Any:
    """The object a lazy ``"module:attr"`` string names (imports the module)."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise RegistrationError(f"{target!r} is not a 'module:attr' string")
    return getattr(importlib.import_module(module_name), attr)


def _validate(family: Family, origin: str) -> Family:
    if not isinstance(family, Family):
        raise RegistrationError(f"{origin}: FAMILY is a {type(family).__name__}, not a Family")
    for name, config in family.variants.items():
        if config.name != name:
            raise RegistrationError(f"{origin}: variants key {name!r} holds {config.name!r}")
        if config.family != family.name:
            raise RegistrationError(
                f"{origin}: workload {name!r} declares family {config.family!r}, not {family.name!r}"
            )
    for fw, target in family.implementations.items():
        if fw not in FRAMEWORKS:
            raise RegistrationError(f"{origin}: unknown framework {fw!r} in implementations")
        if ":" not in target:
            raise RegistrationError(f"{origin}: implementation {target!r} is not 'module:Class'")
    for name, count in family.param_counts.items():
        if isinstance(count, int):
            continue
        unknown = sorted(set(count) - set(FRAMEWORKS))
        if unknown or not all(isinstance(v, int) for v in count.values()):
            raise RegistrationError(
                f"{origin}: param_counts[{name!r}] must be an int or a mapping of "
                f"{', '.join(FRAMEWORKS)} to ints, got {dict(count)!r}"
            )
    declared = {d.name for d in family.datasets}
    used = {c.dataset for c in family.variants.values()}
    if family.datasets and not used <= declared:
        raise RegistrationError(
            f"{origin}: datasets {', '.join(sorted(used - declared))} used by its workloads are "
            "not declared in FAMILY.datasets"
        )
    return family


def _from_module(module: types.ModuleType, origin: str) -> Family:
    family = getattr(module, "FAMILY", None)
    if family is None:
        raise RegistrationError(
            f"{origin} defines no FAMILY; declare one as the docstring of algoperf.registry shows"
        )
    return _validate(family, origin)


def _builtin_families() -> list[Family]:
    import workloads

    found = []
    for info in sorted(pkgutil.iter_modules(workloads.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        spec_name = f"workloads.{info.name}.spec"
        if importlib.util.find_spec(spec_name) is None:
            continue  # e.g. workloads/common: shared code, no family
        found.append(_from_module(importlib.import_module(spec_name), spec_name))
    return found


def _entry_point_families() -> list[Family]:
    found = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        origin = f"entry point {ep.name} = {ep.value} ({ENTRY_POINT_GROUP})"
        try:
            obj = ep.load()
        except Exception as e:
            raise RegistrationError(f"{origin} cannot be imported: {type(e).__name__}: {e}") from e
        found.append(
            _validate(obj, origin) if isinstance(obj, Family) else _from_module(obj, origin)
        )
    return found


@cache
def families() -> dict[str, Family]:
    """Every registered family by name, in listing order (see the module docstring)."""
    by_name: dict[str, Family] = {}
    workloads_seen: dict[str, str] = {}
    datasets_seen: dict[str, str] = {}
    flags_seen: dict[str, str] = {}
    for family in _builtin_families() + _entry_point_families():
        if family.name in by_name:
            raise RegistrationError(f"family {family.name!r} is registered twice")
        by_name[family.name] = family
        for name in family.variants:
            if name in workloads_seen:
                raise RegistrationError(
                    f"workload {name!r} registered by families {workloads_seen[name]!r} and "
                    f"{family.name!r}"
                )
            workloads_seen[name] = family.name
        for dataset in family.datasets:
            if dataset.name in datasets_seen:
                raise RegistrationError(
                    f"dataset {dataset.name!r} registered by families "
                    f"{datasets_seen[dataset.name]!r} and {family.name!r}"
                )
            datasets_seen[dataset.name] = family.name
            for option in dataset.options:
                if flags_seen.setdefault(option.flag, dataset.name) != dataset.name:
                    raise RegistrationError(
                        f"prepare option {option.flag} declared by datasets "
                        f"{flags_seen[option.flag]!r} and {dataset.name!r}"
                    )
    return dict(sorted(by_name.items(), key=lambda kv: (kv[1].rank, kv[0])))


def clear_cache() -> None:
    """Forget discovered families (after installing a package or changing ``sys.path``)."""
    families.cache_clear()
    all_configs.cache_clear()


def __getattr__(name: str) -> Any:
    # `FAMILIES`: family names in listing order, discovered on first use (not at import, since
    # the spec modules import this one).
    if name == "FAMILIES":
        return tuple(families())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_family(name: str) -> Family:
    """The family declaration of workload `name`."""
    return families()[get_config(name).family]


@cache
def all_configs() -> dict[str, WorkloadConfig]:
    """Every registered workload and variant by name, in listing order."""
    return {name: c for f in families().values() for name, c in f.variants.items()}


def workload_names() -> list[str]:
    """Registered workload names."""
    return list(all_configs())


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=3)
    return f" Did you mean {', '.join(close)}?" if close else ""


def datasets() -> dict[str, Dataset]:
    """Every dataset a family declares, by name, in listing order."""
    return {d.name: d for f in families().values() for d in f.datasets}


def get_dataset(name: str) -> Dataset:
    """The declaration of dataset `name`; `algoperf.data.UnknownDatasetError` otherwise."""
    table = datasets()
    if name not in table:
        from algoperf.data import UnknownDatasetError

        raise UnknownDatasetError(
            f"unknown dataset {name!r}.{_did_you_mean(name, table)} Known datasets: "
            f"{', '.join(table)}"
        )
    return table[name]


def get_config(name: str, data_dir: str | Path | None = None) -> WorkloadConfig:
    """The config of a registered workload; `UnknownWorkloadError` with suggestions otherwise.

    With `data_dir` holding a fixture of the workload's dataset (written by ``algoperf datasets
    prepare <dataset> --fixture``), the config is sized for that fixture (`fixture_overrides`).
    """
    configs = all_configs()
    if name not in configs:
        raise UnknownWorkloadError(
            f"unknown workload {name!r}.{_did_you_mean(name, configs)} Run `algoperf workloads` "
            "to list all workloads."
        )
    config = configs[name]
    if data_dir is not None:
        config = apply_fixture(config, data_dir)
    return config


def implemented_frameworks(name: str) -> tuple[str, ...]:
    """Frameworks this harness can run `name` in."""
    return tuple(fw for fw in FRAMEWORKS if fw in get_family(name).implementations)


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
    target = get_family(name).implementations.get(framework)
    if target is None:
        available = implemented_frameworks(name)
        raise NotImplementedWorkloadError(
            f"workload {name!r} is registered but has no {framework} implementation yet"
            + (f" (available: {', '.join(available)})" if available else "")
        )
    return load_target(target)


def get_workload(name: str, framework: str, data_dir: str | Path | None = None, **kwargs: Any):
    """Instantiate workload `name` for `framework`; returns an `algoperf.spec.Workload`.

    `data_dir`: size the config for a fixture there, as `get_config` does.
    """
    return workload_class(name, framework)(config=get_config(name, data_dir), **kwargs)


def synthetic_batch_fn(name: str) -> Callable[..., dict[str, Any]]:
    """The family's ``synthetic_batch(config, global_batch_size, seed)`` function."""
    family = get_family(name)
    if family.synthetic_batch is None:
        raise RegistrationError(f"family {family.name!r} declares no synthetic_batch")
    return load_target(family.synthetic_batch)


# Fixtures ----------------------------------------------------------------------------------------


def write_fixture(dataset: str, data_dir: str | Path) -> Path:
    """Write dataset `dataset`'s fixture under `data_dir` and record its sizes; return the folder.

    Raises `algoperf.data.DataError` when the dataset declares no fixture writer.
    """
    from algoperf.data import DataError

    decl = get_dataset(dataset)
    if decl.fixture is None:
        raise DataError(f"dataset {dataset!r} has no fixture writer yet")
    root = Path(data_dir).expanduser()
    folder = root / dataset
    if fixture_overrides(dataset, root) is None and folder.is_dir() and any(folder.iterdir()):
        raise DataError(
            f"{folder} already holds data that is not a fixture; pass another --data_dir "
            "(a fixture never overwrites a prepared dataset)"
        )
    overrides = dict(load_target(decl.fixture)(dataset, root))
    unknown = set(overrides) - set(FIXTURE_FIELDS)
    if unknown:
        raise RegistrationError(
            f"{decl.fixture} returned fields {sorted(unknown)}; allowed: {', '.join(FIXTURE_FIELDS)}"
        )
    folder.mkdir(parents=True, exist_ok=True)
    record = {"dataset": dataset, "writer": decl.fixture, "config": overrides}
    tmp = folder / f".{FIXTURE_FILE}.tmp"
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(folder / FIXTURE_FILE)
    return folder


def _fixture_record(dataset: str, data_dir: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """(folder, config fields) of a fixture of `dataset` under `data_dir`; None: real data."""
    root = Path(data_dir).expanduser()
    for folder in (root / dataset, root):
        path = folder / FIXTURE_FILE
        if path.is_file():
            try:
                record = json.loads(path.read_text())
                if record["dataset"] != dataset:
                    continue
                return folder, dict(record["config"])
            except (ValueError, KeyError, TypeError) as e:
                from algoperf.data import DatasetError

                raise DatasetError(
                    f"{path} is not a fixture record ({e}); delete it and rerun `algoperf "
                    f"datasets prepare {dataset} --fixture --data_dir {root}`"
                ) from None
    return None


def fixture_overrides(dataset: str, data_dir: str | Path) -> dict[str, Any] | None:
    """The config fields recorded for a fixture of `dataset` under `data_dir`; None: real data.

    Looks in ``<data_dir>/<dataset>/`` and in `data_dir` itself (a dataset folder passed as the
    data root).
    """
    found = _fixture_record(dataset, data_dir)
    return None if found is None else found[1]


def apply_fixture(config: WorkloadConfig, data_dir: str | Path) -> WorkloadConfig:
    """`config` sized for a fixture of its dataset under `data_dir` (unchanged for real data).

    The returned config keeps the name, model and targets, takes the fixture's split sizes, caps
    the eval batch size, and says ``fixture data`` in its ``notes`` (written into run records),
    so a run on fixture data cannot pass for a benchmark run.
    """
    found = _fixture_record(config.dataset, data_dir)
    if found is None:
        return config
    folder, overrides = found
    changes = {k: v for k, v in overrides.items() if k != "eval_batch_size"}
    if "eval_batch_size" in overrides:
        cap = int(overrides["eval_batch_size"])
        changes["eval_batch_size"] = min(config.eval_batch_size, cap)
        changes["eval_batch_size_overrides"] = {
            fw: min(size, cap) for fw, size in config.eval_batch_size_overrides.items()
        }
    note = f"fixture data in {folder} (not a benchmark run)"
    changes["notes"] = f"{config.notes}; {note}" if config.notes else note
    return dataclasses.replace(config, **changes)
