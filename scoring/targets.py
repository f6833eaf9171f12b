"""Per-version scoring targets: which workloads count, their targets, budgets and study counts.

The workload specs (`algoperf.registry.all_configs()`) are the one source of truth. Scoring reads
frozen JSON snapshots of them under ``scoring/targets/`` so that a benchmark version's numbers never
move once published, and so that scoring does not need to import the workload packages:

* ``v0.5.json``: the inaugural competition: 8 base workloads plus 6 held-out variants, 5 studies,
  the v0.5 budgets and step hints, self-tuning budget x3.
* ``v0.6.json``: the v0.6 rolling leaderboard: 8 base workloads, no held-out variants, 3 studies,
  self-tuning budget x1.5.
* ``current.json``: what the workload specs say today (v0.6 plus ``finewebedu_lm``).
* ``dev.json``: the development workloads (MNIST, Fashion-MNIST, CIFAR, ...) for smoke runs: the
  base set is whichever of them the logs contain, and study and trial counts are not checked.
* ``mini.json``: AlgoPerf-mini, five small workloads on real offline data that run on a 2-core
  CPU (`MINI_WORKLOADS`): all five count, 3 studies of 2 trials (what ``make mini`` runs), the
  budgets, targets and step hints of their specs.

Regenerate ``current.json``, ``dev.json`` and ``mini.json`` with ``python -m scoring.targets
--write`` after changing a spec (a test checks they match the specs). The frozen files are rewritten only with ``--version``
and ``--force``.

The direction of a metric follows upstream's scoring registry: a column ``validation/<metric>`` is
minimised when one of upstream's minimised metric columns is a substring of it (``loss``,
``ce_loss``, ``ctc_loss``, ``wer``, ``error_rate``, ``l1_loss``, ``ppl``), maximised when a
maximised one is (``accuracy``, ``bleu``, ``mean_average_precision``, ``ssim``), and unknown
otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

TARGETS_DIR = Path(__file__).resolve().parent / "targets"

# Version labels accepted by `--benchmark_version`, mapped to their file names.
VERSION_FILES = {
    "0.5": "v0.5.json",
    "0.6": "v0.6.json",
    "current": "current.json",
    "dev": "dev.json",
    "mini": "mini.json",
}
VERSIONS = tuple(VERSION_FILES)
# Published versions: their files never change unless rewritten with --force.
FROZEN_VERSIONS = ("0.5", "0.6")
DEFAULT_VERSION = "0.6"

# Upstream's metric registry, in upstream's lookup order (minimised metrics first).
_MIN_METRICS = ("ce_loss", "error_rate", "ctc_loss", "wer", "l1_loss", "loss", "ppl")
_MAX_METRICS = ("mean_average_precision", "ssim", "accuracy", "bleu")
_METRIC_REGISTRY: dict[str, bool] = {
    f"{split}/{metric}": minimized
    for metrics, minimized in ((_MIN_METRICS, True), (_MAX_METRICS, False))
    for split in ("train", "validation")
    for metric in metrics
}

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

# AlgoPerf-mini: small configurations of four families on real offline data (2-core CPU).
MINI_WORKLOADS = ("fashion_mnist", "mnist1d", "ogbg_solubility", "wmt_bible", "lm_bible")

# Development workloads that upstream's target files list (ours may add more, e.g. fashion_mnist).
UPSTREAM_DEV_WORKLOADS = ("mnist", "cifar")

# The v0.5 held-out variants (sampled upstream with seed 3438810845, one per dataset).
V05_HELD_OUT = (
    "criteo1tb_embed_init",
    "fastmri_tanh",
    "imagenet_resnet_large_bn_init",
    "librispeech_conformer_layernorm",
    "ogbg_model_size",
    "wmt_glu_tanh",
)

# v0.5 budgets (s) and step hints, per base workload; variants inherit their base's numbers.
V05_BUDGETS_AND_STEP_HINTS = {
    "criteo1tb": (7_703, 10_666),
    "fastmri": (8_859, 36_189),
    "imagenet_resnet": (63_008, 186_666),
    "imagenet_vit": (77_520, 186_666),
    "librispeech_conformer": (61_068, 80_000),
    "librispeech_deepspeech": (55_506, 48_000),
    "ogbg": (18_477, 80_000),
    "wmt": (48_151, 133_333),
}

# Frozen per-version protocol numbers.
_PROTOCOL = {
    "0.5": {"num_studies": 5, "num_trials": 5, "self_tuning_budget_factor": 3.0},
    "0.6": {"num_studies": 3, "num_trials": 5, "self_tuning_budget_factor": 1.5},
    "current": {"num_studies": 3, "num_trials": 5, "self_tuning_budget_factor": 1.5},
    "dev": {"num_studies": 0, "num_trials": 0, "self_tuning_budget_factor": 1.5},
    # What `make mini` (plans/mini.toml) runs: 3 studies of 2 external-tuning trials.
    "mini": {"num_studies": 3, "num_trials": 2, "self_tuning_budget_factor": 1.5},
}


class TargetsError(ValueError):
    """A malformed or unknown target set."""


def metric_is_minimized(column: str) -> bool:
    """Whether a metric column (``validation/wer``) is minimised, by upstream's substring rule."""
    name = column.replace("best_", "").replace("final_", "")
    for key, minimized in _METRIC_REGISTRY.items():
        if key in name:
            return minimized
    raise TargetsError(
        f"cannot tell whether metric column {column!r} is minimised or maximised; "
        f"known metrics: {', '.join(_MIN_METRICS + _MAX_METRICS)}"
    )


@dataclasses.dataclass(frozen=True)
class WorkloadTarget:
    """Scoring facts of one workload in one benchmark version."""

    name: str
    base_workload: str
    target_metric_name: str
    validation_target_value: float
    maximize: bool
    step_hint: int
    max_allowed_runtime_sec: float

    @property
    def metric_column(self) -> str:
        """The eval_measurements.csv column holding the target metric."""
        return f"validation/{self.target_metric_name}"


@dataclasses.dataclass(frozen=True)
class TargetSet:
    """One benchmark version's scoring configuration.

    Attributes:
        benchmark_version: ``0.5``, ``0.6``, ``current``, ``dev`` or ``mini``.
        base_workloads: workloads that count in the score (the profile's denominator).
        held_out_workloads: variants that can only disqualify their base workload (v0.5 rule).
        num_studies / num_trials: expected studies per workload and trials per study (0: not
            checked).
        self_tuning_budget_factor: budget multiplier of the self-tuning ruleset.
        workloads: per-workload targets, for every workload that may appear in logs.
        base_workloads_present_only: score only the base workloads that have logs (the
            ``dev`` set); otherwise a base workload without logs counts as a miss.
    """

    benchmark_version: str
    base_workloads: tuple[str, ...]
    held_out_workloads: tuple[str, ...]
    num_studies: int
    num_trials: int
    self_tuning_budget_factor: float
    workloads: Mapping[str, WorkloadTarget]
    base_workloads_present_only: bool = False

    @property
    def scored_workloads(self) -> tuple[str, ...]:
        """Base and held-out workloads: the ones whose logs are read."""
        return self.base_workloads + self.held_out_workloads

    def base_workload_name(self, workload: str) -> str:
        """Upstream's mapping of a variant to its base: the first base name contained in it."""
        for base in self.base_workloads:
            if base in workload:
                return base
        return self.workloads[workload].base_workload

    def budget_sec(self, workload: str, self_tuning: bool = False) -> float:
        """Runtime budget of a workload in seconds under a ruleset."""
        factor = self.self_tuning_budget_factor if self_tuning else 1.0
        return self.workloads[workload].max_allowed_runtime_sec * factor

    def with_base_workloads(self, workloads: tuple[str, ...]) -> TargetSet:
        """A copy scoring `workloads` instead of the version's base set (no held-out rule)."""
        unknown = [w for w in workloads if w not in self.workloads]
        if unknown:
            raise TargetsError(
                f"unknown workload(s) {', '.join(unknown)} in benchmark version "
                f"{self.benchmark_version}; known: {', '.join(self.workloads)}"
            )
        return dataclasses.replace(
            self,
            base_workloads=tuple(workloads),
            held_out_workloads=(),
            base_workloads_present_only=False,
        )

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], source: str = "<dict>") -> TargetSet:
        """Build and validate a target set from its JSON form (ours or upstream's)."""
        if "num_studies" not in raw:
            raw = _from_upstream_format(raw, source)
        try:
            workloads = {
                name: WorkloadTarget(name=name, **spec) for name, spec in raw["workloads"].items()
            }
            targets = cls(
                benchmark_version=str(raw["benchmark_version"]),
                base_workloads=tuple(raw["base_workloads"]),
                held_out_workloads=tuple(raw["held_out_workloads"]),
                num_studies=int(raw["num_studies"]),
                num_trials=int(raw["num_trials"]),
                self_tuning_budget_factor=float(raw["self_tuning_budget_factor"]),
                workloads=MappingProxyType(workloads),
                base_workloads_present_only=bool(raw.get("base_workloads_present_only", False)),
            )
        except (KeyError, TypeError) as e:
            raise TargetsError(f"malformed target set {source}: {e!r}") from e
        missing = [w for w in targets.scored_workloads if w not in workloads]
        if missing:
            raise TargetsError(f"target set {source} has no entry for {', '.join(missing)}")
        return targets


def _from_upstream_format(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Complete upstream's ``workload_targets*.json`` (targets and step hints only) with the
    protocol numbers and budgets of our frozen file for the same version (current otherwise)."""
    version = str(raw.get("benchmark_version", ""))
    ours = load_targets(version if version in VERSION_FILES else "current")
    try:
        bases = tuple(raw["base_workloads"])
        workloads = {}
        for name, spec in raw["workloads"].items():
            known = ours.workloads.get(name)
            base = next((b for b in bases if b in name), known.base_workload if known else name)
            workloads[name] = {
                "base_workload": base,
                "target_metric_name": spec["target_metric_name"],
                "validation_target_value": spec["validation_target_value"],
                "maximize": not metric_is_minimized(f"validation/{spec['target_metric_name']}"),
                "step_hint": spec.get("step_hint", known.step_hint if known else 0),
                "max_allowed_runtime_sec": (
                    known.max_allowed_runtime_sec if known else float("nan")
                ),
            }
        return {
            "benchmark_version": version or ours.benchmark_version,
            "base_workloads": list(bases),
            "held_out_workloads": list(raw.get("held_out_workloads", [])),
            "num_studies": ours.num_studies,
            "num_trials": ours.num_trials,
            "self_tuning_budget_factor": ours.self_tuning_budget_factor,
            "workloads": workloads,
        }
    except (KeyError, TypeError) as e:
        raise TargetsError(f"malformed target set {source}: {e!r}") from e


@cache
def load_targets(version: str = DEFAULT_VERSION) -> TargetSet:
    """The target set of a benchmark version (one of `VERSIONS`) or a JSON path."""
    version = str(version)
    if version.startswith("v") and version[1:] in VERSION_FILES:
        version = version[1:]
    if version in VERSION_FILES:
        path = TARGETS_DIR / VERSION_FILES[version]
    elif version.endswith(".json"):
        path = Path(version)
    else:
        raise TargetsError(
            f"unknown benchmark version {version!r}; choose one of {', '.join(VERSIONS)} "
            "or give a targets JSON file"
        )
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise TargetsError(
            f"{path}: target file missing; run `python -m scoring.targets --write`"
        ) from e
    except json.JSONDecodeError as e:
        raise TargetsError(f"{path}: not valid JSON ({e})") from e
    return TargetSet.from_dict(raw, source=str(path))


def generate(version: str) -> dict[str, Any]:
    """The JSON form of a version's target set, computed from the workload specs."""
    from algoperf.registry import all_configs  # the specs; imports neither jax nor torch

    if version not in VERSION_FILES:
        raise TargetsError(f"unknown benchmark version {version!r}")
    configs = all_configs()
    held_out: tuple[str, ...] = ()
    if version == "current":
        base = tuple(name for name, c in configs.items() if c.benchmark)
        names = list(configs)
    elif version == "dev":
        base = tuple(name for name, c in configs.items() if c.dev_only)
        names = list(base)
    elif version == "mini":
        missing = [name for name in MINI_WORKLOADS if name not in configs]
        if missing:
            raise TargetsError(
                f"benchmark version mini lists workload(s) {', '.join(missing)} that no workload "
                "spec registers (`algoperf workloads` lists the registered ones): add the "
                "variant to its family's spec.py or remove it from scoring.targets.MINI_WORKLOADS"
            )
        base = MINI_WORKLOADS
        names = list(base)
    else:
        base = BASE_WORKLOADS
        if version == "0.5":
            held_out = V05_HELD_OUT
        # Upstream's workloads of that era: the 8 base families, their variants, MNIST, CIFAR.
        names = [
            n
            for n, c in configs.items()
            if n in UPSTREAM_DEV_WORKLOADS or c.base_name in BASE_WORKLOADS
        ]
    workloads: dict[str, dict[str, Any]] = {}
    for name in names:
        c = configs[name]
        budget, step_hint = c.max_allowed_runtime_sec, c.step_hint
        if version == "0.5" and c.base_name in V05_BUDGETS_AND_STEP_HINTS:
            budget, step_hint = V05_BUDGETS_AND_STEP_HINTS[c.base_name]
        workloads[name] = {
            "base_workload": c.base_name,
            "target_metric_name": c.target_metric_name,
            "validation_target_value": (
                c.validation_target_value
                if c.scoring_validation_target_value is None
                else c.scoring_validation_target_value
            ),
            "maximize": not metric_is_minimized(f"validation/{c.target_metric_name}"),
            "step_hint": step_hint,
            "max_allowed_runtime_sec": budget,
        }
    out = {
        "_comment": (
            "Scoring targets of one AlgoPerf benchmark version, generated from the workload "
            "specs by `python -m scoring.targets --write`. Do not edit by hand."
        ),
        "benchmark_version": version,
        "base_workloads": list(base),
        "held_out_workloads": list(held_out),
        **_PROTOCOL[version],
    }
    if version == "dev":
        out["base_workloads_present_only"] = True
    out["workloads"] = workloads
    return out


def render(version: str) -> str:
    """The exact file text of a generated target set."""
    return json.dumps(generate(version), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m scoring.targets [--write] [--version V] [--force]``."""
    parser = argparse.ArgumentParser(
        prog="python -m scoring.targets",
        description="Print or write the per-version scoring target files from the workload specs.",
    )
    parser.add_argument(
        "--write", action="store_true", help="write the file(s) instead of printing"
    )
    parser.add_argument(
        "--version",
        choices=VERSIONS,
        help="one target set (default: the unfrozen ones, current, dev and mini); the frozen "
        f"versions ({', '.join(FROZEN_VERSIONS)}) are rewritten only with --force",
    )
    parser.add_argument("--force", action="store_true", help="overwrite a frozen version file")
    args = parser.parse_args(argv)
    versions = [args.version] if args.version else [v for v in VERSIONS if v not in FROZEN_VERSIONS]
    status = 0
    for version in versions:
        try:
            text = render(version)
        except TargetsError as e:
            print(f"error: {e}", file=sys.stderr)
            status = 1
            continue
        path = TARGETS_DIR / VERSION_FILES[version]
        if not args.write:
            sys.stdout.write(text)
            continue
        if path.exists() and path.read_text() == text:
            print(f"{path} is up to date")
            continue
        if version in FROZEN_VERSIONS and path.exists() and not args.force:
            print(
                f"error: {path} is frozen and differs from the specs; pass --force to overwrite it",
                file=sys.stderr,
            )
            status = 1
            continue
        TARGETS_DIR.mkdir(exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
