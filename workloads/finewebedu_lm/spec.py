"""FineWeb-Edu language modelling: the base workload the current AlgoPerf target set adds.

Only the scoring numbers are fixed upstream (target metric `ppl`, validation target 22.2995,
step hint 72,000); the remaining numbers follow the upstream work-in-progress branch and are
placeholders until upstream publishes them.
"""

from algoperf.registry import Family
from algoperf.spec import LossType
from algoperf.workload_config import WorkloadConfig

FINEWEBEDU_LM = WorkloadConfig(
    name="finewebedu_lm",
    base_name="finewebedu_lm",
    family="finewebedu_lm",
    dataset="finewebedu",
    target_metric_name="ppl",
    validation_target_value=22.2995,
    test_target_value=22.2995,
    loss_type=LossType.SOFTMAX_CROSS_ENTROPY,
    max_allowed_runtime_sec=14_400,
    eval_period_time_sec=600,
    step_hint=72_000,
    num_train_examples=1_000_000,
    num_eval_train_examples=10_000,
    num_validation_examples=50_000,
    num_test_examples=None,
    eval_batch_size=8,
    benchmark=True,
    notes="targets from the current upstream target set; other numbers provisional",
)

VARIANTS = {FINEWEBEDU_LM.name: FINEWEBEDU_LM}

# Listed with upstream's numbers; no implementation or dataset yet.
# Listed last, as the newest base workload.
FAMILY = Family(name="finewebedu_lm", variants=VARIANTS, rank=101)
