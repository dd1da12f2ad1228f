from __future__ import annotations

import pytest

from omgrab import gpio
from omgrab.gpio import timing

S = gpio.LEDState


def test_steady_states() -> None:
    assert timing.led_level(S.ON, 0.0, 123.0) is True
    assert timing.led_level(S.OFF, 0.0, 123.0) is False
    assert timing.next_led_change(S.ON, 0.0, 5.0) is None
    assert timing.next_led_change(S.OFF, 0.0, 5.0) is None


@pytest.mark.parametrize(("state", "half"), [(S.BLINK_SLOW, 0.5), (S.BLINK_FAST, 0.125)])
def test_blink_starts_lit_and_flips_every_half_period(state: gpio.LEDState, half: float) -> None:
    since = 10.0
    levels = [timing.led_level(state, since, since + i * half + half / 2) for i in range(6)]
    assert levels == [True, False, True, False, True, False]
    assert timing.next_led_change(state, since, since) == pytest.approx(since + half)
    assert timing.next_led_change(state, since, since + half * 1.5) == pytest.approx(
        since + 2 * half
    )


def test_buzzer_pattern_levels_and_edges() -> None:
    pattern = (0.1, 0.2, 0.3)
    at = [0.05, 0.15, 0.25, 0.35, 0.55, 0.65, 10.0]
    assert [timing.buzzer_level(pattern, 1.0, 1.0 + t) for t in at] == [
        True,
        False,
        False,
        True,
        True,
        False,
        False,
    ]
    assert timing.buzzer_level(pattern, 1.0, 0.5) is False
    assert timing.next_buzzer_change(pattern, 1.0, 1.0) == pytest.approx(1.1)
    assert timing.next_buzzer_change(pattern, 1.0, 1.25) == pytest.approx(1.3)
    assert timing.next_buzzer_change(pattern, 1.0, 1.7) is None
    assert timing.pattern_end(pattern, 1.0) == pytest.approx(1.6)


@pytest.mark.parametrize("bad", [[-0.1], [float("nan")], [float("inf")], ["x"], [None]])
def test_bad_buzzer_pattern_names_the_item(bad: list[object]) -> None:
    with pytest.raises(ValueError, match="item 0"):
        timing.validate_pattern(bad)  # type: ignore[arg-type]


def test_debouncer_needs_stable_level() -> None:
    d = gpio.Debouncer(0.02)
    assert d.update(True, 0.000) is False
    assert d.update(False, 0.005) is False  # bounce
    assert d.update(True, 0.010) is False
    assert d.update(True, 0.025) is False  # only 15 ms stable
    assert d.update(True, 0.031) is True
    assert d.update(False, 0.040) is True
    assert d.update(True, 0.045) is True  # release bounce
    assert d.update(False, 0.050) is True
    assert d.update(False, 0.065) is True  # 15 ms
    assert d.update(False, 0.071) is False


def test_debouncer_zero_period_follows_samples() -> None:
    d = gpio.Debouncer(0.0)
    assert d.update(True, 1.0) is True
    assert d.update(False, 1.0) is False


def test_debouncer_rejects_bad_period() -> None:
    with pytest.raises(ValueError, match="debounce period"):
        gpio.Debouncer(-1.0)


def test_pins_validation() -> None:
    with pytest.raises(ValueError, match="both status_led and button"):
        gpio.GPIOPins(status_led=5, button=5)
    with pytest.raises(ValueError, match="buzzer=-1"):
        gpio.GPIOPins(buzzer=-1)
    with pytest.raises(ValueError, match="debounce_s"):
        gpio.GPIOPins(debounce_s=float("nan"))
    pins = gpio.GPIOPins()
    assert pins.led_offset(gpio.LED.RECORDING) == 27
    assert pins.chip_path == "/dev/gpiochip0"


def test_press_kind_parse() -> None:
    assert gpio.PressKind.parse("") is gpio.PressKind.SHORT
    assert gpio.PressKind.parse(" LONG\n") is gpio.PressKind.LONG
    assert gpio.PressKind.parse("double") is gpio.PressKind.DOUBLE
    with pytest.raises(ValueError, match="'triple'"):
        gpio.PressKind.parse("triple")
