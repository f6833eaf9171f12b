"""What the JAX and PyTorch ImageNet workloads share: the numpy pipeline and the architecture.

One family, two architectures: ``config.model['arch']`` names a ResNet (``resnet50``) or a ViT
(``vit_s16``); the variants (activation, batch-norm init scale, GLU, post-LN, MAP head) are
options of the same model, read by the model files. The training batches come from
`workloads.imagenet.data.numpy_batches`: for a ViT config they carry RandAugment and mixup with
soft (B, num_classes) float32 targets, for a ResNet config int32 class ids (upstream's
pipelines). Eval batches carry 'weights' (0 on padding).

Split sizes come from the config, and `load_split` refuses a prepared folder whose index does
not hold exactly that many images, so a real run always evaluates exactly
``num_validation_examples`` (50,000) images; tests pass configs with the fixture's sizes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from algoperf.workload_config import WorkloadConfig
from workloads.imagenet import data

ARCHITECTURES = ("resnet", "vit")


def architecture(config: WorkloadConfig) -> str:
    """``"resnet"`` or ``"vit"``: which model family ``config.model['arch']`` names."""
    arch = str(config.model.get("arch", ""))
    for kind in ARCHITECTURES:
        if arch.startswith(kind):
            return kind
    raise ValueError(
        f"workloads/imagenet/spec.py: {config.name} has model arch {arch!r}; "
        "use a resnet* or vit* architecture"
    )


class ImagenetData:
    """Mixin: ImageNet numpy batches (NHWC float32 224x224) and the fail-early data check.

    It also makes a framework's registry entry class (the class that sets ``architectures``,
    ``{"resnet": ..., "vit": ...}``) a factory: ``Entry(config)`` is an instance of the class
    of ``config.model['arch']``. One class per architecture serves all of its variants.
    """

    config: WorkloadConfig
    eval_num_workers: int | None
    architectures: ClassVar[dict[str, type]]

    def __new__(cls, config: WorkloadConfig | None = None, **kwargs: Any) -> Any:
        del kwargs
        if "architectures" in vars(cls):  # the entry class itself
            if config is None:
                raise TypeError(f"{cls.__name__} needs the workload config: {cls.__name__}(config)")
            cls = cls.architectures[architecture(config)]
        # Concrete classes are also created without arguments (copy, pickle).
        return super().__new__(cls)

    _output_param_keys: tuple[str, ...]  # set by the model plumbing class

    def _numpy_batches(
        self,
        split: str,
        data_dir: str,
        global_batch_size: int,
        seed: int,
        num_examples: int | None = None,
        start_step: int = 0,
        **options: Any,
    ) -> Iterator[dict[str, np.ndarray]]:
        """`data.numpy_batches`; eval splits decode with ``eval_num_workers`` loader workers."""
        if split != "train":
            options.setdefault("num_workers", self.eval_num_workers)
        return data.numpy_batches(
            data_dir,
            self.config,
            split,
            global_batch_size,
            seed,
            num_examples,
            start_step,
            **options,
        )

    def check_data(self, data_dir: str) -> None:
        """Fail before any log is written: the train and validation indexes must hold exactly the
        config's split sizes, and one training image must decode (in this thread: no workers)."""
        data.load_split(data_dir, self.config, "validation")
        loader = data.numpy_batches(data_dir, self.config, "train", 1, seed=0, num_workers=0)
        try:
            next(iter(loader))
        finally:
            loader.close()

    def is_output_params(self, param_key: Any) -> bool:
        return param_key in self._output_param_keys
