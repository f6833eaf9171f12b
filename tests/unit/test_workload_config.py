"""`WorkloadConfig`: per-framework eval sizes, and the runner's use of them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from algoperf import registry
from algoperf.workload_base import ConfiguredWorkload
from algoperf.workload_config import WorkloadConfig


def _config(**changes) -> WorkloadConfig:
    return registry.get_config("mnist").variant("cfg_test", **changes)


def test_eval_train_size_is_the_recorded_one_by_default():
    config = _config(num_eval_train_examples=1000, eval_batch_size_overrides={"pytorch": 300})
    assert config.num_eval_train_examples_for("jax") == 1000
    assert config.num_eval_train_examples_for("pytorch") == 1000


def test_eval_train_rounded_up_to_whole_eval_batches_per_framework():
    config = _config(
        num_eval_train_examples=1000,
        eval_batch_size=256,
        eval_batch_size_overrides={"pytorch": 300},
        eval_train_whole_eval_batches=True,
    )
    assert config.num_eval_train_examples_for("jax") == 1024  # 4 batches of 256
    assert config.num_eval_train_examples_for("pytorch") == 1200  # 4 batches of 300
    exact = _config(num_eval_train_examples=768, eval_batch_size=256)
    assert (
        exact.variant("x", eval_train_whole_eval_batches=True).num_eval_train_examples_for("jax")
        == 768
    )


def test_criteo1tb_numbers_as_upstream():
    config = registry.get_config("criteo1tb")
    assert config.num_eval_train_examples_for("jax") == 83_361_792
    assert config.num_eval_train_examples_for("pytorch") == 83_279_872


def test_fixture_sizes_go_through_the_same_rule(tmp_path):
    """A fixture records its own sizes and caps the eval batch; the rule applies to them."""
    folder = tmp_path / "criteo1tb"
    folder.mkdir()
    record = {
        "dataset": "criteo1tb",
        "writer": "workloads.criteo1tb.testing:write_fixture",
        "config": {
            "num_train_examples": 1472,
            "num_eval_train_examples": 522,
            "num_validation_examples": 522,
            "num_test_examples": 608,
            "eval_batch_size": 256,
        },
    }
    (folder / registry.FIXTURE_FILE).write_text(json.dumps(record))
    config = registry.apply_fixture(registry.get_config("criteo1tb_test"), tmp_path)
    assert config.num_eval_train_examples_for("jax") == 768
    assert config.num_eval_train_examples_for("pytorch") == 768


class _Recorder(ConfiguredWorkload):
    """Records the example count the eval asks of each split (no model, no data)."""

    def __init__(self, config: WorkloadConfig, framework: str) -> None:
        super().__init__(config)
        self.framework = framework
        self.asked: dict[str, int] = {}

    def _eval_model_on_split(self, split, num_examples, *args, **kwargs):
        self.asked[split] = num_examples
        return {"loss": 0.0}

    def _numpy_batches(self, *args, **kwargs):
        raise NotImplementedError

    def _to_device(self, batch):
        return batch

    def _eval_batch(self, *args):
        return {}

    def init_model_fn(self, rng):
        raise NotImplementedError

    def model_fn(self, *args, **kwargs):
        raise NotImplementedError

    def is_output_params(self, param_key):
        return False


@pytest.mark.parametrize(("framework", "expected"), [("jax", 83_361_792), ("pytorch", 83_279_872)])
def test_the_eval_asks_the_frameworks_eval_train_size(framework, expected):
    workload = _Recorder(registry.get_config("criteo1tb"), framework)
    assert workload.num_eval_train_examples == expected
    workload.eval_model(131_072, None, None, np.zeros(2), "/nonexistent", None, 0)
    assert workload.asked == {
        "eval_train": expected,
        "validation": 83_274_637,
        "test": 95_000_000,
    }


def test_per_framework_budgets_never_exceed_the_workload_budget():
    """The mini rule: the budget is the slower framework's; each framework's own is at most it."""
    from algoperf import registry

    with_budgets = {n: c for n, c in registry.all_configs().items() if c.framework_budgets_sec}
    assert {"fashion_mnist", "mnist1d", "ogbg_solubility", "wmt_bible", "lm_bible"} <= set(
        with_budgets
    )
    for name, c in with_budgets.items():
        assert set(c.framework_budgets_sec) == {"jax", "pytorch"}, name
        assert max(c.framework_budgets_sec.values()) == c.max_allowed_runtime_sec, name
        assert c.budget_for("pytorch") == c.framework_budgets_sec["pytorch"]
    assert registry.get_config("mnist").budget_for("jax") == 60
