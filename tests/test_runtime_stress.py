"""Stress tests reproducing issue 9's findings, bounded in time (real writer, real merge).

Each test drives the real RecordingManager (one 64x48 camera, so a cycle costs ~0.1 s) and,
where the finding involves it, the real StateMachine and button loop.
"""

from __future__ import annotations

import pathlib
import threading
import time

from omgrab import loop_health, recorder_events
from omgrab.output import frame_recorder
from omgrab.recording import live_merge
from omgrab.recording import merge as recording_merge
from omgrab.runtime import gpio_manager, recording_manager
from omgrab.workflows import state_machine, states
from tests import runtime_rig
from tests.test_workflow_state_machine import ButtonScript, RecordingGPIO

State = states.WorkflowState
Phase = recording_manager.RecorderPhase
CYCLES = 200
TIME_BOUND_S = 60.0


def _wait(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while time.monotonic() < deadline:
        if predicate():
            return True
        tick.wait(0.005)
    return bool(predicate())


def _check_clean_end(manager, device, rig_dir: pathlib.Path, watch) -> None:
    snap = manager.snapshot()
    assert watch.zombies == [], f"{len(watch.zombies)} zombie samples"
    assert device.violations == []
    assert not device.is_open
    assert snap.phase is Phase.IDLE and snap.pending_merges == 0
    # Every recording is merged, except one stopped before its first frame (nothing to merge:
    # the merge refuses it and leaves its empty directory, which holds no chunk).
    left = list((rig_dir / "spool").iterdir())
    assert [path for path in left if list(path.rglob("*.mkv"))] == []
    assert len(runtime_rig.merged_ids(rig_dir)) + len(left) == snap.recordings_started
    assert snap.merges_failed == len(left)
    assert runtime_rig.leftover_threads(manager) == []


def test_start_and_stop_from_two_threads(rig_dir) -> None:
    manager, device = runtime_rig.make_manager(rig_dir)
    done = threading.Event()
    deadline = time.monotonic() + TIME_BOUND_S

    def starter() -> None:
        pause = threading.Event()
        while manager.snapshot().recordings_started < CYCLES and time.monotonic() < deadline:
            manager.start_recording()
            pause.wait(0.004)
        done.set()

    def stopper() -> None:
        pause = threading.Event()
        while not done.is_set():
            manager.stop_recording()
            pause.wait(0.003)

    with runtime_rig.ZombieWatch(manager, device) as watch:
        threads = [threading.Thread(target=starter), threading.Thread(target=stopper)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIME_BOUND_S + 30)
        manager.shutdown()
    assert manager.snapshot().recordings_started >= CYCLES
    assert watch.samples > 0
    _check_clean_end(manager, device, rig_dir, watch)


def test_state_machine_with_cable_pulls(rig_dir) -> None:
    manager, device = runtime_rig.make_manager(rig_dir)
    sm = state_machine.StateMachine(RecordingGPIO(), manager)
    manager.set_on_device_unhealthy(sm.on_device_unhealthy)
    manager.set_on_recording_error(sm.on_recording_error)
    sm.boot_complete()
    deadline = time.monotonic() + TIME_BOUND_S
    reconnects: list[threading.Timer] = []
    with runtime_rig.ZombieWatch(manager, device) as watch:
        cycle = 0
        while manager.snapshot().recordings_started < CYCLES and time.monotonic() < deadline:
            cycle += 1
            sm.handle_short_press()  # start (after following a recorder that stopped itself)
            if sm.state is State.RECORDING:
                # What the user sees (LED on) is what the recorder does, devices open.
                assert manager.is_recording and device.is_open
            if cycle % 2:
                sm.handle_short_press()
                continue
            # A 120 ms cable pull; the user presses again right after it.
            device.set_connected(False)
            timer = threading.Timer(0.12, device.set_connected, (True,))
            reconnects.append(timer)
            timer.start()
            _wait(lambda: manager.phase is not Phase.RECORDING, 0.06)
        for timer in reconnects:
            timer.join(5)
        sm.shutdown()
        manager.shutdown()
    assert manager.snapshot().recordings_started >= CYCLES
    assert sm.state is State.SHUTDOWN
    _check_clean_end(manager, device, rig_dir, watch)


def test_stop_press_during_a_slow_health_check_returns_within_its_bound(rig_dir) -> None:
    slow = threading.Event()
    inside = threading.Event()
    release = threading.Event()

    def free_percent(_path) -> float:
        if slow.is_set():
            inside.set()
            release.wait(20)  # a spool walk on a slow card
            return 1.0  # ... that then finds the disk nearly full
        return 50.0

    manager, device = runtime_rig.make_manager(
        rig_dir, free_percent=free_percent, health_join_timeout_s=0.5
    )
    sm = state_machine.StateMachine(RecordingGPIO(), manager)
    manager.set_on_device_unhealthy(sm.on_device_unhealthy)
    manager.set_on_recording_error(sm.on_recording_error)
    sm.boot_complete()
    sm.handle_short_press()
    runtime_rig.wait_for_frames(manager)
    assert sm.state is State.RECORDING
    slow.set()
    assert inside.wait(10)
    started = time.monotonic()
    press = threading.Thread(target=sm.handle_short_press)
    press.start()
    press.join(15)
    elapsed = time.monotonic() - started
    assert not press.is_alive()
    # The bound: health_join_timeout_s (0.5 s) + draining a tiny recording; far below 20 s.
    assert elapsed < 8.0, elapsed
    assert sm.state is State.IDLE and not manager.is_recording and not device.is_open
    release.set()
    stopper = threading.Thread(target=sm.shutdown)
    stopper.start()
    stopper.join(15)
    assert not stopper.is_alive()
    manager.shutdown()
    assert runtime_rig.leftover_threads(manager) == []
    assert len(runtime_rig.merged_ids(rig_dir)) == 1


def test_shutdown_during_a_stop_waits_for_it_and_its_merge(rig_dir) -> None:
    manager, device = runtime_rig.make_manager(rig_dir)
    assert manager.start_recording()
    runtime_rig.wait_for_frames(manager)
    recording_id = manager.active_recording_id
    device.close_gate = threading.Event()
    device.set_connected(False)  # the health thread stops the recording ...
    assert device.close_entered.wait(10)  # ... and is closing the device
    assert manager.phase is Phase.STOPPING
    shutdown = threading.Thread(target=manager.shutdown)
    shutdown.start()
    shutdown.join(0.3)
    assert shutdown.is_alive()  # it waits for the stop another thread runs
    device.close_gate.set()
    shutdown.join(30)
    assert not shutdown.is_alive()
    # When shutdown returns: merged, device closed, no recorder thread left.
    assert (rig_dir / "out" / f"{recording_id}.mkv").exists()
    assert not device.is_open
    assert runtime_rig.leftover_threads(manager) == []


def test_a_failing_merge_of_one_recording_never_stops_the_next(rig_dir, monkeypatch) -> None:
    real_merge = recording_merge.merge_recording_chunks
    second_started = threading.Event()
    failed: list[str] = []

    def merge(recording_dir, output_path, **kwargs):
        if not failed:
            failed.append(pathlib.Path(recording_dir).name)
            second_started.wait(10)
            raise OSError("card removed (injected)")
        return real_merge(recording_dir, output_path, **kwargs)

    monkeypatch.setattr(recording_merge, "merge_recording_chunks", merge)
    real_finish = live_merge.LiveMerge.finish

    def finish(self, timeout=None):
        if not failed:  # the incremental merge fails too, so the manager falls back to merge
            raise live_merge.LiveMergeError("card removed (injected)")
        return real_finish(self, timeout)

    monkeypatch.setattr(live_merge.LiveMerge, "finish", finish)
    manager, _device = runtime_rig.make_manager(rig_dir)
    sm = state_machine.StateMachine(RecordingGPIO(), manager)
    events: list[recorder_events.RecorderEvent] = []
    delivered = threading.Event()

    def on_error(event: recorder_events.RecorderEvent) -> None:
        sm.on_recording_error(event)
        events.append(event)
        delivered.set()

    manager.set_on_recording_error(on_error)
    sm.boot_complete()
    sm.handle_short_press()
    runtime_rig.wait_for_frames(manager)
    first = manager.active_recording_id
    sm.handle_short_press()
    sm.handle_short_press()
    runtime_rig.wait_for_frames(manager)
    second = manager.active_recording_id
    assert second is not None and second != first
    second_started.set()
    assert delivered.wait(10)
    assert events[0].kind is recorder_events.EventKind.MERGE_FAILED
    assert events[0].recording_id == first and not events[0].stopped
    assert manager.is_recording and manager.active_recording_id == second
    assert sm.state is State.RECORDING
    assert sm.alerts == 1
    sm.handle_short_press()
    manager.shutdown()
    assert runtime_rig.merged_ids(rig_dir) == {second}
    assert (rig_dir / "spool" / str(first)).is_dir()  # chunks kept for recovery


class FlakyRecorder:
    """Wraps a manager; its next start raises once (like a device whose open blew up)."""

    def __init__(self, manager: recording_manager.RecordingManager) -> None:
        self.manager = manager
        self.fail_next = False
        self.fail_reads = 0  # is_recording raises this many more times

    @property
    def is_recording(self) -> bool:
        if self.fail_reads > 0:
            self.fail_reads -= 1
            raise RuntimeError("status read failed (injected)")
        return self.manager.is_recording

    @property
    def active_recording_id(self) -> str | None:
        return self.manager.active_recording_id

    @property
    def last_error(self) -> str | None:
        return self.manager.last_error

    def start_recording(self) -> bool:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("open failed (injected)")
        return self.manager.start_recording()

    def stop_recording(self, recording_id: str | None = None) -> None:
        self.manager.stop_recording(recording_id)

    def shutdown(self) -> None:
        self.manager.shutdown()


def test_an_exception_from_the_recorder_never_kills_the_button_loop(rig_dir) -> None:
    manager, device = runtime_rig.make_manager(rig_dir)
    recorder = FlakyRecorder(manager)
    gpio = RecordingGPIO()
    sm = state_machine.StateMachine(gpio, recorder)
    sm.boot_complete()
    errors_before = loop_health.default().errors("button")
    tap = [(0.1, True), (0.2, False)]  # released; a short press after the double window
    recorder.fail_next = True
    _run(sm, gpio, tap, end=1.0)
    assert sm.state is State.IDLE and sm.press_errors == 1
    assert loop_health.default().errors("button") == errors_before + 1
    _run(sm, gpio, tap, end=1.0)  # the next press works
    runtime_rig.wait_for_frames(manager)
    assert sm.state is State.RECORDING and manager.is_recording
    device.close_errors = 1  # the stop's device close raises once
    _run(sm, gpio, tap, end=1.0)
    assert sm.state is State.IDLE and not manager.is_recording
    _run(sm, gpio, tap, end=1.0)  # and the press after that works too
    runtime_rig.wait_for_frames(manager)
    assert sm.state is State.RECORDING
    _run(sm, gpio, tap, end=1.0)
    assert sm.state is State.IDLE
    # An exception in the loop itself (the state machine's reconciliation raising): the loop
    # counts it and goes on polling, and the tap that follows starts a recording.
    recorder.fail_reads = 3
    errors_before = loop_health.default().errors("button")
    _run(sm, gpio, [(0.2, True), (0.3, False)], end=1.2)
    assert loop_health.default().errors("button") >= errors_before + 3
    assert sm.state is State.RECORDING
    runtime_rig.wait_for_frames(manager)
    sm.handle_short_press()
    manager.shutdown()
    assert len(runtime_rig.merged_ids(rig_dir)) == 3  # the failed close lost nothing


def _run(sm, gpio, events, end: float) -> None:
    script = ButtonScript(gpio, events, end)
    gpio_manager.button_monitor_loop(
        gpio, sm, stop_event=script.stop, monotonic=script.monotonic, sleep=script.sleep
    )


def test_nothing_grows_with_recordings_over_10000_cycles(rig_dir, monkeypatch) -> None:
    """The manager's own bookkeeping over 10,000 recordings (session and merge stubbed)."""

    class TinySession:
        def __init__(self, recording_id, *_args, spool_dir=None, **kwargs) -> None:
            self.recording_id = recording_id
            self.recording_dir = rig_dir / "spool" / recording_id
            self.errors: list[str] = []

        def start(self) -> None:
            pass

        def stop(self) -> None:
            pass

        def stalled_streams(self, _timeout: float) -> list[str]:
            return []

    monkeypatch.setattr(recording_manager.recording_session, "RecordingSession", TinySession)
    monkeypatch.setattr(recording_merge, "merge_recording_chunks", lambda _d, out, **_k: out)
    manager, device = runtime_rig.make_manager(
        rig_dir, health_check_interval_s=60.0, live_merge=False
    )
    device.close_errors = 10**6  # every stop records a problem: the error history is bounded
    threads_before = threading.active_count()
    for _ in range(10_000):
        assert manager.start_recording()
        manager.stop_recording()
    assert manager.wait_for_merges(30)
    assert manager.snapshot().recordings_started == 10_000
    assert len(manager._finished) == 0
    assert len(manager.snapshot().recent_errors) == recording_manager.RECENT_ERRORS
    assert len(manager._recent_errors) == recording_manager.RECENT_ERRORS
    assert len(manager._error_threads) == 0
    assert threading.active_count() <= threads_before + 2
    manager.shutdown()


def test_frame_retention_index_stays_bounded_over_10000_frames(rig_dir) -> None:
    """With retention on, the per-frame index never exceeds its bound and retention still works."""
    import numpy as np

    from omgrab import output, storage

    frames = rig_dir / "frames"
    frames.mkdir()
    monitor = storage.StorageMonitor(rig_dir)
    config = output.OutputConfig(retention_enabled=True, jpeg_workers=1)
    recorder = frame_recorder.FrameRecorder(
        frames, config=config, monitor=monitor, retention_index_max=1000
    )
    image = np.zeros((16, 16, 3), np.uint8)
    scratch: dict = {}
    for fid in range(10_000):
        recorder._encode_and_write(image, fid, scratch)
        assert len(recorder._written) <= 1000
    recorder.close()
    oldest = [path for path, _size in _take(recorder._oldest_frames(), 3)]
    assert [pathlib.Path(p).name for p in oldest] == ["0.jpg", "1.jpg", "2.jpg"]


def _take(iterator, count: int) -> list:
    return [item for _, item in zip(range(count), iterator, strict=False)]
