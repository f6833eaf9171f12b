"""Scoring of AlgoPerf logs: upstream's leaderboard rules, faster, with uncertainty.

Pure Python on numpy/pandas (matplotlib only for static plots); never imports jax or torch.

Typical use::

    import scoring

    result = scoring.score_submissions("logs/external_tuning", benchmark_version="0.6")
    result.scores            # DataFrame: score, ci_low, ci_high, ... per submission
    result.time_to_targets   # DataFrame: submissions x workloads, seconds (inf = missed)
    scoring.write_outputs(result, "scoring_results")   # CSVs, charts, report.md/.html

Lower-level pieces: `read_logs` (IO), `score_logs` (math on parsed logs), the rule functions in
`scoring.time_to_target`, `scoring.profiles` and `scoring.stats`, and `load_targets`.
See ``scoring/README.md``.

Names are imported lazily, so that ``python -m scoring.<module>`` and the CLI start fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ScoringError": "scoring.api",
    "ScoringResult": "scoring.api",
    "score_logs": "scoring.api",
    "score_submissions": "scoring.api",
    "EvalLogs": "scoring.logs",
    "LogError": "scoring.logs",
    "LogIssue": "scoring.logs",
    "build_logs": "scoring.logs",
    "read_logs": "scoring.logs",
    "DEFAULT_VERSION": "scoring.targets",
    "VERSIONS": "scoring.targets",
    "TargetSet": "scoring.targets",
    "TargetsError": "scoring.targets",
    "load_targets": "scoring.targets",
    "write_outputs": "scoring.report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'scoring' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
