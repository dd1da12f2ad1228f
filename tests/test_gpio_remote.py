from __future__ import annotations

import os
import pathlib

import pytest

from omgrab import clock, gpio
from omgrab.testing import fake_gpio

# Binary-exact durations so that polls landing exactly on an edge are deterministic.
POLL = 0.125
STEP = 1 / 64
TIMINGS = gpio.PressTimings(short_s=0.25, long_s=6.0, double_gap_s=0.25, queue_gap_s=1.0)


def _poll_until_idle(
    button: gpio.RemoteButton | gpio.SimulatedGPIOController,
    gpio_clock: clock.ManualTimeSource,
    seconds: float,
    step: float = STEP,
) -> list[tuple[float, bool]]:
    """Poll like the button monitor does; return the level changes seen (relative times)."""
    start = gpio_clock.monotonic()
    changes: list[tuple[float, bool]] = []
    level = False
    for _ in range(round(seconds / step)):
        pressed = button.is_button_pressed()
        if pressed != level:
            changes.append((gpio_clock.monotonic() - start, pressed))
            level = pressed
        gpio_clock.advance(step)
    return changes


def test_touch_trigger_file_gives_one_short_press(
    tmp_path: pathlib.Path, gpio_clock: clock.ManualTimeSource
) -> None:
    trigger = tmp_path / "press"
    sim = gpio.SimulatedGPIOController(gpio_clock)
    button = gpio.RemoteButton(
        sim, trigger, clock=gpio_clock, timings=TIMINGS, poll_interval_s=POLL
    )
    assert button.is_button_pressed() is False  # looked at t=0: no file
    trigger.touch()
    changes = _poll_until_idle(button, gpio_clock, 2.0)
    # Seen on the next look (t=0.125), consumed on the one after (t=0.25), held 0.25 s.
    assert changes == [(0.25, True), (0.5, False)]
    assert not trigger.exists()
    assert _poll_until_idle(button, gpio_clock, 1.0) == []


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("long", [(0.125, True), (6.125, False)]),
        ("double\n", [(0.125, True), (0.375, False), (0.625, True), (0.875, False)]),
    ],
)
def test_trigger_file_content_selects_press_kind(
    tmp_path: pathlib.Path,
    gpio_clock: clock.ManualTimeSource,
    content: str,
    expected: list[tuple[float, bool]],
) -> None:
    trigger = tmp_path / "press"
    real = fake_gpio.FakeGPIOController(gpio_clock)
    button = gpio.RemoteButton(
        real, trigger, clock=gpio_clock, timings=TIMINGS, poll_interval_s=POLL
    )
    trigger.write_text(content)
    assert _poll_until_idle(button, gpio_clock, 7.0) == expected
    assert button.watcher is not None and button.watcher.errors == 0


def test_trigger_file_still_being_written_is_not_consumed(
    tmp_path: pathlib.Path, gpio_clock: clock.ManualTimeSource
) -> None:
    trigger = tmp_path / "press"
    watcher = gpio.TriggerFileWatcher(trigger, poll_interval_s=POLL)
    trigger.write_text("")
    assert watcher.poll(gpio_clock.monotonic()) == []
    gpio_clock.advance(POLL)
    trigger.write_text("long")  # changed since the last look: wait one more poll
    os.utime(trigger, ns=(1, 1))
    assert watcher.poll(gpio_clock.monotonic()) == []
    gpio_clock.advance(POLL / 2)
    assert watcher.poll(gpio_clock.monotonic()) == []  # rate limited
    gpio_clock.advance(POLL / 2)
    assert watcher.poll(gpio_clock.monotonic()) == [gpio.PressKind.LONG]


def test_unknown_trigger_content_is_counted_and_consumed(
    tmp_path: pathlib.Path, gpio_clock: clock.ManualTimeSource, caplog: pytest.LogCaptureFixture
) -> None:
    trigger = tmp_path / "press"
    sim = gpio.SimulatedGPIOController(
        gpio_clock, trigger_path=trigger, timings=TIMINGS, trigger_poll_interval_s=POLL
    )
    trigger.write_text("triple")
    assert _poll_until_idle(sim, gpio_clock, 1.0) == []
    assert sim.watcher is not None
    assert sim.watcher.errors == 1
    assert "triple" in (sim.watcher.last_error or "")
    assert "triple" in caplog.text
    assert not trigger.exists()


def test_undeletable_trigger_file_fires_once(
    tmp_path: pathlib.Path, gpio_clock: clock.ManualTimeSource
) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    trigger = directory / "press"
    trigger.write_text("")
    directory.chmod(0o500)
    try:
        if os.access(directory, os.W_OK) and os.geteuid() == 0:
            # root ignores directory permissions: make deletion fail with a directory instead
            directory.chmod(0o700)
            trigger.unlink()
            trigger.mkdir()
        watcher = gpio.TriggerFileWatcher(trigger, poll_interval_s=POLL)
        seen: list[gpio.PressKind] = []
        for _ in range(10):
            seen += watcher.poll(gpio_clock.monotonic())
            gpio_clock.advance(POLL)
        assert seen == []
        assert watcher.errors == 1
        assert str(trigger) in (watcher.last_error or "")
    finally:
        directory.chmod(0o700)


def test_callable_press_is_queued_after_the_current_one(
    sim_gpio: fake_gpio.FakeGPIOController, gpio_clock: clock.ManualTimeSource
) -> None:
    button = gpio.RemoteButton(sim_gpio, clock=gpio_clock, timings=TIMINGS)
    assert button.press() == 100.0
    assert button.press("short") == 100.0 + 0.25 + 1.0
    changes = _poll_until_idle(button, gpio_clock, 2.0)
    assert changes == [(0.0, True), (0.25, False), (1.25, True), (1.5, False)]
    with pytest.raises(ValueError, match="'sideways'"):
        button.press("sideways")


def test_remote_button_ors_physical_and_delegates(
    sim_gpio: fake_gpio.FakeGPIOController, gpio_clock: clock.ManualTimeSource
) -> None:
    button = gpio.RemoteButton(sim_gpio, clock=gpio_clock)
    assert isinstance(button, gpio.GPIOController)
    sim_gpio.hold(1.0)
    assert button.is_button_pressed() is True
    gpio_clock.advance(2.0)
    assert button.is_button_pressed() is False
    button.set_led(gpio.LED.STATUS, gpio.LEDState.ON)
    assert sim_gpio.get_led(gpio.LED.STATUS) is gpio.LEDState.ON
    assert button.get_led(gpio.LED.STATUS) is gpio.LEDState.ON
    button.buzz([0.2])
    assert button.buzz_history == sim_gpio.buzz_history  # extra helpers pass through
    with button:
        pass
    assert sim_gpio.closed


def test_remote_press_on_simulated_controller(
    sim_gpio: fake_gpio.FakeGPIOController, gpio_clock: clock.ManualTimeSource
) -> None:
    sim_gpio.remote_press("long")
    gpio_clock.advance(5.9)
    assert sim_gpio.is_button_pressed() is True
    gpio_clock.advance(0.2)
    assert sim_gpio.is_button_pressed() is False


def test_remote_button_with_gpiod_backend(
    tmp_path: pathlib.Path,
    gpiod_twin: gpio.GpiodTwin,
    gpiod_controller: gpio.GpiodController,
    gpio_clock: clock.ManualTimeSource,
) -> None:
    trigger = tmp_path / "press"
    button = gpio.RemoteButton(
        gpiod_controller, trigger, clock=gpio_clock, timings=TIMINGS, poll_interval_s=POLL
    )
    trigger.touch()
    assert _poll_until_idle(button, gpio_clock, 1.0) == [(0.125, True), (0.375, False)]
    # and the physical (active-low) button still works through the wrapper, debounced 20 ms
    gpiod_twin.chip().drive(23, False)
    assert _poll_until_idle(button, gpio_clock, 0.125) == [(2 * STEP, True)]
