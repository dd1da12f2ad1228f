"""Recorder lifecycle rules, each with the deliberate bug it catches (see issue 9)."""

from __future__ import annotations

import json
import threading

from omgrab import loop_health, recorder_events, recording
from omgrab.cameras import base as camera_base
from omgrab.cameras import synthetic
from omgrab.runtime import gpio_manager, recording_manager, recording_session
from tests import runtime_rig

Phase = recording_manager.RecorderPhase


def test_recording_goes_on_between_the_stop_level_and_the_start_floor(rig_dir) -> None:
    free = {"pct": 50.0}
    checks = threading.Semaphore(0)

    def free_percent(_path) -> float:
        checks.release()
        return free["pct"]

    errors: list[object] = []
    manager, _device = runtime_rig.make_manager(rig_dir, free_percent=free_percent)
    manager.set_on_recording_error(errors.append)
    assert manager.start_recording()
    free["pct"] = 3.0  # below the 5 % start floor, above the 2 % stop level
    for _ in range(15):  # fifteen health checks at 3 %
        assert checks.acquire(timeout=10)
    assert manager.is_recording
    assert manager.phase is Phase.RECORDING
    assert manager.start_recording() is False  # a new start is refused at 3 % ...
    assert manager.is_recording  # ... and the running recording is untouched
    free["pct"] = 1.5  # below the stop level: stopped cleanly
    manager_stopped = threading.Event()
    for _ in range(500):
        if not manager.is_recording:
            manager_stopped.set()
            break
        checks.acquire(timeout=0.1)
    assert manager_stopped.is_set()
    manager.shutdown()
    assert len(errors) == 1 and isinstance(errors[0], recorder_events.RecorderEvent)
    assert errors[0].stopped


class BrokenCamera(synthetic.SyntheticCamera):
    """A camera whose reads raise after ``good`` frames."""

    def __init__(self, good: int) -> None:
        super().__init__(runtime_rig.SIZE)
        self.good = good
        self.reads = 0

    def _read_frame(self, timeout_s: float | None) -> camera_base.Frame:
        self.reads += 1
        if self.reads > self.good:
            raise RuntimeError("sensor bus error (injected)")
        return super()._read_frame(timeout_s)


def test_a_session_with_two_failures_fires_on_error_exactly_once(rig_dir) -> None:
    cameras = [BrokenCamera(3), BrokenCamera(5)]
    config = recording.rgb_stream_config(
        width=runtime_rig.SIZE.width, height=runtime_rig.SIZE.height, fps=30, preset="ultrafast"
    )
    calls: list[int] = []
    both_failed = threading.Event()
    session = recording_session.RecordingSession(
        "r-two-failures",
        cameras,  # type: ignore[arg-type]
        ["a", "b"],
        {"a": config, "b": config},
        rig_dir,
        on_error=lambda: calls.append(1),
    )
    for camera in cameras:
        camera.open()
    session.start()
    for _ in range(500):
        if len(session.errors) == 2:
            both_failed.set()
            break
        both_failed.wait(0.01)
    session.stop()
    for camera in cameras:
        camera.close()
    assert both_failed.is_set(), session.errors
    assert calls == [1]


def _hold(seconds: float) -> list[str]:
    """Gestures of one press held for ``seconds`` on a manual clock (sampled at press, release)."""
    detector = gpio_manager._GestureDetector(gpio_manager.ButtonConfig())
    gestures = detector.update(True, 100.0, double_allowed=False)
    gestures += detector.update(True, 100.0 + seconds, double_allowed=False)
    gestures += detector.update(False, 100.0 + seconds, double_allowed=False)
    return gestures


def test_on_a_manual_clock_a_4_9_s_hold_is_short_and_5_0_s_is_long() -> None:
    assert _hold(4.9) == ["down", "short"]
    assert _hold(5.0) == ["down", "long"]


def test_stop_by_id_never_stops_another_recording(rig_dir) -> None:
    manager, _device = runtime_rig.make_manager(rig_dir)
    assert manager.start_recording()
    runtime_rig.wait_for_frames(manager)
    first = manager.active_recording_id
    manager.stop_recording()
    assert manager.start_recording()
    runtime_rig.wait_for_frames(manager)
    second = manager.active_recording_id
    manager.stop_recording(first)  # a late stop for the first recording
    assert manager.is_recording and manager.active_recording_id == second
    manager.stop_recording(second)
    assert not manager.is_recording
    manager.shutdown()
    assert runtime_rig.merged_ids(rig_dir) == {first, second}


def test_start_during_stopping_waits_then_is_refused_with_the_reason(rig_dir) -> None:
    manager, device = runtime_rig.make_manager(rig_dir, start_waits_for_stop_s=0.2)
    assert manager.start_recording()
    stopping = manager.active_recording_id
    device.close_gate = threading.Event()
    stopper = threading.Thread(target=manager.stop_recording)
    stopper.start()
    assert device.close_entered.wait(10)
    assert manager.phase is Phase.STOPPING
    assert manager.start_recording() is False
    assert f"recording {stopping} is still stopping" in (manager.last_error or "")
    # A start that arrives while the stop finishes within the wait gets the devices.
    starter_result: list[bool] = []
    manager.config.start_waits_for_stop_s = 10.0
    starter = threading.Thread(target=lambda: starter_result.append(manager.start_recording()))
    starter.start()
    device.close_gate.set()
    stopper.join(10)
    starter.join(10)
    assert starter_result == [True]
    assert device.violations == []
    assert device.is_open and manager.is_recording
    manager.shutdown()
    assert not device.is_open


def test_snapshot_reads_never_wait_for_a_slow_start(rig_dir) -> None:
    manager, device = runtime_rig.make_manager(rig_dir, device_ready_timeout_s=5.0)
    device.set_ready(False)  # the start waits for the device
    starter = threading.Thread(target=manager.start_recording)
    starter.start()
    for _ in range(500):
        if manager.phase is Phase.STARTING:
            break
        threading.Event().wait(0.01)
    assert manager.phase is Phase.STARTING
    # Every status read returns at once while the start holds the devices.
    assert manager.is_recording is False
    assert manager.active_recording_id is None and manager.last_error is None
    assert manager.snapshot().phase is Phase.STARTING
    device.set_ready(True)
    starter.join(10)
    assert manager.is_recording
    manager.shutdown()


def test_callbacks_without_an_argument_still_work_and_get_no_stale_error(rig_dir) -> None:
    manager, device = runtime_rig.make_manager(rig_dir)
    seen: list[object] = []
    fired = threading.Event()
    manager.set_on_device_unhealthy(lambda: (seen.append("legacy"), fired.set()))
    assert manager.start_recording()
    device.set_connected(False)
    assert fired.wait(10)
    assert seen == ["legacy"]
    assert "disconnected" in (manager.last_error or "")
    manager.shutdown()


def test_device_close_failing_still_merges_and_next_start_works(rig_dir) -> None:
    manager, device = runtime_rig.make_manager(rig_dir)
    device.close_errors = 1
    assert manager.start_recording()
    runtime_rig.wait_for_frames(manager)
    first = manager.active_recording_id
    manager.stop_recording()  # close raises inside: logged, merge still scheduled
    assert "closing the devices failed" in (manager.last_error or "")
    assert manager.wait_for_merges(30)
    assert first in runtime_rig.merged_ids(rig_dir)
    assert manager.start_recording()
    manager.shutdown()


def test_event_dispatcher_bounds_and_survives_callback_errors() -> None:
    health = loop_health.LoopHealth()
    dispatcher = recorder_events.EventDispatcher(max_pending=4, health=health)
    gate = threading.Event()
    running = threading.Event()
    got: list[int] = []

    def blocked(value: int) -> None:
        running.set()
        gate.wait(10)
        got.append(value)

    def broken(_value: int) -> None:
        raise ValueError("bad callback")

    dispatcher.submit(blocked, 0)
    assert running.wait(10)  # the first callback holds the thread
    assert dispatcher.wait_idle(0.01) is False
    for value in range(1, 10):
        dispatcher.submit(broken if value == 1 else blocked, value)
    assert dispatcher.dropped == 10 - 1 - 4  # one running, four queued
    gate.set()
    assert dispatcher.close(10)
    assert got == [0, 2, 3, 4]
    assert dispatcher.callback_errors == 1 and health.errors("recorder-events") == 1


def test_status_file_never_waits_for_a_slow_start_and_shows_loop_errors(rig_dir) -> None:
    from omgrab.runtime import device_status
    from omgrab.workflows import state_machine
    from tests.test_device_status import StaticMetrics
    from tests.test_workflow_state_machine import RecordingGPIO

    manager, device = runtime_rig.make_manager(rig_dir, device_ready_timeout_s=10.0)
    sm = state_machine.StateMachine(RecordingGPIO(), manager)
    sm.boot_complete()
    status = device_status.DeviceStatusManager(
        "rig", "1", rig_dir, StaticMetrics(), status_file=rig_dir / "status.json"
    )
    status.set_state_machine(sm)
    status.set_recording_manager(manager)
    device.set_ready(False)  # the press below waits for the device, holding the state machine
    press = threading.Thread(target=sm.handle_short_press)
    press.start()
    for _ in range(500):
        if manager.phase is Phase.STARTING:
            break
        threading.Event().wait(0.01)
    loop_health.default().record_error("button", RuntimeError("injected"))
    written = threading.Event()
    writer = threading.Thread(target=lambda: (status.update_now(), written.set()))
    writer.start()
    assert written.wait(2.0)  # not behind the 10 s device wait
    current = status.last_status
    assert current is not None
    assert current.state_machine_state == "idle" and not current.recording.is_recording
    written_status = json.loads((rig_dir / "status.json").read_text())
    assert written_status["loop_errors"]["button"] >= 1
    device.set_ready(True)
    press.join(15)
    assert manager.is_recording
    manager.shutdown()


def test_state_machine_follows_a_recording_started_elsewhere_and_a_press_stops_it(
    rig_dir,
) -> None:
    from omgrab.workflows import state_machine, states
    from tests.test_workflow_state_machine import RecordingGPIO

    manager, device = runtime_rig.make_manager(rig_dir)
    sm = state_machine.StateMachine(RecordingGPIO(), manager)
    sm.boot_complete()
    assert manager.start_recording()  # e.g. from the dashboard
    assert sm.state is states.WorkflowState.IDLE  # a plain read changes nothing
    sm.sync()
    assert sm.state is states.WorkflowState.RECORDING
    sm.handle_short_press()
    assert sm.state is states.WorkflowState.IDLE
    assert not manager.is_recording and not device.is_open
    manager.shutdown()
