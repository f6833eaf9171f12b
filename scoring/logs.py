"""Reading AlgoPerf log trees (ours and upstream's) into two flat tables.

Layout, as upstream's scoring reads it::

    <submission_directory>/<submission>/<study>/<workload>_<framework>/trial_<k>/eval_measurements.csv

* Each entry of the submission directory is a submission. A directory that itself holds
  ``study_<j>`` folders (and nothing else) is one submission, named after the directory.
* Experiment folders named ``<submission>-YYYY-MM-DD-HH-MM-SS`` beside ``<submission>`` are merged
  into it (upstream's timestamped experiment names); their studies and trials are pooled.
* Every sub-folder of a submission is a study; every ``<workload>_<framework>`` folder in a study is
  a workload (the framework suffix is stripped); every ``trial_<k>`` folder is a trial. Only
  ``eval_measurements.csv`` is read, and of it only the columns scoring needs: ``score`` (the
  submission clock), the target metric ``validation/<metric>``, and when present ``global_step``,
  ``total_duration`` (wall clock) and ``accumulated_eval_time``. Extra columns are ignored.
* Workloads that the chosen benchmark version does not score are listed as issues and not read.
* A trial folder without ``eval_measurements.csv`` is a missing trial (an issue, counted).
* A truncated or corrupt CSV (empty file, a last row without line end, a row with the wrong
  number of fields, a non-numeric value, a missing required column) raises `LogError` naming the file, or with ``skip_bad_logs`` is
  skipped and listed as an issue. A header-only file is a trial with no evals.

Speed: all files of one header are parsed in a single pandas call on their concatenated bytes
(per-file pandas overhead would dominate otherwise); files are validated with byte counts first,
and any group that fails to parse is re-parsed file by file to name the culprit.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import os
import pickle
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scoring import _parallel
from scoring.targets import TargetSet

EVAL_FILE = "eval_measurements.csv"
TIME_COLUMN = "score"
# CSV column -> our column name, read when present (NaN otherwise).
OPTIONAL_COLUMNS = {
    "global_step": "global_step",
    "total_duration": "wall_time",
    "accumulated_eval_time": "eval_time",
}
EVAL_COLUMNS = (
    "trial_id",
    "eval_index",
    "score",
    "global_step",
    "wall_time",
    "eval_time",
    "metric",
)
TRIAL_COLUMNS = (
    "submission",
    "workload",
    "framework",
    "study",
    "trial",
    "trial_number",
    "experiment",
    "path",
    "n_evals",
)

_TRIAL_DIR = re.compile(r"trial_(\d+)")
_FRAMEWORK_SUFFIX = re.compile(r"^(.*)_(jax|pytorch)$")
_TIMESTAMP_SUFFIX = re.compile(r"^(.*)-\d{4}(-\d{2}){5}$")
_STUDY_DIR = re.compile(r"study_\d+")
_PICKLE_FORMAT = "algoperf-scoring-logs/1"


class LogError(ValueError):
    """A log tree or file that cannot be scored; the message names the path and the fix."""


@dataclasses.dataclass(frozen=True)
class LogIssue:
    """Something incomplete or skipped in a log tree.

    Attributes:
        kind: ``bad_log`` (skipped corrupt CSV), ``missing_log`` (trial without CSV),
            ``unscored_workload`` (not part of the version), ``unknown_workload``,
            ``missing_workload``, ``missing_studies``, ``missing_trials``.
        path: the file or folder concerned ('' when not one path).
        message: one line for people.
        submission: the submission concerned ('' when none).
    """

    kind: str
    path: str
    message: str
    submission: str = ""


@dataclasses.dataclass
class EvalLogs:
    """All evals of all trials of a set of submissions.

    Attributes:
        trials: one row per trial, indexed by ``trial_id``: submission, workload (framework
            suffix stripped), framework, study, trial (folder name), trial_number, experiment
            (submission folder), path (of the CSV), n_evals.
        evals: one row per eval, sorted by trial_id then eval_index: trial_id, eval_index,
            score (submission clock, s), global_step, wall_time (total_duration, s), eval_time
            (accumulated_eval_time, s), metric (the workload's validation target metric).
        issues: what was missing or skipped.
        submissions: submission names in scoring order.
        benchmark_version: the target set the logs were read for (decides which metric column).
    """

    trials: pd.DataFrame
    evals: pd.DataFrame
    issues: list[LogIssue]
    submissions: list[str]
    benchmark_version: str


# ------------------------------------------------------------------------------------------------
# Finding submissions, studies, workloads and trials.


def _subdirs(path: str | os.PathLike) -> list[os.DirEntry]:
    try:
        with os.scandir(path) as it:
            entries = [e for e in it if not e.name.startswith(".") and e.is_dir()]
    except FileNotFoundError as e:
        raise LogError(f"{path}: no such directory") from e
    except NotADirectoryError as e:
        raise LogError(f"{path}: not a directory") from e
    return sorted(entries, key=lambda e: e.name)


def _split_list(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(",")
    return [v.strip() for v in value if v and v.strip()]


def discover_submissions(
    directory: str | os.PathLike,
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
) -> dict[str, list[Path]]:
    """Submission name -> its experiment folders, in name order.

    Args:
        directory: a folder of submissions, or one submission folder (holding only ``study_*``).
        include: only these submissions (comma-separated string or names); empty means all.
        exclude: skip these submissions.

    Raises:
        LogError: no submission found, an ambiguous folder, or an unknown included name.
    """
    root = Path(directory)
    entries = _subdirs(root)
    studies = [e for e in entries if _STUDY_DIR.fullmatch(e.name)]
    if studies:
        others = [e.name for e in entries if not _STUDY_DIR.fullmatch(e.name)]
        if others:
            raise LogError(
                f"{root}: ambiguous: holds study folders ({studies[0].name}, ...) and other "
                f"folders ({', '.join(others[:3])}); point at a folder of submissions or at one "
                "submission folder"
            )
        found = {root.resolve().name: [root]}
    else:
        names = {e.name for e in entries}
        found = {}
        for e in entries:
            m = _TIMESTAMP_SUFFIX.fullmatch(e.name)
            name = m.group(1) if m and m.group(1) in names else e.name
            found.setdefault(name, []).append(Path(e.path))
    if not found:
        raise LogError(f"{root}: no submission folders found")
    inc, exc = _split_list(include), set(_split_list(exclude))
    unknown = [n for n in inc if n not in found]
    if unknown:
        raise LogError(
            f"{root}: no submission named {', '.join(unknown)} (found: {', '.join(sorted(found))})"
        )
    return {
        name: sorted(dirs)
        for name, dirs in sorted(found.items())
        if name not in exc and (not inc or name in inc)
    }


@dataclasses.dataclass
class _TrialFile:
    key: tuple[Any, ...]
    path: str
    data: bytes = b""


def _walk(
    submissions: Mapping[str, Sequence[Path]], targets: TargetSet, issues: list[LogIssue]
) -> list[_TrialFile]:
    scored = set(targets.scored_workloads)
    files: list[_TrialFile] = []
    unscored: dict[tuple[str, str], str] = {}
    for submission, experiments in submissions.items():
        frameworks: dict[str, tuple[str, str]] = {}
        for exp_index, experiment in enumerate(experiments):
            for study in _subdirs(experiment):
                for wdir in _subdirs(study.path):
                    m = _FRAMEWORK_SUFFIX.fullmatch(wdir.name)
                    workload, framework = (m.group(1), m.group(2)) if m else (wdir.name, "")
                    if workload not in scored:
                        unscored.setdefault((submission, workload), wdir.path)
                        continue
                    trials = []
                    for tdir in _subdirs(wdir.path):
                        tm = _TRIAL_DIR.match(tdir.name)
                        if tm:
                            trials.append((int(tm.group(1)), tdir.name, tdir.path))
                    if not trials:
                        continue  # e.g. a folder holding only a console log
                    seen = frameworks.setdefault(workload, (framework, wdir.path))
                    if seen[0] != framework:
                        raise LogError(
                            f"{wdir.path}: workload {workload} of submission {submission} is "
                            f"logged in two frameworks (also {seen[1]}); score each framework "
                            "as its own submission"
                        )
                    for number, name, tpath in sorted(trials):
                        key = (
                            submission,
                            workload,
                            framework,
                            study.name,
                            name,
                            number,
                            str(experiment),
                            exp_index,
                        )
                        files.append(_TrialFile(key, os.path.join(tpath, EVAL_FILE)))
    for (submission, workload), path in unscored.items():
        kind = "unscored" if workload in targets.workloads else "unknown"
        issues.append(
            LogIssue(
                f"{kind}_workload",
                path,
                f"{submission}: {kind} workload {workload!r} in benchmark version "
                f"{targets.benchmark_version}: not scored",
                submission,
            )
        )
    return files


# ------------------------------------------------------------------------------------------------
# Parsing.


class _BadFileError(Exception):
    """One file's problem (message without the path)."""


def _split_header(data: bytes) -> tuple[bytes, bytes]:
    end = data.find(b"\n")
    if end < 0:
        return data + b"\n", b""
    return data[: end + 1], data[end + 1 :]


def _check_body(body: bytes, ncols: int) -> tuple[bytes, int]:
    """Validate a CSV body by byte counts; returns the body and its number of rows.

    AlgoPerf writers end every row with a line end, so a last row without one is a torn write
    (even with the right number of fields, its last number may be cut short).
    """
    if body and not body.endswith(b"\n"):
        raise _BadFileError("truncated: the last row has no line end (torn write)")
    nrows = body.count(b"\n")
    if body.count(b",") != nrows * (ncols - 1):
        raise _BadFileError(f"a row does not have {ncols} fields (torn or corrupt file)")
    return body, nrows


def _parse(header: bytes, bodies: list[bytes], usecols: list[str]) -> pd.DataFrame:
    buf = header + b"".join(bodies)
    try:
        df = pd.read_csv(
            io.BytesIO(buf),
            usecols=usecols,
            dtype=np.float64,
            skip_blank_lines=False,
            engine="c",
        )
    except (ValueError, pd.errors.ParserError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise _BadFileError(f"cannot parse as numbers ({first})") from e
    if np.isnan(df[TIME_COLUMN].to_numpy()).any():
        raise _BadFileError(f"empty or non-numeric '{TIME_COLUMN}' value")
    return df


def _header_columns(header: bytes) -> list[str]:
    text = header.decode("utf-8", "replace")
    if '"' in text:  # quoted names: let the CSV parser split them
        return [str(c) for c in pd.read_csv(io.StringIO(text), nrows=0).columns]
    return text.strip().split(",")


def _parse_all(
    files: list[_TrialFile], metric_columns: Mapping[str, str]
) -> tuple[list[int], list[int], dict[str, np.ndarray], dict[int, str]]:
    """Parse all files.

    Returns:
        (file indices parsed, their row counts, column arrays with the rows of those files
        concatenated in that order, {file index: why it is bad}).
    """
    bad: dict[int, str] = {}
    groups: dict[tuple[bytes, str], list[int]] = {}
    for i, f in enumerate(files):
        if not f.data.strip():
            bad[i] = "empty file"
            continue
        header, _ = _split_header(f.data)
        groups.setdefault((header, metric_columns[f.key[1]]), []).append(i)

    order: list[int] = []
    counts: list[int] = []
    frames: list[pd.DataFrame] = []
    for (header, metric), members in groups.items():
        columns = _header_columns(header)
        missing = [c for c in (TIME_COLUMN, metric) if c not in columns]
        if missing:
            for i in members:
                bad[i] = f"no column {', '.join(repr(c) for c in missing)} in the header"
            continue
        usecols = [TIME_COLUMN, metric, *(c for c in OPTIONAL_COLUMNS if c in columns)]
        checked: list[tuple[int, bytes, int]] = []
        for i in members:
            try:
                body, nrows = _check_body(_split_header(files[i].data)[1], len(columns))
            except _BadFileError as e:
                bad[i] = str(e)
                continue
            checked.append((i, body, nrows))
        if not checked:
            continue
        try:
            parts = [(_parse(header, [body for _, body, _ in checked], usecols), checked)]
        except _BadFileError:
            parts = []  # re-parse one by one to name the bad file(s)
            for item in checked:
                try:
                    parts.append((_parse(header, [item[1]], usecols), [item]))
                except _BadFileError as e:
                    bad[item[0]] = str(e)
        for df, items in parts:
            frames.append(df.rename(columns={metric: "metric", **OPTIONAL_COLUMNS}))
            order.extend(i for i, _, _ in items)
            counts.extend(n for _, _, n in items)

    arrays: dict[str, np.ndarray] = {}
    for c in ("score", "metric", *OPTIONAL_COLUMNS.values()):
        parts_c = [
            df[c].to_numpy(np.float64) if c in df.columns else np.full(len(df), np.nan)
            for df in frames
        ]
        arrays[c] = np.concatenate(parts_c) if parts_c else np.empty(0)
    return order, counts, arrays, bad


def _report_bad(
    files: list[_TrialFile], bad: dict[int, str], skip_bad_logs: bool, issues: list[LogIssue]
) -> None:
    """Raise for the first bad file, or list every one as a skipped trial."""
    for i, reason in sorted(bad.items()):
        path = files[i].path
        if not skip_bad_logs:
            raise LogError(
                f"{path}: {reason}; fix or delete the file, or pass --skip_bad_logs to skip it"
            )
        issues.append(LogIssue("bad_log", str(path), f"skipped: {reason}", files[i].key[0]))


# Files are read and parsed in chunks of at most this many (bounding memory: a chunk's bytes
# are freed once parsed), by one process per CPU from PARALLEL_MIN_FILES files on. Below it,
# starting the processes costs more than it saves: on the v0.5 leaderboard's 3,718 files two
# processes took 0.96-1.26 s against 0.66-0.82 s for one.
CHUNK_FILES = 1000
PARALLEL_MIN_FILES = 10_000


def _read_chunk(files: list[_TrialFile], metric_columns: dict[str, str]):
    """Read and parse `files` (in a worker process, or here): bytes never leave the worker."""
    issues: list[LogIssue] = []
    present = _read_bytes(files, issues)
    order, counts, arrays, bad = _parse_all(present, metric_columns)
    for f in present:
        f.data = b""
    return present, issues, order, counts, arrays, bad


def _read_parallel(files: list[_TrialFile], targets: TargetSet, workers: int | None):
    """`_read_chunk` over contiguous chunks of `files`, merged as if read in one piece."""
    n = _parallel.cpus() if workers is None else workers
    if workers is None and len(files) < PARALLEL_MIN_FILES:
        n = 1
    n_chunks = max(1, -(-len(files) // CHUNK_FILES), min(n, len(files)))
    bounds = np.linspace(0, len(files), n_chunks + 1).astype(int)
    chunks = [files[a:b] for a, b in itertools.pairwise(bounds)]
    metrics = {name: w.metric_column for name, w in targets.workloads.items()}  # picklable
    if n <= 1 or len(chunks) == 1:
        parts = [_read_chunk(chunk, metrics) for chunk in chunks]
    else:
        with _parallel.pool(n) as workers_pool:
            parts = list(workers_pool.map(_read_chunk, chunks, [metrics] * len(chunks)))
    present: list[_TrialFile] = []
    issues: list[LogIssue] = []
    order: list[int] = []
    counts: list[int] = []
    bad: dict[int, str] = {}
    arrays: dict[str, list[np.ndarray]] = {}
    for p_present, p_issues, p_order, p_counts, p_arrays, p_bad in parts:
        offset = len(present)
        present += p_present
        issues += p_issues
        order += [offset + i for i in p_order]
        counts += p_counts
        bad.update({offset + i: why for i, why in p_bad.items()})
        for c, v in p_arrays.items():
            arrays.setdefault(c, []).append(v)
    return present, issues, order, counts, {c: np.concatenate(v) for c, v in arrays.items()}, bad


def _read_bytes(files: list[_TrialFile], issues: list[LogIssue]) -> list[_TrialFile]:
    present = []
    for f in files:
        try:
            with open(f.path, "rb") as fh:
                f.data = fh.read()
        except FileNotFoundError:
            issues.append(
                LogIssue(
                    "missing_log",
                    os.path.dirname(f.path),
                    f"no {EVAL_FILE}: trial not counted",
                    f.key[0],
                )
            )
            continue
        present.append(f)
    return present


def _empty_logs(submissions: list[str], issues: list[LogIssue], version: str) -> EvalLogs:
    trials = pd.DataFrame({c: pd.Series(dtype=object) for c in TRIAL_COLUMNS})
    evals = pd.DataFrame({c: pd.Series(dtype=np.float64) for c in EVAL_COLUMNS})
    return EvalLogs(trials, evals, issues, submissions, version)


def build_logs(
    trial_keys: Sequence[Mapping[str, Any]],
    columns: Sequence[Mapping[str, np.ndarray]],
    submissions: Sequence[str],
    benchmark_version: str,
    issues: list[LogIssue] | None = None,
) -> EvalLogs:
    """Assemble `EvalLogs` from per-trial descriptions and per-trial column arrays.

    Args:
        trial_keys: per trial: submission, workload, study, trial and optionally framework,
            trial_number, experiment, path.
        columns: per trial: ``score`` and ``metric`` arrays (one entry per eval) and optionally
            ``global_step``, ``wall_time``, ``eval_time``.
        submissions: submission names in scoring order.
        benchmark_version: the target set the metric column was chosen for.
        issues: issues found while reading.
    """
    rows, arrays = [], {c: [] for c in EVAL_COLUMNS}
    for tid, (key, cols) in enumerate(zip(trial_keys, columns, strict=True)):
        n = len(cols["score"])
        trial = str(key["trial"])
        m = _TRIAL_DIR.match(trial)
        rows.append(
            {
                "submission": key["submission"],
                "workload": key["workload"],
                "framework": key.get("framework", ""),
                "study": str(key["study"]),
                "trial": trial,
                "trial_number": key.get("trial_number", int(m.group(1)) if m else tid),
                "experiment": key.get("experiment", ""),
                "path": key.get("path", ""),
                "n_evals": n,
            }
        )
        arrays["trial_id"].append(np.full(n, tid, dtype=np.int64))
        arrays["eval_index"].append(np.arange(n, dtype=np.int64))
        for c in EVAL_COLUMNS[2:]:
            v = cols.get(c)
            arrays[c].append(np.full(n, np.nan) if v is None else np.asarray(v, np.float64))
    if not rows:
        return _empty_logs(list(submissions), issues or [], benchmark_version)
    trials = pd.DataFrame(rows, columns=list(TRIAL_COLUMNS))
    trials.index.name = "trial_id"
    evals = pd.DataFrame({c: np.concatenate(v) for c, v in arrays.items()})
    return EvalLogs(trials, evals, issues or [], list(submissions), benchmark_version)


def read_logs(
    submission_directory: str | os.PathLike | Mapping[str, Sequence[str | os.PathLike]],
    targets: TargetSet,
    skip_bad_logs: bool = False,
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
    workers: int | None = None,
) -> EvalLogs:
    """Read every trial of every submission under a directory.

    Args:
        submission_directory: a folder of submissions, one submission folder, or a mapping
            submission name -> experiment folders.
        targets: the benchmark version's target set (which workloads, which metric column).
        skip_bad_logs: skip corrupt CSVs (listed as issues) instead of raising `LogError`.
        include / exclude: submission names to keep / drop (lists or comma-separated strings).
        workers: processes reading and parsing the files (None: one per CPU from
            `PARALLEL_MIN_FILES` files on, else 1). The result does not depend on it.

    Returns:
        `EvalLogs`; trials are ordered by submission, workload, study, experiment, trial number.
    """
    if isinstance(submission_directory, Mapping):
        subs = {k: [Path(p) for p in v] for k, v in submission_directory.items()}
    else:
        subs = discover_submissions(submission_directory, include, exclude)
    issues: list[LogIssue] = []
    walked = _walk(subs, targets, issues)
    files, read_issues, order, counts, arrays, bad = _read_parallel(walked, targets, workers)
    issues += read_issues
    _report_bad(files, bad, skip_bad_logs, issues)

    # Trial ids follow the scoring order (submission, workload, study, experiment, trial number).
    parsed = [files[i] for i in order]
    rank = sorted(
        range(len(parsed)),
        key=lambda j: (
            parsed[j].key[0],
            parsed[j].key[1],
            parsed[j].key[3],
            parsed[j].key[7],
            parsed[j].key[5],
            parsed[j].key[4],
        ),
    )
    trial_id = np.empty(len(parsed), dtype=np.int64)
    trial_id[rank] = np.arange(len(parsed))
    counts_arr = np.asarray(counts, dtype=np.int64)
    row_tid = np.repeat(trial_id, counts_arr)
    starts = np.concatenate([[0], np.cumsum(counts_arr)[:-1]]) if len(counts_arr) else counts_arr
    eval_index = np.arange(len(row_tid), dtype=np.int64) - np.repeat(starts, counts_arr)
    perm = np.argsort(row_tid, kind="stable")
    evals = pd.DataFrame(
        {
            "trial_id": row_tid[perm],
            "eval_index": eval_index[perm],
            **{c: arrays[c][perm] for c in EVAL_COLUMNS[2:]},
        }
    )
    rows = []
    for j in rank:
        f = parsed[j]
        sub, workload, framework, study, trial, number, experiment, _ = f.key
        rows.append(
            (sub, workload, framework, study, trial, number, experiment, str(f.path), counts[j])
        )
    trials = pd.DataFrame(rows, columns=list(TRIAL_COLUMNS))
    trials.index.name = "trial_id"
    if not rows:
        return _empty_logs(list(subs), issues, targets.benchmark_version)
    return EvalLogs(trials, evals, issues, list(subs), targets.benchmark_version)


# ------------------------------------------------------------------------------------------------
# Saving and loading parsed logs (--save_results_to_filename, --load_results_from_filename).


def save_logs(logs: EvalLogs, path: str | os.PathLike) -> None:
    """Write parsed logs to a pickle file (written to a temporary name, then renamed)."""
    fields = {f.name: getattr(logs, f.name) for f in dataclasses.fields(logs)}
    fields["issues"] = [dataclasses.asdict(i) for i in logs.issues]
    payload = {"format": _PICKLE_FORMAT, "logs": fields}
    tmp = Path(f"{path}.tmp")
    with open(tmp, "wb") as f:
        pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)


def load_logs(path: str | os.PathLike, targets: TargetSet) -> EvalLogs:
    """Load logs saved by `save_logs`, or upstream's pickle of per-submission trial DataFrames.

    Only load files you trust: this unpickles.
    """
    try:
        with open(path, "rb") as f:
            payload = pickle.load(f)
    except FileNotFoundError as e:
        raise LogError(f"{path}: no such results file") from e
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as e:
        raise LogError(f"{path}: not a results pickle ({e})") from e
    if isinstance(payload, dict) and payload.get("format") == _PICKLE_FORMAT:
        raw = payload["logs"]
        if raw["benchmark_version"] != targets.benchmark_version:
            raise LogError(
                f"{path}: saved for benchmark version {raw['benchmark_version']}, not "
                f"{targets.benchmark_version}; re-read the logs instead of loading this file"
            )
        raw["issues"] = [LogIssue(**i) if isinstance(i, dict) else i for i in raw["issues"]]
        return EvalLogs(**raw)
    if isinstance(payload, dict) and all(isinstance(v, pd.DataFrame) for v in payload.values()):
        return from_upstream_results(payload, targets)
    raise LogError(f"{path}: unrecognised results file (neither ours nor upstream's)")


def from_upstream_results(results: Mapping[str, pd.DataFrame], targets: TargetSet) -> EvalLogs:
    """Convert upstream's ``{submission: trials DataFrame}`` (array columns) to `EvalLogs`."""
    keys, cols, issues = [], [], []
    for submission, df in sorted(results.items()):
        for _, row in df.iterrows():
            m = _FRAMEWORK_SUFFIX.fullmatch(str(row["workload"]))
            workload, framework = (m.group(1), m.group(2)) if m else (str(row["workload"]), "")
            if workload not in targets.scored_workloads:
                issues.append(
                    LogIssue("unscored_workload", "", f"{submission}: {workload}", submission)
                )
                continue
            metric = targets.workloads[workload].metric_column
            trial = row["trial"]
            trial_name, experiment = trial if isinstance(trial, tuple) else (trial, "")
            if metric not in row or not isinstance(row[metric], np.ndarray):
                raise LogError(f"{submission}/{row['study']}/{row['workload']}: no {metric}")
            keys.append(
                {
                    "submission": submission,
                    "workload": workload,
                    "framework": framework,
                    "study": row["study"],
                    "trial": trial_name,
                    "experiment": experiment,
                }
            )
            cols.append(
                {
                    "score": row[TIME_COLUMN],
                    "metric": row[metric],
                    **{
                        ours: row[csv]
                        for csv, ours in OPTIONAL_COLUMNS.items()
                        if csv in row and isinstance(row[csv], np.ndarray)
                    },
                }
            )
    order = sorted(
        range(len(keys)),
        key=lambda i: (
            keys[i]["submission"],
            keys[i]["workload"],
            keys[i]["study"],
            keys[i]["experiment"],
            _trial_sort_key(keys[i]["trial"]),
        ),
    )
    return build_logs(
        [keys[i] for i in order],
        [cols[i] for i in order],
        sorted(results),
        targets.benchmark_version,
        issues,
    )


def _trial_sort_key(name: str) -> tuple[int, str]:
    m = _TRIAL_DIR.match(name)
    return (int(m.group(1)) if m else -1, name)


def subset_logs(
    logs: EvalLogs,
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
) -> EvalLogs:
    """Keep only some submissions (trial ids are renumbered)."""
    inc, exc = _split_list(include), set(_split_list(exclude))
    unknown = [n for n in inc if n not in logs.submissions]
    if unknown:
        raise LogError(
            f"no submission named {', '.join(unknown)} (found: {', '.join(logs.submissions)})"
        )
    keep = [s for s in logs.submissions if s not in exc and (not inc or s in inc)]
    if keep == logs.submissions:
        return logs
    mask = logs.trials["submission"].isin(keep).to_numpy()
    new_id = np.full(len(mask), -1, dtype=np.int64)
    new_id[mask] = np.arange(int(mask.sum()))
    trials = logs.trials[mask].reset_index(drop=True)
    trials.index.name = "trial_id"
    evals = logs.evals[mask[logs.evals["trial_id"].to_numpy()]].copy()
    evals["trial_id"] = new_id[evals["trial_id"].to_numpy()]
    evals = evals.reset_index(drop=True)
    issues = [
        i for i in logs.issues if not any(s in i.message for s in set(logs.submissions) - set(keep))
    ]
    return EvalLogs(trials, evals, issues, keep, logs.benchmark_version)
