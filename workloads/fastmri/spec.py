"""fastMRI knee single-coil reconstruction with a U-Net and its variants (upstream numbers)."""

from algoperf.registry import Dataset, Family, PrepareOption
from algoperf.spec import LossType
from algoperf.workload_config import WorkloadConfig

FASTMRI = WorkloadConfig(
    name="fastmri",
    base_name="fastmri",
    family="fastmri",
    dataset="fastmri",
    target_metric_name="ssim",
    validation_target_value=0.723653,
    test_target_value=0.740633,
    loss_type=LossType.MEAN_ABSOLUTE_ERROR,
    max_allowed_runtime_sec=4430,
    eval_period_time_sec=80,
    step_hint=18_094,
    num_train_examples=34_742,
    num_eval_train_examples=3584,
    num_validation_examples=3554,
    num_test_examples=3581,
    eval_batch_size=256,
    dropout_rate=0.0,
    model={
        "num_channels": 32,
        "num_pool_layers": 4,
        "activation": "leaky_relu",
        "use_layer_norm": False,
    },
    benchmark=True,
    torch_compile_loss=True,
)

VARIANTS = {
    c.name: c
    for c in (
        FASTMRI,
        FASTMRI.variant(
            "fastmri_model_size",
            model={"num_channels": 64, "num_pool_layers": 3},
            validation_target_value=0.723559,
            test_target_value=0.740726,
            benchmark=False,
        ),
        FASTMRI.variant(
            "fastmri_tanh",
            model={"activation": "tanh"},
            validation_target_value=0.717840,
            test_target_value=0.734505,
            benchmark=False,
        ),
        FASTMRI.variant(
            "fastmri_layernorm",
            model={"use_layer_norm": True},
            validation_target_value=0.723284,
            test_target_value=0.739996,
            benchmark=False,
        ),
    )
}

FAMILY = Family(
    name="fastmri",
    variants=VARIANTS,
    implementations={
        "jax": "workloads.fastmri.workload_jax:FastmriWorkload",
        "pytorch": "workloads.fastmri.workload_pytorch:FastmriWorkload",
    },
    datasets=(
        Dataset(
            name="fastmri",
            prepare="workloads.fastmri.data:prepare_dataset",
            fixture="workloads.fastmri.data:write_cli_fixture",
            # The NYU archives need registration: the user names the files they downloaded.
            options=(
                PrepareOption("--fastmri_train_tar", "train_tar", "knee_singlecoil_train.tar.xz"),
                PrepareOption("--fastmri_val_tar", "val_tar", "knee_singlecoil_val.tar.xz"),
            ),
            description="NYU fastMRI knee single-coil h5 volumes (user-supplied archives)",
        ),
    ),
    synthetic_batch="workloads.fastmri.data:synthetic_batch",
    param_counts={
        "fastmri": 7_756_097,
        "fastmri_model_size": 7_692_929,
        "fastmri_tanh": 7_756_097,
        "fastmri_layernorm": 7_761_985,
    },
)
