"""The `algoperf datasets prepare` entry of a family's prepare function (registry signature)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def prepare_entry(prepare: Callable[..., Path], dataset_name: str) -> Callable[..., Path]:
    """Wrap ``prepare(data_dir, *, progress, **options)`` as the registry's prepare function.

    The wrapper refuses other dataset names and ignores `offline_fallback` (for datasets that
    have no offline source).
    """

    def prepare_dataset(
        dataset: str,
        data_dir: Path | str,
        *,
        offline_fallback: bool = True,
        progress: bool = True,
        **options: Any,
    ) -> Path:
        del offline_fallback
        if dataset != dataset_name:
            raise ValueError(f"{prepare.__module__} prepares {dataset_name!r}, not {dataset!r}")
        return prepare(data_dir, progress=progress, **options)

    prepare_dataset.__doc__ = f"`algoperf datasets prepare {dataset_name}` entry."
    return prepare_dataset
