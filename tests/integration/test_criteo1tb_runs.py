"""criteo1tb end to end: `algoperf run` with the NAdamW baseline on a Criteo-format fixture.

The fixture is what ``algoperf datasets prepare criteo1tb --fixture`` writes: 24 gzipped
``day_N.gz`` TSV files in Criteo's layout (empty fields, ``-1`` values, 8-hex ids), converted
by the real prepare code, with the split sizes recorded so that ``algoperf run --data_dir``
sizes the config for it (model, targets and everything else stay the registered ones).
``criteo1tb_test`` (upstream's CPU-sized configuration, vocab 65,536) runs in both frameworks
by default; the benchmark workload and its variants run slow-marked at a reduced vocabulary
(the registered config with ``vocab_size`` 4,096, swapped in for this process only). Each run
trains 3 steps at a global batch of 32 and evaluates after step 1 and at the end.
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

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HERE = Path(__file__).parent
REPO = HERE.parents[1]
NADAMW_SPACE = REPO / "submissions" / "baselines" / "nadamw" / "tuning_search_space.json"
SMALL_VOCAB = 4096
BATCH_SIZE = 32
FIXTURE = {"train": 1472, "validation": 522, "test": 608}
VARIANTS = ["criteo1tb", "criteo1tb_layernorm", "criteo1tb_embed_init", "criteo1tb_resnet"]
RUN_CASES = [
    pytest.param(
        name, fw, marks=() if name == "criteo1tb_test" else pytest.mark.slow, id=f"{name}-{fw}"
    )
    for name in ["criteo1tb_test", *VARIANTS]
    for fw in ("jax", "pytorch")
]


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory):
    """``algoperf datasets prepare criteo1tb --fixture``: day files in Criteo's TSV layout."""
    root = tmp_path_factory.mktemp("criteo1tb_data")
    assert (
        data_cli.main(["prepare", "criteo1tb", "--fixture", f"--data_dir={root}", "--quiet"]) == 0
    )
    return root


def _submission(tmp_path: Path, framework: str) -> Path:
    """The NAdamW baseline, unchanged but for a CPU-sized batch (upstream asks 262,144)."""
    path = tmp_path / f"nadamw_criteo_{framework}.py"
    path.write_text(
        f"from submissions.baselines.nadamw.{framework}.submission import *  # noqa: F403\n\n\n"
        f"def get_batch_size(workload_name):\n    return {BATCH_SIZE}\n"
    )
    return path


def _use_small_vocab(monkeypatch, name: str) -> None:
    if name == "criteo1tb_test":
        return
    config = registry.get_config(name)
    small = config.variant(name, model={"vocab_size": SMALL_VOCAB})
    patched = {**registry.all_configs(), name: small}
    monkeypatch.setattr(registry, "all_configs", lambda: patched)


@pytest.mark.parametrize(("name", "framework"), RUN_CASES)
def test_nadamw_runs_end_to_end(name, framework, fixture_root, monkeypatch, tmp_path):
    _use_small_vocab(monkeypatch, name)
    exp = tmp_path / "exp"
    argv = [
        "run",
        f"--framework={framework}",
        f"--workload={name}",
        f"--submission_path={_submission(tmp_path, framework)}",
        f"--tuning_search_space={NADAMW_SPACE}",
        "--num_tuning_trials=1",
        f"--experiment_dir={exp}",
        "--experiment_name=criteo",
        f"--data_dir={fixture_root}",
        "--rng_seed=3",
        "--max_global_steps=3",
        "--progress=false",
    ]
    start = time.perf_counter()
    assert main(argv) == 0
    print(f"{name}-{framework}: algoperf run took {time.perf_counter() - start:.1f}s")
    trial = exp / "criteo" / f"{name}_{framework}" / "trial_1"
    with (trial / "eval_measurements.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["global_step"] for r in rows] == ["1", "3"]
    for row in rows:
        assert int(row["validation/num_examples"]) == FIXTURE["validation"]
        assert int(row["test/num_examples"]) == FIXTURE["test"]
        for split in ("train", "validation", "test"):
            loss = float(row[f"{split}/loss"])
            assert math.isfinite(loss) and 0.0 < loss < 20.0, (split, loss)
    # Three NAdamW steps lower the validation loss from its value after the first.
    assert float(rows[-1]["validation/loss"]) < float(rows[0]["validation/loss"])


# Device counts ---------------------------------------------------------------------------------

# Evaluates criteo1tb_test on the fixture (fixed init) and prints the metrics as JSON (rank 0).
_EVAL_SCRIPT = """
import json, sys
import numpy as np
from algoperf import registry
from algoperf.frameworks import pytorch as fpt
framework, root = sys.argv[1], sys.argv[2]
w = registry.get_workload("criteo1tb_test", framework, data_dir=root)
if framework == "jax":
    import jax
    rng = jax.random.PRNGKey(0)
    devices = jax.device_count()
else:
    fpt.init(w._dist)
    rng = np.array([0, 0], np.uint32)
    devices = w._dist.world_size
params, state = w.init_model_fn(rng)
result = w.eval_model(256, params, state, rng, root, None, 0)
if framework == "jax" or w._dist.rank == 0:
    print("RESULT", json.dumps({"devices": devices, **result}))
"""


def _eval_in_subprocess(cmd: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-4000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, out.stdout[-2000:]
    return json.loads(lines[0][len("RESULT ") :])


@pytest.mark.slow
@pytest.mark.multi_device
@pytest.mark.parametrize("framework", ["jax", "pytorch"])
def test_eval_is_the_same_on_two_devices(framework, fixture_root):
    """Two JAX host devices / two DDP ranks (torchrun, gloo; each rank reads only its rows):
    every row once, the same losses (relative 1e-5: only the device program's rounding)."""
    root = str(fixture_root)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    one = _eval_in_subprocess([sys.executable, "-c", _EVAL_SCRIPT, framework, root], env)
    if framework == "jax":
        env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
        cmd = [sys.executable, "-c", _EVAL_SCRIPT, framework, root]
    else:
        script = Path(root) / "criteo_eval_script.py"
        script.write_text(_EVAL_SCRIPT)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        cmd += [str(script), framework, root]
    two = _eval_in_subprocess(cmd, env)
    assert (one["devices"], two["devices"]) == (1, 2)
    assert two["validation/num_examples"] == one["validation/num_examples"] == FIXTURE["validation"]
    for key, value in one.items():
        if key != "devices":
            assert two[key] == pytest.approx(value, rel=1e-5), key
