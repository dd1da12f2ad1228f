"""Pressing the button remotely: a trigger file, a callable, and a wrapper for any controller.

Touch the trigger file for one short press; write ``long`` or ``double`` into it for a long or
double press. The watcher consumes (deletes) the file once its size and modification time
were the same on two consecutive polls, so a file still being written is not read half-way;
writing it atomically (write a temporary file, then rename) is best. :class:`RemoteButton`
wraps any :class:`~omgrab.gpio.controller.GPIOController` and ORs the remote presses into
``is_button_pressed``, so it works with the real gpiod backend as well as the simulated one.
"""

from __future__ import annotations

import logging
import os
import pathlib
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from omgrab.gpio import button_script
from omgrab.gpio import controller as gpio_controller

logger = logging.getLogger(__name__)

_MAX_TRIGGER_BYTES = 256


class MonotonicClock(Protocol):
    """Anything with a ``monotonic()`` method (``omgrab.clock`` time sources and clocks)."""

    def monotonic(self) -> float:
        """Return monotonic seconds."""
        ...


class _SystemMonotonic:
    def monotonic(self) -> float:
        import time

        return time.monotonic()


def system_clock() -> MonotonicClock:
    """Return a clock reading ``time.monotonic()``."""
    return _SystemMonotonic()


class TriggerFileWatcher:
    """Turns a trigger file into press requests.

    Not thread-safe by itself; the owner calls :meth:`poll` under its lock.

    Args:
        path: The trigger file. Its directory need not exist yet.
        poll_interval_s: Minimum time between two looks at the file system.
    """

    def __init__(self, path: str | os.PathLike[str], poll_interval_s: float = 0.1) -> None:
        if poll_interval_s < 0:
            raise ValueError(f"poll_interval_s must be >= 0, got {poll_interval_s!r}")
        self._path = pathlib.Path(path)
        self._poll_interval_s = poll_interval_s
        self._next_poll: float | None = None
        self._pending_signature: tuple[int, int, int] | None = None
        self._stuck_signature: tuple[int, int, int] | None = None
        self.errors = 0
        self.last_error: str | None = None

    @property
    def path(self) -> pathlib.Path:
        """The trigger file."""
        return self._path

    def poll(self, now: float) -> list[button_script.PressKind]:
        """Look at the trigger file (at most once per poll interval) and consume it if settled.

        Args:
            now: Monotonic time of the call.

        Returns:
            The presses requested (empty if none).
        """
        if self._next_poll is not None and now < self._next_poll:
            return []
        self._next_poll = now + self._poll_interval_s
        try:
            stat = self._path.stat()
        except FileNotFoundError:
            self._pending_signature = None
            self._stuck_signature = None
            return []
        except OSError as exc:
            self._record_error(f"cannot stat trigger file {self._path}: {exc}")
            return []
        signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if signature == self._stuck_signature:
            return []
        if signature != self._pending_signature:
            # Seen for the first time (or still changing): consume on the next poll.
            self._pending_signature = signature
            return []
        self._pending_signature = None
        return self._consume(signature)

    def _consume(self, signature: tuple[int, int, int]) -> list[button_script.PressKind]:
        try:
            with self._path.open("rb") as handle:
                raw = handle.read(_MAX_TRIGGER_BYTES)
        except FileNotFoundError:
            return []
        except OSError as exc:
            self._record_error(f"cannot read trigger file {self._path}: {exc}")
            self._stuck_signature = signature
            return []
        try:
            self._path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            # Never fire again for the same file; a new write changes its signature.
            self._stuck_signature = signature
            self._record_error(f"cannot delete trigger file {self._path}: {exc}")
        text = raw.decode("utf-8", errors="replace")
        try:
            kind = button_script.PressKind.parse(text)
        except ValueError as exc:
            self._record_error(f"trigger file {self._path}: {exc}")
            return []
        logger.info("remote %s button press from %s", kind.value, self._path)
        return [kind]

    def _record_error(self, message: str) -> None:
        self.errors += 1
        self.last_error = message
        logger.error(message)


class RemoteButton:
    """Wraps a GPIO controller so that the button can also be pressed remotely.

    ``is_button_pressed()`` returns the wrapped controller's level OR the level of the remote
    presses; everything else is delegated. Remote presses come from :meth:`press` (a callable
    for other code, e.g. a web dashboard) and from ``trigger_path`` (checked from
    ``is_button_pressed``, which the button monitor polls every few tens of milliseconds).

    Args:
        controller: The real or simulated controller to wrap.
        trigger_path: Optional trigger file.
        clock: Monotonic clock; ``time.monotonic`` by default.
        timings: Durations of the synthesised presses.
        poll_interval_s: Minimum time between two looks at the trigger file.
    """

    def __init__(
        self,
        controller: gpio_controller.GPIOController,
        trigger_path: str | os.PathLike[str] | None = None,
        *,
        clock: MonotonicClock | None = None,
        timings: button_script.PressTimings | None = None,
        poll_interval_s: float = 0.1,
    ) -> None:
        self._controller = controller
        self._clock = clock if clock is not None else system_clock()
        self._timings = timings if timings is not None else button_script.PressTimings()
        self._lock = threading.Lock()  # guards the timeline and the watcher
        self._timeline = button_script.ButtonTimeline()
        self._watcher = (
            TriggerFileWatcher(trigger_path, poll_interval_s) if trigger_path is not None else None
        )

    @property
    def controller(self) -> gpio_controller.GPIOController:
        """The wrapped controller."""
        return self._controller

    @property
    def watcher(self) -> TriggerFileWatcher | None:
        """The trigger file watcher, if a trigger path was given."""
        return self._watcher

    def press(self, kind: button_script.PressKind | str = button_script.PressKind.SHORT) -> float:
        """Press the button remotely (queued after presses already in progress).

        Args:
            kind: A :class:`PressKind` or its name (``"short"``, ``"long"``, ``"double"``).

        Returns:
            The monotonic time at which the press starts.
        """
        if isinstance(kind, str):
            kind = button_script.PressKind.parse(kind)
        with self._lock:
            return self._timeline.schedule_press(kind, self._clock.monotonic(), self._timings)

    def remote_level(self) -> bool:
        """Return whether a remote press holds the button down right now."""
        with self._lock:
            now = self._clock.monotonic()
            if self._watcher is not None:
                for kind in self._watcher.poll(now):
                    self._timeline.schedule_press(kind, now, self._timings)
            return self._timeline.level(now)

    def is_button_pressed(self) -> bool:
        """Return the wrapped controller's button level OR the remote press level."""
        physical = self._controller.is_button_pressed()
        remote = self.remote_level()
        return physical or remote

    def set_led(self, led: gpio_controller.LED, state: gpio_controller.LEDState) -> None:
        """Delegate to the wrapped controller."""
        self._controller.set_led(led, state)

    def get_led(self, led: gpio_controller.LED) -> gpio_controller.LEDState:
        """Delegate to the wrapped controller."""
        return self._controller.get_led(led)

    def buzz(self, pattern: Sequence[float]) -> None:
        """Delegate to the wrapped controller."""
        self._controller.buzz(pattern)

    def close(self) -> None:
        """Close the wrapped controller."""
        self._controller.close()

    def __enter__(self) -> RemoteButton:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        # Extra helpers of the wrapped controller (e.g. the simulated one's histories).
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._controller, name)
