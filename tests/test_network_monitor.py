"""NetworkMonitor: status ordering, config validation, hysteresis, backoff, thread, callbacks.

Hysteresis and backoff are stepped with ``poll()``, a scripted probe, a manual clock and a seeded
rng: no thread and no sleeping. Thread behaviour is synchronised with Events.
"""

from __future__ import annotations

import random
import threading

import hypothesis
import pytest
from hypothesis import strategies as st

from omgrab import clock
from omgrab.runtime import network_monitor as nm
from omgrab.testing import network as testing_network

ON = nm.Status.ONLINE
NET = nm.Status.NETWORK_ONLY
OFF = nm.Status.OFFLINE


class ScriptedProbe:
    """Returns the statuses it is told to, and records how often it ran."""

    def __init__(self, status: nm.Status = OFF) -> None:
        self.status = status
        self.calls = 0
        self.called = threading.Event()
        self.lock = threading.Lock()

    def __call__(self) -> nm.ProbeResult:
        with self.lock:
            self.calls += 1
            status = self.status
        self.called.set()
        return nm.ProbeResult(status, f"scripted {status.label} #{self.calls}")


def make_monitor(
    probe: ScriptedProbe, source: clock.ManualTimeSource | None = None, **cfg: object
) -> nm.NetworkMonitor:
    cfg.setdefault("jitter_frac", 0.0)
    return nm.NetworkMonitor(
        nm.Config(**cfg),  # type: ignore[arg-type]
        clock=source or clock.ManualTimeSource(),
        probe=probe,
        rng=random.Random(7),
    )


# ---------------------------------------------------------------- Status / Config / Snapshot


def test_status_is_ordered_by_quality() -> None:
    assert OFF < NET < ON
    assert ON > NET > OFF
    assert OFF <= OFF and ON >= ON
    assert max([NET, ON, OFF]) is ON
    assert sorted([ON, OFF, NET]) == [OFF, NET, ON]
    assert [s.label for s in (OFF, NET, ON)] == ["offline", "network_only", "online"]
    with pytest.raises(TypeError):
        _ = ON < 2  # type: ignore[operator]


def test_config_defaults_match_the_seed() -> None:
    cfg = nm.Config()
    assert (cfg.dns_timeout, cfg.tcp_timeout) == (1.0, 1.0)
    assert (cfg.internet_check_host, cfg.internet_check_port) == ("dns.google", 443)
    assert (cfg.down_after_failures, cfg.up_after_successes) == (3, 1)
    assert (cfg.poll_ok_s, cfg.poll_min_s, cfg.poll_max_s, cfg.jitter_frac) == (5.0, 1.0, 20.0, 0.1)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dns_timeout", 0),
        ("tcp_timeout", -1.0),
        ("down_after_failures", 0),
        ("up_after_successes", 1.5),
        ("poll_ok_s", 0),
        ("jitter_frac", 1.0),
        ("jitter_frac", -0.1),
        ("internet_check_port", 70000),
        ("internet_check_host", ""),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        nm.Config(**{field: value})  # type: ignore[arg-type]


def test_config_rejects_min_above_max() -> None:
    with pytest.raises(ValueError, match="poll_min_s"):
        nm.Config(poll_min_s=30.0, poll_max_s=20.0)


def test_monitor_rejects_bad_arguments() -> None:
    with pytest.raises(TypeError, match="Config"):
        nm.NetworkMonitor({"dns_timeout": 1})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="iface"):
        nm.NetworkMonitor(nm.Config(), iface="")


def test_snapshot_is_frozen_and_make_snapshot_builds_one() -> None:
    snap = testing_network.make_snapshot()
    assert snap == nm.Snapshot(ON, "", 0.0)
    with pytest.raises(AttributeError):
        snap.status = OFF  # type: ignore[misc]
    custom = testing_network.make_snapshot(NET, "wifi only", 12.5)
    assert (custom.status, custom.detail, custom.changed_at) == (NET, "wifi only", 12.5)
    with pytest.raises(TypeError, match="Status"):
        testing_network.make_snapshot("online")  # type: ignore[arg-type]


# ---------------------------------------------------------------- hysteresis


def test_initial_snapshot_is_offline_until_checked() -> None:
    source = clock.ManualTimeSource(monotonic=50.0)
    monitor = make_monitor(ScriptedProbe(), source)
    assert monitor.snapshot == nm.Snapshot(OFF, "not checked yet", 50.0)
    assert monitor.next_poll_s is None and monitor.last_probe is None


def test_goes_up_after_one_success_and_down_only_after_three_failures() -> None:
    source = clock.ManualTimeSource(monotonic=100.0)
    probe = ScriptedProbe(ON)
    monitor = make_monitor(probe, source)
    changes: list[nm.Snapshot] = []
    monitor.register_on_change_callback(changes.append)

    monitor.poll()
    assert monitor.snapshot.status is ON
    assert monitor.snapshot.changed_at == 100.0
    assert [c.status for c in changes] == [ON]

    probe.status = OFF
    for i in range(2):
        source.advance(1.0)
        monitor.poll()
        assert monitor.snapshot.status is ON, f"went down after {i + 1} failure(s)"
        assert monitor.last_probe is not None and monitor.last_probe.status is OFF
    source.advance(1.0)
    monitor.poll()
    assert monitor.snapshot.status is OFF
    assert monitor.snapshot.changed_at == 103.0
    assert monitor.snapshot.detail == "scripted offline #4"
    assert [c.status for c in changes] == [ON, OFF]
    assert monitor.probe_count == 4


def test_a_success_resets_the_failure_streak() -> None:
    probe = ScriptedProbe(ON)
    monitor = make_monitor(probe)
    monitor.poll()
    for status in (OFF, OFF, ON, OFF, OFF, ON, NET, NET):
        probe.status = status
        monitor.poll()
        assert monitor.snapshot.status is ON
    probe.status = NET
    monitor.poll()
    assert monitor.snapshot.status is NET


def test_worse_results_of_mixed_levels_count_together_and_land_on_the_latest() -> None:
    probe = ScriptedProbe(ON)
    monitor = make_monitor(probe)
    monitor.poll()
    for status in (NET, OFF, NET):
        probe.status = status
        monitor.poll()
    assert monitor.snapshot.status is NET


def test_up_after_successes_needs_consecutive_better_probes() -> None:
    probe = ScriptedProbe(OFF)
    monitor = make_monitor(probe, up_after_successes=3, down_after_failures=1)
    changes: list[nm.Snapshot] = []
    monitor.register_on_change_callback(changes.append)
    monitor.poll()
    probe.status = ON
    monitor.poll()
    monitor.poll()
    probe.status = OFF  # breaks the streak
    monitor.poll()
    probe.status = ON
    monitor.poll()
    monitor.poll()
    assert monitor.snapshot.status is OFF
    monitor.poll()
    assert monitor.snapshot.status is ON
    assert [c.status for c in changes] == [ON]


def test_same_status_updates_detail_but_not_changed_at_or_callbacks() -> None:
    source = clock.ManualTimeSource(monotonic=10.0)
    probe = ScriptedProbe(ON)
    monitor = make_monitor(probe, source)
    calls: list[nm.Snapshot] = []
    monitor.register_on_change_callback(calls.append)
    monitor.poll()
    source.advance(5)
    monitor.poll()
    assert monitor.snapshot == nm.Snapshot(ON, "scripted online #2", 10.0)
    assert len(calls) == 1


# ---------------------------------------------------------------- backoff


def test_backoff_doubles_from_min_to_max_while_not_online() -> None:
    probe = ScriptedProbe(OFF)
    monitor = make_monitor(probe, poll_min_s=1.0, poll_max_s=20.0)
    intervals = [monitor.poll() for _ in range(8)]
    assert intervals == [1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0, 20.0]
    assert monitor.next_poll_s == 20.0


def test_online_polls_at_poll_ok_and_a_pending_failure_polls_fast() -> None:
    probe = ScriptedProbe(ON)
    monitor = make_monitor(probe, poll_ok_s=5.0, poll_min_s=1.0)
    assert monitor.poll() == 5.0
    assert monitor.poll() == 5.0
    probe.status = NET
    assert monitor.poll() == 1.0  # one failure pending: confirm quickly
    assert monitor.poll() == 1.0
    assert monitor.poll() == 1.0  # third failure: now NETWORK_ONLY, backoff starts at min
    assert monitor.snapshot.status is NET
    assert monitor.poll() == 2.0
    assert monitor.poll() == 4.0


def test_backoff_restarts_after_a_change_and_after_wake() -> None:
    probe = ScriptedProbe(OFF)
    monitor = make_monitor(probe, down_after_failures=1)
    assert [monitor.poll() for _ in range(3)] == [1.0, 2.0, 4.0]
    monitor.wake()
    assert monitor.poll() == 1.0
    probe.status = NET
    assert monitor.poll() == 1.0  # changed to NETWORK_ONLY: backoff from the start
    assert monitor.poll() == 2.0


def test_jitter_stays_within_the_fraction_and_varies() -> None:
    probe = ScriptedProbe(ON)
    monitor = nm.NetworkMonitor(
        nm.Config(poll_ok_s=10.0, jitter_frac=0.1),
        clock=clock.ManualTimeSource(),
        probe=probe,
        rng=random.Random(1234),
    )
    intervals = [monitor.poll() for _ in range(200)]
    assert all(9.0 <= i <= 11.0 for i in intervals)
    assert len({round(i, 6) for i in intervals}) > 100
    assert min(intervals) < 9.3 and max(intervals) > 10.7


def test_jitter_applies_to_backoff_at_the_cap() -> None:
    probe = ScriptedProbe(OFF)
    monitor = nm.NetworkMonitor(
        nm.Config(poll_min_s=1.0, poll_max_s=4.0, jitter_frac=0.25),
        clock=clock.ManualTimeSource(),
        probe=probe,
        rng=random.Random(5),
    )
    intervals = [monitor.poll() for _ in range(50)]
    assert all(3.0 <= i <= 5.0 for i in intervals[3:])
    assert 0.75 <= intervals[0] <= 1.25


# ---------------------------------------------------------------- errors


def test_probe_exception_counts_as_offline_and_is_counted() -> None:
    calls = 0

    def bad_probe() -> nm.ProbeResult:
        nonlocal calls
        calls += 1
        if calls == 1:
            return nm.ProbeResult(ON, "fine")
        raise RuntimeError("socket exploded")

    monitor = nm.NetworkMonitor(
        nm.Config(jitter_frac=0.0, down_after_failures=2),
        clock=clock.ManualTimeSource(),
        probe=bad_probe,
    )
    monitor.poll()
    monitor.poll()
    monitor.poll()
    assert monitor.snapshot.status is OFF
    assert "socket exploded" in monitor.snapshot.detail
    assert monitor.probe_errors == 2
    assert isinstance(monitor.last_error, RuntimeError)


def test_probe_returning_garbage_is_an_error_not_a_crash() -> None:
    monitor = nm.NetworkMonitor(
        nm.Config(jitter_frac=0.0),
        clock=clock.ManualTimeSource(),
        probe=lambda: ("online", "?"),  # type: ignore[arg-type,return-value]
    )
    monitor.poll()
    assert monitor.probe_errors == 1
    assert monitor.snapshot.status is OFF


def test_callback_exception_is_logged_counted_and_other_callbacks_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    probe = ScriptedProbe(ON)
    monitor = make_monitor(probe)
    seen: list[nm.Status] = []

    def broken(_: nm.Snapshot) -> None:
        raise ValueError("callback bug")

    monitor.register_on_change_callback(broken)
    monitor.register_on_change_callback(lambda s: seen.append(s.status))
    monitor.poll()
    assert seen == [ON]
    assert monitor.callback_errors == 1
    assert isinstance(monitor.last_error, ValueError)
    assert "callback" in caplog.text


# ---------------------------------------------------------------- thread


def test_thread_fires_callbacks_on_its_own_thread_and_wake_interrupts_the_wait() -> None:
    probe = ScriptedProbe(ON)
    # Long intervals: every poll after the first one happens only because of wake().
    monitor = make_monitor(
        probe, poll_ok_s=600.0, poll_min_s=600.0, poll_max_s=600.0, down_after_failures=1
    )
    changed = threading.Event()
    changes: list[tuple[nm.Status, str]] = []

    def on_change(snap: nm.Snapshot) -> None:
        changes.append((snap.status, threading.current_thread().name))
        changed.set()

    monitor.register_on_change_callback(on_change)
    monitor.start()
    try:
        assert changed.wait(10), "first probe did not report ONLINE"
        assert monitor.running
        assert changes == [(ON, "network-monitor")]
        with pytest.raises(RuntimeError, match="before"):
            monitor.register_on_change_callback(on_change)
        with pytest.raises(RuntimeError, match="already started"):
            monitor.start()

        changed.clear()
        with probe.lock:
            probe.status = OFF
        monitor.wake()
        assert changed.wait(10), "wake() did not trigger a probe"
        assert changes[-1] == (OFF, "network-monitor")
        assert monitor.snapshot.status is OFF
        assert probe.calls == 2
    finally:
        monitor.shutdown(timeout=10)
    assert not monitor.running


def test_callback_errors_never_kill_the_thread() -> None:
    probe = ScriptedProbe(ON)
    monitor = make_monitor(
        probe, poll_ok_s=600.0, poll_min_s=600.0, poll_max_s=600.0, down_after_failures=1
    )
    raised = threading.Event()

    def broken(_: nm.Snapshot) -> None:
        raised.set()
        raise RuntimeError("boom")

    monitor.register_on_change_callback(broken)
    monitor.start()
    try:
        assert raised.wait(10)
        raised.clear()
        with probe.lock:
            probe.status = OFF
        monitor.wake()
        assert raised.wait(10), "thread died after the first callback error"
        assert monitor.running
    finally:
        monitor.shutdown(timeout=10)
    assert monitor.callback_errors == 2


def test_shutdown_before_start_and_twice_is_harmless() -> None:
    monitor = make_monitor(ScriptedProbe())
    monitor.shutdown()
    monitor.shutdown()
    assert not monitor.running


# ---------------------------------------------------------------- properties


@hypothesis.settings(max_examples=150, deadline=None)
@hypothesis.given(
    results=st.lists(st.sampled_from([OFF, NET, ON]), min_size=1, max_size=40),
    down=st.integers(1, 4),
    up=st.integers(1, 4),
)
def test_hysteresis_invariants(results: list[nm.Status], down: int, up: int) -> None:
    probe = ScriptedProbe()
    source = clock.ManualTimeSource()
    monitor = make_monitor(probe, source, down_after_failures=down, up_after_successes=up)
    changes: list[nm.Snapshot] = []
    monitor.register_on_change_callback(changes.append)
    history: list[nm.Status] = []
    for result in results:
        before = monitor.snapshot
        probe.status = result
        source.advance(1.0)
        interval = monitor.poll()
        history.append(result)
        after = monitor.snapshot
        if after.status != before.status:
            # A change lands on the latest result and needs a full streak on the same side.
            need = down if after.status < before.status else up
            streak = history[-need:]
            assert after.status is result
            assert len(streak) == need
            if after.status < before.status:
                assert all(s < before.status for s in streak)
            else:
                assert all(s > before.status for s in streak)
            assert after.changed_at == source.monotonic()
            assert changes[-1] == after
        else:
            assert after.changed_at == before.changed_at
        k = max(down, up)
        if len(history) >= k and all(s is result for s in history[-k:]):
            assert after.status is result, "a full streak of one result did not settle on it"
        # Interval bounds (no jitter in make_monitor).
        cfg = monitor.config
        assert cfg.poll_min_s <= interval <= max(cfg.poll_max_s, cfg.poll_ok_s)
    assert len(changes) == sum(
        1
        for a, b in zip([nm.Snapshot(OFF, "", 0), *changes], changes, strict=False)
        if a.status != b.status
    )
