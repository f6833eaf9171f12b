"""finewebedu_lm: the spec's upstream numbers, and the data pipeline on parquet fixtures."""

from __future__ import annotations

from scoring import targets as tg
from workloads.finewebedu_lm.spec import FINEWEBEDU_LM


def test_spec_follows_upstream_workload_numbers():
    c = FINEWEBEDU_LM
    assert (c.max_allowed_runtime_sec, c.eval_period_time_sec, c.step_hint) == (
        31_967,
        2_571,
        72_000,
    )
    assert (c.eval_batch_size, c.num_train_examples, c.num_eval_train_examples) == (
        256,
        8_749_870,
        10_000,
    )
    assert (c.num_validation_examples, c.num_test_examples) == (100_000, None)
    assert (c.validation_target_value, c.maximize) == (22.432, False)


def test_runner_target_is_inclusive_and_scoring_keeps_its_own_target():
    c = FINEWEBEDU_LM
    assert c.reached(22.432, c.validation_target_value)  # upstream compares with <=
    assert not c.reached(22.4321, c.validation_target_value)
    # Every other workload stays strict.
    from workloads.wmt.spec import WMT

    assert not WMT.reached(WMT.validation_target_value, WMT.validation_target_value)
    current = tg.load_targets("current").workloads["finewebedu_lm"]
    assert (current.validation_target_value, current.max_allowed_runtime_sec) == (22.2995, 31_967)
