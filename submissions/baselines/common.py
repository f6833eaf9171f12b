"""Framework-free parts of the baseline submissions: batch sizes, the learning-rate schedule,
hyperparameter access and the submission functions that are the same in JAX and PyTorch.

Importing this module imports neither JAX nor PyTorch (the schedule takes the array module it
should compute with), so `jax_common` and `pytorch_common` share one definition of each rule.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from algoperf import spec

# Global training batch size per workload, as in upstream's baselines (variants that need a
# smaller batch to fit in memory listed explicitly). A variant not listed here (for example
# `fashion_mnist` or `wmt_post_ln`) raises ValueError and the runner retries with its base name.
BATCH_SIZES: dict[str, int] = {
    "criteo1tb": 262_144,
    "fastmri": 32,
    "imagenet_resnet": 1024,
    "imagenet_resnet_silu": 512,
    "imagenet_resnet_gelu": 512,
    "imagenet_vit": 1024,
    "librispeech_conformer": 256,
    "librispeech_deepspeech": 256,
    "ogbg": 512,
    "wmt": 128,
    # The leaderboard's language-model workload; 64 is what its published submissions use.
    "finewebedu_lm": 64,
    # Development workloads (not scored).
    "mnist": 16,
    # 128 of MNIST-1D's 35,000 training signals a step (the size its targets were set at).
    "mnist1d": 128,
    "cifar": 128,
    # The mini workloads: the batch sizes their targets were set at (workloads/*/TARGETS.md).
    "ogbg_solubility": 32,  # of 820 training molecules
    "lm_bible": 8,  # windows of 129 tokens
    "wmt_bible": 8,  # packed rows
}

# Upstream's epsilon in the clipping factor `grad_clip / (grad_norm + eps)`.
GRAD_CLIP_EPS = 1e-6

# Adam-family epsilon of every upstream baseline (not a tuned hyperparameter).
ADAM_EPS = 1e-8

# Training loss and gradient norm go to the workload's metrics logger every this many steps.
LOG_EVERY_STEPS = 100


def get_batch_size(workload_name: str) -> int:
    """Global training batch size; ValueError for names not in the table (see `BATCH_SIZES`)."""
    try:
        return BATCH_SIZES[workload_name]
    except KeyError:
        raise ValueError(f"Unsupported workload name: {workload_name}.") from None


# --------------------------------------------------------------------------------------------
# Hyperparameters
# --------------------------------------------------------------------------------------------

_REQUIRED = object()


def hparam(hyperparameters: spec.Hyperparameters, name: str, default: Any = _REQUIRED) -> Any:
    """One hyperparameter from the runner's namedtuple (or a mapping), with a clear error.

    Args:
      hyperparameters: the `Hyperparameters` namedtuple drawn from the search space, a mapping,
        or None (self-tuning ruleset, which these baselines do not support).
      name: field name, e.g. 'learning_rate'.
      default: value when the field is absent; without one the field is required.
    """
    if hyperparameters is None:
        raise ValueError(
            "this baseline needs tuned hyperparameters (external-tuning ruleset): run it with "
            "--tuning_search_space=<its directory>/tuning_search_space.json"
        )
    if isinstance(hyperparameters, Mapping):
        value = hyperparameters.get(name, default)
    else:
        value = getattr(hyperparameters, name, default)
    if value is _REQUIRED:
        raise ValueError(
            f"hyperparameter {name!r} is missing: add it to the tuning_search_space.json passed "
            "with --tuning_search_space (see submissions/baselines/README.md)"
        )
    return value


def check_range(name: str, value: float, low: float, high: float, *, high_open: bool) -> float:
    """`value` as a float if low <= value < high (or <= high); ValueError naming the fix."""
    value = float(value)
    ok = low <= value < high if high_open else low <= value <= high
    if not ok:
        bracket = ")" if high_open else "]"
        raise ValueError(
            f"hyperparameter {name}={value} is outside [{low}, {high}{bracket}: fix its range in "
            "the tuning_search_space.json"
        )
    return value


def beta1(hyperparameters: spec.Hyperparameters) -> float:
    """First-moment decay / momentum, `1 - one_minus_beta1` as every upstream baseline tunes it."""
    one_minus = check_range(
        "one_minus_beta1", hparam(hyperparameters, "one_minus_beta1"), 0.0, 1.0, high_open=False
    )
    return 1.0 - one_minus


def beta2(hyperparameters: spec.Hyperparameters) -> float:
    """Second-moment decay, in [0, 1)."""
    return check_range("beta2", hparam(hyperparameters, "beta2"), 0.0, 1.0, high_open=True)


def weight_decay(hyperparameters: spec.Hyperparameters) -> float:
    """Decoupled (AdamW-style) or L2 (SGD) weight decay, >= 0."""
    return check_range(
        "weight_decay", hparam(hyperparameters, "weight_decay"), 0.0, math.inf, high_open=True
    )


def learning_rate(hyperparameters: spec.Hyperparameters) -> float:
    """Peak learning rate, > 0 (reached at the end of warmup)."""
    value = float(hparam(hyperparameters, "learning_rate"))
    if not value > 0.0:
        raise ValueError(
            f"hyperparameter learning_rate={value} must be > 0: fix its range in the "
            "tuning_search_space.json"
        )
    return value


@dataclasses.dataclass(frozen=True)
class StepOptions:
    """Per-step knobs read from the hyperparameters (each optional, as in upstream)."""

    label_smoothing: float
    # None: no clipping.
    grad_clip: float | None
    # None: the workload's default dropout rate (the keyword is not passed to `model_fn`).
    dropout_rate: float | None


def step_options(hyperparameters: spec.Hyperparameters) -> StepOptions:
    """Label smoothing (default 0), gradient clipping and dropout (default: workload's)."""
    grad_clip = hparam(hyperparameters, "grad_clip", None)
    dropout_rate = hparam(hyperparameters, "dropout_rate", None)
    return StepOptions(
        label_smoothing=float(hparam(hyperparameters, "label_smoothing", 0.0)),
        grad_clip=None if grad_clip is None else float(grad_clip),
        dropout_rate=None if dropout_rate is None else float(dropout_rate),
    )


# --------------------------------------------------------------------------------------------
# Learning-rate schedule
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class WarmupCosine:
    """Learning-rate multiplier: linear warmup 0 -> 1, cosine decay 1 -> 0, then 0.

    The multiplier of update ``t`` (0-based, i.e. the ``t``-th call of `update_params`) is
    ``t / warmup_steps`` for ``t < warmup_steps``, then
    ``0.5 * (1 + cos(pi * min(t - warmup_steps, decay_steps) / decay_steps))``. This is the value
    upstream's optax schedule (`linear_schedule` joined to `cosine_decay_schedule`) gives; with
    ``warmup_steps = 0`` the first update already uses the peak rate, as optax does.

    An instance is also a PyTorch `LambdaLR` multiplier (`__call__`); being a plain object rather
    than a closure, `LambdaLR.state_dict()` saves its fields with a checkpoint.
    """

    warmup_steps: int
    decay_steps: int

    @classmethod
    def from_hparams(cls, step_hint: int, hyperparameters: spec.Hyperparameters) -> WarmupCosine:
        """Upstream's rule: warmup = int(warmup_factor * step_hint), cosine over the rest (>= 1)."""
        factor = check_range(
            "warmup_factor", hparam(hyperparameters, "warmup_factor"), 0.0, 1.0, high_open=False
        )
        warmup_steps = int(factor * step_hint)
        return cls(warmup_steps=warmup_steps, decay_steps=max(step_hint - warmup_steps, 1))

    def factor(self, step: Any, xp: Any = np) -> Any:
        """Multiplier at `step`, computed with array module `xp` (numpy, or jax.numpy when traced)."""
        warmup = step / max(self.warmup_steps, 1)
        progress = xp.clip((step - self.warmup_steps) / self.decay_steps, 0.0, 1.0)
        cosine = 0.5 * (1.0 + xp.cos(math.pi * progress))
        return xp.where(step < self.warmup_steps, warmup, cosine)

    def __call__(self, step: int) -> float:
        return float(self.factor(step))


# --------------------------------------------------------------------------------------------
# Submission functions that do not depend on the framework
# --------------------------------------------------------------------------------------------


def should_log(workload: spec.Workload, global_step: int) -> bool:
    """Whether this step's loss and gradient norm go to the workload's metrics logger.

    Reading them back from the device is the only synchronisation the baselines add, so it
    happens on these steps only.
    """
    return (
        global_step % LOG_EVERY_STEPS == 0 and getattr(workload, "metrics_logger", None) is not None
    )


def prepare_for_eval(
    workload: spec.Workload,
    current_param_container: spec.ParameterContainer,
    current_params_types: spec.ParameterTypeTree,
    model_state: spec.ModelAuxiliaryState,
    hyperparameters: spec.Hyperparameters,
    loss_type: spec.LossType,
    optimizer_state: spec.OptimizerState,
    eval_results: list[tuple[int, dict[str, float]]],
    global_step: int,
    rng: spec.RandomState,
) -> spec.UpdateReturn:
    """Evaluate the current parameters as they are (timed, but does nothing)."""
    del workload, current_params_types, hyperparameters, loss_type, eval_results, global_step, rng
    return optimizer_state, current_param_container, model_state


def data_selection(
    workload: spec.Workload,
    input_queue: Iterator[dict[str, spec.Tensor]],
    optimizer_state: spec.OptimizerState,
    current_param_container: spec.ParameterContainer,
    model_state: spec.ModelAuxiliaryState,
    hyperparameters: spec.Hyperparameters,
    global_step: int,
    rng: spec.RandomState,
) -> dict[str, spec.Tensor]:
    """The next batch of the workload's pre-shuffled, infinitely repeating input queue (timed)."""
    del workload, optimizer_state, current_param_container, model_state, hyperparameters
    del global_step, rng
    return next(input_queue)
