"""The demo: its generated sweep plan, its summary of a scored mini run (table, budgets, whether
the profile separates the baselines) and the JAX-vs-PyTorch comparison of `make mini`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from algoperf import demo
from algoperf.sweep import plan as plan_lib
from scoring.targets import MINI_WORKLOADS, load_targets
from tests.scoring.mini_logs import write_tree

MINI = load_targets("mini")


def _score(tmp_path, hits, **kw):
    logs = write_tree(tmp_path / "logs", MINI, hits, **kw)
    return demo.score(logs, tmp_path / "scores", plots=False)


def _write_plan(tmp_path, **kw):
    """A generated plan over the mini workloads, logging to tmp_path/logs; its path."""
    path = tmp_path / "plan.toml"
    text = demo.plan_text(
        experiment_dir=tmp_path / "logs", data_dir=tmp_path / "data", workloads=MINI_WORKLOADS, **kw
    )
    path.write_text(text)
    return path


def test_demo_plan_runs_three_baselines_one_study_of_two_trials(tmp_path):
    path = _write_plan(
        tmp_path, name="demo", frameworks=["jax"], num_studies=1, num_trials=2, seed=7
    )
    plan = plan_lib.load_plan(path)
    assert (plan.local.workers, plan.local.cores_per_job, plan.executor) == (2, 1, "local")
    assert not plan.save_checkpoints and plan.granularity == "study"
    jobs = plan_lib.expand(plan)
    assert len(jobs) == len(demo.BASELINES) * len(MINI_WORKLOADS)
    assert {(j.submission, j.workload) for j in jobs} == {
        (b, w) for b in demo.BASELINES for w in MINI_WORKLOADS
    }
    for job in jobs:
        assert job.trials == (1, 2) and job.framework == "jax" and job.study == 0
        argv = " ".join(job.run_argv)
        assert f"baselines/{job.submission}/jax/submission.py" in argv
        space = demo.SEARCH_SPACES.get(job.submission, "tuning_search_space.json")
        assert f"baselines/{job.submission}/{space}" in argv
        assert "--num_tuning_trials=2" in argv and "--max_runtime_sec" not in argv
        assert job.workload_dir == tmp_path / "logs" / job.submission / "study_0" / (
            f"{job.workload}_jax"
        )


def test_budget_lines_show_each_workloads_mini_budget():
    lines = demo.budget_lines(MINI_WORKLOADS, "pytorch")
    for w, line in zip(MINI_WORKLOADS, lines, strict=True):
        assert line.split()[0] == w
        assert f"budget {MINI.workloads[w].max_allowed_runtime_sec:g}s" in line


def test_summary_table_counts_hits_and_best_times_with_the_budget(tmp_path):
    first = MINI_WORKLOADS[0]
    hits = {("nadamw", w): [1, 4] for w in MINI_WORKLOADS}  # second eval: 2/10 of the budget
    hits |= {("adamw", w): [None, 3] for w in MINI_WORKLOADS}  # fourth eval
    hits |= {("sgd_nesterov", w): [None, None] for w in MINI_WORKLOADS}
    result = _score(tmp_path, hits)
    cells = demo.summary_table(result)
    budget = MINI.workloads[first].max_allowed_runtime_sec
    assert cells[(first, "nadamw")].reached == 2
    assert cells[(first, "nadamw")].best_time == pytest.approx(0.2 * budget)
    assert cells[(first, "adamw")].reached == 1
    assert cells[(first, "sgd_nesterov")].reached == 0
    text = demo.format_table(result)
    rows = {line.split()[0]: line for line in text.splitlines()[1:]}
    assert set(rows) == set(MINI_WORKLOADS)
    assert f"{budget:g}s" in rows[first] and "2/2" in rows[first] and "0/2 best" in rows[first]
    message = demo.separation_message(result)
    assert message.startswith("The profile separates the baselines: they differ on 5 of 5")
    assert "Only" not in message
    scores = demo.format_scores(result)
    assert re.search(r"nadamw\s+1\.0000", scores) and re.search(r"sgd_nesterov\s+0\.0000", scores)


def test_separation_message_flags_no_hits_and_a_lone_winner(tmp_path):
    none = {(s, w): [None, None] for s in ("a", "b") for w in MINI_WORKLOADS}
    message = demo.separation_message(_score(tmp_path / "none", none))
    assert "every score is 0" in message
    lone = {**none, ("a", MINI_WORKLOADS[0]): [2, None]}
    message = demo.separation_message(_score(tmp_path / "lone", lone))
    assert "does NOT separate" in message and "Only a reached any target" in message


def test_compare_frameworks_scores_each_framework_with_the_spread_of_studies(tmp_path, capsys):
    plan_path = _write_plan(
        tmp_path,
        name="mini",
        frameworks=["pytorch", "jax"],
        num_studies=2,
        num_trials=1,
        seed=1,
        baselines=("a", "b"),
    )
    for framework, b_hit in (("pytorch", 5), ("jax", 7)):
        hits = {("a", w): [2] for w in MINI_WORKLOADS} | {("b", w): [b_hit] for w in MINI_WORKLOADS}
        write_tree(tmp_path / "logs", MINI, hits, studies=2, framework=framework)
    assert demo.compare_frameworks(plan_path, tmp_path / "cmp") == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith(("a ", "b "))}
    # a is the best everywhere in both frameworks; b is 2x (PyTorch) and 8/3x (JAX) slower.
    assert re.search(r"a\s+1\.000 \[1\.00 1\.00\] 0\.00\s+1\.000 \[1\.00 1\.00\] 0\.00", rows["a"])
    b_jax, b_pytorch = (float(x) for x in re.findall(r"(\d\.\d{3}) \[", rows["b"]))
    assert b_jax < b_pytorch < 1.0
    assert (tmp_path / "cmp" / "jax" / "report.html").is_file()


def test_print_datasets_and_unknown_workloads(capsys):
    from algoperf import registry

    assert demo.main(["--print_datasets"]) == 0
    names = capsys.readouterr().out.split()
    assert names == list(dict.fromkeys(registry.get_config(w).dataset for w in MINI_WORKLOADS))
    assert demo.main(["--workloads", "mnist1d,nope", "--print_datasets"]) == 2
    assert "nope" in capsys.readouterr().err


def test_nadamw_demo_points_are_the_points_that_set_the_mini_targets():
    """NAdamW's demo list holds exactly the best points of the mini target-setting records."""
    repo = Path(demo.__file__).resolve().parents[1]
    listed = json.loads((repo / "submissions/baselines/nadamw/mini_search_space.json").read_text())
    records = [
        "workloads/mnist/targets_fashion_mnist.json",
        "workloads/mnist/targets_mnist1d.json",
        "workloads/ogbg/targets_ogbg_solubility.json",
        "workloads/wmt/targets_wmt_bible.json",
        "workloads/finewebedu_lm/targets_lm_bible.json",
    ]
    best = [json.loads((repo / r).read_text())["best_hparams"] for r in records]
    assert all(p in listed for p in best) and all(p in best for p in listed)
    assert len(listed) == 2


def test_demo_budgets_are_the_frameworks_own_and_reach_the_runs_and_the_scoring(tmp_path):
    flags = demo.demo_run_flags(MINI_WORKLOADS, "pytorch")
    assert flags["wmt_bible"] == ["--max_runtime_sec=11"]  # JAX's compile sets the mini 43 s
    assert "fashion_mnist" not in flags  # PyTorch is its slower framework: the mini budget
    path = _write_plan(
        tmp_path,
        name="demo",
        frameworks=["pytorch"],
        num_studies=1,
        num_trials=2,
        seed=7,
        workload_run_flags=flags,
    )
    for job in plan_lib.expand(plan_lib.load_plan(path)):
        argv = " ".join(job.run_argv)
        assert ("--max_runtime_sec" in argv) == (job.workload in flags)
        if job.submission == "nadamw":
            assert "nadamw/mini_search_space.json" in argv
    targets = json.loads(
        demo.demo_targets(MINI_WORKLOADS, "pytorch", tmp_path / "t.json").read_text()
    )
    assert targets["benchmark_version"] == "mini"
    for w in MINI_WORKLOADS:
        assert targets["workloads"][w]["max_allowed_runtime_sec"] == demo.demo_budget(w, "pytorch")
    lines = demo.budget_lines(MINI_WORKLOADS, "pytorch")
    assert "budget 11s (mini budget 43s" in next(x for x in lines if x.split()[0] == "wmt_bible")
