"""Ordered, deterministic, multi-worker batch loading (framework-free, numpy only).

`ParallelBatchLoader` turns a stream of cheap *work items* (e.g. the file names, labels and step
number of one batch) into full numpy batches, decoding in a pool of worker processes (or threads)
while the accelerator computes. Its guarantees:

* **Order and determinism.** Batches come out in item order, and every output row is a pure
  function of (item, row): a `BatchFn` fills rows, and each row draws from its own generator
  (`algoperf.data.images.example_rng`). So the batches are bit-identical for any `num_workers`,
  either backend and any chunking; upstream's PyTorch ImageNet eval changed with the worker count
  (issue #732), which this design rules out and tests check.
* **No copies of big arrays between processes.** Each batch lives in a buffer file in shared
  memory (``/dev/shm``, else the temp dir; ``ALGOPERF_SHM_DIR`` overrides) sized by
  `BatchFn.output_spec`; workers map it and write their rows in place, and the consumer gets numpy
  views of the parent's mapping. A worker result is only ``None``. Buffers are reused once no view
  of them is alive any more (reference count of the mapping), so after warm-up no page is faulted
  in again; this halves the kernel time of the process backend. A consumer may keep batches as
  long as it likes: a buffer still in use is never overwritten.
* **Keeps workers busy.** A batch is split into chunks of rows (default: one chunk per worker),
  and up to `prefetch` batches are in flight, so workers keep decoding the next batch while the
  consumer holds the current one.
* **Clean shutdown.** `close()` (also on exhaustion, on an error, by ``with``, or on garbage
  collection) cancels queued work, joins the workers and unlinks every shared file it created.
  Workers ignore SIGINT so Ctrl-C reaches the main process only. Files left behind by a killed
  process (name holds its pid) are removed by the next loader.

Processes vs threads: Pillow releases the GIL while decoding and resizing, but not in its Python
glue, RandAugment's numpy ops or the per-image bookkeeping; benchmarks/image_pipeline.py measures
both backends side by side. Processes are the default (``forkserver`` start method on Linux, so a
parent that already runs JAX or CUDA threads is never forked); `BatchFn` objects must therefore be
picklable (module-level classes or dataclasses holding paths and options, not open files), and
a main script that creates a process loader at import time needs the usual
``if __name__ == "__main__":`` guard (worker start-up imports the main module, as with spawn).
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import math
import mmap
import multiprocessing
import os
import signal
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


class WorkerError(RuntimeError):
    """The worker pool broke (a worker process died); the message says what to check."""


ArraySpec = Mapping[str, tuple[tuple[int, ...], Any]]

_SHM_PREFIX = "algoperf-loader-"
_ALIGN = 64


@runtime_checkable
class BatchFn(Protocol):
    """Builds one batch from one work item, a range of rows at a time.

    `output_spec(item)` gives the full shape and dtype of every output array (all share the
    leading batch dimension); `fill(item, out, start, stop)` writes every element of rows
    ``start:stop`` of every array in `out` (buffers are reused: padding must be written too) and
    nothing else. Rows must not depend on which other rows a call fills.
    """

    def output_spec(self, item: Any) -> ArraySpec: ...

    def fill(self, item: Any, out: Mapping[str, np.ndarray], start: int, stop: int) -> None: ...


def default_num_workers() -> int:
    """Worker count when none is given: ``ALGOPERF_NUM_DATA_WORKERS`` or usable cores - 1."""
    env = os.environ.get("ALGOPERF_NUM_DATA_WORKERS")
    if env:
        try:
            return max(0, int(env))
        except ValueError:
            raise ValueError(
                f"ALGOPERF_NUM_DATA_WORKERS={env!r} is not an integer; set it to a worker count"
            ) from None
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def check_shard(shard: tuple[int, int], global_batch_size: int) -> tuple[int, int]:
    """Rows ``(lo, hi)`` of a global batch that shard ``(index, count)`` holds; a clear error
    when the shard is malformed or does not divide the batch."""
    index, count = shard
    if count < 1 or not 0 <= index < count or global_batch_size % count:
        raise ValueError(
            f"shard {shard} must be (index, count) with 0 <= index < count and the global batch "
            f"size {global_batch_size} divisible by count"
        )
    local = global_batch_size // count
    return index * local, (index + 1) * local


def shard_batches(
    batches: Iterable[Mapping[str, np.ndarray]], global_batch_size: int, shard: tuple[int, int]
) -> Iterator[dict[str, np.ndarray]]:
    """Shard ``(index, count)``'s rows of every global batch (views, no copy).

    For families whose whole batches are cheap (in-memory arrays); loaders that decode per row
    take the shard themselves and never build the other rows (ImageNet).
    """
    lo, hi = check_shard(shard, global_batch_size)
    for batch in batches:
        yield {k: v[lo:hi] for k, v in batch.items()}


# Shared-memory batches ------------------------------------------------------------------------


def _layout(spec: ArraySpec) -> tuple[list[tuple[str, str, tuple[int, ...], int]], int]:
    """(key, dtype str, shape, byte offset) per array, 64-byte aligned, and the total size."""
    layout, offset = [], 0
    for key, (shape, dtype) in spec.items():
        dt = np.dtype(dtype)
        shape = tuple(int(s) for s in shape)
        layout.append((key, dt.str, shape, offset))
        nbytes = dt.itemsize * math.prod(shape)
        offset += -(-nbytes // _ALIGN) * _ALIGN
    return layout, max(offset, 1)


def _views(
    buffer: Any, layout: list[tuple[str, str, tuple[int, ...], int]]
) -> dict[str, np.ndarray]:
    return {
        key: np.ndarray(shape, dtype=np.dtype(dt), buffer=buffer, offset=off)
        for key, dt, shape, off in layout
    }


def _shm_dir(required_bytes: int) -> Path:
    """Shared-memory directory with room for `required_bytes`, else the (disk) temp dir."""
    override = os.environ.get("ALGOPERF_SHM_DIR")
    if override:
        return Path(override)
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        st = os.statvfs(shm)
        # Docker's default /dev/shm is 64 MiB: writing past it would kill a worker with SIGBUS.
        if st.f_bavail * st.f_frsize > 2 * required_bytes:
            return shm
    return Path(tempfile.gettempdir())


_cleaned_dirs: set[Path] = set()


def _remove_stale_files(directory: Path) -> None:
    """Unlink shared batch files of loader processes that no longer exist (killed with -9)."""
    if directory in _cleaned_dirs:
        return
    _cleaned_dirs.add(directory)
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            if not entry.name.startswith(_SHM_PREFIX):
                continue
            try:
                pid = int(entry.name[len(_SHM_PREFIX) :].split("-", 1)[0])
            except ValueError:
                continue
            if pid == os.getpid() or _pid_alive(pid):
                continue
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _map_file(path: str, size: int, create: bool) -> mmap.mmap:
    flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
    fd = os.open(path, flags, 0o600)
    try:
        if create:
            os.ftruncate(fd, size)
        return mmap.mmap(fd, size)
    finally:
        os.close(fd)


# Worker side -----------------------------------------------------------------------------------

_worker_fn: BatchFn | None = None


def _init_worker(fn: BatchFn) -> None:
    global _worker_fn
    _worker_fn = fn
    # Ctrl-C goes to the whole process group; let the parent decide and shut the pool down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# Mappings a worker keeps open between tasks (buffers are reused, so their pages stay mapped).
_worker_maps: collections.OrderedDict[str, mmap.mmap] = collections.OrderedDict()
_MAX_WORKER_MAPS = 16


def _worker_map(path: str, size: int) -> mmap.mmap:
    # Forget mappings of files the parent has removed, so their memory is freed at once.
    for old in [p for p in _worker_maps if p != path and not os.path.exists(p)]:
        _close_map(_worker_maps.pop(old))
    mm = _worker_maps.get(path)
    if mm is None or len(mm) < size:
        if mm is not None:
            _close_map(_worker_maps.pop(path))
        mm = _map_file(path, size, create=False)
        _worker_maps[path] = mm
        while len(_worker_maps) > _MAX_WORKER_MAPS:
            _close_map(_worker_maps.popitem(last=False)[1])
    _worker_maps.move_to_end(path)
    return mm


def _close_map(mm: mmap.mmap) -> None:
    with contextlib.suppress(BufferError):
        mm.close()


def _fill_shared(path: str, layout: list, size: int, item: Any, start: int, stop: int) -> None:
    assert _worker_fn is not None, "worker not initialised"
    out = _views(_worker_map(path, size), layout)
    _worker_fn.fill(item, out, start, stop)


class _Slot:
    """One shared batch buffer: a file in the shared-memory folder, mapped in the parent.

    Reused for a later batch once no array views it any more: every numpy view of the mapping
    holds a reference to the `mmap` object, so its reference count says whether the consumer
    (or a transfer to the device still in progress) holds part of the batch.
    """

    __slots__ = ("baseline", "mm", "path", "size")

    def __init__(self, path: str, size: int) -> None:
        self.path = path
        self.size = size
        self.mm = _map_file(path, size, create=True)
        self.baseline = sys.getrefcount(self.mm)

    def free(self) -> bool:
        return sys.getrefcount(self.mm) <= self.baseline

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)


# The loader ------------------------------------------------------------------------------------


class _Pending:
    __slots__ = ("arrays", "futures", "item")

    def __init__(self, item: Any, arrays: dict[str, np.ndarray]) -> None:
        self.item = item
        self.arrays = arrays
        self.futures: list[cf.Future[None]] = []


class ParallelBatchLoader(Iterator[dict[str, np.ndarray]]):
    """Iterator of batches ``batch_fn(item)`` for `items`, in order, decoded by a worker pool.

    Args:
        batch_fn: a picklable `BatchFn`.
        items: iterable (possibly infinite) of picklable work items, consumed lazily.
        num_workers: 0 decodes in the calling thread (no pool); otherwise the pool size.
        prefetch: batches in flight (queued or being decoded) ahead of the consumer; default 2.
        backend: "process" (default) or "thread".
        chunk_rows: rows per task; default splits each batch into one chunk per worker.
        start_method: multiprocessing start method for the process backend (default:
            "forkserver" on Linux, the platform default elsewhere).
    """

    def __init__(
        self,
        batch_fn: BatchFn,
        items: Iterable[Any],
        *,
        num_workers: int = 0,
        prefetch: int = 2,
        backend: str = "process",
        chunk_rows: int | None = None,
        start_method: str | None = None,
    ) -> None:
        if backend not in ("process", "thread"):
            raise ValueError(f"backend must be 'process' or 'thread', got {backend!r}")
        if num_workers < 0 or prefetch < 1:
            raise ValueError(
                f"need num_workers >= 0 and prefetch >= 1, got {num_workers}, {prefetch}"
            )
        self.batch_fn = batch_fn
        self.num_workers = num_workers
        self.prefetch = prefetch
        self.backend = backend
        self.chunk_rows = chunk_rows
        self._items = iter(items)
        self._items_done = False
        self._pending: collections.deque[_Pending] = collections.deque()
        self._closed = False
        self._lock = threading.Lock()
        self._pool: cf.Executor | None = None
        self._token = f"{_SHM_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._counter = 0
        self._slots: list[_Slot] = []
        if num_workers > 0:
            if backend == "thread":
                self._pool = cf.ThreadPoolExecutor(num_workers, thread_name_prefix="algoperf-data")
            else:
                if start_method is None:
                    start_method = "forkserver" if sys.platform.startswith("linux") else None
                ctx = multiprocessing.get_context(start_method)
                self._pool = cf.ProcessPoolExecutor(
                    num_workers, mp_context=ctx, initializer=_init_worker, initargs=(batch_fn,)
                )

    # Iterator protocol ----------------------------------------------------------------------

    def __iter__(self) -> ParallelBatchLoader:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        if self._closed:
            raise StopIteration
        if self._pool is None:
            return self._next_inline()
        try:
            self._submit_ahead()
            if not self._pending:
                self.close()
                raise StopIteration
            batch = self._pending.popleft()
            self._wait(batch)
            self._submit_ahead()
            return batch.arrays
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _wait(batch: _Pending) -> None:
        for future in batch.futures:
            try:
                future.result()
            except BrokenProcessPool as e:
                raise WorkerError(
                    "a data-loading worker process died (killed, out of memory, or failed to "
                    "start: a main script that starts loaders at import time needs an "
                    "`if __name__ == '__main__':` guard); or use backend='thread' or "
                    "num_workers=0"
                ) from e

    def _next_inline(self) -> dict[str, np.ndarray]:
        try:
            item = next(self._items)
        except StopIteration:
            self.close()
            raise
        arrays = _allocate_local(self.batch_fn.output_spec(item))
        try:
            self.batch_fn.fill(item, arrays, 0, _rows(arrays))
        except BaseException:
            self.close()
            raise
        return arrays

    # Scheduling -------------------------------------------------------------------------------

    def _submit_ahead(self) -> None:
        while not self._items_done and len(self._pending) < self.prefetch:
            try:
                item = next(self._items)
            except StopIteration:
                self._items_done = True
                return
            self._pending.append(self._submit(item))

    def _submit(self, item: Any) -> _Pending:
        assert self._pool is not None
        spec = self.batch_fn.output_spec(item)
        if self.backend == "thread":
            pending = _Pending(item, _allocate_local(spec))
            fill = self.batch_fn.fill
            submit = lambda a, b: self._pool.submit(fill, item, pending.arrays, a, b)  # noqa: E731
        else:
            layout, size = _layout(spec)
            slot = self._acquire_slot(size)
            pending = _Pending(item, _views(slot.mm, layout))
            path = slot.path
            submit = lambda a, b: self._pool.submit(  # noqa: E731
                _fill_shared, path, layout, size, item, a, b
            )
        rows = _rows(pending.arrays)
        chunk = self.chunk_rows or max(1, -(-rows // self.num_workers))
        for start in range(0, max(rows, 1), chunk):
            pending.futures.append(submit(start, min(rows, start + chunk)))
        return pending

    def _acquire_slot(self, size: int) -> _Slot:
        """A free shared buffer of at least `size` bytes: reused if possible, else a new file."""
        free = [slot for slot in self._slots if slot.free()]
        for slot in free:
            if slot.size >= size:
                break
        else:
            directory = _shm_dir(size)
            _remove_stale_files(directory)
            self._counter += 1
            slot = _Slot(str(directory / f"{self._token}-{self._counter}"), size)
            self._slots.append(slot)
            free.append(slot)
        # Keep a few idle buffers for reuse; drop the rest (their memory goes with the last view).
        for extra in [s for s in free if s is not slot][self.prefetch + 1 :]:
            extra.remove()
            self._slots.remove(extra)
        return slot

    # Shutdown -----------------------------------------------------------------------------------

    def close(self) -> None:
        """Cancel queued work, stop the workers and remove this loader's shared files."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            for batch in self._pending:
                for future in batch.futures:
                    future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()
        for slot in self._slots:
            slot.remove()  # arrays still held by the consumer keep their mapping
        self._slots.clear()
        close_items = getattr(self._items, "close", None)
        if close_items is not None:
            with contextlib.suppress(Exception):
                close_items()

    def __enter__(self) -> ParallelBatchLoader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def _allocate_local(spec: ArraySpec) -> dict[str, np.ndarray]:
    # np.zeros maps fresh zero pages lazily, so padded rows a BatchFn skips cost nothing.
    return {key: np.zeros(shape, dtype=dtype) for key, (shape, dtype) in spec.items()}


def _rows(arrays: Mapping[str, np.ndarray]) -> int:
    sizes = {a.shape[0] for a in arrays.values()}
    if len(sizes) != 1:
        raise ValueError(f"all output arrays must share the batch dimension, got {sorted(sizes)}")
    return sizes.pop()


class BackgroundIterator(Iterator[Any]):
    """Runs an iterator in a daemon thread, `depth` items ahead (for cheap in-process pipelines).

    Order is preserved and exceptions are re-raised in the consumer. `close()` stops the thread
    at the next item boundary.
    """

    _END = object()

    def __init__(self, iterator: Iterable[Any], depth: int = 2) -> None:
        import queue

        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._source = iter(iterator)
        self._thread = threading.Thread(target=self._run, name="algoperf-prefetch", daemon=True)
        self._thread.start()
        self._done = False

    def _run(self) -> None:
        try:
            for value in self._source:
                if not self._put((True, value)):
                    return
            self._put((True, self._END))
        except BaseException as e:
            self._put((False, e))

    def _put(self, entry: tuple[bool, Any]) -> bool:
        import queue

        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> BackgroundIterator:
        return self

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        ok, value = self._queue.get()
        if not ok:
            self._done = True
            raise value
        if value is self._END:
            self._done = True
            raise StopIteration
        return value

    def close(self) -> None:
        """Stop the background thread (it finishes the item it is computing)."""
        self._done = True
        self._stop.set()
        self._thread.join(timeout=10)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._stop.set()
