from __future__ import annotations

import threading

import pytest

from omgrab import clock, gpio
from omgrab.testing import fake_gpio

LED = gpio.LED
S = gpio.LEDState


def test_satisfies_protocol(sim_gpio: fake_gpio.FakeGPIOController) -> None:
    assert isinstance(sim_gpio, gpio.GPIOController)
    assert isinstance(sim_gpio, gpio.SimulatedGPIOController)


def test_led_history_records_changes_with_timestamps(
    sim_gpio: fake_gpio.FakeGPIOController, gpio_clock: clock.ManualTimeSource
) -> None:
    sim_gpio.set_led(LED.RECORDING, S.ON)
    gpio_clock.advance(1.5)
    sim_gpio.set_led(LED.RECORDING, S.ON)  # unchanged: not recorded
    sim_gpio.set_led(LED.RECORDING, S.BLINK_FAST)
    gpio_clock.advance(0.5)
    sim_gpio.set_led(LED.RECORDING, S.OFF)
    assert sim_gpio.led_history(LED.RECORDING) == [
        (100.0, S.ON),
        (101.5, S.BLINK_FAST),
        (102.0, S.OFF),
    ]
    assert sim_gpio.led_history(LED.STATUS) == []
    assert sim_gpio.led_sequence(LED.RECORDING) == [S.ON, S.BLINK_FAST, S.OFF]
    assert sim_gpio.get_led(LED.RECORDING) is S.OFF
    sim_gpio.assert_led(LED.RECORDING, S.OFF)
    with pytest.raises(AssertionError, match="RECORDING is OFF, expected ON"):
        sim_gpio.assert_led(LED.RECORDING, S.ON)


def test_blink_level_follows_clock_and_keeps_phase(
    sim_gpio: fake_gpio.FakeGPIOController, gpio_clock: clock.ManualTimeSource
) -> None:
    sim_gpio.set_led(LED.STATUS, S.BLINK_SLOW)
    levels = []
    for _ in range(4):
        levels.append(sim_gpio.led_level(LED.STATUS))
        gpio_clock.advance(0.5)
        # Re-setting the same state (as a polling state machine does) must not restart it.
        sim_gpio.set_led(LED.STATUS, S.BLINK_SLOW)
    assert levels == [True, False, True, False]


def test_buzz_history_and_level(
    sim_gpio: fake_gpio.FakeGPIOController, gpio_clock: clock.ManualTimeSource
) -> None:
    sim_gpio.buzz([0.1, 0.1, 0.1])
    assert sim_gpio.buzz_history == [(100.0, (0.1, 0.1, 0.1))]
    assert sim_gpio.buzzer_level() is True
    gpio_clock.advance(0.15)
    assert sim_gpio.buzzer_level() is False
    gpio_clock.advance(0.1)
    assert sim_gpio.buzzer_level() is True
    gpio_clock.advance(1.0)
    assert sim_gpio.buzzer_level() is False
    assert sim_gpio.buzz_count == 1
    with pytest.raises(ValueError, match="item 1"):
        sim_gpio.buzz([0.1, -2])
    assert sim_gpio.buzz_count == 1


def test_hold_is_scripted_on_the_clock(
    sim_gpio: fake_gpio.FakeGPIOController, gpio_clock: clock.ManualTimeSource
) -> None:
    assert sim_gpio.is_button_pressed() is False
    sim_gpio.hold(5.5)
    assert sim_gpio.is_button_pressed() is True
    gpio_clock.advance(5.49)
    assert sim_gpio.is_button_pressed() is True
    assert sim_gpio.script_done() is False
    gpio_clock.advance(0.02)
    assert sim_gpio.is_button_pressed() is False
    assert sim_gpio.script_done() is True


def test_tap_and_double_tap(
    sim_gpio: fake_gpio.FakeGPIOController, gpio_clock: clock.ManualTimeSource
) -> None:
    # binary-exact times so that sampling exactly on an edge is deterministic
    sim_gpio.double_tap(gap_s=0.25, duration_s=0.125)
    samples = []
    for _ in range(10):
        samples.append(sim_gpio.is_button_pressed())
        gpio_clock.advance(0.0625)
    # pressed [0, 0.125), released [0.125, 0.375), pressed [0.375, 0.5), then released
    assert samples == [True, True, False, False, False, False, True, True, False, False]
    gpio_clock.advance(1.0)
    sim_gpio.tap()
    assert sim_gpio.is_button_pressed() is True
    gpio_clock.advance(0.16)
    assert sim_gpio.is_button_pressed() is False


def test_press_release_and_script(
    sim_gpio: fake_gpio.FakeGPIOController, gpio_clock: clock.ManualTimeSource
) -> None:
    sim_gpio.press()
    gpio_clock.advance(10)
    assert sim_gpio.is_button_pressed() is True
    sim_gpio.release()
    assert sim_gpio.is_button_pressed() is False
    sim_gpio.script([(1.0, True), (1.0, False), (2.0, True), (3.0, False)])
    gpio_clock.advance(1.5)
    assert sim_gpio.is_button_pressed() is False
    gpio_clock.advance(1.0)
    assert sim_gpio.is_button_pressed() is True
    assert [p for _, p in sim_gpio.button_history] == [True, False, True, False, True, False]


@pytest.mark.parametrize(
    ("events", "match"),
    [
        ([(1.0, True), (0.5, False)], "item 1 has offset 0.5"),
        ([(-1.0, True)], "item 0 has offset -1.0"),
        ([(1.0,)], "item 0 is"),
    ],
)
def test_script_rejects_bad_events(
    sim_gpio: fake_gpio.FakeGPIOController, events: list[tuple[float, bool]], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        sim_gpio.script(events)
    assert sim_gpio.button_history == []


def test_close_turns_outputs_off(sim_gpio: fake_gpio.FakeGPIOController) -> None:
    sim_gpio.set_led(LED.NETWORK, S.ON)
    sim_gpio.buzz([10.0])
    sim_gpio.close()
    assert sim_gpio.led_states() == {led: S.OFF for led in LED}
    assert sim_gpio.buzzer_level() is False
    with pytest.raises(RuntimeError, match="closed"):
        sim_gpio.set_led(LED.NETWORK, S.ON)
    sim_gpio.close()  # idempotent


def test_wrong_types_are_rejected(sim_gpio: fake_gpio.FakeGPIOController) -> None:
    with pytest.raises(TypeError, match="LEDState"):
        sim_gpio.set_led(LED.STATUS, "on")  # type: ignore[arg-type]


def test_wait_for_led_across_threads() -> None:
    controller = gpio.SimulatedGPIOController()
    setter = threading.Timer(0.01, controller.set_led, args=(LED.STATUS, S.ON))
    setter.start()
    assert controller.wait_for_led(LED.STATUS, S.ON, timeout_s=5.0)
    assert controller.wait_for_led(LED.NETWORK, S.ON, timeout_s=0.01) is False
    threading.Timer(0.01, controller.buzz, args=([0.1],)).start()
    assert controller.wait_for_buzz(1, timeout_s=5.0)
    setter.join()


def test_histories_are_bounded(gpio_clock: clock.ManualTimeSource) -> None:
    controller = gpio.SimulatedGPIOController(gpio_clock, history_limit=3)
    for index in range(5):
        controller.set_led(LED.STATUS, S.ON if index % 2 == 0 else S.OFF)
        controller.buzz([0.01 * (index + 1)])
        controller.tap()
        gpio_clock.advance(1.0)
    assert [state for _, state in controller.led_history(LED.STATUS)] == [S.ON, S.OFF, S.ON]
    assert [pattern for _, pattern in controller.buzz_history] == [(0.03,), (0.04,), (0.05,)]
    assert controller.buzz_calls == 5
    assert len(controller.button_history) == 3
    assert controller.wait_for_buzz(5, timeout_s=0.0)
