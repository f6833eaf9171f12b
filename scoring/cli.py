"""``algoperf score`` / ``python -m scoring``: score a directory of AlgoPerf logs.

Accepts upstream's ``score_submissions.py`` flag names (``--flag value``, ``--flag=value``; boolean
flags also as ``--flag``, ``--noflag`` and ``--flag=true|false``) plus our own options. Upstream's
``--compute_performance_profiles`` is accepted and ignored: profiles and scores are always computed.

Exit status: 0 on success, 2 with a one-line ``error: ...`` on bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {message} (see --help)\n")


def _bool(value: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _add_bool(parser: argparse.ArgumentParser, name: str, help: str) -> None:
    dest = name.lstrip("-")
    parser.add_argument(
        name, nargs="?", const=True, default=False, type=_bool, metavar="BOOL", help=help
    )
    parser.add_argument(f"--no{dest}", dest=dest, action="store_false", help=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (upstream's flag names plus ours)."""
    from scoring.targets import DEFAULT_VERSION, VERSIONS

    p = _Parser(
        prog="algoperf score",
        description=(
            "Score AlgoPerf logs: time to target, performance profiles, benchmark scores with "
            "bootstrap intervals, tables, plots and a report. Reads "
            "<dir>/<submission>/study_<j>/<workload>_<framework>/trial_<k>/eval_measurements.csv."
        ),
    )
    up = p.add_argument_group("upstream-compatible options")
    up.add_argument(
        "--submission_directory",
        help="folder whose entries are submissions, or one submission folder (with study_*)",
    )
    up.add_argument("--output_dir", default="scoring_results", help="where outputs go")
    _add_bool(up, "--compute_performance_profiles", "accepted for compatibility; always on")
    _add_bool(
        up,
        "--strict",
        "fail unless every submission has every scored workload with the version's number "
        "of studies and (external tuning) trials per study",
    )
    _add_bool(up, "--self_tuning_ruleset", "score the self-tuning ruleset")
    up.add_argument("--exclude_submissions", default="", help="comma-separated names to skip")
    up.add_argument("--include_submissions", default="", help="comma-separated names to keep")
    up.add_argument(
        "--save_results_to_filename",
        help="save the parsed logs to this file (relative to --output_dir)",
    )
    up.add_argument(
        "--load_results_from_filename",
        help="load parsed logs (ours or upstream's pickle) from this file (relative to "
        "--output_dir) instead of reading --submission_directory; only load trusted files",
    )
    up.add_argument(
        "--workload_targets",
        help="a targets JSON file (ours or upstream's workload_targets*.json); overrides "
        "--benchmark_version",
    )
    ours = p.add_argument_group("additional options")
    ours.add_argument(
        "--benchmark_version",
        default=DEFAULT_VERSION,
        help=f"target set: {', '.join(VERSIONS)} (default {DEFAULT_VERSION})",
    )
    ours.add_argument(
        "--selection",
        choices=("upstream", "fastest"),
        default="upstream",
        help="per-study trial: upstream (reaches the target at the smallest eval index, as the "
        "leaderboard) or fastest (least time to target)",
    )
    _add_bool(ours, "--skip_bad_logs", "skip corrupt CSVs (reported) instead of failing")
    ours.add_argument("--reference_submission", help="report speedups over this submission")
    ours.add_argument(
        "--bootstrap_samples",
        type=int,
        default=1000,
        help="bootstrap resamples of studies for intervals and win probabilities (0: none)",
    )
    ours.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    ours.add_argument("--confidence", type=float, default=0.95, help="interval level")
    ours.add_argument(
        "--workloads",
        default="",
        help="comma-separated workloads to score instead of the version's base workloads",
    )
    _add_bool(ours, "--no_plots", "write tables and reports without charts")
    _add_bool(
        ours,
        "--static_plots",
        "also write static matplotlib plots (plots/*.png, *.svg) for papers; slower",
    )
    return p


def _summarise_issues(issues: list) -> None:
    if not issues:
        return
    counts = Counter(i.kind for i in issues)
    first = {}
    for i in issues:
        first.setdefault(i.kind, i)
    for kind, n in counts.items():
        example = first[kind]
        where = f" ({example.path})" if example.path else ""
        print(f"warning: {n} x {kind}: e.g. {example.message}{where}", file=sys.stderr)


def _print_summary(result, output_dir: Path | None, plots: bool, static: bool = False) -> None:
    import numpy as np

    scores = result.scores.sort_values("score", ascending=False, kind="stable")
    st = result.settings
    print(
        f"benchmark {st['benchmark_version']}, {st['ruleset'].replace('_', ' ')}, "
        f"selection {st['selection']}, {len(st['submissions'])} submission(s)"
    )
    width = max(len("submission"), *(len(s) for s in scores.index))
    print(f"{'submission':<{width}}  score   interval")
    for sub, row in scores.iterrows():
        ci = (
            f"[{row['ci_low']:.3f}, {row['ci_high']:.3f}]" if not np.isnan(row["ci_low"]) else "n/a"
        )
        print(f"{sub:<{width}}  {row['score']:.4f}  {ci}")
    if output_dir is not None:
        what = "tables, charts and report" if plots else "tables and report"
        if static:
            what += ", static plots"
        print(f"wrote {what} to {output_dir} (open {output_dir / 'report.html'})")


def main(argv: list[str] | None = None) -> int:
    """Run ``algoperf score``; returns the exit status."""
    args = build_parser().parse_args(argv)
    from scoring.api import ScoringError, score_logs
    from scoring.logs import LogError, load_logs, read_logs, save_logs, subset_logs
    from scoring.targets import TargetsError, load_targets

    try:
        if args.bootstrap_samples < 0:
            raise ScoringError("--bootstrap_samples must be >= 0")
        if not 0 < args.confidence < 1:
            raise ScoringError("--confidence must be between 0 and 1")
        targets = load_targets(args.workload_targets or args.benchmark_version)
        if args.workloads:
            targets = targets.with_base_workloads(
                tuple(w.strip() for w in args.workloads.split(",") if w.strip())
            )
        out = Path(args.output_dir)
        if args.load_results_from_filename:
            logs = load_logs(out / args.load_results_from_filename, targets)
            logs = subset_logs(logs, args.include_submissions, args.exclude_submissions)
        else:
            if not args.submission_directory:
                raise ScoringError(
                    "--submission_directory is required (or --load_results_from_filename)"
                )
            if not os.path.isdir(args.submission_directory):
                raise ScoringError(f"{args.submission_directory}: no such directory")
            logs = read_logs(
                args.submission_directory,
                targets,
                skip_bad_logs=args.skip_bad_logs,
                include=args.include_submissions,
                exclude=args.exclude_submissions,
            )
        out.mkdir(parents=True, exist_ok=True)
        if args.save_results_to_filename:
            save_logs(logs, out / args.save_results_to_filename)
        result = score_logs(
            logs,
            targets,
            self_tuning=args.self_tuning_ruleset,
            selection=args.selection,
            strict=args.strict,
            bootstrap_samples=args.bootstrap_samples,
            seed=args.seed,
            confidence=args.confidence,
            reference_submission=args.reference_submission,
        )
        from scoring.report import write_outputs

        write_outputs(result, out, plots=not args.no_plots, static_plots=args.static_plots)
    except (LogError, ScoringError, TargetsError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    _summarise_issues(result.issues)
    _print_summary(result, out, plots=not args.no_plots, static=args.static_plots)
    return 0


if __name__ == "__main__":
    sys.exit(main())
