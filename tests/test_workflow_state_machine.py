"""State machine and button gestures, driven with a scripted button and a fake clock."""

from __future__ import annotations

import threading

import pytest

from omgrab.gpio import controller as gpio_controller
from omgrab.runtime import gpio_manager
from omgrab.workflows import state_machine, states

State = states.WorkflowState


class ScriptedRecorder:
    """A RecordingController whose outcomes the test decides."""

    def __init__(self) -> None:
        self.is_recording = False
        self.refuse = False
        self.last_error: str | None = None
        self.calls: list[str] = []
        self.stop_gate: threading.Event | None = None
        self.stop_entered = threading.Event()

    def start_recording(self) -> bool:
        self.calls.append("start")
        if self.refuse:
            self.last_error = "disk full"
            return False
        self.is_recording = True
        return True

    def stop_recording(self) -> None:
        self.calls.append("stop")
        self.stop_entered.set()
        if self.stop_gate is not None:
            self.stop_gate.wait(5)
        self.is_recording = False

    def shutdown(self) -> None:
        self.calls.append("shutdown")
        self.is_recording = False


class RecordingGPIO:
    """Remembers LED states and buzzes; button level set by the test."""

    def __init__(self) -> None:
        self.leds: dict[gpio_controller.LED, gpio_controller.LEDState] = {}
        self.buzzes: list[tuple[float, ...]] = []
        self.pressed = False

    def set_led(self, led: gpio_controller.LED, state: gpio_controller.LEDState) -> None:
        self.leds[led] = state

    def get_led(self, led: gpio_controller.LED) -> gpio_controller.LEDState:
        return self.leds.get(led, gpio_controller.LEDState.OFF)

    def buzz(self, pattern: tuple[float, ...]) -> None:
        self.buzzes.append(tuple(pattern))

    def is_button_pressed(self) -> bool:
        return self.pressed

    def close(self) -> None:
        pass


@pytest.fixture
def machine() -> tuple[state_machine.StateMachine, ScriptedRecorder, RecordingGPIO]:
    recorder = ScriptedRecorder()
    gpio = RecordingGPIO()
    sm = state_machine.StateMachine(gpio, recorder, stay_in_boot=True)
    assert sm.state is State.BOOT
    sm.set_preview_callbacks(lambda: True, lambda: None, lambda: None)
    sm.boot_complete()
    return sm, recorder, gpio


def test_short_press_toggles_recording_and_leds(machine) -> None:
    sm, recorder, gpio = machine
    assert sm.get_current_state() == "idle"
    sm.handle_short_press()
    assert sm.state is State.RECORDING
    assert gpio.leds[gpio_controller.LED.RECORDING] is gpio_controller.LEDState.ON
    sm.handle_short_press()
    assert sm.state is State.IDLE
    assert recorder.calls == ["start", "stop"]
    assert gpio.leds[gpio_controller.LED.RECORDING] is gpio_controller.LEDState.OFF


def test_refused_start_stays_idle_and_alerts(machine) -> None:
    sm, recorder, gpio = machine
    recorder.refuse = True
    sm.handle_short_press()
    assert sm.state is State.IDLE
    assert sm.alerts == 1
    assert gpio.leds[gpio_controller.LED.RECORDING] is gpio_controller.LEDState.BLINK_FAST


def test_double_press_only_from_idle(machine) -> None:
    sm, _, _ = machine
    sm.handle_double_press()
    assert sm.state is State.CAMERA_PREVIEW
    sm.handle_double_press()
    assert sm.state is State.CAMERA_PREVIEW
    sm.handle_short_press()
    assert sm.state is State.IDLE


def test_long_press_enters_wifi_setup_not_while_recording(machine) -> None:
    sm, _, _ = machine
    sm.handle_short_press()
    assert sm.handle_long_press() is False
    assert sm.state is State.RECORDING
    sm.handle_short_press()
    assert sm.handle_long_press() is True
    assert sm.state is State.WIFI_SETUP
    sm.finish_wifi_setup(True)
    assert sm.state is State.IDLE


def test_recorder_stopping_itself_is_followed(machine) -> None:
    sm, recorder, _ = machine
    sm.handle_short_press()
    recorder.is_recording = False  # the manager stopped after a pulled cable
    sm.on_device_unhealthy()
    assert sm.state is State.IDLE
    assert sm.alerts == 1


def test_press_during_slow_stop_is_ignored_not_queued(machine) -> None:
    sm, recorder, _gpio = machine
    sm.handle_short_press()
    recorder.stop_gate = threading.Event()
    stopper = threading.Thread(target=sm.handle_short_press)
    stopper.start()
    assert recorder.stop_entered.wait(5)
    sm.handle_short_press()  # arrives while the stop is still running
    recorder.stop_gate.set()
    stopper.join(5)
    assert sm.state is State.IDLE
    assert sm.ignored_presses == 1
    assert recorder.calls == ["start", "stop"]


def test_shutdown_stops_recording(machine) -> None:
    sm, recorder, gpio = machine
    sm.handle_short_press()
    sm.shutdown()
    assert sm.state is State.SHUTDOWN
    assert recorder.calls[-1] == "stop"
    assert all(s is gpio_controller.LEDState.OFF for s in gpio.leds.values())


def test_network_changes_drive_network_led(machine) -> None:
    sm, _, gpio = machine
    sm.on_network_change(type("Snap", (), {"status": "ONLINE"})())
    assert gpio.leds[gpio_controller.LED.NETWORK] is gpio_controller.LEDState.ON
    sm.on_network_change(type("Snap", (), {"status": "NETWORK_ONLY"})())
    assert gpio.leds[gpio_controller.LED.NETWORK] is gpio_controller.LEDState.BLINK_SLOW


class ButtonScript:
    """Drives the button loop on a fake clock: levels change at scripted times."""

    def __init__(self, gpio: RecordingGPIO, events: list[tuple[float, bool]], end: float) -> None:
        self.gpio = gpio
        self.events = sorted(events)
        self.now = 0.0
        self.end = end
        self.stop = threading.Event()

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        while self.events and self.events[0][0] <= self.now:
            self.gpio.pressed = self.events.pop(0)[1]
        if self.now >= self.end:
            self.stop.set()


def run_script(sm, gpio, events, end, **kwargs) -> ButtonScript:
    script = ButtonScript(gpio, events, end)
    gpio_manager.button_monitor_loop(
        gpio,
        sm,
        gpio_manager.ButtonConfig(),
        stop_event=script.stop,
        monotonic=script.monotonic,
        sleep=script.sleep,
        **kwargs,
    )
    return script


def test_tap_in_idle_waits_for_double_window_then_records(machine) -> None:
    sm, recorder, gpio = machine
    run_script(sm, gpio, [(0.1, True), (0.2, False)], end=0.65)
    assert recorder.calls == []  # the loop ended inside the double-press window
    run_script(sm, gpio, [(0.1, True), (0.2, False)], end=0.75)
    assert recorder.calls == ["start"]
    assert sm.state is State.RECORDING


def test_double_tap_enters_preview(machine) -> None:
    sm, recorder, gpio = machine
    run_script(sm, gpio, [(0.1, True), (0.2, False), (0.4, True), (0.5, False)], end=1.5)
    assert sm.state is State.CAMERA_PREVIEW
    assert recorder.calls == []


def test_tap_while_recording_stops_at_once(machine) -> None:
    sm, recorder, gpio = machine
    sm.handle_short_press()
    run_script(sm, gpio, [(0.1, True), (0.2, False)], end=0.3)
    assert recorder.calls == ["start", "stop"]


class FakeWifi:
    def __init__(self) -> None:
        self.running = False
        self.callback = None

    def start_wifi_connect(self, force_mode: bool = True, callback=None) -> bool:
        self.running = True
        self.callback = callback
        return True

    def stop_wifi_connect(self) -> bool:
        was = self.running
        self.running = False
        return was

    def is_wifi_connect_running(self) -> bool:
        return self.running


def test_long_press_starts_wifi_and_press_cancels(machine) -> None:
    sm, _, gpio = machine
    wifi = FakeWifi()
    started: list[bool] = []
    done: list[bool] = []
    presses: list[int] = []
    run_script(
        sm,
        gpio,
        [(0.1, True), (5.3, False)],
        end=6.0,
        wifi_manager=wifi,
        on_wifi_hotspot_started=lambda: started.append(True),
        on_wifi_setup_complete=done.append,
        on_button_press=lambda: presses.append(1),
    )
    assert sm.state is State.WIFI_SETUP
    assert wifi.running and started == [True] and presses == [1]
    run_script(sm, gpio, [(0.1, True), (0.2, False)], end=0.5, wifi_manager=wifi)
    assert sm.state is State.IDLE
    assert not wifi.running


def test_wifi_completion_callback_returns_to_idle(machine) -> None:
    sm, _, gpio = machine
    wifi = FakeWifi()
    done: list[bool] = []
    run_script(
        sm,
        gpio,
        [(0.0, True), (5.1, False)],
        end=5.5,
        wifi_manager=wifi,
        on_wifi_setup_complete=done.append,
    )
    assert sm.state is State.WIFI_SETUP
    wifi.callback(True)
    assert sm.state is State.IDLE


def test_loop_ends_at_shutdown(machine) -> None:
    sm, _, gpio = machine
    sm.shutdown()
    script = ButtonScript(gpio, [], end=100.0)
    gpio_manager.button_monitor_loop(
        gpio, sm, stop_event=script.stop, monotonic=script.monotonic, sleep=script.sleep
    )
    assert script.now == 0.0
