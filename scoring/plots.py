"""Static plots for papers (matplotlib PNG and SVG), drawn from `scoring.charts` specs.

Only on request (``algoperf score --static_plots``, ``write_outputs(..., static_plots=True)``):
the report's own charts are `scoring.charts` SVGs and need no plotting library. matplotlib is
imported only here, inside the rendering functions.

Figures are built with `matplotlib.figure.Figure` directly (no pyplot, so no global backend or
figure state: safe inside notebooks and threads) and rendered by the Agg canvas. With several
charts and CPUs they are rendered in worker processes (the specs are plain data), because
rendering dominates: about 0.3 s per chart and format on one core.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from scoring import _parallel
from scoring.charts import BarChart, LineChart, chart_specs, color, linestyle

if TYPE_CHECKING:
    from scoring.api import ScoringResult

FORMATS = ("png", "svg")


def _save(fig, stem: Path, formats: Sequence[str]) -> list[Path]:
    paths = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        tmp = path.with_name(path.name + ".tmp")
        fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight")
        os.replace(tmp, path)
        paths.append(path)
    return paths


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.subplots()
    ax.grid(True, alpha=0.3)
    return fig, ax


def _legend(ax, entries: int, title: str | None = None) -> None:
    """Inside the axes for a few entries; beside them when many would cover the curves."""
    if entries > 5:
        ax.figure.set_figwidth(ax.figure.get_figwidth() + 3.5)
        ax.legend(title=title, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    else:
        ax.legend(title=title, loc="best", fontsize="small")


def draw_line(chart: LineChart):
    """A matplotlib Figure of a `LineChart`."""
    fig, ax = _figure(9.0, 5.5)
    for s in chart.series:
        style = {"color": color(s.style), "linestyle": linestyle(s.style)}
        ax.plot(
            s.x,
            s.y,
            linewidth=2 if s.step else 1.8,
            label=s.label,
            drawstyle="steps-post" if s.step else "default",
            marker="x" if s.markers else None,
            **style,
        )
        if s.dot is not None:
            ax.plot(*s.dot, marker="o", markersize=6, color=style["color"])
    for ref in chart.refs:
        line = ax.axhline if ref.horizontal else ax.axvline
        line(ref.value, color=ref.color, linestyle=ref.dash, linewidth=1.2, label=ref.label)
    if chart.ylim is not None:
        ax.set_ylim(*chart.ylim)
    ax.set_xlim(*chart.xlim)
    ax.set_xlabel(chart.xlabel)
    ax.set_ylabel(chart.ylabel)
    ax.set_title(chart.title + (f"\n{chart.subtitle}" if chart.subtitle else ""))
    _legend(ax, len(chart.series), title=chart.legend_title)
    return fig


def draw_bars(chart: BarChart):
    """A matplotlib Figure of a `BarChart`."""
    fig, ax = _figure(8.0, 1.2 + 0.45 * len(chart.labels))
    y = np.arange(len(chart.labels))
    values = chart.values
    ax.barh(y, values, color=[color(s) for s in chart.styles], alpha=0.85)
    if chart.lo is not None and chart.hi is not None:
        err = np.vstack([values - chart.lo, chart.hi - values]).clip(min=0)
        ax.errorbar(values, y, xerr=err, fmt="none", ecolor="black", capsize=4, linewidth=1.2)
    for yi, v in zip(y, values):
        ax.text(min(v, 1.0) + 0.01, yi + 0.18, f"{v:.4f}", va="bottom", fontsize="small")
    ax.set_yticks(y, list(chart.labels))
    ax.set_xlim(*chart.xlim)
    ax.set_xlabel(chart.xlabel)
    ax.set_title(chart.title)
    return fig


def render(chart: LineChart | BarChart, stem: Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Save one chart as `stem`.<format> for each format; returns the paths."""
    fig = draw_bars(chart) if isinstance(chart, BarChart) else draw_line(chart)
    return _save(fig, Path(stem), formats)


def _render_many(jobs: list[tuple[LineChart | BarChart, Path]], formats: Sequence[str]):
    return [render(chart, stem, formats) for chart, stem in jobs]


def _workers(n_charts: int) -> int:
    return max(1, min(_parallel.cpus(), n_charts // 2))


def plot_all(
    result: ScoringResult,
    directory: str | os.PathLike,
    formats: Sequence[str] = FORMATS,
    workers: int | None = None,
) -> dict[str, list[Path]]:
    """All charts of `result` as static files in `directory`; returns name -> written files.

    Args:
        workers: processes to render in (None: one per CPU, at most one per two charts;
            1: in this process).
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    specs = chart_specs(result)
    names = list(specs)
    n = _workers(len(names)) if workers is None else max(1, workers)
    if n == 1:
        paths = _render_many([(specs[k], out / k) for k in names], formats)
        return dict(zip(names, paths))
    # Charts dealt round-robin: curve charts cost about the same, so the shares are even.
    chunks = [names[i::n] for i in range(n)]
    with _parallel.pool(n) as pool:
        futures = [
            pool.submit(_render_many, [(specs[k], out / k) for k in chunk], formats)
            for chunk in chunks
        ]
        done = {k: p for chunk, f in zip(chunks, futures) for k, p in zip(chunk, f.result())}
    return {k: done[k] for k in names}
