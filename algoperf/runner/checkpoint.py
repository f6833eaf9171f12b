"""Checkpoints of a trial: save a loop `Snapshot`, find the latest one, resume from it.

Layout: one directory per checkpoint in the trial directory, ``checkpoint_<global_step>/``:

* ``state.json``: everything that is not an array: format version, framework, reason (``eval``,
  ``final``, ``preempted``), global step, the input pipeline position (batches drawn), the
  preemption count of the run that wrote it, the clock's accumulators and goal flags,
  ``total_duration``, the eval schedule (seconds since the last eval), the eval results so far,
  how many rows the trial's CSV logs had, what the run was (workload, seed, batch size,
  hyperparameters, submission sha256), and the Python and NumPy global RNG states;
* JAX: ``arrays.npz``, the leaves of the parameters, model state and optimizer state (arrays
  only: functions such as optax's ``update_fn`` in upstream's ``(opt_state, update_fn)`` are not
  saved; a restore puts the saved leaves into the structure a fresh ``init_optimizer_state``
  builds, checking count, shapes and dtypes);
* PyTorch: ``state.pt`` (``torch.save``): the unwrapped model's ``state_dict``, the model state,
  ``state_dict()`` of every optimizer-state entry that has one (other tensors and numbers as
  they are), and the torch CPU/CUDA RNG states.

A checkpoint is written into a hidden temporary directory, fsynced, then renamed into place
(atomic): a kill while saving leaves either the previous set of checkpoints or the new one,
never a torn file; leftover temporaries are removed on resume. With
``keep_intermediate=False`` the older checkpoints are deleted after the new one is in place.

RNG: per-step keys are a pure function of (trial key, global step), so the loop's RNG needs
only the global step; the process-global generators a model may use (torch's for dropout,
NumPy's, Python's) are saved and restored. Under DDP rank 0 saves (every rank holds the same
replicated state) and every rank loads.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime
import json
import logging
import os
import random
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from algoperf import logs
from algoperf.runner import loop

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
PREFIX = "checkpoint_"
STATE_JSON = "state.json"
JAX_ARRAYS = "arrays.npz"
TORCH_STATE = "state.pt"
_DIR_RE = re.compile(rf"^{PREFIX}(\d+)$")
_TMP_GLOB = f".{PREFIX}*.tmp*"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names it and the fix."""


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A complete checkpoint on disk."""

    path: Path
    meta: dict[str, Any]

    @property
    def global_step(self) -> int:
        return int(self.meta["global_step"])

    @property
    def preemption_count(self) -> int:
        return int(self.meta["preemption_count"])

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())


# Finding -----------------------------------------------------------------------------------------


def checkpoint_dirs(trial_dir: Path) -> list[Path]:
    """Complete checkpoint directories of a trial (those with a ``state.json``), oldest first."""
    trial_dir = Path(trial_dir)
    if not trial_dir.is_dir():
        return []
    found = []
    for p in trial_dir.iterdir():
        m = _DIR_RE.match(p.name)
        if m and p.is_dir() and (p / STATE_JSON).is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def latest(trial_dir: Path) -> Checkpoint | None:
    """The checkpoint with the highest global step, or None."""
    dirs = checkpoint_dirs(trial_dir)
    return load(dirs[-1]) if dirs else None


def load(path: Path) -> Checkpoint:
    """Read a checkpoint's ``state.json``; raise `CheckpointError` if it is unusable."""
    path = Path(path)
    try:
        meta = json.loads((path / STATE_JSON).read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(
            f"{path / STATE_JSON} cannot be read ({e}); delete {path} to resume from the "
            "previous checkpoint"
        ) from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {meta.get('format_version')!r}, this version reads "
            f"{FORMAT_VERSION}; rerun the trial with --overwrite"
        )
    return Checkpoint(path, meta)


def remove_temporaries(trial_dir: Path) -> None:
    """Delete half-written checkpoints left by a killed process (call only while holding the lock)."""
    for p in Path(trial_dir).glob(_TMP_GLOB):
        shutil.rmtree(p, ignore_errors=True)


# Saving ------------------------------------------------------------------------------------------


def save(
    trial_dir: Path,
    snapshot: loop.Snapshot,
    framework: str,
    *,
    preemption_count: int,
    run_info: dict[str, Any],
    log_rows: dict[str, int],
    keep_intermediate: bool = True,
) -> Checkpoint:
    """Write `snapshot` as ``checkpoint_<global_step>/`` atomically; return it.

    Args:
      trial_dir: the trial directory.
      snapshot: what the loop handed to ``on_checkpoint``.
      framework: ``jax`` or ``pytorch``.
      preemption_count: of the run writing it (a resume continues with a larger one).
      run_info: identity of the run (workload, seed, batch size, hyperparameters, ...), checked on
        resume.
      log_rows: data rows of each CSV log at this point (a resume truncates the logs to them).
      keep_intermediate: False deletes the older checkpoints once this one is in place.
    """
    trial_dir = Path(trial_dir)
    final = trial_dir / f"{PREFIX}{snapshot.global_step}"
    tmp = Path(tempfile.mkdtemp(dir=trial_dir, prefix=f".{PREFIX}{snapshot.global_step}.tmp"))
    try:
        if framework == "jax":
            arrays = _jax_save(tmp / JAX_ARRAYS, snapshot)
        elif framework == "pytorch":
            arrays = _torch_save(tmp / TORCH_STATE, snapshot)
        else:
            raise ValueError(f"unknown framework {framework!r}")
        meta = {
            "format_version": FORMAT_VERSION,
            "framework": framework,
            "reason": snapshot.reason,
            "global_step": snapshot.global_step,
            "batches_drawn": snapshot.batches_drawn,
            "preemption_count": preemption_count,
            "train_state": snapshot.train_state,
            "total_duration": snapshot.total_duration,
            "since_last_eval": snapshot.since_last_eval,
            "eval_results": [[step, row] for step, row in snapshot.eval_results],
            "log_rows": log_rows,
            "run": run_info,
            "process_rng": _capture_process_rng(),
            "arrays": arrays,
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        logs.write_json_atomic(tmp / STATE_JSON, meta)
        _fsync_dir(tmp)
        old = None
        if final.exists():
            old = final.with_name(f".{final.name}.tmp-old-{os.getpid()}")
            os.rename(final, old)
        os.rename(tmp, final)
        _fsync_dir(trial_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not keep_intermediate:
        for p in checkpoint_dirs(trial_dir):
            if p != final:
                shutil.rmtree(p, ignore_errors=True)
    return Checkpoint(final, meta)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _capture_process_rng() -> dict[str, Any]:
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(internal), gauss],
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
    }


def _restore_process_rng(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, np.uint32), pos, has_gauss, cached))


# JAX ---------------------------------------------------------------------------------------------

_GROUPS = ("model_params", "model_state", "optimizer_state")
_PY_SCALARS = (bool, int, float, complex)


def _leaf_signature(leaf: Any) -> dict[str, Any]:
    """Kind, shape and dtype of one pytree leaf, without copying it to the host."""
    import jax

    if isinstance(leaf, jax.Array):
        record: dict[str, Any] = {"kind": "jax"}
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            record["key_impl"] = str(jax.random.key_impl(leaf))
            leaf = jax.random.key_data(leaf)
    elif isinstance(leaf, np.ndarray | np.generic):
        record = {"kind": "numpy"}
    elif isinstance(leaf, _PY_SCALARS):
        record = {"kind": "python", "type": type(leaf).__name__}
        leaf = np.asarray(leaf)
    else:
        return {"kind": "static", "type": type(leaf).__name__}
    record["dtype"] = str(leaf.dtype)
    record["shape"] = list(leaf.shape)
    return record


def _jax_leaf_record(leaf: Any) -> tuple[dict[str, Any], np.ndarray | None]:
    """(signature, array to save) for one pytree leaf; static leaves (functions) save nothing."""
    import jax

    record = _leaf_signature(leaf)
    if record["kind"] == "static":
        return record, None
    if isinstance(leaf, jax.Array):
        if "key_impl" in record:
            leaf = jax.random.key_data(leaf)
        value = np.asarray(jax.device_get(leaf))
    else:
        value = np.asarray(leaf)
    if value.dtype.kind not in "biufc":
        # bfloat16 and other extension dtypes: stored as raw unsigned ints of the same width.
        value = value.view(f"u{value.dtype.itemsize}")
    # (np.ascontiguousarray would turn a 0-d array into shape (1,).)
    return record, np.require(value, requirements="C")


def _jax_save(path: Path, snapshot: loop.Snapshot) -> dict[str, Any]:
    import jax

    arrays: dict[str, np.ndarray] = {}
    records: dict[str, list[dict[str, Any]]] = {}
    for group in _GROUPS:
        leaves = jax.tree.leaves(getattr(snapshot, group))
        records[group] = []
        for i, leaf in enumerate(leaves):
            record, value = _jax_leaf_record(leaf)
            records[group].append(record)
            if value is not None:
                arrays[f"{group}/{i}"] = value
    with open(path, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    return {"file": JAX_ARRAYS, "leaves": records, "local_devices": jax.local_device_count()}


def _other_device_count(saved: list[int], wanted: list[int], devices: tuple[int, int]) -> bool:
    """Whether `saved` is `wanted` with its per-device axis (pmap layout) of another count."""
    before, now = devices
    return (
        before != now
        and len(saved) == len(wanted) >= 1
        and (saved[0], wanted[0]) == (before, now)
        and saved[1:] == wanted[1:]
    )


def _jax_restore_tree(
    group: str,
    template: Any,
    records: list[dict[str, Any]],
    data: Any,
    where: Path,
    devices: tuple[int, int] = (1, 1),
) -> Any:
    """`template` filled with the saved leaves; `devices` = (local devices at save, now).

    In the pmap layout state is replicated with a leading device axis; saved on another number
    of devices, such a leaf is restored from its first replica, replicated on this run's devices
    (upstream's pmap runner saved the first replica and replicated it on restore).
    """
    import jax

    leaves, treedef = jax.tree.flatten(template)
    if len(leaves) != len(records):
        raise CheckpointError(
            f"{where}: {group} has {len(records)} leaves in the checkpoint but "
            f"{len(leaves)} in the state this run built; the submission or workload changed "
            "since it was saved (rerun the trial with --overwrite)"
        )
    out = []
    for i, (leaf, record) in enumerate(zip(leaves, records)):
        if record["kind"] == "static":
            out.append(leaf)
            continue
        value = data[f"{group}/{i}"]
        if list(value.shape) != record["shape"]:
            raise CheckpointError(
                f"{where}: {group} leaf {i} is stored with shape {list(value.shape)}, its record "
                f"says {record['shape']}; the checkpoint is damaged (delete it to resume from "
                "the previous one)"
            )
        tmpl_rec = _leaf_signature(leaf)
        if tmpl_rec["kind"] != "static" and _other_device_count(
            record["shape"], tmpl_rec["shape"], devices
        ):
            value = np.ascontiguousarray(np.broadcast_to(value[:1], (devices[1], *value.shape[1:])))
            record = {**record, "shape": tmpl_rec["shape"]}
        if tmpl_rec["kind"] == "static" or tmpl_rec["shape"] != record["shape"]:
            raise CheckpointError(
                f"{where}: {group} leaf {i} has shape {record['shape']} in the checkpoint, "
                f"{tmpl_rec.get('shape')} in this run; the submission or workload changed"
            )
        if tmpl_rec["dtype"] != record["dtype"]:
            raise CheckpointError(
                f"{where}: {group} leaf {i} has dtype {record['dtype']} in the checkpoint, "
                f"{tmpl_rec['dtype']} in this run; the submission or workload changed"
            )
        if isinstance(leaf, jax.Array):
            if "key_impl" in record:
                restored = jax.random.wrap_key_data(
                    jax.device_put(value, jax.random.key_data(leaf).sharding),
                    impl=jax.random.key_impl(leaf),
                )
            else:
                host = value.view(leaf.dtype) if value.dtype != leaf.dtype else value
                restored = jax.device_put(host, leaf.sharding)
        elif isinstance(leaf, np.ndarray):
            restored = value.view(leaf.dtype) if value.dtype != leaf.dtype else value.copy()
        elif isinstance(leaf, np.generic):
            restored = leaf.dtype.type(value.view(leaf.dtype)[()])
        else:
            restored = type(leaf)(value[()].item())
        out.append(restored)
    return jax.tree.unflatten(treedef, out)


def _jax_restore(ckpt: Checkpoint, params: Any, model_state: Any, opt_state: Any) -> tuple:
    import jax

    path = ckpt.path / JAX_ARRAYS
    records = ckpt.meta["arrays"]["leaves"]
    now = jax.local_device_count()
    devices = (int(ckpt.meta["arrays"].get("local_devices", now)), now)
    if devices[0] != now:
        log.info("%s was saved on %d local devices, this run has %d", ckpt.path, *devices)
    with np.load(path, allow_pickle=False) as data:
        return tuple(
            _jax_restore_tree(group, template, records[group], data, ckpt.path, devices)
            for group, template in zip(_GROUPS, (params, model_state, opt_state))
        )


# PyTorch -----------------------------------------------------------------------------------------


def _torch_optimizer_items(optimizer_state: Any) -> list[tuple[str, Any]]:
    if isinstance(optimizer_state, dict):
        return [(str(k), v) for k, v in optimizer_state.items()]
    if isinstance(optimizer_state, list | tuple):
        return [(str(i), v) for i, v in enumerate(optimizer_state)]
    return [("", optimizer_state)]


def _plain(value: Any) -> bool:
    """Tensors, numbers, strings, None and containers of them: saved as they are."""
    import torch

    if value is None or isinstance(value, torch.Tensor | str | bool | int | float):
        return True
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    return False


def _torch_save(path: Path, snapshot: loop.Snapshot) -> dict[str, Any]:
    import torch

    from algoperf.frameworks import pytorch as fpt

    params = snapshot.model_params
    model = fpt.unwrap(params).state_dict() if isinstance(params, torch.nn.Module) else params
    optimizer, skipped = {}, []
    for key, value in _torch_optimizer_items(snapshot.optimizer_state):
        if hasattr(value, "state_dict") and callable(value.state_dict):
            optimizer[key] = ("state_dict", value.state_dict())
        elif _plain(value):
            optimizer[key] = ("value", value)
        else:
            skipped.append(key)
    if skipped:
        log.warning(
            "checkpoint: optimizer-state entries %s have no state_dict() and are not saved; "
            "a resume rebuilds them with init_optimizer_state",
            skipped,
        )
    payload = {
        "model": model,
        "model_state": snapshot.model_state,
        "optimizer": optimizer,
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": (
            torch.cuda.get_rng_state_all()
            if torch.cuda.is_available() and torch.cuda.is_initialized()
            else None
        ),
    }
    with open(path, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    return {"file": TORCH_STATE, "skipped_optimizer_entries": skipped}


def _torch_restore(
    ckpt: Checkpoint, params: Any, model_state: Any, optimizer_state: Any
) -> tuple[Any, Any, Any]:
    import torch

    from algoperf.frameworks import pytorch as fpt

    device = fpt.setup().device
    # The file is this run's own output, written by `_torch_save`; it holds optimizer state
    # dicts with Python scalars and scheduler attributes, hence full unpickling.
    payload = torch.load(ckpt.path / TORCH_STATE, map_location=device, weights_only=False)
    if isinstance(params, torch.nn.Module):
        try:
            fpt.unwrap(params).load_state_dict(payload["model"])
        except RuntimeError as e:
            raise CheckpointError(
                f"{ckpt.path}: the saved model does not fit this run's model ({str(e).splitlines()[0]}); "
                "the workload changed since it was saved (rerun the trial with --overwrite)"
            ) from None
    else:
        params = payload["model"]
    model_state = payload["model_state"]
    items = dict(_torch_optimizer_items(optimizer_state))
    for key, (kind, value) in payload["optimizer"].items():
        if key not in items:
            raise CheckpointError(
                f"{ckpt.path}: optimizer-state entry {key!r} is not in the state this run's "
                "init_optimizer_state built; the submission changed since it was saved"
            )
        if kind == "state_dict":
            items[key].load_state_dict(value)
        elif isinstance(optimizer_state, dict):
            optimizer_state[next(k for k in optimizer_state if str(k) == key)] = value
        elif isinstance(optimizer_state, list):
            optimizer_state[int(key)] = value
        elif isinstance(optimizer_state, tuple):
            optimizer_state = (
                *optimizer_state[: int(key)],
                value,
                *optimizer_state[int(key) + 1 :],
            )
        else:
            optimizer_state = value
    torch.set_rng_state(payload["torch_rng"].cpu())
    if payload.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in payload["cuda_rng"]])
    return params, model_state, optimizer_state


# Resuming ----------------------------------------------------------------------------------------


def resume_point(ckpt: Checkpoint, framework: str) -> loop.ResumePoint:
    """A `loop.ResumePoint` that restores `ckpt` into the fresh state of a new process."""
    meta = ckpt.meta
    if meta["framework"] != framework:
        raise CheckpointError(
            f"{ckpt.path} was written by a {meta['framework']} run, this run is {framework}"
        )

    def restore(params: Any, model_state: Any, optimizer_state: Any) -> tuple[Any, Any, Any]:
        if framework == "jax":
            out = _jax_restore(ckpt, params, model_state, optimizer_state)
        else:
            out = _torch_restore(ckpt, params, model_state, optimizer_state)
        _restore_process_rng(meta["process_rng"])
        return out

    return loop.ResumePoint(
        global_step=int(meta["global_step"]),
        batches_drawn=int(meta["batches_drawn"]),
        train_state=dict(meta["train_state"]),
        eval_results=[(int(step), dict(row)) for step, row in meta["eval_results"]],
        total_duration=float(meta["total_duration"]),
        since_last_eval=meta["since_last_eval"],
        restore=restore,
    )


# CSV logs ----------------------------------------------------------------------------------------


def count_csv_rows(path: Path) -> int:
    """Data rows (header excluded) of a CSV log; 0 if it does not exist."""
    path = Path(path)
    if not path.exists():
        return 0
    with path.open(newline="") as f:
        return max(0, sum(1 for _ in csv.reader(f)) - 1)


def truncate_csv_rows(path: Path, rows: int) -> int:
    """Keep the header and the first `rows` data rows of a CSV log (atomic); return rows dropped."""
    path = Path(path)
    if not path.exists():
        return 0
    with path.open(newline="") as f:
        table = list(csv.reader(f))
    if len(table) <= rows + 1:
        return 0
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            csv.writer(f, lineterminator="\n").writerows(table[: rows + 1])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(table) - 1 - rows


def truncate_logs(trial_dir: Path, log_rows: dict[str, int]) -> dict[str, int]:
    """Drop rows written after a checkpoint (the resumed run writes them again)."""
    return {
        name: truncate_csv_rows(Path(trial_dir) / name, int(rows))
        for name, rows in log_rows.items()
    }


def make_saver(
    trial_dir: Path,
    framework: str,
    *,
    preemption_count: int,
    run_info: dict[str, Any],
    keep_intermediate: bool,
    before_save: Callable[[], None] | None = None,
) -> Callable[[loop.Snapshot], None]:
    """An ``on_checkpoint`` callback for `loop.train_once` that saves into `trial_dir`."""

    def on_checkpoint(snapshot: loop.Snapshot) -> None:
        if before_save is not None:
            before_save()
        rows = {
            name: count_csv_rows(Path(trial_dir) / name)
            for name in (logs.EVAL_CSV, logs.MEASUREMENTS_CSV)
        }
        ckpt = save(
            trial_dir,
            snapshot,
            framework,
            preemption_count=preemption_count,
            run_info=run_info,
            log_rows=rows,
            keep_intermediate=keep_intermediate,
        )
        log.info(
            "checkpoint %s (%s) saved: %.1f MB",
            ckpt.path.name,
            snapshot.reason,
            ckpt.size_bytes() / 1e6,
        )

    return on_checkpoint
