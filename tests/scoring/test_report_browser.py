"""The HTML report in a real browser: charts drawn, nothing overflowing, a screenshot that shows them.

Needs Chromium (Debian: ``apt-get install chromium-headless-shell``; or set ALGOPERF_CHROMIUM);
skipped with that reason when absent, unless ALGOPERF_REQUIRE_CHROMIUM is set (``.ci/run`` sets
it once it has installed Chromium), which turns the skip into a failure. ``make install`` does
not install it (a system package).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from scoring import browser
from scoring.api import score_logs
from scoring.browser import find_chromium, measure, problems, screenshot
from scoring.charts import COLORS
from scoring.report import write_outputs
from scoring.targets import load_targets

CHROMIUM = find_chromium()
if CHROMIUM is None and os.environ.get("ALGOPERF_REQUIRE_CHROMIUM"):
    raise RuntimeError("ALGOPERF_REQUIRE_CHROMIUM is set but no Chromium was found")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium (apt-get install chromium-headless-shell, or set ALGOPERF_CHROMIUM)",
)


def test_chromium_is_found_where_debian_puts_it(monkeypatch):
    """Debian's binary is found even when PATH does not lead to it."""
    present = [p for p in browser.DEBIAN_PATHS if os.access(p, os.X_OK)]
    if not present:
        pytest.skip("no Debian Chromium installed")
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("ALGOPERF_CHROMIUM", raising=False)
    assert find_chromium() == present[0]
    assert CHROMIUM is not None  # so the browser tests below run here


def _leaderboard_like(make_logs, version: str = "0.5"):
    """Eleven submissions with long names on the v0.5 leaderboard's 14 workloads (8 base, 6
    held-out variants, as the published v0.5 logs), some missing targets."""
    targets = load_targets(version)
    rng = np.random.default_rng(0)
    trials = []
    names = [f"submission_with_a_long_name_{i:02d}" for i in range(11)]
    for i, sub in enumerate(names):
        for w in targets.scored_workloads:
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
    return score_logs(make_logs(trials, version=version), targets, bootstrap_samples=50, seed=0)


@needs_chromium
def test_report_renders_and_fits_in_a_browser(make_logs, tmp_path):
    from PIL import Image

    result = _leaderboard_like(make_logs)
    assert len(result.settings["held_out_workloads"]) == 6
    write_outputs(result, tmp_path)
    report = tmp_path / "report.html"
    layout = measure(report, CHROMIUM, width=1280)
    # No table scrolls (the intervals table is split: base and held-out workloads), no header
    # breaks inside a word ("imagen et_vit"), every chart fits.
    assert problems(layout) == []
    assert "intervals (s): held-out workloads</h2>" in report.read_text()
    # Every chart is on the page with one drawn shape per series.
    assert [c["id"] for c in layout["charts"]] == [
        "performance_profiles",
        "scores",
        *(
            f"curves_{w}"
            for w in result.settings["base_workloads"] + result.settings["held_out_workloads"]
        ),
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


@needs_chromium
def test_the_check_finds_an_overflow_and_a_broken_header(make_logs, tmp_path):
    """The layout check is not vacuous: a table wider than the window and a header word broken
    across lines are reported."""
    result = _leaderboard_like(make_logs, version="0.6")
    write_outputs(result, tmp_path, plots=False)
    report = tmp_path / "report.html"
    assert problems(measure(report, CHROMIUM, width=1280)) == []
    cells = "<td>wide_cell_content</td>" * 200
    wide = f"<div class='table'><table><tr>{cells}</tr></table></div>"
    narrow = (
        "<div class='table'><table><thead><tr><th style='width:3em;min-width:0;"
        "overflow-wrap:anywhere'>imagenet_<wbr>resnet</th></tr></thead></table></div>"
    )
    report.write_text(report.read_text().replace("</body>", wide + narrow + "</body>"))
    found = problems(measure(report, CHROMIUM, width=1280))
    assert any("needs horizontal scrolling" in line for line in found), found
    assert any("header 'imagenet_resnet' breaks inside a word" in line for line in found), found
