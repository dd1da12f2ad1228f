"""Pure timing rules for blinking LEDs and buzzer patterns.

Every backend computes output levels from these functions so that the gpiod backend's timer
thread and the simulated backend's lazily evaluated levels agree exactly. Times are seconds on
one monotonic clock; ``since`` is when the LED state or buzzer pattern was set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from omgrab.gpio import controller

#: Half period (seconds on, then seconds off) of each blinking state.
BLINK_HALF_PERIOD_S: dict[controller.LEDState, float] = {
    controller.LEDState.BLINK_SLOW: 0.5,  # 1 Hz
    controller.LEDState.BLINK_FAST: 0.125,  # 4 Hz
}


def led_level(state: controller.LEDState, since: float, now: float) -> bool:
    """Return whether an LED in ``state`` (set at ``since``) is lit at ``now``.

    Blinking starts with the LED lit at ``since``.

    Args:
        state: The LED's logical state.
        since: Monotonic time at which the state was set.
        now: Monotonic time to evaluate.

    Returns:
        True if the LED is lit.
    """
    if state is controller.LEDState.OFF:
        return False
    if state is controller.LEDState.ON:
        return True
    half = BLINK_HALF_PERIOD_S[state]
    elapsed = max(0.0, now - since)
    return int(elapsed // half) % 2 == 0


def next_led_change(state: controller.LEDState, since: float, now: float) -> float | None:
    """Return the first time after ``now`` at which the LED's level flips, or None if never."""
    if state not in BLINK_HALF_PERIOD_S:
        return None
    half = BLINK_HALF_PERIOD_S[state]
    elapsed = max(0.0, now - since)
    return since + (math.floor(elapsed / half) + 1) * half


def validate_pattern(pattern: Sequence[float]) -> tuple[float, ...]:
    """Check a buzzer pattern and return it as a tuple of floats.

    Args:
        pattern: Alternating on/off durations in seconds, starting with "on". Empty means
            silence.

    Returns:
        The pattern as a tuple.

    Raises:
        ValueError: If a duration is not a finite, non-negative number.
    """
    out: list[float] = []
    for index, value in enumerate(pattern):
        try:
            duration = float(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"buzzer pattern item {index} is {value!r}; expected a duration in seconds"
            ) from None
        if not math.isfinite(duration) or duration < 0:
            raise ValueError(
                f"buzzer pattern item {index} is {value!r}; durations must be finite and >= 0"
            )
        out.append(duration)
    return tuple(out)


def buzzer_level(pattern: Sequence[float], since: float, now: float) -> bool:
    """Return whether the buzzer sounds at ``now`` for ``pattern`` started at ``since``."""
    if now < since:
        return False
    edge = since
    for index, duration in enumerate(pattern):
        edge += duration
        if now < edge:
            return index % 2 == 0
    return False


def next_buzzer_change(pattern: Sequence[float], since: float, now: float) -> float | None:
    """Return the first time after ``now`` at which the buzzer level may change, or None."""
    edge = since
    for duration in pattern:
        edge += duration
        if edge > now:
            return edge
    return None


def pattern_end(pattern: Sequence[float], since: float) -> float:
    """Return the time at which ``pattern`` started at ``since`` is over."""
    return since + math.fsum(pattern)


def beep_pattern(duration: float, count: int, gap: float) -> tuple[float, ...]:
    """Return the buzzer pattern of ``count`` beeps of ``duration`` seconds, ``gap`` apart.

    This is how omgrab 0.1.2's ``buzzer_beep(duration, count)`` sounds here.

    Raises:
        ValueError: If ``duration`` or ``gap`` is negative or not finite, or ``count`` is not an
            integer >= 0.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"beep count={count!r}: expected an integer >= 0")
    pattern = validate_pattern([duration, gap] * count)
    return pattern[:-1]
