"""LibriSpeech 960h speech recognition: Conformer and DeepSpeech and their variants (upstream numbers)."""

import dataclasses

from algoperf.registry import Dataset, Family, PrepareOption
from algoperf.spec import LossType
from algoperf.workload_config import JAX_MEMORY_FRACTION, WorkloadConfig

CONFORMER = WorkloadConfig(
    name="librispeech_conformer",
    base_name="librispeech_conformer",
    family="librispeech",
    dataset="librispeech",
    target_metric_name="wer",
    validation_target_value=0.085884,
    test_target_value=0.052981,
    loss_type=LossType.CTC_LOSS,
    max_allowed_runtime_sec=58_015,
    eval_period_time_sec=1440,
    step_hint=76_000,
    num_train_examples=263_840,
    num_eval_train_examples=5376,
    num_validation_examples=5348,
    num_test_examples=2472,
    eval_batch_size=256,
    dropout_rate=0.1,
    model={
        "arch": "conformer",
        "attention_temperature": 1.0,
        "use_post_layer_norm": True,
        "activation": "swish",
    },
    benchmark=True,
    torch_compile_model=False,
    environment={**JAX_MEMORY_FRACTION, "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"},
)

# Built with `dataclasses.replace`, not `variant`, so that no conformer model option is inherited.
DEEPSPEECH = dataclasses.replace(
    CONFORMER,
    name="librispeech_deepspeech",
    base_name="librispeech_deepspeech",
    validation_target_value=0.119936,
    test_target_value=0.074143,
    max_allowed_runtime_sec=44_405,
    step_hint=38_400,
    torch_compile_loss=True,
    environment=JAX_MEMORY_FRACTION,
    model={
        "arch": "deepspeech",
        "activation": "relu",
        "use_residual": True,
        "layernorm_everywhere": False,
        "enable_decoder_layer_norm": True,
        "freq_mask_count": 2,
        "time_mask_count": 10,
    },
)

VARIANTS = {
    c.name: c
    for c in (
        CONFORMER,
        CONFORMER.variant(
            "librispeech_conformer_attention_temperature",
            model={"attention_temperature": 1.6},
            validation_target_value=0.109977,
            test_target_value=0.068065,
            benchmark=False,
        ),
        CONFORMER.variant(
            "librispeech_conformer_layernorm",
            model={"use_post_layer_norm": False},
            validation_target_value=0.09731,
            test_target_value=0.05996,
            benchmark=False,
        ),
        CONFORMER.variant(
            "librispeech_conformer_gelu",
            model={"activation": "gelu"},
            validation_target_value=0.094114,
            test_target_value=0.056629,
            benchmark=False,
        ),
        DEEPSPEECH,
        DEEPSPEECH.variant(
            "librispeech_deepspeech_tanh",
            model={"activation": "tanh"},
            validation_target_value=0.150883,
            test_target_value=0.098613,
            benchmark=False,
        ),
        DEEPSPEECH.variant(
            "librispeech_deepspeech_no_resnet",
            model={"use_residual": False},
            validation_target_value=0.131564,
            test_target_value=0.079297,
            benchmark=False,
        ),
        DEEPSPEECH.variant(
            "librispeech_deepspeech_norm_and_spec_aug",
            model={
                "layernorm_everywhere": True,
                "enable_decoder_layer_norm": False,
                "freq_mask_count": 4,
                "time_mask_count": 15,
            },
            eval_batch_size=128,
            validation_target_value=0.14342,
            test_target_value=0.090976,
            benchmark=False,
        ),
    )
}

# Upstream's trainable parameter counts. DeepSpeech's differ per framework: PyTorch's nn.LSTM
# has two bias vectors per gate where flax's cell has one (+12,288).
_CONFORMER_COUNT = 32_321_792
_DEEPSPEECH_COUNT = {"jax": 18_381_312, "pytorch": 18_393_600}

FAMILY = Family(
    name="librispeech",
    variants=VARIANTS,
    implementations={
        "jax": "workloads.librispeech.workload_jax:LibrispeechWorkload",
        "pytorch": "workloads.librispeech.workload_pytorch:LibrispeechWorkload",
    },
    datasets=(
        Dataset(
            name="librispeech",
            prepare="workloads.librispeech.data:prepare_dataset",
            fixture="workloads.librispeech.testing:write_fixture",
            options=(
                PrepareOption(
                    "--librispeech_tokenizer_vocab_path",
                    "tokenizer_vocab_path",
                    "an existing SentencePiece model (upstream's spm_model.vocab) instead of "
                    "training one on train-clean-100",
                ),
            ),
            description="LibriSpeech 960 h, OpenSLR 12 tarballs (FLAC), 60 GB; int16 shards 97 GB",
        ),
    ),
    synthetic_batch="workloads.librispeech.data:synthetic_batch",
    param_counts={
        "librispeech_conformer": _CONFORMER_COUNT,
        "librispeech_conformer_attention_temperature": _CONFORMER_COUNT,
        "librispeech_conformer_layernorm": 32_317_696,
        "librispeech_conformer_gelu": _CONFORMER_COUNT,
        "librispeech_deepspeech": _DEEPSPEECH_COUNT,
        "librispeech_deepspeech_tanh": _DEEPSPEECH_COUNT,
        "librispeech_deepspeech_no_resnet": _DEEPSPEECH_COUNT,
        "librispeech_deepspeech_norm_and_spec_aug": {"jax": 18_380_288, "pytorch": 18_392_576},
    },
)
