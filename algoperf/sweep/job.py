"""Running one sweep job: an `algoperf run` subprocess, made safe to repeat.

`run_job` is what every executor calls (a local worker thread, a submitit task on a SLURM node):

1. take a blocking ``flock`` on ``<workload_dir>/.sweep.lock``, so jobs that share a study's
   workload directory (per-trial jobs of one study) run one after another (`algoperf run` itself
   refuses to share the directory), and two sweeps of the same plan never run a trial twice;
2. skip the job if every trial of it is done (``status.json`` finished or diverged);
3. otherwise run ``algoperf run ... --resume_last_run``: done trials are kept, preempted or
   killed ones continue from their latest checkpoint (``--save_checkpoints``), ones without a
   checkpoint start again, new ones start fresh;
4. record the outcome in the job record and ``events.jsonl`` (see `algoperf.sweep.state`).

Multi-node jobs (one `run_job` per node): only the first node takes the lock and writes records.
It then writes ``<workload_dir>/.sweep.nodes.<rdzv_id>`` (`START_MARKER`: run or skip, and the
attempt, ``SLURM_RESTART_COUNT``), and the other nodes wait for that file before they launch, so
no node reaches the torchrun rendezvous or the JAX coordinator while the first one still waits
on the lock (their timeouts are minutes); a node that waits longer than ``wait_for_main_s``
fails with a line saying so.

Multi-process launches (`Launch`): PyTorch through ``torchrun`` (``--standalone`` on one node;
a c10d rendezvous at the first node across several), JAX with one process per node that calls
``jax.distributed.initialize`` from the ``ALGOPERF_COORDINATOR_ADDRESS`` /
``ALGOPERF_NUM_PROCESSES`` / ``ALGOPERF_PROCESS_ID`` variables (`algoperf.frameworks.jax`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from algoperf.sweep import state
from algoperf.sweep.plan import Job

SWEEP_LOCK = ".sweep.lock"
START_MARKER = ".sweep.nodes.{rdzv_id}"
EXIT_OK, EXIT_TRIAL_FAILED, EXIT_BAD_INPUT, EXIT_PREEMPTED = 0, 1, 2, 143


@dataclasses.dataclass(frozen=True)
class Launch:
    """How many processes run one job, and where they meet.

    ``nnodes`` > 1: this process is node ``node_rank`` of a multi-node job whose first node is
    ``master_addr``. ``nproc_per_node`` > 1 (PyTorch): ranks per node under torchrun.
    """

    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = 29500
    rdzv_id: str = "algoperf"


@dataclasses.dataclass(frozen=True)
class JobResult:
    job_id: str
    state: str  # done | skipped | failed | preempted
    returncode: int | None = None
    reason: str = ""


def command(job: Job, launch: Launch) -> tuple[list[str], dict[str, str]]:
    """The argv and extra environment of one process of `job` under `launch`."""
    run = ["run", *job.run_argv, "--resume_last_run"]
    env: dict[str, str] = {}
    if job.framework == "pytorch" and (launch.nproc_per_node > 1 or launch.nnodes > 1):
        torchrun = [sys.executable, "-m", "torch.distributed.run"]
        if launch.nnodes > 1:
            torchrun += [
                f"--nnodes={launch.nnodes}",
                f"--node_rank={launch.node_rank}",
                "--rdzv_backend=c10d",
                f"--rdzv_endpoint={launch.master_addr}:{launch.master_port}",
                f"--rdzv_id={launch.rdzv_id}",
            ]
        else:
            torchrun.append("--standalone")
        torchrun.append(f"--nproc_per_node={launch.nproc_per_node}")
        return [*torchrun, "-m", "algoperf.cli", *run], env
    if job.framework == "jax" and launch.nnodes > 1:
        env = {
            "ALGOPERF_COORDINATOR_ADDRESS": f"{launch.master_addr}:{launch.master_port}",
            "ALGOPERF_NUM_PROCESSES": str(launch.nnodes),
            "ALGOPERF_PROCESS_ID": str(launch.node_rank),
        }
    return [sys.executable, "-m", "algoperf.cli", *run], env


@contextlib.contextmanager
def workload_lock(job: Job) -> Iterator[None]:
    """Hold ``<workload_dir>/.sweep.lock`` (blocking: waits for the job before it)."""
    job.workload_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(job.workload_dir / SWEEP_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def start_marker(job: Job, launch: Launch) -> Path:
    """The file the first node of a multi-node job writes once it holds the study lock."""
    return job.workload_dir / START_MARKER.format(rdzv_id=launch.rdzv_id)


def _announce(job: Job, launch: Launch, attempt: str, action: str) -> None:
    """First node: tell the other nodes of this attempt to `action` (``run`` or ``skip``)."""
    if launch.nnodes > 1:
        state.write_json_atomic(
            start_marker(job, launch), {"attempt": attempt, "action": action, "time": state.now()}
        )


def wait_for_main(job: Job, launch: Launch, attempt: str, timeout_s: float) -> str:
    """Other nodes: wait until the first node of this attempt took the lock; its action.

    Raises TimeoutError (with the fix) after `timeout_s` seconds. A marker of an earlier attempt
    (another ``attempt``) is not taken for this one.
    """
    path = start_marker(job, launch)
    deadline = time.monotonic() + timeout_s
    while True:
        marker = state.read_json(path)
        if marker.get("attempt") == attempt and marker.get("action") in ("run", "skip"):
            return marker["action"]
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"node {launch.node_rank}: the first node did not take the study lock "
                f"{job.workload_dir / SWEEP_LOCK} within {timeout_s:.0f} s (another job of the "
                "study holds it?); raise [slurm] node_wait_min or let that job end"
            )
        time.sleep(min(1.0, max(0.01, timeout_s / 100)))


def _trial_starts(job: Job) -> dict[str, list[int]]:
    """Which trials this attempt starts fresh, resumes from a checkpoint, or restarts."""
    from algoperf.runner import checkpoint

    out: dict[str, list[int]] = {"fresh": [], "resumed": [], "restarted": [], "kept": []}
    for k, tdir in zip(job.trials, job.trial_dirs()):
        if state.trial_done(tdir):
            out["kept"].append(k)
        elif checkpoint.latest(tdir) is not None:
            out["resumed"].append(k)
        elif state.has_results(tdir):
            out["restarted"].append(k)
        else:
            out["fresh"].append(k)
    return out


def _error_line(log_path: Path) -> str:
    """The last ``error:`` line (or last line) of a job log, for the status table."""
    try:
        with log_path.open("rb") as f:
            f.seek(max(0, log_path.stat().st_size - 16384))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        if "error:" in line or "Error" in line:
            return line.strip()[:300]
    return lines[-1].strip()[:300] if lines else ""


def run_job(
    job: Job,
    launch: Launch | None = None,
    env: dict[str, str] | None = None,
    on_start: Callable[[subprocess.Popen], None] | None = None,
    preexec: Callable[[], Any] | None = None,
    is_main: bool = True,
    attempt: str = "0",
    wait_for_main_s: float = 600.0,
    record: dict[str, Any] | None = None,
) -> JobResult:
    """Run (or skip) `job` to its end; see the module docstring.

    `on_start` receives the child process (the local executor signals it on SIGTERM). Under a
    multi-node launch only the first node (`is_main`) takes the lock and writes records; the
    others wait (up to `wait_for_main_s`) for its start marker of this `attempt`. `record`: extra
    fields of the job's ``running`` record (the scheduler and its job id, for `sweep status`).
    """
    launch = launch or Launch()
    if not is_main:
        try:
            action = wait_for_main(job, launch, attempt, wait_for_main_s)
        except TimeoutError as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            return JobResult(job.job_id, "failed", None, str(e))
        if action == "skip":
            return JobResult(job.job_id, "skipped")
    lock = workload_lock(job) if is_main else contextlib.nullcontext()
    with lock:
        if is_main and state.job_done(job):
            _announce(job, launch, attempt, "skip")
            state.append_event(job.sweep_dir, {"job": job.job_id, "event": "skip"})
            state.write_job_record(job, "done", reason="already done", **(record or {}))
            return JobResult(job.job_id, "skipped")
        argv, extra_env = command(job, launch)
        starts = _trial_starts(job)
        log_path = state.job_log_path(job)
        if not is_main:  # one log per node
            log_path = log_path.with_name(f"{log_path.stem}.node{launch.node_rank}.log")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        if is_main:
            state.write_job_record(
                job, "running", started=state.now(), command=argv, **(record or {})
            )
            state.append_event(job.sweep_dir, {"job": job.job_id, "event": "start", **starts})
            _announce(job, launch, attempt, "run")
        child_env = {**os.environ, **(env or {}), **extra_env}
        with log_path.open("ab") as log:
            log.write(f"=== {state.now()} {' '.join(argv)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=child_env, preexec_fn=preexec
            )
            if on_start is not None:
                on_start(proc)
            restore = _forward_sigterm(proc)
            try:
                rc = proc.wait()
            finally:
                restore()
        result = _result(job, rc, log_path)
        if is_main:
            state.write_job_record(
                job,
                result.state,
                returncode=rc,
                reason=result.reason,
                ended=state.now(),
                **(record or {}),
            )
            state.append_event(
                job.sweep_dir,
                {"job": job.job_id, "event": "end", "state": result.state, "returncode": rc},
            )
        return result


def _forward_sigterm(proc: subprocess.Popen) -> Callable[[], None]:
    """In a job's own process (submitit), pass SIGTERM on to the run so it checkpoints."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # the local executor forwards signals itself

    def forward(signum: int, frame: Any) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, forward)
    return lambda: signal.signal(signal.SIGTERM, previous)


def _result(job: Job, rc: int, log_path: Path) -> JobResult:
    if rc == EXIT_OK and state.job_done(job):
        return JobResult(job.job_id, "done", rc)
    if rc == EXIT_PREEMPTED:
        return JobResult(job.job_id, "preempted", rc, "stopped by SIGTERM after a checkpoint")
    if rc < 0:
        return JobResult(job.job_id, "failed", rc, f"killed by signal {-rc}")
    reason = _error_line(log_path) or f"algoperf run exited with status {rc}"
    return JobResult(job.job_id, "failed", rc, reason)
