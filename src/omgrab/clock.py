"""One clock for every stream: monotonic time mapped to wall time once per anchor.

Capture timestamps are timezone-aware UTC ``datetime`` objects, as in the published SDK, but
they are *derived from the monotonic clock*: the wall-clock time is read exactly once when the
clock is anchored (per recording), and every later timestamp is ``anchor_wall + (mono -
anchor_mono)``. A wall-clock step (NTP sync on a board without an RTC) therefore never makes
timestamps go backwards or jump inside a recording.
"""

from __future__ import annotations

import datetime
import threading
import time
from typing import Protocol


class TimeSource(Protocol):
    """Where raw time comes from; swapped for a manual source in tests."""

    def monotonic(self) -> float:
        """Return seconds from an arbitrary origin that never goes backwards."""
        ...

    def wall(self) -> float:
        """Return POSIX wall-clock seconds (may step)."""
        ...


class SystemTimeSource:
    """The operating system's monotonic and wall clocks."""

    def monotonic(self) -> float:
        """Return ``time.monotonic()``."""
        return time.monotonic()

    def wall(self) -> float:
        """Return ``time.time()``."""
        return time.time()


class SteppableSystemTimeSource(SystemTimeSource):
    """The system clocks, with a wall-clock offset a fault can step (``omgrab run --faults``).

    The clock seam for wall-clock steps in a running application: stepping the real clock of
    a shared machine is not an option, and libfaketime breaks ``time.sleep`` on Python 3.11
    (``clock_nanosleep`` on the monotonic clock fails with ``EINVAL`` under it). Every part of
    omgrab reads wall time through its :class:`DeviceClock`, so stepping this source is what
    an NTP step is to them; the monotonic clock is never touched.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0

    @property
    def offset_s(self) -> float:
        """The sum of every step so far."""
        with self._lock:
            return self._offset

    def wall(self) -> float:
        """Return ``time.time()`` plus the steps."""
        with self._lock:
            return time.time() + self._offset

    def step_wall(self, seconds: float) -> None:
        """Step only the wall clock by ``seconds`` (either sign), as NTP does."""
        with self._lock:
            self._offset += seconds


class ManualTimeSource:
    """A time source advanced by hand, for deterministic tests.

    ``step_wall`` moves only the wall clock, like an NTP correction does.
    """

    def __init__(self, monotonic: float = 1000.0, wall: float = 1_700_000_000.0) -> None:
        self._lock = threading.Lock()
        self._mono = monotonic
        self._wall = wall

    def monotonic(self) -> float:
        """Return the manual monotonic time."""
        with self._lock:
            return self._mono

    def wall(self) -> float:
        """Return the manual wall time."""
        with self._lock:
            return self._wall

    def advance(self, seconds: float) -> None:
        """Advance both clocks by ``seconds`` (must not be negative)."""
        if seconds < 0:
            raise ValueError(f"cannot advance time by a negative amount: {seconds}")
        with self._lock:
            self._mono += seconds
            self._wall += seconds

    def step_wall(self, seconds: float) -> None:
        """Step only the wall clock by ``seconds`` (either sign), as NTP does."""
        with self._lock:
            self._wall += seconds


class DeviceClock:
    """Monotonic clock anchored to wall time, producing tz-aware UTC timestamps.

    Args:
        source: Raw time source; the operating system's by default.
    """

    def __init__(self, source: TimeSource | None = None) -> None:
        self._source: TimeSource = source if source is not None else SystemTimeSource()
        self._lock = threading.Lock()
        self._anchor_mono = 0.0
        self._anchor_wall = 0.0
        self.anchor()

    @property
    def source(self) -> TimeSource:
        """The raw time source."""
        return self._source

    def anchor(self) -> datetime.datetime:
        """Read the wall clock once and map the monotonic clock onto it from now on.

        Called at the start of every recording so that its wall-clock start is current.

        Returns:
            The wall-clock time of the anchor.
        """
        with self._lock:
            self._anchor_mono = self._source.monotonic()
            self._anchor_wall = self._source.wall()
            return _to_datetime(self._anchor_wall)

    def monotonic(self) -> float:
        """Return the raw monotonic time in seconds."""
        return self._source.monotonic()

    def now(self) -> datetime.datetime:
        """Return the current time as a tz-aware UTC datetime derived from the monotonic clock."""
        mono = self._source.monotonic()
        with self._lock:
            return _to_datetime(self._anchor_wall + (mono - self._anchor_mono))

    def wall_step_s(self) -> float:
        """How far the wall clock moved from this clock's time line since the last anchor.

        0 while nobody stepped the wall clock; after an NTP step of ``x`` seconds, ``x``
        (timestamps keep following the monotonic clock until the next :meth:`anchor`).
        """
        mono = self._source.monotonic()
        wall = self._source.wall()
        with self._lock:
            return wall - (self._anchor_wall + (mono - self._anchor_mono))

    def to_datetime(self, monotonic_s: float) -> datetime.datetime:
        """Map a monotonic reading taken with this clock's source to a UTC datetime."""
        with self._lock:
            return _to_datetime(self._anchor_wall + (monotonic_s - self._anchor_mono))

    def sleep(self, seconds: float, interrupt: threading.Event | None = None) -> None:
        """Let ``seconds`` pass on this clock (pacing, simulated delays).

        A :class:`ManualTimeSource` is advanced at once (tests run instantly); otherwise the
        call sleeps in real time, or waits on ``interrupt`` so that setting it ends the sleep
        early.
        """
        source = self._source
        if isinstance(source, ManualTimeSource):
            source.advance(seconds)
        elif interrupt is not None:
            interrupt.wait(seconds)
        else:
            time.sleep(seconds)


def _to_datetime(posix_s: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(posix_s, tz=datetime.UTC)


_default_clock = DeviceClock()


def default_clock() -> DeviceClock:
    """Return the process-wide device clock shared by all streams."""
    return _default_clock


def now() -> datetime.datetime:
    """Return the current timestamp from the process-wide device clock."""
    return _default_clock.now()
