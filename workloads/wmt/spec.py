"""WMT17 German-to-English translation with a Transformer and its variants (upstream numbers).

`wmt_bible` (AlgoPerf-mini) is a small Transformer on verse-aligned Spanish->English Bibles
(`workloads.wmt.bible`: Debian's SWORD modules, installable offline), rows of 128 tokens and a
2,048-piece vocabulary, targeting validation cross-entropy (`TARGETS.md` in this folder).
"""

from algoperf.registry import Dataset, Family, PrepareOption
from algoperf.spec import LossType
from algoperf.workload_config import WorkloadConfig

WMT = WorkloadConfig(
    name="wmt",
    base_name="wmt",
    family="wmt",
    dataset="wmt",
    target_metric_name="bleu",  # upstream: corpus BLEU of beam-4 translations (workloads.wmt.common)
    validation_target_value=30.8491,
    test_target_value=30.7219,
    loss_type=LossType.SOFTMAX_CROSS_ENTROPY,
    max_allowed_runtime_sec=43_336,
    eval_period_time_sec=840,
    step_hint=120_000,
    num_train_examples=5_906_184,
    num_eval_train_examples=3072,  # upstream: validation size rounded up to eval batches, 24 x 128
    num_validation_examples=3000,
    num_test_examples=3003,
    eval_batch_size=128,
    dropout_rate=0.1,
    model={
        "vocab_size": 32_000,
        "emb_dim": 1024,
        "num_heads": 16,
        "num_layers": 6,
        "mlp_dim": 1024,
        "max_len": 256,
        "pre_ln": True,
        "attention_temp": 1.0,
        "activation": "relu",
        "glu": False,
    },
    benchmark=True,
    torch_compile_loss=True,
)

# AlgoPerf-mini's translation workload (workloads/wmt/TARGETS.md: how its numbers were set). A
# budget of seconds on one CPU thread is far too short for BLEU to leave zero (measured: 0.0-0.2
# after 200 steps), so the target is the validation token cross-entropy and the eval does not
# translate; eval sizes are cut so that an eval costs a small share of an eval period.
WMT_BIBLE = WMT.variant(
    "wmt_bible",
    # The budget rule per framework (TARGETS.md); `make demo` runs its framework's.
    framework_budgets_sec={"pytorch": 11, "jax": 43},
    dataset="wmt_bible",
    target_metric_name="loss",
    # Median best validation loss of 5 re-runs (6.044023) and the worst test loss among those
    # reaching it (6.024862), rounded up in the 5th decimal so that the strict `<` counts them.
    validation_target_value=6.04403,
    test_target_value=6.02487,
    max_allowed_runtime_sec=43,
    eval_period_time_sec=2,
    step_hint=70,
    num_train_examples=12_123,  # packed rows of 128 tokens (30,937 verse pairs)
    num_eval_train_examples=16,
    num_validation_examples=32,  # the first 32 verses of Ruth (85)
    num_test_examples=16,  # the first 16 verses of Jonah (47)
    # 8 rows per device chunk (eval_batch_size // 8): 32, 16 and 16 rows, no padding.
    eval_batch_size=64,
    dropout_rate=0.1,
    model={
        "vocab_size": 2048,
        "emb_dim": 64,
        "num_heads": 2,
        "num_layers": 2,
        "mlp_dim": 128,
        "max_len": 128,
        # Every held-out reference is under 100 pieces (at most 95 generated ids), should a run
        # turn BLEU back on (greedy then: beam search costs 10x on a CPU).
        "max_decode_len": 96,
        "beam_size": 1,
        "eval_bleu": False,
        "eval_prefix": True,
    },
    benchmark=False,
    dev_only=True,
    version=2,
    notes="AlgoPerf-mini translation: a 297k-parameter Transformer on verse-aligned "
    "Spanish->English Bibles; target: validation cross-entropy (no BLEU: it stays at zero in "
    "a budget of seconds); targets set by the protocol (workloads/wmt/TARGETS.md)",
)

VARIANTS = {
    c.name: c
    for c in (
        WMT,
        WMT.variant(
            "wmt_post_ln",
            model={"pre_ln": False},
            validation_target_value=30.0779,
            test_target_value=29.8982,
            benchmark=False,
        ),
        WMT.variant(
            "wmt_attention_temp",
            model={"attention_temp": 4.0},
            validation_target_value=29.3379,
            test_target_value=29.4143,
            benchmark=False,
        ),
        WMT.variant(
            "wmt_glu_tanh",
            model={"activation": "tanh", "glu": True},
            validation_target_value=29.5779,
            test_target_value=29.0515,
            benchmark=False,
        ),
        WMT_BIBLE,
    )
}

FAMILY = Family(
    name="wmt",
    variants=VARIANTS,
    implementations={
        "jax": "workloads.wmt.workload_jax:WmtWorkload",
        "pytorch": "workloads.wmt.workload_pytorch:WmtWorkload",
    },
    datasets=(
        Dataset(
            name="wmt",
            prepare="workloads.wmt.data:prepare_dataset",
            fixture="workloads.wmt.testing:write_fixture",
            options=(
                PrepareOption(
                    "--wmt_source_dir",
                    "source_dir",
                    "folder with the extracted WMT17 de-en corpora and newstest2013/2014 SGM "
                    "(default: download the release archives, 1.9 GB, verified)",
                ),
                PrepareOption(
                    "--wmt_spm_model", "spm_model", "an existing SentencePiece model (upstream's)"
                ),
            ),
            description="WMT17 de-en release archives (downloaded, 1.9 GB) -> 32k SentencePiece, "
            "packed, ~1.5 GB",
        ),
        Dataset(
            name="wmt_bible",
            prepare="workloads.wmt.bible:prepare_dataset",
            fixture="workloads.wmt.bible:write_fixture",
            description="verse-aligned Spanish (Reina-Valera 1909) -> English (World English "
            "Bible) from Debian sword-text-sparv / sword-text-web -> 2k SentencePiece, rows of "
            "128, ~40 MB",
        ),
    ),
    synthetic_batch="workloads.wmt.common:synthetic_batch",
    param_counts={
        "wmt": 133_521_408,
        "wmt_post_ln": 133_517_312,
        "wmt_attention_temp": 133_521_408,
        "wmt_glu_tanh": 146_116_608,
        "wmt_bible": 297_216,
    },
)
