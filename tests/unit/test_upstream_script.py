"""`scripts/run_upstream_submissions.py`: discovery, framework detection and the table."""

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _script():
    path = REPO / "scripts" / "run_upstream_submissions.py"
    spec = importlib.util.spec_from_file_location("run_upstream_submissions", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_finds_submissions_but_not_vendored_tests(tmp_path):
    script = _script()
    good = tmp_path / "leaderboard" / "external_tuning" / "a" / "submission.py"
    vendored = (
        tmp_path / "leaderboard" / "external_tuning" / "a" / "opt" / "tests" / "submission.py"
    )
    helper = tmp_path / "self_tuning" / "b" / "submission.py"
    for path, text in ((good, "def update_params(): ..."), (vendored, "def update_params(): ...")):
        path.parent.mkdir(parents=True)
        path.write_text(text)
    helper.parent.mkdir(parents=True)
    helper.write_text("x = 1\n")  # no update_params: not a submission
    assert script.find_submissions(tmp_path) == [good.relative_to(tmp_path)]


def test_framework_and_table():
    script = _script()
    assert script.framework_of("import torch.distributed.nn as dist_nn\n") == "pytorch"
    assert script.framework_of("import jax\n# a comment on torch\n") == "jax"
    rows = [
        {
            "submission": "a",
            "framework": "jax",
            "ruleset": "self",
            "layout": "pmap",
            "ran": True,
            "first": "2.1@20",
            "last": "1.2@40",
            "reason": "",
        },
        {
            "submission": "b",
            "framework": "pytorch",
            "ruleset": "external",
            "layout": "none",
            "ran": False,
            "first": "",
            "last": "",
            "reason": "SyntaxError: invalid syntax",
        },
    ]
    table = script.format_table(rows)
    assert "1 of 2 ran" in table
    assert "  b: SyntaxError: invalid syntax" in table
    assert table.splitlines()[1].split() == ["a", "jax", "self", "pmap", "yes", "2.1@20", "1.2@40"]
