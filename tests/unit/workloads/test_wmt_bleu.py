"""WMT BLEU: sacrebleu-based accumulation checked against an independent implementation of
upstream's definition (sacreBLEU 1.3.1 corpus_bleu: 13a, exp smoothing) on real English text."""

from __future__ import annotations

import inspect
import math
import re
from collections import Counter

import numpy as np
import pytest

pytest.importorskip("sacrebleu", reason="sacrebleu not installed: pip install 'algoperf[text]'")

from algoperf import metrics
from workloads.wmt import metrics as wm

# --- independent reference: upstream's definition written out from its description --------------
_PUNCT = set('{|}~[\\]^_`!"#$%&()*+:;<=>?@/ ')


def _tok13a(line: str) -> str:
    for a, b in (
        ("<skipped>", ""),
        ("-\n", ""),
        ("\n", " "),
        ("&quot;", '"'),
        ("&amp;", "&"),
        ("&lt;", "<"),
        ("&gt;", ">"),
    ):
        line = line.replace(a, b)
    s = " " + line + " "
    s = "".join(f" {ch} " if ch in _PUNCT else ch for ch in s)
    s = re.sub(r"(\D)([.,])", r"\1 \2 ", s)
    s = re.sub(r"([.,])(\D)", r" \1 \2", s)
    s = re.sub(r"(\d)-", r"\1 - ", s)
    return " ".join(s.split())


def _ngrams(words: list[str]) -> Counter:
    return Counter(tuple(words[i : i + n]) for n in range(1, 5) for i in range(len(words) - n + 1))


def _reference_bleu(hyps: list[str], refs: list[str]) -> float:
    match, total, sys_len, ref_len = [0] * 4, [0] * 4, 0, 0
    for h, r in zip(hyps, refs, strict=True):
        hw, rw = _tok13a(h.rstrip()).split(), _tok13a(r.rstrip()).split()
        sys_len, ref_len = sys_len + len(hw), ref_len + len(rw)
        hc, rc = _ngrams(hw), _ngrams(rw)
        for g, c in hc.items():
            match[len(g) - 1] += min(c, rc[g])
            total[len(g) - 1] += c
    logs, halve = [], 1.0
    for n in range(4):
        if total[n] == 0:
            logs.append(-9999999999.0)  # upstream floors log(0)
            continue
        if match[n] == 0:
            halve *= 2
            logs.append(math.log(100.0 / (halve * total[n])))
        else:
            logs.append(math.log(100.0 * match[n] / total[n]))
    if sys_len < ref_len:
        bp = math.exp(1 - ref_len / sys_len) if sys_len else 0.0
    else:
        bp = 1.0
    return bp * math.exp(sum(logs) / 4)


# --- real text: sentences of the standard library's own documentation ------------------------------
def _real_sentences() -> list[str]:
    import argparse
    import collections
    import json
    import pathlib
    import subprocess
    import textwrap

    docs = []
    for mod in (json, argparse, collections, subprocess, textwrap, pathlib, re):
        docs.append(inspect.getdoc(mod) or "")
        for name in sorted(dir(mod)):
            if not name.startswith("_"):
                docs.append(inspect.getdoc(getattr(mod, name)) or "")
    text = " ".join(d.replace("\n", " ") for d in docs)
    parts = re.split(r"(?<=[.!?])\s+", text)
    seen = dict.fromkeys(p.strip() for p in parts if 3 <= len(p.split()) <= 60)
    return list(seen)[:400]


def _perturb(s: str, i: int) -> str:
    w = s.split()
    k = i % 5
    if k == 0:
        return s
    if k == 1:
        return " ".join(w[:-1])  # shorter: exercises the brevity penalty
    if k == 2:
        return " ".join(w[1:] + w[:1])
    if k == 3:
        return " ".join(x.upper() if j % 3 == 0 else x for j, x in enumerate(w))
    return " ".join(reversed(w))


def test_bleu_equals_upstream_definition_on_real_text():
    refs = _real_sentences()
    assert len(refs) > 100
    hyps = [_perturb(s, i) for i, s in enumerate(refs)]
    ours, theirs = wm.corpus_bleu(hyps, refs), _reference_bleu(hyps, refs)
    assert 5 < ours < 95
    assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-12)
    # The 13a tokenisation agrees segment by segment (lengths in the statistics).
    stats = wm.segment_stats(hyps, refs)
    assert stats[:, -1].tolist() == [len(_tok13a(r).split()) for r in refs]


@pytest.mark.parametrize(
    ("hyps", "refs"),
    [
        (["the year 1990."], ["the year 1990 ."]),
        (["a &amp; b &quot;c&quot; - 3-4 x,y 1,000.5"], ['a & b "c" - 3 - 4 x , y 1,000.5']),
        ([""], ["nothing matched here at all"]),
        (["one"], ["one two three four five"]),
        (["exactly the same words here"], ["exactly the same words here"]),
        (["no overlap"], ["completely different"]),
    ],
)
def test_edge_cases_match_reference(hyps, refs):
    assert wm.corpus_bleu(hyps, refs) == pytest.approx(_reference_bleu(hyps, refs), abs=1e-9)


def test_accumulation_is_chunk_independent():
    refs = _real_sentences()[:120]
    hyps = [_perturb(s, i + 1) for i, s in enumerate(refs)]
    stats = wm.segment_stats(hyps, refs)
    acc = metrics.Accumulator(wm.ACCUMULATION)
    rng = np.random.default_rng(0)
    w = rng.integers(0, 2, size=(len(refs), 7)).astype(np.float64)
    loss, hit = rng.random((len(refs), 7)), rng.integers(0, 2, size=(len(refs), 7))
    for lo, hi in ((0, 50), (50, 51), (51, 120)):
        acc.add(
            {wm.BLEU_STATS_KEY: stats[lo:hi], **wm.token_sums(loss[lo:hi], hit[lo:hi], w[lo:hi])}
        )
    out = acc.result()
    assert out["bleu"] == pytest.approx(_reference_bleu(hyps, refs), rel=1e-12)
    assert out["loss"] == pytest.approx((loss * w).sum() / w.sum(), rel=1e-12)
    assert out["accuracy"] == pytest.approx((hit * w).sum() / w.sum(), rel=1e-12)


def test_eos_cut_and_decoding_as_upstream():
    assert wm.cut_at_eos(np.array([5, 6, 2, 7, 2, 0])).tolist() == [5, 6, 2]
    assert wm.cut_at_eos(np.array([5, 6, 7])).tolist() == [5]  # upstream's argmax quirk
    words = {5: "hello", 6: "world", 7: "extra"}
    out = wm.decode_ids(
        np.array([[5, 6, 2, 7], [7, 2, 0, 0]]),
        lambda ids: " ".join(words.get(i, "") for i in ids).strip(),
    )
    assert out == ["hello world", "extra"]


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError, match="one reference per hypothesis"):
        wm.segment_stats(["a"], ["a", "b"])


def test_wmt_attention_temp_test_target():
    from workloads.wmt.spec import VARIANTS

    # Upstream's PyTorch workload has the typo 229.4143; its JAX workload and the paper 29.4143.
    assert VARIANTS["wmt_attention_temp"].test_target_value == 29.4143
