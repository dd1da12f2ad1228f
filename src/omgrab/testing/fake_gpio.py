"""A fake GPIO controller for users' own tests.

:class:`FakeGPIOController` is the simulated backend
(:class:`omgrab.gpio.SimulatedGPIOController`) with a few assertion-friendly helpers. Drive it
with an :class:`omgrab.clock.ManualTimeSource` to run button presses with exact timings::

    clock = ManualTimeSource()
    gpio = FakeGPIOController(clock)
    gpio.hold(6.0)          # pressed now, released 6 s later on the clock
    clock.advance(5.5)
    assert gpio.is_button_pressed()

It also has omgrab 0.1.2's fake API, and is an instance of 0.1.2's
:class:`omgrab.gpio.gpio.GPIOController`: ``set_led_states``, ``buzzer_beep``, ``set_buzzer``,
``set_buzzer_volume``, ``set_buzzer_tone``, ``read_button`` and ``cleanup`` are recorded in
``led_calls``, ``buzzer_beeps``, ``buzzer_states``, ``buzzer_volumes``, ``buzzer_tones`` and
``cleaned_up``, and drive the same twin (red LED = ``LED.RECORDING``, green LED =
``LED.STATUS``). ``button_pressed`` reads and sets the twin's button (setting it presses or
releases it now)::

    gpio = FakeGPIOController()
    gpio.button_pressed = True
    assert gpio.read_button() and gpio.is_button_pressed()
"""

from __future__ import annotations

from typing import Any

from omgrab.gpio import controller, gpio, gpio_process, simulated, timing


class FakeGPIOController(simulated.SimulatedGPIOController, gpio.GPIOController):
    """The simulated GPIO controller plus helpers for assertions and 0.1.2's fake API.

    Takes :class:`~omgrab.gpio.simulated.SimulatedGPIOController`'s arguments (all optional:
    ``FakeGPIOController()`` is 0.1.2's no-argument fake).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Only the twin: 0.1.2's GPIOController.__init__ would start a GPIO process.
        simulated.SimulatedGPIOController.__init__(self, *args, **kwargs)
        self.led_calls: list[tuple[str, str]] = []  # (red value, green value)
        self.buzzer_states: list[bool] = []
        self.buzzer_beeps: list[tuple[float, int]] = []  # (duration, count)
        self.buzzer_volumes: list[float] = []
        self.buzzer_tones: list[float] = []
        self.cleaned_up = False
        self._volume = gpio_process.DEFAULT_BUZZER_VOLUME

    # -- omgrab 0.1.2's GPIOController API ------------------------------------------------

    def set_led_states(self, red: controller.LEDState, green: controller.LEDState) -> None:
        """Record ``(red.value, green.value)`` and set the red and green LEDs of the twin."""
        controller.check_led(controller.LED.RECORDING, red)
        controller.check_led(controller.LED.STATUS, green)
        self.led_calls.append((red.value, green.value))
        self.set_led(controller.LED.RECORDING, red)
        self.set_led(controller.LED.STATUS, green)

    def set_buzzer(self, state: bool) -> None:
        """Record and turn the twin's buzzer on (until turned off) or off."""
        self.buzzer_states.append(state)
        on = bool(state) and self._volume > 0
        self.buzz((gpio_process.CONTINUOUS_BUZZ_S,) if on else ())

    def set_buzzer_volume(self, volume: float) -> None:
        """Record the volume (0.0 makes later beeps silent)."""
        self.buzzer_volumes.append(volume)
        self._volume = min(1.0, max(0.0, float(volume)))

    def set_buzzer_tone(self, freq: float) -> None:
        """Record the tone."""
        self.buzzer_tones.append(freq)

    def buzzer_beep(self, duration: float = 0.1, count: int = 1) -> None:
        """Record ``(duration, count)`` and sound the beeps on the twin."""
        pattern = timing.beep_pattern(duration, count, gpio_process.BEEP_GAP_S)
        self.buzzer_beeps.append((duration, count))
        if self._volume > 0 and pattern:
            self.buzz(pattern)

    def read_button(self) -> bool:
        """Return the twin's button level (``is_button_pressed``)."""
        return self.is_button_pressed()

    @property
    def button_pressed(self) -> bool:
        """The twin's button level; setting it presses (True) or releases (False) it now."""
        return self.is_button_pressed()

    @button_pressed.setter
    def button_pressed(self, pressed: bool) -> None:
        if pressed:
            self.press()
        else:
            self.release()

    def cleanup(self) -> None:
        """Record and close the twin (every output off)."""
        self.cleaned_up = True
        self.close()

    # -- helpers ----------------------------------------------------------------------------

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
