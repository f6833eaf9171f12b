"""The README's worked sweep example is what the code does.

The example ("Worked example: NAdamW on MNIST") shows a plan file, the commands and their output.
Here the plan is taken from the README verbatim, expanded, and dry-run: its job list, the header
line of `algoperf sweep run` and the `algoperf sweep status` table must read as the README shows
them, so a change to either side without the other fails.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from algoperf.cli import main
from algoperf.sweep import plan as plan_lib
from algoperf.sweep import state

REPO = Path(__file__).resolve().parents[2]
SECTION = "### Worked example: NAdamW on MNIST"


def _section() -> str:
    text = (REPO / "README.md").read_text()
    assert SECTION in text, f"README.md has no section {SECTION!r}"
    body = text.split(SECTION, 1)[1]
    return re.split(r"^#{2,4} ", body, maxsplit=1, flags=re.M)[0]


def _output_block(command: str) -> list[str]:
    """The lines after ``$ <command>`` in the section's text blocks, up to the next ``$``."""
    for block in re.findall(r"```text\n(.*?)```", _section(), re.S):
        lines = block.splitlines()
        if lines and lines[0] == f"$ {command}":
            return lines[1:]
    raise AssertionError(f"README worked example shows no output of `{command}`")


@pytest.fixture
def readme_plan(tmp_path: Path) -> Path:
    """The example's plan file, written where its relative paths reach this checkout."""
    m = re.search(r"cat > (\S+) <<'TOML'\n(.*?)\nTOML\n", _section(), re.S)
    assert m, "README worked example has no `cat > PLAN <<'TOML' ... TOML` block"
    (tmp_path / "submissions").symlink_to(REPO / "submissions")
    path = tmp_path / m.group(1)
    path.write_text(m.group(2) + "\n")
    return path


def test_readme_plan_expands_to_its_six_jobs(readme_plan):
    plan = plan_lib.load_plan(readme_plan)
    jobs = plan_lib.expand(plan)
    assert len(jobs) == 6
    assert (plan.num_studies, plan.num_tuning_trials, plan.granularity) == (3, 2, "trial")
    for job in jobs:
        assert Path(dict(a.split("=", 1) for a in job.run_argv)["--submission_path"]).is_file()
    ids = [f"nadamw/study_{s}/mnist_jax/trial_{t}" for s in range(3) for t in (1, 2)]
    assert [j.job_id for j in jobs] == ids
    shown = _output_block(f"algoperf sweep run {readme_plan.name}")
    assert sorted(re.findall(r"^  (\S+) \[done\]$", "\n".join(shown), re.M)) == ids


def test_readme_sweep_header_is_the_dry_runs(readme_plan, capsys):
    assert main(["sweep", "run", str(readme_plan), "--dry_run"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    shown = _output_block(f"algoperf sweep run {readme_plan.name}")[0]
    assert header == shown.replace("/path/to/", f"{readme_plan.parent}/")


def test_readme_status_table_is_the_codes(readme_plan):
    jobs = plan_lib.expand(plan_lib.load_plan(readme_plan))
    rows = [state.Row(j.job_id, j.trials[0], "done", "finished at step 2000") for j in jobs]
    assert state.format_table(rows).splitlines() == _output_block(
        f"algoperf sweep status {readme_plan.name}"
    )
    assert _output_block(f"algoperf sweep run {readme_plan.name}")[-1] == state.count_line(rows)
