"""`sweep status` on a ``running`` record: checked by pid on this host, by SLURM on another."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from algoperf.cli import main
from algoperf.sweep import plan as plan_lib
from algoperf.sweep import state


def _fake_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sacct: str | None) -> None:
    """PATH with a ``sacct`` printing `sacct` (None: no sacct and no squeue at all)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if sacct is not None:
        (bin_dir / "sacct").write_text(f"#!/bin/sh\necho '{sacct}'\n")
        (bin_dir / "sacct").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))


def _running_record(j: plan_lib.Job, **fields: object) -> None:
    state.write_job_record(j, "running", started="2026-12-01T10:00:00", **fields)
    record = state.read_job_record(j)
    record.update(fields)
    state.write_json_atomic(state.job_record_path(j), record)


@pytest.mark.parametrize(
    ("sacct", "want", "detail"),
    [
        ("RUNNING", "running", "slurm job 4242_1 RUNNING, pid 99 on node17"),
        ("NODE_FAIL", "lost", "slurm job 4242_1 is NODE_FAIL but its record says running"),
        ("CANCELLED+", "lost", "slurm job 4242_1 is CANCELLED but its record says running"),
        (None, "running?", "slurm job 4242_1, pid 99 on node17 since 2026-12-01T10:00:00: cannot"),
    ],
)
def test_record_of_another_host_is_checked_with_slurm(
    make_plan, tmp_path, monkeypatch, capsys, sacct, want, detail
):
    path = make_plan(num_studies=1, num_tuning_trials=1)
    (j,) = plan_lib.expand(plan_lib.load_plan(path))
    _running_record(j, host="node17", pid=99, scheduler="slurm", scheduler_job_id="4242_1")
    _fake_slurm(tmp_path, monkeypatch, sacct)
    (row,) = state.trial_rows(j)
    assert (row.state, row.detail.startswith(detail)) == (want, True), row
    assert main(["sweep", "status", str(path)]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    if want == "running":
        assert last == "0 done, 1 running, 0 failed, 0 pending (1 trials)"
    else:  # the uncertain states are counted only when present
        assert last == f"0 done, 0 running, 0 failed, 0 pending, 1 {want} (1 trials)"


def test_record_without_a_scheduler_job_id_is_unconfirmed(make_plan):
    (j,) = plan_lib.expand(plan_lib.load_plan(make_plan(num_studies=1, num_tuning_trials=1)))
    _running_record(j, host="node17", pid=99)
    (row,) = state.trial_rows(j)
    assert row.state == "running?"
    assert row.detail.endswith("another host, and no SLURM job id to check")


def test_record_of_this_host_is_checked_by_pid(make_plan):
    (j,) = plan_lib.expand(plan_lib.load_plan(make_plan(num_studies=1, num_tuning_trials=1)))
    _running_record(j, host=socket.gethostname(), pid=os.getpid())
    assert state.trial_rows(j)[0].state == "running"
    dead = 2**22 + 12345  # above the default pid_max: no such process
    _running_record(j, host=socket.gethostname(), pid=dead)
    assert state.trial_rows(j)[0] == state.Row(j.job_id, 1, "pending", "not started")
