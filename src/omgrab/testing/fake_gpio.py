"""A fake GPIO controller for users' own tests.

:class:`FakeGPIOController` is the simulated backend
(:class:`omgrab.gpio.SimulatedGPIOController`) with a few assertion-friendly helpers. Drive it
with an :class:`omgrab.clock.ManualTimeSource` to run button presses with exact timings::

    clock = ManualTimeSource()
    gpio = FakeGPIOController(clock)
    gpio.hold(6.0)          # pressed now, released 6 s later on the clock
    clock.advance(5.5)
    assert gpio.is_button_pressed()
"""

from __future__ import annotations

from omgrab.gpio import controller, simulated


class FakeGPIOController(simulated.SimulatedGPIOController):
    """The simulated GPIO controller plus helpers for assertions."""

    def led_states(self) -> dict[controller.LED, controller.LEDState]:
        """Return the current state of every LED."""
        return {led: self.get_led(led) for led in controller.LED}

    def led_sequence(self, led: controller.LED) -> list[controller.LEDState]:
        """Return the states ``led`` went through, without timestamps."""
        return [state for _, state in self.led_history(led)]

    def assert_led(self, led: controller.LED, state: controller.LEDState) -> None:
        """Raise ``AssertionError`` unless ``led`` is in ``state``."""
        actual = self.get_led(led)
        if actual is not state:
            raise AssertionError(f"LED {led.name} is {actual.name}, expected {state.name}")

    @property
    def buzz_count(self) -> int:
        """How many times ``buzz`` was called."""
        return self.buzz_calls
