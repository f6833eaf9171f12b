"""`RunConfig`: every setting of `algoperf run`, frozen, passed explicitly below the CLI."""

from __future__ import annotations

import dataclasses
from pathlib import PurePath
from typing import Any

RULESETS = ("external", "self")
# --timing_sync: when the step end waits for device work (see `algoperf.runner.loop`).
TIMING_SYNCS = ("auto", "every_step", "eval_points")
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
    ``timing_sync``: ``auto`` synchronises PyTorch at every step end (upstream's ``get_time()``)
    and JAX at eval points only; ``every_step`` / ``eval_points`` force one (see
    `algoperf.runner.loop`). ``stop_on_divergence`` ends a trial at a non-finite loss or eval
    value (upstream trains on). ``max_global_steps`` None or 0: no limit (upstream).
    ``profile`` writes a cProfile of each trial into its directory; ``capture_jax_trace`` a JAX
    profiler trace (``traces/``); ``set_pytorch_max_split_size`` sets the CUDA allocator's
    ``max_split_size_mb:256``; ``librispeech_tokenizer_vocab_path`` is passed to the workload as
    ``tokenizer_vocab_path``.
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
    timing_sync: str = "auto"
    stop_on_divergence: bool = False
    profile: bool = False
    capture_jax_trace: bool = False
    set_pytorch_max_split_size: bool = False
    librispeech_tokenizer_vocab_path: str = ""
    log_level: str = "info"
    # JAX layout: auto (from the submission), jit, pmap (`algoperf.frameworks.jax_pmap`).
    jax_layout: str = "auto"
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
        if self.max_global_steps is not None and self.max_global_steps < 0:
            raise ValueError(
                f"--max_global_steps must be >= 0 (0: no limit), got {self.max_global_steps}"
            )
        if self.timing_sync not in TIMING_SYNCS:
            raise ValueError(
                f"--timing_sync must be auto, every_step or eval_points, got {self.timing_sync!r}"
            )
        if self.capture_jax_trace and self.framework != "jax":
            raise ValueError(
                "--capture_jax_trace traces JAX only; use --profile for a PyTorch run "
                "(or --framework=jax)"
            )
        if self.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise ValueError(
                f"--log_level must be debug, info, warning or error, got {self.log_level!r}"
            )
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
        if self.jax_layout not in ("auto", "jit", "pmap", "none"):
            raise ValueError(f"--jax_layout must be auto, jit or pmap, got {self.jax_layout!r}")
        if self.eval_num_workers is not None and self.eval_num_workers < 0:
            raise ValueError(f"eval loader workers must be >= 0, got {self.eval_num_workers}")

    @property
    def self_tuning(self) -> bool:
        return self.tuning_ruleset == "self"

    @property
    def sync_every_step(self) -> bool:
        """Whether every step end waits for device work (upstream's PyTorch timing)."""
        if self.timing_sync == "auto":
            return self.framework == "pytorch"
        return self.timing_sync == "every_step"

    def budget_sec(self, workload_config: Any) -> float:
        """The training-time budget: the workload's (x1.5 self-tuning) unless overridden."""
        if self.max_runtime_sec is not None:
            return float(self.max_runtime_sec)
        return workload_config.budget_sec(self.self_tuning, self.self_tuning_budget_factor)
