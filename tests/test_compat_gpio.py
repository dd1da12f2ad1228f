"""omgrab 0.1.2's GPIO API and state machine, used as a 0.1.2 user's code would use them.

The GPIO process is real (a forkserver process running the software twin: there is no GPIO chip
here); the state machine drives 0.1.2-style fakes and this package's recorder-free twin.
"""

from __future__ import annotations

import io
import os
import pathlib
import threading
import time

import pytest

import omgrab.gpio
from omgrab import testing
from omgrab.gpio import controller, gpio, gpio_process
from omgrab.runtime import gpio_manager
from omgrab.workflows import state_machine

LEDState = gpio.LEDState


def _wait(predicate, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def trigger_dir(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """Run the GPIO process on the twin, with its remote-press trigger file in ``tmp_path``."""
    monkeypatch.setenv(gpio_process.BACKEND_ENV, "simulated")
    monkeypatch.setenv(gpio_process.TRIGGER_ENV, str(tmp_path / "press"))
    return tmp_path


def test_user_code_drives_the_gpio_process(trigger_dir: pathlib.Path) -> None:
    """``GPIOController()`` as in 0.1.2: commands reach a separate process driving the twin."""
    ctrl = omgrab.gpio.GPIOController()  # 0.1.2: the package-level name is the class
    try:
        ctrl.set_led_states(LEDState.SLOW_BLINK, LEDState.ON)
        ctrl.set_buzzer_volume(0.5)
        ctrl.set_buzzer_tone(30000.0)
        ctrl.buzzer_beep(0.05, 3)
        assert ctrl.read_button() is False
        status = ctrl.status()
        assert status["backend"] == "simulated"
        assert status["pid"] != os.getpid()
        assert status["leds"] == {"red": "slow_blink", "green": "on"}
        assert status["volume"] == 0.5
        assert status["tone"] == 20000.0  # clamped as 0.1.2
        assert status["beeps"] == 3
        assert status["errors"] == 0
        # A remote press (0.1.2's trigger file) reads as pressed for a tap.
        (trigger_dir / "press").write_text("")
        assert _wait(ctrl.read_button)
        assert _wait(lambda: not (trigger_dir / "press").exists())
    finally:
        ctrl.cleanup()
    process = ctrl._process_controller._process
    assert not process.is_alive()
    assert process.exitcode == 0  # shut down by SHUTDOWN, not terminated


def test_bad_arguments_are_refused_before_reaching_the_process(trigger_dir) -> None:
    ctrl = gpio.GPIOController()
    try:
        with pytest.raises(TypeError, match=r"red must be an omgrab\.gpio\.LEDState"):
            ctrl.set_led_states("on", LEDState.ON)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="count=-1"):
            ctrl.buzzer_beep(0.1, -1)
        with pytest.raises(ValueError, match="duration=nan"):
            ctrl.buzzer_beep(float("nan"), 1)
        with pytest.raises(ValueError, match="volume='loud'"):
            ctrl.set_buzzer_volume("loud")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="green LED pattern 'purple'"):
            ctrl._process_controller.set_led_states("on", "purple")
        assert ctrl.status()["errors"] == 0
        assert ctrl.status()["commands"] == 2  # only the status requests got through
    finally:
        ctrl.cleanup()


def test_unknown_backend_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(gpio_process.BACKEND_ENV, "gpoid")
    with pytest.raises(ValueError, match=r"'gpoid' is not one of auto, gpiod, simulated"):
        gpio.GPIOController()


def test_read_button_after_the_process_died_returns_false_and_logs(trigger_dir, caplog) -> None:
    ctrl = gpio.GPIOController()
    process = ctrl._process_controller._process
    assert ctrl.status()["backend"] == "simulated"
    process.kill()
    process.join(10)
    try:
        assert ctrl.read_button() is False
    finally:
        ctrl.cleanup()
    assert any("GPIO process" in r.message and "exited" in r.message for r in caplog.records)


def test_both_contracts_share_led_state_and_isinstance() -> None:
    assert gpio.LEDState is controller.LEDState is omgrab.gpio.LEDState
    assert LEDState.BLINK_SLOW is LEDState.SLOW_BLINK and len(LEDState) == 4
    assert isinstance(omgrab.gpio.SimulatedGPIOController(), omgrab.gpio.GPIOController)
    assert isinstance(testing.FakeGPIOController(), gpio.GPIOController)
    assert not isinstance(object(), gpio.GPIOController)
    assert not isinstance(io.StringIO(), gpio.GPIOController)  # has close() only


class V1Recorder:
    """A 0.1.2 RecordingController: start/stop only, no is_recording."""

    def __init__(self, start_ok: bool = True) -> None:
        self.start_ok = start_ok
        self.calls: list[str] = []

    def start_recording(self) -> bool:
        self.calls.append("start")
        return self.start_ok

    def stop_recording(self) -> None:
        self.calls.append("stop")


def test_v1_state_machine_with_the_fake_and_twin() -> None:
    """0.1.2's calls drive the twin's LEDs: red = recording LED, green = status LED."""
    fake = testing.FakeGPIOController()
    rec = V1Recorder()
    sm = state_machine.StateMachine(fake, rec)
    assert sm.get_current_state() == "idle" and not sm.is_recording()
    alerts: list[str] = []
    sm.set_show_alert_callback(alerts.append)
    sm.handle_button_press()
    assert sm.is_recording()
    assert fake.led_calls[-1] == ("slow_blink", "off")
    assert fake.get_led(controller.LED.RECORDING) is LEDState.SLOW_BLINK
    assert fake.buzzer_beeps[-1] == (0.1, 1)
    sm.on_device_unhealthy()  # the recorder cannot say: this machine stops it (0.1.2)
    assert rec.calls == ["start", "stop"] and sm.get_current_state() == "idle"
    assert alerts == ["Check Camera\nConnection"] and fake.buzzer_beeps[-1] == (0.1, 5)
    assert sm.enter_wifi_setup() and sm.get_current_state() == "wifi_setup"
    sm.handle_button_press()  # ignored in WiFi setup (0.1.2)
    assert sm.get_current_state() == "wifi_setup" and rec.calls == ["start", "stop"]
    assert sm.exit_wifi_setup() and not sm.exit_wifi_setup()
    sm.shutdown()
    assert fake.led_calls[-1] == ("off", "off") and fake.buzzer_states[-1] is False
    sm.cleanup()
    assert fake.cleaned_up and fake.closed


class OwnRecorder(V1Recorder):
    """A recorder of this package's kind: it says whether it records."""

    def __init__(self) -> None:
        super().__init__()
        self.is_recording = False

    def start_recording(self) -> bool:
        self.is_recording = super().start_recording()
        return self.is_recording


def test_unhealthy_device_does_not_stop_a_recorder_that_reports_its_state() -> None:
    """This package's recorder may ride out a reconnect: the machine follows, never stops it."""
    rec = OwnRecorder()
    sm = state_machine.StateMachine(None, rec)
    sm.handle_button_press()
    sm.on_device_unhealthy()
    assert rec.calls == ["start"] and sm.get_current_state() == "recording"
    rec.is_recording = False
    sm.on_device_unhealthy()
    assert sm.get_current_state() == "idle" and rec.calls == ["start"]


def test_preview_needs_callbacks_and_stops_on_shutdown() -> None:
    sm = state_machine.StateMachine(testing.FakeGPIOController(), V1Recorder())
    sm.handle_double_press()
    assert sm.get_current_state() == "idle"  # no preview wired (0.1.2)
    events: list[str] = []
    sm.set_preview_callbacks(lambda: True, lambda: events.append("start"), lambda: 1 / 0)
    sm.handle_double_press()
    assert sm.get_current_state() == "camera_preview"
    sm.shutdown()  # the stop callback raising is logged; shutdown completes
    assert events == ["start"] and sm.get_current_state() == "shutdown"


def test_stay_in_boot_waits_for_boot_complete() -> None:
    sm = state_machine.StateMachine(None, OwnRecorder(), stay_in_boot=True)
    assert sm.get_current_state() == "boot"
    sm.boot_complete()
    assert sm.get_current_state() == "idle"


class V1Machine:
    """A state machine with only 0.1.2's interface (as a user might have written one)."""

    def __init__(self) -> None:
        self.state = "idle"
        self.calls: list[str] = []
        self.pressed = threading.Event()

    def get_current_state(self) -> str:
        return self.state

    def handle_button_press(self) -> None:
        self.calls.append("press")
        self.pressed.set()

    def handle_double_press(self) -> None:
        self.calls.append("double")

    def enter_wifi_setup(self) -> bool:
        self.calls.append("enter")
        self.state = "wifi_setup"
        return True

    def exit_wifi_setup(self) -> None:
        self.calls.append("exit")
        self.state = "idle"


class Wifi:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def start_wifi_connect(self, force_mode: bool = True, callback=None) -> bool:
        self.calls.append("start")
        return True

    def stop_wifi_connect(self) -> bool:
        self.calls.append("stop")
        return True


def _run_loop(
    fake, machine, wifi, clock: list[float], downs: list[float], polls: list[int]
) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()

    def sleep(_s: float) -> None:
        polls[0] += 1
        time.sleep(0.001)

    thread = threading.Thread(
        target=gpio_manager.button_monitor_loop,
        args=(fake, machine, gpio_manager.ButtonConfig()),
        kwargs={
            "wifi_manager": wifi,
            "on_button_press": lambda: downs.append(clock[0]),
            "stop_event": stop,
            "monotonic": lambda: clock[0],
            "sleep": sleep,
        },
        daemon=True,
    )
    thread.start()
    return stop, thread


def test_loop_drives_a_v1_state_machine_through_gestures() -> None:
    """Long press enters WiFi setup (three beeps), a tap cancels it (two beeps), as 0.1.2."""
    fake = testing.FakeGPIOController(_Clock(clock := [0.0]))
    machine, wifi, downs, polls = V1Machine(), Wifi(), [], [0]
    stop, thread = _run_loop(fake, machine, wifi, clock, downs, polls)
    try:
        fake.press()
        assert _wait(lambda: len(downs) == 1)  # the loop saw the press
        clock[0] = 5.0
        assert _wait(lambda: "enter" in machine.calls)
        fake.release()
        assert _wait(lambda: wifi.calls == ["start"]) and fake.buzzer_beeps == [(0.3, 3)]
        seen = polls[0]
        assert _wait(lambda: polls[0] >= seen + 2)  # the loop saw the release
        clock[0] = 6.0
        fake.press()
        assert _wait(lambda: len(downs) == 2)
        clock[0] = 6.1
        fake.release()
        assert _wait(lambda: "exit" in machine.calls)
        assert wifi.calls == ["start", "stop"] and fake.buzzer_beeps[-1] == (0.1, 2)
        assert machine.get_current_state() == "idle" and "press" not in machine.calls
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()


class _Clock:
    def __init__(self, cell: list[float]) -> None:
        self._cell = cell

    def monotonic(self) -> float:
        return self._cell[0]


def test_gpiod_backend_without_a_chip_fails_loudly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``OMGRAB_GPIO_BACKEND=gpiod`` never falls back to the twin: the process exits, logged."""
    assert not os.path.exists(gpio_process.CHIP_PATH)
    monkeypatch.setenv(gpio_process.BACKEND_ENV, "gpiod")
    ctrl = gpio.GPIOController()
    process = ctrl._process_controller._process
    process.join(30)
    try:
        assert process.exitcode not in (None, 0)
        ctrl.set_led_states(LEDState.ON, LEDState.OFF)
        assert ctrl.read_button() is False
    finally:
        ctrl.cleanup()
    exited = [r for r in caplog.records if "exited (code" in r.message]
    assert len(exited) == 1  # logged once, not per call
