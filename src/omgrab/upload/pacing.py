"""Bandwidth limit for uploads: a pacer that spaces sends so the average stays under a rate.

Before each send of ``n`` bytes, :meth:`Pacer.take` waits until the previous sends have "drained"
at ``rate`` bytes/s, then books ``n / rate`` seconds for this one. Over any run of sends the
average rate is at most ``rate`` (plus one send's worth of burst). The clock and the wait are
injectable so tests run on a fake clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Pacer:
    """Spaces sends so that, on average, at most ``rate`` bytes/s go out."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], object] | None = None,
    ) -> None:
        """Create the pacer.

        Args:
            rate: Bytes per second (> 0).
            clock: Monotonic clock in seconds.
            wait: Sleeps for the given seconds (may return early, e.g. ``Event.wait``).
        """
        if rate <= 0:
            raise ValueError(f"rate must be > 0 bytes/s, got {rate!r}")
        self._rate = float(rate)
        self._clock = clock
        self._wait = wait if wait is not None else threading.Event().wait
        self._next = clock()
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        """The limit in bytes/s."""
        return self._rate

    def take(self, nbytes: int) -> float:
        """Wait until ``nbytes`` may be sent; return the seconds waited (booked)."""
        with self._lock:
            now = self._clock()
            start = max(self._next, now)
            self._next = start + nbytes / self._rate
            delay = start - now
        if delay > 0:
            self._wait(delay)
        return delay
