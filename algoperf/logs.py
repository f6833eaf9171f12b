"""Experiment directory layout and crash-safe writers for upstream-format logs.

Layout (upstream's): ``<experiment_dir>/<experiment_name>/<workload>_<framework>/trial_<k>/`` with

* ``eval_measurements.csv``: one row per eval, ``score`` = accumulated submission time at that
  eval. Columns as upstream's pandas writer orders them: sorted on the first write, then each
  new key appended in the order of the row that brings it; a missing value (and NaN, as pandas
  writes it) is an empty field. When a trial's logger finishes, both CSVs are rewritten once
  through pandas (read, write), as upstream's writer leaves them (an integer column holding an
  empty field becomes floats, ``0`` -> ``0.0``);
* ``measurements.csv``: eval rows plus scalars the submission logs through
  ``workload.metrics_logger.append_scalar_metrics`` and a final ``score`` row;
* ``hparams.json`` (external tuning), ``meta_data_<n>.json`` (upstream's keys; GPU keys only
  where GPUs exist), ``flags_<n>.json`` (upstream's runner flags, values as this run used them;
  absl's own flags are not written) where ``n`` is the preemption count;
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
        return ""  # pandas writes NaN as an empty field
    return value


class CsvLog:
    """An append-only CSV: header sorted from the first row, widened by later rows' new keys.

    New keys are appended in the row's own order, as ``pd.concat`` (upstream's writer) orders
    the union of columns.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.columns: list[str] = []
        if self.path.exists() and self.path.stat().st_size > 0:
            with self.path.open(newline="") as f:
                header = next(csv.reader(f), [])
            self.columns = header

    def append(self, row: Mapping[str, Any], durable: bool = False) -> None:
        """Append one row; rewrite atomically with a wider header if it has new keys."""
        new_keys = [k for k in row if k not in self.columns]
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

    def normalise_as_pandas(self) -> None:
        """Rewrite the file as upstream's read-concat-write cycle leaves it (atomic)."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        import pandas as pd

        frame = pd.read_csv(self.path)
        fd, tmp = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
        )
        with os.fdopen(fd, "w", newline="") as f:
            frame.to_csv(f, index=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

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
        """Write what is buffered; leave both CSVs as upstream's pandas writer would."""
        self.flush()
        self._eval.normalise_as_pandas()
        self._all.normalise_as_pandas()


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

    from algoperf import provenance

    repo = Path(__file__).resolve().parents[1]
    # An image has no .git: its sha is the one docker/install.sh recorded at build time.
    commit = _git("rev-parse", "HEAD", cwd=repo) or provenance.record().get("git_sha")
    record: dict[str, Any] = {
        "python_version": platform.python_version(),
        "python_compiler": platform.python_compiler(),
        "os_platform": platform.platform(),
        "executable": sys.executable,
        "git_commit_hash": commit,
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


# Upstream's runner flags, in its definition order (submission_runner.py at 2c90454f).
UPSTREAM_FLAGS = (
    "submission_path",
    "workload",
    "tuning_ruleset",
    "tuning_search_space",
    "num_tuning_trials",
    "data_dir",
    "imagenet_v2_data_dir",
    "librispeech_tokenizer_vocab_path",
    "framework",
    "torch_compile",
    "experiment_dir",
    "experiment_name",
    "save_checkpoints",
    "save_intermediate_checkpoints",
    "resume_last_run",
    "append_timestamp",
    "use_wandb",
    "profile",
    "max_global_steps",
    "overwrite",
    "hparam_start_index",
    "hparam_end_index",
    "rng_seed",
    "set_pytorch_max_split_size",
    "pytorch_eval_num_workers",
    "capture_jax_trace",
    "skip_evals",
)


def upstream_flags(values: Mapping[str, Any], torch_compile: bool) -> dict[str, Any]:
    """``flags_<n>.json``: upstream's flag names with the values this run used.

    `values` are the parsed flags (ours included; only upstream's are kept); `torch_compile` is
    the boolean upstream's flag would have had (ours also accepts ``auto``). ``rng_seed`` is the
    flag as given (None when drawn, as upstream; the drawn seed is in ``meta_data_<n>.json``).
    """
    out = {name: values.get(name) for name in UPSTREAM_FLAGS}
    out["torch_compile"] = bool(torch_compile)
    return out


def gpu_records() -> tuple[dict[str, Any], dict[str, Any]]:
    """Upstream's GPU keys (from ``nvidia-smi``, as its GPUtil reads them); empty without GPUs.

    Returns ``(utilisation, hardware)``: ``gpu.count``, ``gpu.<i>.*`` and ``gpu.avg.*``; and
    ``gpu_model_name``, ``gpu_count``, ``gpu_driver``.
    """
    query = "index,name,driver_version,utilization.gpu,memory.total,memory.used,memory.free,"
    query += "temperature.gpu"
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}, {}
    return parse_gpu_query(out)


def parse_gpu_query(text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """`gpu_records` from ``nvidia-smi --query-gpu`` CSV lines (GPUtil's field meanings)."""
    gpus = []
    for line in text.strip().splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 8:
            continue
        try:
            total, used, free = (float(fields[i]) for i in (4, 5, 6))
            gpus.append(
                {
                    "id": int(fields[0]),
                    "name": fields[1],
                    "driver": fields[2],
                    "compute.util": float(fields[3]) / 100.0,
                    "mem.util": used / total if total else 0.0,
                    "mem.total": total,
                    "mem.used": used,
                    "mem.free": free,
                    "temp.current": float(fields[7]),
                }
            )
        except ValueError:
            continue
    if not gpus:
        return {}, {}
    util: dict[str, Any] = {"gpu.count": len(gpus)}
    keys = ("compute.util", "mem.util", "mem.total", "mem.used", "mem.free", "temp.current")
    for gpu in gpus:
        for key in keys:
            util[f"gpu.{gpu['id']}.{key}"] = gpu[key]
    for key in keys:
        util[f"gpu.avg.{key}"] = sum(g[key] for g in gpus) / len(gpus)
    hardware = {
        "gpu_model_name": gpus[0]["name"],
        "gpu_count": len(gpus),
        "gpu_driver": gpus[0]["driver"],
    }
    return util, hardware


def meta_data(workload: Any, environment: Mapping[str, Any], rng_seed: int) -> dict[str, Any]:
    """``meta_data_<n>.json`` with upstream's keys, in its order (GPU keys only with GPUs)."""
    util, hardware = gpu_records()
    meta = workload_attributes(workload)
    meta.update(utilisation_record())
    meta.update(util)
    software = ("os_platform", "python_version", "python_compiler", "git_branch", "git_commit_hash")
    for key in (*software, "cpu_model_name", "cpu_count"):
        meta[key] = environment.get(key)
    meta.update(hardware)
    meta["rng_seed"] = rng_seed
    return meta


# Run settings that make a trial's score differ from what upstream's runner would measure:
# (record key, value, the framework it applies to (None: any), what the note calls it).
# ``timing_sync=eval_points`` is a difference for PyTorch only: upstream synchronises CUDA at
# every step end there, while for JAX eval-point synchronisation is the default here and
# stricter than upstream's JAX timing, so default JAX runs stay comparable.
_NON_UPSTREAM = (
    ("timing_sync", "eval_points", "pytorch", "--timing_sync=eval_points (PyTorch steps overlap)"),
    ("stop_on_divergence", True, None, "--stop_on_divergence"),
    ("budget_overridden", True, None, "--max_runtime_sec (budget replaced)"),
)


def _record_framework(record: dict[str, Any], path: Path) -> str:
    """The run's framework: the record's, else the ``<workload>_<framework>`` directory's."""
    framework = record.get("framework")
    if framework:
        return str(framework)
    return path.parent.parent.name.rpartition("_")[2]


def run_setting_notes(directory: str | Path) -> list[str]:
    """One line per non-upstream setting found in the ``run_record.json`` files under `directory`.

    For ``algoperf score``: e.g. ``3 of 10 trials ran with --timing_sync=eval_points ...``, so a
    reader knows which scores are not comparable with the leaderboard. Logs without run records
    (upstream's) give no lines.
    """
    records = []
    for path in sorted(Path(directory).expanduser().rglob(RUN_RECORD_JSON)):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict):
            records.append((record, _record_framework(record, path)))
    notes = []
    for key, value, only_for, what in _NON_UPSTREAM:
        hits = sum(
            1 for r, framework in records if r.get(key) == value and only_for in (None, framework)
        )
        if hits:
            notes.append(
                f"{hits} of {len(records)} trials ran with {what}: not comparable with "
                "upstream-measured scores (run_record.json)"
            )
    every = sum(1 for r, _ in records if r.get("eval_every_n_steps"))
    if every:
        notes.append(
            f"{every} of {len(records)} trials evaluated every N steps (--eval_every_n_steps)"
        )
    return notes


def report_run_settings(score_argv: list[str]) -> None:
    """Print `run_setting_notes` for ``algoperf score``'s ``--submission_directory`` to stderr."""
    directory = None
    for i, arg in enumerate(score_argv):
        if arg.startswith("--submission_directory="):
            directory = arg.split("=", 1)[1]
        elif arg == "--submission_directory" and i + 1 < len(score_argv):
            directory = score_argv[i + 1]
    if not directory or not Path(directory).expanduser().is_dir():
        return
    for note in run_setting_notes(directory):
        print(f"note: {note}", file=sys.stderr)
