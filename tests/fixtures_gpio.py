"""Shared pytest fixtures for the gpio, battery and WiFi tests (registered in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from omgrab import clock, gpio
from omgrab.testing import fake_gpio


@pytest.fixture
def gpio_clock() -> clock.ManualTimeSource:
    """A manual clock for button scripts, blinking and debouncing."""
    return clock.ManualTimeSource(monotonic=100.0)


@pytest.fixture
def sim_gpio(gpio_clock: clock.ManualTimeSource) -> Iterator[fake_gpio.FakeGPIOController]:
    """A simulated GPIO controller on the manual clock."""
    controller = fake_gpio.FakeGPIOController(gpio_clock)
    yield controller
    controller.close()


@pytest.fixture
def gpiod_twin(gpio_clock: clock.ManualTimeSource) -> gpio.GpiodTwin:
    """A software twin of the gpiod module with one chip at /dev/gpiochip0."""
    return gpio.GpiodTwin(clock=gpio_clock.monotonic)


@pytest.fixture
def gpiod_controller(
    gpiod_twin: gpio.GpiodTwin, gpio_clock: clock.ManualTimeSource
) -> Iterator[gpio.GpiodController]:
    """The real gpiod backend on the twin, manual clock, no timer thread (tests call tick())."""
    controller = gpio.GpiodController(gpiod_module=gpiod_twin, clock=gpio_clock, start_thread=False)
    yield controller
    controller.close()
