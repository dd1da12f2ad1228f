"""A software twin of the GPIO hardware, in the style of gpiozero's mock pin factory.

LED and buzzer changes are recorded with timestamps; the button is scripted on a clock, so a
test driving a :class:`~omgrab.clock.ManualTimeSource` runs presses with exact timings and no
sleeps. Blink and buzzer levels are computed from the same timing rules as the gpiod backend.
"""

from __future__ import annotations

import collections
import math
import os
import threading
from collections.abc import Sequence

from omgrab.gpio import button_script, controller, remote, timing


class SimulatedGPIOController:
    """GPIO controller with no hardware: records outputs, plays a scripted button.

    Args:
        clock: Monotonic clock for timestamps and button scripts (``time.monotonic`` by
            default; pass ``omgrab.clock.ManualTimeSource`` for deterministic tests).
        trigger_path: Optional trigger file for remote presses (see :mod:`omgrab.gpio.remote`).
        timings: Durations of synthesised presses (``tap``, ``double_tap``, remote presses).
        trigger_poll_interval_s: Minimum time between two looks at the trigger file.
        history_limit: How many entries each history keeps (oldest dropped), so that a
            simulated controller can also run a long demo.
    """

    def __init__(
        self,
        clock: remote.MonotonicClock | None = None,
        *,
        trigger_path: str | os.PathLike[str] | None = None,
        timings: button_script.PressTimings | None = None,
        trigger_poll_interval_s: float = 0.1,
        history_limit: int = 10_000,
    ) -> None:
        self._clock = clock if clock is not None else remote.system_clock()
        self._timings = timings if timings is not None else button_script.PressTimings()
        # The condition's lock guards every field below; waiters are woken on output changes.
        self._changed = threading.Condition()
        now = self._clock.monotonic()
        self._led_state = {led: controller.LEDState.OFF for led in controller.LED}
        self._led_since = {led: now for led in controller.LED}
        self._led_history: dict[
            controller.LED, collections.deque[tuple[float, controller.LEDState]]
        ] = {led: collections.deque(maxlen=history_limit) for led in controller.LED}
        self._pattern: tuple[float, ...] = ()
        self._pattern_since = now
        self._buzz_history: collections.deque[tuple[float, tuple[float, ...]]] = collections.deque(
            maxlen=history_limit
        )
        self._buzz_calls = 0
        self._timeline = button_script.ButtonTimeline(history_limit)
        self._watcher = (
            remote.TriggerFileWatcher(trigger_path, trigger_poll_interval_s)
            if trigger_path is not None
            else None
        )
        self._closed = False

    # -- GPIOController -------------------------------------------------------------------

    def set_led(self, led: controller.LED, state: controller.LEDState) -> None:
        """Set one LED's state; setting the state it already has changes nothing."""
        controller.check_led(led, state)
        with self._changed:
            self._check_open()
            if self._led_state[led] is state:
                return
            now = self._clock.monotonic()
            self._led_state[led] = state
            self._led_since[led] = now
            self._led_history[led].append((now, state))
            self._changed.notify_all()

    def get_led(self, led: controller.LED) -> controller.LEDState:
        """Return one LED's current state."""
        controller.check_led(led, controller.LEDState.OFF)
        with self._changed:
            return self._led_state[led]

    def buzz(self, pattern: Sequence[float]) -> None:
        """Start a buzzer pattern (replacing one still playing); never blocks."""
        checked = timing.validate_pattern(pattern)
        with self._changed:
            self._check_open()
            now = self._clock.monotonic()
            self._pattern = checked
            self._pattern_since = now
            self._buzz_history.append((now, checked))
            self._buzz_calls += 1
            self._changed.notify_all()

    def is_button_pressed(self) -> bool:
        """Return the scripted (and remote) button level at the clock's current time."""
        with self._changed:
            now = self._clock.monotonic()
            if self._watcher is not None:
                for kind in self._watcher.poll(now):
                    self._timeline.schedule_press(kind, now, self._timings)
            return self._timeline.level(now)

    def close(self) -> None:
        """Turn every LED and the buzzer off; later output calls raise ``RuntimeError``."""
        with self._changed:
            if self._closed:
                return
            now = self._clock.monotonic()
            for led, state in self._led_state.items():
                if state is not controller.LEDState.OFF:
                    self._led_state[led] = controller.LEDState.OFF
                    self._led_since[led] = now
                    self._led_history[led].append((now, controller.LEDState.OFF))
            self._pattern = ()
            self._closed = True
            self._changed.notify_all()

    def __enter__(self) -> SimulatedGPIOController:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- output inspection ----------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        with self._changed:
            return self._closed

    def led_history(self, led: controller.LED) -> list[tuple[float, controller.LEDState]]:
        """Return every change of ``led`` as ``(monotonic time, new state)``, oldest first."""
        with self._changed:
            return list(self._led_history[led])

    @property
    def buzz_history(self) -> list[tuple[float, tuple[float, ...]]]:
        """Every ``buzz`` call as ``(monotonic time, pattern)``, oldest first."""
        with self._changed:
            return list(self._buzz_history)

    @property
    def buzz_calls(self) -> int:
        """How many times ``buzz`` was called (not bounded by the history limit)."""
        with self._changed:
            return self._buzz_calls

    def led_level(self, led: controller.LED) -> bool:
        """Return whether ``led`` is lit right now (blinking evaluated on the clock)."""
        with self._changed:
            return timing.led_level(
                self._led_state[led], self._led_since[led], self._clock.monotonic()
            )

    def buzzer_level(self) -> bool:
        """Return whether the buzzer sounds right now."""
        with self._changed:
            return timing.buzzer_level(self._pattern, self._pattern_since, self._clock.monotonic())

    def wait_for_led(
        self, led: controller.LED, state: controller.LEDState, timeout_s: float
    ) -> bool:
        """Block (real time) until ``led`` is in ``state``.

        Returns:
            True if the state was reached within ``timeout_s``.
        """
        with self._changed:
            return self._changed.wait_for(lambda: self._led_state[led] is state, timeout_s)

    def wait_for_buzz(self, count: int, timeout_s: float) -> bool:
        """Block (real time) until ``buzz`` has been called at least ``count`` times.

        Returns:
            True if it was within ``timeout_s``.
        """
        with self._changed:
            return self._changed.wait_for(lambda: self._buzz_calls >= count, timeout_s)

    # -- button script --------------------------------------------------------------------

    def press(self) -> None:
        """Press the button now (held until :meth:`release` or a scripted release)."""
        with self._changed:
            self._timeline.add(self._clock.monotonic(), True)

    def release(self) -> None:
        """Release the button now."""
        with self._changed:
            self._timeline.add(self._clock.monotonic(), False)

    def hold(self, seconds: float) -> None:
        """Press now and schedule the release ``seconds`` later on the clock; returns at once."""
        _check_duration("hold seconds", seconds)
        self.script([(0.0, True), (seconds, False)])

    def tap(self, duration_s: float | None = None) -> None:
        """Press now and release after ``duration_s`` (the short-press time by default)."""
        duration = self._timings.short_s if duration_s is None else duration_s
        _check_duration("tap duration_s", duration)
        self.script([(0.0, True), (duration, False)])

    def double_tap(self, gap_s: float = 0.2, duration_s: float | None = None) -> None:
        """Two taps ``gap_s`` apart (release to press), starting now."""
        duration = self._timings.short_s if duration_s is None else duration_s
        _check_duration("double_tap duration_s", duration)
        _check_duration("double_tap gap_s", gap_s)
        second = duration + gap_s
        self.script([(0.0, True), (duration, False), (second, True), (second + duration, False)])

    def script(self, events: Sequence[tuple[float, bool]]) -> None:
        """Schedule button edges at offsets (seconds) from now.

        Args:
            events: ``(offset_s, pressed)`` pairs with non-decreasing, non-negative offsets.

        Raises:
            ValueError: If an offset is negative, not finite or out of order.
        """
        previous = 0.0
        checked: list[tuple[float, bool]] = []
        for index, item in enumerate(events):
            try:
                offset, pressed = item
                offset = float(offset)
            except (TypeError, ValueError):
                raise ValueError(
                    f"button script item {index} is {item!r}; expected (offset_s, pressed)"
                ) from None
            if not math.isfinite(offset) or offset < previous:
                raise ValueError(
                    f"button script item {index} has offset {offset!r}; offsets must be "
                    f"finite and non-decreasing from 0 (previous {previous})"
                )
            previous = offset
            checked.append((offset, bool(pressed)))
        with self._changed:
            now = self._clock.monotonic()
            self._timeline.add_edges([(now + offset, pressed) for offset, pressed in checked])

    def remote_press(
        self, kind: button_script.PressKind | str = button_script.PressKind.SHORT
    ) -> float:
        """Press remotely, queued after presses in progress (as the trigger file does).

        Returns:
            The monotonic time at which the press starts.
        """
        if isinstance(kind, str):
            kind = button_script.PressKind.parse(kind)
        with self._changed:
            return self._timeline.schedule_press(kind, self._clock.monotonic(), self._timings)

    def script_done(self) -> bool:
        """Return True once every scripted edge lies in the past."""
        with self._changed:
            return not self._timeline.pending(self._clock.monotonic())

    @property
    def button_history(self) -> list[tuple[float, bool]]:
        """Every scripted button edge as ``(monotonic time, pressed)``, in the order added."""
        with self._changed:
            return self._timeline.history

    @property
    def watcher(self) -> remote.TriggerFileWatcher | None:
        """The trigger file watcher, if a trigger path was given."""
        return self._watcher

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("SimulatedGPIOController is closed")


def _check_duration(name: str, value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}={value!r} must be finite and >= 0")
