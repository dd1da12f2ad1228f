"""The hardware GPIO backend on the libgpiod v2 Python bindings (``gpiod>=2``).

All lines are requested once, in a single request, at construction. One small timer thread
drives every blinking LED and the buzzer pattern and samples the button for the software
debouncer; it sleeps until the next output change or sample, and is woken early whenever an
output is set. ``gpiod`` is imported only when a controller is built without an injected
module, so importing :mod:`omgrab.gpio` never needs the library nor a chip.
"""

from __future__ import annotations

import datetime
import importlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from omgrab.gpio import controller, debounce, remote, timing
from omgrab.gpio import pins as gpio_pins

logger = logging.getLogger(__name__)


class GPIOUnavailableError(RuntimeError):
    """The GPIO chip or its lines cannot be used (missing chip, busy line, no gpiod)."""


def import_gpiod() -> Any:
    """Import the real ``gpiod`` module (libgpiod v2 bindings).

    Raises:
        GPIOUnavailableError: If it is not installed or too old.
    """
    try:
        module = importlib.import_module("gpiod")
    except ImportError as exc:
        raise GPIOUnavailableError(
            f"the gpiod Python package (libgpiod v2 bindings, gpiod>=2) is not importable: {exc}"
        ) from exc
    if not hasattr(module, "request_lines"):
        raise GPIOUnavailableError(
            "the installed gpiod package is the v1 API; omgrab needs gpiod>=2 (request_lines)"
        )
    return module


class GpiodController:
    """LEDs, buzzer and button on real GPIO lines through libgpiod v2.

    Args:
        pins: Wiring and chip path; :class:`~omgrab.gpio.pins.GPIOPins` defaults if None.
        gpiod_module: The ``gpiod`` module to use; imported lazily if None. Tests pass
            :class:`~omgrab.gpio.gpiod_twin.GpiodTwin`.
        clock: Monotonic clock for blink/buzz timing and debouncing (``time.monotonic``).
        start_thread: Start the timer thread. Without it, call :meth:`tick` yourself (tests
            with a manual clock do).
        button_sample_interval_s: How often the timer thread samples the button.
        on_error: Called with every exception raised in the timer thread (after it has been
            counted and logged).

    Raises:
        GPIOUnavailableError: If the chip is missing or the lines cannot be requested.
    """

    def __init__(
        self,
        pins: gpio_pins.GPIOPins | None = None,
        *,
        gpiod_module: Any = None,
        clock: remote.MonotonicClock | None = None,
        start_thread: bool = True,
        button_sample_interval_s: float = 0.01,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        if not button_sample_interval_s > 0:
            raise ValueError(
                f"button_sample_interval_s must be > 0, got {button_sample_interval_s!r}"
            )
        self._pins = pins if pins is not None else gpio_pins.GPIOPins()
        self._gpiod = gpiod_module if gpiod_module is not None else import_gpiod()
        self._clock = clock if clock is not None else remote.system_clock()
        self._sample_interval_s = button_sample_interval_s
        self._on_error = on_error
        line = self._gpiod.line
        self._active = line.Value.ACTIVE
        self._inactive = line.Value.INACTIVE
        self._led_offsets = self._pins.led_offsets()

        # The lock guards the request and every field below (the thread and callers share them).
        self._lock = threading.Lock()
        now = self._clock.monotonic()
        self._led_state = {led: controller.LEDState.OFF for led in controller.LED}
        self._led_since = {led: now for led in controller.LED}
        self._written: dict[int, bool] = {}
        self._pattern: tuple[float, ...] = ()
        self._pattern_since = now
        self._debouncer = debounce.Debouncer(self._pins.software_debounce_s)
        self._closed = False
        self._error_lock = threading.Lock()  # guards the two error fields below
        self._error_count = 0
        self._last_error: BaseException | None = None
        self._request = self._request_lines()
        for offset in [*self._led_offsets.values(), self._pins.buzzer]:
            self._written[offset] = False

        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if start_thread:
            self._thread = threading.Thread(target=self._run, name="omgrab-gpio-timer", daemon=True)
            self._thread.start()

    def _request_lines(self) -> Any:
        gpiod = self._gpiod
        line = gpiod.line
        p = self._pins
        config: dict[Any, Any] = {}
        led_settings = gpiod.LineSettings(
            direction=line.Direction.OUTPUT,
            output_value=line.Value.INACTIVE,
            active_low=p.leds_active_low,
        )
        config[tuple(self._led_offsets.values())] = led_settings
        config[p.buzzer] = gpiod.LineSettings(
            direction=line.Direction.OUTPUT,
            output_value=line.Value.INACTIVE,
            active_low=p.buzzer_active_low,
        )
        # Without the internal pull-up the board must have its own resistor.
        bias = line.Bias.PULL_UP if p.button_pull_up else line.Bias.DISABLED
        config[p.button] = gpiod.LineSettings(
            direction=line.Direction.INPUT,
            bias=bias,
            active_low=p.button_active_low,
            debounce_period=datetime.timedelta(seconds=p.debounce_s),
        )
        try:
            return gpiod.request_lines(p.chip_path, consumer=p.consumer, config=config)
        except (OSError, ValueError) as exc:
            offsets = sorted([*self._led_offsets.values(), p.buzzer, p.button])
            raise GPIOUnavailableError(
                f"cannot request GPIO lines {offsets} on {p.chip_path}: {exc}"
            ) from exc

    # -- GPIOController -------------------------------------------------------------------

    def set_led(self, led: controller.LED, state: controller.LEDState) -> None:
        """Set one LED's state; the line is written before this returns.

        Setting the state an LED already has changes nothing (a blink keeps its phase).

        Raises:
            RuntimeError: If the controller is closed.
            OSError: If the line cannot be written.
        """
        controller.check_led(led, state)
        with self._lock:
            self._check_open()
            if self._led_state[led] is state:
                return
            now = self._clock.monotonic()
            self._led_state[led] = state
            self._led_since[led] = now
            self._apply(now)
        self._wake.set()

    def get_led(self, led: controller.LED) -> controller.LEDState:
        """Return one LED's current state."""
        with self._lock:
            return self._led_state[led]

    def buzz(self, pattern: Sequence[float]) -> None:
        """Start a buzzer pattern (alternating on/off seconds), replacing any still playing.

        Raises:
            ValueError: If a duration is negative or not finite.
            RuntimeError: If the controller is closed.
        """
        checked = timing.validate_pattern(pattern)
        with self._lock:
            self._check_open()
            now = self._clock.monotonic()
            self._pattern = checked
            self._pattern_since = now
            self._apply(now)
        self._wake.set()

    def is_button_pressed(self) -> bool:
        """Sample the button now and return the debounced level (True while held down).

        Raises:
            RuntimeError: If the controller is closed.
            OSError: If the line cannot be read.
        """
        with self._lock:
            self._check_open()
            self._sample_button(self._clock.monotonic())
            return self._debouncer.level

    def close(self) -> None:
        """Stop the timer thread, turn every output off and release the lines (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        with self._lock:
            try:
                for offset in self._written:
                    self._request.set_value(offset, self._inactive)
            except Exception as exc:
                self._record_error(exc, "turning outputs off at close")
            try:
                self._request.release()
            except Exception as exc:
                self._record_error(exc, "releasing GPIO lines")

    def __enter__(self) -> GpiodController:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- timer ----------------------------------------------------------------------------

    @property
    def pins(self) -> gpio_pins.GPIOPins:
        """The wiring in use."""
        return self._pins

    @property
    def error_count(self) -> int:
        """How many errors the timer thread (and close) met."""
        with self._error_lock:
            return self._error_count

    @property
    def last_error(self) -> BaseException | None:
        """The latest error met by the timer thread, if any."""
        with self._error_lock:
            return self._last_error

    @property
    def thread_alive(self) -> bool:
        """True while the timer thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def tick(self) -> float | None:
        """Bring every output up to date and sample the button, as the timer thread does.

        Returns:
            The monotonic time of the next scheduled output change, or None if none is due.

        Raises:
            OSError: If a line cannot be read or written.
        """
        with self._lock:
            if self._closed:
                return None
            now = self._clock.monotonic()
            self._apply(now)
            self._sample_button(now)
            return self._next_change(now)

    def _run(self) -> None:
        backoff_s = 0.0
        while not self._stop.is_set():
            try:
                deadline = self.tick()
                backoff_s = 0.0
            except Exception as exc:
                self._record_error(exc, "driving GPIO lines")
                deadline = None
                backoff_s = min(max(backoff_s * 2, 0.05), 1.0)
            timeout = max(self._sample_interval_s, backoff_s)
            if deadline is not None:
                timeout = min(timeout, max(0.0, deadline - self._clock.monotonic()))
            self._wake.wait(timeout)
            self._wake.clear()

    def _apply(self, now: float) -> None:
        desired: dict[int, bool] = {}
        for led, offset in self._led_offsets.items():
            desired[offset] = timing.led_level(self._led_state[led], self._led_since[led], now)
        desired[self._pins.buzzer] = timing.buzzer_level(self._pattern, self._pattern_since, now)
        for offset, level in desired.items():
            if self._written.get(offset) != level:
                self._request.set_value(offset, self._active if level else self._inactive)
                self._written[offset] = level

    def _next_change(self, now: float) -> float | None:
        times = [
            timing.next_led_change(self._led_state[led], self._led_since[led], now)
            for led in self._led_offsets
        ]
        times.append(timing.next_buzzer_change(self._pattern, self._pattern_since, now))
        pending = [t for t in times if t is not None]
        return min(pending) if pending else None

    def _sample_button(self, now: float) -> None:
        raw = self._request.get_value(self._pins.button) == self._active
        self._debouncer.update(raw, now)

    def _record_error(self, exc: BaseException, doing: str) -> None:
        with self._error_lock:
            self._error_count += 1
            self._last_error = exc
            count = self._error_count
        if count <= 3 or count % 100 == 0:
            logger.error("GPIO error while %s (error #%d): %s", doing, count, exc)
        if self._on_error is not None:
            try:
                self._on_error(exc)
            except Exception:
                logger.exception("GPIO on_error callback failed")

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("GpiodController is closed")
