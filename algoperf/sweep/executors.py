"""Executors: where a sweep's jobs run.

* ``local``: a pool of ``workers`` job slots on this machine, each job its own `algoperf run`
  process; slot *i* gets cores ``[i*c, (i+1)*c)`` (``cores_per_job = c``, pinned with
  ``sched_setaffinity`` and ``OMP_NUM_THREADS``) and GPUs ``[i*d, (i+1)*d)``
  (``devices_per_job = d``, through ``CUDA_VISIBLE_DEVICES``; PyTorch jobs with d > 1 run under
  torchrun with d ranks). Jobs sharing a workload directory are never scheduled at the same
  time. SIGTERM or Ctrl-C stops the sweep: running jobs get SIGTERM (they checkpoint and end with
  status 143), no new job starts; rerunning the plan continues.
* ``slurm``: SLURM jobs through submitit (partition, nodes, GPUs per node, time limit, array
  parallelism from the plan's ``[slurm]`` table). A job preempted or out of time is requeued by
  submitit (``checkpoint``) and continues from its checkpoint. Multi-node jobs run one task per
  node; see `algoperf.sweep.job.Launch`. Per-study jobs go out as one array
  (``array_parallelism`` at once). Per-trial jobs of one study share its workload directory and
  must run one after another; started together, all but one would wait on the study lock while
  holding their GPUs and burning their time limit. So they go out in *lanes* (`slurm_lanes`):
  ``array_parallelism`` arrays, each running its tasks one at a time (``%1``) under one job name
  with ``--dependency=singleton`` (a rerun's jobs queue behind the same lane's earlier ones), a
  study's trials all in one lane, studies dealt to lanes in plan order.
* ``submitit_local`` / ``debug``: submitit's local (subprocess) and debug (in-process)
  executors, for trying a plan and for tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from algoperf.sweep.job import JobResult, Launch, run_job
from algoperf.sweep.plan import Job, Plan, expand


def run_local(plan: Plan, jobs: Sequence[Job], workers: int | None = None) -> list[JobResult]:
    """Run `jobs` on a local pool; return their results (stopped jobs are left out)."""
    opts = plan.local
    n = max(1, workers or opts.workers)
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pending = list(jobs)
    busy: set[str] = set()
    results: list[JobResult] = []
    live: dict[int, subprocess.Popen] = {}
    cond = threading.Condition()
    stopping = threading.Event()

    def slot_env(slot: int) -> tuple[dict[str, str], Callable[[], None] | None, Launch]:
        env: dict[str, str] = {}
        preexec = None
        launch = Launch()
        if opts.cores_per_job:
            cores = cpus[slot * opts.cores_per_job : (slot + 1) * opts.cores_per_job]
            if cores:
                env["OMP_NUM_THREADS"] = str(len(cores))

                def preexec() -> None:
                    os.sched_setaffinity(0, cores)

        if opts.devices_per_job:
            d = opts.devices_per_job
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(slot * d, (slot + 1) * d))
            launch = Launch(nproc_per_node=d, master_port=29500 + slot)
        return env, preexec, launch

    def next_job() -> Job | None:
        with cond:
            while True:
                if stopping.is_set() or not pending:
                    return None
                for i, job in enumerate(pending):
                    if str(job.workload_dir) not in busy:
                        busy.add(str(job.workload_dir))
                        return pending.pop(i)
                cond.wait()

    def worker(slot: int) -> None:
        env, preexec, launch = slot_env(slot)
        while (job := next_job()) is not None:
            try:
                result = run_job(
                    job,
                    launch,
                    env=env,
                    preexec=preexec,
                    on_start=lambda p, s=slot: live.__setitem__(s, p),
                )
            finally:
                live.pop(slot, None)
                with cond:
                    busy.discard(str(job.workload_dir))
                    cond.notify_all()
            with cond:
                results.append(result)

    def stop(signum: int, frame: Any) -> None:
        stopping.set()
        for proc in list(live.values()):
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        with cond:
            cond.notify_all()

    handlers = {}
    on_main = threading.current_thread() is threading.main_thread()
    if on_main:
        for sig in (signal.SIGTERM, signal.SIGINT):
            handlers[sig] = signal.signal(sig, stop)
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(timeout=0.2)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return results


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a record is emitted, never a stream kept from
    before (a captured or redirected stream may be closed by then)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        del value


def _submitit() -> Any:
    """Import submitit (the `sweep` extra) without its import-time logging configuration.

    Imported plainly, submitit calls `logging.config.dictConfig`, which closes every logging
    handler of the process (absl's handler then closes the stream it was created with whenever
    `sys.stderr` has been swapped since: pytest's capture, a notebook's redirect) and binds new
    handlers to the `sys.stdout`/`sys.stderr` of that moment. So it is imported only by the
    executors that need it, with ``SUBMITIT_LOG_LEVEL=NOCONFIG``, and its logger gets one handler
    on the current stderr at the level of a ``SUBMITIT_LOG_LEVEL`` set by the user (default INFO).
    """
    if "submitit" in sys.modules:
        return sys.modules["submitit"]
    user_level = os.environ.get("SUBMITIT_LOG_LEVEL")
    os.environ["SUBMITIT_LOG_LEVEL"] = "NOCONFIG"
    try:
        import submitit
    except ImportError:
        raise RuntimeError(
            "the slurm, submitit_local and debug executors need submitit: pip install 'algoperf[sweep]'"
        ) from None
    finally:  # children (submitit's local jobs) see the user's setting again
        if user_level is None:
            del os.environ["SUBMITIT_LOG_LEVEL"]
        else:
            os.environ["SUBMITIT_LOG_LEVEL"] = user_level
    level = (user_level or "INFO").upper()
    if level != "NOCONFIG":
        logger = logging.getLogger("submitit")
        logger.setLevel(int(level) if level.isdigit() else level)
        handler = _CurrentStderrHandler()
        handler.setFormatter(
            logging.Formatter("%(name)s %(levelname)s (%(asctime)s) - %(message)s")
        )
        logger.addHandler(handler)
    return submitit


class SweepTask:
    """The callable submitit runs on a node: one job, requeued on preemption or timeout."""

    def __init__(
        self, gpus_per_node: int = 0, port: int = 29500, node_wait_s: float = 600.0
    ) -> None:
        self.gpus_per_node = gpus_per_node
        self.port = port
        self.node_wait_s = node_wait_s

    def checkpoint(self, job: Job) -> Any:
        """What submitit requeues on preemption or timeout: the same task on the same job (the
        run itself resumes from its own checkpoint)."""
        return _submitit().helpers.DelayedSubmission(self, job)

    def __call__(self, job: Job) -> JobResult:
        """Run `job` on this node: the whole job, or node ``env.node`` of a multi-node one."""
        launch = Launch(nproc_per_node=max(1, self.gpus_per_node), master_port=self.port)
        is_main = True
        record: dict[str, Any] = {}
        with contextlib.suppress(RuntimeError):  # not under submitit (called directly)
            env = _submitit().JobEnvironment()
            record = {"scheduler": env.cluster, "scheduler_job_id": str(env.job_id)}
            if env.num_nodes > 1:
                launch = Launch(
                    nproc_per_node=max(1, self.gpus_per_node),
                    nnodes=env.num_nodes,
                    node_rank=env.node,
                    master_addr=env.hostnames[0],
                    master_port=self.port,
                    rdzv_id=str(env.job_id),
                )
                is_main = env.node == 0
        return run_job(
            job,
            launch,
            is_main=is_main,
            # The same on every node of one attempt; a requeue (preemption, timeout) adds one.
            attempt=os.environ.get("SLURM_RESTART_COUNT", "0"),
            wait_for_main_s=self.node_wait_s,
            record=record,
        )


def submitit_executor(plan: Plan, kind: str) -> Any:
    """A submitit executor for `kind` (``slurm``, ``submitit_local`` or ``debug``)."""
    sub = _submitit()
    cluster = {"slurm": "slurm", "submitit_local": "local", "debug": "debug"}[kind]
    folder = plan.sweep_dir / "submitit" / "%j"
    try:
        extra = {"slurm_max_num_timeout": plan.slurm.max_requeues} if cluster == "slurm" else {}
        executor = sub.AutoExecutor(folder=folder, cluster=cluster, **extra)
    except RuntimeError as e:  # no srun on this machine
        raise ValueError(
            f"executor {kind}: {e} Run the sweep on a SLURM login node, or use --executor local"
        ) from None
    s = plan.slurm
    params: dict[str, Any] = {
        "timeout_min": s.time_limit_min,
        "name": f"algoperf-{plan.name}",
        "slurm_array_parallelism": s.array_parallelism,
    }
    if cluster == "slurm":
        params.update(
            nodes=s.nodes,
            tasks_per_node=1,
            gpus_per_node=s.gpus_per_node,
        )
        for key, value in (
            ("slurm_partition", s.partition),
            ("cpus_per_task", s.cpus_per_task),
            ("mem_gb", s.mem_gb),
            ("slurm_account", s.account),
            ("slurm_qos", s.qos),
            ("slurm_constraint", s.constraint),
        ):
            if value:
                params[key] = value
        if s.setup:
            params["slurm_setup"] = list(s.setup)
    executor.update_parameters(**params)
    return executor


def slurm_lanes(plan: Plan, jobs: Sequence[Job]) -> list[tuple[str, list[Job]]]:
    """Per-trial `jobs` dealt into SLURM lanes: (job name, jobs run one after another).

    A study's jobs (one workload directory) all go to one lane, in trial order; studies are
    dealt round-robin over ``min(array_parallelism, studies)`` lanes by their position in the
    whole plan (not in `jobs`), so a rerun puts a study in the same lane as before. Names carry
    the plan's name and a hash of its sweep directory, so singleton chains of two sweeps never
    meet.
    """
    order = dict.fromkeys(str(j.workload_dir) for j in expand(plan))
    studies = {d: i for i, d in enumerate(order)}
    n = max(1, min(plan.slurm.array_parallelism, len(studies)))
    tag = hashlib.sha256(str(plan.sweep_dir).encode()).hexdigest()[:6]
    lanes: dict[int, list[Job]] = {}
    for job in jobs:
        lane = studies[str(job.workload_dir)] % n
        lanes.setdefault(lane, []).append(job)
    return [(f"algoperf-{plan.name}-{tag}-lane{i}", lanes[i]) for i in sorted(lanes)]


def submit(plan: Plan, jobs: Sequence[Job], kind: str) -> list[Any]:
    """Submit `jobs` (one array, or SLURM lanes for per-trial jobs); submitit's job handles."""
    if not jobs:
        return []
    executor = submitit_executor(plan, kind)
    task = SweepTask(
        gpus_per_node=plan.slurm.gpus_per_node if kind == "slurm" else 0,
        node_wait_s=plan.slurm.node_wait_min * 60,
    )
    if kind != "slurm" or plan.granularity != "trial":
        return executor.map_array(task, list(jobs))
    handles = []
    for name, lane in slurm_lanes(plan, jobs):
        executor.update_parameters(
            name=name,
            slurm_array_parallelism=1,
            slurm_additional_parameters={"dependency": "singleton"},
        )
        handles += executor.map_array(task, lane)
    return handles
