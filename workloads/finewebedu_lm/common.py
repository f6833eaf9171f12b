"""What the JAX and PyTorch finewebedu_lm workloads share: window batches, the data check, the eval.

**Batches** come from the prepared uint16 windows of the dataset the config names
(``config.dataset``: ``finewebedu``'s 1,025 tokens, `workloads.finewebedu_lm.data`; or
``lm_bible``'s, `workloads.finewebedu_lm.bible`): ``inputs = w[:-1]`` and ``targets = w[1:]``,
int32 (batch, window - 1), as upstream's input pipeline. The window length and the vocabulary
are read from the prepared ``meta.json`` and checked against the model (`LmData.check_data`).

* ``train``: infinite; each epoch visits the train windows in a fresh permutation
  (`algoperf.data.iterators.train_batches`: batch ``k`` is a function of the seed and ``k``, so a
  resumed run continues exactly). No ``weights`` (upstream's train batches carry ``None``), so the
  loss is the mean over every token. Upstream shuffles the window stream with a 1,000-window
  buffer (a recorded difference: a full permutation mixes the whole split).
* ``eval_train``: the first ``num_eval_train_examples`` train windows, in order; ``validation``:
  the validation windows, in order. The last batch is padded with zero windows whose per-token
  ``weights`` (float32, (batch, 1024)) are 0, as upstream's padded eval batches. A config that
  evaluates fewer validation windows than the split holds (``lm_bible``, cut down so an eval
  stays cheap on a CPU) takes ``num_validation_examples`` of them evenly spaced over the split
  (`spread_rows`), in order, so every held-out book is represented; with the whole split (every
  upstream config) that is every window.

Under PyTorch DDP every rank reads only its rows of each global batch (upstream's PyTorch reads
the whole stream on every rank and keeps every world-size-th batch).

**Eval** (both frameworks, per split): ``loss`` = token-mean softmax cross-entropy over the real
tokens of the whole split, ``ppl`` = exp(loss), as upstream (summed loss / summed weights). The
per-window loss sums and token counts are added exactly (`algoperf.metrics`), and every window
runs in a fixed device chunk (`algoperf.workload_base`), so the result does not depend on the
eval batch size. Losses are computed on float32 logits (`model_fn` returns them; the models
compute in bfloat16).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from algoperf import metrics, spec
from algoperf.data import DatasetError, iterators
from algoperf.data.loader import shard_batches
from algoperf.workload_config import WorkloadConfig
from workloads.finewebedu_lm import data
from workloads.finewebedu_lm.param_map import lm_layout

EVAL_SPLITS = ("eval_train", "validation")


def perplexity(loss: float) -> float:
    """exp(loss), inf where it overflows a float (a diverged run), as ``jnp.exp`` gives upstream."""
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


def _finalize(values: metrics.SplitValues) -> dict[str, float]:
    tokens = float(values.sums["num_tokens"])
    loss = float(values.sums["loss_sum"]) / tokens if tokens else math.nan
    return {"loss": loss, "ppl": perplexity(loss) if tokens else math.nan}


# Per window: summed token loss and real tokens, added exactly over the split.
EVAL_ACCUMULATION = metrics.Accumulation(sums=("loss_sum", "num_tokens"), finalize=_finalize)


def _decode(windows: np.ndarray) -> Any:
    """Window rows -> ``{'inputs', 'targets', 'weights'}`` with per-token weights."""

    def transform(batch: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        del rng
        out = data.window_batch(windows, batch["rows"])
        out["weights"] = np.repeat(batch["weights"][:, None], windows.shape[1] - 1, axis=1)
        return out

    return transform


def train_batches(
    windows: np.ndarray, global_batch_size: int, seed: int, start_step: int = 0
) -> Iterator[dict[str, np.ndarray]]:
    """Infinite shuffled ``{'inputs', 'targets'}`` batches of whole windows."""
    rows = {"rows": np.arange(len(windows))}
    for batch in iterators.train_batches(rows, global_batch_size, seed, start_step=start_step):
        yield data.window_batch(windows, batch["rows"])


def spread_rows(total: int, count: int) -> np.ndarray:
    """`count` row indices evenly spaced over ``range(total)``, increasing (all rows if
    ``count >= total``): row ``i`` is ``i * total // count``."""
    if count >= total:
        return np.arange(total)
    return np.arange(count) * total // count


def eval_batches(
    windows: np.ndarray, global_batch_size: int, num_examples: int, spread: bool = False
) -> Iterator[dict[str, np.ndarray]]:
    """`num_examples` windows in order, padded with weight-0 zero windows: the first ones, or
    (`spread`) ones evenly spaced over the split (`spread_rows`)."""
    count = min(len(windows), num_examples)
    picked = spread_rows(len(windows), count) if spread else np.arange(count)
    rows = {"rows": picked}
    return iterators.eval_batches(rows, global_batch_size, num_examples, _decode(windows))


def synthetic_batch(config: WorkloadConfig, batch_size: int, seed: int) -> dict[str, np.ndarray]:
    """A host batch of the workload's shapes: random token windows, every token weighted."""
    layout = lm_layout(config.model)
    rng = np.random.default_rng(int(seed) % (1 << 64))
    w = rng.integers(0, layout.vocab_size, (batch_size, layout.seq_len + 1), dtype=np.int32)
    weights = np.ones((batch_size, layout.seq_len), np.float32)
    return {"inputs": w[:, :-1], "targets": w[:, 1:], "weights": weights}


class LmData:
    """Mixin: finewebedu window batches, the data check, the loss/perplexity evaluation."""

    config: WorkloadConfig
    loss_fn: Any
    model_fn: Any
    eval_accumulation = EVAL_ACCUMULATION

    def _numpy_batches(
        self,
        split: str,
        data_dir: str,
        global_batch_size: int,
        seed: int,
        num_examples: int | None = None,
        start_step: int = 0,
        shard: tuple[int, int] | None = None,
    ) -> Iterator[dict[str, np.ndarray]]:
        """Train: shuffled windows; eval splits: windows in order. `shard`: this rank's rows."""
        windows = data.load_windows(data_dir, split, self.config.dataset)
        if split == "train":
            batches = train_batches(windows, global_batch_size, seed, start_step)
        elif split in EVAL_SPLITS:
            if num_examples is None:
                num_examples = self._split_size(split)
            spread = split == "validation"
            batches = eval_batches(windows, global_batch_size, num_examples, spread)
        else:
            raise ValueError(
                f"finewebedu_lm splits are train, {', '.join(EVAL_SPLITS)}; not {split!r}"
            )
        return batches if shard is None else shard_batches(batches, global_batch_size, shard)

    def _split_size(self, split: str) -> int:
        if split == "eval_train":
            return int(self.config.num_eval_train_examples)
        return int(self.config.num_validation_examples)

    def check_data(self, data_dir: str) -> None:
        """Fail before any log is written if a split is missing or sized wrong, or the
        prepared windows or vocabulary do not fit the model."""
        dataset = self.config.dataset
        dest = Path(data_dir) / dataset
        fix = (
            "prepare the dataset again (or use a fixture: "
            f"`algoperf datasets prepare {dataset} --fixture`)"
        )
        windows = data.load_windows(data_dir, "validation", dataset)
        validation, expected = len(windows), self._split_size("validation")
        # Fewer windows than the config evaluates is a wrong preparation; more is a config that
        # evaluates a spread of them (module docstring).
        if validation < expected:
            raise DatasetError(
                f"{dest / 'validation.bin'}: {validation} windows, but {self.config.name} expects "
                f"{expected}; {fix}"
            )
        train = len(data.load_windows(data_dir, "train", dataset))
        if train < max(1, self._split_size("eval_train")):
            raise DatasetError(
                f"{dest / 'train.bin'}: {train} windows, fewer than the {self._split_size('eval_train')} "
                f"eval_train windows {self.config.name} evaluates; {fix}"
            )
        layout = lm_layout(self.config.model)
        if windows.shape[1] != layout.seq_len + 1:
            raise DatasetError(
                f"{dest / 'meta.json'}: windows of {windows.shape[1]} tokens, but the "
                f"{self.config.name} model reads {layout.seq_len} (+1 target); prepare the "
                f"dataset with windows of {layout.seq_len + 1}"
            )
        meta = data._read_json(dest / "meta.json") or {}
        vocab = int(meta.get("vocab_size", data.VOCAB_SIZE))
        if vocab > layout.vocab_size:
            raise DatasetError(
                f"{dest / 'meta.json'}: {vocab} token ids, but the {self.config.name} model embeds "
                f"only {layout.vocab_size}; prepare the dataset with a vocabulary of at most "
                f"{layout.vocab_size}"
            )

    def is_output_params(self, param_key: Any) -> bool:
        """The embedding, which is also the output layer (tied logits); or the untied head."""
        return param_key in ("embed", "embed_tokens.weight", "output_proj", "lm_head.weight")

    def _per_example_metrics(
        self, params: Any, model_state: Any, batch: dict[str, Any], rng: Any
    ) -> dict[str, Any]:
        """Per window: summed token loss and real tokens; ``loss`` is the window's token-mean
        loss (for generic callers such as ``algoperf check``; the split's loss is the ratio of
        the sums). Traced (JAX) / no_grad (PyTorch)."""
        logits, _ = self.model_fn(
            params, batch, model_state, spec.ForwardPassMode.EVAL, rng, False, 0.0
        )
        weights = batch["weights"]
        if weights.ndim == 1:  # per-example weights (``algoperf check``'s batches)
            weights = weights[:, None] * (batch["targets"] >= 0)
        loss_sum = self.loss_fn(batch["targets"], logits, weights)["per_example"].sum(-1)
        num_tokens = weights.sum(-1)
        return {
            "loss_sum": loss_sum,
            "num_tokens": num_tokens,
            "loss": loss_sum / (num_tokens + (num_tokens == 0)),
        }
