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
        if self._gpio is None:
            return
        try:
            self._gpio.buzz(pattern)
        except Exception:
            self.errors += 1
            logger.exception("buzzer failed")

    def _led(self, led: gpio_controller.LED, state: gpio_controller.LEDState) -> None:
        if self._gpio is None:
            return
        try:
            self._gpio.set_led(led, state)
        except Exception:
            self.errors += 1
            logger.exception("setting LED %s failed", led.value)
