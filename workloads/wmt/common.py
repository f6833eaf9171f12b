"""What the JAX and PyTorch wmt workloads share: packed batches, the data check, the eval.

**Training batches** are upstream's packed rows: ``inputs``, ``targets`` and their
``*_segmentation`` / ``*_position`` arrays, int32 (batch, 256), as `workloads.wmt.data.prepare`
packed them, plus ``weights`` = ``targets > 0`` (float32, per token) as upstream's input queue
adds them. Packing is done once at prepare time; each epoch visits the packed rows in a fresh
permutation (`algoperf.data.iterators.train_batches`: batch ``k`` is a function of the seed and
``k``, so a resumed run continues exactly). Upstream shuffles pairs with a 1,024-pair buffer
before packing on the fly (a recorded difference: same packing rule, other neighbours). Under
PyTorch DDP every rank reads only its rows of each global batch.

**Eval splits**: ``validation`` (newstest2013) and ``test`` (newstest2014) as prepared, padded to
256; ``eval_train`` is the first ``num_eval_train_examples`` training pairs (upstream's 3,072)
taken, unpacked, from the packed rows in a fixed seeded row order (the same pairs at every eval;
upstream draws them from its shuffled train stream, a fresh draw per pass). Every split reports:

* ``loss``: token-mean cross-entropy without label smoothing, over real target tokens (upstream:
  summed loss / summed ``targets > 0`` weights);
* ``accuracy``: the fraction of real target tokens whose argmax logit is the target;
* ``bleu``: every example of the split (padding excluded) is translated by beam search (beam 4,
  length penalty alpha 0.6, at most 256 tokens, EOS 2: the framework's
  ``decode_*.translate``), hypothesis and reference ids are cut after their first EOS and
  detokenised with the SentencePiece model the dataset recorded, and corpus BLEU is upstream's
  (`workloads.wmt.metrics`).

A variant's ``config.model`` may change the translation: ``max_decode_len`` (a shorter buffer),
``beam_size`` (1: greedy) or ``eval_bleu`` False (no translation and no ``bleu``: for a variant
whose budget is too short for BLEU to leave zero, where decoding would dominate every eval).
With ``eval_prefix`` True, validation and test are the first ``num_validation_examples`` /
``num_test_examples`` pairs of the prepared splits (a cheaper eval), not all of them.

All three are sums of per-example statistics (summed loss, hits and tokens; BLEU's n-gram match
and total counts and lengths) added exactly over the split, and the fixed device chunks of
`algoperf.workload_base` give every example the same computation whatever the eval batch size,
so the metrics do not depend on it (tested).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from algoperf import spec
from algoperf.data import DatasetError, iterators
from algoperf.data.loader import shard_batches
from algoperf.workload_config import WorkloadConfig
from workloads.wmt import data, metrics

# Upstream's decoding settings (`translate_and_calculate_bleu`, `predict_step`).
BEAM_SIZE = 4
LENGTH_PENALTY_ALPHA = 0.6
MAX_DECODE_LEN = 256
# Row order from which eval_train's pairs are unpacked (fixed, so every eval sees the same pairs).
EVAL_TRAIN_SEED = 0x77_6D_74  # "wmt"
EVAL_SPLITS = ("eval_train", "validation", "test")


def _weights(targets: np.ndarray) -> np.ndarray:
    """Upstream's per-token weights: 1 for real target tokens, 0 for padding."""
    return (np.asarray(targets) > 0).astype(np.float32)


def unpack_rows(
    arrays: Mapping[str, np.ndarray], rows: np.ndarray, num_pairs: int
) -> dict[str, np.ndarray]:
    """The first `num_pairs` (source, target) pairs of the packed `rows`, in that order.

    Each pair is one segment id of a packed row, padded with 0 to the row length again.
    Returns ``{'inputs', 'targets'}`` int32 (num_pairs, length); fewer rows if the rows run out.
    """
    length = arrays["inputs"].shape[1]
    out = {k: np.zeros((num_pairs, length), np.int32) for k in ("inputs", "targets")}
    n = 0
    for r in rows:
        if n == num_pairs:
            break
        row = {k: np.asarray(arrays[k][r]) for k in data.PACKED_KEYS}
        for seg in range(1, int(row["inputs_segmentation"].max(initial=0)) + 1):
            if n == num_pairs:
                break
            for key in ("inputs", "targets"):
                ids = row[key][row[f"{key}_segmentation"] == seg]
                out[key][n, : len(ids)] = ids
            n += 1
    return {k: v[:n] for k, v in out.items()}


@functools.lru_cache(maxsize=4)
def _eval_train_pairs(dataset_dir: str, num_pairs: int) -> dict[str, np.ndarray]:
    folder = Path(dataset_dir)
    train = data.load_split(folder.parent, "train", folder.name)
    order = np.random.default_rng(EVAL_TRAIN_SEED).permutation(len(train["inputs"]))
    return unpack_rows(train, order, num_pairs)


def eval_arrays(
    data_dir: str | Path, split: str, num_examples: int, dataset: str = data.DATASET
) -> dict[str, np.ndarray]:
    """``inputs``, ``targets`` and per-token ``weights`` of an eval split (see the module doc);
    the arrays of ``<data_dir>/<dataset>/``."""
    if split == "eval_train":
        root = str((Path(data_dir) / dataset).resolve())
        pairs = _eval_train_pairs(root, int(num_examples))
        if len(pairs["inputs"]) < num_examples:
            raise DatasetError(
                f"{root}: eval_train needs {num_examples} training pairs, the packed train "
                f"split holds {len(pairs['inputs'])}; prepare the full dataset"
            )
    elif split in ("validation", "test"):
        pairs = data.load_split(data_dir, split, dataset)
    else:
        raise ValueError(f"wmt eval splits are {', '.join(EVAL_SPLITS)}; not {split!r}")
    return {**pairs, "weights": _weights(pairs["targets"])}


def train_batches(
    data_dir: str | Path,
    global_batch_size: int,
    seed: int,
    start_step: int = 0,
    dataset: str = data.DATASET,
) -> Iterator[dict[str, np.ndarray]]:
    """Infinite packed training batches with per-token ``weights`` (see the module docstring)."""
    arrays = data.load_split(data_dir, "train", dataset)
    for batch in iterators.train_batches(arrays, global_batch_size, seed, start_step=start_step):
        batch["weights"] = _weights(batch["targets"])
        yield batch


def synthetic_batch(config: WorkloadConfig, batch_size: int, seed: int) -> dict[str, np.ndarray]:
    """A host batch of wmt's shapes: random pairs of random lengths, EOS-terminated, 0-padded."""
    rng = np.random.default_rng(int(seed) % (1 << 64))
    vocab = int(config.model.get("vocab_size", data.VOCAB_SIZE))
    length = int(config.model.get("max_len", data.MAX_LENGTH))
    batch = {}
    for key in ("inputs", "targets"):
        ids = rng.integers(metrics.EOS_ID + 1, vocab, size=(batch_size, length), dtype=np.int32)
        lengths = rng.integers(1, length + 1, size=batch_size)
        positions = np.arange(length)[None, :]
        ids[positions == (lengths - 1)[:, None]] = metrics.EOS_ID
        ids[positions >= lengths[:, None]] = metrics.PAD_ID
        batch[key] = ids
    batch["weights"] = _weights(batch["targets"])
    return batch


class WmtData:
    """Mixin: wmt's packed batches, the data check, loss/accuracy/BLEU evaluation.

    The framework class provides `_translate` (beam search on host inputs, returning host ids)
    and the model; `_per_example_metrics` here uses only operations both array types share.
    """

    config: WorkloadConfig
    loss_fn: Any
    model_fn: Any

    @property
    def eval_bleu(self) -> bool:
        """Whether evals translate and report BLEU: the ``eval_bleu`` model option, else True."""
        return bool(self.config.model.get("eval_bleu", True))

    @property
    def eval_accumulation(self) -> metrics.Accumulation:  # type: ignore[override]
        """Loss, accuracy and (unless the variant turns it off) BLEU statistics."""
        return metrics.ACCUMULATION if self.eval_bleu else metrics.ACCUMULATION_WITHOUT_BLEU

    # Upstream's decoding settings unless the variant's ``config.model`` says otherwise:
    # `max_decode_len` is the option of that name, else 256 capped at the model's ``max_len``;
    # `beam_size` the option of that name, else 4 (properties, so tests can patch them).
    decode_alpha: float = LENGTH_PENALTY_ALPHA

    @property
    def max_decode_len(self) -> int:
        """Length of the decoding buffers (at most ``max_decode_len - 1`` generated ids)."""
        return decode_length(self.config.model)

    @property
    def beam_size(self) -> int:
        """Beams of the eval's translation (1: greedy)."""
        return decode_beam_size(self.config.model)

    # What the split being evaluated decodes with (set for the duration of
    # `_eval_model_on_split`, read by `_host_eval_values`).
    _decode_params: Any = None
    _detokenizer: Any = None

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
        """Train: packed batches; eval splits: padded pairs in order. `shard`: this rank's rows."""
        dataset = self.config.dataset
        if split == "train":
            batches = train_batches(data_dir, global_batch_size, seed, start_step, dataset)
        else:
            if num_examples is None:
                num_examples = self._split_size(split)
            arrays = eval_arrays(data_dir, split, num_examples, dataset)
            batches = iterators.eval_batches(arrays, global_batch_size, num_examples)
        return batches if shard is None else shard_batches(batches, global_batch_size, shard)

    def _split_size(self, split: str) -> int:
        sizes = {
            "eval_train": self.config.num_eval_train_examples,
            "validation": self.config.num_validation_examples,
            "test": self.config.num_test_examples,
        }
        return int(sizes[split] or 0)

    def check_data(self, data_dir: str) -> None:
        """Fail before any log is written if a split, the tokenizer or the vocabulary is off."""
        dataset = self.config.dataset
        dest = Path(data_dir) / dataset
        train = data.load_split(data_dir, "train", dataset)
        if len(train["inputs"]) == 0:
            raise DatasetError(f"{dest}: the train split is empty; prepare the dataset again")
        model_len = int(self.config.model.get("max_len", data.MAX_LENGTH))
        if train["inputs"].shape[1] > model_len:
            raise DatasetError(
                f"{dest / 'train_inputs.npy'}: rows of {train['inputs'].shape[1]} tokens, but the "
                f"{self.config.name} model has positions for {model_len}; prepare the dataset "
                f"again with `algoperf datasets prepare {dataset}`"
            )
        # A variant with ``eval_prefix`` evaluates the first examples of each held-out split.
        prefix = bool(self.config.model.get("eval_prefix", False))
        for split in ("validation", "test"):
            expected = self._split_size(split)
            held = len(data.load_split(data_dir, split, dataset)["inputs"])
            if held < expected if prefix else held != expected:
                raise DatasetError(
                    f"{dest / f'{split}_inputs.npy'}: {held} examples, but {self.config.name} "
                    f"expects {expected}; prepare the dataset again (or use a fixture with "
                    f"`algoperf datasets prepare {dataset} --fixture`)"
                )
        eval_arrays(data_dir, "eval_train", self.config.num_eval_train_examples, dataset)
        tokenizer = self._load_detokenizer(data_dir)
        model_vocab = int(self.config.model.get("vocab_size", data.VOCAB_SIZE))
        if tokenizer.vocab_size > model_vocab:
            raise DatasetError(
                f"{dest / 'spm_32k.model'}: {tokenizer.vocab_size} pieces, but the "
                f"{self.config.name} model embeds only {model_vocab}; prepare the dataset with "
                "a tokenizer of at most that size"
            )

    def _load_detokenizer(self, data_dir: str | Path) -> Any:
        return load_tokenizer(str((Path(data_dir) / self.config.dataset).resolve()))

    def is_output_params(self, param_key: Any) -> bool:
        """The shared embedding, which is also the output layer (tied logits), as upstream."""
        return param_key in ("shared_embedding", "shared_embedding.weight")

    def _per_example_metrics(
        self, params: Any, model_state: Any, batch: dict[str, Any], rng: Any
    ) -> dict[str, Any]:
        """Per example: summed token loss (no label smoothing), hits and real target tokens;
        ``loss`` is the example's token-mean loss (for generic callers such as ``algoperf
        check``; the split's loss is the ratio of the sums). Traced (JAX) / no_grad (PyTorch)."""
        logits, _ = self.model_fn(
            params, batch, model_state, spec.ForwardPassMode.EVAL, rng, False, 0.0
        )
        targets = batch["targets"]
        weights = batch["weights"]
        if weights.ndim == 1:  # per-example weights (``algoperf check``'s batches)
            weights = weights[:, None]
        weights = weights * (targets > 0)
        per_token = self.loss_fn(targets, logits, weights)["per_example"]
        loss_sum = per_token.sum(-1)
        num_tokens = weights.sum(-1)
        return {
            "loss_sum": loss_sum,
            "correct_sum": ((logits.argmax(-1) == targets) * weights).sum(-1),
            "num_tokens": num_tokens,
            "loss": loss_sum / (num_tokens + (num_tokens == 0)),
        }

    def _translate(self, params: Any, inputs: np.ndarray) -> np.ndarray:
        """Beam-search translations of host `inputs` (rows, src_len) -> host ids (rows, len)."""
        raise NotImplementedError

    def _eval_model_on_split(
        self,
        split: str,
        num_examples: int,
        global_batch_size: int,
        params: Any,
        model_state: Any,
        rng: Any,
        data_dir: str,
        global_step: int = 0,
    ) -> dict[str, float]:
        if self.eval_bleu:  # else no translation: the generic loss and accuracy eval
            self._decode_params = params
            self._detokenizer = self._load_detokenizer(data_dir)
        try:
            return super()._eval_model_on_split(  # type: ignore[misc]
                split,
                num_examples,
                global_batch_size,
                params,
                model_state,
                rng,
                data_dir,
                global_step,
            )
        finally:
            self._decode_params = None

    def _host_eval_values(
        self, outputs: dict[str, np.ndarray], chunk: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Translate the chunk's real examples and count BLEU statistics (padding rows: 0)."""
        if not self.eval_bleu:
            return outputs
        stats = np.zeros((len(chunk["inputs"]), metrics.STATS_LEN), np.int64)
        if self._decode_params is None:  # a caller outside the split eval: no BLEU
            return {**outputs, metrics.BLEU_STATS_KEY: stats}
        real = np.asarray(chunk["weights"]).reshape(len(stats), -1).any(axis=1)
        if real.any():
            predicted = self._translate(self._decode_params, np.asarray(chunk["inputs"]))
            tok = self._detokenizer
            hyps = metrics.decode_ids(_in_vocab(predicted[real], tok), tok.decode)
            refs = metrics.decode_ids(np.asarray(chunk["targets"])[real], tok.decode)
            stats[real] = metrics.segment_stats(hyps, refs)
        return {**outputs, metrics.BLEU_STATS_KEY: stats}


def decode_length(model: Mapping[str, Any]) -> int:
    """A ``config.model``'s decoding buffer length: its ``max_decode_len`` option, else upstream's
    256 capped at ``max_len`` (decoding cannot run past the position table)."""
    max_len = int(model.get("max_len", data.MAX_LENGTH))
    return int(model.get("max_decode_len", min(MAX_DECODE_LEN, max_len)))


def decode_beam_size(model: Mapping[str, Any]) -> int:
    """A ``config.model``'s translation beam: its ``beam_size`` option, else upstream's 4."""
    beam = int(model.get("beam_size", BEAM_SIZE))
    if beam < 1:
        raise ValueError(f"workloads/wmt/spec.py: beam_size {beam} must be at least 1 (1: greedy)")
    return beam


def _in_vocab(ids: np.ndarray, tokenizer: Any) -> np.ndarray:
    """Ids the tokenizer has no piece for (a model vocabulary larger than the dataset's, as the
    registered model on a fixture) become its unknown id."""
    ids = np.asarray(ids)
    return np.where(ids < tokenizer.vocab_size, ids, tokenizer.unk_id)


@functools.lru_cache(maxsize=4)
def load_tokenizer(dataset_dir: str) -> Any:
    """The SentencePiece model `prepare` recorded in `dataset_dir`, checked against meta.json."""
    from workloads.common.tokenizer import Tokenizer

    path = Path(dataset_dir) / "spm_32k.model"
    tokenizer = Tokenizer.load(path)
    recorded = data._read_meta(Path(dataset_dir)).get("tokenizer_sha256")
    if recorded is not None and recorded != tokenizer.sha256:
        raise DatasetError(
            f"{path}: sha256 {tokenizer.sha256[:12]}... differs from the {recorded[:12]}... "
            "recorded in meta.json; prepare the dataset again"
        )
    return tokenizer
