"""The report's charts: specs drawn from the result, SVG that says what the data says."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from scoring.api import score_logs
from scoring.charts import (
    BarChart,
    LineChart,
    _fmt_tick,
    chart_specs,
    nice_ticks,
    render_svg,
)
from scoring.targets import load_targets

REPO = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"


def _result(make_logs, bootstrap: int = 30):
    """Three submissions on two workloads; 'slow' misses wmt's target."""
    t = np.arange(1, 11, dtype=float) * 100
    acc = np.linspace(0.5, 0.99, 10)  # ogbg mAP style, maximised
    trials = []
    for sub, speed in (("fast", 1.0), ("mid", 1.5), ("slow", 2.5)):
        for study in ("study_0", "study_1", "study_2"):
            for k in (1, 2):
                trials.append((sub, "ogbg", study, f"trial_{k}", t * speed, acc))
                bleu = np.linspace(5, 40, 10) if sub != "slow" else np.linspace(5, 20, 10)
                trials.append((sub, "wmt", study, f"trial_{k}", t * speed * 30, bleu))
    logs = make_logs(trials)
    targets = load_targets("0.6").with_base_workloads(("ogbg", "wmt"))
    return score_logs(logs, targets, bootstrap_samples=bootstrap, seed=1)


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # well-formed XML, or this raises


def test_nice_ticks_are_round_and_cover_the_range():
    for lo, hi in [(0, 1), (1, 4), (-0.02, 1.02), (0.12, 0.15), (0, 37_000), (3.3, 3.31)]:
        ticks = nice_ticks(lo, hi)
        assert 3 <= len(ticks) <= 12, (lo, hi, ticks)
        assert ticks[0] >= lo - 1e-12 and ticks[-1] <= hi + 1e-12
        steps = np.diff(ticks)
        assert np.allclose(steps, steps[0])
        mantissa = steps[0] / 10 ** np.floor(np.log10(steps[0]))
        assert any(np.isclose(mantissa, m) for m in (1, 2, 2.5, 5))
        assert ticks[0] - steps[0] < lo  # nothing round left out below


def test_tick_labels_read_back_as_their_values():
    """Every label parses to its tick, with the fewest decimals that do (2.5 steps: 7.5, not 8)."""
    rng = np.random.default_rng(0)
    ranges = [(0, 12.6), (0, 25), (0, 0.06), (-7.3, -2.1), (0, 37_000), (3.3, 3.31), (0, 2.5e6)]
    for _ in range(400):
        width = float(10 ** rng.uniform(-6, 7))
        ranges.append(
            (lo := float(rng.uniform(-1, 1) * width * 10 ** rng.uniform(0, 3)), lo + width)
        )
    steps_seen = set()
    for lo, hi in ranges:
        ticks = nice_ticks(lo, hi)
        if len(ticks) < 2:
            continue
        labels = [_fmt_tick(v, ticks) for v in ticks]
        step = ticks[1] - ticks[0]
        steps_seen.add(round(step / 10 ** np.floor(np.log10(step * (1 + 1e-6))), 3))
        values = [float(label.replace(",", "")) for label in labels]
        np.testing.assert_allclose(values, ticks, rtol=0, atol=step * 1e-6, err_msg=str(labels))
        assert len(set(labels)) == len(labels), labels
        decimals = len(labels[0].partition(".")[2])
        if decimals:  # one decimal fewer would lose a digit of some label
            assert any(not label.endswith("0") for label in labels), labels
    assert steps_seen == {1.0, 2.0, 2.5, 5.0}


def test_specs_carry_the_result(make_logs):
    r = _result(make_logs)
    specs = chart_specs(r)
    assert list(specs) == ["performance_profiles", "scores", "curves_ogbg", "curves_wmt"]
    prof = specs["performance_profiles"]
    assert isinstance(prof, LineChart)
    # Legend order: best score first; each curve is that submission's rho(tau) row.
    order = list(r.scores["score"].sort_values(ascending=False, kind="stable").index)
    assert [s.name for s in prof.series] == order
    for s in prof.series:
        np.testing.assert_array_equal(s.y, r.profiles.loc[s.name].to_numpy())
    bars = specs["scores"]
    assert isinstance(bars, BarChart)
    np.testing.assert_allclose(bars.values, r.scores.loc[list(bars.labels), "score"])
    assert bars.lo is not None and (bars.lo <= bars.values + 1e-12).all()
    wmt = specs["curves_wmt"]
    labels = {s.name: s.label for s in wmt.series}
    assert "missed" in labels["slow"] and "median" in labels["fast"]
    assert all(s.dot is None for s in wmt.series if s.name == "slow")
    assert wmt.refs[0].label.startswith("target ≥ ")


def test_profile_svg_steps_follow_rho(make_logs):
    r = _result(make_logs)
    spec = chart_specs(r)["performance_profiles"]
    root = _parse(render_svg(spec, "p"))
    series = root.findall(f".//{SVG}g[@class='series']")
    assert len(series) == len(spec.series) == 3
    for g, s in zip(series, spec.series):
        assert g.find(f"{SVG}title").text == s.label
        d = g.find(f"{SVG}path").get("d")
        assert "nan" not in d.lower()
        # Steps-post: as many vertical moves as the profile has points after the first.
        assert d.count("V") == len(s.x) - 1
        ys = [float(v) for v in re.findall(r"V(-?[\d.]+)", d)]
        assert ys == sorted(ys, reverse=True)  # rho never decreases: SVG y never increases
    legend = root.findall(f".//{SVG}g[@class='legend-entry']")
    assert [e.find(f"{SVG}text").text for e in legend] == [s.label for s in spec.series]


def test_score_bars_are_proportional_to_scores(make_logs):
    r = _result(make_logs)
    spec = chart_specs(r)["scores"]
    root = _parse(render_svg(spec, "s"))
    frame = root.find(f"{SVG}rect")
    plot_w = float(frame.get("width"))
    bars = [g.find(f"{SVG}rect") for g in root.findall(f".//{SVG}g[@class='series']")]
    widths = np.array([float(b.get("width")) for b in bars])
    np.testing.assert_allclose(widths / plot_w * 1.08, spec.values, atol=2e-3)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    for v in spec.values:
        assert f"{v:.4f}" in texts


def test_curve_svg_has_target_budget_and_a_clip(make_logs):
    r = _result(make_logs)
    spec = chart_specs(r)["curves_ogbg"]
    svg = render_svg(spec, "c")
    root = _parse(svg)
    assert root.find(f".//{SVG}clipPath") is not None
    paths = [g.find(f"{SVG}path") for g in root.findall(f".//{SVG}g[@class='series']")]
    assert len(paths) == 3 and all(p.get("d").startswith("M") for p in paths)
    # All three reach the target: one dot each.
    assert len(root.findall(f".//{SVG}g[@class='series']/{SVG}circle")) == 3
    legend = [t.text for t in root.findall(f".//{SVG}g[@class='legend-entry']/{SVG}text")]
    assert any(t.startswith("target ≥") for t in legend) and "budget" in legend
    assert "<script" not in svg and "href" not in svg  # standalone files stay inert


def test_single_eval_curves_get_markers_and_nan_breaks_lines(make_logs):
    trials = [
        ("a", "ogbg", "study_0", "trial_1", [100.0], [0.3]),
        ("b", "ogbg", "study_0", "trial_1", [100.0, 200.0, 300.0, 400.0], [0.1, np.nan, 0.2, 0.3]),
    ]
    targets = load_targets("0.6").with_base_workloads(("ogbg",))
    r = score_logs(make_logs(trials), targets, bootstrap_samples=0)
    spec = chart_specs(r)["curves_ogbg"]
    assert [s.markers for s in spec.series] == [True, False]
    root = _parse(render_svg(spec, "x"))
    groups = root.findall(f".//{SVG}g[@class='series']")
    assert len(groups[0].findall(f"{SVG}path")) == 2  # the line (one point) and its marker
    d = groups[1].find(f"{SVG}path").get("d")
    assert d.count("M") == 2  # NaN eval breaks the line in two


def test_default_outputs_need_no_matplotlib(v06_logs, tmp_path):
    """Charts on the default path are written without importing matplotlib."""
    code = f"""
import sys
from scoring.cli import main
assert main(["--submission_directory", {str(v06_logs / "external_tuning")!r},
             "--output_dir", {str(tmp_path)!r}, "--bootstrap_samples=20"]) == 0
assert "matplotlib" not in sys.modules, "matplotlib imported on the default path"
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr
    charts = sorted(p.stem for p in (tmp_path / "charts").glob("*.svg"))
    assert len(charts) == 10 and "performance_profiles" in charts  # 8 workloads + 2
    html = (tmp_path / "report.html").read_text()
    assert html.count("<svg") == 10 and "data:image/png" not in html
    md = (tmp_path / "report.md").read_text()
    assert "](charts/performance_profiles.svg)" in md
    assert not (tmp_path / "plots").exists()
