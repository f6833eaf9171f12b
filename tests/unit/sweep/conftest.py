"""Plan files for the sweep unit tests (no data needed: nothing here trains)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
NADAMW = REPO / "submissions" / "baselines" / "nadamw"


@pytest.fixture
def make_plan(tmp_path: Path) -> Callable[..., Path]:
    """``make_plan(extra="", **top_level_values) -> path`` of a one-submission mnist plan."""

    def make(extra: str = "", **overrides: object) -> Path:
        values = {
            "name": '"unit"',
            "experiment_dir": '"exp"',
            "data_dir": '"data"',
            "workloads": '["mnist"]',
            "frameworks": '["pytorch"]',
            "num_studies": "3",
            "num_tuning_trials": "2",
            "granularity": '"trial"',
            # The inline-array spelling of [[submissions]] (the integration tests use tables).
            "submissions": (
                f'[{{name = "nadamw", path = "{NADAMW}/{{framework}}/submission.py", '
                f'tuning_search_space = "{NADAMW}/tuning_search_space.json"}}]'
            ),
        }
        values.update({k: str(v) for k, v in overrides.items()})
        text = "\n".join(f"{k} = {v}" for k, v in values.items()) + "\n" + extra
        path = tmp_path / "plan.toml"
        path.write_text(text + "\n")
        return path

    return make
