"""`algoperf sweep [run] PLAN` and `algoperf sweep status PLAN` (see `algoperf.sweep`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from algoperf.sweep import executors, state
from algoperf.sweep import plan as plan_lib

USAGE = """usage:
  algoperf sweep [run] PLAN [--executor local|slurm|submitit_local|debug] [--workers N]
                            [--granularity trial|study] [--dry_run] [--wait]
  algoperf sweep status PLAN

`run` starts every job of the plan that is not done (rerun it to resume); `status` prints one
row per trial: done, running, failed (with the reason) or pending; a running record from another
host that cannot be confirmed shows as running?, one whose SLURM job ended as lost.
"""


def _parser(command: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"algoperf sweep {command}", add_help=True)
    p.add_argument("plan", help="the plan file (TOML)")
    if command == "run":
        p.add_argument("--executor", choices=plan_lib.EXECUTORS, help="overrides the plan's")
        p.add_argument("--workers", type=int, help="local executor: jobs at once")
        p.add_argument("--granularity", choices=plan_lib.GRANULARITIES, help="overrides the plan's")
        p.add_argument("--dry_run", action="store_true", help="print the jobs, run nothing")
        p.add_argument("--wait", action="store_true", help="slurm: wait for the array to end")
    return p


def _load(args: argparse.Namespace) -> plan_lib.Plan:
    import dataclasses

    plan = plan_lib.load_plan(args.plan)
    changes = {}
    if getattr(args, "executor", None):
        changes["executor"] = args.executor
    if getattr(args, "granularity", None):
        changes["granularity"] = args.granularity
    return dataclasses.replace(plan, **changes) if changes else plan


def _status(argv: Sequence[str]) -> int:
    args = _parser("status").parse_args(argv)
    plan = _load(args)
    rows = state.status_rows(plan_lib.expand(plan))
    print(state.format_table(rows))
    return 0


def _run(argv: Sequence[str]) -> int:
    args = _parser("run").parse_args(argv)
    plan = _load(args)
    if args.workers is not None and args.workers < 1:
        raise ValueError("--workers must be at least 1")
    jobs = plan_lib.expand(plan)
    todo = [j for j in jobs if not state.job_done(j)]
    print(
        f"sweep {plan.name}: {len(jobs)} jobs ({plan.granularity} granularity), "
        f"{len(jobs) - len(todo)} done, {len(todo)} to run on {plan.executor}; "
        f"logs in {plan.experiment_dir}"
    )
    if args.dry_run:
        for job in todo:
            print(f"  {job.job_id}: algoperf run {' '.join(job.run_argv)} --resume_last_run")
        return 0
    if plan.executor == "local":
        results = executors.run_local(plan, todo, args.workers)
    else:
        handles = executors.submit(plan, todo, plan.executor)
        if plan.executor == "slurm" and not args.wait:
            ids = ", ".join(h.job_id for h in handles) or "none"
            print(f"submitted {len(handles)} SLURM jobs: {ids}")
            print(f"follow them with: algoperf sweep status {args.plan}")
            return 0
        results = []
        for handle in handles:
            try:
                results.append(handle.result())
            except Exception as e:  # a job that died in submitit (killed, out of memory)
                reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
                results.append(executors.JobResult(str(handle.job_id), "failed", None, reason))
    for r in results:
        extra = f": {r.reason}" if r.reason and r.state != "done" else ""
        print(f"  {r.job_id} [{r.state}]{extra}")
    print(state.count_line(state.status_rows(jobs)))
    if any(r.state == "preempted" for r in results) or len(results) < len(todo):
        print(f"sweep stopped; rerun `algoperf sweep run {args.plan}` to continue", file=sys.stderr)
        return 143
    return 1 if any(r.state == "failed" for r in results) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `algoperf sweep`; returns the exit status (0 ok, 1 a job failed, 143 stopped)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] == "status":
        return _status(argv[1:])
    if argv[0] == "run":
        return _run(argv[1:])
    return _run(argv)
