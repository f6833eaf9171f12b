"""``algoperf score`` / ``python -m scoring``: flags, outputs, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring.cli import main

REPO = Path(__file__).resolve().parents[2]


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_external_tuning_with_upstream_flag_forms(v06_logs, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, _ = _run(
        [
            f"--submission_directory={v06_logs / 'external_tuning'}",
            "--output_dir",
            out,
            "--compute_performance_profiles",
            "--strict=false",
            "--nostrict",
            "--self_tuning_ruleset=0",
            "--benchmark_version=0.6",
            "--bootstrap_samples=50",
            "--reference_submission=baseline",
            "--no_plots",
        ],
        capsys,
    )
    assert code == 0
    assert "shampoo     0.6244" in stdout and "baseline    0.4590" in stdout
    scores = pd.read_csv(out / "scores.csv", index_col=0)["score"]  # upstream's reading
    assert scores["shampoo"] == pytest.approx(0.624369, abs=1e-6)
    ttt = pd.read_csv(out / "time_to_targets.csv", index_col=0)
    assert list(ttt.columns) == sorted(ttt.columns) and len(ttt.columns) == 8
    assert np.isinf(ttt.loc["baseline", "imagenet_resnet"])
    profiles = pd.read_csv(out / "performance_profiles.csv", index_col=0)
    assert profiles.shape == (2, 100)
    assert float(profiles.columns[0]) == 1.0 and float(profiles.columns[-1]) == 4.0
    speedups = pd.read_csv(out / "speedups.csv")
    assert set(speedups["submission"]) == {"baseline", "shampoo"}
    for name in (
        "workload_results.csv",
        "study_results.csv",
        "trial_results.csv",
        "win_probabilities.csv",
        "completeness.csv",
        "issues.csv",
        "settings.json",
        "report.md",
        "report.html",
    ):
        assert (out / name).is_file(), name
    assert not (out / "plots").exists()
    report = (out / "report.md").read_text()
    assert "| shampoo | 0.6244 |" in report and "Steps to target" in report


def test_strict_fails_with_one_line(v06_logs, tmp_path, capsys):
    code, _, err = _run(
        [
            "--submission_directory",
            v06_logs / "external_tuning",
            "--output_dir",
            tmp_path,
            "--strict",
            "--no_plots",
            "--bootstrap_samples",
            "0",
        ],
        capsys,
    )
    assert code == 2
    assert err.startswith("error: --strict: baseline: imagenet_vit study_0 has 4 trials")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--submission_directory", "/no/such/dir"], "/no/such/dir: no such directory"),
        (["--output_dir", "x"], "--submission_directory is required"),
        (
            ["--submission_directory", ".", "--benchmark_version", "0.4"],
            "unknown benchmark version",
        ),
        (["--submission_directory", ".", "--bootstrap_samples", "-1"], "bootstrap_samples"),
        (["--submission_directory", ".", "--strict=maybe"], "expected true or false"),
        (["--submission_directory", ".", "--selection", "best"], "invalid choice"),
        (["--no_such_flag"], "unrecognized arguments"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:  # argparse errors exit; ours return
        code = main(argv if "--output_dir" in argv else [*argv, "--output_dir", str(tmp_path)])
        raise SystemExit(code)
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert message in err and err.startswith("error:") and err.count("\n") == 1


def test_unknown_reference_and_include(v06_logs, tmp_path, capsys):
    base = [
        "--submission_directory",
        v06_logs / "external_tuning",
        "--output_dir",
        tmp_path,
        "--no_plots",
        "--bootstrap_samples",
        "0",
    ]
    code, _, err = _run([*base, "--reference_submission", "adam"], capsys)
    assert code == 2 and "reference submission 'adam'" in err
    code, _, err = _run([*base, "--include_submissions", "adam,shampoo"], capsys)
    assert code == 2 and "no submission named adam" in err
    code, stdout, _ = _run([*base, "--exclude_submissions", "baseline"], capsys)
    # Alone, shampoo is the best wherever it reaches a target: 5 of 8 workloads.
    assert code == 0 and "shampoo     0.6250" in stdout


def test_save_and_load_results(v06_logs, tmp_path, capsys):
    first = [
        "--submission_directory",
        v06_logs / "external_tuning",
        "--output_dir",
        tmp_path,
        "--no_plots",
        "--save_results_to_filename",
        "results.pkl",
        "--bootstrap_samples=0",
    ]
    assert _run(first, capsys)[0] == 0
    before = (tmp_path / "scores.csv").read_text()
    (tmp_path / "scores.csv").unlink()
    second = [
        "--output_dir",
        tmp_path,
        "--no_plots",
        "--load_results_from_filename",
        "results.pkl",
        "--bootstrap_samples=0",
    ]
    assert _run(second, capsys)[0] == 0
    assert (tmp_path / "scores.csv").read_text() == before


def test_skip_bad_logs_and_dev_version(tmp_path, capsys):
    """The demo's path: development workloads, any number of studies and trials."""
    root = tmp_path / "logs"
    header = "global_step,score,total_duration,accumulated_eval_time,validation/accuracy"
    for sub, t in (("nadamw", 30.0), ("adamw", 45.0)):
        for k in (1, 2):
            d = root / sub / "study_0" / "fashion_mnist_jax" / f"trial_{k}"
            d.mkdir(parents=True)
            rows = [f"10,{t / 3},{t},1.0,0.5", f"20,{t * k},{t * k + 5},2.0,0.9"]
            (d / "eval_measurements.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    torn = root / "adamw" / "study_0" / "fashion_mnist_jax" / "trial_3" / "eval_measurements.csv"
    torn.parent.mkdir()
    torn.write_text(header + "\n10,1.0,2.0,1.0,0.")
    args = [
        "--submission_directory",
        root,
        "--output_dir",
        tmp_path / "out",
        "--benchmark_version=dev",
        "--no_plots",
        "--bootstrap_samples=20",
    ]
    code, _, err = _run(args, capsys)
    assert code == 2 and str(torn) in err and "truncated" in err
    code, _, err = _run([*args, "--skip_bad_logs"], capsys)
    assert code == 0, err
    assert "1 x bad_log" in err
    scores = pd.read_csv(tmp_path / "out" / "scores.csv", index_col=0)["score"]
    assert scores["nadamw"] == pytest.approx(1.0)
    assert 0 < scores["adamw"] < 1  # 1.5x slower on the only (fashion_mnist) workload
    settings = (tmp_path / "out" / "settings.json").read_text()
    assert '"fashion_mnist"' in settings and '"cifar"' not in settings


def test_charts_static_plots_and_self_contained_html(v06_logs, tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "out"
    code, stdout, err = _run(
        [
            "--submission_directory",
            v06_logs / "self_tuning",
            "--output_dir",
            out,
            "--self_tuning_ruleset",
            "--workloads=ogbg,wmt",
            "--bootstrap_samples=20",
            "--static_plots",
        ],
        capsys,
    )
    assert code == 0, err
    assert "tables, charts and report, static plots" in stdout
    expected = {"performance_profiles", "scores", "curves_ogbg", "curves_wmt"}
    # The report's charts (no plotting library) ...
    assert {p.stem for p in (out / "charts").glob("*.svg")} == expected
    # ... and, on request, matplotlib's PNG and SVG of the same charts, for papers.
    pngs = sorted((out / "plots").glob("*.png"))
    assert {p.stem for p in pngs} == expected
    for png in pngs:
        with Image.open(png) as im:
            assert im.size[0] >= 800 and im.size[1] >= 150
        assert png.with_suffix(".svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    html = (out / "report.html").read_text()
    assert html.count("<figure") == len(expected) and html.count("<svg") == len(expected)
    assert "http://" not in html.replace("http://www.w3.org", "") and "<link" not in html
    assert "src=" not in html  # nothing to fetch: the HTML is one file
    assert "charts/performance_profiles.svg" in (out / "report.md").read_text()


def test_python_dash_m_scoring_help():
    proc = subprocess.run(
        [sys.executable, "-m", "scoring", "--help"], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0
    for flag in (
        "--submission_directory",
        "--self_tuning_ruleset",
        "--benchmark_version",
        "--selection",
        "--skip_bad_logs",
        "--reference_submission",
        "--no_plots",
        "--static_plots",
    ):
        assert flag in proc.stdout
