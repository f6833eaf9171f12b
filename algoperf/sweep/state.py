"""What a sweep has done: trial outcomes, job records, and the `algoperf sweep status` table.

Truth about a trial is its own ``status.json`` (written by `algoperf run`): ``finished`` and
``diverged`` are done. The sweep adds, in ``<experiment_dir>.sweep/`` (beside the logs, so that
scoring never sees it):

* ``jobs/<job>.json``: the job's latest state (``running`` with pid and host, and under
  submitit the scheduler and its job id; or how it ended: exit status and reason), written
  atomically;
* ``events.jsonl``: one line per job start (with the trials it ran fresh or resumed), skip and
  end, appended and flushed, so a test (or a user) can check that no trial was run twice;
* ``logs/<job>.log``: the job's stdout and stderr.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import socket
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from algoperf.sweep.plan import Job

DONE_STATUSES = ("finished", "diverged")
STATES = ("done", "running", "failed", "pending")
# Shown (and counted) only when some trial is in them: a ``running`` record `sweep status`
# cannot confirm (another host, no scheduler to ask), and one whose job the scheduler says ended.
UNCERTAIN_STATES = ("running?", "lost")
# sacct / squeue states of a job that still holds (or waits for) its allocation.
SLURM_LIVE = {
    "RUNNING",
    "PENDING",
    "REQUEUED",
    "RESIZING",
    "SUSPENDED",
    "COMPLETING",
    "CONFIGURING",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "SIGNALING",
    "STAGE_OUT",
}


def now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json_atomic(path: Path, obj: dict[str, Any]) -> None:
    """Write then rename, so a reader never sees a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str) + "\n")
    os.replace(tmp, path)


def job_record_path(job: Job) -> Path:
    return job.sweep_dir / "jobs" / f"{job.file_stem}.json"


def job_log_path(job: Job) -> Path:
    return job.sweep_dir / "logs" / f"{job.file_stem}.log"


def read_job_record(job: Job) -> dict[str, Any]:
    return read_json(job_record_path(job))


def write_job_record(job: Job, state: str, **fields: Any) -> None:
    record = {
        "job_id": job.job_id,
        "state": state,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "updated": now(),
        **fields,
    }
    write_json_atomic(job_record_path(job), record)


def append_event(sweep_dir: Path, event: dict[str, Any]) -> None:
    """One JSON line in ``events.jsonl``, flushed to disk before returning."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"time": now(), "host": socket.gethostname(), **event}, default=str)
    fd = os.open(sweep_dir / "events.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read_events(sweep_dir: Path) -> list[dict[str, Any]]:
    try:
        lines = (sweep_dir / "events.jsonl").read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a line torn by a kill mid-write
    return out


def trial_status(tdir: Path) -> dict[str, Any]:
    return read_json(tdir / "status.json")


def trial_done(tdir: Path) -> bool:
    return trial_status(tdir).get("status") in DONE_STATUSES


def job_done(job: Job) -> bool:
    return all(trial_done(t) for t in job.trial_dirs())


def has_results(tdir: Path) -> bool:
    """The trial directory holds anything `algoperf run` would refuse to overwrite."""
    return tdir.is_dir() and any(tdir.iterdir())


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclasses.dataclass
class Row:
    """One line of the status table: a trial and what is known about it."""

    job_id: str
    trial: int
    state: str  # done | running | failed | pending
    detail: str


def _failure_reason(tdir: Path, fallback: str) -> str:
    try:
        first = (tdir / "failure.txt").read_text().strip().splitlines()[0]
    except (OSError, IndexError):
        return fallback
    return first


def slurm_job_state(job_id: str) -> str | None:
    """The state SLURM reports for `job_id` (``RUNNING``, ``NODE_FAIL``...), or None when neither
    ``sacct`` nor ``squeue`` answers here."""
    for argv in (
        ["sacct", "-X", "-n", "-P", "-j", job_id, "-o", "State"],
        ["squeue", "-h", "-j", job_id, "-o", "%T"],
    ):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            continue
        words = out.stdout.split()
        if out.returncode == 0 and words:
            return words[0].rstrip("+").upper()
    return None


def _running_state(record: dict[str, Any]) -> tuple[str, str] | None:
    """(state, detail) of a job whose record says ``running``; None when it is not running.

    A record of this host is checked by its pid. One of another host is checked with the
    scheduler (``sacct``/``squeue`` for the SLURM job id in it): ``running`` if SLURM still holds
    the job, ``lost`` if SLURM says it ended (a crashed node never writes its end), and
    ``running?`` where nothing here can tell.
    """
    if record.get("state") != "running":
        return None
    host, pid, since = record.get("host"), record.get("pid"), record.get("started")
    where = f"pid {pid} on {host} since {since}"
    if host == socket.gethostname():
        return ("running", where) if isinstance(pid, int) and pid_alive(pid) else None
    scheduler, sched_id = record.get("scheduler"), record.get("scheduler_job_id")
    if scheduler != "slurm" or not sched_id:
        return "running?", f"{where}: another host, and no SLURM job id to check"
    live = slurm_job_state(str(sched_id))
    if live is None:
        return "running?", f"slurm job {sched_id}, {where}: cannot confirm (no sacct or squeue)"
    if live in SLURM_LIVE:
        return "running", f"slurm job {sched_id} {live}, {where}"
    return "lost", (
        f"slurm job {sched_id} is {live} but its record says running ({where}): it ended "
        "without writing its end; rerun the plan to continue"
    )


def trial_rows(job: Job) -> list[Row]:
    """The state of each trial of `job` from its status.json and the job's record."""
    record = read_job_record(job)
    running = _running_state(record)
    rows = []
    for k, tdir in zip(job.trials, job.trial_dirs()):
        status = trial_status(tdir)
        s = status.get("status")
        if s in DONE_STATUSES:
            step = status.get("global_step")
            rows.append(Row(job.job_id, k, "done", f"{s}" + (f" at step {step}" if step else "")))
        elif running is not None:
            rows.append(Row(job.job_id, k, *running))
        elif s == "failed":
            rows.append(Row(job.job_id, k, "failed", _failure_reason(tdir, "trial failed")))
        elif record.get("state") == "failed" and s is None:
            rows.append(Row(job.job_id, k, "failed", record.get("reason") or "job failed"))
        elif s in ("preempted", "running", "interrupted"):
            how = {"running": "killed"}.get(s, s)
            ckpt = "resumes from its checkpoint" if _has_checkpoint(tdir) else "restarts"
            rows.append(Row(job.job_id, k, "pending", f"{how}; {ckpt}"))
        else:
            rows.append(Row(job.job_id, k, "pending", "not started"))
    return rows


def _has_checkpoint(tdir: Path) -> bool:
    from algoperf.runner import checkpoint

    return checkpoint.latest(tdir) is not None


def status_rows(jobs: Iterable[Job]) -> list[Row]:
    return [row for job in jobs for row in trial_rows(job)]


def count_line(rows: list[Row]) -> str:
    """``3 done, 1 running, 0 failed, 2 pending (6 trials)`` (plus any uncertain state)."""
    counts = {s: sum(r.state == s for r in rows) for s in STATES}
    counts.update({s: n for s in UNCERTAIN_STATES if (n := sum(r.state == s for r in rows))})
    return ", ".join(f"{n} {s}" for s, n in counts.items()) + f" ({len(rows)} trials)"


def format_table(rows: list[Row]) -> str:
    """A plain-text table (one row per trial) and a one-line count per state."""
    header = ("trial", "state", "detail")
    body = [
        (f"{r.job_id.rsplit('/trial_', 1)[0]}/trial_{r.trial}", r.state, r.detail) for r in rows
    ]
    widths = [max(len(x[i]) for x in [header, *body]) for i in range(2)]
    lines = [f"{header[0]:<{widths[0]}}  {header[1]:<{widths[1]}}  {header[2]}"]
    lines += [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}" for a, b, c in body]
    lines.append(count_line(rows))
    return "\n".join(lines)
