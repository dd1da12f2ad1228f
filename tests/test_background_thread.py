"""BackgroundLoop: wait/step rounds, wake, counted step errors, bounded and logged stop."""

from __future__ import annotations

import logging
import threading
import time
import types
from typing import Any

import pytest

from omgrab import background_thread, loop_health
from omgrab.app.web import live, snapshot

WAIT = 30.0  # generous bound for a busy machine; every wait below ends on an Event


class _Steps:
    """A step whose behaviour each round is scripted by the test."""

    def __init__(self, delays: list[float | None], fail_on: set[int] | None = None) -> None:
        self.delays = delays
        self.fail_on = fail_on or set()
        self.count = 0
        self.ran = [threading.Event() for _ in range(8)]
        self.threads: list[str] = []

    def __call__(self) -> float | None:
        index = self.count
        self.count += 1
        self.threads.append(threading.current_thread().name)
        self.ran[min(index, len(self.ran) - 1)].set()
        if index in self.fail_on:
            raise ValueError(f"round {index} broke")
        return self.delays[min(index, len(self.delays) - 1)]


def test_steps_run_on_the_named_thread_and_wake_ends_an_open_wait() -> None:
    steps = _Steps([None, None, None])  # after each round: wait until woken
    loop = background_thread.BackgroundLoop("test-loop", steps, health=loop_health.LoopHealth())
    loop.start()
    try:
        assert steps.ran[0].wait(WAIT)  # first_wait_s=0: the first round at once
        assert not steps.ran[1].wait(0.2)  # None: no second round until woken
        loop.wake()
        assert steps.ran[1].wait(WAIT)
        assert steps.threads == ["test-loop", "test-loop"]
        with pytest.raises(RuntimeError, match="already started"):
            loop.start()
    finally:
        assert loop.stop(WAIT)
    assert not loop.alive and loop.stopping
    assert steps.count == 2  # the stop ended the wait without another round


def test_a_failing_step_is_counted_logged_recorded_and_the_loop_goes_on(caplog) -> None:
    health = loop_health.LoopHealth()
    steps = _Steps([None], fail_on={0, 1})
    loop = background_thread.BackgroundLoop("flaky", steps, retry_s=0.0, health=health)
    with caplog.at_level(logging.ERROR, logger="omgrab.background_thread"):
        loop.start()
        assert steps.ran[2].wait(WAIT)  # two failures, each retried after retry_s
        assert loop.stop(WAIT)
    assert loop.errors == 2 and not loop.failed
    assert loop.last_error == "ValueError: round 1 broke"
    assert health.counts() == {"flaky": 2}
    assert health.last_errors() == {"flaky": "ValueError: round 1 broke"}
    failures = [r for r in caplog.records if "step failed" in r.getMessage()]
    assert len(failures) == 2 and all(r.exc_info for r in failures)


def test_first_wait_delays_the_first_round_until_woken() -> None:
    steps = _Steps([None])
    loop = background_thread.BackgroundLoop(
        "late", steps, first_wait_s=None, health=loop_health.LoopHealth()
    )
    loop.start()
    try:
        assert not steps.ran[0].wait(0.2)
        loop.wake()
        assert steps.ran[0].wait(WAIT)
    finally:
        assert loop.stop(WAIT)


def test_stop_of_a_stuck_step_returns_false_after_the_timeout_and_says_so(caplog) -> None:
    release = threading.Event()
    entered = threading.Event()

    def stuck() -> float:
        entered.set()
        release.wait(WAIT)
        return 0.0

    loop = background_thread.BackgroundLoop("stuck", stuck, health=loop_health.LoopHealth())
    loop.start()
    assert entered.wait(WAIT)
    with caplog.at_level(logging.WARNING, logger="omgrab.background_thread"):
        assert not loop.stop(0.05)
    assert loop.alive
    assert any("stuck still running" in r.getMessage() for r in caplog.records)
    release.set()
    assert loop.stop(WAIT) and not loop.alive


def test_stop_before_start_is_a_no_op() -> None:
    loop = background_thread.BackgroundLoop("idle", lambda: None)
    assert loop.stop(0.0) and not loop.alive


def test_a_base_exception_ends_the_thread_visibly() -> None:
    health = loop_health.LoopHealth()
    entered = threading.Event()

    def fatal() -> float:
        entered.set()
        raise SystemExit(3)

    loop = background_thread.BackgroundLoop("fatal", fatal, health=health)
    loop.start()
    assert entered.wait(WAIT)
    assert loop.stop(WAIT)
    assert loop.failed and loop.errors == 1
    assert health.counts() == {"fatal": 1}


def test_a_failing_console_status_snapshot_is_counted_in_loop_health() -> None:
    before = loop_health.default().errors("console-snapshot")
    status = snapshot.StatusSnapshot(types.SimpleNamespace())  # no recorder: building fails
    status.refresh()
    assert status.errors == 1 and status.last_error is not None
    assert status.document() == {"state": "starting"}  # the previous document stays
    assert loop_health.default().errors("console-snapshot") == before + 1


def test_live_view_frame_errors_are_counted_and_the_thread_goes_on() -> None:
    def broken_preview() -> None:
        raise RuntimeError("camera unplugged")

    app: Any = types.SimpleNamespace(device=types.SimpleNamespace(preview=broken_preview))
    view = live.LiveView(app, fps=100.0, state=lambda: "recording")
    view._viewers = 1  # someone watches (what an MJPEG request does)
    before = loop_health.default().errors("console-live")
    view.start()
    try:
        deadline = time.monotonic() + WAIT
        while view.errors < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert view.errors >= 2  # one failed frame did not end the thread
    finally:
        view.stop()
    assert loop_health.default().errors("console-live") >= before + 2
