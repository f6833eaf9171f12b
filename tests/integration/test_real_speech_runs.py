"""Real speech end to end (slow): LibriVox recordings through prepare, training and WER.

The five LibriVox utterances Debian's ``pocketsphinx-testdata`` ships (16 kHz FLAC in OpenSLR
tarballs, upper-case ``.trans.txt`` transcripts, `workloads.librispeech.testing`) make up
dev-clean and test-clean on their own, so the validation and test WER is computed on real
recordings against their real transcripts only; the training subsets add the fixture's synthetic
utterances so that the SentencePiece model has text to train on. The real prepare path decodes,
filters, tokenises and shards them; `algoperf run` then trains each (shrunk) model a few steps
with the NAdamW baseline in each framework and evaluates CTC loss and WER. Skipped, with the
reason, where the package is not available (scripts/debian_testdata.sh fetches it).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

pytest.importorskip("soundfile", reason="LibriSpeech decoding needs soundfile (algoperf[text])")

from algoperf import registry
from algoperf.cli import main
from workloads.common import librivox_testdata
from workloads.librispeech import data, testing

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.slow,
    pytest.mark.skipif(librivox_testdata.find_dir() is None, reason=librivox_testdata.INSTALL_HINT),
]

REPO = Path(__file__).resolve().parents[2]
NADAMW_SPACE = REPO / "submissions" / "baselines" / "nadamw" / "tuning_search_space.json"
SMALL = {
    "conformer": {"encoder_dim": 32, "num_attention_heads": 2, "num_encoder_layers": 1},
    "deepspeech": {"encoder_dim": 32, "num_lstm_layers": 1, "num_ffn_layers": 1},
}
SUBMISSION = """from submissions.baselines.nadamw.{framework}.submission import *  # noqa: F403


def get_batch_size(workload_name):
    return 2
"""
NUM_REAL = 5
# Real recordings only in the eval subsets (the synthetic count there is 0).
SIZES = {**testing.FIXTURE_SIZES, "dev-clean": 0, "dev-other": 0, "test-clean": 0}


@pytest.fixture(scope="module")
def librivox_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("librivox")
    source = testing.write_tarballs(root / "openslr", SIZES, librivox=True)
    dest = data.prepare(root, source=source, progress=False)
    counts = dict(source.expected_counts or {})
    assert counts["validation"] == counts["test"] == NUM_REAL
    record = {
        "dataset": data.DATASET,
        "writer": __name__,
        "config": {
            "num_train_examples": counts["train"],
            "num_eval_train_examples": 4,
            "num_validation_examples": counts["validation"],
            "num_test_examples": counts["test"],
            "eval_batch_size": 4,
        },
    }
    (dest / registry.FIXTURE_FILE).write_text(json.dumps(record) + "\n")
    return root


def test_eval_subsets_hold_the_real_recordings_and_transcripts(librivox_root):
    from workloads.common.tokenizer import Tokenizer

    tok = Tokenizer.load(Path(librivox_root) / data.DATASET / data.TOKENIZER_FILE)
    real = {u.transcript.upper() for u in librivox_testdata.load()}
    for subset in ("dev-clean", "test-clean"):
        loaded = data.load_subset(Path(librivox_root) / data.DATASET, subset)
        assert {tok.decode(loaded.tokens(i)) for i in range(len(loaded))} == real


@pytest.mark.parametrize("framework", ["jax", "pytorch"])
@pytest.mark.parametrize("arch", ["conformer", "deepspeech"])
def test_train_and_wer_on_real_speech(arch, framework, librivox_root, monkeypatch, tmp_path):
    name = f"librispeech_{arch}"
    config = registry.get_config(name, data_dir=librivox_root).variant(name, model=SMALL[arch])
    patched = {**registry.all_configs(), name: config}
    monkeypatch.setattr(registry, "all_configs", lambda: patched)
    submission = tmp_path / f"nadamw_{framework}.py"
    submission.write_text(SUBMISSION.format(framework=framework))
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
        f"--data_dir={librivox_root}",
        "--rng_seed=2",
        "--max_global_steps=3",
        "--progress=false",
    ]
    assert main(argv) == 0
    with (exp / "real" / f"{name}_{framework}" / "trial_1" / "eval_measurements.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows[-1]["global_step"] == "3"
    for row in rows:
        for split in ("validation", "test"):
            assert int(row[f"{split}/num_examples"]) == NUM_REAL
            # WER against the real transcripts: an untrained model deletes or inserts words.
            assert 0.0 < float(row[f"{split}/wer"]) < 20.0
            assert math.isfinite(float(row[f"{split}/ctc_loss"]))
