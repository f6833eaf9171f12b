"""workloads.common.sword: OSIS markup cleaning, and the real Debian SWORD Bibles verse-aligned."""

from __future__ import annotations

import pytest

from algoperf.data import DatasetError
from workloads.common import sword

REAL = pytest.mark.skipif(
    not sword.available(sword.ENGLISH, sword.SPANISH),
    reason="needs Debian's sword-text-web and sword-text-sparv (or ALGOPERF_SWORD_DIR) and pysword",
)


def test_a_footnote_between_words_is_a_word_gap():
    markup = '<w lemma="x">God</w><note placement="foot">The Hebrew word</note><w>created</w>'
    assert sword.clean(markup) == "God created"


def test_a_footnote_before_punctuation_leaves_no_space():
    assert sword.clean("<w>Christ</w><note>n</note>, <w>the</w> son<note>m</note>.") == (
        "Christ, the son."
    )


def test_tags_removed_entities_unescaped_whitespace_collapsed():
    assert sword.clean('  <div eID="x"/>A &amp; B\n <w>c</w>  ') == "A & B c"


def test_a_missing_module_names_the_package_and_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(sword.ENV_VAR, str(tmp_path))
    assert not sword.available(sword.ENGLISH)
    with pytest.raises(DatasetError, match=r"sword-text-web.*ALGOPERF_SWORD_DIR"):
        sword.verses(sword.ENGLISH, ["Matt"])


def test_split_by_book_holds_whole_books_out():
    rows = [(("Matt", 1, 1), "a", "A"), (("John", 1, 1), "b", "B"), (("Matt", 1, 2), "c", "C")]
    splits = sword.split_by_book(rows, {"validation": ("John",)})
    assert splits == {"train": [("a", "A"), ("c", "C")], "validation": [("b", "B")]}


@REAL
def test_real_bibles_align_verse_by_verse():
    rows = sword.parallel(sword.SPANISH, sword.ENGLISH, ["John"])
    by_key = {key: (es, en) for key, es, en in rows}
    es, en = by_key[("John", 1, 1)]
    assert en == "In the beginning was the Word, and the Word was with God, and the Word was God."
    assert es.startswith("EN el principio era el Verbo")
    assert len(rows) > 850  # John has 879 verses; a few are merged into a neighbour
    assert not any("<" in es + en for _, es, en in rows)


@REAL
def test_unknown_book_is_an_error():
    with pytest.raises(DatasetError, match="no verses for books"):
        sword.verses(sword.ENGLISH, ["Johnn"])


@REAL
def test_chapters_join_verses():
    first = next(sword.chapters(sword.ENGLISH, ["Jude"]))
    assert first.startswith("Jude, a servant of Jesus Christ") and first.count(". ") > 10


@REAL
def test_block_cache_reads_the_same_text_with_one_inflate_per_block(monkeypatch):
    """Verses read through the per-block cache equal pysword's own per-verse reads."""
    books = ["Ruth", "Jonah"]
    cached = sword.verses(sword.ENGLISH, books)
    calls = []
    real = sword._bible

    def counting(module, library):
        bible = real(module, library)
        inflate = bible._decompressed_text.__wrapped__
        bible._decompressed_text = lambda *a: calls.append(a) or inflate(*a)
        return bible

    monkeypatch.setattr(sword, "_bible", counting)
    uncached = sword.verses(sword.ENGLISH, books)
    assert cached == uncached and len(cached) > 100
    assert len(calls) == len(uncached)  # pysword alone inflates a block for every verse
