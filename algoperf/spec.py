"""The AlgoPerf submission API: types, enums, the `Workload` base class and submission signatures.

Names, argument names and argument order match upstream AlgoPerf v0.6 (`algoperf/spec.py`) so that
unmodified upstream submissions run against this harness. Importing this module imports neither JAX
nor PyTorch: `output_activation_fn` imports the framework it is asked for at call time.
"""

from __future__ import annotations

import abc
import enum
import logging
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger(__name__)


class LossType(enum.Enum):
    SOFTMAX_CROSS_ENTROPY = 0
    SIGMOID_CROSS_ENTROPY = 1
    MEAN_SQUARED_ERROR = 2
    CTC_LOSS = 3
    MEAN_ABSOLUTE_ERROR = 4


class ForwardPassMode(enum.Enum):
    TRAIN = 0
    EVAL = 1


class ParameterType(enum.Enum):
    WEIGHT = 0
    BIAS = 1
    CONV_WEIGHT = 2
    BATCH_NORM_SCALE = 3
    BATCH_NORM_BIAS = 4
    LAYER_NORM_SCALE = 5
    LAYER_NORM_BIAS = 6
    EMBEDDING = 7
    ATTENTION_Q = 8
    ATTENTION_K = 9
    ATTENTION_V = 10
    ATTENTION_OUT = 11
    ATTENTION_QKV = 12  # fused query/key/value projections
    ATTENTION_KV = 13  # fused key/value projections
    ATTENTION_BIAS = 14


Tensor = Any


class ShapeTuple:
    """A parameter shape wrapped so that pytree utilities treat it as a leaf."""

    def __init__(self, shape_tuple: tuple[int, ...]) -> None:
        self.shape_tuple = shape_tuple

    def __repr__(self) -> str:
        return f"ShapeTuple({self.shape_tuple})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ShapeTuple) and self.shape_tuple == other.shape_tuple

    def __hash__(self) -> int:
        return hash(self.shape_tuple)


Shape = tuple[int, ...] | ShapeTuple
ParameterShapeTree = dict[str, dict[str, Shape]]
ParameterKey = str
# JAX: nested dict pytree of arrays. PyTorch: the (possibly DDP-wrapped or compiled) nn.Module.
ParameterContainer = Any
ParameterTypeTree = dict[ParameterKey, dict[ParameterKey, ParameterType]]
# JAX: a PRNG key. PyTorch: a numpy uint32/int pair emulating one (see `algoperf.random_utils`).
RandomState = Any
OptimizerState = dict[str, Any] | tuple[Any, Any]
Hyperparameters = Any
Timing = int
Steps = int
# Model state that is not trained by the optimizer, e.g. batch-norm statistics; None for PyTorch.
ModelAuxiliaryState = Any
ModelInitState = tuple[ParameterContainer, ModelAuxiliaryState]
UpdateReturn = tuple[OptimizerState, ParameterContainer, ModelAuxiliaryState]


class Workload(metaclass=abc.ABCMeta):
    """A model, a dataset, a loss, an evaluation and a target: the unit a submission trains.

    Concrete workloads in this harness derive from `algoperf.workload_base.ConfiguredWorkload`,
    which fills every property from a frozen `WorkloadConfig`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        del args, kwargs
        self._param_shapes: ParameterShapeTree | None = None
        self._param_types: ParameterTypeTree | None = None
        self._eval_iters: dict[str, Iterator] = {}
        self.metrics_logger = None

    @property
    @abc.abstractmethod
    def target_metric_name(self) -> str:
        """Metric key the targets refer to, without split prefix (e.g. 'accuracy')."""

    @abc.abstractmethod
    def has_reached_validation_target(self, eval_result: dict[str, float]) -> bool:
        """Whether `eval_result['validation/<metric>']` is strictly past the validation target."""

    @abc.abstractmethod
    def has_reached_test_target(self, eval_result: dict[str, float]) -> bool:
        """Whether `eval_result['test/<metric>']` is strictly past the test target."""

    @abc.abstractmethod
    def _build_input_queue(
        self,
        data_rng: RandomState,
        split: str,
        data_dir: str,
        global_batch_size: int,
        cache: bool | None = None,
        repeat_final_dataset: bool | None = None,
        num_batches: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """An iterator of batch dicts with at least 'inputs' and 'targets'.

        The one workload function submissions may not call. JAX batches are global arrays of
        shape (global_batch_size, ...) sharded on their leading axis; PyTorch batches are this
        rank's slice, (global_batch_size // world_size, ...).
        """

    def attach_metrics_logger(self, metrics_logger: Any) -> None:
        """Attach the logger submissions may write scalars to (`append_scalar_metrics`)."""
        self.metrics_logger = metrics_logger

    @property
    @abc.abstractmethod
    def validation_target_value(self) -> float:
        """Validation target of `target_metric_name`."""

    @property
    @abc.abstractmethod
    def test_target_value(self) -> float:
        """Test target of `target_metric_name`."""

    @property
    @abc.abstractmethod
    def loss_type(self) -> LossType:
        """The kind of loss `loss_fn` computes."""

    @property
    @abc.abstractmethod
    def num_train_examples(self) -> int:
        """Size of the training split."""

    @property
    @abc.abstractmethod
    def eval_batch_size(self) -> int:
        """Global batch size used for evaluation."""

    @property
    @abc.abstractmethod
    def num_eval_train_examples(self) -> int:
        """Number of training examples evaluated at each eval (the 'train/' metrics)."""

    @property
    @abc.abstractmethod
    def num_validation_examples(self) -> int:
        """Size of the validation split."""

    @property
    @abc.abstractmethod
    def num_test_examples(self) -> int | None:
        """Size of the test split, or None when the workload has no test split."""

    @property
    @abc.abstractmethod
    def train_mean(self) -> Any:
        """Input normalisation mean."""

    @property
    @abc.abstractmethod
    def train_stddev(self) -> Any:
        """Input normalisation standard deviation."""

    @property
    @abc.abstractmethod
    def max_allowed_runtime_sec(self) -> int:
        """Training-time budget in seconds (external-tuning ruleset)."""

    @property
    @abc.abstractmethod
    def eval_period_time_sec(self) -> int:
        """Minimum seconds between two untimed evaluations."""

    @property
    @abc.abstractmethod
    def step_hint(self) -> int:
        """Approximate number of steps the baseline takes in the budget (for schedules)."""

    @property
    def param_shapes(self) -> ParameterShapeTree:
        """Parameter shapes as `ShapeTuple` leaves; available after `init_model_fn`."""
        if self._param_shapes is None:
            raise ValueError("workload.init_model_fn() must be called before workload.param_shapes")
        return self._param_shapes

    @property
    def model_params_types(self) -> ParameterTypeTree:
        """`ParameterType` of every parameter; available after `init_model_fn`."""
        if self._param_types is None:
            raise ValueError(
                "workload.init_model_fn() must be called before workload.model_params_types"
            )
        return self._param_types

    @abc.abstractmethod
    def is_output_params(self, param_key: ParameterKey) -> bool:
        """Whether `param_key` names the output layer's parameters."""

    @abc.abstractmethod
    def init_model_fn(self, rng: RandomState) -> ModelInitState:
        """Return (initial_params, initial_model_state) and set param shapes and types."""

    @abc.abstractmethod
    def model_fn(
        self,
        params: ParameterContainer,
        augmented_and_preprocessed_input_batch: dict[str, Tensor],
        model_state: ModelAuxiliaryState,
        mode: ForwardPassMode,
        rng: RandomState,
        update_batch_norm: bool,
        dropout_rate: float,
    ) -> tuple[Tensor, ModelAuxiliaryState]:
        """Return (logits_batch, new_model_state); BN statistics change only if asked."""

    def output_activation_fn(self, logits_batch: Tensor, framework: str) -> Tensor:
        """Turn logits into probabilities according to `loss_type`."""
        if framework not in ("pytorch", "jax"):
            raise ValueError(f"`framework` has to be either `pytorch` or `jax`, got {framework}.")
        if self.loss_type in (LossType.MEAN_SQUARED_ERROR, LossType.MEAN_ABSOLUTE_ERROR):
            return logits_batch
        sigmoid = self.loss_type == LossType.SIGMOID_CROSS_ENTROPY
        if framework == "pytorch":
            import torch

            return torch.sigmoid(logits_batch) if sigmoid else torch.softmax(logits_batch, -1)
        import jax

        return jax.nn.sigmoid(logits_batch) if sigmoid else jax.nn.softmax(logits_batch, -1)

    @abc.abstractmethod
    def loss_fn(
        self,
        label_batch: tuple[Tensor, Tensor] | Tensor,
        logits_batch: tuple[Tensor, Tensor] | Tensor,
        mask_batch: Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> dict[str, Tensor]:
        """Masked loss: {'summed', 'n_valid_examples', 'per_example'}, not synced across devices.

        Differentiable; applies no regularisation (that is the submission's business).
        """

    @abc.abstractmethod
    def _eval_model_on_split(
        self,
        split: str,
        num_examples: int,
        global_batch_size: int,
        params: ParameterContainer,
        model_state: ModelAuxiliaryState,
        rng: RandomState,
        data_dir: str,
        global_step: int = 0,
    ) -> dict[str, float]:
        """Evaluate one split; return metric means over `num_examples`."""

    def eval_model(
        self,
        global_batch_size: int,
        params: ParameterContainer,
        model_state: ModelAuxiliaryState,
        rng: RandomState,
        data_dir: str,
        imagenet_v2_data_dir: str | None,
        global_step: int,
    ) -> dict[str, float]:
        """Evaluate eval_train, validation and (if defined) test; keys prefixed by split."""
        common = dict(
            global_batch_size=global_batch_size,
            params=params,
            model_state=model_state,
            rng=rng,
            global_step=global_step,
        )
        train_metrics = self._eval_model_on_split(
            "eval_train", num_examples=self.num_eval_train_examples, data_dir=data_dir, **common
        )
        eval_metrics = {"train/" + k: v for k, v in train_metrics.items()}
        validation_metrics = self._eval_model_on_split(
            "validation", num_examples=self.num_validation_examples, data_dir=data_dir, **common
        )
        for k, v in validation_metrics.items():
            eval_metrics["validation/" + k] = v
        eval_metrics["validation/num_examples"] = self.num_validation_examples
        try:
            if self.num_test_examples is not None:
                test_metrics = self._eval_model_on_split(
                    "test",
                    num_examples=self.num_test_examples,
                    data_dir=imagenet_v2_data_dir or data_dir,
                    **common,
                )
                for k, v in test_metrics.items():
                    eval_metrics["test/" + k] = v
                eval_metrics["test/num_examples"] = self.num_test_examples
        except NotImplementedError:
            pass
        return eval_metrics


class TrainingCompleteError(Exception):
    """Raised by a submission's `update_params` to end training (a final eval follows)."""


InitOptimizerFn = Callable[
    [Workload, ParameterContainer, ModelAuxiliaryState, Hyperparameters, RandomState],
    OptimizerState,
]
UpdateParamsFn = Callable[..., UpdateReturn]
PrepareForEvalFn = Callable[..., UpdateReturn]
DataSelectionFn = Callable[..., dict[str, Tensor]]


def init_optimizer_state(
    workload: Workload,
    model_params: ParameterContainer,
    model_state: ModelAuxiliaryState,
    hyperparameters: Hyperparameters,
    rng: RandomState,
) -> OptimizerState:
    """Submission hook (untimed, before the clock starts): build the optimizer state."""
    raise NotImplementedError


def update_params(
    workload: Workload,
    current_param_container: ParameterContainer,
    current_params_types: ParameterTypeTree,
    model_state: ModelAuxiliaryState,
    hyperparameters: Hyperparameters,
    batch: dict[str, Tensor],
    loss_type: LossType,
    optimizer_state: OptimizerState,
    eval_results: list[tuple[int, dict[str, float]]],
    global_step: int,
    rng: RandomState,
    train_state: dict[str, Any] | None = None,
) -> UpdateReturn:
    """Submission hook (timed): one training step; returns (optimizer_state, params, model_state).

    `train_state` is passed, as a read-only mapping, only when the submission's signature names it.
    """
    raise NotImplementedError


def prepare_for_eval(
    workload: Workload,
    current_param_container: ParameterContainer,
    current_params_types: ParameterTypeTree,
    model_state: ModelAuxiliaryState,
    hyperparameters: Hyperparameters,
    loss_type: LossType,
    optimizer_state: OptimizerState,
    eval_results: list[tuple[int, dict[str, float]]],
    global_step: int,
    rng: RandomState,
) -> UpdateReturn:
    """Optional submission hook (timed) called before each eval; returns what gets evaluated."""
    raise NotImplementedError


def data_selection(
    workload: Workload,
    input_queue: Iterator[dict[str, Any]],
    optimizer_state: OptimizerState,
    current_param_container: ParameterContainer,
    model_state: ModelAuxiliaryState,
    hyperparameters: Hyperparameters,
    global_step: int,
    rng: RandomState,
) -> dict[str, Tensor]:
    """Submission hook (timed): pick the next batch, normally `next(input_queue)`."""
    raise NotImplementedError


def get_batch_size(workload_name: str) -> int:
    """Submission hook (untimed): the global training batch size for a workload."""
    raise NotImplementedError


REQUIRED_SUBMISSION_FUNCTIONS = (
    "get_batch_size",
    "init_optimizer_state",
    "update_params",
    "data_selection",
)
OPTIONAL_SUBMISSION_FUNCTIONS = ("prepare_for_eval", "get_eval_batch_size")
