"""SLURM submission shape and the multi-node branch of the submitit task (no cluster needed).

Submission runs submitit's real SLURM executor against a fake ``sbatch`` that keeps every batch
script, so the checks read what SLURM would be given. The multi-node branch runs `SweepTask`
under a patched submitit job environment with a fake process launcher.
"""

from __future__ import annotations

import json
import re
import threading
import time
import types
from pathlib import Path
from typing import ClassVar

import pytest

from algoperf.sweep import executors, job, state
from algoperf.sweep import plan as plan_lib

SLURM = '\n[slurm]\npartition = "gpu"\ngpus_per_node = 8\narray_parallelism = 2\n'


@pytest.fixture
def fake_sbatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``srun``/``sbatch`` pair on PATH; each sbatch call leaves its script in the returned dir."""
    pytest.importorskip("submitit")
    bin_dir, scripts = tmp_path / "bin", tmp_path / "sbatch_scripts"
    bin_dir.mkdir()
    scripts.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sbatch").write_text(
        "#!/bin/sh\n"
        f'n=$(ls "{scripts}" | wc -l)\n'
        f'cp "$1" "{scripts}/$n.sh"\n'
        'echo "Submitted batch job $((1000 + n))"\n'
    )
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    return scripts


def _sbatch_flags(script: Path) -> dict[str, str]:
    flags = re.findall(r"^#SBATCH --([\w-]+)(?:=(.*))?$", script.read_text(), re.M)
    return {k: v for k, v in flags}


def _submitted_jobs(handles: list) -> list[str]:
    from submitit.core.utils import DelayedSubmission

    return [DelayedSubmission.load(h.paths.submitted_pickle).args[0].job_id for h in handles]


def test_per_trial_jobs_go_out_in_singleton_lanes(make_plan, fake_sbatch):
    """No trial job waits on its study's lock holding an allocation: a study's trials are in one
    array that runs one task at a time, chained by name to the lane's earlier jobs."""
    plan = plan_lib.load_plan(make_plan(SLURM))
    jobs = plan_lib.expand(plan)  # 3 studies x 2 trials
    handles = executors.submit(plan, jobs, "slurm")
    scripts = sorted(fake_sbatch.iterdir(), key=lambda p: int(p.stem))
    assert len(scripts) == 2  # min(array_parallelism, studies) lanes
    flags = [_sbatch_flags(s) for s in scripts]
    names = [f["job-name"] for f in flags]
    assert re.fullmatch(r"algoperf-unit-[0-9a-f]{6}-lane0", names[0])
    assert names[1] == names[0][:-1] + "1"
    for f in flags:
        assert f["dependency"] == "singleton"
        assert (f["partition"], f["gpus-per-node"]) == ("gpu", "8")
    assert flags[0]["array"] == "0-3%1" and flags[1]["array"] == "0-1%1"
    # Lane 0: studies 0 and 2, each study's trials in order; lane 1: study 1.
    assert [h.job_id for h in handles] == [
        "1000_0",
        "1000_1",
        "1000_2",
        "1000_3",
        "1001_0",
        "1001_1",
    ]
    assert _submitted_jobs(handles) == [
        "nadamw/study_0/mnist_pytorch/trial_1",
        "nadamw/study_0/mnist_pytorch/trial_2",
        "nadamw/study_2/mnist_pytorch/trial_1",
        "nadamw/study_2/mnist_pytorch/trial_2",
        "nadamw/study_1/mnist_pytorch/trial_1",
        "nadamw/study_1/mnist_pytorch/trial_2",
    ]
    # A rerun submitting what is left puts each study in its lane of before (same job name).
    lanes = executors.slurm_lanes(plan, [jobs[5], jobs[3]])
    assert [(name[-5:], [j.job_id for j in js]) for name, js in lanes] == [
        ("lane0", ["nadamw/study_2/mnist_pytorch/trial_2"]),
        ("lane1", ["nadamw/study_1/mnist_pytorch/trial_2"]),
    ]


def test_per_study_jobs_go_out_as_one_array(make_plan, fake_sbatch):
    plan = plan_lib.load_plan(make_plan(SLURM, granularity='"study"'))
    executors.submit(plan, plan_lib.expand(plan), "slurm")
    (script,) = fake_sbatch.iterdir()
    flags = _sbatch_flags(script)
    assert flags["array"] == "0-2%2" and "dependency" not in flags
    assert flags["job-name"] == "algoperf-unit"


# The multi-node branch of SweepTask ----------------------------------------------------------


class _FakeProcess:
    """Stands in for the `algoperf run` child: records its command, finishes its trials."""

    calls: ClassVar[list[tuple[list[str], dict[str, str]]]] = []

    def __init__(self, argv, env=None, **kwargs):
        self.argv, self.env = argv, env
        _FakeProcess.calls.append((argv, env))

    def wait(self) -> int:
        if "--node_rank=0" in self.argv or self.env.get("ALGOPERF_PROCESS_ID") == "0":
            flag = dict(a[2:].split("=", 1) for a in self.argv if a.startswith("--") and "=" in a)
            workload = f"{flag['workload']}_{flag['framework']}"
            trial = f"trial_{int(flag['hparam_start_index']) + 1}"
            tdir = Path(flag["experiment_dir"]) / flag["experiment_name"] / workload / trial
            tdir.mkdir(parents=True, exist_ok=True)
            (tdir / "status.json").write_text(json.dumps({"status": "finished"}))
        return 0

    def send_signal(self, sig: int) -> None:
        pass


@pytest.fixture
def on_node(monkeypatch: pytest.MonkeyPatch):
    """``on_node(rank) -> SweepTask`` whose submitit environment is node `rank` of 2 (job 77)."""
    _FakeProcess.calls = []
    monkeypatch.setattr(job.subprocess, "Popen", _FakeProcess)
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    local = threading.local()

    def environment():
        return types.SimpleNamespace(
            cluster="slurm", job_id="77", num_nodes=2, node=local.rank, hostnames=["n0", "n1"]
        )

    fake = types.SimpleNamespace(JobEnvironment=environment)
    monkeypatch.setattr(executors, "_submitit", lambda: fake)

    def task_on(rank: int, node_wait_s: float = 60.0):
        def call(j):
            local.rank = rank
            return executors.SweepTask(gpus_per_node=8, node_wait_s=node_wait_s)(j)

        return call

    return task_on


def _start_node(call, j) -> tuple[threading.Thread, list]:
    out: list = []
    thread = threading.Thread(target=lambda: out.append(call(j)), daemon=True)
    thread.start()
    return thread, out


def test_other_nodes_start_only_after_the_first_holds_the_lock(make_plan, on_node):
    plan = plan_lib.load_plan(make_plan(frameworks='["jax", "pytorch"]'))
    jobs = plan_lib.expand(plan)
    torch_job = next(j for j in jobs if j.framework == "pytorch")
    thread, out = _start_node(on_node(1), torch_job)
    time.sleep(0.5)
    assert _FakeProcess.calls == [] and thread.is_alive()  # node 1 waits for node 0
    first = on_node(0)(torch_job)
    thread.join(timeout=10)
    assert first.state == "done" and out[0].state == "done"
    (argv0, _), (argv1, _) = _FakeProcess.calls
    for rank, argv in ((0, argv0), (1, argv1)):
        assert argv[1:3] == ["-m", "torch.distributed.run"]
        assert f"--node_rank={rank}" in argv and "--nnodes=2" in argv
        assert "--rdzv_endpoint=n0:29500" in argv and "--rdzv_id=77" in argv
        assert "--nproc_per_node=8" in argv
    # Only the first node keeps the records: one start, one end, the scheduler's job id.
    events = [e["event"] for e in state.read_events(plan.sweep_dir)]
    assert events == ["start", "end"]
    record = state.read_job_record(torch_job)
    assert (record["scheduler"], record["scheduler_job_id"]) == ("slurm", "77")
    marker = json.loads(job.start_marker(torch_job, job.Launch(rdzv_id="77")).read_text())
    assert (marker["attempt"], marker["action"]) == ("0", "run")

    jax_job = next(j for j in jobs if j.framework == "jax")
    _FakeProcess.calls = []
    thread, _ = _start_node(on_node(1), jax_job)
    on_node(0)(jax_job)
    thread.join(timeout=10)
    envs = sorted(env["ALGOPERF_PROCESS_ID"] for _, env in _FakeProcess.calls)
    assert envs == ["0", "1"]
    for argv, env in _FakeProcess.calls:
        assert "torch.distributed.run" not in argv
        assert env["ALGOPERF_COORDINATOR_ADDRESS"] == "n0:29500"
        assert env["ALGOPERF_NUM_PROCESSES"] == "2"


def test_a_done_job_is_skipped_on_every_node(make_plan, on_node):
    plan = plan_lib.load_plan(make_plan())
    j = plan_lib.expand(plan)[0]
    for tdir in j.trial_dirs():
        tdir.mkdir(parents=True)
        (tdir / "status.json").write_text('{"status": "finished"}')
    thread, out = _start_node(on_node(1), j)
    assert on_node(0)(j).state == "skipped"
    thread.join(timeout=10)
    assert out[0].state == "skipped" and _FakeProcess.calls == []


def test_a_node_waiting_too_long_fails_with_the_reason(make_plan, on_node, monkeypatch):
    plan = plan_lib.load_plan(make_plan())
    j = plan_lib.expand(plan)[0]
    # A marker left by the attempt before a requeue does not start this attempt's nodes.
    job.start_marker(j, job.Launch(rdzv_id="77")).parent.mkdir(parents=True)
    job.start_marker(j, job.Launch(rdzv_id="77")).write_text('{"attempt": "0", "action": "run"}')
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    result = on_node(1, node_wait_s=0.3)(j)
    assert result.state == "failed" and _FakeProcess.calls == []
    assert result.reason.startswith("node 1: the first node did not take the study lock ")
    assert "within 0 s" in result.reason and "node_wait_min" in result.reason
