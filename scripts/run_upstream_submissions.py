"""Run every submission of a mlcommons/submissions_algorithms checkout for a few steps; print a table.

Each submission runs unmodified, as a new user would: ``algoperf run`` in a fresh process whose
working directory is the checkout (so module paths, relative and repository-rooted imports
resolve as upstream resolves them), with its own ``tuning_search_space.json`` (external tuning,
first Halton point) or none (self-tuning), evaluating every ``steps // 2`` steps, with the
workload's budget lifted (``--max_runtime_sec``) so that a slow machine still runs every step.

    python scripts/run_upstream_submissions.py /tmp/submissions_algorithms \\
        --workload fashion_mnist --steps 40 --data_dir data

Columns: submission (folder in the checkout), framework, ruleset, layout (the JAX layout the run
record says was used: jit or pmap; ``none`` for PyTorch), ran (the trial finished), train loss at
the first and last eval row (with their steps), and for a failure its one-line reason (the
trial's ``failure.txt`` or the runner's error). ``--json`` writes the rows too. Exit status 0.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_TORCH = re.compile(r"^\s*(import torch|from torch)\b", re.M)


def find_submissions(checkout: Path) -> list[Path]:
    """Every ``submission.py`` defining ``update_params`` (vendored tests/examples excluded)."""
    found = []
    for path in sorted(checkout.rglob("submission.py")):
        rel = path.relative_to(checkout)
        if any(part in ("tests", "examples", "__pycache__") for part in rel.parts):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if "def update_params" in text:
            found.append(rel)
    return found


def framework_of(source: str) -> str:
    return "pytorch" if _TORCH.search(source) else "jax"


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    for line in reversed(lines):  # the exception line, not the traceback's tail frame
        if re.match(r"^[\w.]*(Error|Exception|error:)", line) or line.startswith("error"):
            return line
    return lines[-1] if lines else ""


def run_one(
    checkout: Path, rel: Path, args: argparse.Namespace, exp_dir: Path, index: int
) -> dict[str, Any] | None:
    """Run one submission; its table row (None: filtered out by --framework)."""
    source = (checkout / rel).read_text(encoding="utf-8", errors="replace")
    framework = framework_of(source)
    external = "external_tuning" in rel.parts
    name = f"s{index:02d}"
    python = args.jax_python if framework == "jax" and args.jax_python else args.python
    if args.framework and framework != args.framework:
        return None
    argv = [
        python,
        "-m",
        "algoperf.cli",
        "run",
        f"--framework={framework}",
        f"--workload={args.workload}",
        f"--submission_path={rel}",
        f"--experiment_dir={exp_dir}",
        f"--experiment_name={name}",
        f"--data_dir={Path(args.data_dir).resolve()}",
        f"--max_global_steps={args.steps}",
        f"--eval_every_n_steps={max(1, args.steps // 2)}",
        f"--rng_seed={args.seed}",
        f"--max_runtime_sec={args.max_runtime_sec}",
        "--progress=false",
    ]
    space = checkout / rel.parent / "tuning_search_space.json"
    if external:
        argv += [f"--tuning_search_space={space}", "--num_tuning_trials=1"]
    else:
        argv += ["--tuning_ruleset=self"]
    row: dict[str, Any] = {
        "submission": str(rel.parent),
        "framework": framework,
        "ruleset": "external" if external else "self",
        "layout": "",
        "ran": False,
        "first": "",
        "last": "",
        "reason": "",
    }
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            argv, cwd=checkout, capture_output=True, text=True, timeout=args.timeout
        )
    except subprocess.TimeoutExpired:
        row["reason"] = f"timed out after {args.timeout}s"
        return row
    row["seconds"] = round(time.perf_counter() - start, 1)
    tdir = exp_dir / name / f"{args.workload}_{framework}" / "trial_1"
    return read_trial(row, tdir, proc.returncode, proc.stderr)


def read_trial(row: dict[str, Any], tdir: Path, returncode: int, stderr: str) -> dict[str, Any]:
    """Fill `row` from a trial directory (run record, status, eval rows, failure)."""
    record = _read_json(tdir / "run_record.json")
    row["layout"] = record.get("jax_layout", "")
    status = _read_json(tdir / "status.json").get("status", "")
    rows = _eval_rows(tdir / "eval_measurements.csv")
    if rows:
        row["first"] = f"{float(rows[0]['train/loss']):.4f}@{rows[0]['global_step']}"
        row["last"] = f"{float(rows[-1]['train/loss']):.4f}@{rows[-1]['global_step']}"
    row["ran"] = returncode == 0 and status == "finished"
    if not row["ran"]:
        failure = tdir / "failure.txt"
        text = failure.read_text() if failure.exists() else stderr
        line = _last_line(text)
        # The runner's one-line errors end with the cause: keep that part.
        row["reason"] = line.rsplit(" failed: ", 1)[-1][:300] or f"exit status {returncode}"
    return row


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _eval_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def format_table(rows: list[dict[str, Any]]) -> str:
    """A fixed-width table, one line per submission, failures' reasons below it."""
    cols = ["submission", "framework", "ruleset", "layout", "ran", "first", "last"]
    heads = ["submission", "framework", "ruleset", "layout", "ran", "train loss first", "last"]
    cells = [[("yes" if r[c] else "NO") if c == "ran" else str(r[c]) for c in cols] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(heads, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths)) for cell in cells]
    ok = sum(1 for r in rows if r["ran"])
    lines.append(f"\n{ok} of {len(rows)} ran")
    for r in rows:
        if not r["ran"]:
            lines.append(f"  {r['submission']}: {r['reason']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, help="a mlcommons/submissions_algorithms checkout")
    parser.add_argument("--workload", default="fashion_mnist")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--data_dir", default="data")
    parser.add_argument("--experiment_dir", default=None, help="default: a temporary folder")
    parser.add_argument("--python", default=sys.executable, help="interpreter of the harness")
    parser.add_argument(
        "--jax_python", default=None, help="interpreter for JAX submissions (e.g. .venv-jax07)"
    )
    parser.add_argument("--framework", choices=("jax", "pytorch"), default=None, help="only these")
    parser.add_argument("--only", default=None, help="regex on the submission folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max_runtime_sec",
        type=float,
        default=1e5,
        help="budget override (default: lifted, so a slow machine still runs --steps steps)",
    )
    parser.add_argument("--timeout", type=int, default=900, help="seconds per submission")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    checkout = args.checkout.resolve()
    # Absolute (runs start in the checkout) but not resolved: a venv's python is a symlink.
    args.python = os.path.abspath(args.python)
    args.jax_python = os.path.abspath(args.jax_python) if args.jax_python else None
    subs = find_submissions(checkout)
    if args.only:
        subs = [s for s in subs if re.search(args.only, str(s.parent))]
    if not subs:
        print(f"{checkout}: no submission.py defining update_params found", file=sys.stderr)
        return 2
    exp_dir = Path(args.experiment_dir or tempfile.mkdtemp(prefix="upstream_subs_")).resolve()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # small CPU models: threads only contend
    rows = []
    for i, rel in enumerate(subs):
        row = run_one(checkout, rel, args, exp_dir, i)
        if row is None:
            continue
        rows.append(row)
        if args.json:  # after every row: an interrupted sweep keeps what it measured
            args.json.write_text(json.dumps(rows, indent=1))
        print(
            f"[{i + 1}/{len(subs)}] {row['submission']}: "
            + ("ran" if row["ran"] else f"FAILED: {row['reason']}"),
            file=sys.stderr,
            flush=True,
        )
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
