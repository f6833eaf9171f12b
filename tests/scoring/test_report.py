"""The report's tables: interval tables split so they fit a window, headers that break only at '_'.

The browser test (test_report_browser.py) measures the same in Chromium; these checks need none.
"""

from __future__ import annotations

import re

import numpy as np

from scoring.api import score_logs
from scoring.report import MAX_INTERVAL_COLUMNS, _column_groups, _sections, render_html
from scoring.targets import load_targets

INTERVALS = "Time to target with bootstrap intervals (s)"


def _result(make_logs, version: str):
    targets = load_targets(version)
    trials = []
    for sub, speed in (("sub_a", 0.3), ("sub_b", 0.6)):
        for w in targets.scored_workloads:
            t = targets.workloads[w]
            goal = t.validation_target_value
            times = np.linspace(0.1, 1.0, 10) * targets.budget_sec(w, False)
            frac = np.clip(np.linspace(0, 1, 10) / speed, 0, 1.2)
            start = goal * (0.5 if t.maximize else 2.0)
            for study in ("study_0", "study_1", "study_2"):
                trials.append((sub, w, study, "trial_1", times, start + (goal - start) * frac))
    logs = make_logs(trials, version=version)
    return score_logs(logs, targets, bootstrap_samples=20, seed=0)


def test_v05_interval_table_is_split_into_base_and_held_out(make_logs):
    result = _result(make_logs, "0.5")
    tables = {title: table for title, _, table in _sections(result) if title.startswith(INTERVALS)}
    assert list(tables) == [f"{INTERVALS}: base workloads", f"{INTERVALS}: held-out workloads"]
    st = result.settings
    assert sorted(tables[f"{INTERVALS}: base workloads"].columns) == sorted(st["base_workloads"])
    held = tables[f"{INTERVALS}: held-out workloads"]
    assert sorted(held.columns) == sorted(st["held_out_workloads"])
    assert all(len(t.columns) <= MAX_INTERVAL_COLUMNS for t in tables.values())
    # The cells are the unsplit table's: time [low, high].
    cell = tables[f"{INTERVALS}: base workloads"].loc["sub_a", "ogbg"]
    assert re.fullmatch(r"[\d,]+ \[[\d,]+, [\d,]+\]", cell), cell


def test_v06_interval_table_is_one_table(make_logs):
    result = _result(make_logs, "0.6")
    titles = [title for title, _, _ in _sections(result) if title.startswith(INTERVALS)]
    assert titles == [INTERVALS]


def test_wide_groups_are_cut_into_even_parts(make_logs):
    result = _result(make_logs, "0.6")
    cols = [f"w{i}" for i in range(MAX_INTERVAL_COLUMNS + 1)]
    groups = _column_groups(result, cols)
    assert [suffix for suffix, _ in groups] == [": part 1 of 2", ": part 2 of 2"]
    assert [len(c) for _, c in groups] == [5, 4]
    assert [c for _, part in groups for c in part] == cols


def test_headers_break_only_after_underscores(make_logs):
    result = _result(make_logs, "0.5")
    page = render_html(result, {})
    heads = re.findall(r"<thead><tr>(.*?)</tr></thead>", page)
    assert heads and "<th>imagenet_<wbr>resnet</th>" in heads[1]
    for head in heads:
        for th in re.findall(r"<th>(.*?)</th>", head):
            # Only the inserted breaks: none inside a word, one after each underscore.
            assert th.replace("_<wbr>", "_").count("<wbr>") == 0
            assert th.count("_") == th.count("_<wbr>")
    css = page[page.index("<style>") : page.index("</style>")]
    assert "anywhere" not in css and "break-all" not in css
    assert re.search(r"thead th \{[^}]*word-break: normal", css)
