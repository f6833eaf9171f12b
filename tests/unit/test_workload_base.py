"""Target checks of the shared workload base (`algoperf.workload_base`)."""

from __future__ import annotations

import pytest

from algoperf import registry


@pytest.mark.parametrize("name", ["lm_bible", "finewebedu_lm"])
def test_without_a_test_split_a_run_stops_at_the_validation_target(name: str) -> None:
    """No test split: the test goal holds vacuously, so early stop depends on validation alone
    (otherwise such a run could never stop before its budget)."""
    pytest.importorskip("torch")
    config = registry.get_config(name)
    assert config.num_test_examples is None
    workload = registry.workload_class(name, "pytorch")(config=config)
    assert workload.has_reached_test_target({}) is True
    target = config.validation_target_value
    assert workload.has_reached_validation_target({"validation/ppl": target * 0.5})
    assert not workload.has_reached_validation_target({"validation/ppl": target * 2})


def test_with_a_test_split_the_test_target_must_be_reached() -> None:
    pytest.importorskip("torch")
    config = registry.get_config("mnist1d")
    workload = registry.workload_class("mnist1d", "pytorch")(config=config)
    assert not workload.has_reached_test_target({"test/accuracy": config.test_target_value - 0.1})
    assert workload.has_reached_test_target({"test/accuracy": 1.0})
