"""wmt decoding rules shared by both frameworks: beam search as upstream, greedy, EOS cutting.

The search is written once over a small array-operations table (`ArrayOps`); `decode_jax` runs it
inside ``lax.while_loop`` with jax.numpy operations, `decode_pytorch` and the tests run it in the
Python loop `run_search` with torch or numpy operations. The model side (one decoder step from the
previous token, the cache reorder when beams change parents) stays in the framework files.

Upstream's rules (its ``decode.py``, the same in both of its frameworks):

* sequences are buffers of ``max_decode_len`` ids whose position 0 is the start token 0; step
  ``i`` feeds position ``i`` and writes position ``i + 1``, so at most ``max_decode_len - 1``
  tokens are generated (upstream asks for 256 whatever the source length);
* length penalty ``((5 + length) / 6) ** alpha``;
* each step takes the top ``2 * beam`` of ``beam * vocab`` extensions by log-probability; the
  extensions ending in EOS go to the finished set (score = log-probability / penalty of the new
  length) and the best ``beam`` of the others stay alive; the finished set keeps the best ``beam``
  of old and new finished; ``-1e7`` stands for minus infinity (start: beam 0 alive at 0, the
  others at -1e7, no finished);
* the loop stops at the length limit, or when for every row each finished slot is filled and its
  worst finished score beats the best alive log-probability divided by the penalty at
  ``max_decode_len`` (no extension can do better);
* the answer is the best finished sequence, or the best alive one for a row with none finished;
  beams are kept in increasing score order, so "best" is the last.

Greedy (``beam_size=1``; upstream has no greedy path): the argmax token each step; a row that
emitted EOS is done and gets 0 afterwards; the loop stops at the length limit or when every row is
done.

Output rows (`finalize`): the generated ids (the start token dropped), everything after the first
EOS set to 0 with the EOS itself kept (upstream's ``_decode_tokens`` keeps ``toks[:argmax(toks ==
EOS) + 1]``), then one 0 column so that rows are ``max_decode_len`` wide (the last position is
never generated). Rows without EOS are returned whole; upstream's detokeniser keeps only the first
token of such a row (``argmax`` of an all-False mask is 0), which is the caller's concern.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import numpy as np

EOS_ID = 2
NEG_INF = -1.0e7  # upstream's "effective minus infinity" of the beam scores


def length_penalty(alpha: float, length: Any) -> Any:
    """Upstream's brevity penalty ``((5 + length) / 6) ** alpha`` (scalars or arrays)."""
    return ((5.0 + length) / 6.0) ** alpha


class ArrayOps(Protocol):
    """The array operations the search needs, per framework (axis 1 is the beam axis)."""

    def top_k(self, x: Any, k: int) -> tuple[Any, Any]:
        """Top `k` of the last axis, descending; ties: the lower index first."""

    def take(self, x: Any, idx: Any) -> Any:
        """``x[b, idx[b, j], ...]`` for (batch, n, ...) `x` and (batch, m) `idx`."""

    def set_position(self, seqs: Any, index: Any, ids: Any) -> Any:
        """A copy of (batch, beams, length) `seqs` with ``[:, :, index] = ids``."""

    def get_position(self, seqs: Any, index: Any) -> Any:
        """``seqs[:, :, index]``."""

    def flip1(self, x: Any) -> Any: ...
    def concat1(self, xs: list[Any]) -> Any: ...
    def min1(self, x: Any) -> Any:
        """Minimum over axis 1, keeping it."""

    def all(self, x: Any) -> Any: ...
    def any1(self, x: Any) -> Any: ...
    def where(self, cond: Any, a: Any, b: Any) -> Any: ...
    def log_softmax(self, x: Any) -> Any: ...
    def argmax(self, x: Any) -> Any: ...
    def asarray_like(self, x: np.ndarray, like: Any) -> Any:
        """numpy `x` as an array of `like`'s kind, dtype and device."""


class BeamState(NamedTuple):
    """Beam search state; (batch, beam) scores, (batch, beam, max_decode_len) int32 ids."""

    live_logprobs: Any
    finished_scores: Any
    live_seqs: Any
    finished_seqs: Any
    finished_flags: Any


class GreedyState(NamedTuple):
    """Greedy state; (batch, 1, max_decode_len) int32 ids and a (batch,) done flag."""

    live_seqs: Any
    done: Any


def search_init(batch_size: int, beam_size: int, max_decode_len: int) -> BeamState | GreedyState:
    """The initial state as numpy arrays (greedy when `beam_size` is 1)."""
    if beam_size < 1 or max_decode_len < 2:
        raise ValueError(
            f"workloads/wmt/decode_common.py: beam_size {beam_size} and max_decode_len "
            f"{max_decode_len} must be at least 1 and 2"
        )
    if beam_size == 1:
        return GreedyState(
            np.zeros((batch_size, 1, max_decode_len), np.int32), np.zeros(batch_size, bool)
        )
    live = np.full((batch_size, beam_size), NEG_INF, np.float32)
    live[:, 0] = 0.0
    seqs = np.zeros((batch_size, beam_size, max_decode_len), np.int32)
    return BeamState(
        live,
        np.full((batch_size, beam_size), NEG_INF, np.float32),
        seqs,
        seqs.copy(),
        np.zeros((batch_size, beam_size), bool),
    )


def search_continue(
    state: BeamState | GreedyState, index: Any, ops: ArrayOps, alpha: float, max_decode_len: int
) -> Any:
    """Whether step `index` runs: below the length limit and not terminated (module docstring)."""
    not_at_end = index < max_decode_len - 1
    if isinstance(state, GreedyState):
        return not_at_end & ~ops.all(state.done)
    best_live = state.live_logprobs[:, -1:] / length_penalty(alpha, max_decode_len)
    worst_finished = ops.where(state.finished_flags, ops.min1(state.finished_scores), NEG_INF)
    return not_at_end & ~ops.all(worst_finished > best_live)


def current_tokens(state: BeamState | GreedyState, index: Any, ops: ArrayOps) -> Any:
    """The (batch * beam,) ids fed at step `index` (batch-major, beams adjacent)."""
    return ops.get_position(state.live_seqs, index).reshape(-1)


def search_step(
    state: BeamState | GreedyState,
    logits: Any,
    index: Any,
    ops: ArrayOps,
    alpha: float,
    eos_id: int,
) -> tuple[BeamState | GreedyState, Any]:
    """One step from the (batch, beam, vocab) next-token `logits`.

    Returns the new state and the (batch, beam) old-beam index each new alive beam extends (the
    cache must be reordered by it), or None for greedy (no reorder).
    """
    if isinstance(state, GreedyState):
        token = ops.where(state.done, 0, ops.argmax(logits[:, 0]))
        seqs = ops.set_position(state.live_seqs, index + 1, token[:, None])
        return GreedyState(seqs, state.done | (token == eos_id)), None
    batch, beam, vocab = logits.shape
    log_probs = ops.log_softmax(logits) + state.live_logprobs[:, :, None]
    topk_log_probs, topk_flat = ops.top_k(log_probs.reshape(batch, beam * vocab), 2 * beam)
    topk_beams = topk_flat // vocab
    topk_ids = topk_flat % vocab
    topk_seqs = ops.set_position(ops.take(state.live_seqs, topk_beams), index + 1, topk_ids)
    newly_finished = topk_ids == eos_id
    # Alive: the best `beam` of the 2*beam that did not just end.
    alive_log_probs = topk_log_probs + newly_finished * NEG_INF
    alive = ops.flip1(ops.top_k(alive_log_probs, beam)[1])
    # Finished: the best `beam` of the old finished and the ones that just ended.
    new_scores = topk_log_probs / length_penalty(alpha, index + 1) + (~newly_finished) * NEG_INF
    scores = ops.concat1([state.finished_scores, new_scores])
    best = ops.flip1(ops.top_k(scores, beam)[1])
    new_state = BeamState(
        ops.take(alive_log_probs, alive),
        ops.take(scores, best),
        ops.take(topk_seqs, alive),
        ops.take(ops.concat1([state.finished_seqs, topk_seqs]), best),
        ops.take(ops.concat1([state.finished_flags, newly_finished]), best),
    )
    return new_state, ops.take(topk_beams, alive)


def search_result(state: BeamState | GreedyState, ops: ArrayOps) -> Any:
    """(batch, max_decode_len) best sequences, start token included."""
    if isinstance(state, GreedyState):
        return state.live_seqs[:, 0]
    any_finished = ops.any1(state.finished_flags)[:, None, None]
    return ops.where(any_finished, state.finished_seqs, state.live_seqs)[:, -1]


def cut_at_eos(tokens: np.ndarray, eos_id: int = EOS_ID) -> np.ndarray:
    """`tokens` with every position after the first EOS of its row set to 0 (the EOS kept)."""
    tokens = np.asarray(tokens)
    is_eos = tokens == eos_id
    after = (np.cumsum(is_eos, axis=-1) - is_eos) > 0
    return np.where(after, 0, tokens).astype(np.int32)


def finalize(seqs: np.ndarray, eos_id: int = EOS_ID) -> np.ndarray:
    """Search result -> output rows: start token dropped, cut at EOS, 0-padded to full width."""
    seqs = np.asarray(seqs)
    out = cut_at_eos(seqs[:, 1:], eos_id)
    return np.pad(out, ((0, 0), (0, 1)))


def run_search(
    ops: ArrayOps,
    state: BeamState | GreedyState,
    next_logits: Callable[[Any, int], Any],
    reorder: Callable[[Any], None],
    *,
    alpha: float,
    max_decode_len: int,
    eos_id: int,
) -> Any:
    """The search as a Python loop (state already in the framework's arrays).

    ``next_logits(tokens, index)`` gets the (batch * beam,) fed ids and returns (batch * beam,
    vocab) logits; ``reorder(parents)`` gets the (batch * beam,) flat row each new beam continues.
    """
    batch, beam = state.live_seqs.shape[:2]
    offsets = (np.arange(batch) * beam)[:, None]
    index = 0
    while bool(search_continue(state, index, ops, alpha, max_decode_len)):
        logits = next_logits(current_tokens(state, index, ops), index)
        state, parents = search_step(
            state, logits.reshape(batch, beam, -1), index, ops, alpha, eos_id
        )
        if parents is not None:
            reorder((parents + ops.asarray_like(offsets, parents)).reshape(-1))
        index += 1
    return search_result(state, ops)


class NumpyOps:
    """`ArrayOps` over an array namespace with numpy's names (numpy itself: tests, references).

    `decode_jax` passes jax.numpy and overrides what must work on traced values.
    """

    def __init__(self, xp: Any = np) -> None:
        self.xp = xp

    def top_k(self, x, k):
        idx = np.argsort(-x, axis=-1, kind="stable")[..., :k]
        return np.take_along_axis(x, idx, -1), idx

    def take(self, x, idx):
        return x[self.xp.arange(x.shape[0])[:, None], idx]

    def set_position(self, seqs, index, ids):
        out = seqs.copy()
        out[:, :, index] = ids
        return out

    def get_position(self, seqs, index):
        return seqs[:, :, index]

    def flip1(self, x):
        return self.xp.flip(x, 1)

    def concat1(self, xs):
        return self.xp.concatenate(xs, 1)

    def min1(self, x):
        return x.min(1, keepdims=True)

    def all(self, x):
        return self.xp.all(x)

    def any1(self, x):
        return x.any(1)

    def where(self, cond, a, b):
        return self.xp.where(cond, a, b)

    def log_softmax(self, x):
        x = x - x.max(-1, keepdims=True)
        return (x - np.log(np.exp(x).sum(-1, keepdims=True))).astype(np.float32)

    def argmax(self, x):
        return self.xp.argmax(x, -1)

    def asarray_like(self, x, like):
        return self.xp.asarray(x, like.dtype)
