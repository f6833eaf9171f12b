"""The core API, registry and workload specs import without JAX or PyTorch."""

import subprocess
import sys

BLOCKED = """
import sys
class _Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('jax', 'jaxlib', 'flax', 'optax', 'torch'):
            raise ImportError(f'{name} is blocked in this test')
        return None
sys.meta_path.insert(0, _Blocker())
import algoperf, algoperf.spec, algoperf.registry, algoperf.workload_config, algoperf.cli
import algoperf.tuning, algoperf.rng, algoperf.random_utils, algoperf.logs
from algoperf import registry
for family in registry.FAMILIES:
    __import__(f'workloads.{family}.spec')
configs = registry.all_configs()
assert len(configs) > 30, len(configs)
assert registry.get_config('fashion_mnist').base_name == 'mnist'
assert not any(m.split('.')[0] in ('jax', 'torch') for m in sys.modules)
print('ok')
"""


def test_core_imports_without_frameworks():
    out = subprocess.run([sys.executable, "-c", BLOCKED], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_spec_has_upstream_api():
    from algoperf import spec

    assert [m.name for m in spec.LossType] == [
        "SOFTMAX_CROSS_ENTROPY",
        "SIGMOID_CROSS_ENTROPY",
        "MEAN_SQUARED_ERROR",
        "CTC_LOSS",
        "MEAN_ABSOLUTE_ERROR",
    ]
    assert [m.value for m in spec.ParameterType] == list(range(15))
    abstract = spec.Workload.__abstractmethods__
    for name in (
        "target_metric_name",
        "has_reached_validation_target",
        "has_reached_test_target",
        "_build_input_queue",
        "validation_target_value",
        "test_target_value",
        "loss_type",
        "num_train_examples",
        "eval_batch_size",
        "num_eval_train_examples",
        "num_validation_examples",
        "num_test_examples",
        "train_mean",
        "train_stddev",
        "max_allowed_runtime_sec",
        "eval_period_time_sec",
        "step_hint",
        "is_output_params",
        "init_model_fn",
        "model_fn",
        "loss_fn",
        "_eval_model_on_split",
    ):
        assert name in abstract, name
    import inspect

    assert list(inspect.signature(spec.update_params).parameters) == [
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
    ]
    assert list(inspect.signature(spec.Workload.model_fn).parameters)[1:] == [
        "params",
        "augmented_and_preprocessed_input_batch",
        "model_state",
        "mode",
        "rng",
        "update_batch_norm",
        "dropout_rate",
    ]
    assert issubclass(spec.TrainingCompleteError, Exception)
