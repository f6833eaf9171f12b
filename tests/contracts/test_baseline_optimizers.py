"""Contract tests for the baseline submissions and the template, on toy workloads.

The toy workloads are a linear softmax classifier on fixed batches, written once for JAX and
once for PyTorch with the same initial weights, so that the two frameworks' optimizers can be
compared update by update. They implement only what submissions call.
"""

from __future__ import annotations

import collections
import copy
import importlib
import inspect
import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from algoperf import spec

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
torch = pytest.importorskip("torch")

from algoperf import jax_sharding_utils  # noqa: E402  (after the jax import check)

REPO_ROOT = Path(__file__).resolve().parents[2]
BASELINES_DIR = REPO_ROOT / "submissions" / "baselines"
ALGORITHMS = ("nadamw", "adamw", "sgd_nesterov")
FRAMEWORKS = ("jax", "pytorch")
TEMPLATES = {
    "pytorch": "submissions.template.submission",
    "jax": "submissions.template.submission_jax",
}

# Upstream's submission signatures: argument names in order (reference §1.1).
UPSTREAM_SIGNATURES = {
    "get_batch_size": ["workload_name"],
    "init_optimizer_state": [
        "workload",
        "model_params",
        "model_state",
        "hyperparameters",
        "rng",
    ],
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
        "train_state",
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
    "data_selection": [
        "workload",
        "input_queue",
        "optimizer_state",
        "current_param_container",
        "model_state",
        "hyperparameters",
        "global_step",
        "rng",
    ],
}

# Hyperparameters inside each baseline's search space, chosen to make the toy problem move.
TOY_HPARAMS = {
    "nadamw": dict(learning_rate=0.05, one_minus_beta1=0.1, beta2=0.999, weight_decay=0.01),
    "adamw": dict(learning_rate=0.05, one_minus_beta1=0.1, beta2=0.999, weight_decay=0.01),
    "sgd_nesterov": dict(learning_rate=0.5, one_minus_beta1=0.1, weight_decay=1e-3),
}

IN_DIM, NUM_CLASSES, BATCH = 6, 4, 32

# Default of the toy `model_fn`'s dropout_rate: tells whether the submission passed one.
WORKLOAD_DEFAULT_DROPOUT = object()


def make_hparams(**values: Any) -> Any:
    """A `Hyperparameters` namedtuple like the runner's."""
    return collections.namedtuple("Hyperparameters", values)(**values)


def baseline_hparams(algo: str, **overrides: Any) -> Any:
    values = {**TOY_HPARAMS[algo], "warmup_factor": 0.1, "label_smoothing": 0.1}
    values.update(overrides)
    return make_hparams(**values)


def initial_weights() -> tuple[np.ndarray, np.ndarray]:
    """(kernel (in, out), bias (out,)) shared by both toy models."""
    rs = np.random.RandomState(0)
    return (
        rs.normal(0.0, 0.5, (IN_DIM, NUM_CLASSES)).astype(np.float32),
        rs.normal(0.0, 0.1, (NUM_CLASSES,)).astype(np.float32),
    )


def numpy_batch(step: int) -> dict[str, np.ndarray]:
    """A learnable batch (labels from a fixed linear teacher), different for every step."""
    teacher = np.random.RandomState(1).normal(size=(IN_DIM, NUM_CLASSES))
    rs = np.random.RandomState(100 + step)
    x = rs.normal(size=(BATCH, IN_DIM)).astype(np.float32)
    y = np.argmax(x @ teacher, axis=-1).astype(np.int32)
    weights = np.ones((BATCH,), np.float32)
    weights[-3:] = 0.0  # padding examples, excluded from the mean
    return {"inputs": x, "targets": y, "weights": weights}


class RecordingLogger:
    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, float], int]] = []

    def append_scalar_metrics(self, metrics: dict[str, float], global_step: int) -> None:
        self.calls.append((dict(metrics), global_step))


class ToyWorkloadBase(spec.Workload):
    """Constants and stubs shared by the two toy workloads."""

    def __init__(self, step_hint: int = 100) -> None:
        super().__init__()
        self._step_hint = step_hint
        self.model_fn_calls = 0  # Python-side calls: under jit, one per trace.
        self.dropout_rates_seen: list[Any] = []

    target_metric_name = "accuracy"
    validation_target_value = 1.0
    test_target_value = 1.0
    loss_type = spec.LossType.SOFTMAX_CROSS_ENTROPY
    num_train_examples = BATCH
    eval_batch_size = BATCH
    num_eval_train_examples = BATCH
    num_validation_examples = BATCH
    num_test_examples = None
    train_mean = 0.0
    train_stddev = 1.0
    max_allowed_runtime_sec = 60
    eval_period_time_sec = 10

    @property
    def step_hint(self) -> int:
        return self._step_hint

    def has_reached_validation_target(self, eval_result: dict[str, float]) -> bool:
        return False

    def has_reached_test_target(self, eval_result: dict[str, float]) -> bool:
        return False

    def _build_input_queue(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def is_output_params(self, param_key: str) -> bool:
        return True

    def _eval_model_on_split(self, *args: Any, **kwargs: Any) -> dict[str, float]:
        raise NotImplementedError


class ToyJaxWorkload(ToyWorkloadBase):
    def init_model_fn(self, rng: Any) -> tuple[Any, Any]:
        kernel, bias = initial_weights()
        # Replicated over the mesh, as the harness's JAX workloads return them.
        params = jax_sharding_utils.replicate(
            {"dense": {"kernel": jnp.asarray(kernel), "bias": jnp.asarray(bias)}}
        )
        self._param_shapes = jax.tree.map(lambda x: spec.ShapeTuple(x.shape), params)
        self._param_types = jax.tree.map(lambda x: spec.ParameterType.WEIGHT, params)
        return params, None

    def model_fn(
        self,
        params: Any,
        augmented_and_preprocessed_input_batch: dict[str, Any],
        model_state: Any,
        mode: spec.ForwardPassMode,
        rng: Any,
        update_batch_norm: bool,
        dropout_rate: Any = WORKLOAD_DEFAULT_DROPOUT,
    ) -> tuple[Any, Any]:
        self.model_fn_calls += 1
        self.dropout_rates_seen.append(dropout_rate)
        x = augmented_and_preprocessed_input_batch["inputs"]
        return x @ params["dense"]["kernel"] + params["dense"]["bias"], model_state

    def loss_fn(
        self, label_batch: Any, logits_batch: Any, mask_batch: Any = None, label_smoothing=0.0
    ) -> dict[str, Any]:
        one_hot = jax.nn.one_hot(label_batch, NUM_CLASSES)
        smoothed = (1.0 - label_smoothing) * one_hot + label_smoothing / NUM_CLASSES
        per_example = -jnp.sum(smoothed * jax.nn.log_softmax(logits_batch), axis=-1)
        mask = jnp.ones_like(per_example) if mask_batch is None else mask_batch
        per_example = per_example * mask
        return {
            "summed": per_example.sum(),
            "n_valid_examples": mask.sum(),
            "per_example": per_example,
        }


class ToyTorchWorkload(ToyWorkloadBase):
    def init_model_fn(self, rng: Any) -> tuple[Any, Any]:
        kernel, bias = initial_weights()
        model = torch.nn.Linear(IN_DIM, NUM_CLASSES)
        with torch.no_grad():
            model.weight.copy_(torch.from_numpy(kernel.T.copy()))
            model.bias.copy_(torch.from_numpy(bias))
        self._param_shapes = {
            k: spec.ShapeTuple(tuple(p.shape)) for k, p in model.named_parameters()
        }
        self._param_types = {k: spec.ParameterType.WEIGHT for k, _ in model.named_parameters()}
        return model, None

    def model_fn(
        self,
        params: Any,
        augmented_and_preprocessed_input_batch: dict[str, Any],
        model_state: Any,
        mode: spec.ForwardPassMode,
        rng: Any,
        update_batch_norm: bool,
        dropout_rate: Any = WORKLOAD_DEFAULT_DROPOUT,
    ) -> tuple[Any, Any]:
        self.model_fn_calls += 1
        self.dropout_rates_seen.append(dropout_rate)
        return params(augmented_and_preprocessed_input_batch["inputs"]), model_state

    def loss_fn(
        self, label_batch: Any, logits_batch: Any, mask_batch: Any = None, label_smoothing=0.0
    ) -> dict[str, Any]:
        per_example = torch.nn.functional.cross_entropy(
            logits_batch, label_batch.long(), reduction="none", label_smoothing=label_smoothing
        )
        mask = torch.ones_like(per_example) if mask_batch is None else mask_batch
        per_example = per_example * mask
        return {
            "summed": per_example.sum(),
            "n_valid_examples": mask.sum(),
            "per_example": per_example,
        }


def load_baseline(algo: str, framework: str) -> Any:
    return importlib.import_module(f"submissions.baselines.{algo}.{framework}.submission")


class Trainer:
    """Drives a submission on a toy workload the way the runner does (keyword arguments)."""

    def __init__(self, module: Any, framework: str, hparams: Any, step_hint: int = 100) -> None:
        self.module, self.framework, self.hparams = module, framework, hparams
        workload_cls = ToyJaxWorkload if framework == "jax" else ToyTorchWorkload
        self.workload = workload_cls(step_hint=step_hint)
        self.params, self.model_state = self.workload.init_model_fn(self._rng(0))
        self.opt_state = module.init_optimizer_state(
            workload=self.workload,
            model_params=self.params,
            model_state=self.model_state,
            hyperparameters=hparams,
            rng=self._rng(1),
        )
        self.global_step = 0

    def _rng(self, seed: int) -> Any:
        return jax.random.PRNGKey(seed) if self.framework == "jax" else np.array([seed, 0])

    def batch(self, step: int) -> dict[str, Any]:
        b = numpy_batch(step)
        if self.framework == "jax":
            # Global arrays sharded along the batch axis, as the runner's input queue yields.
            return jax_sharding_utils.shard_along_batch_dim(b)
        return {k: torch.from_numpy(v) for k, v in b.items()}

    def step(self, batch: dict[str, Any] | None = None, global_step: int | None = None) -> None:
        batch = self.batch(self.global_step) if batch is None else batch
        step = self.global_step if global_step is None else global_step
        selected = self.module.data_selection(
            workload=self.workload,
            input_queue=iter([batch]),
            optimizer_state=self.opt_state,
            current_param_container=self.params,
            model_state=self.model_state,
            hyperparameters=self.hparams,
            global_step=step,
            rng=self._rng(2),
        )
        self.opt_state, self.params, self.model_state = self.module.update_params(
            workload=self.workload,
            current_param_container=self.params,
            current_params_types=self.workload.model_params_types,
            model_state=self.model_state,
            hyperparameters=self.hparams,
            batch=selected,
            loss_type=self.workload.loss_type,
            optimizer_state=self.opt_state,
            eval_results=[],
            global_step=step,
            rng=self._rng(3),
        )
        self.global_step += 1

    def loss(self, step: int = 0) -> float:
        """Mean loss (label smoothing 0) of the current parameters on batch `step`."""
        batch = self.batch(step)
        with torch.no_grad():
            logits, _ = self.workload.model_fn(
                self.params, batch, None, spec.ForwardPassMode.EVAL, None, False
            )
            out = self.workload.loss_fn(batch["targets"], logits, batch["weights"])
        return float(out["summed"]) / float(out["n_valid_examples"])

    def kernel_and_bias(self) -> tuple[np.ndarray, np.ndarray]:
        if self.framework == "jax":
            d = self.params["dense"]
            return np.asarray(d["kernel"]), np.asarray(d["bias"])
        return (
            self.params.weight.detach().numpy().T.copy(),
            self.params.bias.detach().numpy().copy(),
        )

    def learning_rate(self) -> float:
        """Learning rate used by the most recent update (before any: the first update's)."""
        if self.framework == "jax":
            return float(self.opt_state[0].hyperparams["learning_rate"])
        return float(self.opt_state["optimizer"].param_groups[0]["lr"])


ALL_SUBMISSIONS = [
    pytest.param(f"submissions.baselines.{a}.{f}.submission", id=f"{a}-{f}")
    for a in ALGORITHMS
    for f in FRAMEWORKS
] + [pytest.param(m, id=f"template-{f}") for f, m in TEMPLATES.items()]


@pytest.mark.parametrize("module_name", ALL_SUBMISSIONS)
def test_submission_functions_have_upstream_signatures(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name in (*spec.REQUIRED_SUBMISSION_FUNCTIONS, "prepare_for_eval"):
        fn = getattr(module, name, None)
        assert callable(fn), f"{module_name} lacks {name}"
        assert list(inspect.signature(fn).parameters) == UPSTREAM_SIGNATURES[name], name
    train_state = inspect.signature(module.update_params).parameters["train_state"]
    assert train_state.default is None


@pytest.mark.parametrize("module_name", ALL_SUBMISSIONS)
def test_submission_dirs_are_packages(module_name: str) -> None:
    path = REPO_ROOT.joinpath(*module_name.split(".")).with_suffix(".py")
    for parent in path.parents:
        if parent == REPO_ROOT:
            break
        assert (parent / "__init__.py").is_file(), f"{parent} needs an __init__.py"


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("algo", ALGORITHMS)
def test_batch_sizes_follow_upstream_table(algo: str, framework: str) -> None:
    module = load_baseline(algo, framework)
    expected = {
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
        "mnist": 16,
        "cifar": 128,
    }
    for name, size in expected.items():
        assert module.get_batch_size(name) == size, name
    # Variants without their own entry must raise ValueError so that the runner retries with
    # the base workload name (fashion_mnist -> mnist, wmt_post_ln -> wmt).
    for name in ("fashion_mnist", "wmt_post_ln", "imagenet_resnet_large_bn_init", "nope"):
        with pytest.raises(ValueError, match="Unsupported workload name"):
            module.get_batch_size(name)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("algo", ALGORITHMS)
def test_updates_reduce_the_loss(algo: str, framework: str) -> None:
    trainer = Trainer(load_baseline(algo, framework), framework, baseline_hparams(algo), 40)
    before = trainer.loss()
    for _ in range(25):
        trainer.step(batch=trainer.batch(0))
    after = trainer.loss()
    assert np.isfinite(after)
    assert after < 0.7 * before, (before, after)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("algo", ALGORITHMS)
def test_learning_rate_is_linear_warmup_then_cosine(algo: str, framework: str) -> None:
    # step_hint 10, warmup_factor 0.2: warmup 2 steps, cosine over 8, then 0.
    peak = TOY_HPARAMS[algo]["learning_rate"]
    hparams = baseline_hparams(algo, warmup_factor=0.2)
    trainer = Trainer(load_baseline(algo, framework), framework, hparams, step_hint=10)
    used = []  # learning rate of update t
    for _ in range(12):
        if framework == "pytorch":
            used.append(trainer.learning_rate())  # the lr the next optimizer.step() uses
        trainer.step()
        if framework == "jax":
            used.append(trainer.learning_rate())  # the lr the last update used
    expected = {0: 0.0, 1: 0.5 * peak, 2: peak, 6: 0.5 * peak, 10: 0.0, 11: 0.0}
    for t, value in expected.items():
        assert used[t] == pytest.approx(value, rel=1e-6, abs=1e-9), (t, used)
    # Strictly decreasing over the cosine part.
    assert all(a > b for a, b in itertools.pairwise(used[2:11]))


def test_schedule_without_warmup_starts_at_peak() -> None:
    from submissions.baselines import common

    shape = common.WarmupCosine.from_hparams(100, make_hparams(warmup_factor=0.0))
    assert (shape.warmup_steps, shape.decay_steps) == (0, 100)
    assert shape(0) == 1.0
    assert shape(50) == pytest.approx(0.5)
    assert shape(100) == pytest.approx(0.0, abs=1e-12)
    whole = common.WarmupCosine.from_hparams(10, make_hparams(warmup_factor=1.0))
    assert (whole.warmup_steps, whole.decay_steps) == (10, 1)


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_jax_and_pytorch_baselines_take_the_same_steps(algo: str) -> None:
    # grad_clip small enough to bind on the first steps, so clipping is compared too.
    hparams = baseline_hparams(algo, grad_clip=0.3, dropout_rate=0.0)
    trainers = {f: Trainer(load_baseline(algo, f), f, hparams, step_hint=12) for f in FRAMEWORKS}
    np.testing.assert_array_equal(
        trainers["jax"].kernel_and_bias()[0], trainers["pytorch"].kernel_and_bias()[0]
    )
    for _ in range(10):
        for trainer in trainers.values():
            trainer.step()
    for got_jax, got_torch in zip(
        trainers["jax"].kernel_and_bias(), trainers["pytorch"].kernel_and_bias()
    ):
        np.testing.assert_allclose(got_jax, got_torch, rtol=1e-5, atol=1e-5)
    # And the parameters did move (a no-op optimizer would pass the comparison above).
    kernel0, _ = initial_weights()
    assert np.abs(trainers["jax"].kernel_and_bias()[0] - kernel0).max() > 1e-2


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_loss_and_grad_norm_logged_every_100_steps(framework: str) -> None:
    trainer = Trainer(load_baseline("nadamw", framework), framework, baseline_hparams("nadamw"))
    logger = RecordingLogger()
    trainer.workload.attach_metrics_logger(logger)
    for global_step in (0, 1, 99, 100, 150, 200):
        trainer.step(global_step=global_step)
    assert [step for _, step in logger.calls] == [0, 100, 200]
    for metrics, _ in logger.calls:
        assert set(metrics) == {"loss", "grad_norm"}
        assert all(isinstance(v, float) and math.isfinite(v) and v > 0 for v in metrics.values())


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_jax_train_step_is_compiled_once(algo: str) -> None:
    trainer = Trainer(load_baseline(algo, "jax"), "jax", baseline_hparams(algo))
    for _ in range(5):
        trainer.step()
    # model_fn runs in Python only while tracing: once for the single compilation.
    assert trainer.workload.model_fn_calls == 1


def test_jax_optimizer_state_is_state_and_update_fn() -> None:
    trainer = Trainer(load_baseline("adamw", "jax"), "jax", baseline_hparams("adamw"))
    _, update_fn = trainer.opt_state
    assert callable(update_fn)
    trainer.step()
    assert trainer.opt_state[1] is update_fn
    leaves = jax.tree.leaves(trainer.opt_state[0])
    assert leaves and all(isinstance(x, jax.Array) for x in leaves)


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_pytorch_optimizer_state_round_trips_through_state_dict(algo: str) -> None:
    hparams = baseline_hparams(algo)
    trainer = Trainer(load_baseline(algo, "pytorch"), "pytorch", hparams, step_hint=20)
    for _ in range(3):
        trainer.step()
    # state_dict() shares tensors with the live optimizer: copy, as torch.save would.
    saved = {k: copy.deepcopy(v.state_dict()) for k, v in trainer.opt_state.items()}
    model_state = {k: v.clone() for k, v in trainer.params.state_dict().items()}
    trainer.step()
    expected = trainer.kernel_and_bias()

    restored = Trainer(load_baseline(algo, "pytorch"), "pytorch", hparams, step_hint=20)
    restored.params.load_state_dict(model_state)
    for key, value in restored.opt_state.items():
        value.load_state_dict(saved[key])
    restored.global_step = 3
    restored.step()
    for a, b in zip(expected, restored.kernel_and_bias()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_missing_hyperparameters_give_a_clear_error(framework: str) -> None:
    module = load_baseline("nadamw", framework)
    with pytest.raises(ValueError, match="tuning_search_space"):
        Trainer(module, framework, None)
    no_beta2 = {k: v for k, v in TOY_HPARAMS["nadamw"].items() if k != "beta2"}
    with pytest.raises(ValueError, match="'beta2' is missing"):
        Trainer(module, framework, make_hparams(**no_beta2, warmup_factor=0.1))
    bad = baseline_hparams("nadamw", one_minus_beta1=1.5)
    with pytest.raises(ValueError, match=r"one_minus_beta1=1\.5 is outside"):
        Trainer(module, framework, bad)


def _search_space_files() -> list[Path]:
    template = REPO_ROOT / "submissions" / "template" / "tuning_search_space.json"
    return [*sorted(BASELINES_DIR.glob("*/tuning_search_space*.json")), template]


@pytest.mark.parametrize("path", _search_space_files(), ids=lambda p: p.parent.name + "/" + p.name)
def test_search_spaces_are_well_formed(path: Path) -> None:
    space = json.loads(path.read_text())
    points = space if isinstance(space, list) else None
    if points is None:
        assert isinstance(space, dict) and space
        for name, dim in space.items():
            if "feasible_points" in dim:
                assert set(dim) == {"feasible_points"} and dim["feasible_points"], name
            else:
                assert set(dim) == {"min", "max", "scaling"}, name
                assert dim["scaling"] in ("log", "linear"), name
                assert dim["min"] < dim["max"], name
                assert dim["min"] > 0 or dim["scaling"] == "linear", name
        # The extreme corners of the space must be accepted by the submission.
        points = [
            {
                k: (d["feasible_points"][0] if "feasible_points" in d else d[end])
                for k, d in space.items()
            }
            for end in ("min", "max")
        ]
    else:
        assert len(points) == 5 and all(p.keys() == points[0].keys() for p in points)
    if path.parent.name == "template":
        module, framework = importlib.import_module(TEMPLATES["pytorch"]), "pytorch"
    else:
        module, framework = load_baseline(path.parent.name, "pytorch"), "pytorch"
    for point in points:
        trainer = Trainer(module, framework, make_hparams(**point), step_hint=10)
        trainer.step()
        assert np.isfinite(trainer.loss())


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_template_trains(framework: str) -> None:
    module = importlib.import_module(TEMPLATES[framework])
    hparams = make_hparams(learning_rate=0.5, weight_decay=0.0)
    trainer = Trainer(module, framework, hparams)
    before = trainer.loss()
    for _ in range(25):
        trainer.step(batch=trainer.batch(0))
    assert trainer.loss() < 0.7 * before


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("algo", ALGORITHMS)
def test_dropout_and_label_smoothing_reach_the_workload(algo: str, framework: str) -> None:
    module = load_baseline(algo, framework)
    # No dropout_rate hyperparameter: the workload's default applies (keyword not passed).
    trainer = Trainer(module, framework, baseline_hparams(algo))
    trainer.step()
    assert trainer.workload.dropout_rates_seen == [WORKLOAD_DEFAULT_DROPOUT]
    trainer = Trainer(module, framework, baseline_hparams(algo, dropout_rate=0.1))
    trainer.step()
    (seen,) = trainer.workload.dropout_rates_seen
    assert seen is not WORKLOAD_DEFAULT_DROPOUT
    if framework == "pytorch":  # under jit it is a tracer of the value
        assert seen == 0.1
    # Label smoothing changes the loss and so the first update.
    kernels = []
    for smoothing in (0.0, 0.3):
        trainer = Trainer(module, framework, baseline_hparams(algo, label_smoothing=smoothing))
        trainer.step()
        trainer.step()
        kernels.append(trainer.kernel_and_bias()[0])
    assert np.abs(kernels[0] - kernels[1]).max() > 1e-4
