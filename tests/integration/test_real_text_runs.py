"""Real text end to end (slow): translation on verse-aligned Bibles, the language model on English.

Translation: Debian's Reina-Valera 1909 (Spanish) and World English Bible, verse-aligned
(`workloads.common.sword`), laid out as the WMT17 files (`workloads.wmt.bible`), prepared by the
real wmt prepare (a 600-piece SentencePiece model trained on them, filtered, packed); `algoperf
run` trains a narrow `wmt` a few steps and evaluates loss, accuracy and BLEU of beam-search
translations against the real English references.

Language model: chapters of the World English Bible written as fineweb-edu parquet, tokenised
by the real finewebedu prepare with GPT-2's BPE (the ranks file taken from the ``openai-whisper``
source distribution on the package index, checksum-verified), then `algoperf run` trains a
narrow `finewebedu_lm` a few steps and evaluates perplexity on held-out chapters.

Both are sized through the fixture mechanism (split sizes recorded next to the data), so the runs
say "fixture data" in their records. Skipped, with the reason, where the Debian packages
(scripts/debian_testdata.sh) or the package index are unavailable.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from algoperf import registry
from algoperf.cli import main
from algoperf.data import DatasetError
from workloads.common import index_files, sword

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.slow,
    pytest.mark.skipif(
        not sword.available(sword.ENGLISH, sword.SPANISH),
        reason="needs Debian's sword-text-web and sword-text-sparv (scripts/debian_testdata.sh)",
    ),
]

REPO = Path(__file__).parents[2]
NADAMW_SPACE = REPO / "submissions" / "baselines" / "nadamw" / "tuning_search_space.json"
SUBMISSION = """from submissions.baselines.nadamw.{framework}.submission import *  # noqa: F403


def get_batch_size(workload_name):
    return {batch}
"""


def _record_sizes(root: Path, dataset: str, sizes: dict[str, int | None]) -> None:
    """Record split sizes next to the data as a fixture writer does (`registry.write_fixture`)."""
    record = {"dataset": dataset, "writer": __name__, "config": sizes}
    (root / dataset / registry.FIXTURE_FILE).write_text(json.dumps(record) + "\n")


def _use_model(monkeypatch, name: str, root: Path, model: dict) -> None:
    config = registry.get_config(name, data_dir=root).variant(name, model=model)
    patched = {**registry.all_configs(), name: config}
    monkeypatch.setattr(registry, "all_configs", lambda: patched)


def _run(tmp_path: Path, framework: str, name: str, root: Path, batch: int, steps: int) -> list:
    submission = tmp_path / f"nadamw_{framework}.py"
    submission.write_text(SUBMISSION.format(framework=framework, batch=batch))
    exp = tmp_path / "exp"
    argv = [
        "run",
        f"--framework={framework}",
        f"--workload={name}",
        f"--submission_path={submission}",
        f"--tuning_search_space={NADAMW_SPACE}",
        "--num_tuning_trials=1",
        f"--experiment_dir={exp}",
        "--experiment_name=real",
        f"--data_dir={root}",
        "--rng_seed=1",
        f"--max_global_steps={steps}",
        "--progress=false",
    ]
    assert main(argv) == 0
    with (exp / "real" / f"{name}_{framework}" / "trial_1" / "eval_measurements.csv").open() as f:
        return list(csv.DictReader(f))


# Translation ------------------------------------------------------------------------------------

WMT_VOCAB = 600
WMT_MODEL = {"vocab_size": WMT_VOCAB, "emb_dim": 32, "num_heads": 2, "num_layers": 1, "mlp_dim": 64}


@pytest.fixture(scope="module")
def bible_wmt(tmp_path_factory) -> Path:
    from workloads.wmt import bible, data

    root = tmp_path_factory.mktemp("bible_wmt")
    source = bible.write_source(
        root / "source",
        train_books=("Mark",),
        held_out={"validation": ("Jude",), "test": ("Phlm",)},
    )
    dest = data.prepare(root, source_dir=source, vocab_size=WMT_VOCAB, progress=False)
    sizes = data._read_meta(dest)["splits"]
    _record_sizes(
        root,
        "wmt",
        {
            "num_train_examples": sizes["train"],
            "num_eval_train_examples": 8,
            "num_validation_examples": sizes["validation"],
            "num_test_examples": sizes["test"],
            "eval_batch_size": 8,
        },
    )
    return root


@pytest.mark.parametrize("framework", ["jax", "pytorch"])
def test_wmt_trains_and_translates_real_verses(framework, bible_wmt, monkeypatch, tmp_path):
    from workloads.wmt import common, data

    _use_model(monkeypatch, "wmt", bible_wmt, WMT_MODEL)
    monkeypatch.setattr(common.WmtData, "max_decode_len", 48)
    rows = _run(tmp_path, framework, "wmt", bible_wmt, batch=4, steps=4)
    assert rows[-1]["global_step"] == "4"
    val = data.load_split(bible_wmt, "validation")
    for row in rows:
        assert int(row["validation/num_examples"]) == len(val["inputs"]) == 25  # Jude's verses
        for split in ("train", "validation", "test"):
            assert 0.0 <= float(row[f"{split}/bleu"]) <= 100.0
            assert math.isfinite(float(row[f"{split}/loss"]))
    first, last = float(rows[0]["train/loss"]), float(rows[-1]["train/loss"])
    assert last < first  # four NAdamW steps on real text lower the loss
    assert first < 1.5 * math.log(WMT_VOCAB)


# Language model ---------------------------------------------------------------------------------

LM_MODEL = {
    "vocab_size": 50_257,  # GPT-2: 50,256 ranks + end of text, as the registered model
    "model_dim": 32,
    "num_heads": 2,
    "num_layers": 1,
    "mlp_dim": 64,
    "multiple_of": 32,
    "compute_dtype": "float32",
}


@pytest.fixture(scope="module")
def bible_lm(tmp_path_factory) -> Path:
    from workloads.finewebedu_lm import data, testing

    root = tmp_path_factory.mktemp("bible_lm")
    try:
        ranks = index_files.fetch_member(data.GPT2_RANKS_ON_INDEX, root / "cache" / "gpt2.tiktoken")
    except DatasetError as exc:
        pytest.skip(f"GPT-2 ranks not obtainable from the package index: {exc}")
    texts = list(sword.chapters(sword.ENGLISH, ["Gen"]))  # 50 chapters, about 50k tokens
    testing.write_parquet(root / "parquet" / "000_00000.parquet", texts)
    dest = data.prepare(
        root,
        parquet_dir=root / "parquet",
        ranks_file=ranks,
        validation_sequences=4,
        progress=False,
    )
    meta = json.loads((dest / "meta.json").read_text())
    train = len(data.load_windows(root, "train"))
    _record_sizes(
        root,
        "finewebedu",
        {
            "num_train_examples": train,
            "num_eval_train_examples": 4,
            "num_validation_examples": 4,
            "num_test_examples": None,
            "eval_batch_size": 2,
        },
    )
    assert meta["format_version"] == data.FORMAT_VERSION
    return root


@pytest.mark.parametrize("framework", ["jax", "pytorch"])
def test_lm_trains_on_real_english(framework, bible_lm, monkeypatch, tmp_path):
    _use_model(monkeypatch, "finewebedu_lm", bible_lm, LM_MODEL)
    rows = _run(tmp_path, framework, "finewebedu_lm", bible_lm, batch=2, steps=3)
    assert rows[-1]["global_step"] == "3"
    for row in rows:
        assert int(row["validation/num_examples"]) == 4
        ppl = float(row["validation/ppl"])
        assert math.isfinite(ppl) and ppl > 1.0
    assert float(rows[-1]["train/loss"]) < float(rows[0]["train/loss"])
