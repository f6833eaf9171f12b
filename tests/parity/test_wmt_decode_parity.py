"""JAX vs PyTorch wmt translation on identical weights, and beam search against brute force.

Models: the tiny PyTorch Transformer of `test_wmt_parity` trained for 40 Adam steps on a copy task
(sources of 1-8 random ids then EOS, targets the same), so that outputs depend on the source and
some rows end with EOS while others run on; the parameter map copies the weights into flax.
`translate` runs in both frameworks on the same 0-padded sources: greedy and beam 4 give the same
tokens.

Brute force: on a vocabulary of 5 (EOS 2, four other ids) and ``max_decode_len`` 5 (at most 4
generated ids), every id string is scored with the PyTorch decoder step by step; the best finished
sequence (log-probability / ((5 + length) / 6) ** 0.6) is what beam search must return when its
beam (160) keeps every prefix and its top 2 x beam every extension, in both frameworks.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from algoperf.registry import get_config
from tests.parity.test_wmt_parity import TINY
from workloads.wmt import decode_jax, decode_pytorch, model_jax, model_pytorch, param_map

EOS = 2


def copy_sources(rng: np.random.Generator, n: int, vocab: int, max_words: int) -> np.ndarray:
    """`n` rows of 1..max_words random ids (not 0 or EOS), then EOS, 0-padded."""
    ids = [t for t in range(1, vocab) if t != EOS]
    out = np.zeros((n, max_words + 1), np.int64)
    for row in out:
        k = int(rng.integers(1, max_words + 1))
        row[:k], row[k] = rng.choice(ids, k), EOS
    return out


def trained_models(vocab: int, max_words: int, steps: int = 40, seed: int = 0, name: str = "wmt"):
    """(flax model, params, PyTorch model) of one copy-task training run of workload `name`'s
    model at the tiny size, identical weights."""
    options = {**get_config(name).model, **TINY, "vocab_size": vocab}
    torch.manual_seed(seed)
    pt = model_pytorch.build_model(options)
    opt = torch.optim.Adam(pt.parameters(), 1e-2)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        batch = torch.from_numpy(copy_sources(rng, 32, vocab, max_words))
        ce = F.cross_entropy(pt(batch, batch).flatten(0, 1), batch.flatten(), reduction="none")
        loss = (ce * (batch.flatten() > 0)).sum() / (batch > 0).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    pt.eval()
    state = {k: v.detach().numpy() for k, v in pt.state_dict().items()}
    params = jax.tree.map(jnp.asarray, param_map.pytorch_to_jax_params(state, options))
    return model_jax.build_model(options), params, pt


@pytest.fixture(scope="module")
def copy_models():
    return trained_models(TINY["vocab_size"], max_words=8)


def _assert_same_translations(models, beam: int, min_distinct: int = 8) -> None:
    jm, params, pt = models
    src = copy_sources(np.random.default_rng(5), 8, TINY["vocab_size"], 8)
    length = TINY["max_len"]
    out_jax = decode_jax.translate(jm, params, src, beam_size=beam, max_decode_len=length)
    out_pt = decode_pytorch.translate(
        pt, torch.from_numpy(src), beam_size=beam, max_decode_len=length
    )
    assert out_jax.shape == out_pt.shape == (8, length)
    np.testing.assert_array_equal(out_jax, out_pt)
    assert len({tuple(r) for r in out_pt}) >= min_distinct  # outputs depend on the source
    assert (out_pt == EOS).any(axis=1).any()  # some rows end early


@pytest.mark.parametrize("beam", [1, 4])
def test_jax_and_pytorch_translate_to_the_same_tokens(copy_models, beam):
    _assert_same_translations(copy_models, beam)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["wmt_post_ln", "wmt_attention_temp", "wmt_glu_tanh"])
@pytest.mark.parametrize("beam", [1, 4])
def test_every_variant_translates_to_the_same_tokens(name, beam):
    """The variants' models (post-LN, attention temperature, GLU with tanh) decode alike too."""
    models = trained_models(TINY["vocab_size"], max_words=8, name=name)
    # 40 copy-task steps leave these models less sharp: most rows, not all, decode differently.
    _assert_same_translations(models, beam, min_distinct=5)


def _brute_force_best(pt: torch.nn.Module, src: np.ndarray, length: int, alpha: float = 0.6):
    """Per source row, the best finished sequence over all id strings (start token dropped)."""
    vocab = pt.layout.vocab_size
    strings = torch.tensor(list(itertools.product(range(vocab), repeat=length - 1)))
    best = []
    with torch.no_grad():
        for row in torch.from_numpy(src):
            s = row[None].expand(len(strings), -1)
            kv = model_pytorch.memory_kv(pt, pt.encode(s))
            cache = model_pytorch.init_cache(pt, len(strings), length)
            fed = model_pytorch.shift_right(strings)
            logp = torch.stack(
                [
                    torch.log_softmax(model_pytorch.decode_step(pt, kv, s, fed[:, i], cache, i), -1)
                    for i in range(length - 1)
                ],
                1,
            ).double()
            token_logp = logp.gather(2, strings[:, :, None])[:, :, 0].cumsum(1)
            candidates = []
            for k, seq in enumerate(strings.tolist()):
                if EOS in seq:
                    n = seq.index(EOS) + 1
                    score = token_logp[k, n - 1].item() / ((5.0 + n) / 6.0) ** alpha
                    candidates.append((score, seq[:n]))
            best.append(max(candidates)[1])
    return best


def test_wide_beam_search_finds_the_brute_force_best():
    length, beam = 5, 160
    jm, params, pt = trained_models(5, max_words=3)
    src = copy_sources(np.random.default_rng(1), 4, 5, 3)
    best = _brute_force_best(pt, src, length)
    out_pt = decode_pytorch.translate(
        pt, torch.from_numpy(src), beam_size=beam, max_decode_len=length
    )
    out_jax = decode_jax.translate(jm, params, src, beam_size=beam, max_decode_len=length)
    for row, seq in enumerate(best):
        expected = seq + [0] * (length - len(seq))
        assert list(out_pt[row]) == expected
        assert list(out_jax[row]) == expected
    assert len({tuple(s) for s in best}) > 1
