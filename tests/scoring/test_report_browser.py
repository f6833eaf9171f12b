"""The HTML report in a real browser: charts drawn, nothing overflowing, a screenshot that shows them.

Needs Chromium (Debian: ``apt-get install chromium-headless-shell``; or set ALGOPERF_CHROMIUM);
skipped with that reason when absent. ``make install`` does not install it (a system package).
"""

from __future__ import annotations

import numpy as np
import pytest

from scoring.api import score_logs
from scoring.browser import find_chromium, measure, problems, screenshot
from scoring.charts import COLORS
from scoring.report import write_outputs
from scoring.targets import load_targets

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium (apt-get install chromium-headless-shell, or set ALGOPERF_CHROMIUM)",
)


def _leaderboard_like(make_logs):
    """Eleven submissions with long names on the eight v0.6 workloads, some missing targets."""
    targets = load_targets("0.6")
    rng = np.random.default_rng(0)
    trials = []
    names = [f"submission_with_a_long_name_{i:02d}" for i in range(11)]
    for i, sub in enumerate(names):
        for w in targets.base_workloads:
            t = targets.workloads[w]
            goal = t.validation_target_value
            budget = targets.budget_sec(w, False)
            times = np.linspace(0.05, 1.0, 40) * budget
            reach = 0.3 + 0.06 * i  # later submissions reach targets later, the last ones never
            frac = np.clip(np.linspace(0, 1, 40) / reach, 0, 1.2)
            start = goal * (0.5 if t.maximize else 2.0)
            values = start + (goal - start) * frac + rng.normal(0, 1e-4, 40)
            for study in ("study_0", "study_1", "study_2"):
                trials.append((sub, w, study, "trial_1", times, values))
    return score_logs(make_logs(trials), targets, bootstrap_samples=50, seed=0)


def test_report_renders_and_fits_in_a_browser(make_logs, tmp_path):
    from PIL import Image

    result = _leaderboard_like(make_logs)
    write_outputs(result, tmp_path)
    report = tmp_path / "report.html"
    layout = measure(report, CHROMIUM, width=1280)
    assert problems(layout) == []
    # Every chart is on the page with one drawn shape per series.
    assert [c["id"] for c in layout["charts"]] == [
        "performance_profiles",
        "scores",
        *(f"curves_{w}" for w in result.settings["base_workloads"]),
    ]
    for c in layout["charts"]:
        assert c["series"] == 11 and c["drawn"] >= 11, c
    assert len(layout["tables"]) >= 8
    # The top of the page (scores, profiles, score bars) shows the charts' colours.
    png = screenshot(report, tmp_path / "report.png", CHROMIUM, width=1280, height=2400)
    with Image.open(png) as im:
        pixels = np.asarray(im.convert("RGB")).reshape(-1, 3)
    assert im.size == (1280, 2400)
    seen = []
    for hex_color in COLORS:
        rgb = np.array([int(hex_color[k : k + 2], 16) for k in (1, 3, 5)])
        seen.append(int((np.abs(pixels.astype(int) - rgb).sum(axis=1) < 60).sum()))
    assert sum(n > 100 for n in seen) >= 8, seen  # at least 8 submissions' colours are drawn


def test_the_check_finds_an_overflow(make_logs, tmp_path):
    """The layout check is not vacuous: a table wider than the window is reported."""
    result = _leaderboard_like(make_logs)
    write_outputs(result, tmp_path, plots=False)
    report = tmp_path / "report.html"
    cells = "<td>wide_cell_content</td>" * 200
    wide = f"<div class='table'><table><tr>{cells}</tr></table></div>"
    report.write_text(report.read_text().replace("</body>", wide + "</body>"))
    found = problems(measure(report, CHROMIUM, width=1280))
    assert any("needs horizontal scrolling" in line for line in found), found
