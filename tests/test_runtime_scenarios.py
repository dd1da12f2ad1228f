"""Whole-device scenarios: simulated GPIO button -> button loop -> state machine -> recorder.

Everything is real except the hardware twins: the simulated device's cameras/IMU, the simulated
GPIO controller (LED/buzzer history, scripted button), and a WifiManager with injected service
functions. Gesture timings are shortened so a long press takes 0.4 s instead of 5 s.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import threading

import pytest

from omgrab import gpio
from omgrab.app import device_app
from omgrab.gpio import controller as gpio_controller
from omgrab.runtime import gpio_manager, wifi_connect
from omgrab.workflows import states
from tests.test_app import small_config

State = states.WorkflowState
LED = gpio_controller.LED
LEDState = gpio_controller.LEDState
BUTTON = gpio_manager.ButtonConfig(
    long_press_threshold_s=0.4, double_press_window_s=0.15, check_interval_s=0.01
)


def wait_until(predicate, timeout: float = 15.0) -> bool:
    waiter = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return True
        waiter.wait(0.02)
    return bool(predicate())


class HotspotService:
    """Injected WiFi setup service: runs until finished or stopped."""

    def __init__(self) -> None:
        self.running = False
        self.callback = None
        self.starts = 0

    def start(self, force_mode: bool, callback) -> bool:
        self.starts += 1
        self.running = True
        self.callback = callback
        return True

    def stop(self) -> bool:
        was, self.running = self.running, False
        if was and self.callback is not None:
            self.callback(False)
        return was

    def is_running(self) -> bool:
        return self.running


@pytest.fixture
def rig(tmp_path):
    controller = gpio.SimulatedGPIOController()
    service = HotspotService()
    wifi = wifi_connect.WifiManager(service.start, service.stop, service.is_running)
    app = device_app.DeviceApp(
        small_config(tmp_path, perception=False),
        gpio_controller=controller,
        wifi_manager=wifi,
        button_config=BUTTON,
    )
    app.recorder.config.health_check_interval_s = 0.1
    app.start()
    yield app, controller, service
    app.stop()


def test_press_records_across_chunks_and_press_again_stops(rig) -> None:
    app, button, _ = rig
    assert app.state_machine.state is State.IDLE
    assert button.get_led(LED.STATUS) is LEDState.ON
    button.tap()
    assert wait_until(lambda: app.state_machine.state is State.RECORDING)
    assert button.get_led(LED.RECORDING) is LEDState.ON
    assert wait_until(lambda: app.device.cameras["rgb"].frames_delivered >= 40)
    button.tap()
    assert wait_until(lambda: app.state_machine.state is State.IDLE)
    assert app.wait_for_recordings(1, 30)
    manifest = json.loads(app.completed[0].with_suffix(".json").read_text())
    assert len(manifest["streams"]["rgb"]["chunks"]) >= 3
    assert manifest["streams"]["rgb"]["frames_written"] >= 40
    assert len(button.buzz_history) >= 2  # start and stop beeps


def test_unplugged_camera_stops_recording_alerts_and_keeps_a_valid_file(rig) -> None:
    app, button, _ = rig
    button.tap()
    assert wait_until(lambda: app.state_machine.state is State.RECORDING)
    assert wait_until(lambda: app.device.cameras["rgb"].frames_delivered >= 15)
    app.device.inject_disconnect()
    assert wait_until(lambda: app.state_machine.state is State.IDLE)
    assert app.state_machine.alerts >= 1
    assert button.get_led(LED.RECORDING) is LEDState.BLINK_FAST
    assert app.wait_for_recordings(1, 30)
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_packets",
            "-show_streams",
            "-of",
            "json",
            str(app.completed[0]),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    streams = json.loads(probe.stdout)["streams"]
    assert int(streams[0]["nb_read_packets"]) >= 10
    app.device.reconnect()
    button.tap()  # the device works again after the cable is back
    assert wait_until(lambda: app.state_machine.state is State.RECORDING)


def test_encoder_failure_alerts_and_returns_to_idle(rig) -> None:
    import os
    import signal

    app, button, _ = rig
    button.tap()
    assert wait_until(lambda: app.state_machine.state is State.RECORDING)
    assert wait_until(lambda: app.device.cameras["rgb"].frames_delivered >= 10)
    session = app.recorder.active_session
    os.kill(session.writer.worker_pid("rgb"), signal.SIGKILL)
    assert wait_until(lambda: app.state_machine.state is State.IDLE)
    assert app.state_machine.alerts >= 1
    assert app.wait_for_recordings(1, 30)
    assert "rgb" in (app.recorder.last_error or "")


def test_double_press_previews_and_long_press_enters_and_leaves_wifi_setup(rig) -> None:
    app, button, service = rig
    button.double_tap(gap_s=0.05, duration_s=0.04)
    assert wait_until(lambda: app.state_machine.state is State.CAMERA_PREVIEW)
    button.tap()
    assert wait_until(lambda: app.state_machine.state is State.IDLE)
    button.hold(0.6)
    assert wait_until(lambda: app.state_machine.state is State.WIFI_SETUP)
    assert service.running and service.starts == 1
    assert button.get_led(LED.NETWORK) is LEDState.BLINK_FAST
    assert wait_until(lambda: button.script_done())
    # A press cancels the setup. It starts 0.1 s from now, so the loop (polling every 10 ms)
    # has seen the long press end before the new press begins.
    button.script([(0.1, True), (0.25, False)])
    assert wait_until(lambda: app.state_machine.state is State.IDLE)
    assert not service.running
    # Setup completing by itself also returns to IDLE.
    button.hold(0.6)
    assert wait_until(lambda: app.state_machine.state is State.WIFI_SETUP)
    service.callback(True)
    assert wait_until(lambda: app.state_machine.state is State.IDLE)


def test_shutdown_while_recording_leaves_a_merged_file(tmp_path) -> None:
    app = device_app.DeviceApp(
        small_config(tmp_path, perception=False),
        gpio_controller=gpio.SimulatedGPIOController(),
        button_config=BUTTON,
    )
    app.start()
    app.state_machine.handle_short_press()
    recording_id = app.recorder.active_recording_id
    assert wait_until(lambda: app.device.cameras["rgb"].frames_delivered >= 10)
    app.stop()
    assert app.state_machine.state is State.SHUTDOWN
    merged = pathlib.Path(app.config.recordings_dir / f"{recording_id}.mkv")
    assert merged.exists() and merged.with_suffix(".json").exists()
