"""Real parallel text (Spanish/English Bibles) laid out as WMT17 files and prepared for real."""

from __future__ import annotations

import pytest

from algoperf.data import DatasetError
from workloads.common import sword
from workloads.common.tokenizer import Tokenizer
from workloads.wmt import bible, data

pytestmark = pytest.mark.skipif(
    not sword.available(sword.ENGLISH, sword.SPANISH),
    reason="needs Debian's sword-text-web and sword-text-sparv (or ALGOPERF_SWORD_DIR) and pysword",
)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("bible") / "source"
    return bible.write_source(
        root, train_books=("Mark",), held_out={"validation": ("Jude",), "test": ("Phlm",)}
    )


def test_layout_is_the_wmt_release_layout(source):
    ((de, en),) = data.train_files(source)
    assert de.name == "news-commentary-v12.de-en.de"
    pairs = data.read_pair(de, en)
    assert len(pairs) > 600  # Mark has 678 verses
    val = data.read_pair(*data.eval_files(source, "validation"))
    test = data.read_pair(*data.eval_files(source, "test"))
    assert val[0][1].startswith("Jude, a servant of Jesus Christ")
    assert test and not {p[1] for p in val + test} & {p[1] for p in pairs}


def test_prepare_runs_on_real_text(source, tmp_path):
    dest = data.prepare(tmp_path, source_dir=source, vocab_size=800, progress=False)
    tok = Tokenizer.load(dest / "spm_32k.model")
    val = data.load_split(tmp_path, "validation")
    first = [int(t) for t in val["targets"][0] if t != data.PAD_ID]
    assert first[-1] == data.EOS_ID
    assert tok.decode(first[:-1]).startswith("Jude, a servant of Jesus Christ")
    train = data.load_split(tmp_path, "train")
    assert train["inputs"].shape[1] == data.MAX_LENGTH and len(train["inputs"]) > 10


# The wmt_bible dataset ------------------------------------------------------------------------


def test_wmt_bible_fixture_is_its_own_dataset_with_short_rows(tmp_path):
    """The fixture writer prepares ``<data_dir>/wmt_bible`` (rows of 128, its own tokenizer),
    leaves ``<data_dir>/wmt`` alone, and the registered config reads it through `config.dataset`."""
    from algoperf import registry
    from workloads.wmt import common

    registry.write_fixture("wmt_bible", tmp_path)
    sizes = registry.fixture_overrides("wmt_bible", tmp_path)
    assert not (tmp_path / data.DATASET).exists()
    train = data.load_split(tmp_path, "train", bible.DATASET)
    assert train["inputs"].shape[1] == bible.BIBLE_MAX_LENGTH == 128
    assert sizes["num_validation_examples"] == 25 and sizes["num_test_examples"] == 25
    config = registry.get_config("wmt_bible", data_dir=tmp_path)
    assert config.dataset == "wmt_bible" and "fixture data" in config.notes
    assert config.num_train_examples == len(train["inputs"])
    with pytest.raises(DatasetError, match=r"wmt.*prepare wmt"):
        data.load_split(tmp_path, "train")
    val = common.eval_arrays(tmp_path, "validation", 25, bible.DATASET)
    assert val["inputs"].shape == (25, 128)
    eval_train = common.eval_arrays(tmp_path, "eval_train", 8, bible.DATASET)
    assert eval_train["targets"].shape == (8, 128)
    tok = common.load_tokenizer(str(tmp_path / bible.DATASET))
    assert tok.vocab_size == bible.FIXTURE_VOCAB
    assert tok.decode([int(t) for t in val["targets"][0] if t > data.EOS_ID]).startswith("Jude")


@pytest.mark.slow
def test_wmt_bible_prepare_on_the_whole_bible(tmp_path):
    """`algoperf datasets prepare wmt_bible`: every book but the two held out trains, the split
    sizes are the registered config's, and held-out verses are not training verses (but for a
    formulaic greeting that recurs verbatim across the epistles)."""
    from algoperf import registry
    from algoperf.data import cli as data_cli

    assert data_cli.main(["prepare", "wmt_bible", f"--data_dir={tmp_path}", "--quiet"]) == 0
    dest = tmp_path / bible.DATASET
    meta = data._read_meta(dest)
    config = registry.get_config("wmt_bible", data_dir=tmp_path)
    assert "fixture" not in config.notes
    assert meta["max_length"] == 128 and meta["vocab_size"] == bible.BIBLE_VOCAB
    assert meta["splits"]["train"] == config.num_train_examples
    # The registered eval takes the first pairs of each held-out book (``eval_prefix``).
    assert (meta["splits"]["validation"], meta["splits"]["test"]) == (85, 47)
    assert config.model["eval_prefix"]
    assert config.num_validation_examples <= 85 and config.num_test_examples <= 47
    assert meta["splits"]["train_pairs"] > 30_000
    source = dest / "source"
    train = {t for _, t in data.read_pair(*data.train_files(source)[0])}
    for split in ("validation", "test"):
        held = data.read_pair(*data.eval_files(source, split))
        assert held and len({t for _, t in held} & train) <= 1
    val = data.read_pair(*data.eval_files(source, "validation"))
    assert val[0][1].startswith("In the days when the judges judged")  # Ruth 1:1
