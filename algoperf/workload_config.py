"""The framework-free description of a workload: the one source of truth for its numbers.

Every registered workload (base or variant) is one frozen `WorkloadConfig`. Targets, budgets, step
hints, eval settings and model options live here; the runner, the JAX and PyTorch workload
classes, `algoperf workloads`, the scoring package and the docs all read them from here.
A variant is `dataclasses.replace(BASE, name=..., model=..., validation_target_value=...)`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from algoperf.spec import LossType

# Metric names that are minimised; everything else a target refers to is maximised.
MINIMIZED_METRICS = frozenset(
    {"loss", "ce_loss", "error_rate", "ctc_loss", "wer", "l1_loss", "ppl"}
)

# Set by upstream's runner for every workload (``submission_runner.py``, module level).
UPSTREAM_ENVIRONMENT = {"XLA_FLAGS": "--xla_gpu_enable_triton_gemm=false"}
# Upstream adds these for conformer, deepspeech, imagenet_vit and criteo1tb.
JAX_MEMORY_FRACTION = {**UPSTREAM_ENVIRONMENT, "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.80"}


@dataclasses.dataclass(frozen=True)
class WorkloadConfig:
    """All framework-independent facts about one workload or variant.

    Attributes:
        name: registry name, e.g. ``imagenet_resnet_silu``.
        base_name: the base workload (``imagenet_resnet``); equal to `name` for a base workload.
        family: package under ``workloads/`` holding the data pipeline and models.
        dataset: dataset key used by ``algoperf datasets`` and as the default sub-directory.
        target_metric_name: metric the targets refer to, without the split prefix.
        validation_target_value / test_target_value: targets (strict comparison in the runner
            unless `target_inclusive`).
        target_inclusive: the runner counts a value equal to the target as reached (upstream's
            ``<=`` for finewebedu_lm; every other upstream workload compares strictly).
        scoring_validation_target_value: the target in the scoring targets files when upstream's
            scoring set differs from its runner (finewebedu_lm: 22.2995 vs 22.432); None: the same.
        loss_type: the `LossType` of ``loss_fn``.
        max_allowed_runtime_sec: external-tuning budget in seconds (self-tuning multiplies it).
        framework_budgets_sec: the mini budget rule applied to one framework alone (4/3 of that
            framework's one-thread target-setting runtime); `max_allowed_runtime_sec` is the
            largest of them. Only `make demo` reads it (`budget_for`), to stop runs of a
            framework that needs far less than the slower one; scoring and the runner keep
            `max_allowed_runtime_sec`.
        eval_period_time_sec: minimum seconds of wall time between untimed evals.
        step_hint: approximate steps the baseline takes in the budget.
        num_train_examples / num_eval_train_examples / num_validation_examples /
        num_test_examples: split sizes (``num_test_examples`` None means no test split).
        eval_train_whole_eval_batches: eval_train covers ``num_eval_train_examples`` rounded up
            to a whole number of the framework's eval batches (upstream's criteo1tb: the
            validation size 83,274,637 rounded up, 83,361,792 in JAX at 131,072 a batch and
            83,279,872 in PyTorch at 8,192); read it through `num_eval_train_examples_for`.
        eval_batch_size: global eval batch size (``eval_batch_size_overrides`` per framework).
        train_mean / train_stddev: input normalisation constants.
        dropout_rate: default dropout rate passed to ``model_fn`` (None: model has no dropout).
        model: model options (activation, widths, ...) read by both framework model files.
        benchmark: True for workloads scored in the benchmark (base workloads of a version).
        dev_only: True for development workloads (mnist, cifar, ...), never scored.
        version: bumped whenever anything that changes results changes; written into logs.
        notes: free text shown by ``algoperf workloads``.
        torch_compile_model: PyTorch: ``torch.compile`` the model when compiling is on (upstream
            leaves out the workloads it lists as failing to compile: conformer, deepspeech,
            ogbg, criteo1tb, imagenet_vit).
        torch_compile_loss: PyTorch: also ``torch.compile`` ``workload.loss_fn`` (upstream: fastmri,
            deepspeech, ogbg, wmt).
        environment: environment variables set before the framework initialises, as upstream's
            runner sets them per run (recorded in ``run_record.json``). ``XLA_FLAGS`` entries are
            added to an existing ``XLA_FLAGS`` rather than replacing it.
    """

    name: str
    base_name: str
    family: str
    dataset: str
    target_metric_name: str
    validation_target_value: float
    test_target_value: float
    loss_type: LossType
    max_allowed_runtime_sec: int
    eval_period_time_sec: float
    step_hint: int
    num_train_examples: int
    num_eval_train_examples: int
    num_validation_examples: int
    num_test_examples: int | None
    eval_batch_size: int
    eval_batch_size_overrides: Mapping[str, int] = dataclasses.field(
        default_factory=lambda: MappingProxyType({})
    )
    eval_train_whole_eval_batches: bool = False
    train_mean: Any = None
    train_stddev: Any = None
    dropout_rate: float | None = None
    model: Mapping[str, Any] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    benchmark: bool = False
    dev_only: bool = False
    version: int = 1
    notes: str = ""
    torch_compile_model: bool = True
    torch_compile_loss: bool = False
    target_inclusive: bool = False
    scoring_validation_target_value: float | None = None
    framework_budgets_sec: Mapping[str, float] = dataclasses.field(
        default_factory=lambda: MappingProxyType({})
    )
    environment: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: MappingProxyType(dict(UPSTREAM_ENVIRONMENT))
    )

    def __post_init__(self) -> None:
        # Freeze mappings so that a config can be shared and hashed safely.
        object.__setattr__(self, "model", MappingProxyType(dict(self.model)))
        object.__setattr__(self, "environment", MappingProxyType(dict(self.environment)))
        object.__setattr__(
            self, "framework_budgets_sec", MappingProxyType(dict(self.framework_budgets_sec))
        )
        object.__setattr__(
            self,
            "eval_batch_size_overrides",
            MappingProxyType(dict(self.eval_batch_size_overrides)),
        )

    def __hash__(self) -> int:
        return hash((self.name, self.version))

    @property
    def maximize(self) -> bool:
        """True when a larger value of the target metric is better."""
        return self.target_metric_name not in MINIMIZED_METRICS

    @property
    def is_variant(self) -> bool:
        return self.name != self.base_name

    def budget_for(self, framework: str) -> float:
        """The budget the mini rule gives `framework` alone (`max_allowed_runtime_sec` if unset)."""
        return self.framework_budgets_sec.get(framework, self.max_allowed_runtime_sec)

    def eval_batch_size_for(self, framework: str) -> int:
        """The global eval batch size for one framework."""
        return self.eval_batch_size_overrides.get(framework, self.eval_batch_size)

    def num_eval_train_examples_for(self, framework: str) -> int:
        """The eval_train examples one framework evaluates (what the runner passes)."""
        if not self.eval_train_whole_eval_batches:
            return self.num_eval_train_examples
        batch = self.eval_batch_size_for(framework)
        return math.ceil(self.num_eval_train_examples / batch) * batch

    def budget_sec(self, self_tuning: bool = False, self_tuning_factor: float = 1.5) -> float:
        """Training-time budget: x1 external tuning, x`self_tuning_factor` self-tuning."""
        return self.max_allowed_runtime_sec * (self_tuning_factor if self_tuning else 1.0)

    def reached(self, value: float, target: float) -> bool:
        """Runner comparison of a metric value against a target (strict unless inclusive)."""
        if self.target_inclusive:
            return value >= target if self.maximize else value <= target
        return value > target if self.maximize else value < target

    def variant(self, name: str, **changes: Any) -> WorkloadConfig:
        """A copy named `name` with `changes`; `model` changes are merged into the base options."""
        model = dict(self.model)
        model.update(changes.pop("model", {}))
        return dataclasses.replace(self, name=name, model=model, **changes)
