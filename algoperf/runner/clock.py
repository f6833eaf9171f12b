"""The runner's clock: `now` waits for device work before reading, `peek` does not; DDP ranks agree.

Which readings wait is the loop's policy (`algoperf.runner.loop`: every step end by default, as
upstream's ``get_time()``; only eval-eligible points with ``--timing_sync=eval_points``).

Readings are in upstream's clock domain (seconds since the epoch, comparable with
``time.time()``, so a submission that reads ``train_state`` times sees what upstream gives it),
but advance with `time.perf_counter` (monotonic): the epoch offset is fixed when the clock is
made, so a wall-clock adjustment during a run cannot shift a measurement. Tests inject a
`FakeClock` to check the loop's accounting exactly; it records which readings synchronised.

Under DDP every reading is the maximum over ranks (the slowest rank defines the clock), so all
ranks take the same eval and budget decisions. `peek_agree` carries a small integer "stop code"
(preemption, divergence) in the same all-reduce, so ranks also agree on when to stop without a
second collective per step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

ReduceMax = Callable[[Sequence[float]], Sequence[float]]


class Clock:
    """Reads time after waiting for queued device work (`sync`), max-reduced across ranks.

    Args:
      sync: waits for the device work producing `pending` (or all of it when None).
      reduce_max: element-wise maximum of a list of floats over DDP ranks (None: one process).
    """

    def __init__(
        self,
        sync: Callable[[Any], None] | None = None,
        reduce_max: ReduceMax | None = None,
    ) -> None:
        self._sync = sync
        self._reduce_max = reduce_max
        self._offset = time.time() - time.perf_counter()

    def now(self, pending: Any = None) -> float:
        """Seconds (epoch domain, monotonic) once `pending` device work (or all of it) finished."""
        if self._sync is not None:
            self._sync(pending)
        return self.peek()

    def now_agree(self, pending: Any = None, code: int = 0) -> tuple[float, int]:
        """`now` plus the maximum of `code` over ranks, in one collective."""
        if self._sync is not None:
            self._sync(pending)
        return self.peek_agree(code)

    def peek(self) -> float:
        """Seconds on the clock without waiting for queued device work (still max over ranks).

        Cheap enough for every step; a reading that closes a timed interval whose length is
        recorded must use `now`.
        """
        t = time.perf_counter() + self._offset
        if self._reduce_max is not None:
            t = float(self._reduce_max([t])[0])
        return t

    def peek_agree(self, code: int = 0) -> tuple[float, int]:
        """`peek` plus the maximum of `code` over ranks, in one collective."""
        t = time.perf_counter() + self._offset
        if self._reduce_max is not None:
            t, c = self._reduce_max([t, float(code)])
            return float(t), int(c)
        return t, code


class FakeClock(Clock):
    """A clock that only moves when told to: for exact tests of the loop's time accounting.

    ``reads`` counts every reading; ``synced`` lists the times of the synchronised ones (`now`,
    `now_agree`), ``unsynced`` those of the others (`peek`, `peek_agree`).
    """

    def __init__(self, start: float = 1000.0) -> None:
        super().__init__()
        self.t = start
        self.reads = 0
        self.synced: list[float] = []
        self.unsynced: list[float] = []

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def now(self, pending: Any = None) -> float:
        del pending
        self.reads += 1
        self.synced.append(self.t)
        return self.t

    def now_agree(self, pending: Any = None, code: int = 0) -> tuple[float, int]:
        return self.now(pending), code

    def peek(self) -> float:
        self.reads += 1
        self.unsynced.append(self.t)
        return self.t

    def peek_agree(self, code: int = 0) -> tuple[float, int]:
        return self.peek(), code


def for_framework(framework: str) -> Clock:
    """The real clock for a framework: JAX blocks on arrays, PyTorch syncs CUDA and reduces."""
    if framework == "jax":
        import jax

        def jax_sync(pending: Any) -> None:
            if pending is not None:
                jax.block_until_ready(pending)

        return Clock(sync=jax_sync)

    from algoperf.frameworks import pytorch as fpt

    info = fpt.setup()

    def torch_sync(pending: Any) -> None:
        del pending
        fpt.sync(info.device)

    reduce = (
        (lambda values: fpt.max_across_ranks_many(values, info.device)) if info.use_ddp else None
    )
    return Clock(sync=torch_sync, reduce_max=reduce)
