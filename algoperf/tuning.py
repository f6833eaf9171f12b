"""External-tuning search spaces: parsing, Halton sampling, trial selection and `hparams.json`.

A submission's ``tuning_search_space.json`` comes in one of the two upstream formats:

* **Dict form**, one entry per hyperparameter, in Halton-dimension order::

      {"learning_rate": {"min": 1e-4, "max": 1e-2, "scaling": "log"},
       "warmup_factor": {"min": 0.0, "max": 0.1, "scaling": "linear"},
       "dropout_rate": {"feasible_points": [0.0, 0.1]}}

  ``log`` maps a Halton coordinate u in [0, 1) to ``min * exp(u * ln(max / min))``, ``linear`` to
  ``u * (max - min) + min`` and ``feasible_points`` to ``points[floor(u * len(points))]``.
* **List form**, explicit points used verbatim in file order::

      [{"learning_rate": 0.001, "dropout_rate": 0.0}, {"learning_rate": 0.002, ...}]

`generate_search` returns namedtuples of class name ``Hyperparameters`` whose fields are the keys in
file order (the first point's order for the list form), exactly what upstream submissions receive.

Trial order (a deliberate difference from upstream): upstream generates the same Halton points
(`algoperf.halton`) and then shuffles their order with the unseeded global NumPy RNG, so which
point trial k receives changes from process to process. Here trial k (1-based, directory
``trial_k``) always receives Halton point k-1 of the unshuffled sequence. The *set* of points for a
given ``num_trials`` is upstream's; the assignment is reproducible, and a point does not depend on
``num_trials``. That makes ``--hparam_start_index/--hparam_end_index`` runs in separate processes
(the official one-job-per-trial setup) get distinct points, where upstream could hand two jobs the
same point. For the list form the first ``min(num_trials, len(points))`` points are used, as
upstream does.

Validation is stricter than upstream, which fails late with a ``KeyError`` or silently treats an
unknown scaling as linear: every problem raises `SearchSpaceError` with one line naming the file and
the fix. Every search space in the upstream repositories passes it.
"""

from __future__ import annotations

import collections
import functools
import itertools
import json
import keyword
import logging
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from algoperf import halton
from algoperf.spec import Hyperparameters

logger = logging.getLogger(__name__)

HPARAMS_FILENAME = "hparams.json"

# The values of `Dimension.scaling`; "discrete" marks a feasible_points set.
LOG, LINEAR, DISCRETE = "log", "linear", "discrete"
_CONTINUOUS_KEYS = ("min", "max", "scaling")
_DISCRETE_KEYS = ("feasible_points",)


class SearchSpaceError(ValueError):
    """A search-space file or object is malformed; the message says where and how to fix it."""


class HparamsFileError(ValueError):
    """An existing ``hparams.json`` cannot be reused; the message says which file and what to do."""


@dataclass(frozen=True)
class Dimension:
    """One dict-form hyperparameter: a continuous range (log/linear) or a discrete point set."""

    name: str
    scaling: str  # LOG, LINEAR or DISCRETE
    min: float | None = None
    max: float | None = None
    feasible_points: tuple[Any, ...] = ()

    def value(self, u: float) -> Any:
        """Map a Halton coordinate u in [0, 1) to this dimension, with upstream's arithmetic."""
        if self.scaling == DISCRETE:
            index = math.floor(u * len(self.feasible_points))
            return self.feasible_points[min(index, len(self.feasible_points) - 1)]
        # Same expressions and operand order as upstream so that values are bit-identical.
        if self.scaling == LOG:
            return self.min * math.exp(u * math.log(self.max / self.min))
        return u * (self.max - self.min) + self.min

    def to_json(self) -> dict[str, Any]:
        """This dimension in the upstream dict-form JSON layout."""
        if self.scaling == DISCRETE:
            return {"feasible_points": list(self.feasible_points)}
        return {"min": self.min, "max": self.max, "scaling": self.scaling}


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space.

    Attributes:
        names: hyperparameter names, in file order (= namedtuple field order).
        dimensions: the dict form's dimensions (Halton dimension d = dimensions[d]); empty for the
            list form.
        points: the list form's explicit points (each a dict keyed by `names`); empty for the dict
            form.
        source: the file it was read from, or a description, used in error messages.
    """

    names: tuple[str, ...]
    dimensions: tuple[Dimension, ...] = ()
    points: tuple[Mapping[str, Any], ...] = ()
    source: str = "<search space>"

    @property
    def is_list(self) -> bool:
        """True for an explicit list of points, False for a Halton-sampled dict of dimensions."""
        return bool(self.points)

    def to_json(self) -> dict[str, Any] | list[dict[str, Any]]:
        """The search space as upstream-format JSON data (to record it beside the logs)."""
        if self.is_list:
            return [{name: point[name] for name in self.names} for point in self.points]
        return {dim.name: dim.to_json() for dim in self.dimensions}


def _fail(source: str, problem: str, fix: str) -> SearchSpaceError:
    return SearchSpaceError(f"search space {source}: {problem}; {fix}")


def _check_name(name: Any, source: str) -> str:
    """Hyperparameter names become namedtuple fields, so they must be valid field names."""
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise _fail(
            source,
            f"hyperparameter name {name!r} is not a valid Python identifier",
            "use names like 'learning_rate' (letters, digits, underscores, not a keyword)",
        )
    if name.startswith("_"):
        raise _fail(
            source,
            f"hyperparameter name {name!r} starts with an underscore",
            "rename it without the leading underscore (namedtuple fields cannot start with '_')",
        )
    return name


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _parse_dimension(name: str, spec: Any, source: str) -> Dimension:
    where = f"hyperparameter {name!r}"
    if not isinstance(spec, Mapping):
        raise _fail(
            source,
            f"{where} is {spec!r}, not an object",
            f'write {{"feasible_points": [{json.dumps(spec)}]}} for a fixed value or '
            '{"min": ..., "max": ..., "scaling": "log"|"linear"} for a range',
        )
    keys = set(spec)
    unknown = sorted(keys - set(_CONTINUOUS_KEYS) - set(_DISCRETE_KEYS), key=str)
    if unknown:
        raise _fail(
            source,
            f"{where} has unknown key(s) {', '.join(map(repr, unknown))}",
            "allowed keys are 'min', 'max', 'scaling' (a range) or 'feasible_points' (a set)",
        )
    if "feasible_points" in keys:
        if keys != {"feasible_points"}:
            raise _fail(
                source,
                f"{where} mixes 'feasible_points' with 'min'/'max'/'scaling'",
                "keep either 'feasible_points' or the 'min'/'max'/'scaling' range, not both",
            )
        points = spec["feasible_points"]
        if not isinstance(points, list) or not points:
            raise _fail(
                source,
                f"{where} has feasible_points={points!r}",
                "give a non-empty JSON list of values, e.g. [0.0, 0.1]",
            )
        return Dimension(name, DISCRETE, feasible_points=tuple(points))
    missing = [key for key in _CONTINUOUS_KEYS if key not in keys]
    if missing:
        raise _fail(
            source,
            f"{where} lacks {', '.join(map(repr, missing))}",
            "a range needs 'min', 'max' and 'scaling' ('log' or 'linear')",
        )
    low, high, scaling = spec["min"], spec["max"], spec["scaling"]
    for key, value in (("min", low), ("max", high)):
        if not _is_number(value) or not math.isfinite(value):
            raise _fail(
                source,
                f"{where} has {key}={value!r}",
                f"'{key}' must be a finite JSON number",
            )
    if scaling not in (LOG, LINEAR):
        raise _fail(
            source,
            f"{where} has scaling={scaling!r}",
            '\'scaling\' must be "log" or "linear"',
        )
    if low > high:
        raise _fail(
            source,
            f"{where} has min={low!r} > max={high!r}",
            "swap them so that min <= max",
        )
    if scaling == LOG and low <= 0:
        raise _fail(
            source,
            f"{where} has log scaling with min={low!r}",
            'log scaling needs 0 < min <= max; use a positive min or "linear" scaling',
        )
    return Dimension(name, scaling, min=low, max=high)


def _parse_points(data: list[Any], source: str) -> SearchSpace:
    first = data[0]
    if not isinstance(first, Mapping) or not first:
        raise _fail(
            source,
            f"list entry 0 is {first!r}",
            'each list entry must be a non-empty object like {"learning_rate": 0.001}',
        )
    names = tuple(_check_name(name, source) for name in first)
    expected = set(names)
    for index, point in enumerate(data):
        if not isinstance(point, Mapping):
            raise _fail(
                source,
                f"list entry {index} is {point!r}",
                'each list entry must be an object like {"learning_rate": 0.001}',
            )
        if set(point) != expected:
            missing = sorted(expected - set(point))
            extra = sorted(set(point) - expected, key=str)
            raise _fail(
                source,
                f"list entry {index} has different keys from entry 0 "
                f"(missing {missing or 'none'}, extra {extra or 'none'})",
                "give every point the same hyperparameter names",
            )
    return SearchSpace(names=names, points=tuple(dict(point) for point in data), source=source)


def parse_search_space(data: Any, source: str = "<search space>") -> SearchSpace:
    """Validate already-loaded JSON data (dict or list form) into a `SearchSpace`.

    Raises:
        SearchSpaceError: the data is malformed; the message names `source` and the fix.
    """
    if isinstance(data, SearchSpace):
        return data
    if isinstance(data, Mapping):
        if not data:
            raise _fail(
                source,
                "the object is empty",
                'give at least one hyperparameter, e.g. {"learning_rate": '
                '{"min": 1e-4, "max": 1e-2, "scaling": "log"}}',
            )
        dims = tuple(
            _parse_dimension(_check_name(name, source), spec, source) for name, spec in data.items()
        )
        return SearchSpace(names=tuple(d.name for d in dims), dimensions=dims, source=source)
    if isinstance(data, list):
        if not data:
            raise _fail(
                source,
                "the list is empty",
                "give at least one point or use the dict form with ranges",
            )
        return _parse_points(data, source)
    raise _fail(
        source,
        f"the top level is a JSON {type(data).__name__}",
        "use an object of hyperparameter ranges or a list of explicit points",
    )


def _reject_duplicate_keys(source: str) -> Any:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise _fail(source, f"key {key!r} appears twice in one object", "keep one of them")
            seen[key] = value
        return seen

    return hook


def _reject_constant(source: str) -> Any:
    def hook(name: str) -> float:
        raise _fail(source, f"it contains {name}, which is not valid JSON", "use a finite number")

    return hook


def load_search_space(path: str | os.PathLike[str]) -> SearchSpace:
    """Read and validate a ``tuning_search_space.json`` file (dict or list form).

    Raises:
        SearchSpaceError: the file is missing, unreadable, not JSON or malformed; the one-line
            message names the file and the fix.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _fail(
            source, "the file does not exist", "check the --tuning_search_space path"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise _fail(
            source, f"it cannot be read ({error})", "pass a readable UTF-8 JSON file"
        ) from None
    if not text.strip():
        raise _fail(source, "the file is empty", "write the search space as a JSON object or list")
    try:
        data = json.loads(
            text,
            object_pairs_hook=_reject_duplicate_keys(source),
            parse_constant=_reject_constant(source),
        )
    except json.JSONDecodeError as error:
        raise _fail(
            source,
            f"it is not valid JSON ({error.msg} at line {error.lineno} column {error.colno})",
            "fix the JSON syntax",
        ) from None
    return parse_search_space(data, source)


@functools.lru_cache(maxsize=64)
def hyperparameters_class(names: tuple[str, ...]) -> type:
    """The namedtuple class named ``Hyperparameters`` with these fields (cached per field tuple)."""
    return collections.namedtuple("Hyperparameters", names)


def generate_search(
    search_space: SearchSpace | Mapping[str, Any] | list[Any], num_trials: int
) -> list[Hyperparameters]:
    """The hyperparameter points of `num_trials` tuning trials, trial k+1 getting element k.

    Args:
        search_space: a `SearchSpace`, or upstream-format JSON data (validated here).
        num_trials: ``--num_tuning_trials``; >= 1.

    Returns:
        ``Hyperparameters`` namedtuples: for the dict form, `num_trials` Halton points (upstream's
        values, unshuffled order, see the module docstring); for the list form, the first
        ``min(num_trials, len(points))`` points verbatim.
    """
    if isinstance(num_trials, bool) or not isinstance(num_trials, int) or num_trials < 1:
        raise ValueError(f"num_trials must be an integer >= 1, got {num_trials!r}")
    space = parse_search_space(search_space)
    cls = hyperparameters_class(space.names)
    if space.is_list:
        if num_trials != len(space.points):
            logger.info(
                "num_tuning_trials is %d but %s lists %d point(s); using %d trial(s).",
                num_trials,
                space.source,
                len(space.points),
                min(num_trials, len(space.points)),
            )
        return [cls(**point) for point in space.points[:num_trials]]
    coordinates = halton.sequence(num_trials, len(space.dimensions))
    return [
        cls(*(dim.value(u) for dim, u in zip(space.dimensions, point, strict=True)))
        for point in coordinates
    ]


def select_trials(
    points: Sequence[Hyperparameters],
    start_index: int | None = None,
    end_index: int | None = None,
) -> list[tuple[int, Hyperparameters]]:
    """The ``(index, hparams)`` pairs a process runs: ``islice(enumerate(points), start, end)``.

    Indices are 0-based like upstream's ``--hparam_start_index/--hparam_end_index`` (None = open);
    the trial directory of index i is ``trial_{i+1}``.

    Raises:
        ValueError: a negative index, or a range that selects no trial (upstream would silently
            run nothing).
    """
    for flag, value in (("hparam_start_index", start_index), ("hparam_end_index", end_index)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"--{flag} must be an integer, got {value!r}")
        if value is not None and value < 0:
            raise ValueError(f"--{flag}={value} is negative; trial indices start at 0")
    selected = list(itertools.islice(enumerate(points), start_index, end_index))
    if not selected:
        raise ValueError(
            f"--hparam_start_index={start_index} --hparam_end_index={end_index} selects none of "
            f"the {len(points)} trial(s); use 0 <= start < end <= {len(points)}"
        )
    return selected


def hparams_to_dict(hparams: Hyperparameters) -> dict[str, Any]:
    """A ``Hyperparameters`` namedtuple as a plain dict in field order."""
    return dict(hparams._asdict())


def hparams_to_json(hparams: Hyperparameters) -> str:
    """The exact text upstream writes to ``hparams.json`` (indent 2, no trailing newline)."""
    return json.dumps(hparams_to_dict(hparams), indent=2)


def hparams_from_dict(values: Mapping[str, Any]) -> Hyperparameters:
    """A ``Hyperparameters`` namedtuple with the mapping's keys as fields, in its order.

    Raises:
        ValueError: a key is not a valid namedtuple field name.
    """
    return hyperparameters_class(tuple(values))(**values)


def load_hparams(path: str | os.PathLike[str]) -> Hyperparameters:
    """Read an ``hparams.json`` written by this harness or upstream back into a namedtuple.

    Raises:
        HparamsFileError: unreadable, not JSON, or not an object of valid names.
    """
    fix = "delete it to draw the trial's hyperparameters from the search space again"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise HparamsFileError(f"{path}: cannot be read as JSON ({message}); {fix}") from None
    if not isinstance(data, dict) or not data:
        raise HparamsFileError(f"{path}: is not a non-empty JSON object; {fix}")
    for name in data:
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
            raise HparamsFileError(f"{path}: key {name!r} is not a valid field name; {fix}")
    return hparams_from_dict(data)


def _write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a kill never leaves a torn file."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def resume_or_write_hparams(
    hparams: Hyperparameters, trial_dir: str | os.PathLike[str], *, write: bool = True
) -> Hyperparameters:
    """The hyperparameters a trial runs with, persisted in ``<trial_dir>/hparams.json``.

    As upstream: if the file exists (a resumed or repeated trial) its values are loaded and used
    instead of `hparams`; otherwise `hparams` is written there (only when `write`, i.e. on the
    process that owns the logs) and returned.
    """
    path = Path(trial_dir) / HPARAMS_FILENAME
    if path.exists():
        existing = load_hparams(path)
        if hparams is not None and hparams_to_dict(existing) != hparams_to_dict(hparams):
            logger.warning(
                "%s differs from the generated point %s; reusing the file's values.",
                path,
                hparams_to_dict(hparams),
            )
        return existing
    if write:
        _write_atomic(path, hparams_to_json(hparams))
    return hparams
