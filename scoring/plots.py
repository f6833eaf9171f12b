"""Plots of a scoring result, saved as PNG and SVG.

Figures are built with `matplotlib.figure.Figure` directly (no pyplot, so no global backend or
figure state: safe inside notebooks and threads) and rendered by the Agg canvas.

* ``performance_profiles``: rho(tau) per submission, with scores in the legend.
* ``scores``: benchmark scores with bootstrap intervals.
* ``curves_<workload>``: validation metric against submission time, one curve per submission
  (its representative trial: the selected trial of its median study, or its best trial when it
  never reached the target), the target as a dashed line and the budget as a dotted one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from scoring.api import ScoringResult

FORMATS = ("png", "svg")
_LINESTYLES = ("-", "--", "-.", ":")


def _style(index: int) -> dict:
    from matplotlib import colormaps

    colors = colormaps["tab10"].colors
    return {
        "color": colors[index % len(colors)],
        "linestyle": _LINESTYLES[(index // len(colors)) % len(_LINESTYLES)],
    }


def _save(fig: Figure, stem: Path, formats: Sequence[str]) -> list[Path]:
    paths = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        tmp = path.with_name(path.name + ".tmp")
        fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight")
        os.replace(tmp, path)
        paths.append(path)
    return paths


def _new_figure(width: float = 9.0, height: float = 5.5) -> tuple[Figure, object]:
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


def _colors(submissions: Sequence[str]) -> dict[str, dict]:
    return {s: _style(i) for i, s in enumerate(sorted(submissions))}


def plot_performance_profiles(
    result: ScoringResult, stem: Path, formats: Sequence[str] = FORMATS
) -> list[Path]:
    """rho(tau) for every submission, best score first in the legend."""
    fig, ax = _new_figure()
    styles = _colors(result.settings["submissions"])
    order = result.scores["score"].sort_values(ascending=False, kind="stable").index
    taus = result.profiles.columns.to_numpy(np.float64)
    for sub in order:
        ax.plot(
            taus,
            result.profiles.loc[sub].to_numpy(),
            drawstyle="steps-post",
            linewidth=2,
            label=f"{sub} ({result.scores.loc[sub, 'score']:.4f})",
            **styles[sub],
        )
    n_base = len(result.settings["base_workloads"])
    ax.set_xlim(taus[0], taus[-1])
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(r"$\tau$: ratio of time to target to the fastest submission's")
    ax.set_ylabel(f"fraction of the {n_base} base workloads within $\\tau$")
    ax.set_title(
        f"Performance profiles (benchmark {result.settings['benchmark_version']}, "
        f"{result.settings['ruleset'].replace('_', ' ')})"
    )
    _legend(ax, len(order), title="submission (score)")
    return _save(fig, stem, formats)


def plot_scores(result: ScoringResult, stem: Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Horizontal bars of the scores with bootstrap intervals when available."""
    scores = result.scores.sort_values("score", kind="stable")
    fig, ax = _new_figure(8.0, 1.2 + 0.45 * len(scores))
    styles = _colors(result.settings["submissions"])
    y = np.arange(len(scores))
    values = scores["score"].to_numpy()
    ax.barh(y, values, color=[styles[s]["color"] for s in scores.index], alpha=0.85)
    if scores["ci_low"].notna().all():
        err = np.vstack([values - scores["ci_low"], scores["ci_high"] - values]).clip(min=0)
        ax.errorbar(values, y, xerr=err, fmt="none", ecolor="black", capsize=4, linewidth=1.2)
    for yi, v in zip(y, values):
        ax.text(min(v, 1.0) + 0.01, yi + 0.18, f"{v:.4f}", va="bottom", fontsize="small")
    ax.set_yticks(y, list(scores.index))
    ax.set_xlim(0, 1.08)
    ax.set_xlabel("benchmark score (area under the performance profile / 3)")
    level = f"{result.settings['confidence'] * 100:g}"
    samples = result.settings["bootstrap_samples"]
    suffix = f", {level}% bootstrap intervals over studies" if samples else ""
    ax.set_title(f"Benchmark scores{suffix}")
    return _save(fig, stem, formats)


def _time_unit(seconds: float) -> tuple[float, str]:
    if seconds >= 3 * 3600:
        return 3600.0, "h"
    if seconds >= 180:
        return 60.0, "min"
    return 1.0, "s"


def _ylimits(values: np.ndarray, target: float, maximize: bool) -> tuple[float, float] | None:
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
    return lo - pad, hi + pad


def plot_workload_curves(
    result: ScoringResult, workload: str, stem: Path, formats: Sequence[str] = FORMATS
) -> list[Path]:
    """Validation metric against submission time for one workload, one curve per submission."""
    target = result.targets.workloads[workload]
    rows = result.workloads[
        (result.workloads["workload"] == workload) & (result.workloads["representative_trial"] >= 0)
    ]
    evals = result.logs.evals
    styles = _colors(result.settings["submissions"])
    budget = result.targets.budget_sec(workload, result.settings["ruleset"] == "self_tuning")
    starts = np.searchsorted(evals["trial_id"].to_numpy(), rows["representative_trial"].to_numpy())
    curves = []
    for (_, row), start in zip(rows.iterrows(), starts):
        n = int(result.trials.loc[row["representative_trial"], "n_evals"])
        seg = evals.iloc[start : start + n]
        curves.append((row, seg["score"].to_numpy(), seg["metric"].to_numpy()))
    xmax = max([budget, *(float(np.nanmax(x)) for _, x, _ in curves if len(x))])
    scale, unit = _time_unit(xmax)
    fig, ax = _new_figure()
    values = [y for _, _, y in curves]
    limits = (
        _ylimits(np.concatenate(values), target.validation_target_value, target.maximize)
        if values
        else None
    )
    for row, x, y in curves:
        sub = row["submission"]
        t = row["time_to_target"]
        if np.isfinite(t):
            label = f"{sub} (median {t / scale:.3g} {unit})"
        else:
            label = f"{sub} (median: missed; best {row['best_metric']:.4g})"
        finite = y[np.isfinite(y)]
        if limits and finite.size and (finite.max() < limits[0] or finite.min() > limits[1]):
            label += ", off scale"  # zoomed on the target; say so rather than hide it silently
        few = len(x) <= 3  # a curve of one or two evals needs markers to be seen
        ax.plot(
            x / scale, y, linewidth=1.8, label=label, marker="x" if few else None, **styles[sub]
        )
        trial = result.trials.loc[row["representative_trial"]]
        if trial["reached"]:
            ax.plot(
                trial["time_to_target"] / scale,
                y[int(trial["hit_index"])],
                marker="o",
                markersize=6,
                color=styles[sub]["color"],
            )
    op = "≥" if target.maximize else "≤"
    ax.axhline(
        target.validation_target_value,
        color="black",
        linestyle="--",
        linewidth=1.2,
        label=f"target {op} {target.validation_target_value:g}",
    )
    ax.axvline(budget / scale, color="gray", linestyle=":", linewidth=1.2, label="budget")
    if limits:
        ax.set_ylim(*limits)
    ax.set_xlim(0, xmax * 1.02 / scale)
    ax.set_xlabel(f"submission time ({unit})")
    ax.set_ylabel(f"validation {target.target_metric_name}")
    ax.set_title(f"{workload}: median study's selected trial per submission (dot: target reached)")
    _legend(ax, len(curves))
    return _save(fig, stem, formats)


def plot_all(
    result: ScoringResult, directory: str | os.PathLike, formats: Sequence[str] = FORMATS
) -> dict[str, list[Path]]:
    """All plots into `directory`; returns plot name -> written files."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = {
        "performance_profiles": plot_performance_profiles(
            result, out / "performance_profiles", formats
        ),
        "scores": plot_scores(result, out / "scores", formats),
    }
    present = set(result.trials["workload"]) if len(result.trials) else set()
    for workload in result.settings["base_workloads"] + result.settings["held_out_workloads"]:
        if workload in present:
            written[f"curves_{workload}"] = plot_workload_curves(
                result, workload, out / f"curves_{workload}", formats
            )
    return written
