"""Study plans: the TOML file of a sweep and its expansion into jobs.

A plan names submissions x workloads x frameworks x studies x trials; `expand` turns it into
one `Job` per trial (``granularity = "trial"``, as upstream's v0.6 SLURM scripts) or per study
(``granularity = "study"``: one `algoperf run` trains the study's trials one after another). Each
job is an ordinary `algoperf run` writing the upstream layout
``<experiment_dir>/<submission>/study_<j>/<workload>_<framework>/trial_<k>/``, so
``algoperf score --submission_directory <experiment_dir>`` reads a finished sweep directly.

Seeds: every job gets an explicit, non-zero ``--rng_seed`` derived from the plan's ``seed`` and
the job's identity (sha256, signed 32-bit), so a plan means the same runs on every machine and a
resumed job keeps its seed. Per-trial jobs get one seed per trial (as upstream's
``make_job_config.py``); per-study jobs one seed per study (as upstream's ``run_workloads.py``).
Upstream derives them through Python's salted ``hash``, so its values are not reproducible and
ours cannot equal them.

Relative paths in a plan are relative to the plan file's directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tomllib
from pathlib import Path
from typing import Any

GRANULARITIES = ("trial", "study")
EXECUTORS = ("local", "slurm", "submitit_local", "debug")
RULESETS = ("external", "self")
FRAMEWORKS = ("jax", "pytorch")


class PlanError(ValueError):
    """A plan file that cannot be used; the message names the file and the fix."""


@dataclasses.dataclass(frozen=True)
class SubmissionPlan:
    """One submission of a plan; ``path`` may contain ``{framework}``."""

    name: str
    path: str
    tuning_search_space: str | None
    tuning_ruleset: str = "external"
    workloads: tuple[str, ...] | None = None  # None: the plan's workloads

    def path_for(self, framework: str) -> str:
        return self.path.replace("{framework}", framework)


@dataclasses.dataclass(frozen=True)
class LocalOptions:
    """The local process pool: ``workers`` jobs at once, each on its own cores / devices."""

    workers: int = 1
    cores_per_job: int = 0  # 0: no pinning
    devices_per_job: int = 0  # GPUs per job (CUDA_VISIBLE_DEVICES slices); 0: CPU jobs


@dataclasses.dataclass(frozen=True)
class SlurmOptions:
    """SLURM resources of each job (submitit parameters)."""

    partition: str | None = None
    nodes: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int | None = None
    mem_gb: int | None = None
    time_limit_min: int = 60
    array_parallelism: int = 64
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    setup: tuple[str, ...] = ()  # shell lines run before each job (module load ...)
    max_requeues: int = 3
    # Multi-node jobs: how long nodes after the first wait for it to take the study lock.
    node_wait_min: int = 10


@dataclasses.dataclass(frozen=True)
class Plan:
    """A parsed plan file (paths resolved)."""

    path: Path
    name: str
    experiment_dir: Path
    data_dir: Path
    submissions: tuple[SubmissionPlan, ...]
    workloads: tuple[str, ...]
    frameworks: tuple[str, ...]
    num_studies: int
    num_tuning_trials: int
    granularity: str
    seed: int
    save_checkpoints: bool
    run_flags: tuple[str, ...]
    executor: str
    local: LocalOptions
    slurm: SlurmOptions
    # Extra `algoperf run` flags for one workload's jobs, after `run_flags` (e.g. a budget).
    workload_run_flags: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    @property
    def sweep_dir(self) -> Path:
        """Where the sweep keeps its own records (job states, events, job logs).

        Beside the experiment directory, not in it: upstream's scoring treats every entry of the
        directory it scores as a submission.
        """
        return self.experiment_dir.with_name(self.experiment_dir.name + ".sweep")


@dataclasses.dataclass(frozen=True)
class Job:
    """One `algoperf run`: a study's trials (all of them, or one) of one submission."""

    job_id: str
    submission: str
    workload: str
    framework: str
    study: int
    trials: tuple[int, ...]  # 1-based trial numbers (trial_<k> directories)
    rng_seed: int
    run_argv: tuple[str, ...]  # arguments of `algoperf run`
    workload_dir: Path
    sweep_dir: Path

    @property
    def file_stem(self) -> str:
        return self.job_id.replace("/", "__")

    def trial_dirs(self) -> list[Path]:
        return [self.workload_dir / f"trial_{k}" for k in self.trials]


_TOP_KEYS = {
    "name",
    "experiment_dir",
    "data_dir",
    "submissions",
    "workloads",
    "frameworks",
    "num_studies",
    "num_tuning_trials",
    "granularity",
    "seed",
    "save_checkpoints",
    "run_flags",
    "workload_run_flags",
    "executor",
    "local",
    "slurm",
}


def _fail(path: Path, message: str) -> PlanError:
    return PlanError(f"{path}: {message}")


def _typed(path: Path, table: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = table.get(key, default)
    if value is None:
        return None
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        raise _fail(path, f"'{key}' must be {kind.__name__}, got {value!r}")
    return value


def _strings(path: Path, table: dict[str, Any], key: str, default: Any = None) -> tuple[str, ...]:
    value = table.get(key, default)
    if value is None:
        raise _fail(path, f"'{key}' is required (a list of strings)")
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(path, f"'{key}' must be a list of strings, got {value!r}")
    return tuple(value)


def _options(path: Path, cls: type, table: Any, section: str) -> Any:
    if table is None:
        return cls()
    if not isinstance(table, dict):
        raise _fail(path, f"[{section}] must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise _fail(path, f"unknown key(s) in [{section}]: {', '.join(unknown)}")
    values = dict(table)
    if "setup" in values:
        values["setup"] = _strings(path, values, "setup")
    for key, value in values.items():
        default = fields[key].default
        numeric = isinstance(default, int) and not isinstance(default, bool)
        if (
            key != "setup"
            and numeric
            and (isinstance(value, bool) or not isinstance(value, int) or value < 0)
        ):
            raise _fail(path, f"[{section}] {key} must be a non-negative integer")
    return cls(**values)


def load_plan(path: str | Path) -> Plan:
    """Parse and validate a plan file; raise `PlanError` naming the file and the fix."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise PlanError(f"plan file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise _fail(path, f"not valid TOML ({e})") from None
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise _fail(path, f"unknown key(s): {', '.join(unknown)} (known: {sorted(_TOP_KEYS)})")
    base = path.resolve().parent

    def resolve(value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else base / p

    if "experiment_dir" not in data:
        raise _fail(path, "'experiment_dir' is required (where the sweep writes its logs)")
    subs_raw = data.get("submissions")
    if not isinstance(subs_raw, list) or not subs_raw:
        raise _fail(path, "at least one [[submissions]] table (name, path) is required")
    submissions = []
    for i, sub in enumerate(subs_raw):
        if not isinstance(sub, dict) or "name" not in sub or "path" not in sub:
            raise _fail(path, f"[[submissions]] #{i + 1} needs 'name' and 'path'")
        ruleset = sub.get("tuning_ruleset", "external")
        if ruleset not in RULESETS:
            raise _fail(
                path, f"submission {sub['name']!r}: tuning_ruleset must be one of {RULESETS}"
            )
        space = sub.get("tuning_search_space")
        if ruleset == "external" and not space:
            raise _fail(
                path, f"submission {sub['name']!r}: external tuning needs tuning_search_space"
            )
        name = str(sub["name"])
        if not name or "/" in name or name.startswith("."):
            raise _fail(path, f"submission name {name!r} must be a plain directory name")
        submissions.append(
            SubmissionPlan(
                name=name,
                path=str(resolve(str(sub["path"]))),
                tuning_search_space=str(resolve(str(space))) if space else None,
                tuning_ruleset=ruleset,
                workloads=_strings(path, sub, "workloads") if "workloads" in sub else None,
            )
        )
    if len({s.name for s in submissions}) != len(submissions):
        raise _fail(path, "submission names must be unique")
    frameworks = _strings(path, data, "frameworks")
    for fw in frameworks:
        if fw not in FRAMEWORKS:
            raise _fail(path, f"framework {fw!r} is not one of {FRAMEWORKS}")
    granularity = _typed(path, data, "granularity", str, "trial")
    if granularity not in GRANULARITIES:
        raise _fail(path, f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
    executor = data.get("executor", {})
    if isinstance(executor, str):
        executor = {"kind": executor}
    kind = executor.get("kind", "local") if isinstance(executor, dict) else executor
    if kind not in EXECUTORS:
        raise _fail(path, f"executor kind must be one of {EXECUTORS}, got {kind!r}")
    num_studies = _typed(path, data, "num_studies", int, 1)
    num_trials = _typed(path, data, "num_tuning_trials", int, 1)
    if num_studies < 1 or num_trials < 1:
        raise _fail(path, "num_studies and num_tuning_trials must be at least 1")
    return Plan(
        path=path.resolve(),
        name=_typed(path, data, "name", str, path.stem),
        experiment_dir=resolve(_typed(path, data, "experiment_dir", str, None)),
        data_dir=resolve(_typed(path, data, "data_dir", str, "data")),
        submissions=tuple(submissions),
        workloads=_strings(path, data, "workloads"),
        frameworks=frameworks,
        num_studies=num_studies,
        num_tuning_trials=num_trials,
        granularity=granularity,
        seed=_typed(path, data, "seed", int, 0),
        save_checkpoints=_typed(path, data, "save_checkpoints", bool, True),
        run_flags=_strings(path, data, "run_flags", []),
        workload_run_flags=_workload_flags(path, data),
        executor=kind,
        local=_options(path, LocalOptions, data.get("local"), "local"),
        slurm=_options(path, SlurmOptions, data.get("slurm"), "slurm"),
    )


def _workload_flags(path: Path, data: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """``[workload_run_flags]``: workload name -> a list of extra flags for its jobs."""
    table = data.get("workload_run_flags", {})
    if not isinstance(table, dict):
        raise _fail(path, "[workload_run_flags] must be a table of workload = [flags]")
    return {str(w): _strings(path, table, w) for w in table}


def derive_seed(base: int, *parts: object) -> int:
    """A non-zero signed 32-bit seed from the plan seed and a job's identity (stable everywhere)."""
    text = "/".join([str(base), *map(str, parts)])
    value = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little", signed=True)
    return value or 1  # 0 would mean "draw a random seed" to the runner


def expand(plan: Plan) -> list[Job]:
    """Every job of a plan, in a stable order (submission, workload, framework, study, trial)."""
    jobs = []
    for sub in plan.submissions:
        for workload in sub.workloads or plan.workloads:
            for framework in plan.frameworks:
                for study in range(plan.num_studies):
                    jobs.extend(_study_jobs(plan, sub, workload, framework, study))
    return jobs


def _study_jobs(
    plan: Plan, sub: SubmissionPlan, workload: str, framework: str, study: int
) -> list[Job]:
    experiment_name = f"{sub.name}/study_{study}"
    workload_dir = plan.experiment_dir / experiment_name / f"{workload}_{framework}"
    external = sub.tuning_ruleset == "external"
    n = plan.num_tuning_trials if external else 1
    base_argv = [
        f"--framework={framework}",
        f"--workload={workload}",
        f"--submission_path={sub.path_for(framework)}",
        f"--tuning_ruleset={sub.tuning_ruleset}",
        f"--data_dir={plan.data_dir}",
        f"--experiment_dir={plan.experiment_dir}",
        f"--experiment_name={experiment_name}",
        f"--save_checkpoints={str(plan.save_checkpoints).lower()}",
        "--progress=false",
    ]
    if external:
        base_argv += [
            f"--tuning_search_space={sub.tuning_search_space}",
            f"--num_tuning_trials={n}",
        ]
    groups = (
        [(k,) for k in range(1, n + 1)] if plan.granularity == "trial" else [tuple(range(1, n + 1))]
    )
    jobs = []
    for trials in groups:
        if plan.granularity == "trial":
            job_id = f"{sub.name}/study_{study}/{workload}_{framework}/trial_{trials[0]}"
            seed = derive_seed(plan.seed, sub.name, workload, study, trials[0])
            argv = [*base_argv]
            if external:
                argv += [f"--hparam_start_index={trials[0] - 1}", f"--hparam_end_index={trials[0]}"]
        else:
            job_id = f"{sub.name}/study_{study}/{workload}_{framework}"
            seed = derive_seed(plan.seed, sub.name, workload, study)
            argv = [*base_argv]
        argv += [
            f"--rng_seed={seed}",
            *plan.run_flags,
            *plan.workload_run_flags.get(workload, ()),
        ]
        jobs.append(
            Job(
                job_id=job_id,
                submission=sub.name,
                workload=workload,
                framework=framework,
                study=study,
                trials=trials,
                rng_seed=seed,
                run_argv=tuple(argv),
                workload_dir=workload_dir,
                sweep_dir=plan.sweep_dir,
            )
        )
    return jobs
