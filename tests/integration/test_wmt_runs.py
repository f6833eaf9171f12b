"""wmt end to end: `algoperf run` with the NAdamW baseline on a WMT-format fixture, BLEU included.

The fixture is what ``algoperf datasets prepare wmt --fixture`` writes: line-aligned corpora and
SGM test sets in the WMT17 release layout (`workloads.wmt.testing`), tokenised with a 64-piece
SentencePiece model, filtered and packed by the real prepare code, its split sizes recorded so
that ``--data_dir`` sizes the config. The registered 133M-parameter Transformer does not fit a CPU
test, so the config is swapped, in this process only, for the same variant with a narrow one-layer
model over the fixture's 64-piece vocabulary (everything else stays registered), and translation
decodes at most 32 tokens instead of 256 (the fixture's references are at most 28). Each run
trains 1 step and evaluates, translating every example of eval_train, validation and test with
beam search. `wmt` runs in both frameworks by default; the variants are marked slow.

`wmt_bible` runs on its own fixture (``algoperf datasets prepare wmt_bible --fixture``: the real
verse-aligned Spanish/English Gospel of Mark to train on, Jude and Philemon to evaluate, 600-piece
SentencePiece model, rows of 128, in ``<data_dir>/wmt_bible/``) with its registered model and
eval (loss and accuracy, no translation). PyTorch runs in the default suite, JAX (its compile)
is slow-marked; both are skipped where Debian's SWORD Bibles are not installed.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from algoperf import registry
from algoperf.cli import main
from algoperf.data import cli as data_cli
from workloads.common import sword
from workloads.wmt import bible, common

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).parents[2]
NADAMW_SPACE = REPO / "submissions" / "baselines" / "nadamw" / "tuning_search_space.json"
SMALL_MODEL = {"vocab_size": 64, "emb_dim": 32, "num_heads": 2, "num_layers": 1, "mlp_dim": 64}
DECODE_LEN = 32
EVAL_ROWS = 12
VARIANTS = ["wmt", "wmt_post_ln", "wmt_attention_temp", "wmt_glu_tanh"]
RUN_CASES = [
    pytest.param(name, fw, marks=() if name == "wmt" else pytest.mark.slow, id=f"{name}-{fw}")
    for name in VARIANTS
    for fw in ("jax", "pytorch")
]
# The NAdamW baseline with a global batch of 4 packed rows (the baseline asks for 128).
SUBMISSION = """from submissions.baselines.nadamw.{framework}.submission import *  # noqa: F403


def get_batch_size(workload_name):
    return 4
"""


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    """``algoperf datasets prepare wmt --fixture``: WMT-format text, prepared for real."""
    root = tmp_path_factory.mktemp("wmt_data")
    assert data_cli.main(["prepare", "wmt", "--fixture", f"--data_dir={root}", "--quiet"]) == 0
    return root


def use_small_model(monkeypatch, name: str, root: Path) -> None:
    """The registered `name` sized for the fixture, with the narrow model, in this process."""
    config = registry.get_config(name, data_dir=root)
    small = config.variant(name, model=SMALL_MODEL)
    patched = {**registry.all_configs(), name: small}
    monkeypatch.setattr(registry, "all_configs", lambda: patched)
    monkeypatch.setattr(common.WmtData, "max_decode_len", DECODE_LEN)
    # One device chunk per eval split (the fixture's eval batch of 4 would give chunks of 1 row:
    # 32 translate calls per eval instead of 3; the metrics do not depend on it).
    monkeypatch.setattr(common.WmtData, "eval_rows_per_device", EVAL_ROWS, raising=False)


@pytest.mark.parametrize(("name", "framework"), RUN_CASES)
def test_nadamw_runs_end_to_end(name, framework, fixture_root, monkeypatch, tmp_path):
    use_small_model(monkeypatch, name, fixture_root)
    submission = tmp_path / f"nadamw_wmt_{framework}.py"
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
        "--experiment_name=wmt",
        f"--data_dir={fixture_root}",
        "--rng_seed=3",
        "--max_global_steps=1",
        "--progress=false",
    ]
    start = time.perf_counter()
    assert main(argv) == 0
    print(f"{name}-{framework}: algoperf run took {time.perf_counter() - start:.1f}s")
    path = exp / "wmt" / f"{name}_{framework}" / "trial_1" / "eval_measurements.csv"
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert rows and rows[-1]["global_step"] == "1"
    sizes = registry.fixture_overrides("wmt", fixture_root)
    for row in rows:
        assert int(row["validation/num_examples"]) == sizes["num_validation_examples"]
        assert int(row["test/num_examples"]) == sizes["num_test_examples"]
        for split in ("train", "validation", "test"):
            assert 0.0 <= float(row[f"{split}/accuracy"]) <= 1.0
            assert 0.0 <= float(row[f"{split}/bleu"]) <= 100.0
            loss = float(row[f"{split}/loss"])
            # An untrained model over 64 pieces: about log(64) = 4.2 nats per token.
            assert math.isfinite(loss) and 2.0 < loss < 8.0


@pytest.mark.parametrize("framework", ["jax", "pytorch"])
def test_registered_config_refuses_the_fixture(framework, fixture_root):
    """Without the fixture sizes the run stops before training: newstest2013 has 3,000 pairs."""
    from algoperf.data import DatasetError

    workload = registry.get_workload("wmt", framework)
    with pytest.raises(DatasetError, match=r"validation_inputs.npy: 12 examples.*expects 3000"):
        workload.check_data(str(fixture_root))


# Device counts ---------------------------------------------------------------------------------

# Evaluates the fixture with the narrow model (fixed init) and prints the metrics as JSON (rank 0).
_EVAL_SCRIPT = """
import json, sys
import numpy as np
from algoperf import registry
from algoperf.frameworks import pytorch as fpt
from workloads.common import sword
from workloads.wmt import bible, common
framework, root = sys.argv[1], sys.argv[2]
common.WmtData.max_decode_len = 16
common.WmtData.eval_rows_per_device = 3
w = registry.get_workload("wmt", framework, data_dir=root)
w.config = w.config.variant("wmt", model=json.loads(sys.argv[3]))
if framework == "jax":
    import jax
    rng = jax.random.PRNGKey(0)
    devices = jax.device_count()
else:
    import torch
    torch.set_num_threads(1)
    fpt.init(w._dist)
    rng = np.array([0, 0], np.uint32)
    devices = w._dist.world_size
params, state = w.init_model_fn(rng)
result = w.eval_model(64, params, state, rng, root, None, 0)
if framework == "jax" or w._dist.rank == 0:
    print("RESULT", json.dumps({"devices": devices, **result}))
"""


def _eval_in_subprocess(cmd: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, out.stdout[-2000:]
    return json.loads(lines[0][len("RESULT ") :])


@pytest.mark.slow
@pytest.mark.multi_device
@pytest.mark.parametrize("framework", ["jax", "pytorch"])
def test_eval_is_the_same_on_two_devices(framework, fixture_root):
    """Two JAX host devices / two DDP ranks (torchrun, gloo; each rank translates its rows):
    every example once, the same loss and accuracy (relative 1e-5: only the device program's
    rounding may differ) and the same BLEU."""
    root = str(fixture_root)
    model = json.dumps(SMALL_MODEL)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    one = _eval_in_subprocess([sys.executable, "-c", _EVAL_SCRIPT, framework, root, model], env)
    if framework == "jax":
        env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
        cmd = [sys.executable, "-c", _EVAL_SCRIPT, framework, root, model]
    else:
        script = Path(root) / "wmt_eval_script.py"
        script.write_text(_EVAL_SCRIPT)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        cmd += [str(script), framework, root, model]
    two = _eval_in_subprocess(cmd, env)
    assert (one["devices"], two["devices"]) == (1, 2)
    assert two["validation/num_examples"] == one["validation/num_examples"] == 12
    for key, value in one.items():
        if key != "devices":
            assert two[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key


# wmt_bible ------------------------------------------------------------------------------------

needs_bibles = pytest.mark.skipif(
    not sword.available(sword.ENGLISH, sword.SPANISH),
    reason="needs Debian's sword-text-web and sword-text-sparv (scripts/debian_testdata.sh)",
)


@pytest.fixture(scope="module")
def bible_root(tmp_path_factory) -> Path:
    """``algoperf datasets prepare wmt_bible --fixture``: real verses, prepared for real."""
    root = tmp_path_factory.mktemp("wmt_bible_data")
    argv = ["prepare", bible.DATASET, "--fixture", f"--data_dir={root}", "--quiet"]
    assert data_cli.main(argv) == 0
    return root


@needs_bibles
@pytest.mark.parametrize("framework", [pytest.param("jax", marks=pytest.mark.slow), "pytorch"])
def test_wmt_bible_runs_end_to_end(framework, bible_root, tmp_path):
    """The registered wmt_bible model trains 2 steps on real verses; the eval reports loss and
    accuracy on every split and does not translate (the variant's ``eval_bleu`` False)."""
    submission = tmp_path / f"nadamw_{framework}.py"
    submission.write_text(SUBMISSION.format(framework=framework))
    exp = tmp_path / "exp"
    argv = [
        "run",
        f"--framework={framework}",
        "--workload=wmt_bible",
        f"--submission_path={submission}",
        f"--tuning_search_space={NADAMW_SPACE}",
        "--num_tuning_trials=1",
        f"--experiment_dir={exp}",
        "--experiment_name=bible",
        f"--data_dir={bible_root}",
        "--rng_seed=2",
        "--max_global_steps=2",
        "--progress=false",
    ]
    assert main(argv) == 0
    path = exp / "bible" / f"wmt_bible_{framework}" / "trial_1" / "eval_measurements.csv"
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert rows and rows[-1]["global_step"] == "2"
    sizes = registry.fixture_overrides(bible.DATASET, bible_root)
    for row in rows:
        assert int(row["validation/num_examples"]) == sizes["num_validation_examples"] == 25
        assert int(row["test/num_examples"]) == sizes["num_test_examples"] == 25
        assert not [key for key in row if key.endswith("bleu")]
        for split in ("train", "validation", "test"):
            assert 0.0 <= float(row[f"{split}/accuracy"]) <= 1.0
            loss = float(row[f"{split}/loss"])
            # Untrained over the 2,048-piece model vocabulary: about log(2048) = 7.6 nats.
            assert math.isfinite(loss) and 5.0 < loss < 11.0
