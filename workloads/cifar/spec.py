"""CIFAR-10 with a ResNet-18 (CIFAR stem): upstream's development workload."""

from algoperf.registry import Dataset, Family
from algoperf.spec import LossType
from algoperf.workload_config import WorkloadConfig

CIFAR = WorkloadConfig(
    name="cifar",
    base_name="cifar",
    family="cifar",
    dataset="cifar10",
    target_metric_name="accuracy",
    validation_target_value=0.85,
    test_target_value=0.85,
    loss_type=LossType.SOFTMAX_CROSS_ENTROPY,
    max_allowed_runtime_sec=3600,
    eval_period_time_sec=600,
    step_hint=4883,
    num_train_examples=45_000,
    num_eval_train_examples=5120,
    num_validation_examples=5000,
    num_test_examples=10_000,
    eval_batch_size=1024,
    train_mean=(0.49139968, 0.48215827, 0.44653124),
    train_stddev=(0.24703233, 0.24348505, 0.26158768),
    model={"num_classes": 10, "stage_sizes": (2, 2, 2, 2), "num_filters": 64},
    dev_only=True,
)

VARIANTS = {CIFAR.name: CIFAR}

FAMILY = Family(
    name="cifar",
    variants=VARIANTS,
    implementations={
        "jax": "workloads.cifar.workload_jax:CifarWorkload",
        "pytorch": "workloads.cifar.workload_pytorch:CifarWorkload",
    },
    datasets=(
        Dataset(
            name="cifar10",
            prepare="workloads.cifar.data:prepare_dataset",
            fixture="workloads.cifar.testing:write_dataset_fixture",
            description="CIFAR-10, the official cifar-10-python.tar.gz",
        ),
    ),
    synthetic_batch="workloads.cifar.data:synthetic_batch",
    param_counts={"cifar": 11_173_962},
    rank=1,
)
