"""`RunConfig`: every setting of `algoperf run`, frozen, passed explicitly below the CLI."""

from __future__ import annotations

import dataclasses
from pathlib import PurePath
from typing import Any

RULESETS = ("external", "self")
# v0.6 rules: the self-tuning ruleset gets 1.5x the external budget (v0.5: 3x).
SELF_TUNING_BUDGET_FACTOR = 1.5


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Settings of one `algoperf run` invocation (upstream `submission_runner.py` flag names).

    Attributes mirror upstream's flags; ``torch_compile=None`` means "compile on CUDA only" (on a
    CPU the compile time would dominate small budgets), ``True``/``False`` are honoured as given.

    Ours: ``eval_every_n_steps`` evaluates at fixed steps instead of every
    ``eval_period_time_sec`` (reproducibility checks, not scored runs); ``progress`` is the live
    display (None: a bar on a terminal, plain log lines otherwise; False: off);
    ``progress_interval_sec`` the period of the plain lines; ``eval_num_workers`` the loader
    workers of eval splits (``--pytorch_eval_num_workers``; results do not depend on it).
    """

    framework: str
    workload: str
    submission_path: str
    experiment_dir: str
    experiment_name: str
    tuning_ruleset: str = "external"
    tuning_search_space: str | None = None
    num_tuning_trials: int = 1
    data_dir: str = "~/data"
    imagenet_v2_data_dir: str | None = None
    rng_seed: int | None = None
    max_global_steps: int | None = None
    overwrite: bool = False
    hparam_start_index: int | None = None
    hparam_end_index: int | None = None
    torch_compile: bool | None = None
    save_checkpoints: bool = False
    save_intermediate_checkpoints: bool = True
    resume_last_run: bool = False
    append_timestamp: bool = False
    skip_evals: bool = False
    self_tuning_budget_factor: float = SELF_TUNING_BUDGET_FACTOR
    max_runtime_sec: float | None = None
    eval_every_n_steps: int | None = None
    progress: bool | None = None
    progress_interval_sec: float = 30.0
    eval_num_workers: int | None = None
    flags: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.framework not in ("jax", "pytorch"):
            raise ValueError(f"--framework must be jax or pytorch, got {self.framework!r}")
        if self.tuning_ruleset not in RULESETS:
            raise ValueError(
                f"--tuning_ruleset must be external or self, got {self.tuning_ruleset!r}"
            )
        if self.tuning_ruleset == "external" and not self.tuning_search_space:
            raise ValueError(
                "--tuning_search_space is required for the external tuning ruleset "
                "(pass a tuning_search_space.json, or --tuning_ruleset=self)"
            )
        if self.tuning_ruleset == "self" and self.tuning_search_space:
            raise ValueError(
                "--tuning_search_space must not be given with --tuning_ruleset=self "
                "(self-tuning submissions get no hyperparameters)"
            )
        if self.num_tuning_trials < 1:
            raise ValueError(f"--num_tuning_trials must be >= 1, got {self.num_tuning_trials}")
        if self.max_global_steps is not None and self.max_global_steps < 1:
            raise ValueError(f"--max_global_steps must be >= 1, got {self.max_global_steps}")
        if self.max_runtime_sec is not None and self.max_runtime_sec <= 0:
            raise ValueError(f"--max_runtime_sec must be positive, got {self.max_runtime_sec}")
        if not self.experiment_dir:
            raise ValueError("--experiment_dir is required")
        if not self.experiment_name:
            raise ValueError("--experiment_name is required")
        name = PurePath(self.experiment_name)
        if name.is_absolute() or ".." in name.parts:
            raise ValueError(
                f"--experiment_name must be a relative name inside --experiment_dir, got "
                f"{self.experiment_name!r} (so that --overwrite can never reach outside it)"
            )
        if self.eval_every_n_steps is not None and self.eval_every_n_steps < 1:
            raise ValueError(f"--eval_every_n_steps must be >= 1, got {self.eval_every_n_steps}")
        if self.overwrite and self.resume_last_run:
            raise ValueError(
                "--overwrite and --resume_last_run exclude each other: resume keeps the trials' "
                "results, overwrite deletes them"
            )
        if self.progress_interval_sec <= 0:
            raise ValueError(
                f"--progress_interval_sec must be positive, got {self.progress_interval_sec}"
            )
        if self.eval_num_workers is not None and self.eval_num_workers < 0:
            raise ValueError(f"eval loader workers must be >= 0, got {self.eval_num_workers}")

    @property
    def self_tuning(self) -> bool:
        return self.tuning_ruleset == "self"

    def budget_sec(self, workload_config: Any) -> float:
        """The training-time budget: the workload's (x1.5 self-tuning) unless overridden."""
        if self.max_runtime_sec is not None:
            return float(self.max_runtime_sec)
        return workload_config.budget_sec(self.self_tuning, self.self_tuning_budget_factor)
