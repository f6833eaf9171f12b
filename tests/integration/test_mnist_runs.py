"""mnist1d end to end: `algoperf run` of the NAdamW baseline (its real batch size, 128) on the
fixture ``algoperf datasets prepare mnist1d --fixture`` writes; training must learn it.

PyTorch runs in the default suite; JAX (compiles three eval programs) is marked slow.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from algoperf import registry
from algoperf.cli import main
from algoperf.data import cli as data_cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[2]
NADAMW = REPO / "submissions" / "baselines" / "nadamw"
POINT = {
    "learning_rate": 0.005,
    "one_minus_beta1": 0.1,
    "beta2": 0.999,
    "warmup_factor": 0.05,
    "weight_decay": 0.01,
    "label_smoothing": 0.1,
    "dropout_rate": 0.0,
}


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mnist1d_data")
    assert data_cli.main(["prepare", "mnist1d", "--fixture", f"--data_dir={root}", "--quiet"]) == 0
    return root


@pytest.mark.parametrize("framework", ["pytorch", pytest.param("jax", marks=pytest.mark.slow)])
def test_nadamw_learns_the_mnist1d_fixture(framework, fixture_root, tmp_path):
    space = tmp_path / "point.json"
    space.write_text(json.dumps([POINT]))
    exp = tmp_path / "exp"
    argv = [
        "run",
        f"--framework={framework}",
        "--workload=mnist1d",
        f"--submission_path={NADAMW / framework / 'submission.py'}",
        f"--tuning_search_space={space}",
        "--num_tuning_trials=1",
        f"--experiment_dir={exp}",
        "--experiment_name=mnist1d",
        f"--data_dir={fixture_root}",
        "--max_global_steps=400",
        "--progress=false",
    ]
    assert main(argv) == 0
    trial = exp / "mnist1d" / f"mnist1d_{framework}" / "trial_1"
    with (trial / "eval_measurements.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["global_step"] == "1" and 1 < int(rows[-1]["global_step"]) <= 400
    assert int(rows[-1]["validation/num_examples"]) == 200
    first, last = float(rows[0]["validation/accuracy"]), float(rows[-1]["validation/accuracy"])
    assert first < 0.4 < 0.8 < last, (first, last)
    record = json.loads((trial / "run_record.json").read_text())
    # It stops at the 400-step cap or earlier, once both of mnist1d's targets are met.
    config = registry.get_config("mnist1d")
    if int(rows[-1]["global_step"]) < 400:
        assert last > config.validation_target_value
        assert float(rows[-1]["test/accuracy"]) > config.test_target_value
    assert record["fixture_data"]["num_train_examples"] == 1_000
