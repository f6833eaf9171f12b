"""Data parallelism on a CPU: two DDP ranks under torchrun (gloo), and JAX over two host devices.

For the same global batch the loss trajectory (eval rows at fixed steps) must equal the
single-device one within float tolerance (gradient all-reduces and sharded reductions sum in a
different order), and the logs must be written once.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from algoperf.cli import main
from algoperf.runner import checkpoint

pytestmark = pytest.mark.multi_device

REPO = Path(__file__).resolve().parents[2]
STEPS = 40
EVERY = 20
POINT = {
    "dropout_rate": 0.0,
    "label_smoothing": 0.1,
    "learning_rate": 3e-4,
    "one_minus_beta1": 0.1,
    "beta2": 0.999,
    "weight_decay": 0.01,
    "warmup_factor": 0.05,
}
COMPARED = ("train/loss", "validation/loss", "test/loss", "validation/accuracy")


def _argv(framework, data_dir, exp, name, space):
    return [
        "run",
        f"--framework={framework}",
        "--workload=fashion_mnist",
        f"--submission_path={REPO / 'submissions/baselines/nadamw' / framework / 'submission.py'}",
        f"--tuning_search_space={space}",
        f"--experiment_dir={exp}",
        f"--experiment_name={name}",
        f"--data_dir={data_dir}",
        "--rng_seed=21",
        f"--max_global_steps={STEPS}",
        f"--eval_every_n_steps={EVERY}",
        "--save_checkpoints",
        "--progress=false",
    ]


@pytest.fixture
def space(tmp_path) -> Path:
    path = tmp_path / "space.json"
    path.write_text(json.dumps([POINT]))
    return path


@pytest.fixture(autouse=True)
def one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _rows(tdir: Path) -> list[dict[str, str]]:
    with (tdir / "eval_measurements.csv").open() as f:
        return list(csv.DictReader(f))


def _assert_same_trajectory(multi: Path, single: Path) -> None:
    rows, ref = _rows(multi), _rows(single)
    assert [r["global_step"] for r in rows] == [r["global_step"] for r in ref] == ["20", "40"]
    for r, s in zip(rows, ref):
        for key in COMPARED:
            assert float(r[key]) == pytest.approx(float(s[key]), rel=1e-5), key
        assert r["validation/num_examples"] == "10000"
    # Training moved the loss, so equal trajectories are not a coincidence of no progress.
    assert float(ref[-1]["train/loss"]) < float(ref[0]["train/loss"])


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-4000:]
    return out


def test_pytorch_ddp_two_ranks_match_one_process(mnist_data_dir, space, tmp_path):
    exp = tmp_path / "exp"
    assert main(_argv("pytorch", mnist_data_dir, exp, "one", space)) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    out = _run(
        [*cmd, "-m", "algoperf.cli", *_argv("pytorch", mnist_data_dir, exp, "two", space)], env
    )
    single = exp / "one" / "fashion_mnist_pytorch" / "trial_1"
    multi = exp / "two" / "fashion_mnist_pytorch" / "trial_1"
    _assert_same_trajectory(multi, single)
    # Logs were written once (by rank 0): one summary line, one row per eval.
    assert out.stdout.count("trial 1 [finished]") == 1
    record = json.loads((multi / "run_record.json").read_text())
    assert record["num_processes"] == 2 and record["global_batch_size"] == 16
    with (multi / "measurements.csv").open() as f:
        steps = [r["global_step"] for r in csv.DictReader(f) if r["score"]]
    assert steps == ["20", "40", "40"]  # two eval rows and the final score row
    # Rank 0 saved the checkpoints; the DDP model's parameters match the single process's.
    import torch

    def final(tdir):
        path = checkpoint.latest(tdir).path / "state.pt"
        return torch.load(path, weights_only=False)["model"]

    a, b = final(multi), final(single)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key].numpy(), b[key].numpy(), rtol=1e-4, atol=1e-6)


def test_jax_two_host_devices_match_one_device(mnist_data_dir, space, tmp_path):
    exp = tmp_path / "exp"
    assert main(_argv("jax", mnist_data_dir, exp, "one", space)) == 0
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    _run(
        [sys.executable, "-m", "algoperf.cli", *_argv("jax", mnist_data_dir, exp, "two", space)],
        env,
    )
    single = exp / "one" / "fashion_mnist_jax" / "trial_1"
    multi = exp / "two" / "fashion_mnist_jax" / "trial_1"
    _assert_same_trajectory(multi, single)
    record = json.loads((multi / "run_record.json").read_text())
    assert record["num_devices"] == 2 and record["num_processes"] == 1
