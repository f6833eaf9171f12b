"""ParallelBatchLoader: order, determinism for any worker count, errors, clean shutdown."""

from __future__ import annotations

import dataclasses
import mmap
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from algoperf.data import loader
from algoperf.data.images import example_rng
from algoperf.data.loader import BackgroundIterator, ParallelBatchLoader


@dataclasses.dataclass(frozen=True)
class RowFn:
    """Rows are a function of (item, row) only; optional jitter makes chunks finish out of order."""

    rows: int = 6
    jitter: float = 0.0
    fail_at: int | None = None

    def output_spec(self, item):
        return {"x": ((self.rows, 3, 2), np.float32), "y": ((self.rows,), np.int64)}

    def fill(self, item, out, start, stop):
        if self.jitter:
            time.sleep(self.jitter * ((item * 7 + start) % 3))
        for r in range(start, stop):
            if item == self.fail_at:
                raise ValueError(f"cannot decode item {item}")
            out["x"][r] = example_rng(0, item, r).normal(size=(3, 2))
            out["y"][r] = item * 100 + r


def _collect(fn, items, **kwargs) -> list[dict[str, np.ndarray]]:
    with ParallelBatchLoader(fn, items, **kwargs) as batches:
        return [{k: v.copy() for k, v in b.items()} for b in batches]


def _same(a, b) -> bool:
    return len(a) == len(b) and all(
        x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x) for x, y in zip(a, b)
    )


@pytest.fixture(autouse=True)
def _private_shm(tmp_path, monkeypatch) -> Path:
    """Shared batch files go to a private folder, so a test can see exactly what is left."""
    shm = tmp_path / "shm"
    shm.mkdir()
    monkeypatch.setenv("ALGOPERF_SHM_DIR", str(shm))
    return shm


def test_inline_loader_yields_batches_in_order():
    batches = _collect(RowFn(), range(5), num_workers=0)
    assert [int(b["y"][0]) for b in batches] == [0, 100, 200, 300, 400]
    assert batches[2]["x"].shape == (6, 3, 2) and batches[2]["x"].dtype == np.float32


def test_batches_identical_for_any_worker_count_backend_and_chunking(_private_shm):
    reference = _collect(RowFn(), range(7), num_workers=0)
    variants = [
        {"num_workers": 1, "backend": "process"},
        {"num_workers": 2, "backend": "process", "chunk_rows": 1, "prefetch": 3},
        {"num_workers": 2, "backend": "thread"},
        {"num_workers": 3, "backend": "thread", "chunk_rows": 4},
    ]
    for kwargs in variants:
        got = _collect(RowFn(jitter=0.01), range(7), **kwargs)
        assert _same(got, reference), kwargs
    assert not list(_private_shm.iterdir())  # every shared file was unlinked


def test_process_batches_are_zero_copy_views_that_outlive_the_loader(_private_shm):
    it = ParallelBatchLoader(RowFn(), range(3), num_workers=2)
    first = next(it)
    assert isinstance(first["x"].base, mmap.mmap)  # a view of the shared mapping, not a copy
    it.close()
    assert not list(_private_shm.iterdir())
    np.testing.assert_array_equal(first["y"], np.arange(6))  # still readable after close


def test_buffers_are_reused_only_when_no_view_is_left(_private_shm):
    reference = _collect(RowFn(), range(12), num_workers=0)
    # A consumer that keeps every batch: nothing may be overwritten by later batches.
    with ParallelBatchLoader(RowFn(), range(12), num_workers=2) as it:
        kept = list(it)
    assert _same(kept, reference)
    # A consumer that drops each batch: a handful of buffers serve the whole stream.
    with ParallelBatchLoader(RowFn(), range(30), num_workers=2, prefetch=2) as it:
        for k, batch in enumerate(it):
            assert int(batch["y"][0]) == 100 * k
            assert np.array_equal(batch["x"], reference[k % 12]["x"]) or k >= 12
        assert it._counter <= 5
    # A view of a view still pins its buffer.
    with ParallelBatchLoader(RowFn(), range(10), num_workers=1) as it:
        tail = next(it)["x"][3:]
        snapshot = tail.copy()
        for _ in it:
            pass
    np.testing.assert_array_equal(tail, snapshot)
    assert not list(_private_shm.iterdir())


def test_worker_error_propagates_and_shuts_down(_private_shm):
    it = ParallelBatchLoader(RowFn(fail_at=2), range(10), num_workers=2)
    assert int(next(it)["y"][0]) == 0
    with pytest.raises(ValueError, match="cannot decode item 2"):
        for _ in it:
            pass
    assert it._pool is None
    assert not list(_private_shm.iterdir())
    with pytest.raises(StopIteration):
        next(it)
    inline = ParallelBatchLoader(RowFn(fail_at=0), range(3))
    with pytest.raises(ValueError, match="cannot decode item 0"):
        next(inline)


def test_close_early_on_an_infinite_stream_stops_workers(_private_shm):
    def forever():
        i = 0
        while True:
            yield i
            i += 1

    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    it = ParallelBatchLoader(RowFn(jitter=0.01), forever(), num_workers=2, prefetch=3)
    assert [int(next(it)["y"][0]) for _ in range(4)] == [0, 100, 200, 300]
    it.close()
    it.close()  # idempotent
    assert not list(_private_shm.iterdir())
    deadline = time.time() + 10
    while time.time() < deadline:
        workers = {
            p.pid for p in me.children(recursive=True) if p.pid not in before and p.is_running()
        }
        # The forkserver process may stay (it is shared); the pool's workers must be gone.
        workers = {
            pid for pid in workers if "forkserver" not in " ".join(psutil.Process(pid).cmdline())
        }
        if not workers:
            break
        time.sleep(0.1)
    assert not workers


def test_stale_files_of_dead_processes_are_removed(_private_shm, monkeypatch):
    # A pid that surely belonged to a process that has exited (pids are not reused at once).
    proc = subprocess.Popen(["true"])
    proc.wait()
    dead = proc.pid
    stale = _private_shm / f"{loader._SHM_PREFIX}{dead}-abc-1"
    stale.write_bytes(b"x")
    foreign = _private_shm / "unrelated-file"
    foreign.write_bytes(b"x")
    monkeypatch.setattr(loader, "_cleaned_dirs", set())
    _collect(RowFn(), range(1), num_workers=1)
    assert not stale.exists()
    assert foreign.exists()


def test_shared_memory_dir_falls_back_when_dev_shm_is_too_small(monkeypatch):
    monkeypatch.delenv("ALGOPERF_SHM_DIR")

    class Tiny:
        f_bavail, f_frsize = 16, 4096  # 64 KiB, like a small container /dev/shm

    monkeypatch.setattr(loader.os, "statvfs", lambda path: Tiny())
    assert loader._shm_dir(10 << 20) != Path("/dev/shm")
    assert loader._shm_dir(1 << 10) in (Path("/dev/shm"), Path(loader.tempfile.gettempdir()))


def test_bad_arguments_and_specs_are_rejected():
    with pytest.raises(ValueError, match="backend"):
        ParallelBatchLoader(RowFn(), [], backend="gpu")
    with pytest.raises(ValueError, match="num_workers"):
        ParallelBatchLoader(RowFn(), [], num_workers=-1)

    class Ragged(RowFn):
        def output_spec(self, item):
            return {"a": ((2,), np.float32), "b": ((3,), np.float32)}

    with pytest.raises(ValueError, match="batch dimension"):
        next(ParallelBatchLoader(Ragged(), [0]))


def test_default_num_workers(monkeypatch):
    monkeypatch.setenv("ALGOPERF_NUM_DATA_WORKERS", "3")
    assert loader.default_num_workers() == 3
    monkeypatch.setenv("ALGOPERF_NUM_DATA_WORKERS", "many")
    with pytest.raises(ValueError, match="ALGOPERF_NUM_DATA_WORKERS"):
        loader.default_num_workers()
    monkeypatch.delenv("ALGOPERF_NUM_DATA_WORKERS")
    assert 1 <= loader.default_num_workers() <= max(1, (os.cpu_count() or 1))


def test_background_iterator_keeps_order_reraises_and_stops():
    assert list(BackgroundIterator(iter(range(20)), depth=3)) == list(range(20))

    def failing():
        yield 1
        raise RuntimeError("source broke")

    it = BackgroundIterator(failing())
    assert next(it) == 1
    with pytest.raises(RuntimeError, match="source broke"):
        next(it)

    produced = []

    def counting():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    it = BackgroundIterator(counting(), depth=2)
    assert next(it) == 0
    it.close()
    count = len(produced)
    time.sleep(0.3)
    assert len(produced) == count <= 5  # bounded read-ahead, and stopped


def test_shard_batches_and_check_shard():
    batches = [{"x": np.arange(6) + 10 * i, "w": np.ones(6)} for i in range(3)]
    parts = [list(loader.shard_batches(iter(batches), 6, (r, 3))) for r in range(3)]
    for i, batch in enumerate(batches):
        np.testing.assert_array_equal(np.concatenate([p[i]["x"] for p in parts]), batch["x"])
    assert loader.check_shard((1, 2), 8) == (4, 8)
    for bad in ((2, 2), (-1, 2), (0, 0)):
        with pytest.raises(ValueError, match="must be"):
            loader.check_shard(bad, 8)
    with pytest.raises(ValueError, match="divisible by count"):
        loader.check_shard((0, 3), 8)
