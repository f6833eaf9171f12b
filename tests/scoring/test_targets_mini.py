"""Benchmark version ``mini``: generated from the specs, selectable and scorable like the others."""

from __future__ import annotations

import pytest

from algoperf.registry import all_configs
from scoring import cli
from scoring import targets as tg
from tests.scoring.mini_logs import write_tree


def test_mini_set_is_the_five_workloads_with_their_spec_numbers():
    t = tg.load_targets("mini")
    assert t.base_workloads == tg.MINI_WORKLOADS
    assert len(t.base_workloads) == 5 and t.held_out_workloads == ()
    assert (t.num_studies, t.num_trials) == (3, 2)  # what plans/mini.toml runs
    assert not t.base_workloads_present_only  # a workload without logs counts as a miss
    specs = all_configs()
    for name in tg.MINI_WORKLOADS:
        w, c = t.workloads[name], specs[name]
        assert w.validation_target_value == c.validation_target_value, name
        assert w.max_allowed_runtime_sec == c.max_allowed_runtime_sec, name
        assert w.step_hint == c.step_hint, name
        assert w.maximize == c.maximize, name
    assert len({specs[n].family for n in tg.MINI_WORKLOADS}) >= 4


def test_unknown_version_lists_mini():
    with pytest.raises(tg.TargetsError, match=r"choose one of .*\bmini\b"):
        tg.load_targets("0.4")
    help_text = cli.build_parser().format_help()
    assert "mini" in help_text


def test_mini_naming_an_unregistered_workload_is_a_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(tg, "MINI_WORKLOADS", (*tg.MINI_WORKLOADS, "no_such_workload"))
    with pytest.raises(tg.TargetsError, match=r"no_such_workload.*MINI_WORKLOADS"):
        tg.generate("mini")
    monkeypatch.setattr(tg, "TARGETS_DIR", tmp_path)
    assert tg.main(["--write"]) == 1  # the other versions are still written
    assert {p.name for p in tmp_path.iterdir()} == {"current.json", "dev.json"}
    assert "no_such_workload" in capsys.readouterr().err


def test_algoperf_score_mini_on_generated_logs(tmp_path, capsys):
    t = tg.load_targets("mini")
    first, *rest = tg.MINI_WORKLOADS
    hits = {("fast", w): [2, None] for w in tg.MINI_WORKLOADS}  # third eval, every workload
    hits |= {("slow", w): [None, 5] for w in tg.MINI_WORKLOADS}  # sixth eval: 2x slower
    hits[("slow", first)] = [None, None]
    logs = write_tree(tmp_path / "logs", t, hits, studies=3)
    out = tmp_path / "scores"
    argv = [
        f"--submission_directory={logs}",
        f"--output_dir={out}",
        "--benchmark_version=mini",
        "--strict",
        "--bootstrap_samples=0",
        "--no_plots",
    ]
    assert cli.main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "benchmark mini" in printed
    scores = dict(
        line.split()[:2] for line in printed.splitlines() if line.startswith(("fast", "slow"))
    )
    assert float(scores["fast"]) == 1.0
    # slow: 2x the best time on 4 of 5 workloads, a miss on the fifth.
    ratio_area = (4.0 - 2.0) / 3.0
    assert float(scores["slow"]) == pytest.approx(ratio_area * len(rest) / 5, abs=0.02)
