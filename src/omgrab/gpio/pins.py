"""Which GPIO lines the LEDs, buzzer and button are wired to."""

from __future__ import annotations

import dataclasses
import math

from omgrab.gpio import controller


@dataclasses.dataclass(frozen=True)
class GPIOPins:
    """GPIO wiring of a capture rig (BCM line offsets on one gpiochip).

    Attributes:
        chip_path: GPIO character device holding all lines.
        status_led: Line of the green status LED.
        recording_led: Line of the red recording / error LED.
        network_led: Line of the blue network LED.
        buzzer: Line of the (active) buzzer.
        button: Line of the push button.
        button_active_low: True if the button pulls the line low when pressed.
        button_pull_up: Enable the internal pull-up (pull-down if False and the button is
            active-high).
        debounce_s: Debounce period requested from the kernel for the button line.
        software_debounce_s: How long the button level must be sampled unchanged before it is
            accepted, in case the kernel does not debounce.
        leds_active_low: True if LEDs light when their line is driven low.
        buzzer_active_low: True if the buzzer sounds when its line is driven low.
        consumer: Consumer label shown by ``gpioinfo`` for the requested lines.
    """

    chip_path: str = "/dev/gpiochip0"
    status_led: int = 17
    recording_led: int = 27
    network_led: int = 22
    buzzer: int = 18
    button: int = 23
    button_active_low: bool = True
    button_pull_up: bool = True
    debounce_s: float = 0.01
    software_debounce_s: float = 0.02
    leds_active_low: bool = False
    buzzer_active_low: bool = False
    consumer: str = "omgrab"

    def __post_init__(self) -> None:
        named = {
            "status_led": self.status_led,
            "recording_led": self.recording_led,
            "network_led": self.network_led,
            "buzzer": self.buzzer,
            "button": self.button,
        }
        seen: dict[int, str] = {}
        for name, offset in named.items():
            if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
                raise ValueError(f"GPIO line {name}={offset!r} must be a non-negative integer")
            if offset in seen:
                raise ValueError(
                    f"GPIO line {offset} is assigned to both {seen[offset]} and {name}"
                )
            seen[offset] = name
        for name in ("debounce_s", "software_debounce_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name}={value!r} must be finite and >= 0")
        if not self.chip_path:
            raise ValueError("chip_path must not be empty")

    def led_offset(self, led: controller.LED) -> int:
        """Return the line offset of ``led``."""
        return self.led_offsets()[led]

    def led_offsets(self) -> dict[controller.LED, int]:
        """Return the line offset of every LED."""
        return {
            controller.LED.STATUS: self.status_led,
            controller.LED.RECORDING: self.recording_led,
            controller.LED.NETWORK: self.network_led,
        }
