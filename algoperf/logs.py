"""Experiment directory layout and crash-safe writers for upstream-format logs.

Layout (upstream's): ``<experiment_dir>/<experiment_name>/<workload>_<framework>/trial_<k>/`` with

* ``eval_measurements.csv``: one row per eval; columns sorted on first write (upstream's order),
  ``score`` = accumulated submission time at that eval;
* ``measurements.csv``: eval rows plus scalars the submission logs through
  ``workload.metrics_logger.append_scalar_metrics`` and a final ``score`` row;
* ``hparams.json`` (external tuning), ``meta_data_<n>.json``, ``flags_<n>.json`` where ``n`` is the
  preemption count;
* ours, beside them: ``run_record.json`` (environment, git sha, hardware, submission sha256, eval
  share of wall time) and ``submission/`` (a copy of the submission source).

JSON files are written to a temporary file and renamed (atomic). CSV rows are appended and flushed
(eval rows are also fsynced), so a kill never leaves a torn file; when a new column appears the
CSV is rewritten atomically with the wider header. Scalars a submission logs during the timed
step are buffered in memory and written during the next (untimed) logging phase, so logging costs
the submission no file I/O.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

EVAL_CSV = "eval_measurements.csv"
MEASUREMENTS_CSV = "measurements.csv"
HPARAMS_JSON = "hparams.json"
RUN_RECORD_JSON = "run_record.json"


def workload_dir(
    experiment_dir: str | Path, experiment_name: str, workload: str, framework: str
) -> Path:
    """``<experiment_dir>/<experiment_name>/<workload>_<framework>``."""
    return Path(experiment_dir).expanduser() / experiment_name / f"{workload}_{framework}"


def trial_dir(workload_path: Path, trial_index: int) -> Path:
    """``trial_<k>`` with ``k`` = hyperparameter index + 1 (self-tuning: ``trial_1``)."""
    return workload_path / f"trial_{trial_index}"


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to a temp file in the same directory, fsync, then rename over `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2, default=_json_default)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "_asdict"):
        return obj._asdict()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def _csv_value(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


class CsvLog:
    """An append-only CSV whose header is fixed by the first row (sorted), widened if needed."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.columns: list[str] = []
        if self.path.exists() and self.path.stat().st_size > 0:
            with self.path.open(newline="") as f:
                header = next(csv.reader(f), [])
            self.columns = header

    def append(self, row: Mapping[str, Any], durable: bool = False) -> None:
        """Append one row; rewrite atomically with a wider header if it has new keys."""
        new_keys = [k for k in sorted(row) if k not in self.columns]
        if self.columns and new_keys:
            self._rewrite_with(self.columns + new_keys)
        elif not self.columns:
            self.columns = sorted(row)
            self._write_text(self._header_line(), mode="w", durable=durable)
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(
            [_csv_value(row.get(c, "")) for c in self.columns]
        )
        self._write_text(buf.getvalue(), mode="a", durable=durable)

    def _header_line(self) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(self.columns)
        return buf.getvalue()

    def _write_text(self, text: str, mode: str, durable: bool) -> None:
        with self.path.open(mode, newline="") as f:
            f.write(text)
            f.flush()
            if durable:
                os.fsync(f.fileno())

    def _rewrite_with(self, columns: list[str]) -> None:
        with self.path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        self.columns = columns
        fd, tmp = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
        )
        with os.fdopen(fd, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n", restval="")
            writer.writeheader()
            writer.writerows(rows)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


class MetricLogger:
    """What upstream attaches to ``workload.metrics_logger``; writes the trial's CSV logs.

    ``append_scalar_metrics`` called by a submission (inside the timed step) only buffers the row;
    the runner calls `flush` in the untimed logging phase. Eval rows are written at once, durably.
    """

    def __init__(self, trial_path: Path) -> None:
        self.trial_path = Path(trial_path)
        self._eval = CsvLog(self.trial_path / EVAL_CSV)
        self._all = CsvLog(self.trial_path / MEASUREMENTS_CSV)
        self._pending: list[dict[str, Any]] = []

    def append_scalar_metrics(
        self,
        metrics: dict[str, Any],
        global_step: int,
        preemption_count: int | None = None,
        is_eval: bool = False,
    ) -> None:
        """Record scalars at `global_step` (upstream signature; mutates `metrics` like upstream)."""
        metrics["global_step"] = global_step
        if preemption_count is not None:
            metrics["preemption_count"] = preemption_count
        if is_eval:
            self.flush()
            row = dict(metrics)
            self._eval.append(row, durable=True)
            self._all.append(row)
        else:
            self._pending.append({k: _csv_value(v) for k, v in metrics.items()})

    def flush(self) -> None:
        """Write buffered submission scalars (called by the runner outside the timed region)."""
        for row in self._pending:
            self._all.append(row)
        self._pending.clear()

    def finish(self) -> None:
        self.flush()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def copy_submission_source(submission_path: Path, dest_dir: Path) -> dict[str, str]:
    """Copy the submission file (and sibling .py/.json files) into `dest_dir`; return sha256s."""
    submission_path = Path(submission_path)
    dest_dir.mkdir(parents=True, exist_ok=True)
    hashes = {}
    for src in sorted(submission_path.parent.iterdir()):
        if src.is_file() and (src.suffix in (".py", ".json", ".txt", ".yml", ".yaml")):
            shutil.copy2(src, dest_dir / src.name)
            hashes[src.name] = sha256_file(src)
    return hashes


def _git(*args: str, cwd: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def environment_record(framework: str) -> dict[str, Any]:
    """Software and hardware facts for the run record."""
    import psutil

    repo = Path(__file__).resolve().parents[1]
    record: dict[str, Any] = {
        "python_version": platform.python_version(),
        "python_compiler": platform.python_compiler(),
        "os_platform": platform.platform(),
        "executable": sys.executable,
        "git_commit_hash": _git("rev-parse", "HEAD", cwd=repo),
        "git_branch": _git("rev-parse", "--abbrev-ref", "HEAD", cwd=repo),
        "git_dirty": bool(_git("status", "--porcelain", cwd=repo)),
        "cpu_model_name": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "mem_total": psutil.virtual_memory().total,
        "packages": _package_versions(),
    }
    record.update(_accelerators(framework))
    return record


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _package_versions() -> dict[str, str]:
    from importlib import metadata

    names = ("algoperf", "numpy", "pandas", "jax", "jaxlib", "flax", "optax", "torch", "scipy")
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _accelerators(framework: str) -> dict[str, Any]:
    if framework == "pytorch":
        import torch

        n = torch.cuda.device_count()
        return {
            "gpu_count": n,
            "gpu_model_name": torch.cuda.get_device_name(0) if n else None,
            "devices": [str(torch.device("cuda", i)) for i in range(n)] or ["cpu"],
        }
    import jax

    devices = jax.devices()
    return {
        "gpu_count": sum(d.platform == "gpu" for d in devices),
        "gpu_model_name": devices[0].device_kind if devices else None,
        "devices": [str(d) for d in devices],
    }


def utilisation_record() -> dict[str, Any]:
    """Upstream's `meta_data` utilisation keys (CPU, memory, network) at this moment."""
    import psutil

    mem = psutil.virtual_memory()
    record: dict[str, Any] = {
        "cpu.util.avg_percent_since_last": psutil.cpu_percent(),
        "mem.total": mem.total,
        "mem.available": mem.available,
        "mem.used": mem.used,
        "mem.percent_used": mem.percent,
    }
    freq = psutil.cpu_freq()
    if freq is not None:
        record["cpu.freq.current"] = freq.current
    disk = psutil.disk_io_counters()
    if disk is not None:
        record["mem.read_bytes_since_boot"] = disk.read_bytes
        record["mem.write_bytes_since_boot"] = disk.write_bytes
    net = psutil.net_io_counters()
    if net is not None:
        record["net.bytes_sent_since_boot"] = net.bytes_sent
        record["net.bytes_recv_since_boot"] = net.bytes_recv
    return record


def workload_attributes(workload: Any) -> dict[str, Any]:
    """``workload.<attr>`` for every public scalar property (upstream's meta_data section 1)."""
    out = {}
    for name in sorted(dir(workload)):
        if name.startswith("_") or name in ("param_shapes", "model_params_types", "metrics_logger"):
            continue
        try:
            value = getattr(workload, name)
        except Exception:
            continue
        if isinstance(value, bool | int | float | str) and not callable(value):
            out[f"workload.{name}"] = value
    return out
