"""Writing a scoring result: CSV tables, charts, and a Markdown and a self-contained HTML report.

Files written into the output directory (each written to a temporary name, then renamed):

==============================  ==================================================================
``scores.csv``                  index ``submission``; ``score`` (upstream's benchmark score) first,
                                then bootstrap ``ci_low``, ``ci_high``, ``score_std``,
                                ``workloads_counted`` and, with a reference, speedup columns.
``time_to_targets.csv``         upstream's table: submissions x workloads, median time to target
                                in seconds of submission time, before the 4x rule (inf = missed).
``performance_profiles.csv``    submissions x tau (100 points from 1 to 4): rho(tau).
``workload_results.csv``        one row per (submission, workload): times on both clocks, steps,
                                intervals, scored time after the rules, ratio, counts, eval share.
``study_results.csv``           one row per study: the selected trial and its times.
``trial_results.csv``           one row per trial.
``win_probabilities.csv``       P[row scores higher than column] under the bootstrap.
``speedups.csv``                per-workload speedups over the reference submission (if any).
``completeness.csv``            studies and trials found against the version's protocol.
``issues.csv``                  missing, skipped and unscored logs.
``settings.json``               options, version, workloads.
``charts/*.svg``                the report's charts (see `scoring.charts`), unless ``plots=False``.
``plots/*.png``, ``*.svg``      static matplotlib plots, only with ``static_plots=True``.
``report.md``, ``report.html``  the tables and charts; the HTML inlines the SVGs and needs no
                                other file.
==============================  ==================================================================
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from scoring.api import ScoringResult
from scoring.charts import TOGGLE_SCRIPT, chart_specs, render_svg


def _write_text(path: Path, text: str) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _write_csv(path: Path, df: pd.DataFrame, index: bool = True) -> Path:
    return _write_text(path, df.to_csv(index=index))


def write_tables(result: ScoringResult, output_dir: str | os.PathLike) -> list[Path]:
    """Write the CSV tables and settings.json; returns the written paths."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [
        _write_csv(out / "scores.csv", result.scores),
        _write_csv(out / "time_to_targets.csv", result.time_to_targets),
        _write_csv(out / "performance_profiles.csv", result.profiles),
        _write_csv(out / "workload_results.csv", result.workloads, index=False),
        _write_csv(out / "study_results.csv", result.studies, index=False),
        _write_csv(out / "trial_results.csv", result.trials),
        _write_csv(out / "win_probabilities.csv", result.win_probabilities),
        _write_csv(out / "completeness.csv", result.completeness, index=False),
        _write_csv(
            out / "issues.csv",
            pd.DataFrame(
                [dataclasses.asdict(i) for i in result.issues], columns=["kind", "path", "message"]
            ),
            index=False,
        ),
        _write_text(out / "settings.json", json.dumps(result.settings, indent=2) + "\n"),
    ]
    if result.speedups is not None:
        written.append(_write_csv(out / "speedups.csv", result.speedups, index=False))
    return written


# ------------------------------------------------------------------------------------------------
# Report.


def _fmt_time(seconds: float) -> str:
    if np.isnan(seconds):
        return "no logs"
    if np.isinf(seconds):
        return "missed"
    return f"{seconds:,.0f}"


def _fmt_steps(steps: float) -> str:
    if np.isnan(steps):
        return "n/a"
    if np.isinf(steps):
        return "missed"
    return f"{steps:,.0f}"


def _scores_table(result: ScoringResult) -> pd.DataFrame:
    s = result.scores.sort_values("score", ascending=False, kind="stable")
    table = pd.DataFrame(index=s.index)
    table["score"] = s["score"].map(lambda v: f"{v:.4f}")
    if s["ci_low"].notna().all():
        level = f"{result.settings['confidence'] * 100:g}%"
        table[f"{level} interval"] = [
            f"[{lo:.3f}, {hi:.3f}]" for lo, hi in zip(s["ci_low"], s["ci_high"])
        ]
    n_base = len(result.settings["base_workloads"])
    table["workloads within 4x"] = s["workloads_counted"].map(lambda v: f"{v}/{n_base}")
    if "speedup_gmean" in s:
        ref = result.settings["reference_submission"]
        table[f"speedup vs {ref} (geo. mean)"] = s["speedup_gmean"].map(lambda v: f"{v:.3f}x")
    return table


def _wide(result: ScoringResult, column: str, fmt) -> pd.DataFrame:
    order = result.scores.sort_values("score", ascending=False, kind="stable").index
    wide = result.workloads.pivot(index="submission", columns="workload", values=column)
    workloads = [w for w in result.time_to_targets.columns if w in wide.columns]
    wide = wide.reindex(index=order, columns=workloads)
    return wide.apply(lambda col: col.map(fmt))


def _ci_table(result: ScoringResult) -> pd.DataFrame | None:
    if "time_ci_low" not in result.workloads:
        return None
    w = result.workloads.assign(
        cell=[
            f"{_fmt_time(t)} [{_fmt_time(lo)}, {_fmt_time(hi)}]" if np.isfinite(t) else _fmt_time(t)
            for t, lo, hi in zip(
                result.workloads["time_to_target"],
                result.workloads["time_ci_low"],
                result.workloads["time_ci_high"],
            )
        ]
    )
    order = result.scores.sort_values("score", ascending=False, kind="stable").index
    return w.pivot(index="submission", columns="workload", values="cell").reindex(
        index=order, columns=list(result.time_to_targets.columns)
    )


# Most workload columns one table of time +- interval cells shows: each cell is about 115 px
# wide, so 8 of them and a column of submission names fit a 1280 px window.
MAX_INTERVAL_COLUMNS = 8


def _column_groups(result: ScoringResult, columns: list[str]) -> list[tuple[str, list[str]]]:
    """`columns` split into tables that fit a 1280 px window: (title suffix, columns).

    Base and held-out workloads (v0.5) go in separate tables, and a group wider than
    `MAX_INTERVAL_COLUMNS` is cut into even parts.
    """
    held = set(result.settings["held_out_workloads"])
    kinds = [("base workloads", [c for c in columns if c not in held])]
    kinds.append(("held-out workloads", [c for c in columns if c in held]))
    kinds = [(name, cols) for name, cols in kinds if cols]
    groups = []
    for name, cols in kinds:
        parts = -(-len(cols) // MAX_INTERVAL_COLUMNS)
        size = -(-len(cols) // parts)
        for k in range(parts):
            label = name if len(kinds) > 1 else ""
            if parts > 1:
                label = f"{label}, " if label else ""
                label += f"part {k + 1} of {parts}"
            groups.append((f": {label}" if label else "", cols[k * size : (k + 1) * size]))
    return groups


def _sections(result: ScoringResult) -> list[tuple[str, str, pd.DataFrame | None]]:
    """(title, explanation, table) in report order."""
    st = result.settings
    sections: list[tuple[str, str, pd.DataFrame | None]] = [
        (
            "Scores",
            "Benchmark score: area under the performance profile for tau in [1, 4], divided by "
            "3 (1 = fastest on every base workload). Scores are relative to the submissions "
            "scored together. Intervals: bootstrap over studies.",
            _scores_table(result),
        ),
        (
            "Time to target (submission clock, s)",
            "Median over studies of the selected trial's submission time to the validation "
            "target, before the 4x rule. 'missed': at least half of the studies missed.",
            _wide(result, "time_to_target", _fmt_time),
        ),
    ]
    ci = _ci_table(result)
    if ci is not None and st["bootstrap_samples"]:
        for suffix, columns in _column_groups(result, list(ci.columns)):
            sections.append(
                (
                    f"Time to target with bootstrap intervals (s){suffix}",
                    f"{st['confidence'] * 100:g}% percentile intervals of the median over "
                    f"{st['bootstrap_samples']} resamples of studies.",
                    ci[columns],
                )
            )
    sections += [
        (
            "Time to target (wall clock, s)",
            "Total wall time (including evals, compilation and setup) at the same evals.",
            _wide(result, "wall_to_target", _fmt_time),
        ),
        (
            "Steps to target",
            "global_step at the same evals (median over studies).",
            _wide(result, "steps_to_target", _fmt_steps),
        ),
        (
            "Eval share of wall time",
            "Median over trials of accumulated eval time / total wall time at the last eval.",
            _wide(result, "eval_share", lambda v: "n/a" if np.isnan(v) else f"{v:.1%}"),
        ),
        (
            "Studies reaching the target",
            "Studies whose selected trial reached the target / studies found.",
            result.workloads.assign(
                cell=[
                    f"{a}/{b}"
                    for a, b in zip(
                        result.workloads["n_studies_reached"], result.workloads["n_studies"]
                    )
                ]
            )
            .pivot(index="submission", columns="workload", values="cell")
            .reindex(
                index=result.scores.sort_values("score", ascending=False, kind="stable").index,
                columns=list(result.time_to_targets.columns),
            ),
        ),
    ]
    if st["bootstrap_samples"] and len(st["submissions"]) > 1:
        sections.append(
            (
                "Win probabilities",
                "Probability that the row submission scores higher than the column submission "
                "when studies are resampled (ties count one half).",
                result.win_probabilities.apply(
                    lambda col: col.map(lambda v: "" if np.isnan(v) else f"{v:.2f}")
                ),
            )
        )
    if result.speedups is not None:
        sp = result.speedups.pivot(index="submission", columns="workload", values="speedup")
        sp = sp.apply(lambda col: col.map(lambda v: f"{v:.3f}x"))
        sp["geometric mean"] = result.speedup_summary["speedup_gmean"].map(lambda v: f"{v:.3f}x")
        sections.append(
            (
                f"Speedup over {st['reference_submission']}",
                "Reference time / submission time per base workload, without the 4x rule; a "
                "miss counts as the budget + 1 s (upstream's compute_speedups; upstream reports "
                "the inverse, time ratios).",
                sp,
            )
        )
    incomplete = result.completeness[~result.completeness["complete"]]
    if len(incomplete):
        sections.append(
            (
                "Incomplete logs",
                f"Expected {st['num_studies']} studies per workload"
                + (f" and {st['num_trials']} trials per study." if st["num_trials"] else "."),
                incomplete.set_index("submission")
                .drop(columns="complete")
                .rename(
                    columns={
                        "expected_studies": "expected studies",
                        "trials": "trials (all studies)",
                        "expected_trials": "expected trials per study",
                    }
                ),
            )
        )
    if result.issues:
        counts = pd.Series([i.kind for i in result.issues], name="kind").value_counts()
        sections.append(("Issues", "See issues.csv for every entry.", counts.to_frame()))
    return sections


def _settings_lines(result: ScoringResult) -> list[str]:
    st = result.settings
    held = ", ".join(st["held_out_workloads"]) or "none"
    return [
        f"benchmark version {st['benchmark_version']}, {st['ruleset'].replace('_', ' ')} ruleset",
        f"base workloads: {', '.join(st['base_workloads'])}; held-out: {held}",
        f"trial selection: {st['selection']}; strict: {st['strict']}; bootstrap samples: "
        f"{st['bootstrap_samples']} (seed {st['seed']})",
        f"submissions: {', '.join(st['submissions'])}",
    ]


Sections = list[tuple[str, str, "pd.DataFrame | None"]]


_SUMMARY_CHARTS = ("performance_profiles", "scores")
_CHARTS_NOTE = (
    "Hover a curve for its label; click a legend entry to hide or show its curve. Static "
    "PNG/SVG for papers: --static_plots."
)


def _chart_groups(charts: dict) -> list[tuple[int, str, list]]:
    """(after which section, heading, chart names): the summary charts follow the scores."""
    summary = [n for n in charts if n in _SUMMARY_CHARTS]
    curves = [n for n in charts if n not in _SUMMARY_CHARTS]
    groups = []
    if summary:
        groups.append((0, "Performance profiles and scores", summary))
    if curves:
        groups.append((-1, "Training curves", curves))
    return groups


def render_markdown(
    result: ScoringResult, charts: dict[str, Path], base: Path, sections: Sections | None = None
) -> str:
    """The Markdown report; chart files are referenced relative to `base`."""
    lines = ["# AlgoPerf scoring report", ""]
    lines += [f"- {line}" for line in _settings_lines(result)] + [""]
    sections = _sections(result) if sections is None else sections
    groups = _chart_groups(charts)

    def add_charts(after: int) -> None:
        for where, heading, names in groups:
            if where == after:
                lines.extend([f"## {heading}", ""])
                for name in names:
                    lines.extend([f"![{name}]({charts[name].relative_to(base).as_posix()})", ""])

    for k, (title, text, table) in enumerate(sections):
        lines += [f"## {title}", "", text, ""]
        if table is not None:
            lines += [_markdown_table(table), ""]
        add_charts(k)
    add_charts(-1)
    return "\n".join(lines)


def _markdown_table(df: pd.DataFrame) -> str:
    index_name = df.index.name or ""
    header = [index_name, *map(str, df.columns)]
    rows = [[str(i), *(str(v) for v in row)] for i, row in zip(df.index, df.to_numpy())]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def _cell(value: object) -> str:
    """Escaped cell text; an interval goes on its own line, names may break after '_'."""
    return html.escape(str(value)).replace(" [", "<br>[").replace("_", "_<wbr>")


def _html_table(df: pd.DataFrame) -> str:
    """A plain HTML table (pandas' to_html is slow and adds styling we do not want).

    A submissions x submissions table (win probabilities) writes its column headers sideways:
    eleven long names across would not fit a 1280 px window.
    """
    square = len(df.columns) > 1 and list(df.columns) == list(df.index)
    head = "".join(f"<th>{_cell(c)}</th>" for c in [df.index.name or "", *df.columns])
    rows = "".join(
        f"<tr><th>{_cell(i)}</th>" + "".join(f"<td>{_cell(v)}</td>" for v in row)
        for i, row in zip(df.index, df.to_numpy())
    )
    table = '<table class="sideways">' if square else "<table>"
    return f'<div class="table">{table}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1320px; padding: 0 1em;
       color: #222; }
.table { overflow-x: auto; max-width: 100%; margin: 0.5em 0 1.5em; }
table { border-collapse: collapse; font-size: 0.78em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.35em; text-align: right; white-space: nowrap; }
thead th { background: #f3f3f3; white-space: normal; word-break: normal; overflow-wrap: normal;
           vertical-align: bottom; min-width: 3.5em; }
table.sideways thead th + th { writing-mode: sideways-lr; white-space: nowrap; min-width: 0;
                              text-align: left; vertical-align: bottom; }
tbody th { text-align: left; font-weight: 600; background: #fafafa; white-space: normal;
           word-break: normal; overflow-wrap: normal; min-width: 14em; }
figure { margin: 0.5em 0 2em; }
figure svg { display: block; max-width: 100%; height: auto; }
.note { color: #555; }
"""


def render_html(
    result: ScoringResult, charts: dict[str, str], sections: Sections | None = None
) -> str:
    """The self-contained HTML report: tables and inline SVG charts (no external files)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>AlgoPerf scoring report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>AlgoPerf scoring report</h1><ul>",
        *(f"<li>{html.escape(line)}</li>" for line in _settings_lines(result)),
        "</ul>",
    ]
    sections = _sections(result) if sections is None else sections
    groups = _chart_groups(charts)

    def add_charts(after: int) -> None:
        for where, heading, names in groups:
            if where == after:
                parts.append(f"<h2>{html.escape(heading)}</h2>")
                parts.append(f'<p class="note">{html.escape(_CHARTS_NOTE)}</p>')
                for name in names:
                    parts.append(f'<figure id="{html.escape(name)}">{charts[name]}</figure>')

    for k, (title, text, table) in enumerate(sections):
        parts += [f"<h2>{html.escape(title)}</h2>", f'<p class="note">{html.escape(text)}</p>']
        if table is not None:
            parts.append(_html_table(table))
        add_charts(k)
    add_charts(-1)
    if charts:
        parts.append(f"<script>{TOGGLE_SCRIPT}</script>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_outputs(
    result: ScoringResult,
    output_dir: str | os.PathLike,
    plots: bool = True,
    static_plots: bool = False,
    formats: Sequence[str] = ("png", "svg"),
) -> list[Path]:
    """Write tables, charts and the Markdown and HTML reports; returns the written paths.

    Args:
        plots: the report's charts (inline SVG in report.html, ``charts/*.svg`` for
            report.md); False writes tables and reports only.
        static_plots: also matplotlib files ``plots/<chart>.<format>`` (for papers), rendered
            in worker processes.
        formats: formats of the static plots.
    """
    out = Path(output_dir)
    written = write_tables(result, out)
    svgs: dict[str, str] = {}
    chart_files: dict[str, Path] = {}
    if plots:
        specs = chart_specs(result)
        svgs = {name: render_svg(spec, name) for name, spec in specs.items()}
        (out / "charts").mkdir(exist_ok=True)
        for name, svg in svgs.items():
            chart_files[name] = _write_text(out / "charts" / f"{name}.svg", svg)
        written += chart_files.values()
    if static_plots:
        from scoring.plots import plot_all

        static = plot_all(result, out / "plots", formats)
        written += [p for paths in static.values() for p in paths]
    sections = _sections(result)  # the tables, formatted once for both reports
    written.append(
        _write_text(out / "report.md", render_markdown(result, chart_files, out, sections))
    )
    written.append(_write_text(out / "report.html", render_html(result, svgs, sections)))
    return written
