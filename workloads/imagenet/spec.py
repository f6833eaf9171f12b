"""ImageNet-1k workloads: ResNet-50 and ViT-S/16 and their variants (test split: ImageNet-v2)."""

from algoperf.registry import Dataset, Family, PrepareOption
from algoperf.spec import LossType
from algoperf.workload_config import JAX_MEMORY_FRACTION, WorkloadConfig

_IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
_IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)

RESNET = WorkloadConfig(
    name="imagenet_resnet",
    base_name="imagenet_resnet",
    family="imagenet",
    dataset="imagenet",
    target_metric_name="accuracy",
    validation_target_value=1 - 0.22569,
    test_target_value=1 - 0.3440,
    loss_type=LossType.SOFTMAX_CROSS_ENTROPY,
    max_allowed_runtime_sec=66_159,
    eval_period_time_sec=510,
    step_hint=195_999,
    num_train_examples=1_281_167,
    num_eval_train_examples=50_176,
    num_validation_examples=50_000,
    num_test_examples=10_000,
    eval_batch_size=1024,
    train_mean=_IMAGENET_MEAN,
    train_stddev=_IMAGENET_STD,
    model={"arch": "resnet50", "activation": "relu", "bn_init_scale": 0.0, "num_classes": 1000},
    benchmark=True,
)

VIT = WorkloadConfig(
    name="imagenet_vit",
    base_name="imagenet_vit",
    family="imagenet",
    dataset="imagenet",
    target_metric_name="accuracy",
    validation_target_value=1 - 0.22691,
    test_target_value=1 - 0.3481,
    loss_type=LossType.SOFTMAX_CROSS_ENTROPY,
    max_allowed_runtime_sec=69_768,
    eval_period_time_sec=420,
    step_hint=167_999,
    num_train_examples=1_281_167,
    num_eval_train_examples=51_200,
    num_validation_examples=50_000,
    num_test_examples=10_000,
    eval_batch_size=2048,
    train_mean=_IMAGENET_MEAN,
    train_stddev=_IMAGENET_STD,
    dropout_rate=0.0,
    model={
        "arch": "vit_s16",
        "use_glu": False,
        "use_post_layer_norm": False,
        "use_map": False,
        "num_classes": 1000,
    },
    benchmark=True,
    torch_compile_model=False,
    environment=JAX_MEMORY_FRACTION,
)

VARIANTS = {
    c.name: c
    for c in (
        RESNET,
        RESNET.variant(
            "imagenet_resnet_silu",
            model={"activation": "silu"},
            validation_target_value=0.75445,
            test_target_value=0.6323,
            benchmark=False,
        ),
        RESNET.variant(
            "imagenet_resnet_gelu",
            model={"activation": "gelu"},
            validation_target_value=0.76765,
            test_target_value=0.6519,
            benchmark=False,
        ),
        RESNET.variant(
            "imagenet_resnet_large_bn_init",
            model={"bn_init_scale": 8.0},
            validation_target_value=0.76526,
            test_target_value=0.6423,
            benchmark=False,
        ),
        VIT,
        VIT.variant(
            "imagenet_vit_glu",
            model={"use_glu": True},
            validation_target_value=0.75738,
            test_target_value=0.6359,
            benchmark=False,
        ),
        VIT.variant(
            "imagenet_vit_post_ln",
            model={"use_post_layer_norm": True},
            validation_target_value=0.75312,
            test_target_value=0.6286,
            benchmark=False,
        ),
        VIT.variant(
            "imagenet_vit_map",
            model={"use_map": True},
            validation_target_value=0.77113,
            test_target_value=0.6523,
            benchmark=False,
        ),
    )
}

# ImageNet cannot be downloaded without registration: the options name the archives the user
# downloaded (each defaults to its official file name under <root>/imagenet/downloads/, <root>
# or <root>/imagenet/; see `workloads.imagenet.data.prepare`).
_ARCHIVE_OPTIONS = (
    PrepareOption("--imagenet_train_tar", "train_tar", "ILSVRC2012_img_train.tar"),
    PrepareOption("--imagenet_val_tar", "val_tar", "ILSVRC2012_img_val.tar"),
    PrepareOption(
        "--imagenet_devkit_tar",
        "devkit_tar",
        "ILSVRC2012_devkit_t12.tar.gz (validation labels)",
    ),
    PrepareOption(
        "--imagenet_val_labels",
        "val_labels",
        "instead of the devkit: a file pairing validation images with WordNet ids "
        "(valprep.sh, LOC_val_solution.csv or '<file> <wnid>' lines)",
    ),
    PrepareOption(
        "--imagenet_v2_tar",
        "v2_tar",
        "imagenetv2-matched-frequency.tar.gz (the test split)",
    ),
    PrepareOption(
        "--imagenet_download_v2",
        "download_v2",
        "download ImageNet-v2 (the test split) when --imagenet_v2_tar is not found (default: on)",
        kind="bool",
    ),
    PrepareOption(
        "--imagenet_skip_checksums",
        "checksums",
        "do not verify the archives against the official checksums (not recommended: a "
        "corrupt archive then shows up only when an image fails to decode)",
        kind="const",
        const={role: None for role in ("train", "val", "devkit", "v2")},
    ),
)

FAMILY = Family(
    name="imagenet",
    variants=VARIANTS,
    # One entry class per framework: it builds the ResNet or ViT workload of config.model["arch"].
    implementations={
        "jax": "workloads.imagenet.workload_jax:ImagenetWorkload",
        "pytorch": "workloads.imagenet.workload_pytorch:ImagenetWorkload",
    },
    datasets=(
        Dataset(
            name="imagenet",
            prepare="workloads.imagenet.data:prepare_dataset",
            fixture="workloads.imagenet.testing:write_dataset_fixture",
            options=_ARCHIVE_OPTIONS,
            exclusive=(("devkit_tar", "val_labels"),),
            description="ILSVRC2012 archives supplied by the user, ImageNet-v2 test split",
        ),
    ),
    synthetic_batch="workloads.imagenet.data:synthetic_batch",
    param_counts={
        **dict.fromkeys(
            ("imagenet_resnet", "imagenet_resnet_silu", "imagenet_resnet_gelu"), 25_557_032
        ),
        "imagenet_resnet_large_bn_init": 25_557_032,
        "imagenet_vit": 22_122_472,
        "imagenet_vit_glu": 50_452_456,
        "imagenet_vit_post_ln": 22_121_704,
        "imagenet_vit_map": 23_896_552,
    },
)
