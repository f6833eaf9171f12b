"""What the JAX and PyTorch LibriSpeech workloads share: batches, the data check, loss, eval.

``config.model['arch']`` (``conformer`` or ``deepspeech``) selects the model; the variants are
options of the same models. Host batches are flat numpy dicts (``inputs`` / ``input_paddings``
float32 (B, 320,000), ``targets`` int32 / ``target_paddings`` float32 (B, 256), eval batches
``weights``) so the framework layer can re-cut and shard them; `device_layout` gives the model
and the submission upstream's layout, ``{'inputs': (audio, paddings), 'targets': (ids,
paddings)}``, and ``model_fn`` returns upstream's ``(logits, logit_paddings)`` pair.

Loss (the rules'): CTC with blank 0 over the valid frames, summed per utterance; the framework
layer's ``loss_fn`` for ``LossType.CTC_LOSS`` returns the per-utterance sums and
``n_valid_examples`` = the number of target tokens, so ``summed / n_valid_examples`` is the loss
per target token.

Eval (the rules'): per utterance the summed CTC loss and its target tokens, and from the greedy
CTC hypothesis (argmax per valid frame, repeats collapsed, blanks dropped), detokenised with the
dataset's SentencePiece model (`data.load_tokenizer`; or the ``tokenizer_vocab_path`` the
workload was built with, `load_given_tokenizer`), its word edit distance to the reference
and the reference's word count; each split reports ``ctc_loss`` = summed loss / summed tokens
and ``wer`` = summed errors / summed reference words (`workloads.common.wer`), through the
platform's exact per-example sums (`algoperf.metrics`), so both are the same for any eval batch
size and padding. Padded eval rows (weight 0) are dropped before anything is summed.

Upstream departs from that in two ways (README, "Deviations from upstream"): its JAX eval divides
the summed loss by (devices x tokens), so on 8 devices its ``ctc_loss`` is an eighth of this
one; and it counts one reference word for every padded row of the last eval batch, so its WER
is ``errors / (words + padded rows)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from algoperf import spec
from algoperf.data import DatasetError
from algoperf.data.download import MANIFEST_NAME
from algoperf.workload_config import WorkloadConfig
from workloads.common import wer
from workloads.librispeech import data

ARCHITECTURES = ("conformer", "deepspeech")

# The eval's per-utterance sums (`workloads.common.wer.SPEECH_ACCUMULATION`).
EVAL_ACCUMULATION = wer.SPEECH_ACCUMULATION


def architecture(config: WorkloadConfig) -> str:
    """``conformer`` or ``deepspeech``: the model ``config.model['arch']`` names."""
    arch = str(config.model.get("arch", ""))
    if arch not in ARCHITECTURES:
        raise ValueError(
            f"workloads/librispeech/spec.py: {config.name} has model arch {arch!r}; "
            f"use one of {', '.join(ARCHITECTURES)}"
        )
    return arch


def flat_batch(batch: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """A host batch in the flat layout (accepts upstream's tuple layout of `data.make_batch`).

    Rows of weight 0 (the eval's filler rows) get all target positions padded, so they hold no
    reference and their (discarded) loss stays finite.
    """
    out: dict[str, np.ndarray] = {}
    for key, pad_key in (("inputs", "input_paddings"), ("targets", "target_paddings")):
        value = batch[key]
        if isinstance(value, tuple):
            out[key], out[pad_key] = value
        else:
            out[key], out[pad_key] = value, batch[pad_key]
    if "weights" in batch:
        weights = np.asarray(batch["weights"])
        out["weights"] = weights
        empty = weights == 0
        if empty.any():
            target_paddings = np.array(out["target_paddings"], copy=True)
            target_paddings[empty] = 1.0
            out["target_paddings"] = target_paddings
    return out


def device_layout(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Upstream's batch layout of a flat batch (numpy, JAX or torch arrays)."""
    out = {
        "inputs": (flat["inputs"], flat["input_paddings"]),
        "targets": (flat["targets"], flat["target_paddings"]),
    }
    if "weights" in flat:
        out["weights"] = flat["weights"]
    return out


class LibrispeechData:
    """Mixin: LibriSpeech batches, the data check, the CTC loss and the WER eval.

    Constructor option ``tokenizer_vocab_path`` (upstream's, from the runner's
    ``--librispeech_tokenizer_vocab_path``): the SentencePiece model the eval detokenises with,
    instead of the dataset's ``spm_model.vocab`` (which then need not exist, as in upstream's
    layout). It must have as many pieces as the model has outputs, and where the dataset's
    manifest records the tokenizer its token ids were prepared with, be that one (by sha256):
    decoding the ids with another model would score a WER of a different text. Upstream uses the
    given file unchecked.
    """

    config: WorkloadConfig
    _options: dict[str, Any]  # constructor keyword arguments (`ConfiguredWorkload`)
    eval_accumulation = EVAL_ACCUMULATION
    _tokenizer: Any = None  # the dataset's SentencePiece model, loaded by the split eval
    # The runner passes ``--librispeech_tokenizer_vocab_path`` to these workloads only.
    accepts_tokenizer_vocab_path = True

    @property
    def tokenizer_vocab_path(self) -> str | None:
        """The ``tokenizer_vocab_path`` the workload was built with (None: the dataset's)."""
        return self._options.get("tokenizer_vocab_path") or None

    def _numpy_batches(
        self,
        split: str,
        data_dir: str,
        global_batch_size: int,
        seed: int,
        num_examples: int | None = None,
        start_step: int = 0,
    ) -> Iterator[dict[str, np.ndarray]]:
        del num_examples  # the config's split sizes decide (`data.numpy_batches`)
        batches = data.numpy_batches(
            data_dir, self.config, split, global_batch_size, seed, start_step=start_step
        )
        return (flat_batch(b) for b in batches)

    def check_data(self, data_dir: str) -> None:
        """Fail before any log is written: split sizes as the config's, the tokenizer there."""
        c = self.config
        wanted = {
            "train": c.num_train_examples,
            "validation": c.num_validation_examples,
            "test": c.num_test_examples,
        }
        for split, want in wanted.items():
            if want is None:
                continue
            have = sum(len(s) for s in data.split_subsets(data_dir, split))
            if have != want:
                raise DatasetError(
                    f"{data.dataset_dir(data_dir)}: {split} has {have} utterances, "
                    f"{c.name} expects {want}; prepare the full dataset with "
                    f"`algoperf datasets prepare librispeech --data_dir {data_dir}`"
                )
        if c.num_eval_train_examples > c.num_train_examples:
            raise DatasetError(
                f"{c.name}: num_eval_train_examples {c.num_eval_train_examples} exceeds the "
                f"{c.num_train_examples} training utterances"
            )
        self._dataset_tokenizer(data_dir)

    def _dataset_tokenizer(self, data_dir: str) -> Any:
        """The eval's tokenizer: the given ``tokenizer_vocab_path`` (`load_given_tokenizer`) or
        the dataset's (`data.load_tokenizer`), refused when it has another number of pieces
        than the model's outputs (its ids could not be detokenised), and a given one also when
        the ids were prepared with another (`check_prepared_with`)."""
        given = self.tokenizer_vocab_path
        if given:
            path = Path(given).expanduser()
            tokenizer = load_given_tokenizer(path)
        else:
            path = data.dataset_dir(data_dir) / data.TOKENIZER_FILE
            tokenizer = data.load_tokenizer(data_dir)
        vocab = int(self.config.model.get("vocab_size", data.VOCAB_SIZE))
        if tokenizer.vocab_size != vocab:
            raise DatasetError(
                f"{path}: {tokenizer.vocab_size} pieces, the model predicts {vocab}; prepare "
                "with upstream's 1,024-piece model (or the one prepare trains)"
            )
        if given:
            check_prepared_with(tokenizer, path, data_dir)
        return tokenizer

    def is_output_params(self, param_key: Any) -> bool:
        """The output projection (flax ``Dense_0`` at the top level; PyTorch ``lin``)."""
        return param_key in ("Dense_0", "lin.weight", "lin.bias")

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
        self._tokenizer = self._dataset_tokenizer(data_dir)
        return super()._eval_model_on_split(  # type: ignore[misc]
            split, num_examples, global_batch_size, params, model_state, rng, data_dir, global_step
        )

    def _eval_batch(
        self, params: Any, model_state: Any, batch: dict[str, Any], rng: Any
    ) -> dict[str, np.ndarray]:
        """Per-utterance eval values of one device batch, on the host.

        ``ctc_loss`` (summed over the utterance), ``target_tokens`` and ``loss`` (their ratio,
        what generic callers such as ``algoperf check`` read); with the dataset's tokenizer
        loaded (a split eval), also ``word_errors`` and ``reference_words``. The frame argmax
        comes from the device; decoding and counting are numpy (`workloads.common.wer`).
        """
        out = super()._eval_batch(params, model_state, batch, rng)  # type: ignore[misc]
        return speech_values(out, self._tokenizer)

    def _per_example_metrics(
        self, params: Any, model_state: Any, batch: dict[str, Any], rng: Any
    ) -> dict[str, Any]:
        """Device side of the eval: per-utterance CTC sums and tokens, frame argmax ids and
        paddings, and the target ids and paddings (decoded on the host)."""
        (logits, logit_paddings), _ = self.model_fn(  # type: ignore[attr-defined]
            params, batch, model_state, spec.ForwardPassMode.EVAL, rng, False, 0.0
        )
        loss = self.loss_fn(batch["targets"], (logits, logit_paddings))  # type: ignore[attr-defined]
        targets, target_paddings = batch["targets"]
        return {
            "ctc_loss": loss["per_example"],
            "target_tokens": (1 - target_paddings).sum(-1),
            "frame_ids": logits.argmax(-1),
            "frame_paddings": logit_paddings,
            "target_ids": targets,
            "target_paddings": target_paddings,
        }


def load_given_tokenizer(path: Path) -> Any:
    """The SentencePiece model at `path` (``--librispeech_tokenizer_vocab_path``)."""
    from workloads.common.tokenizer import Tokenizer

    try:
        return Tokenizer.load(path)
    except (OSError, RuntimeError) as error:
        raise DatasetError(
            f"--librispeech_tokenizer_vocab_path {path}: not a SentencePiece model ({error})"
        ) from None


def check_prepared_with(tokenizer: Any, path: Path, data_dir: str | Path) -> None:
    """Refuse the given `tokenizer` when the dataset's manifest records another one for its
    token ids (see `LibrispeechData`); a dataset without that record (upstream's) passes."""
    directory = data.dataset_dir(data_dir)
    try:
        manifest = json.loads((directory / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        manifest = {}
    recorded = manifest.get("tokenizer_sha256") if isinstance(manifest, dict) else None
    if recorded and recorded != tokenizer.sha256:
        raise DatasetError(
            f"--librispeech_tokenizer_vocab_path {path}: not the tokenizer the token ids in "
            f"{directory} were prepared with (sha256 {tokenizer.sha256[:12]}, manifest "
            f"{recorded[:12]}); pass {directory / data.TOKENIZER_FILE} or drop the flag"
        )


def speech_values(out: Mapping[str, np.ndarray], tokenizer: Any) -> dict[str, np.ndarray]:
    """Host per-utterance values from the device's eval outputs (see `LibrispeechData`)."""
    loss = np.asarray(out["ctc_loss"], np.float64)
    tokens = np.rint(np.asarray(out["target_tokens"])).astype(np.int64)
    values = {
        "loss": loss / np.maximum(tokens, 1),
        "ctc_loss": loss,
        "target_tokens": tokens,
    }
    if tokenizer is not None:
        hyp, hyp_paddings = wer.greedy_ctc_decode(
            np.rint(np.asarray(out["frame_ids"])).astype(np.int64), out["frame_paddings"]
        )
        values.update(
            wer.word_error_counts(
                hyp,
                hyp_paddings,
                np.rint(np.asarray(out["target_ids"])).astype(np.int64),
                out["target_paddings"],
                tokenizer.decode,
            )
        )
    return values
