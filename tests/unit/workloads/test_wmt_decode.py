"""wmt decoding: the shared search rules, the decoding caches, and EOS cutting.

The search rules run in numpy on toy next-token distributions (logits drawn from a generator
seeded by the row and the whole prefix, so they depend on history as a model's do): a small beam
against a plain-Python re-statement of upstream's bookkeeping, and a beam wide enough to keep
every prefix against exhaustive enumeration (then beam search is exact). The caches of both models
give the teacher-forced logits step by step.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from workloads.wmt import decode_common as dc
from workloads.wmt import decode_jax, decode_pytorch, model_jax, model_pytorch

SMALL = {"vocab_size": 29, "emb_dim": 16, "num_heads": 2, "num_layers": 2, "mlp_dim": 24}
SMALL["max_len"] = 16
EOS = dc.EOS_ID


def toy_logits(row: int, prefix: tuple[int, ...], vocab: int) -> np.ndarray:
    """Deterministic next-token logits of a prefix (start token included)."""
    return 0.7 * np.random.default_rng([row, *prefix]).standard_normal(vocab).astype(np.float32)


def run_toy(batch: int, beam: int, length: int, vocab: int, alpha: float = 0.6) -> np.ndarray:
    """`decode_common.run_search` in numpy on the toy distribution; (batch, length) ids."""
    ops = dc.NumpyOps()
    history = np.zeros((batch * beam, 0), np.int64)

    def next_logits(tokens, index):
        nonlocal history
        history = np.concatenate([history, tokens[:, None]], 1)
        rows = [toy_logits(r // beam, tuple(history[r]), vocab) for r in range(batch * beam)]
        return np.stack(rows)

    def reorder(rows):
        nonlocal history
        history = history[rows]

    state = dc.search_init(batch, beam, length)
    return dc.run_search(
        ops, state, next_logits, reorder, alpha=alpha, max_decode_len=length, eos_id=EOS
    )


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64) - x.max()
    return x - np.log(np.exp(x).sum())


def penalty(alpha: float, n: int) -> float:
    """Upstream's length penalty, restated."""
    return ((5.0 + n) / 6.0) ** alpha


def reference_beam(row: int, beam: int, length: int, vocab: int, alpha: float) -> list[int]:
    """Upstream's rules restated on Python lists, for one row (needs vocab >= 2 * beam).

    With vocab >= 2 * beam the -1e7 filler beams never reach the top 2 * beam, so only real
    beams are tracked. Returns the best sequence, start token included, unpadded.
    """
    assert vocab >= 2 * beam
    live = [((0,), 0.0)]
    finished: list[tuple[tuple[int, ...], float]] = []
    for index in range(length - 1):
        if len(finished) == beam:
            bound = max(lp for _, lp in live) / penalty(alpha, length)
            if min(s for _, s in finished) > bound:
                break
        cands = []
        for seq, lp in live:
            logp = log_softmax(toy_logits(row, seq, vocab))
            cands += [((*seq, t), lp + logp[t]) for t in range(vocab)]
        top = sorted(cands, key=lambda c: -c[1])[: 2 * beam]
        live = [c for c in top if c[0][-1] != EOS][:beam]
        new = [(s, lp / penalty(alpha, index + 1)) for s, lp in top if s[-1] == EOS]
        finished = sorted(finished + new, key=lambda c: -c[1])[:beam]
    return list(max(finished or live, key=lambda c: c[1])[0])


def exhaustive_best(row: int, length: int, vocab: int, alpha: float) -> list[int]:
    """The best-scoring finished sequence over all sequences of up to length - 1 tokens."""
    best, best_score = None, -np.inf
    for n in range(1, length):
        for body in itertools.product([t for t in range(vocab) if t != EOS], repeat=n - 1):
            seq, lp = (0,), 0.0
            for t in (*body, EOS):
                lp += log_softmax(toy_logits(row, seq, vocab))[t]
                seq += (t,)
            score = lp / penalty(alpha, n)
            if score > best_score:
                best, best_score = list(seq), score
    return best


def test_length_penalty_is_upstreams():
    assert dc.length_penalty(0.6, 1) == 1.0
    np.testing.assert_allclose(dc.length_penalty(0.6, 7), 2.0**0.6)
    np.testing.assert_allclose(dc.length_penalty(0.6, np.array([1, 13])), [1.0, 3.0**0.6])


def test_cut_at_eos_keeps_the_first_eos_and_zeros_the_rest():
    tokens = np.array([[5, 2, 7, 2, 9], [2, 4, 4, 4, 4], [3, 4, 5, 6, 7], [1, 1, 1, 1, 2]])
    expected = [[5, 2, 0, 0, 0], [2, 0, 0, 0, 0], [3, 4, 5, 6, 7], [1, 1, 1, 1, 2]]
    np.testing.assert_array_equal(dc.cut_at_eos(tokens), expected)
    assert dc.cut_at_eos(tokens).dtype == np.int32


def test_finalize_drops_the_start_token_and_keeps_the_width():
    seqs = np.array([[0, 5, 2, 7, 7], [0, 3, 4, 5, 6]])
    np.testing.assert_array_equal(dc.finalize(seqs), [[5, 2, 0, 0, 0], [3, 4, 5, 6, 0]])


def test_search_init_refuses_bad_sizes():
    with pytest.raises(ValueError, match=r"decode_common\.py"):
        dc.search_init(2, 0, 8)


@pytest.mark.parametrize(("beam", "alpha"), [(2, 0.6), (3, 0.6), (3, 3.0)])
def test_beam_search_follows_upstreams_rules(beam, alpha):
    """Small beams (not exact search): the same answer as the list re-statement, per row."""
    vocab, length, rows = 7, 8, 6
    out = run_toy(rows, beam, length, vocab, alpha)
    for row in range(rows):
        ref = reference_beam(row, beam, length, vocab, alpha)
        assert list(out[row, : len(ref)]) == ref
        assert not out[row, len(ref) :].any()


@pytest.mark.parametrize("alpha", [0.6, 3.0])
def test_wide_beam_search_is_exact(alpha):
    """A beam that holds every prefix finds the best finished sequence of all."""
    vocab, length, rows = 4, 5, 6
    out = run_toy(rows, 64, length, vocab, alpha)
    for row in range(rows):
        best = exhaustive_best(row, length, vocab, alpha)
        assert list(out[row, : len(best)]) == best


def test_greedy_is_the_argmax_chain_and_stops_at_eos():
    vocab, length = 5, 9
    out = run_toy(6, 1, length, vocab)
    for row in range(6):
        seq = (0,)
        while len(seq) < length and EOS not in seq:
            seq += (int(np.argmax(toy_logits(row, seq, vocab))),)
        assert list(out[row, : len(seq)]) == list(seq)
        assert not out[row, len(seq) :].any()
    assert (out == EOS).any()


def _sources(rng: np.random.Generator) -> np.ndarray:
    src = rng.integers(3, SMALL["vocab_size"], (3, 9))
    src[0, 6:] = 0
    return src


POST_LN = {"pre_ln": False, "attention_temp": 1.6}


@pytest.mark.parametrize("variant", [{}, pytest.param(POST_LN, marks=pytest.mark.slow)])
def test_jax_cache_steps_give_the_full_forward_logits(variant):
    options = {**SMALL, **variant}
    model = model_jax.build_model(options)
    params = model_jax.init(model, jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    src, tgt = _sources(rng), rng.integers(1, SMALL["vocab_size"], (3, 7))
    full = np.asarray(jax.jit(model.apply)({"params": params}, src, tgt))
    encoded = model.apply({"params": params}, src, method="encode")
    step = jax.jit(
        lambda cache, token: model_jax.decoding_model(model).apply(
            {"params": params, "cache": cache},
            encoded,
            src,
            token,
            mutable=["cache"],
            method="decode",
        )
    )
    cache = model_jax.init_cache(model, 3, 10)
    prev = np.pad(tgt, ((0, 0), (1, 0)))[:, :-1]
    steps = []
    for i in range(tgt.shape[1]):
        logits, variables = step(cache, jnp.asarray(prev[:, i : i + 1]))
        cache = variables["cache"]
        steps.append(np.asarray(logits[:, 0]))
    np.testing.assert_allclose(np.stack(steps, 1), full, atol=1e-5, rtol=0)


@pytest.mark.parametrize("variant", [{}, POST_LN])
def test_pytorch_cache_steps_give_the_full_forward_logits(variant):
    torch.manual_seed(0)
    model = model_pytorch.build_model({**SMALL, **variant}).eval()
    rng = np.random.default_rng(0)
    src = torch.from_numpy(_sources(rng))
    tgt = torch.from_numpy(rng.integers(1, SMALL["vocab_size"], (3, 7)))
    with torch.no_grad():
        full = model(src, tgt)
        kv = model_pytorch.memory_kv(model, model.encode(src))
        cache = model_pytorch.init_cache(model, 3, 10)
        prev = model_pytorch.shift_right(tgt)
        steps = [
            model_pytorch.decode_step(model, kv, src, prev[:, i], cache, i)
            for i in range(tgt.shape[1])
        ]
    torch.testing.assert_close(torch.stack(steps, 1), full, atol=1e-5, rtol=0)


def test_caches_refuse_lengths_over_max_len():
    with pytest.raises(ValueError, match=r"model_jax\.py"):
        model_jax.init_cache(model_jax.build_model(SMALL), 2, SMALL["max_len"] + 1)
    with pytest.raises(ValueError, match=r"model_pytorch\.py"):
        model_pytorch.init_cache(model_pytorch.build_model(SMALL), 2, SMALL["max_len"] + 1)


def _assert_cut_rows(out: np.ndarray, length: int) -> None:
    assert out.shape == (3, length) and out.dtype == np.int32
    assert not out[:, -1].any()
    for row in out:
        hits = np.flatnonzero(row == EOS)
        if hits.size:
            assert not row[hits[0] + 1 :].any()


@pytest.mark.parametrize("beam", [1, 3])
def test_translate_rows_are_cut_after_the_first_eos(beam):
    torch.manual_seed(0)
    pt = model_pytorch.build_model(SMALL)
    with torch.no_grad():
        pt.shared_embedding.weight[EOS] *= 2.0  # EOS comes up within a few steps
    src = _sources(np.random.default_rng(1))
    out_pt = decode_pytorch.translate(pt, torch.from_numpy(src), beam_size=beam, max_decode_len=12)
    _assert_cut_rows(out_pt, 12)
    jm = model_jax.build_model(SMALL)
    params = model_jax.init(jm, jax.random.PRNGKey(0))
    _assert_cut_rows(decode_jax.translate(jm, params, src, beam_size=beam, max_decode_len=12), 12)
