"""The GPIO contract: LEDs, a buzzer and one push button."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Protocol, runtime_checkable


class LEDState(enum.Enum):
    """What an LED shows. Blinking is driven by the controller's own timer thread.

    The member names and values are omgrab 0.1.2's (``SLOW_BLINK = 'slow_blink'``, ...);
    ``BLINK_SLOW`` and ``BLINK_FAST`` are aliases of the same members.
    """

    OFF = "off"
    ON = "on"
    SLOW_BLINK = "slow_blink"  # 1 Hz
    FAST_BLINK = "fast_blink"  # 4 Hz
    BLINK_SLOW = "slow_blink"  # alias of SLOW_BLINK
    BLINK_FAST = "fast_blink"  # alias of FAST_BLINK


class LED(enum.Enum):
    """The LEDs of a capture rig."""

    STATUS = "status"  # green: device state
    RECORDING = "recording"  # red: recording / errors
    NETWORK = "network"  # blue: connectivity


@runtime_checkable
class GPIOController(Protocol):
    """LEDs, buzzer and button of the device."""

    def set_led(self, led: LED, state: LEDState) -> None:
        """Set one LED's state."""
        ...

    def get_led(self, led: LED) -> LEDState:
        """Return one LED's current state."""
        ...

    def buzz(self, pattern: Sequence[float]) -> None:
        """Sound the buzzer without blocking: alternating on/off durations in seconds."""
        ...

    def is_button_pressed(self) -> bool:
        """Return the debounced button level (True while held down)."""
        ...

    def close(self) -> None:
        """Turn everything off and release the lines."""
        ...


def check_led(led: object, state: object) -> None:
    """Raise ``TypeError`` unless ``led`` is an :class:`LED` and ``state`` an :class:`LEDState`."""
    if not isinstance(led, LED):
        raise TypeError(f"expected an omgrab.gpio.LED, got {led!r}")
    if not isinstance(state, LEDState):
        raise TypeError(f"expected an omgrab.gpio.LEDState, got {state!r}")
