"""LibriSpeech end to end: `algoperf run` with the NAdamW baseline on the OpenSLR-format fixture.

The fixture is what ``algoperf datasets prepare librispeech --fixture`` writes: six OpenSLR-format
tarballs of FLAC tone sequences with upper-case transcripts (`workloads.librispeech.testing`),
prepared by the real prepare path (decode, filters, tokenizer training, int16 shards), its split
sizes recorded so that ``algoperf run --data_dir`` sizes the config for it. The registered
models are shrunk in this process only (`SMALL`: the same code, one block of width 32; upstream's
32M / 18M-parameter models take minutes per step on a CPU), audio keeps upstream's 320,000-sample
padding. The default suite runs the base Conformer and DeepSpeech in both frameworks and the
eval checks; the variants are marked slow.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("soundfile", reason="LibriSpeech decoding needs soundfile (algoperf[text])")
pytest.importorskip("sentencepiece", reason="the tokenizer needs sentencepiece (algoperf[text])")

from algoperf import registry
from algoperf.cli import main
from algoperf.data import DatasetError
from algoperf.data import cli as data_cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[2]
NADAMW_SPACE = REPO / "submissions" / "baselines" / "nadamw" / "tuning_search_space.json"
SMALL = {
    "conformer": {"encoder_dim": 32, "num_attention_heads": 2, "num_encoder_layers": 1},
    "deepspeech": {"encoder_dim": 32, "num_lstm_layers": 1, "num_ffn_layers": 1},
}
BASE = ("librispeech_conformer", "librispeech_deepspeech")
RUN_CASES = [
    pytest.param(
        name,
        fw,
        marks=() if name in BASE else pytest.mark.slow,
        id=f"{name}-{fw}",
    )
    for name in registry.workload_names()
    if name.startswith("librispeech_")
    for fw in ("jax", "pytorch")
]
# The NAdamW baseline with a global batch of 2 (everything else is the baseline's own code).
SUBMISSION = """
from submissions.baselines.nadamw.{framework}.submission import *  # noqa: F403


def get_batch_size(workload_name):
    return 2
"""


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    """``algoperf datasets prepare librispeech --fixture``: OpenSLR tarballs, prepared for real."""
    root = tmp_path_factory.mktemp("librispeech_data")
    argv = ["prepare", "librispeech", "--fixture", f"--data_dir={root}", "--quiet"]
    assert data_cli.main(argv) == 0
    return root


def small(config):
    """`config` with the shrunk model of its architecture."""
    return config.variant(config.name, model=SMALL[config.model["arch"]])


@pytest.fixture
def small_models(monkeypatch):
    """Every LibriSpeech workload with its shrunk model, for the registry and the runner."""
    patched = {
        name: small(c) if c.family == "librispeech" else c
        for name, c in registry.all_configs().items()
    }
    monkeypatch.setattr(registry, "all_configs", lambda: patched)


def _rng(framework: str):
    if framework == "jax":
        import jax

        return jax.random.PRNGKey(0)
    return np.array([0, 0], np.uint32)


def _run_argv(
    name: str, framework: str, tmp_path: Path, data_dir: Path, max_global_steps: int
) -> list[str]:
    """``algoperf run`` of the batch-2 NAdamW baseline: one trial into ``tmp_path/exp/speech``."""
    submission = tmp_path / f"nadamw_batch2_{framework}.py"
    submission.write_text(SUBMISSION.format(framework=framework))
    return [
        "run",
        f"--framework={framework}",
        f"--workload={name}",
        f"--submission_path={submission}",
        f"--tuning_search_space={NADAMW_SPACE}",
        "--num_tuning_trials=1",
        f"--experiment_dir={tmp_path / 'exp'}",
        "--experiment_name=speech",
        f"--data_dir={data_dir}",
        "--rng_seed=3",
        f"--max_global_steps={max_global_steps}",
        "--progress=false",
    ]


@pytest.mark.parametrize(("name", "framework"), RUN_CASES)
def test_nadamw_runs_end_to_end(name, framework, fixture_root, small_models, tmp_path):
    exp = tmp_path / "exp"
    argv = _run_argv(name, framework, tmp_path, fixture_root, max_global_steps=2)
    start = time.perf_counter()
    assert main(argv) == 0
    print(f"{name}-{framework}: algoperf run took {time.perf_counter() - start:.1f}s")
    trial = exp / "speech" / f"{name}_{framework}" / "trial_1"
    with (trial / "eval_measurements.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["global_step"] == "1" and rows[-1]["global_step"] == "2"
    config = registry.get_config(name, data_dir=fixture_root)
    for row in rows:
        assert int(row["validation/num_examples"]) == config.num_validation_examples == 12
        assert int(row["test/num_examples"]) == config.num_test_examples == 8
        for split in ("train", "validation", "test"):
            # Untrained: many insertions, so the WER may exceed 1; never negative.
            assert 0.0 <= float(row[f"{split}/wer"]) < 20.0
            loss = float(row[f"{split}/ctc_loss"])
            assert math.isfinite(loss) and loss > 0.0


@pytest.mark.parametrize("framework", ["pytorch", pytest.param("jax", marks=pytest.mark.slow)])
def test_run_evaluates_with_the_given_tokenizer(
    framework, fixture_root, small_models, tmp_path, capsys
):
    """``--librispeech_tokenizer_vocab_path`` reaches the eval: the dataset's own model is moved
    away (as in upstream's layout, where the flag names it), and the run still scores WER."""
    data_dir = tmp_path / "data"
    shutil.copytree(fixture_root, data_dir, ignore=shutil.ignore_patterns("*.tar.gz"))
    given = tmp_path / "tokenizer" / "spm_model.vocab"
    given.parent.mkdir()
    (data_dir / "librispeech" / "spm_model.vocab").rename(given)
    exp = tmp_path / "exp"
    argv = _run_argv("librispeech_deepspeech", framework, tmp_path, data_dir, max_global_steps=1)
    # Without the flag the missing model stops the run before training.
    assert main([*argv, "--experiment_name=without"]) != 0
    assert "spm_model.vocab: missing" in capsys.readouterr().err
    assert main([*argv, f"--librispeech_tokenizer_vocab_path={given}"]) == 0
    trial = exp / "speech" / f"librispeech_deepspeech_{framework}" / "trial_1"
    with (trial / "eval_measurements.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [row["global_step"] for row in rows] == ["1"]
    for split in ("train", "validation", "test"):
        assert 0.0 <= float(rows[0][f"{split}/wer"]) < 20.0
    flags = json.loads((trial / "flags_0.json").read_text())
    assert flags["librispeech_tokenizer_vocab_path"] == str(given)


@pytest.mark.parametrize(
    ("arch", "framework"),
    [
        ("conformer", "jax"),
        ("conformer", "pytorch"),
        pytest.param("deepspeech", "jax", marks=pytest.mark.slow),
        ("deepspeech", "pytorch"),
    ],
)
def test_eval_is_the_same_for_any_eval_batch_size(arch, framework, fixture_root, small_models):
    """Eval batch size and the padding of the last batch change nothing (fixed device chunks,
    exact per-utterance sums, padded rows dropped)."""
    workload = registry.get_workload(f"librispeech_{arch}", framework, data_dir=fixture_root)
    rng = _rng(framework)
    params, state = workload.init_model_fn(rng)
    results = [
        workload.eval_model(size, params, state, rng, str(fixture_root), None, 0)
        for size in (3, 8, 50)
    ]
    assert results[0] == results[1] == results[2]
    assert results[0]["validation/num_examples"] == 12


def test_registered_config_refuses_the_fixture(fixture_root):
    """Without the fixture's sizes the run stops before training: 263,840 train utterances."""
    workload = registry.get_workload("librispeech_conformer", "pytorch")
    with pytest.raises(DatasetError, match=r"train has 136 utterances.*expects 263840"):
        workload.check_data(str(fixture_root))


def test_fixture_config_keeps_the_registered_model(fixture_root):
    config = registry.get_config("librispeech_deepspeech", data_dir=fixture_root)
    registered = registry.get_config("librispeech_deepspeech")
    assert config.model == registered.model and "fixture" in config.notes
    assert dataclasses.replace(config, notes=registered.notes).eval_batch_size == 8


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["jax", "pytorch"])
def test_check_passes_the_nadamw_baseline(framework, small_models, capsys):
    """``algoperf check`` (synthetic batches, no dataset) on both shrunk speech models."""
    path = REPO / "submissions" / "baselines" / "nadamw" / framework / "submission.py"
    argv = ["check", str(path), "--workloads=librispeech_conformer,librispeech_deepspeech"]
    assert main([*argv, f"--framework={framework}"]) == 0
    out = capsys.readouterr().out
    assert "PASS  librispeech_conformer: batch size 256" in out
    assert "PASS  librispeech_deepspeech: batch size 256" in out
