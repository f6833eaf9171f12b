"""Every dataset has a fixture: ``algoperf datasets prepare D --fixture`` then ``algoperf run``.

The user's path to try a workload before downloading its data: the fixture is written by the
command a user types, in the real on-disk format (through the dataset's real prepare code where
there is one), and ``algoperf run --data_dir`` then runs the registered workload on it, with the
config sized from ``fixture.json`` and the sizes recorded in ``run_record.json``. The cheap
datasets run in the default suite, the others are marked slow.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from algoperf import registry
from algoperf.cli import main
from algoperf.data import cli as data_cli

REPO = Path(__file__).resolve().parents[2]
NADAMW = REPO / "submissions" / "baselines" / "nadamw"

# (dataset, framework) pairs run in the default suite; every other pair is marked slow.
DEFAULT = {("mnist", "pytorch"), ("fashion_mnist", "jax"), ("cifar10", "pytorch")}


def _workload_of(dataset: str) -> str | None:
    """The first implemented base workload reading `dataset` (None: none implemented yet)."""
    for name, config in registry.all_configs().items():
        if config.dataset == dataset and registry.implemented_frameworks(name):
            return name
    return None


def _cases() -> list:
    cases = []
    for dataset in registry.datasets():
        for fw in ("jax", "pytorch"):
            slow = () if (dataset, fw) in DEFAULT else pytest.mark.slow
            cases.append(pytest.param(dataset, fw, marks=slow, id=f"{dataset}-{fw}"))
    return cases


@pytest.fixture(autouse=True)
def _cpu_settings(monkeypatch):
    """Loaders decode in the calling thread and PyTorch uses one thread (one test per core)."""
    import torch

    monkeypatch.setenv("ALGOPERF_NUM_DATA_WORKERS", "0")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def submission(tmp_path_factory) -> Path:
    """The NAdamW baseline with a batch of 4 for every workload (fixtures hold a few examples)."""
    folder = tmp_path_factory.mktemp("submission")
    for fw in ("jax", "pytorch"):
        (folder / fw).mkdir()
        (folder / fw / "submission.py").write_text(
            f"from submissions.baselines.nadamw.{fw}.submission import *  # noqa: F403\n\n\n"
            "def get_batch_size(workload_name):\n    return 4\n"
        )
    (folder / "tuning_search_space.json").write_text(
        (NADAMW / "tuning_search_space.json").read_text()
    )
    return folder


def test_every_dataset_has_a_fixture_writer():
    missing = [name for name, d in registry.datasets().items() if d.fixture is None]
    assert not missing, f"declare a fixture writer for {', '.join(missing)}"


@pytest.mark.parametrize(("dataset", "framework"), _cases())
def test_fixture_then_run(dataset, framework, submission, tmp_path, capsys):
    root = tmp_path / "data"
    assert data_cli.main(["prepare", dataset, "--fixture", f"--data_dir={root}"]) == 0
    assert f"{dataset}: fixture ready in {root / dataset}" in capsys.readouterr().out
    recorded = json.loads((root / dataset / registry.FIXTURE_FILE).read_text())["config"]
    name = _workload_of(dataset)
    if name is None:
        pytest.skip(f"the {dataset} fixture is written, but no workload reading it is implemented")
    sized = registry.get_config(name, root)
    for field in ("num_train_examples", "num_validation_examples", "num_test_examples"):
        if getattr(registry.get_config(name), field) is None:  # no such split (finewebedu test)
            assert field not in recorded or recorded[field] is None
            continue
        assert getattr(sized, field) == recorded[field] < getattr(registry.get_config(name), field)

    exp = tmp_path / "exp"
    argv = [
        "run",
        f"--framework={framework}",
        f"--workload={name}",
        f"--submission_path={submission / framework / 'submission.py'}",
        f"--tuning_search_space={submission / 'tuning_search_space.json'}",
        "--num_tuning_trials=1",
        f"--experiment_dir={exp}",
        "--experiment_name=fixture",
        f"--data_dir={root}",
        "--max_global_steps=2",
        "--progress=false",
    ]
    assert main(argv) == 0
    tdir = exp / "fixture" / f"{name}_{framework}" / "trial_1"
    with (tdir / "eval_measurements.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows and rows[-1]["global_step"] == "2"
    metric = f"validation/{sized.target_metric_name}"
    assert metric in rows[-1] and rows[-1][metric] not in ("", "nan")
    record = json.loads((tdir / "run_record.json").read_text())
    assert record["fixture_data"] == recorded


def test_run_on_real_data_records_no_fixture(tmp_path):
    assert registry.fixture_overrides("mnist", tmp_path) is None
    assert registry.get_config("mnist", tmp_path) == registry.get_config("mnist")
