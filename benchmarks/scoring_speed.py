"""How fast is ``algoperf score`` as a user runs it? Fresh processes, alternating, against upstream.

Trees scored (``--trees``):

* ``fixtures``: the published v0.6 external-tuning logs in ``../shared/fixtures`` (skipped with a
  reason when absent), scored as benchmark version 0.6;
* ``generated``: an upstream-format tree the size and shape of the v0.5 leaderboard: 11
  submissions x 5 studies x 14 workloads (8 base + 6 held-out) x 5 trials = 3,850
  ``eval_measurements.csv`` with upstream's columns for each workload and an eval every
  ``eval_period_time_sec`` of the budget (about 76 MB), scored as version 0.5. ``--scale K``
  multiplies the submissions (K = 10: 110 submissions, 38,500 files) for the scale check;
* any ``--tree DIR@VERSION``, e.g. the published v0.5 logs from upstream's
  ``previous_leaderboards/algoperf_v05/logs/external_tuning@0.5``.

Commands, each a fresh process, run in turn (A B C A B C ...) ``--repeats`` times so that load
from other processes hits them alike:

* ``ours``: ``algoperf score`` with defaults (every table, interval, chart and the report);
* ``ours --no_plots``: the same without charts;
* ``upstream``: upstream's ``python -m scoring.score_submissions --compute_performance_profiles``
  when ``--upstream`` (or ``ALGOPERF_UPSTREAM_SCORING``) names mlcommons/submissions_algorithms,
  where the leaderboard's scoring code lives (``scoring/score_submissions.py`` with
  ``--workload_targets``): a checkout, its ``scoring/`` folder, or its git directory (HEAD's
  ``scoring/`` is extracted). mlcommons/algorithmic-efficiency's older ``scoring/`` needs its own
  ``algoperf`` package and cannot select v0.5 targets: it is refused with one line saying so.
  Skipped with a reason when not given. Upstream needs absl-py, pandas, matplotlib, scipy and
  tabulate importable by ``--upstream_python``.

Printed per tree: median and range of wall time, median CPU time (user + system, workers
included) and peak memory (max RSS) per command, the ratios upstream / ours of both times, and
the largest score difference between upstream and ours.

With ``--reading``, each tree's reading alone (``scoring.logs.read_logs``, fresh processes,
alternating) is also timed in one process against the default, which reads in one process per
CPU from ``PARALLEL_MIN_FILES`` (10,000) files on.

Usage::

    python benchmarks/scoring_speed.py [--upstream PATH] [--upstream_python PY] [--repeats 5]
        [--trees fixtures,generated] [--scale 1] [--keep DIR] [--tree DIR@VERSION] [--reading]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from scoring.targets import load_targets  # noqa: E402

# Metric columns per workload family, as upstream logs them (train/, validation/, test/ splits).
_METRICS = {
    "criteo1tb": ["loss"],
    "fastmri": ["loss", "ssim"],
    "imagenet_resnet": ["accuracy", "loss"],
    "imagenet_vit": ["accuracy", "loss"],
    "librispeech_conformer": ["ctc_loss", "wer"],
    "librispeech_deepspeech": ["ctc_loss", "wer"],
    "ogbg": ["accuracy", "loss", "mean_average_precision"],
    "wmt": ["accuracy", "bleu", "loss"],
}
_EVAL_PERIOD = {
    "criteo1tb": 120,
    "fastmri": 80,
    "imagenet_resnet": 510,
    "imagenet_vit": 420,
    "librispeech_conformer": 1440,
    "librispeech_deepspeech": 1440,
    "ogbg": 240,
    "wmt": 840,
}
SUBMISSIONS = 11
STUDIES = 5
TRIALS = 5


def _columns(base: str) -> list[str]:
    metric_cols = [
        f"{split}/{m}" for split in ("test", "train", "validation") for m in _METRICS[base]
    ]
    return sorted(
        [
            "accumulated_eval_time",
            "accumulated_logging_time",
            "accumulated_submission_time",
            "global_step",
            "preemption_count",
            "score",
            "total_duration",
            "test/num_examples",
            "validation/num_examples",
            *metric_cols,
        ]
    )


def generate_tree(root: Path, seed: int = 0, submissions: int = SUBMISSIONS) -> tuple[int, int]:
    """Write the log tree; returns (number of CSV files, total bytes)."""
    targets = load_targets("0.5")
    rng = np.random.default_rng(seed)
    workloads = list(targets.scored_workloads)
    n_files = n_bytes = 0
    for s in range(submissions):
        speed = rng.uniform(0.25, 0.9)  # when this submission typically reaches targets
        for study in range(STUDIES):
            for workload in workloads:
                t = targets.workloads[workload]
                base = t.base_workload
                budget = t.max_allowed_runtime_sec
                n_evals = max(2, int(budget / _EVAL_PERIOD[base]))
                columns = _columns(base)
                wdir = root / f"submission_{s:03d}" / f"study_{study}" / f"{workload}_jax"
                # Trials reach the target at distinct fractions of the budget (> 1: never), at
                # least two evals apart, so that no tie decides which trial a study selects.
                reaches = speed * (0.6 + 0.25 * rng.permutation(TRIALS))
                for trial in range(1, TRIALS + 1):
                    tdir = wdir / f"trial_{trial}"
                    tdir.mkdir(parents=True)
                    data = _trial_table(rng, columns, t, n_evals, budget, reaches[trial - 1])
                    text = data.to_csv(index=False, float_format=None)
                    (tdir / "eval_measurements.csv").write_text(text)
                    n_files += 1
                    n_bytes += len(text)
    return n_files, n_bytes


def _trial_table(rng, columns, target, n_evals, budget, reach) -> pd.DataFrame:
    # Evals about every eval period; jitter keeps trials' clocks distinct.
    score = np.cumsum(rng.uniform(0.8, 1.2, n_evals)) * (budget / n_evals)
    score[0] = rng.uniform(5, 60)
    progress = np.linspace(0.0, 1.0, n_evals)
    # The metric reaches the target at fraction `reach` of the evals (> 1: never).
    goal = target.validation_target_value
    scale = max(abs(goal), 1e-3)
    start = goal + (-0.8 if target.maximize else 2.0) * scale
    ramp = np.clip(progress / reach, 0.0, None)
    curve = goal + (start - goal) * np.clip(1 - ramp, 0, None) ** 2
    direction = 1.0 if target.maximize else -1.0
    curve = curve + direction * 0.02 * scale * np.clip(ramp - 1, 0, None)  # keeps improving
    curve = curve + rng.normal(0, 0.001 * scale, n_evals)
    data = {}
    for c in columns:
        if c in ("score", "accumulated_submission_time"):
            data[c] = score
        elif c == "global_step":
            data[c] = (progress * 100_000).astype(np.int64) + 1
        elif c == "preemption_count":
            data[c] = np.zeros(n_evals, dtype=np.int64)
        elif c.endswith("num_examples"):
            data[c] = np.full(n_evals, 50_000, dtype=np.int64)
        elif c == f"validation/{target.target_metric_name}":
            data[c] = curve
        elif c == "accumulated_eval_time":
            data[c] = np.cumsum(rng.uniform(10, 60, n_evals))
        elif c == "total_duration":
            data[c] = score + np.cumsum(rng.uniform(10, 60, n_evals)) + 100
        else:
            data[c] = rng.uniform(0, 1, n_evals)
    return pd.DataFrame(data, columns=columns)


FIXTURE_LOGS = (
    REPO.parent / "shared" / "fixtures" / "algoperf_v06_leaderboard_logs" / "external_tuning"
)


def _ours_command() -> list[str]:
    """``algoperf score`` as installed beside this interpreter (else through ``-m``)."""
    script = Path(sys.executable).parent / "algoperf"
    if script.exists():
        return [str(script), "score"]
    return [sys.executable, "-m", "algoperf.cli", "score"]


def _run(cmd: list[str], cwd: Path, env: dict | None = None) -> tuple[float, float, float]:
    """Run `cmd` to completion; returns (wall s, CPU s, peak RSS in MiB); fails loudly.

    CPU time is user + system of the process and the worker processes it waited for: on a
    shared machine it varies far less with other load than wall time does.
    """
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: chatty commands cannot block
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace").strip().splitlines()[-1:] or ["?"]
            raise SystemExit(f"error: {' '.join(cmd[:4])} ... failed: {tail[0]}")
    per_mb = 1024 * 1024 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes / KiB
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / per_mb


UPSTREAM_EXPECTED = (
    "--upstream expects mlcommons/submissions_algorithms (where the leaderboard's scoring code "
    "lives: scoring/score_submissions.py and scoring/config.py): a checkout, its scoring/ "
    "folder, or its git directory"
)


def _has(files: set[str], name: str) -> bool:
    return f"scoring/{name}" in files


def _upstream_kind(files: set[str], path: Path) -> None:
    """Fail with one line unless `files` (paths in the tree) are the leaderboard's scoring."""
    if _has(files, "score_submissions.py") and _has(files, "config.py"):
        return
    if _has(files, "score_submissions.py") or "algoperf/__init__.py" in files:
        raise SystemExit(
            f"error: {path}: this is mlcommons/algorithmic-efficiency, whose scoring/ reads its "
            "targets from its own algoperf package and has no --workload_targets; "
            + UPSTREAM_EXPECTED
        )
    raise SystemExit(f"error: {path}: no scoring/score_submissions.py; " + UPSTREAM_EXPECTED)


def upstream_checkout(path: Path, tmp: Path) -> Path:
    """The folder holding upstream's ``scoring/`` package, from what a user would give.

    Accepted: a checkout of mlcommons/submissions_algorithms, its ``scoring/`` folder, or its
    git directory (bare or ``.git``, whose HEAD's ``scoring/`` is extracted into `tmp`). A
    checkout of mlcommons/algorithmic-efficiency, or anything else, stops with one line naming
    what is expected.
    """
    path = path.expanduser()
    if not path.exists():
        raise SystemExit(f"error: {path}: no such file or directory; " + UPSTREAM_EXPECTED)
    if path.name == "scoring" and (path / "score_submissions.py").exists():
        path = path.parent
    git_dir = path if (path / "HEAD").is_file() and (path / "objects").is_dir() else None
    if (path / "scoring").is_dir() or git_dir is None:
        files = {
            f"{sub}/{f.name}"
            for sub in ("scoring", "algoperf")
            if (path / sub).is_dir()
            for f in (path / sub).iterdir()
        }
        _upstream_kind(files, path)
        return path
    listing = subprocess.run(
        ["git", "-C", str(git_dir), "ls-tree", "-r", "--name-only", "HEAD", "scoring", "algoperf"],
        capture_output=True,
        text=True,
    )
    if listing.returncode != 0:
        raise SystemExit(f"error: {path}: git cannot read HEAD; " + UPSTREAM_EXPECTED)
    _upstream_kind(set(listing.stdout.split()), path)
    dest = tmp / "upstream"
    dest.mkdir(exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(git_dir), "archive", "HEAD", "scoring"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def _upstream_targets(checkout: Path, version: str, tmp: Path) -> Path:
    """Upstream's targets file for `version`, with our version's base workloads.

    Upstream's current ``workload_targets.json`` (0.6) lists ``finewebedu_lm`` among the base
    workloads; the published v0.6 logs have none, and upstream then stops with a KeyError. The
    copy given to it keeps only the base workloads of our target set for the same version, which
    is how the v0.6 leaderboard was scored.
    """
    name = "workload_targets_v05.json" if version == "0.5" else "workload_targets.json"
    path = checkout / "scoring" / name
    if not path.exists():
        raise SystemExit(f"error: {path}: no upstream targets for version {version}")
    data = json.loads(path.read_text())
    ours = set(load_targets(version).base_workloads)
    if set(data["base_workloads"]) <= ours:
        return path
    data["base_workloads"] = [w for w in data["base_workloads"] if w in ours]
    copy = tmp / f"upstream_{name}"
    copy.write_text(json.dumps(data, indent=2))
    return copy


def _summary(times: list[float]) -> str:
    return (
        f"median {statistics.median(times):6.2f}s "
        f"(min {min(times):.2f}, max {max(times):.2f}, n={len(times)})"
    )


_READ = """
import sys
from scoring.logs import read_logs
from scoring.targets import load_targets
workers = None if sys.argv[3] == "default" else int(sys.argv[3])
logs = read_logs(sys.argv[1], load_targets(sys.argv[2]), workers=workers)
"""


def bench_reading(root: Path, version: str, repeats: int) -> dict[str, float]:
    """Reading alone (``read_logs``) in fresh processes: one process against the default.

    The default reads in one process per CPU from ``PARALLEL_MIN_FILES`` files on, so below it
    both are the same code; both run in turn, like the commands.
    """
    from scoring import _parallel
    from scoring.logs import PARALLEL_MIN_FILES

    n_files = sum(1 for _ in root.glob("*/*/*/*/eval_measurements.csv"))
    n_cpu = _parallel.cpus()
    k = n_cpu if n_files >= PARALLEL_MIN_FILES else 1
    default = f"default ({k} process{'es' if k > 1 else ''})"
    runs = {"1 process": "1", default: "default"}
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for label, workers in runs.items():
            w, c, _ = _run([sys.executable, "-c", _READ, str(root), version, workers], REPO)
            wall[label].append(w)
            cpu[label].append(c)
    print(f"  reading only ({n_files} files; parallel from {PARALLEL_MIN_FILES:,}):")
    for label in runs:
        print(f"    {label:<24} {_summary(wall[label])}, CPU {statistics.median(cpu[label]):.2f}s")
    med = {k: statistics.median(v) for k, v in wall.items()}
    print(f"    gain of the default: {med['1 process'] / med[default]:.2f}x (wall)")
    return med


def bench_tree(
    name: str, root: Path, version: str, args: argparse.Namespace, tmp: Path
) -> dict[str, float]:
    """Time every command on one tree, alternating; print and return the median times."""
    out = tmp / f"out_{name.replace(' ', '_').replace(',', '')}"
    base = [
        *_ours_command(),
        f"--submission_directory={root}",
        f"--benchmark_version={version}",
    ]
    commands: dict[str, tuple[list[str], dict | None, Path]] = {
        "ours": ([*base, f"--output_dir={out / 'ours'}"], None, REPO),
        "ours --no_plots": (
            [*base, f"--output_dir={out / 'ours_np'}", "--no_plots"],
            None,
            REPO,
        ),
    }
    if args.upstream:
        checkout = args.upstream_checkout
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(checkout), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        commands["upstream"] = (
            [
                args.upstream_python,
                "-m",
                "scoring.score_submissions",
                f"--workload_targets={_upstream_targets(checkout, version, tmp)}",
                f"--submission_directory={root}",
                "--compute_performance_profiles",
                f"--output_dir={out / 'upstream'}",
            ],
            env,
            checkout,
        )
    times: dict[str, list[float]] = {k: [] for k in commands}
    cpu: dict[str, list[float]] = {k: [] for k in commands}
    memory: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(args.repeats):
        for label, (cmd, env, cwd) in commands.items():
            wall, cpu_s, rss = _run(cmd, cwd, env)
            times[label].append(wall)
            cpu[label].append(cpu_s)
            memory[label].append(rss)
    print(f"[{name}] {root} (benchmark version {version}, {args.repeats} alternating runs each)")
    for label in commands:
        print(
            f"  {label:<16} {_summary(times[label])}, CPU {statistics.median(cpu[label]):.2f}s, "
            f"peak memory {max(memory[label]):.0f} MiB"
        )
    med = {k: statistics.median(v) for k, v in times.items()}
    if "upstream" in med:
        mcpu = {k: statistics.median(v) for k, v in cpu.items()}
        print(
            f"  speedup over upstream (wall): {med['upstream'] / med['ours']:.1f}x with every "
            f"output, {med['upstream'] / med['ours --no_plots']:.1f}x without plots"
        )
        print(
            f"  speedup over upstream (CPU):  {mcpu['upstream'] / mcpu['ours']:.1f}x with every "
            f"output, {mcpu['upstream'] / mcpu['ours --no_plots']:.1f}x without plots"
        )
        theirs = pd.read_csv(out / "upstream" / "scores.csv", index_col=0)["score"]
        mine = pd.read_csv(out / "ours" / "scores.csv", index_col=0)["score"]
        diff = float(np.max(np.abs(mine.reindex(theirs.index) - theirs)))
        same = sorted(mine.index) == sorted(theirs.index)
        print(f"  max |score difference| vs upstream: {diff:.2e} (same submissions: {same})")
    else:
        print("  upstream: skipped (no --upstream checkout given)")
    if args.reading:
        bench_reading(root, version, args.repeats)
    return med


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--upstream",
        type=Path,
        default=os.environ.get("ALGOPERF_UPSTREAM_SCORING"),
        help="mlcommons/submissions_algorithms (checkout, its scoring/ folder or its git "
        "directory; $ALGOPERF_UPSTREAM_SCORING) whose scoring to time beside ours",
    )
    parser.add_argument("--upstream_python", default=sys.executable)
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs per command")
    parser.add_argument("--trees", default="fixtures,generated", help="which trees to score")
    parser.add_argument("--scale", type=int, default=1, help="x the 11 generated submissions")
    parser.add_argument("--fixtures", type=Path, default=FIXTURE_LOGS, help="v0.6 logs")
    parser.add_argument("--keep", type=Path, help="write the generated tree here and keep it")
    parser.add_argument(
        "--tree",
        action="append",
        default=[],
        metavar="DIR@VERSION",
        help="also score this log tree as this benchmark version, e.g. the published v0.5 "
        "logs: previous_leaderboards/algoperf_v05/logs/external_tuning@0.5 (repeatable)",
    )
    parser.add_argument(
        "--reading",
        action="store_true",
        help="also time reading alone: one process against the default (parallel from "
        "PARALLEL_MIN_FILES files)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    trees = {t.strip() for t in args.trees.split(",") if t.strip()}
    if unknown := trees - {"fixtures", "generated"}:
        parser.error(f"unknown --trees {sorted(unknown)}")

    extra = []
    for spec in args.tree:
        path, sep, version = spec.rpartition("@")
        if not sep or not Path(path).is_dir():
            parser.error(f"--tree {spec!r}: expected an existing DIR@VERSION")
        extra.append((Path(path), version))

    with tempfile.TemporaryDirectory(prefix="scoring_speed_") as tmp_name:
        tmp = Path(tmp_name)
        if args.upstream:  # checked before any tree is generated or timed
            args.upstream_checkout = upstream_checkout(Path(args.upstream), tmp)
        for path, version in extra:
            bench_tree(path.name, path, version, args, tmp)
        if "fixtures" in trees:
            if args.fixtures.is_dir():
                bench_tree("v0.6 fixture logs", args.fixtures, "0.6", args, tmp)
            else:
                print(f"[v0.6 fixture logs] skipped: {args.fixtures} not found")
        if "generated" in trees:
            root = args.keep or tmp / "logs"
            subs = SUBMISSIONS * args.scale
            if root.exists() and any(root.iterdir()):
                n_files = sum(1 for _ in root.glob("*/*/*/*/eval_measurements.csv"))
                print(f"reusing {root}: {n_files} eval CSVs")
            else:
                start = time.perf_counter()
                n_files, n_bytes = generate_tree(root, args.seed, subs)
                print(
                    f"generated {n_files} eval CSVs, {n_bytes / 1e6:.1f} MB ({subs} submissions "
                    f"x {STUDIES} studies x 14 workloads x {TRIALS} trials) in "
                    f"{time.perf_counter() - start:.1f}s"
                )
            bench_tree(f"generated, {subs} submissions", root, "0.5", args, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
