"""Criteo 1TB click-through-rate prediction with DLRM-small and its variants (upstream numbers)."""

from algoperf.registry import Dataset, Family, PrepareOption
from algoperf.spec import LossType
from algoperf.workload_config import JAX_MEMORY_FRACTION, WorkloadConfig

CRITEO1TB = WorkloadConfig(
    name="criteo1tb",
    base_name="criteo1tb",
    family="criteo1tb",
    dataset="criteo1tb",
    target_metric_name="loss",
    validation_target_value=0.123735,
    test_target_value=0.126041,
    loss_type=LossType.SIGMOID_CROSS_ENTROPY,
    max_allowed_runtime_sec=7703,
    eval_period_time_sec=120,
    step_hint=10_666,
    num_train_examples=4_195_197_692,
    # Upstream: the validation size rounded up to whole eval batches, per framework
    # (JAX 83,361,792 at 131,072; PyTorch 83,279,872 at 8,192).
    num_eval_train_examples=83_274_637,
    eval_train_whole_eval_batches=True,
    num_validation_examples=83_274_637,
    num_test_examples=95_000_000,
    eval_batch_size=131_072,
    eval_batch_size_overrides={"pytorch": 8192},
    dropout_rate=0.0,
    model={
        "vocab_size": 4_194_304,
        "embed_dim": 128,
        "use_layer_norm": False,
        "embedding_init_multiplier": None,
        "use_resnet": False,
    },
    benchmark=True,
    torch_compile_model=False,
    environment=JAX_MEMORY_FRACTION,
)

# Upstream's Criteo1TbDlrmSmallTestWorkload: the base workload at vocab 32 * 128 * 16, a CPU-sized
# configuration. Registered for development (dev_only, never scored); its targets are the base's.
CRITEO1TB_TEST = CRITEO1TB.variant(
    "criteo1tb_test", model={"vocab_size": 65_536}, benchmark=False, dev_only=True
)

VARIANTS = {
    c.name: c
    for c in (
        CRITEO1TB,
        CRITEO1TB.variant(
            "criteo1tb_layernorm",
            model={"use_layer_norm": True},
            validation_target_value=0.123757,
            test_target_value=0.126152,
            benchmark=False,
        ),
        CRITEO1TB.variant(
            "criteo1tb_embed_init",
            model={"embedding_init_multiplier": 1.0},
            validation_target_value=0.129657,
            test_target_value=0.131967,
            benchmark=False,
        ),
        CRITEO1TB.variant(
            "criteo1tb_resnet",
            model={"use_resnet": True},
            validation_target_value=0.12415,
            test_target_value=0.12648,
            benchmark=False,
        ),
        CRITEO1TB_TEST,
    )
}

FAMILY = Family(
    name="criteo1tb",
    variants=VARIANTS,
    implementations={
        "jax": "workloads.criteo1tb.workload_jax:Criteo1TbWorkload",
        "pytorch": "workloads.criteo1tb.workload_pytorch:Criteo1TbWorkload",
    },
    datasets=(
        Dataset(
            name="criteo1tb",
            prepare="workloads.criteo1tb.data:prepare_dataset",
            fixture="workloads.criteo1tb.testing:write_fixture",
            # Criteo's terms need accepting: the user downloads day_0.gz ... day_23.gz.
            options=(
                PrepareOption(
                    "--criteo1tb_source_dir", "source_dir", "folder with day_0.gz ... day_23.gz"
                ),
                PrepareOption(
                    "--criteo1tb_workers", "workers", "days converted at once (processes)", "int"
                ),
            ),
            description="Criteo 1TB Click Logs, 24 day_N.gz TSV files (user-supplied)",
        ),
    ),
    synthetic_batch="workloads.criteo1tb.data:synthetic_batch",
    param_counts={
        "criteo1tb": 539_267_457,
        "criteo1tb_layernorm": 539_275_137,
        "criteo1tb_embed_init": 539_267_457,
        "criteo1tb_resnet": 538_121_473,
        "criteo1tb_test": 10_785_153,
    },
)
