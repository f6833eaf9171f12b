"""Live progress of a trial: a bar on a terminal, plain periodic log lines otherwise.

Shown: step, submission time against the budget, the last validation value of the target
metric against its target, steps per second and an ETA (the sooner of: the budget running out at
the current ratio of submission time to wall time, and ``max_global_steps`` at the current step
rate).

Cost to the measurement: the loop only stores the step count in a `loop.LiveStatus` (one
attribute write per step); a daemon thread reads it and renders, twice a second on a terminal
and every ``interval_sec`` (default 30 s) otherwise. Rendering briefly holds the GIL, well under
0.1 % of the time at these rates.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import math
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from algoperf.runner.loop import LiveStatus

log = logging.getLogger("algoperf.progress")

BAR_PERIOD_SEC = 0.5
BAR_WIDTH = 16  # characters of the bar (submission time / budget)


@dataclasses.dataclass(frozen=True)
class Goal:
    """What the display compares against."""

    label: str  # e.g. "fashion_mnist_jax trial 1"
    budget_sec: float
    target_metric: str
    target_value: float
    max_global_steps: int | None = None


@dataclasses.dataclass
class Reading:
    """One sample of the live status with the rates derived from the previous sample."""

    wall: float
    step: int
    submission_time: float
    steps_per_sec: float | None
    eta_sec: float | None


class Tracker:
    """Turns successive `LiveStatus` samples into rates and an ETA (pure; tested directly).

    steps/s is measured over the last sampling interval; the ETA uses averages since the first
    sample, so evals (wall time that is not submission time) are priced in.
    """

    def __init__(self, goal: Goal, live: LiveStatus, clock: Callable[[], float] = time.monotonic):
        self.goal = goal
        self.live = live
        self._clock = clock
        self._first: tuple[float, int, float] | None = None  # set once training has started
        self._prev: tuple[float, int] | None = None

    def sample(self) -> Reading:
        wall = self._clock()
        step = self.live.global_step
        state = self.live.train_state
        sub = state.accumulated_submission_time if state is not None else 0.0
        rate = eta = None
        if self._prev is not None and wall > self._prev[0]:
            rate = max(0, step - self._prev[1]) / (wall - self._prev[0])
        if self._first is not None and wall > self._first[0]:
            f_wall, f_step, f_sub = self._first
            elapsed = wall - f_wall
            etas = []
            sub_rate = (sub - f_sub) / elapsed  # submission seconds per wall second
            if sub_rate > 0 and math.isfinite(self.goal.budget_sec):
                etas.append(max(0.0, self.goal.budget_sec - sub) / sub_rate)
            step_rate = (step - f_step) / elapsed
            if self.goal.max_global_steps is not None and step_rate > 0:
                etas.append(max(0, self.goal.max_global_steps - step) / step_rate)
            eta = min(etas) if etas else None
        if self._first is None and state is not None:
            self._first = (wall, step, sub)
        self._prev = (wall, step)
        return Reading(wall, step, sub, rate, eta)

    def describe(self, r: Reading) -> str:
        """One line: step, submission time vs budget, validation metric vs target, rate, ETA."""
        g = self.goal
        share = 100.0 * r.submission_time / g.budget_sec if g.budget_sec > 0 else 0.0
        budget = f"{g.budget_sec:.0f}s" if math.isfinite(g.budget_sec) else "inf"
        steps = f"step {r.step}"
        if g.max_global_steps is not None:
            steps += f"/{g.max_global_steps}"
        parts = [
            steps,
            f"submission {r.submission_time:.1f}s / {budget} ({share:.1f}%)",
            f"validation {g.target_metric} {_metric(self.live.last_eval, g.target_metric)} "
            f"(target {g.target_value:g})",
            f"{r.steps_per_sec:.1f} steps/s" if r.steps_per_sec is not None else "- steps/s",
            f"ETA {_duration(r.eta_sec)}",
        ]
        if self.live.phase not in ("training", "done"):
            parts.append(self.live.phase)
        return " | ".join(parts)

    def describe_compact(self, r: Reading) -> str:
        """The same facts in about 60 characters, for a bar on a narrow terminal."""
        g = self.goal
        budget = f"{g.budget_sec:.0f}s" if math.isfinite(g.budget_sec) else "inf"
        steps = f"{r.step}" + (f"/{g.max_global_steps}" if g.max_global_steps is not None else "")
        metric = _metric(self.live.last_eval, g.target_metric)
        rate = f"{r.steps_per_sec:.0f}/s" if r.steps_per_sec is not None else "-/s"
        parts = [
            f"step {steps}",
            f"{r.submission_time:.1f}/{budget}",
            f"val {metric}/{g.target_value:g}",
            rate,
            f"ETA {_duration(r.eta_sec)}",
        ]
        if self.live.phase not in ("training", "done"):
            parts.append(self.live.phase)
        return " ".join(parts)


def _metric(last_eval: dict[str, Any] | None, name: str) -> str:
    if not last_eval or f"validation/{name}" not in last_eval:
        return "-"
    return f"{float(last_eval[f'validation/{name}']):.4f}"


def _duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    return str(datetime.timedelta(seconds=round(seconds)))


class Reporter:
    """Renders a `LiveStatus` from a daemon thread until `stop` (or the ``with`` block ends).

    Args:
      goal: budget, target, label.
      live: the loop's live status.
      mode: ``bar`` (rich, on a terminal), ``lines`` (log lines every `interval_sec`) or ``off``.
      interval_sec: period of plain lines.
      stream: where the bar is drawn (default stderr).
    """

    def __init__(
        self,
        goal: Goal,
        live: LiveStatus,
        mode: str = "lines",
        interval_sec: float = 30.0,
        stream: IO[str] | None = None,
    ) -> None:
        if mode not in ("bar", "lines", "off"):
            raise ValueError(f"progress mode must be bar, lines or off, got {mode!r}")
        self.tracker = Tracker(goal, live)
        self.mode = mode
        self.interval_sec = interval_sec
        self.stream = stream
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._progress: Any = None
        self._task: Any = None
        self._swapped: list[tuple[logging.StreamHandler, IO[str]]] = []
        # The bar shows "trial <k>"; the workload is in the log lines around it.
        self._short_label = " ".join(goal.label.split()[-2:])

    def __enter__(self) -> Reporter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self.mode == "off":
            return
        if self.mode == "bar":
            self._start_bar()
        period = BAR_PERIOD_SEC if self.mode == "bar" else self.interval_sec
        self.tracker.sample()
        self._thread = threading.Thread(
            target=self._run, args=(period,), name="algoperf-progress", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        self.render()  # the final state
        if self._progress is not None:
            self._progress.stop()
            for handler, stream in self._swapped:
                handler.setStream(stream)
            self._swapped.clear()
            self._progress = None

    def _run(self, period: float) -> None:
        while not self._stop.wait(period):
            try:
                self.render()
            except Exception:  # a display problem must never end a trial
                log.debug("progress rendering failed", exc_info=True)

    def render(self) -> str:
        """Sample the status and show it; return the line shown."""
        reading = self.tracker.sample()
        line = self.tracker.describe(reading)
        if self._progress is not None:
            budget = self.tracker.goal.budget_sec
            room = self._progress.console.width - len(self._short_label) - BAR_WIDTH - 4
            self._progress.update(
                self._task,
                completed=min(reading.submission_time, budget) if math.isfinite(budget) else 0,
                info=line if len(line) <= room else self.tracker.describe_compact(reading),
            )
            self._progress.refresh()
        elif self.mode == "lines":
            log.info("%s: %s", self.tracker.goal.label, line)
        return line

    def _start_bar(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        stream = self.stream if self.stream is not None else sys.stderr
        redirect = stream is sys.stderr  # (decided before rich replaces sys.stderr)
        console = Console(file=stream, force_terminal=True)
        budget = self.tracker.goal.budget_sec
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=BAR_WIDTH),
            TextColumn("{task.fields[info]}"),
            console=console,
            auto_refresh=False,
            redirect_stderr=redirect,
            redirect_stdout=False,
        )
        self._task = self._progress.add_task(
            self._short_label, total=budget if math.isfinite(budget) else None, info=""
        )
        self._progress.start()
        if redirect:
            # Log records written straight to the terminal would tear the bar; send them through
            # rich's stderr proxy, which prints them above it.
            for handler in logging.getLogger().handlers:
                if isinstance(handler, logging.StreamHandler) and handler.stream is stream:
                    self._swapped.append((handler, handler.stream))
                    handler.setStream(sys.stderr)


def choose_mode(setting: bool | None, stream: IO[str] | None = None) -> str:
    """``off`` if disabled; ``bar`` when forced or when `stream` (stderr) is a terminal; else
    ``lines``."""
    if setting is False:
        return "off"
    stream = stream if stream is not None else sys.stderr
    is_tty = bool(getattr(stream, "isatty", lambda: False)())
    return "bar" if setting is True or is_tty else "lines"
