"""Submissions in the styles of the published AlgoPerf ones run end to end, imported as upstream.

The submissions are ours (`submissions/upstream_styles/`, see its README): v0.5 import names,
the pmap-era JAX layout (same numbers as the jit layout for the same update rule, on 1 and 2
host devices), a relative sibling import with a data file, an import rooted at a submissions
repository whose `submissions/` our own package must not shadow, and a vendored package whose
modules import each other top-level.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from algoperf.cli import main
from algoperf.runner import submission

REPO = Path(__file__).resolve().parents[2]
STYLES = Path(__file__).parent / "submissions" / "upstream_styles"
STEPS, EVERY = 6, 3
COMPARED = ("train/loss", "validation/loss", "validation/accuracy", "test/loss")


def _argv(framework, data_dir, exp, name, path, space=None, extra=()):
    ruleset = [f"--tuning_search_space={space}"] if space else ["--tuning_ruleset=self"]
    return [
        "run",
        f"--framework={framework}",
        "--workload=fashion_mnist",
        f"--submission_path={path}",
        *ruleset,
        f"--experiment_dir={exp}",
        f"--experiment_name={name}",
        f"--data_dir={data_dir}",
        "--rng_seed=5",
        f"--max_global_steps={STEPS}",
        f"--eval_every_n_steps={EVERY}",
        "--progress=false",
        *extra,
    ]


def _trial(exp: Path, name: str, framework: str = "jax") -> Path:
    return exp / name / f"fashion_mnist_{framework}" / "trial_1"


def _rows(tdir: Path) -> list[dict[str, str]]:
    with (tdir / "eval_measurements.csv").open() as f:
        return list(csv.DictReader(f))


def _record(tdir: Path) -> dict:
    return json.loads((tdir / "run_record.json").read_text())


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


@pytest.fixture
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


@pytest.fixture
def space(tmp_path) -> Path:
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"learning_rate": {"feasible_points": [0.05]}}))
    return path


def test_v05_import_names_pytorch(mnist_data_dir, tmp_path, space, in_repo):
    pytest.importorskip("torch")
    path = _rel(STYLES / "v05_names" / "submission.py")
    assert main(_argv("pytorch", mnist_data_dir, tmp_path, "v05", path, space)) == 0
    tdir = _trial(tmp_path, "v05", "pytorch")
    record = _record(tdir)
    assert record["jax_layout"] == "none"
    assert record["submission_import"]["module"] == path[:-3].replace("/", ".")
    rows = _rows(tdir)
    assert [r["global_step"] for r in rows] == ["3", "6"]


def test_sibling_import_and_data_file(mnist_data_dir, tmp_path, in_repo):
    path = _rel(STYLES / "sibling" / "submission.py")
    assert main(_argv("jax", mnist_data_dir, tmp_path, "sib", path)) == 0
    tdir = _trial(tmp_path, "sib")
    assert _record(tdir)["submission_import"]["mode"] == "module_path"
    assert float(_rows(tdir)[-1]["train/loss"]) < float(_rows(tdir)[0]["train/loss"]) + 1.0


def test_repository_rooted_import_is_not_shadowed_by_our_submissions(
    mnist_data_dir, tmp_path, monkeypatch
):
    # Laid out as mlcommons/submissions_algorithms is: submissions/ and self_tuning/ have no
    # __init__.py, while our installed `submissions` package is a regular package.
    repo = tmp_path / "their_repo"
    target = repo / "submissions" / "self_tuning" / "rooted"
    shutil.copytree(STYLES / "rooted", target, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.chdir(repo)
    path = "submissions/self_tuning/rooted/submission.py"
    assert main(_argv("jax", mnist_data_dir, tmp_path / "exp", "rooted", path)) == 0
    record = _record(_trial(tmp_path / "exp", "rooted"))
    assert record["submission_import"]["module"] == "submissions.self_tuning.rooted.submission"
    import submissions.baselines  # ours stays importable beside theirs

    assert Path(submissions.baselines.__file__).is_relative_to(REPO)


def test_vendored_package_with_top_level_sibling_imports(mnist_data_dir, tmp_path, in_repo):
    path = _rel(STYLES / "vendored" / "submission.py")
    assert main(_argv("jax", mnist_data_dir, tmp_path, "vend", path)) == 0
    # One file, one module: the isinstance check inside the vendored code passed, and both
    # names are the same object.
    assert sys.modules["vendor_types"] is sys.modules["vendor.vendor_types"]


def test_path_outside_the_working_directory_says_what_to_do(tmp_path, monkeypatch):
    outside = tmp_path / "elsewhere" / "sibling"
    shutil.copytree(STYLES / "sibling", outside, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.chdir(REPO)
    with pytest.raises(submission.SubmissionError) as info:
        submission.load_submission(outside / "submission.py")
    text = str(info.value)
    assert "outside the working directory" in text and "cd to the folder" in text
    assert "\n" not in text
    # From the folder that holds it, the same file imports.
    monkeypatch.chdir(outside.parent)
    module = submission.load_submission("sibling/submission.py")
    assert submission.import_record(module)["module"] == "sibling.submission"


def _pmap_vs_jit(data_dir, exp, space, extra=()) -> tuple[Path, Path]:
    pmap_path = _rel(STYLES / "pmap_sgd" / "submission.py")
    jit_path = _rel(STYLES / "jit_sgd" / "submission.py")
    assert main(_argv("jax", data_dir, exp, "pmap", pmap_path, space, extra)) == 0
    assert main(_argv("jax", data_dir, exp, "jit", jit_path, space, extra)) == 0
    return _trial(exp, "pmap"), _trial(exp, "jit")


def _assert_same_numbers(pmap_dir: Path, jit_dir: Path) -> None:
    assert _record(pmap_dir)["jax_layout"] == "pmap"
    assert _record(jit_dir)["jax_layout"] == "jit"
    rows, ref = _rows(pmap_dir), _rows(jit_dir)
    assert [r["global_step"] for r in rows] == [r["global_step"] for r in ref] == ["3", "6"]
    for r, s in zip(rows, ref):
        for key in COMPARED:
            assert float(r[key]) == pytest.approx(float(s[key]), rel=2e-5), key
    assert float(ref[-1]["train/loss"]) < float(ref[0]["train/loss"])  # it trained


def test_pmap_layout_matches_jit_layout_one_device(mnist_data_dir, tmp_path, space, in_repo):
    pmap_dir, jit_dir = _pmap_vs_jit(mnist_data_dir, tmp_path, space)
    _assert_same_numbers(pmap_dir, jit_dir)


@pytest.mark.multi_device
def test_pmap_layout_matches_jit_layout_two_devices(mnist_data_dir, tmp_path, space):
    code = (
        "import sys, json; from pathlib import Path; "
        "sys.path.insert(0, 'tests/integration'); import test_upstream_submissions as t; "
        "import jax; assert jax.device_count() == 2; "
        "p, j = t._pmap_vs_jit(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])); "
        "t._assert_same_numbers(p, j); print('SAME')"
    )
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(mnist_data_dir), str(tmp_path), str(space)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0 and "SAME" in out.stdout, out.stderr[-3000:]
    assert _record(_trial(tmp_path, "pmap"))["num_devices"] == 2


def test_layout_flag_forces_and_is_checked(mnist_data_dir, tmp_path, space, in_repo):
    from algoperf.frameworks import jax_pmap

    jit_mod = submission.load_submission(_rel(STYLES / "jit_sgd" / "submission.py"))
    pmap_mod = submission.load_submission(_rel(STYLES / "pmap_sgd" / "submission.py"))
    assert jax_pmap.resolve_layout("auto", "jax", pmap_mod) == "pmap"
    assert jax_pmap.resolve_layout("auto", "jax", jit_mod) == "jit"
    assert jax_pmap.resolve_layout("pmap", "jax", jit_mod) == "pmap"
    assert jax_pmap.resolve_layout("auto", "pytorch", pmap_mod) == "none"
    with pytest.raises(ValueError, match="framework=jax only"):
        jax_pmap.resolve_layout("pmap", "pytorch", jit_mod)
    # A pmap-era submission forced into the jit layout fails at its first step (the layout is
    # what it was written for), and the trial records the failure.
    path = _rel(STYLES / "pmap_sgd" / "submission.py")
    argv = _argv("jax", mnist_data_dir, tmp_path, "forced", path, space, ["--jax_layout=jit"])
    assert main(argv) == 1
    assert _record(_trial(tmp_path, "forced"))["jax_layout"] == "jit"


JAX07_PYTHON = REPO / ".venv-jax07" / "bin" / "python"


@pytest.mark.slow
def test_upstream_jax_pin_runs_both_layouts(mnist_data_dir, tmp_path, space):
    """Upstream's pinned JAX 0.7.0 (`make venv-jax07`) runs the harness in both layouts."""
    if not JAX07_PYTHON.exists():
        pytest.skip("no .venv-jax07 (create it with `make venv-jax07`)")
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, 'tests/integration'); "
        "import jax; assert jax.__version__ == '0.7.0', jax.__version__; "
        "import test_upstream_submissions as t; "
        "p, j = t._pmap_vs_jit(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])); "
        "t._assert_same_numbers(p, j); print('SAME')"
    )
    out = subprocess.run(
        [str(JAX07_PYTHON), "-c", code, str(mnist_data_dir), str(tmp_path), str(space)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0 and "SAME" in out.stdout, out.stderr[-3000:]
