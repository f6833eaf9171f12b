"""Live progress: rates and ETA from samples, the line's contents, bar and plain-line modes."""

from __future__ import annotations

import io
import logging
import sys
import time

import pytest

from algoperf.runner import progress
from algoperf.runner.loop import LiveStatus, TrainState


class Ticker:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _goal(**kw):
    base = dict(label="w trial 1", budget_sec=100.0, target_metric="accuracy", target_value=0.9)
    base.update(kw)
    return progress.Goal(**base)


def test_rates_eta_and_line():
    live, tick = LiveStatus(), Ticker()
    tracker = progress.Tracker(_goal(max_global_steps=1000), live, clock=tick)
    first = tracker.sample()  # set-up: no train state yet, nothing to derive
    assert first.steps_per_sec is None and first.eta_sec is None
    live.train_state = TrainState()
    tracker.sample()
    live.global_step, live.train_state.accumulated_submission_time = 100, 5.0
    tick.t = 10.0
    r = tracker.sample()
    assert r.steps_per_sec == pytest.approx(10.0)
    # Budget: 95 s of submission time left at 0.5 s per wall second -> 190 s; steps: 900 at
    # 10 steps/s -> 90 s. The sooner wins.
    assert r.eta_sec == pytest.approx(90.0)
    live.last_eval = {"validation/accuracy": 0.8123}
    live.phase = "eval"
    line = tracker.describe(r)
    for part in (
        "step 100/1000",
        "submission 5.0s / 100s (5.0%)",
        "validation accuracy 0.8123 (target 0.9)",
        "10.0 steps/s",
        "ETA 0:01:30",
        "eval",
    ):
        assert part in line


def test_eta_from_budget_without_step_limit():
    live, tick = LiveStatus(train_state=TrainState()), Ticker()
    tracker = progress.Tracker(_goal(), live, clock=tick)
    tracker.sample()
    live.global_step, live.train_state.accumulated_submission_time = 50, 20.0
    tick.t = 40.0
    r = tracker.sample()
    assert r.eta_sec == pytest.approx((100.0 - 20.0) / 0.5)
    assert "validation accuracy -" in tracker.describe(r)


def test_plain_lines_when_not_a_terminal(caplog):
    live = LiveStatus(train_state=TrainState(), phase="training")
    assert progress.choose_mode(None, io.StringIO()) == "lines"
    assert progress.choose_mode(False, io.StringIO()) == "off"
    with (
        caplog.at_level(logging.INFO, logger="algoperf.progress"),
        progress.Reporter(_goal(), live, "lines", interval_sec=0.05),
    ):
        for step in range(1, 6):
            live.global_step = step
            time.sleep(0.03)
    lines = [r.getMessage() for r in caplog.records if r.name == "algoperf.progress"]
    assert len(lines) >= 2  # periodic lines plus the final one
    assert lines[-1].startswith("w trial 1: step 5 | submission")


def test_bar_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    assert progress.choose_mode(None, out) == "bar"
    live = LiveStatus(train_state=TrainState(accumulated_submission_time=25.0), phase="training")
    live.global_step = 42
    live.last_eval = {"validation/accuracy": 0.5}
    with progress.Reporter(_goal(), live, "bar", stream=out):
        time.sleep(0.05)
    text = out.getvalue()
    # An 80-column terminal (rich's default for a file): the compact line, with the bar.
    assert "trial 1" in text and "━" in text
    assert "step 42 25.0/100s val 0.5000/0.9" in text


def test_log_lines_go_above_the_bar(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    monkeypatch.setattr(sys, "stderr", out)
    monkeypatch.setenv("TERM", "xterm")
    handler = logging.StreamHandler(out)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        live = LiveStatus(train_state=TrainState(), phase="training")
        with progress.Reporter(_goal(), live, "bar"):
            assert handler.stream is not out  # routed through rich while the bar is shown
            logging.getLogger("algoperf.test").warning("hello from the loop")
        assert handler.stream is out and sys.stderr is out
    finally:
        root.removeHandler(handler)
    # The bar's line is cleared before the record is printed, then drawn again below it.
    assert "\r\x1b[2Khello from the loop" in out.getvalue()


def test_compact_line():
    live = LiveStatus(train_state=TrainState(accumulated_submission_time=25.0), phase="eval")
    live.global_step = 42
    live.last_eval = {"validation/accuracy": 0.5}
    tracker = progress.Tracker(_goal(max_global_steps=100), live)
    line = tracker.describe_compact(tracker.sample())
    assert line == "step 42/100 25.0/100s val 0.5000/0.9 -/s ETA - eval"


def test_off_starts_no_thread():
    reporter = progress.Reporter(_goal(), LiveStatus(), "off")
    reporter.start()
    assert reporter._thread is None
    reporter.stop()
    with pytest.raises(ValueError, match="bar, lines or off"):
        progress.Reporter(_goal(), LiveStatus(), "fancy")
