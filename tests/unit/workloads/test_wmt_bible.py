"""Real parallel text (Spanish/English Bibles) laid out as WMT17 files and prepared for real."""

from __future__ import annotations

import pytest

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
