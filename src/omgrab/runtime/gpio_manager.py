"""GPIO management for button monitoring and connection status.

:func:`button_monitor_loop` polls the button and turns level changes into gestures:

* short press (released before ``long_press_threshold_s``): start/stop recording; outside IDLE it
  acts on release at once. In IDLE it waits ``double_press_window_s`` after the release for a
  second tap, which makes it a double press (camera preview);
* long press (held for ``long_press_threshold_s``, fired while still held): WiFi setup through the
  :class:`~omgrab.runtime.wifi_connect.WifiManager`; a press during setup cancels it.

The loop also drives what omgrab 0.1.2's loop drove: a state machine with only 0.1.2's interface
(``get_current_state``, ``handle_button_press``, ``handle_double_press``, ``enter_wifi_setup``,
``exit_wifi_setup``) and a controller with only 0.1.2's API (``read_button``, ``buzzer_beep``).
With such a state machine the loop beeps as 0.1.2's did (three 0.3 s beeps entering WiFi setup,
two 0.1 s beeps cancelling it). A long press without a WiFi manager is ignored (0.1.2).

The loop runs until the state machine reaches SHUTDOWN or ``stop_event`` is set. Time is read
from an injectable clock so gestures can be tested without real waiting.

Thread: the loop runs on the caller's thread (the device app's ``button-loop`` thread) and calls
the state machine, which may block for a stop; presses arriving meanwhile are ignored by the
state machine, not queued. Error policy: an exception raised by anything the loop calls (the
button read, the state machine, the recorder behind it, a callback, the WiFi manager) is logged
(the first and then every power-of-two occurrence), counted in the ``button`` loop of
:mod:`~omgrab.loop_health`, and the loop goes on with the next poll, so the next press
works. Memory: constant (one gesture detector).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from omgrab import loop_health
from omgrab.gpio import controller as gpio_controller
from omgrab.workflows import state_machine as state_machine_mod
from omgrab.workflows import states

if TYPE_CHECKING:
    from omgrab.runtime import wifi_connect

logger = logging.getLogger(__name__)

WorkflowState = states.WorkflowState

LOOP_NAME = "button"


@dataclasses.dataclass
class ButtonConfig:
    """Configuration for button press detection.

    Attributes:
        long_press_threshold_s: Hold duration to trigger WiFi reconfiguration.
        double_press_window_s: Window after a first tap in which a second tap counts as a
            double-press. Only used in IDLE state.
        check_interval_s: How often to poll the button GPIO (seconds).
    """

    long_press_threshold_s: float = 5.0
    double_press_window_s: float = 0.5
    check_interval_s: float = 0.02

    def __post_init__(self) -> None:
        for name in ("long_press_threshold_s", "double_press_window_s", "check_interval_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ButtonConfig.{name} must be > 0, got {getattr(self, name)!r}")


def button_monitor_loop(
    gpio_controller: gpio_controller.GPIOController,
    state_machine_obj: state_machine_mod.StateMachine,
    config: ButtonConfig | None = None,
    on_wifi_setup_complete: Callable[[bool], None] | None = None,
    on_button_press: Callable[[], None] | None = None,
    on_wifi_hotspot_started: Callable[[], None] | None = None,
    wifi_manager: wifi_connect.WifiManager | None = None,
    *,
    stop_event: threading.Event | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] | None = None,
) -> None:
    """Monitor button presses and delegate to the state machine.

    Short press: start/stop recording (handled by the state machine). Double press (IDLE only):
    camera preview. Long press (5+ seconds): WiFi reconfiguration portal.

    Args:
        gpio_controller: GPIO controller instance.
        state_machine_obj: State machine for managing the workflow.
        config: Button detection configuration.
        on_wifi_setup_complete: Invoked when WiFi setup completes, with its success.
        on_button_press: Invoked on any button press (rising edge).
        on_wifi_hotspot_started: Invoked when the WiFi hotspot is started.
        wifi_manager: WifiManager for WiFi setup. If None, long-press and WiFi cancel are no-ops.
        stop_event: Set it to end the loop (it also ends at SHUTDOWN).
        monotonic: Clock (seconds) used to time gestures.
        sleep: Called between polls; by default waits on ``stop_event`` for the poll interval.
    """
    cfg = config if config is not None else ButtonConfig()
    stop = stop_event if stop_event is not None else threading.Event()
    wait: Callable[[float], object] = sleep if sleep is not None else stop.wait
    detector = _GestureDetector(cfg)
    machine = _machine(state_machine_obj, gpio_controller)
    read_button = _button_reader(gpio_controller)

    def wifi_done(success: bool) -> None:
        machine.finish_wifi_setup(success)
        _call(on_wifi_setup_complete, success)

    def start_wifi() -> None:
        if wifi_manager is None:
            machine.finish_wifi_setup(False)
            return
        try:
            started = wifi_manager.start_wifi_connect(force_mode=True, callback=wifi_done)
        except Exception:
            logger.exception("starting WiFi setup failed")
            started = False
        if started:
            _call(on_wifi_hotspot_started)
        else:
            machine.finish_wifi_setup(False)

    def cancel_wifi() -> None:
        if wifi_manager is not None:
            try:
                wifi_manager.stop_wifi_connect()
            except Exception:
                logger.exception("stopping WiFi setup failed")
        machine.cancel_wifi_setup()

    health = loop_health.default()

    def poll() -> bool:
        """One poll of the button; False when the loop should end."""
        machine.sync()
        if machine.state() is WorkflowState.SHUTDOWN:
            return False
        try:
            pressed = bool(read_button())
        except Exception:
            logger.exception("reading the button failed")
            pressed = False
        now = monotonic()
        in_idle = machine.state() is WorkflowState.IDLE
        for gesture in detector.update(pressed, now, double_allowed=in_idle):
            if gesture == "down":
                _call(on_button_press)
            elif gesture == "long":
                if wifi_manager is None:
                    logger.info("long press ignored: no WiFi manager configured")
                elif machine.handle_long_press():
                    start_wifi()
            elif gesture == "double":
                machine.handle_double_press()
            elif gesture == "short":
                if machine.state() is WorkflowState.WIFI_SETUP:
                    cancel_wifi()
                else:
                    machine.handle_short_press()
        return True

    while not stop.is_set():
        try:
            if not poll():
                break
        except Exception as exc:
            health.record_error(LOOP_NAME, exc)
            count = health.errors(LOOP_NAME)
            if count & (count - 1) == 0:
                logger.exception("button loop error #%d; the loop goes on", count)
        wait(cfg.check_interval_s)


class _OwnMachine:
    """The loop's view of this package's :class:`~omgrab.workflows.state_machine.StateMachine`."""

    def __init__(self, machine: state_machine_mod.StateMachine) -> None:
        self._m = machine
        self.sync = machine.sync
        self.handle_short_press = machine.handle_short_press
        self.handle_double_press = machine.handle_double_press
        self.handle_long_press = machine.handle_long_press
        self.finish_wifi_setup = machine.finish_wifi_setup

    def state(self) -> WorkflowState:
        return self._m.state

    def cancel_wifi_setup(self) -> None:
        self._m.finish_wifi_setup(False)


class _V1Machine:
    """The loop's view of a state machine with only omgrab 0.1.2's interface."""

    def __init__(self, machine: Any, gpio: Any) -> None:
        self._m = machine
        self._beep = getattr(gpio, "buzzer_beep", None)

    def sync(self) -> None:
        """0.1.2's state machine has nothing to reconcile."""

    def state(self) -> WorkflowState:
        return WorkflowState(self._m.get_current_state())

    def handle_short_press(self) -> None:
        self._m.handle_button_press()

    def handle_double_press(self) -> None:
        self._m.handle_double_press()

    def handle_long_press(self) -> bool:
        if not self._m.enter_wifi_setup():
            logger.warning("long press: the state machine refused WiFi setup")
            return False
        self._buzz(0.3, 3)
        return True

    def finish_wifi_setup(self, success: bool) -> None:
        logger.info("WiFi setup finished (success=%s)", success)
        self._m.exit_wifi_setup()

    def cancel_wifi_setup(self) -> None:
        self._m.exit_wifi_setup()
        self._buzz(0.1, 2)

    def _buzz(self, duration: float, count: int) -> None:
        if self._beep is not None:
            self._beep(duration=duration, count=count)


def _machine(machine: Any, gpio: Any) -> _OwnMachine | _V1Machine:
    """This package's state machine as is; one with only 0.1.2's methods through an adapter."""
    if hasattr(machine, "sync") and hasattr(machine, "handle_short_press"):
        return _OwnMachine(machine)
    return _V1Machine(machine, gpio)


def _button_reader(gpio: Any) -> Callable[[], bool]:
    """``is_button_pressed`` (this package's contract) or ``read_button`` (0.1.2's API)."""
    reader = getattr(gpio, "is_button_pressed", None)
    if reader is None:
        reader = gpio.read_button
    result: Callable[[], bool] = reader
    return result


class _GestureDetector:
    """Turns sampled button levels into ``down``/``short``/``double``/``long`` gestures."""

    def __init__(self, config: ButtonConfig) -> None:
        self._cfg = config
        self._pressed = False
        self._pressed_at = 0.0
        self._long_fired = False
        self._pending_tap_at: float | None = None  # release time of a tap awaiting a second one

    def update(self, pressed: bool, now: float, *, double_allowed: bool) -> list[str]:
        gestures: list[str] = []
        if pressed and not self._pressed:
            self._pressed = True
            self._pressed_at = now
            self._long_fired = False
            gestures.append("down")
        elif pressed and self._pressed:
            held = now - self._pressed_at
            if not self._long_fired and held >= self._cfg.long_press_threshold_s:
                self._long_fired = True
                self._pending_tap_at = None
                gestures.append("long")
        elif not pressed and self._pressed:
            self._pressed = False
            if not self._long_fired:
                if self._pending_tap_at is not None:
                    self._pending_tap_at = None
                    gestures.append("double")
                elif double_allowed:
                    self._pending_tap_at = now
                else:
                    gestures.append("short")
        if (
            self._pending_tap_at is not None
            and not self._pressed
            and now - self._pending_tap_at >= self._cfg.double_press_window_s
        ):
            self._pending_tap_at = None
            gestures.append("short")
        return gestures


def _call(callback: Callable[..., None] | None, *args: object) -> None:
    if callback is None:
        return
    try:
        callback(*args)
    except Exception as exc:
        loop_health.default().record_error(LOOP_NAME, exc)
        logger.exception("button callback %r failed", callback)
