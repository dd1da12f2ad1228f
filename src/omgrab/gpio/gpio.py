"""omgrab 0.1.2's GPIO API: ``GPIOController()`` with red/green LEDs, buzzer and button.

A thin module at the published path. :class:`GPIOController` delegates every call to a
:class:`~omgrab.gpio.gpio_process.GPIOControllerProcess` (a separate process driving this
package's gpiod backend, or its software twin where there is no GPIO chip). ``LEDState`` is this
package's :class:`~omgrab.gpio.controller.LEDState` (0.1.2's member names and values).

``isinstance(x, GPIOController)`` is also true for any controller of this package's GPIO
contract (:class:`omgrab.gpio.controller.GPIOController`: ``set_led``, ``get_led``, ``buzz``,
``is_button_pressed``, ``close``), so ``omgrab.gpio.GPIOController`` names both.
"""

from __future__ import annotations

import abc
from typing import Any

from omgrab.gpio import controller, gpio_process

LEDState = controller.LEDState

#: The methods of this package's GPIO contract (``omgrab.gpio.controller.GPIOController``).
CONTRACT_METHODS = ("set_led", "get_led", "buzz", "is_button_pressed", "close")


class GPIOController(abc.ABC):  # noqa: B024 - an ABC only for its structural __subclasshook__
    """Controller for the red and green LEDs, the buzzer and the push button (0.1.2's API).

    Every call is forwarded to a GPIO process, so blinking stays smooth whatever the caller's
    process does.
    """

    # 0.1.2's wiring (BCM numbering).
    PIN_GREEN_LED = gpio_process.PIN_GREEN_LED
    PIN_RED_LED = gpio_process.PIN_RED_LED
    PIN_BUZZER = gpio_process.PIN_BUZZER
    PIN_BUTTON = gpio_process.PIN_BUTTON

    def __init__(self) -> None:
        """Start the GPIO process."""
        self._process_controller: Any = gpio_process.GPIOControllerProcess()

    @classmethod
    def __subclasshook__(cls, subclass: type) -> bool | Any:
        """Controllers of this package's GPIO contract count as instances too."""
        if cls is GPIOController and all(
            any(name in vars(base) for base in subclass.__mro__) for name in CONTRACT_METHODS
        ):
            return True
        return NotImplemented

    def cleanup(self) -> None:
        """Turn everything off and stop the GPIO process."""
        self._process_controller.cleanup()

    def set_led_states(self, red: controller.LEDState, green: controller.LEDState) -> None:
        """Set both LEDs.

        Args:
            red: Desired state of the red LED.
            green: Desired state of the green LED.

        Raises:
            TypeError: If a state is not an ``LEDState``.
        """
        for name, state in (("red", red), ("green", green)):
            if not isinstance(state, controller.LEDState):
                raise TypeError(f"{name} must be an omgrab.gpio.LEDState, got {state!r}")
        self._process_controller.set_led_states(red.value, green.value)

    def set_buzzer(self, state: bool) -> None:
        """Turn the buzzer on (True) or off (False)."""
        self._process_controller.set_buzzer(state)

    def set_buzzer_volume(self, volume: float) -> None:
        """Set the buzzer volume from 0.0 (silent) to 1.0 (full)."""
        self._process_controller.set_buzzer_volume(volume)

    def set_buzzer_tone(self, freq: float) -> None:
        """Set the buzzer tone in Hz (clamped to 20-20000)."""
        self._process_controller.set_buzzer_tone(freq)

    def read_button(self) -> bool:
        """Return True while the push button is pressed."""
        result: bool = self._process_controller.read_button()
        return result

    def buzzer_beep(self, duration: float = 0.1, count: int = 1) -> None:
        """Beep ``count`` times for ``duration`` seconds each (does not block)."""
        self._process_controller.buzzer_beep(duration, count)

    def status(self) -> dict[str, Any]:
        """The GPIO process's state: backend, LED patterns, buzzer, counters (beyond 0.1.2)."""
        result: dict[str, Any] = self._process_controller.status()
        return result
