"""`algoperf sweep`: a study plan run as many `algoperf run` jobs, locally or on SLURM.

A plan (TOML, `algoperf.sweep.plan`) is expanded into one job per trial or per study; an
executor (`algoperf.sweep.executors`: a local process pool, or SLURM / submitit's local and debug
executors) runs them; every job is safe to repeat (`algoperf.sweep.job`): rerunning a plan skips
finished trials and resumes preempted ones. `algoperf sweep status PLAN` reads what happened
(`algoperf.sweep.state`).
"""

from algoperf.sweep.plan import Job, Plan, PlanError, expand, load_plan

__all__ = ["Job", "Plan", "PlanError", "expand", "load_plan"]
