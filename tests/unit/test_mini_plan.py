"""plans/mini.toml, the plan `make mini` runs: the mini protocol, in both frameworks."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from algoperf import demo
from algoperf.sweep import plan as plan_lib
from scoring.targets import MINI_WORKLOADS, load_targets

PLAN = Path(__file__).resolve().parents[2] / "plans" / "mini.toml"


def test_mini_plan_expands_to_the_mini_protocol_in_both_frameworks():
    plan = plan_lib.load_plan(PLAN)
    mini = load_targets("mini")
    assert plan.workloads == MINI_WORKLOADS
    assert set(plan.frameworks) == {"jax", "pytorch"}
    assert (plan.num_studies, plan.num_tuning_trials) == (mini.num_studies, mini.num_trials)
    assert tuple(s.name for s in plan.submissions) == demo.BASELINES
    assert (plan.executor, plan.local.workers, plan.local.cores_per_job) == ("local", 2, 1)
    jobs = plan_lib.expand(plan)
    assert len(jobs) == len(demo.BASELINES) * len(MINI_WORKLOADS) * 2 * mini.num_studies
    assert sum(len(j.trials) for j in jobs) == len(jobs) * mini.num_trials
    per_cell = Counter((j.submission, j.workload, j.framework) for j in jobs)
    assert set(per_cell.values()) == {mini.num_studies}
    for sub in plan.submissions:
        for framework in plan.frameworks:
            assert Path(sub.path_for(framework)).is_file()
        assert Path(sub.tuning_search_space).is_file()
    # The same study of one submission and workload gets the same seed in both frameworks.
    seeds = {(j.submission, j.workload, j.study, j.framework): j.rng_seed for j in jobs}
    assert all(seeds[(s, w, k, "jax")] == seeds[(s, w, k, "pytorch")] for (s, w, k, _f) in seeds)
