"""How fast is scoring? Generates an upstream-format log tree of leaderboard size and times it.

The tree mimics the v0.5 leaderboard: 11 submissions x 5 studies x 14 workloads (8 base + 6
held-out) x 5 trials = 3,850 ``eval_measurements.csv`` files with upstream's columns for each
workload and an eval every ``eval_period_time_sec`` of the budget (about 70 MB). It goes to a
temporary directory that is deleted afterwards.

Timed, on the same tree in one run:

* ``ours (API)``: `scoring.score_submissions` in this process (read + score + 1,000 bootstrap
  replicates), the figure the speed goal refers to;
* ``ours (CLI)``: ``python -m scoring --no_plots`` in a fresh process (interpreter start, imports,
  CSV tables and reports included);
* ``upstream``: upstream's ``python -m scoring.score_submissions --compute_performance_profiles``
  from a checkout of the leaderboard repository, when ``--upstream`` (or the environment variable
  ``ALGOPERF_UPSTREAM_SCORING``) names one: a checkout folder holding ``scoring/``, or a git
  directory (its HEAD is extracted with ``git archive``). Upstream needs absl-py, pandas,
  matplotlib and tabulate importable by ``--upstream_python`` (default: this interpreter; extra
  paths can come through ``PYTHONPATH``). Its scores are compared with ours.

Usage::

    python benchmarks/scoring_speed.py [--upstream PATH] [--repeats 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
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


def generate_tree(root: Path, seed: int = 0) -> tuple[int, int]:
    """Write the log tree; returns (number of CSV files, total bytes)."""
    targets = load_targets("0.5")
    rng = np.random.default_rng(seed)
    workloads = list(targets.scored_workloads)
    n_files = n_bytes = 0
    for s in range(SUBMISSIONS):
        speed = rng.uniform(0.25, 0.9)  # when this submission typically reaches targets
        for study in range(STUDIES):
            for workload in workloads:
                t = targets.workloads[workload]
                base = t.base_workload
                budget = t.max_allowed_runtime_sec
                n_evals = max(2, int(budget / _EVAL_PERIOD[base]))
                columns = _columns(base)
                wdir = root / f"submission_{s:02d}" / f"study_{study}" / f"{workload}_jax"
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


def _time(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def _upstream_checkout(path: Path, tmp: Path) -> Path:
    if (path / "scoring" / "score_submissions.py").exists():
        return path
    if (path / "HEAD").exists() and (path / "objects").exists():
        dest = tmp / "upstream"
        dest.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(path), "archive", "HEAD", "scoring"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        return dest
    raise SystemExit(f"error: {path}: neither a checkout with scoring/ nor a git directory")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--upstream",
        type=Path,
        default=os.environ.get("ALGOPERF_UPSTREAM_SCORING"),
        help="upstream leaderboard repository (checkout or git dir) to time beside ours",
    )
    parser.add_argument("--upstream_python", default=sys.executable)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of ours")
    parser.add_argument("--upstream_repeats", type=int, default=1, help="timed runs of upstream")
    parser.add_argument("--keep", type=Path, help="write the tree here and keep it")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="scoring_speed_") as tmp_name:
        tmp = Path(tmp_name)
        root = args.keep or tmp / "logs"
        if root.exists():
            shutil.rmtree(root)
        start = time.perf_counter()
        n_files, n_bytes = generate_tree(root, args.seed)
        print(
            f"generated {n_files} eval CSVs, {n_bytes / 1e6:.1f} MB "
            f"({SUBMISSIONS} submissions x {STUDIES} studies x 14 workloads x {TRIALS} trials) "
            f"in {time.perf_counter() - start:.1f}s"
        )

        from scoring import score_submissions

        result = None

        def ours() -> None:
            nonlocal result
            result = score_submissions(root, benchmark_version="0.5", bootstrap_samples=1000)

        api = _time(ours, args.repeats)
        cli_out = tmp / "ours_out"
        cli_cmd = [
            sys.executable,
            "-m",
            "scoring",
            f"--submission_directory={root}",
            f"--output_dir={cli_out}",
            "--benchmark_version=0.5",
            "--no_plots",
        ]
        cli = _time(
            lambda: subprocess.run(cli_cmd, check=True, capture_output=True, cwd=REPO),
            args.repeats,
        )
        print(
            f"ours (API, read + score + 1000 bootstrap): median {statistics.median(api):.3f}s "
            f"(runs: {', '.join(f'{t:.3f}' for t in api)})"
        )
        print(
            f"ours (CLI, fresh process, tables + reports, no plots): median "
            f"{statistics.median(cli):.3f}s (runs: {', '.join(f'{t:.3f}' for t in cli)})"
        )

        if args.upstream:
            checkout = _upstream_checkout(Path(args.upstream), tmp)
            up_out = tmp / "upstream_out"
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(
                [str(checkout), *filter(None, [os.environ.get("PYTHONPATH")])]
            )
            cmd = [
                args.upstream_python,
                "-m",
                "scoring.score_submissions",
                f"--workload_targets={checkout / 'scoring' / 'workload_targets_v05.json'}",
                f"--submission_directory={root}",
                "--compute_performance_profiles",
                f"--output_dir={up_out}",
            ]

            def upstream() -> None:
                proc = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True)
                if proc.returncode != 0:
                    tail = proc.stderr.strip().splitlines()[-1:] or ["?"]
                    raise SystemExit(f"error: upstream scoring failed: {tail[0]}")

            up = _time(upstream, args.upstream_repeats)
            up_med, api_med, cli_med = (statistics.median(x) for x in (up, api, cli))
            print(
                f"upstream (score_submissions.py): median {up_med:.3f}s "
                f"(runs: {', '.join(f'{t:.3f}' for t in up)})"
            )
            print(f"speedup: {up_med / api_med:.1f}x (API), {up_med / cli_med:.1f}x (CLI)")
            theirs = pd.read_csv(up_out / "scores.csv", index_col=0)["score"]
            mine = result.scores["score"].reindex(theirs.index)
            diff = float(np.max(np.abs(mine - theirs)))
            print(f"max |score difference| vs upstream: {diff:.2e}")
            if diff > 1e-9:
                print(
                    "  (upstream breaks ties between trials reaching the target at the same eval "
                    "index in os.listdir order; ours takes the least time: see scoring/README.md)"
                )
            print("scores:", ", ".join(f"{s}={v:.4f}" for s, v in mine.sort_index().items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
