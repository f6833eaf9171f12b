"""The scoring package never imports jax or torch, and its public API is importable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CHECK = """
import sys
import scoring
from scoring import (api, browser, charts, cli, logs, plots, profiles, report, stats,
                     targets, time_to_target)
assert callable(scoring.score_submissions) and callable(scoring.write_outputs)
for name in scoring.__all__:
    getattr(scoring, name)
if len(sys.argv) > 1:
    code = cli.main(["--submission_directory", sys.argv[1], "--output_dir", sys.argv[2],
                     "--self_tuning_ruleset", "--workloads=ogbg", "--bootstrap_samples=10",
                     "--static_plots"])
    assert code == 0, code
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("jax", "jaxlib", "torch", "flax"))
assert not bad, bad
print("ok")
"""


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", CHECK, *args], cwd=REPO, capture_output=True, text=True
    )


def test_import_does_not_load_frameworks():
    proc = _run()
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_scoring_with_plots_does_not_load_frameworks(v06_logs, tmp_path):
    logs = v06_logs / "self_tuning"
    if not logs.is_dir():
        pytest.skip("no self-tuning fixture logs")
    proc = _run(str(logs), str(tmp_path / "out"))
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr
    assert (tmp_path / "out" / "plots" / "curves_ogbg.png").is_file()
