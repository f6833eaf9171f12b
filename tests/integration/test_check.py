"""`algoperf check PATH`: passes good submissions, fails broken ones with a clear report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from algoperf import check
from algoperf.cli import main

REPO = Path(__file__).resolve().parents[2]
BASELINES = REPO / "submissions" / "baselines"
ADAM = Path(__file__).parent / "submissions" / "adam_pytorch.py"


@pytest.mark.parametrize("framework", ["jax", "pytorch"])
def test_baseline_passes(framework, capsys):
    path = BASELINES / "nadamw" / framework / "submission.py"
    assert main(["check", str(path), "--workloads=mnist"]) == 0
    out = capsys.readouterr().out
    assert f"({framework}, external tuning)" in out  # framework inferred from the imports
    assert "PASS  submission module" in out and "PASS  search space" in out
    assert "PASS  mnist: batch size 16 (smoke run at 8), 3 steps on synthetic data" in out
    assert out.rstrip().endswith("result: PASS (3 checks)")


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "submission.py").write_text(ADAM.read_text().replace(old, new))
    (folder / "tuning_search_space.json").write_text(
        json.dumps({"learning_rate": {"min": 1e-3, "max": 1e-2, "scaling": "log"}})
    )
    return folder


def test_exception_in_update_params_fails_naming_the_line(tmp_path, capsys):
    folder = _broken(
        tmp_path,
        '    opt = optimizer_state["optimizer"]\n',
        "    opt = optimizer_state[\"optimizer\"]\n    if global_step == 1:\n        raise KeyError('momentum')\n",
    )
    assert main(["check", str(folder), "--workloads=mnist,fashion_mnist"]) == 1
    out = capsys.readouterr().out
    assert (
        "FAIL  mnist: KeyError: 'momentum' (at submission.py:" in out and "in update_params)" in out
    )
    assert "FAIL  fashion_mnist" in out
    assert "result: FAIL (2 of 4 checks failed)" in out


def test_wrong_return_value_and_missing_function(tmp_path, capsys):
    folder = _broken(
        tmp_path,
        "    return optimizer_state, current_param_container, model_state\n",
        "    return current_param_container\n",
    )
    assert check.main([str(folder), "--workloads=mnist"]) == 1
    out = capsys.readouterr().out
    assert "update_params must return (optimizer_state, params, model_state)" in out

    missing = tmp_path / "missing.py"
    missing.write_text(ADAM.read_text().replace("def data_selection", "def select"))
    assert check.main([str(missing), "--workloads=mnist", "--framework=pytorch"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  submission module: missing required function `data_selection`" in out
    assert "mnist" not in out.split("submission module", 1)[1]  # nothing else was attempted


def test_search_space_problems(tmp_path, capsys):
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "submission.py").write_text(ADAM.read_text())
    assert check.main([str(folder), "--workloads=mnist"]) == 1
    assert "FAIL  search space: no tuning_search_space.json" in capsys.readouterr().out
    (folder / "tuning_search_space.json").write_text('{"learning_rate": {"min": 1e-3')
    assert check.main([str(folder), "--workloads=mnist"]) == 1
    assert "FAIL  search space" in capsys.readouterr().out
    # Self-tuning needs none (and this submission reads hyperparameters, so its smoke run fails).
    assert check.main([str(folder), "--workloads=mnist", "--tuning_ruleset=self"]) == 1
    assert "FAIL  mnist: AttributeError" in capsys.readouterr().out


def test_bad_input_exits_2(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nope.py")]) == 2
    assert "no such submission file" in capsys.readouterr().err
    assert main(["check", str(ADAM), "--workloads=mnits"]) == 2
    assert "mnits" in capsys.readouterr().err
    neither = tmp_path / "plain.py"
    neither.write_text(ADAM.read_text().replace("import torch", "import math"))
    assert main(["check", str(neither)]) == 2
    assert "pass --framework" in capsys.readouterr().err


def test_console_entry_point():
    run = [sys.executable, "-m", "algoperf.cli"]
    out = subprocess.run([*run, "check", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--workloads" in out.stdout
    usage = subprocess.run(run, capture_output=True, text=True, timeout=60).stdout
    assert "check      validate a submission" in usage
