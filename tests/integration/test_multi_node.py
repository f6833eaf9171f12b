"""One trial across several "hosts" on one machine: the multi-node launch paths, on CPU.

* PyTorch: two ``torchrun`` agents, one per simulated node (``--nnodes=2``, one process each),
  meeting at a c10d rendezvous, as `algoperf sweep` launches them under SLURM; the global
  ``RANK`` (not ``LOCAL_RANK``, 0 on both nodes) decides the batch rows and the log writer.
* JAX: two processes joined by ``jax.distributed.initialize`` (``ALGOPERF_COORDINATOR_ADDRESS``,
  gloo collectives on CPU), one device each, the mesh spanning both.

Each must give the loss trajectory of the one-process run within float tolerance (gradient
all-reduces sum in another order), written once.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from algoperf.cli import main
from tests.integration.test_multi_device import _argv, _assert_same_trajectory
from tests.integration.test_multi_device import space as space  # the fixture

pytestmark = pytest.mark.multi_device

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_all(cmds: list[list[str]], envs: list[dict[str, str]]) -> list[str]:
    procs = [
        subprocess.Popen(
            c, cwd=REPO, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for c, e in zip(cmds, envs)
    ]
    outs = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=400)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        outs.append(out)
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-4000:]
    return outs


def _argv_no_ckpt(framework, data, exp, name, space):
    return [a for a in _argv(framework, data, exp, name, space) if a != "--save_checkpoints"]


@pytest.mark.slow
def test_pytorch_two_nodes_rendezvous_match_one_process(mnist_data_dir, space, tmp_path):
    exp = tmp_path / "exp"
    assert main(_argv_no_ckpt("pytorch", mnist_data_dir, exp, "one", space)) == 0
    port = _free_port()
    cmds, envs = [], []
    for node in range(2):
        cmds.append(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes=2",
                "--nproc_per_node=1",
                f"--node_rank={node}",
                "--rdzv_backend=c10d",
                f"--rdzv_endpoint=127.0.0.1:{port}",
                "--rdzv_id=test",
                "-m",
                "algoperf.cli",
                *_argv_no_ckpt("pytorch", mnist_data_dir, exp, "two", space),
            ]
        )
        envs.append({**os.environ, "OMP_NUM_THREADS": "1"})
    outs = _run_all(cmds, envs)
    multi = exp / "two" / "fashion_mnist_pytorch" / "trial_1"
    _assert_same_trajectory(multi, exp / "one" / "fashion_mnist_pytorch" / "trial_1")
    assert sum(o.count("trial 1 [finished]") for o in outs) == 1  # one rank 0 over both nodes
    record = json.loads((multi / "run_record.json").read_text())
    assert record["num_processes"] == 2


@pytest.mark.slow
def test_jax_two_processes_distributed_match_one_process(mnist_data_dir, space, tmp_path):
    exp = tmp_path / "exp"
    assert main(_argv_no_ckpt("jax", mnist_data_dir, exp, "one", space)) == 0
    port = _free_port()
    cmds, envs = [], []
    for pid in range(2):
        cmds.append(
            [
                sys.executable,
                "-m",
                "algoperf.cli",
                *_argv_no_ckpt("jax", mnist_data_dir, exp, "two", space),
            ]
        )
        envs.append(
            {
                **os.environ,
                "JAX_PLATFORMS": "cpu",
                "ALGOPERF_COORDINATOR_ADDRESS": f"127.0.0.1:{port}",
                "ALGOPERF_NUM_PROCESSES": "2",
                "ALGOPERF_PROCESS_ID": str(pid),
            }
        )
    _run_all(cmds, envs)
    multi = exp / "two" / "fashion_mnist_jax" / "trial_1"
    _assert_same_trajectory(multi, exp / "one" / "fashion_mnist_jax" / "trial_1")
    record = json.loads((multi / "run_record.json").read_text())
    assert record["num_processes"] == 2 and record["num_devices"] == 2


def test_multi_process_jax_needs_a_fixed_seed(monkeypatch):
    from algoperf.frameworks import jax as fjax

    monkeypatch.setenv("ALGOPERF_COORDINATOR_ADDRESS", "127.0.0.1:1")
    for argv in (["--workload=mnist"], ["--rng_seed=0"], ["--rng_seed", "0"]):
        with pytest.raises(ValueError, match="needs --rng_seed=N"):
            fjax.initialize_for_run(argv)
