"""LED and buzzer patterns: what a person sees and hears in each state and on each event."""

from __future__ import annotations

import logging

from omgrab.gpio import controller as gpio_controller
from omgrab.workflows import states

logger = logging.getLogger(__name__)

LED = gpio_controller.LED
LEDState = gpio_controller.LEDState
WorkflowState = states.WorkflowState

# (status LED, recording LED) per state; the network LED follows connectivity instead.
STATE_LEDS: dict[WorkflowState, tuple[LEDState, LEDState]] = {
    WorkflowState.BOOT: (LEDState.BLINK_FAST, LEDState.OFF),
    WorkflowState.IDLE: (LEDState.ON, LEDState.OFF),
    WorkflowState.RECORDING: (LEDState.ON, LEDState.ON),
    WorkflowState.CAMERA_PREVIEW: (LEDState.BLINK_SLOW, LEDState.OFF),
    WorkflowState.WIFI_SETUP: (LEDState.ON, LEDState.OFF),
    WorkflowState.SHUTDOWN: (LEDState.OFF, LEDState.OFF),
}

# Buzzer patterns: alternating on/off durations in seconds.
BEEP_START = (0.15,)
BEEP_STOP = (0.1, 0.1, 0.1)
BEEP_PREVIEW = (0.05, 0.05, 0.05)
BEEP_WIFI = (0.4,)
BEEP_REFUSED = (0.5, 0.2, 0.5)
BEEP_ALERT = (0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1)
BEEP_PREVIEW_EXIT = (0.05,)


class Indicators:
    """Drives LEDs and buzzer; every GPIO failure is logged and counted, never raised.

    Args:
        gpio: The controller, or None on a headless device.
    """

    def __init__(self, gpio: gpio_controller.GPIOController | None) -> None:
        self._gpio = gpio
        self.errors = 0

    def show_state(self, state: WorkflowState) -> None:
        """Set the status and recording LEDs for ``state``."""
        status, recording = STATE_LEDS[state]
        self._led(LED.STATUS, status)
        self._led(LED.RECORDING, recording)
        if state is WorkflowState.WIFI_SETUP:
            self._led(LED.NETWORK, LEDState.BLINK_FAST)
        elif state is WorkflowState.SHUTDOWN:
            self._led(LED.NETWORK, LEDState.OFF)

    def show_network(self, level: int) -> None:
        """Network LED: 0 offline (off), 1 local network only (slow blink), 2 online (on)."""
        state = {0: LEDState.OFF, 1: LEDState.BLINK_SLOW}.get(level, LEDState.ON)
        self._led(LED.NETWORK, state)

    def alert(self) -> None:
        """Signal a failure: recording LED blinks fast and the buzzer sounds the alert."""
        self._led(LED.RECORDING, LEDState.BLINK_FAST)
        self.beep(BEEP_ALERT)

    def beep(self, pattern: tuple[float, ...]) -> None:
        """Sound a buzzer pattern without blocking."""
        self._call("buzzer", "buzz", pattern)

    def cleanup(self) -> None:
        """Turn everything off and release the controller (``close``)."""
        self._call("GPIO cleanup", "close")

    def _led(self, led: gpio_controller.LED, state: gpio_controller.LEDState) -> None:
        self._call(f"setting LED {led.value}", "set_led", led, state)

    def _call(self, what: str, method: str, *args: object) -> None:
        """Call ``method`` of the controller; a failure is logged and counted."""
        if self._gpio is None:
            return
        try:
            getattr(self._gpio, method)(*args)
        except Exception:
            self.errors += 1
            logger.exception("%s failed", what)


# omgrab 0.1.2's red/green patterns per state, for controllers with 0.1.2's API.
V1_STATE_LEDS: dict[WorkflowState, tuple[LEDState, LEDState]] = {
    WorkflowState.BOOT: (LEDState.OFF, LEDState.ON),
    WorkflowState.IDLE: (LEDState.OFF, LEDState.ON),
    WorkflowState.RECORDING: (LEDState.SLOW_BLINK, LEDState.OFF),
    WorkflowState.CAMERA_PREVIEW: (LEDState.OFF, LEDState.SLOW_BLINK),
    WorkflowState.WIFI_SETUP: (LEDState.FAST_BLINK, LEDState.FAST_BLINK),
    WorkflowState.SHUTDOWN: (LEDState.OFF, LEDState.OFF),
}

# What each of this package's buzzer patterns sounds like on 0.1.2's API: (duration, count).
V1_BEEPS: dict[tuple[float, ...], tuple[float, int]] = {
    BEEP_START: (0.1, 1),
    BEEP_STOP: (0.1, 2),
    BEEP_PREVIEW: (0.1, 2),
    BEEP_PREVIEW_EXIT: (0.1, 1),
    BEEP_WIFI: (0.3, 3),
    BEEP_REFUSED: (0.1, 2),
    BEEP_ALERT: (0.1, 5),
}


class V1Indicators(Indicators):
    """Indicators on a controller with omgrab 0.1.2's API (``set_led_states``, ``buzzer_beep``).

    LEDs show 0.1.2's red/green patterns (``V1_STATE_LEDS``; there is no network LED), beeps
    are 0.1.2's ``(duration, count)`` (``V1_BEEPS``), an alert is 0.1.2's five beeps, SHUTDOWN
    also turns the buzzer off, and :meth:`cleanup` calls the controller's ``cleanup``.
    """

    def show_state(self, state: WorkflowState) -> None:
        """Set the red and green LEDs for ``state``."""
        red, green = V1_STATE_LEDS[state]
        self._call("setting LEDs", "set_led_states", red, green)
        if state is WorkflowState.SHUTDOWN:
            self._call("turning the buzzer off", "set_buzzer", False)

    def show_network(self, level: int) -> None:
        """0.1.2's rig has no network LED."""

    def alert(self) -> None:
        """Signal a failure: five beeps."""
        self.beep(BEEP_ALERT)

    def beep(self, pattern: tuple[float, ...]) -> None:
        """Sound ``pattern`` as 0.1.2's ``buzzer_beep(duration, count)``."""
        duration, count = V1_BEEPS.get(pattern, (pattern[0] if pattern else 0.1, 1))
        self._call("buzzer", "buzzer_beep", duration, count)

    def cleanup(self) -> None:
        """Call the controller's ``cleanup`` (0.1.2)."""
        self._call("GPIO cleanup", "cleanup")


def for_controller(gpio: object | None) -> Indicators:
    """The indicators for ``gpio``: 0.1.2's if it has 0.1.2's API, else this package's.

    A controller with both (``omgrab.testing.FakeGPIOController``) gets 0.1.2's, so that a
    0.1.2 test reading its ``led_calls`` sees 0.1.2's patterns.
    """
    if gpio is not None and hasattr(gpio, "set_led_states") and hasattr(gpio, "buzzer_beep"):
        return V1Indicators(gpio)  # type: ignore[arg-type]
    return Indicators(gpio)  # type: ignore[arg-type]
