"""fastMRI knee single-coil reconstruction with a U-Net and its variants (upstream numbers)."""

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
