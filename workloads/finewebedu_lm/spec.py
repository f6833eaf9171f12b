"""FineWeb-Edu language modelling: the base workload the current AlgoPerf target set adds.

Numbers from upstream's `workload.py` (commit 4c37f2aa): the runner's target is perplexity
<= 22.432 (inclusive, unlike every other workload), there is no test split, and upstream's scoring
targets file holds 22.2995, which the scoring target sets keep (`scoring_validation_target_value`).
"""

from algoperf.registry import Dataset, Family, PrepareOption
from algoperf.spec import LossType
from algoperf.workload_config import WorkloadConfig

FINEWEBEDU_LM = WorkloadConfig(
    name="finewebedu_lm",
    base_name="finewebedu_lm",
    family="finewebedu_lm",
    dataset="finewebedu",
    target_metric_name="ppl",
    validation_target_value=22.432,
    # No test split: never compared (the runner skips the test target when there is no split).
    test_target_value=22.432,
    target_inclusive=True,
    scoring_validation_target_value=22.2995,
    loss_type=LossType.SOFTMAX_CROSS_ENTROPY,
    max_allowed_runtime_sec=31_967,
    eval_period_time_sec=2_571,
    step_hint=72_000,
    num_train_examples=8_749_870,
    num_eval_train_examples=10_000,
    num_validation_examples=100_000,
    num_test_examples=None,
    eval_batch_size=256,
    # Upstream's BaseLmWorkload sizes; bfloat16 compute with float32 parameters (param_map).
    model={
        "vocab_size": 50_257,
        "model_dim": 1024,
        "num_heads": 8,
        "num_layers": 12,
        "mlp_dim": 4096,
        "seq_len": 1024,
        "compute_dtype": "bfloat16",
    },
    benchmark=True,
    notes="runner target ppl <= 22.432 (upstream workload.py); scoring target 22.2995",
)

VARIANTS = {FINEWEBEDU_LM.name: FINEWEBEDU_LM}

# Listed last, as the newest base workload.
FAMILY = Family(
    name="finewebedu_lm",
    variants=VARIANTS,
    rank=101,
    implementations={
        "jax": "workloads.finewebedu_lm.workload_jax:LmWorkload",
        "pytorch": "workloads.finewebedu_lm.workload_pytorch:LmWorkload",
    },
    datasets=(
        Dataset(
            name="finewebedu",
            prepare="workloads.finewebedu_lm.data:prepare_dataset",
            fixture="workloads.finewebedu_lm.testing:write_fixture",
            options=(
                PrepareOption(
                    "--finewebedu_parquet_dir",
                    "parquet_dir",
                    "folder with fineweb-edu sample/10BT/*.parquet",
                ),
                PrepareOption(
                    "--finewebedu_ranks_file",
                    "ranks_file",
                    "GPT-2 BPE ranks (r50k_base.tiktoken or whisper's gpt2.tiktoken)",
                ),
                PrepareOption(
                    "--finewebedu_validation_sequences",
                    "validation_sequences",
                    "windows of 1,025 tokens held out for validation (default 100,000)",
                    kind="int",
                ),
            ),
            description="fineweb-edu sample-10BT parquet -> GPT-2 BPE uint16 windows, ~20 GB",
        ),
    ),
    synthetic_batch="workloads.finewebedu_lm.common:synthetic_batch",
    # 12 x 16,779,265 + tied embedding 51,463,168 + final norm 1,024.
    param_counts={"finewebedu_lm": 252_815_372},
)
