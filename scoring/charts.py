"""The report's charts: what to draw (renderer-neutral specs) and a fast SVG renderer.

Every chart is described once, as data (`LineChart`, `BarChart`), by `chart_specs`; two renderers
draw the same specs:

* `render_svg` here: plain SVG text written by Python (no plotting library, a few milliseconds per
  chart). The HTML report inlines these, and ``charts/<name>.svg`` are written beside it for the
  Markdown report. This is the default on the scoring path.
* `scoring.plots` (matplotlib): static PNG/SVG for papers, only on request (``--static_plots``).

Charts:

* ``performance_profiles``: rho(tau) per submission, scores in the legend.
* ``scores``: benchmark scores with bootstrap intervals.
* ``curves_<workload>``: validation metric against submission time, one curve per submission
  (its representative trial: the selected trial of its median study, or its best trial when it
  never reached the target), the target as a dashed line and the budget as a dotted one.
"""

from __future__ import annotations

import dataclasses
import html
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scoring.api import ScoringResult

# matplotlib's tab10, so the two renderers colour submissions alike.
COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
LINESTYLES = ("-", "--", "-.", ":")


@dataclasses.dataclass(frozen=True)
class Series:
    """One curve: `x`, `y` in plot units; `style` indexes colour and line style."""

    label: str
    x: np.ndarray
    y: np.ndarray
    style: int
    name: str = ""  # the submission (for toggling in the HTML report)
    markers: bool = False  # draw each point (curves of one to three evals)
    dot: tuple[float, float] | None = None  # where the target was reached
    step: bool = False  # steps-post


@dataclasses.dataclass(frozen=True)
class RefLine:
    """A horizontal (`horizontal=True`, at y) or vertical (at x) reference line."""

    value: float
    label: str
    horizontal: bool
    dash: str  # one of LINESTYLES
    color: str = "black"


@dataclasses.dataclass(frozen=True)
class LineChart:
    """Curves in a box `xlim` x `ylim` (ylim None: fit the data)."""

    title: str
    xlabel: str
    ylabel: str
    series: tuple[Series, ...]
    xlim: tuple[float, float]
    ylim: tuple[float, float] | None
    refs: tuple[RefLine, ...] = ()
    legend_title: str | None = None
    subtitle: str = ""


@dataclasses.dataclass(frozen=True)
class BarChart:
    """Horizontal bars, listed bottom to top, with optional [lo, hi] intervals."""

    title: str
    xlabel: str
    labels: tuple[str, ...]
    values: np.ndarray
    lo: np.ndarray | None
    hi: np.ndarray | None
    styles: tuple[int, ...]
    xlim: tuple[float, float]


def color(style: int) -> str:
    """Colour of style index `style`."""
    return COLORS[style % len(COLORS)]


def linestyle(style: int) -> str:
    """Line style (matplotlib notation) of style index `style`."""
    return LINESTYLES[(style // len(COLORS)) % len(LINESTYLES)]


def _styles(submissions: Sequence[str]) -> dict[str, int]:
    return {s: i for i, s in enumerate(sorted(submissions))}


# ------------------------------------------------------------------------------------------------
# What to draw.


def profile_chart(result: ScoringResult) -> LineChart:
    """rho(tau) for every submission, best score first in the legend."""
    styles = _styles(result.settings["submissions"])
    order = result.scores["score"].sort_values(ascending=False, kind="stable").index
    taus = result.profiles.columns.to_numpy(np.float64)
    series = tuple(
        Series(
            label=f"{sub} ({result.scores.loc[sub, 'score']:.4f})",
            x=taus,
            y=result.profiles.loc[sub].to_numpy(np.float64),
            style=styles[sub],
            name=sub,
            step=True,
        )
        for sub in order
    )
    n_base = len(result.settings["base_workloads"])
    st = result.settings
    return LineChart(
        title=f"Performance profiles (benchmark {st['benchmark_version']}, "
        f"{st['ruleset'].replace('_', ' ')})",
        xlabel="τ: ratio of time to target to the fastest submission's",
        ylabel=f"fraction of the {n_base} base workloads within τ",
        series=series,
        xlim=(float(taus[0]), float(taus[-1])),
        ylim=(-0.02, 1.02),
        legend_title="submission (score)",
    )


def scores_chart(result: ScoringResult) -> BarChart:
    """Scores as horizontal bars (best on top) with bootstrap intervals when available."""
    scores = result.scores.sort_values("score", kind="stable")
    styles = _styles(result.settings["submissions"])
    values = scores["score"].to_numpy(np.float64)
    has_ci = bool(scores["ci_low"].notna().all()) and len(scores) > 0
    level = f"{result.settings['confidence'] * 100:g}"
    suffix = (
        f", {level}% bootstrap intervals over studies"
        if result.settings["bootstrap_samples"] and has_ci
        else ""
    )
    return BarChart(
        title=f"Benchmark scores{suffix}",
        xlabel="benchmark score (area under the performance profile / 3)",
        labels=tuple(scores.index),
        values=values,
        lo=scores["ci_low"].to_numpy(np.float64) if has_ci else None,
        hi=scores["ci_high"].to_numpy(np.float64) if has_ci else None,
        styles=tuple(styles[s] for s in scores.index),
        xlim=(0.0, 1.08),
    )


def time_unit(seconds: float) -> tuple[float, str]:
    """A readable unit for times up to `seconds`: (seconds per unit, name)."""
    if seconds >= 3 * 3600:
        return 3600.0, "h"
    if seconds >= 180:
        return 60.0, "min"
    return 1.0, "s"


def ylimits(values: np.ndarray, target: float, maximize: bool) -> tuple[float, float] | None:
    """Limits that keep the approach to the target readable despite a large initial loss."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    lo, hi = np.percentile(finite, [1, 99])
    lo, hi = min(lo, target), max(hi, target)
    if maximize:
        best = max(hi, target)
        lo = max(lo, target - 4 * max(best - target, 0.05 * abs(target), 1e-12))
    else:
        best = min(lo, target)
        hi = min(hi, target + 4 * max(target - best, 0.05 * abs(target), 1e-12))
    pad = 0.05 * (hi - lo if hi > lo else max(abs(target), 1.0))
    return float(lo - pad), float(hi + pad)


def curve_chart(result: ScoringResult, workload: str) -> LineChart:
    """Validation metric against submission time for one workload, one curve per submission."""
    target = result.targets.workloads[workload]
    rows = result.workloads[
        (result.workloads["workload"] == workload) & (result.workloads["representative_trial"] >= 0)
    ]
    evals = result.logs.evals
    styles = _styles(result.settings["submissions"])
    budget = result.targets.budget_sec(workload, result.settings["ruleset"] == "self_tuning")
    tids = rows["representative_trial"].to_numpy()
    starts = np.searchsorted(evals["trial_id"].to_numpy(), tids)
    score_col = evals["score"].to_numpy()
    metric_col = evals["metric"].to_numpy()
    trials = result.trials
    curves = []
    for row, tid, start in zip(rows.itertuples(index=False), tids, starts):
        n = int(trials.at[tid, "n_evals"])
        curves.append((row, tid, score_col[start : start + n], metric_col[start : start + n]))
    xmax = max([budget, *(float(np.nanmax(x)) for _, _, x, _ in curves if len(x))])
    scale, unit = time_unit(xmax)
    goal = target.validation_target_value
    limits = (
        ylimits(np.concatenate([c[3] for c in curves]), goal, target.maximize) if curves else None
    )
    series = []
    for row, tid, x, y in curves:
        sub = row.submission
        t = row.time_to_target
        if np.isfinite(t):
            label = f"{sub} (median {t / scale:.3g} {unit})"
        else:
            label = f"{sub} (median: missed; best {row.best_metric:.4g})"
        finite = y[np.isfinite(y)]
        if limits and finite.size and (finite.max() < limits[0] or finite.min() > limits[1]):
            label += ", off scale"  # zoomed on the target; say so rather than hide it silently
        dot = None
        if trials.at[tid, "reached"]:
            dot = (
                float(trials.at[tid, "time_to_target"]) / scale,
                float(y[int(trials.at[tid, "hit_index"])]),
            )
        series.append(
            Series(
                label=label,
                x=x / scale,
                y=y,
                style=styles[sub],
                name=sub,
                markers=len(x) <= 3,  # a curve of one or two evals needs markers to be seen
                dot=dot,
            )
        )
    op = "≥" if target.maximize else "≤"
    return LineChart(
        title=f"{workload}: validation {target.target_metric_name} against submission time",
        subtitle="per submission, the selected trial of its median study (dot: target reached)",
        xlabel=f"submission time ({unit})",
        ylabel=f"validation {target.target_metric_name}",
        series=tuple(series),
        xlim=(0.0, xmax * 1.02 / scale),
        ylim=limits,
        refs=(
            RefLine(goal, f"target {op} {goal:g}", True, "--"),
            RefLine(budget / scale, "budget", False, ":", "gray"),
        ),
    )


def chart_specs(result: ScoringResult) -> dict[str, LineChart | BarChart]:
    """Every chart of the report, by file stem, in report order."""
    specs: dict[str, LineChart | BarChart] = {
        "performance_profiles": profile_chart(result),
        "scores": scores_chart(result),
    }
    present = set(result.trials["workload"]) if len(result.trials) else set()
    for workload in result.settings["base_workloads"] + result.settings["held_out_workloads"]:
        if workload in present:
            specs[f"curves_{workload}"] = curve_chart(result, workload)
    return specs


# ------------------------------------------------------------------------------------------------
# SVG.

_W, _H = 760.0, 430.0  # plot box (without legend) in SVG user units
_M = {"left": 78.0, "right": 16.0, "top": 52.0, "bottom": 58.0}
_FONT = 13.0
_DASH = {"-": None, "--": "7 4", "-.": "8 3 2 3", ":": "2 3"}


def _text_width(text: str, size: float = _FONT) -> float:
    """Rough width of `text` in a sans-serif font (for layout only)."""
    return 0.56 * size * len(text)


def tick_decimals(step: float) -> int:
    """The fewest decimals that write multiples of `step` exactly (2.5 -> 1, 0.025 -> 3, 50 -> 0)."""
    if not (math.isfinite(step) and step > 0):
        return 0
    for decimals in range(16):
        scaled = step * 10**decimals
        if abs(scaled - round(scaled)) <= 1e-6 * scaled:
            return decimals
    return 16


def nice_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 x 10^k steps) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(target, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    decimals = tick_decimals(step)
    first = math.ceil(lo / step - 1e-9)
    ticks = []
    k = first
    while k * step <= hi + 1e-9 * step:
        ticks.append(round(k * step, decimals) + 0.0)  # + 0.0: no -0.0
        k += 1
    return ticks


def _fmt_tick(v: float, ticks: Sequence[float]) -> str:
    """`v` with as many decimals as the tick step needs, whatever its size (2.5 -> "7.5")."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else abs(v) or 1.0
    decimals = tick_decimals(_round_sig(step))
    return f"{v:,.{decimals}f}"


def _round_sig(x: float, digits: int = 9) -> float:
    """`x` to `digits` significant digits (a difference of ticks carries float noise)."""
    return float(f"{x:.{digits - 1}e}")


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _path(x: np.ndarray, y: np.ndarray, step: bool) -> str:
    """An SVG path through finite points; NaN breaks the line."""
    parts = []
    pen = False
    for xi, yi in zip(x.tolist(), y.tolist()):
        if not (math.isfinite(xi) and math.isfinite(yi)):
            pen = False
            continue
        if not pen:
            parts.append(f"M{xi:.1f},{yi:.1f}")
            pen = True
        elif step:
            parts.append(f"H{xi:.1f}V{yi:.1f}")
        else:
            parts.append(f"L{xi:.1f},{yi:.1f}")
    return "".join(parts)


class _Frame:
    """Maps data to SVG coordinates inside the plot box."""

    def __init__(self, xlim: tuple[float, float], ylim: tuple[float, float]):
        self.x0, self.x1 = xlim
        self.y0, self.y1 = ylim
        self.left, self.top = _M["left"], _M["top"]
        self.width = _W - _M["left"] - _M["right"]
        self.height = _H - _M["top"] - _M["bottom"]

    def px(self, x: np.ndarray) -> np.ndarray:
        span = (self.x1 - self.x0) or 1.0
        return self.left + (np.asarray(x, np.float64) - self.x0) / span * self.width

    def py(self, y: np.ndarray) -> np.ndarray:
        span = (self.y1 - self.y0) or 1.0
        return self.top + (self.y1 - np.asarray(y, np.float64)) / span * self.height


def _axes(
    frame: _Frame, title: str, xlabel: str, ylabel: str, xticks, yticks, subtitle: str = ""
) -> list[str]:
    f = frame
    title_y = f.top - (24 if subtitle else 14)
    out = [
        f'<rect x="{f.left}" y="{f.top}" width="{f.width:.1f}" height="{f.height:.1f}" '
        'fill="white" stroke="#444"/>',
        f'<text class="title" x="{f.left + f.width / 2:.1f}" y="{title_y}" '
        f'text-anchor="middle">{_esc(title)}</text>',
        f'<text class="subtitle" x="{f.left + f.width / 2:.1f}" y="{f.top - 8}" '
        f'text-anchor="middle">{_esc(subtitle)}</text>'
        if subtitle
        else "",
        f'<text x="{f.left + f.width / 2:.1f}" y="{_H - 12}" '
        f'text-anchor="middle">{_esc(xlabel)}</text>',
        f'<text x="16" y="{f.top + f.height / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 16 {f.top + f.height / 2:.1f})">{_esc(ylabel)}</text>',
    ]
    bottom = f.top + f.height
    for v in xticks:
        if not f.x0 - 1e-9 <= v <= f.x1 + 1e-9:
            continue
        x = float(f.px(v))
        out.append(
            f'<line class="grid" x1="{x:.1f}" y1="{f.top}" x2="{x:.1f}" y2="{bottom:.1f}"/>'
            f'<text x="{x:.1f}" y="{bottom + 17:.1f}" text-anchor="middle">'
            f"{_fmt_tick(v, xticks)}</text>"
        )
    for v in yticks or ():
        if not f.y0 - 1e-9 <= v <= f.y1 + 1e-9:
            continue
        y = float(f.py(v))
        out.append(
            f'<line class="grid" x1="{f.left}" y1="{y:.1f}" x2="{f.left + f.width:.1f}" '
            f'y2="{y:.1f}"/><text x="{f.left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_fmt_tick(v, yticks)}</text>"
        )
    return out


def _stroke(style: int) -> str:
    dash = _DASH[linestyle(style)]
    return f'stroke="{color(style)}"' + (f' stroke-dasharray="{dash}"' if dash else "")


def _legend(entries: list[tuple[str, str, str]], title: str | None, x: float) -> list[str]:
    """Legend rows at the right of the plot box: (svg swatch attrs, label, series id)."""
    out = []
    y = _M["top"] + 4
    if title:
        out.append(f'<text class="legend-title" x="{x}" y="{y + 10}">{_esc(title)}</text>')
        y += 20
    for swatch, label, sid in entries:
        attrs = f' data-series="{sid}"' if sid else ""
        out.append(
            f'<g class="legend-entry"{attrs}><line x1="{x}" y1="{y + 6}" x2="{x + 26}" '
            f'y2="{y + 6}" {swatch} stroke-width="2.5"/><text x="{x + 32}" y="{y + 10}">'
            f"{_esc(label)}</text></g>"
        )
        y += 19
    return out


def _legend_width(labels: Sequence[str], title: str | None) -> float:
    widths = [_text_width(lab) + 32 for lab in labels]
    if title:
        widths.append(_text_width(title))
    return (max(widths) + 24) if widths else 0.0


def _svg(width: float, height: float, body: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width:.0f} '
        f'{height:.0f}" width="{width:.0f}" height="{height:.0f}" role="img" '
        f'aria-label="{_esc(label)}" font-family="system-ui, sans-serif" font-size="{_FONT:g}">'
        "<style>.grid{stroke:#ddd;stroke-width:1}.title{font-size:15px;font-weight:600}"
        ".subtitle{font-size:12px;fill:#555}.legend-title{font-weight:600}.legend-entry{cursor:pointer}"
        ".off{opacity:0.15}</style>" + "".join(body) + "</svg>"
    )


def render_line_svg(chart: LineChart, chart_id: str) -> str:
    """A `LineChart` as a standalone SVG document (no scripts, no external references)."""
    ylim = chart.ylim
    if ylim is None:
        ys = [s.y[np.isfinite(s.y)] for s in chart.series]
        ys.extend(np.array([r.value]) for r in chart.refs if r.horizontal)
        allv = np.concatenate(ys) if ys else np.empty(0)
        lo, hi = (float(allv.min()), float(allv.max())) if allv.size else (0.0, 1.0)
        pad = 0.05 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.05
        ylim = (lo - pad, hi + pad)
    frame = _Frame(chart.xlim, ylim)
    body = _axes(
        frame,
        chart.title,
        chart.xlabel,
        chart.ylabel,
        nice_ticks(*chart.xlim),
        nice_ticks(*ylim, target=6),
        chart.subtitle,
    )
    clip = f"clip-{chart_id}"
    body.append(
        f'<clipPath id="{clip}"><rect x="{frame.left}" y="{frame.top}" '
        f'width="{frame.width:.1f}" height="{frame.height:.1f}"/></clipPath>'
        f'<g clip-path="url(#{clip})">'
    )
    legend: list[tuple[str, str, str]] = []
    for i, s in enumerate(chart.series):
        sid = f"{chart_id}-{i}"
        px, py = frame.px(s.x), frame.py(s.y)
        parts = [f'<g class="series" data-series="{sid}"><title>{_esc(s.label)}</title>']
        parts.append(
            f'<path d="{_path(px, py, s.step)}" fill="none" {_stroke(s.style)} '
            'stroke-width="2" stroke-linejoin="round"/>'
        )
        if s.markers:
            for xi, yi in zip(px.tolist(), py.tolist()):
                if math.isfinite(xi) and math.isfinite(yi):
                    parts.append(
                        f'<path d="M{xi - 4:.1f},{yi - 4:.1f}l8,8m0,-8l-8,8" '
                        f'stroke="{color(s.style)}" stroke-width="1.8"/>'
                    )
        if s.dot is not None:
            dx, dy = float(frame.px(s.dot[0])), float(frame.py(s.dot[1]))
            parts.append(f'<circle cx="{dx:.1f}" cy="{dy:.1f}" r="4.5" fill="{color(s.style)}"/>')
        parts.append("</g>")
        body.append("".join(parts))
        legend.append((_stroke(s.style), s.label, sid))
    for ref in chart.refs:
        dash = _DASH[ref.dash]
        stroke = f'stroke="{ref.color}"' + (f' stroke-dasharray="{dash}"' if dash else "")
        if ref.horizontal:
            y = float(frame.py(ref.value))
            body.append(
                f'<line x1="{frame.left}" y1="{y:.1f}" x2="{frame.left + frame.width:.1f}" '
                f'y2="{y:.1f}" {stroke} stroke-width="1.4"/>'
            )
        else:
            x = float(frame.px(ref.value))
            body.append(
                f'<line x1="{x:.1f}" y1="{frame.top}" x2="{x:.1f}" '
                f'y2="{frame.top + frame.height:.1f}" {stroke} stroke-width="1.4"/>'
            )
        legend.append((stroke, ref.label, ""))
    body.append("</g>")
    labels = [lab for _, lab, _ in legend]
    lw = _legend_width(labels, chart.legend_title)
    body += _legend(legend, chart.legend_title, _W + 4)
    height = max(_H, _M["top"] + 30 + 19 * len(legend))
    return _svg(_W + lw, height, body, chart.title)


def render_bar_svg(chart: BarChart, chart_id: str) -> str:
    """A `BarChart` as a standalone SVG document."""
    n = len(chart.labels)
    label_w = max([_text_width(lab) for lab in chart.labels] + [40.0]) + 16
    row = 30.0
    top, bottom = 40.0, 58.0
    height = top + bottom + row * max(n, 1)
    width = label_w + 620.0
    left, plot_w = label_w, width - label_w - 20
    x0, x1 = chart.xlim

    def px(v: float) -> float:
        return left + (v - x0) / (x1 - x0) * plot_w

    body = [
        f'<rect x="{left}" y="{top}" width="{plot_w:.1f}" height="{row * max(n, 1):.1f}" '
        'fill="white" stroke="#444"/>',
        f'<text class="title" x="{left + plot_w / 2:.1f}" y="{top - 14}" '
        f'text-anchor="middle">{_esc(chart.title)}</text>',
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 12}" text-anchor="middle">'
        f"{_esc(chart.xlabel)}</text>",
    ]
    ticks = nice_ticks(x0, 1.0, target=5)
    bottom_y = top + row * max(n, 1)
    for v in ticks:
        x = px(v)
        body.append(
            f'<line class="grid" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom_y:.1f}"/>'
            f'<text x="{x:.1f}" y="{bottom_y + 17:.1f}" text-anchor="middle">'
            f"{_fmt_tick(v, ticks)}</text>"
        )
    for i, (lab, v, style) in enumerate(zip(chart.labels, chart.values.tolist(), chart.styles)):
        yc = top + row * (n - 1 - i) + row / 2  # first label at the bottom, as matplotlib's barh
        w = max(px(min(v, x1)) - left, 0.0)
        tip = f"{lab}: {v:.4f}"
        bar = (
            f'<g class="series" data-series="{chart_id}-{i}"><title>{_esc(tip)}</title>'
            f'<rect x="{left}" y="{yc - row * 0.36:.1f}" width="{w:.1f}" height="{row * 0.72:.1f}" '
            f'fill="{color(style)}" fill-opacity="0.85"/>'
        )
        if chart.lo is not None and chart.hi is not None:
            lo, hi = px(min(chart.lo[i], v)), px(max(chart.hi[i], v))
            bar += (
                f'<path d="M{lo:.1f},{yc:.1f}H{hi:.1f}M{lo:.1f},{yc - 5:.1f}v10'
                f'M{hi:.1f},{yc - 5:.1f}v10" stroke="black" stroke-width="1.3" fill="none"/>'
            )
        bar += (
            f'<text x="{px(min(v, 1.0) + 0.01):.1f}" y="{yc - 6:.1f}">{v:.4f}</text>'
            f'<text x="{left - 8}" y="{yc + 4:.1f}" text-anchor="end">{_esc(lab)}</text></g>'
        )
        body.append(bar)
    return _svg(width, height, body, chart.title)


def render_svg(chart: LineChart | BarChart, chart_id: str) -> str:
    """Either kind of chart as SVG; `chart_id` keeps ids unique within one HTML page."""
    if isinstance(chart, BarChart):
        return render_bar_svg(chart, chart_id)
    return render_line_svg(chart, chart_id)


# Clicking a legend entry hides or shows its series (the static SVG files do without).
TOGGLE_SCRIPT = """
document.querySelectorAll('svg.chart .legend-entry[data-series]').forEach(function (entry) {
  entry.addEventListener('click', function () {
    var svg = entry.ownerSVGElement, id = entry.getAttribute('data-series');
    var series = svg.querySelector('.series[data-series="' + id + '"]');
    if (series) { series.classList.toggle('off'); entry.classList.toggle('off'); }
  });
});
"""
