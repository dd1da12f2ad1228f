"""Fast ISO-8601 UTC timestamps for log lines, derived from the monotonic clock."""

from __future__ import annotations

import datetime

from omgrab import clock as clock_mod


class IsoStamper:
    """Formats "now" as ``YYYY-MM-DDTHH:MM:SS.ffffff+00:00`` in well under a microsecond.

    Like ``omgrab.clock.DeviceClock`` it reads the wall clock once (at construction) and
    derives every later time from the monotonic clock, so a wall-clock step never makes log
    timestamps jump or go backwards. The date-and-seconds prefix is cached per second.

    Args:
        source: Raw time source (a ``ManualTimeSource`` in tests).
    """

    def __init__(self, source: clock_mod.TimeSource) -> None:
        self._source = source
        self._monotonic = source.monotonic  # bound once: this runs for every log line
        self._anchor_mono = source.monotonic()
        self._anchor_wall = source.wall()
        self._cache: tuple[int, str] = (-1, "")
        self._bcache: tuple[int, bytes] = (-1, b"")

    def now_posix(self) -> float:
        """Current POSIX time (monotonic since the anchor)."""
        return self._anchor_wall + (self._source.monotonic() - self._anchor_mono)

    def now_iso(self) -> str:
        """Current time as ISO-8601 UTC with microseconds."""
        return self.format(self._anchor_wall + (self._monotonic() - self._anchor_mono))

    def json_prefix(self) -> bytes:
        """``{"timestamp":"<now ISO>",`` as bytes - the start of a JSON object line."""
        posix = self._anchor_wall + (self._monotonic() - self._anchor_mono)
        sec = int(posix)
        usec = int((posix - sec) * 1e6 + 0.5)
        if usec >= 1_000_000:
            sec, usec = sec + 1, usec - 1_000_000
        cached_sec, prefix = self._bcache
        if sec != cached_sec:
            prefix = b'{"timestamp":"' + self._second(sec).encode()
            self._bcache = (sec, prefix)
        return b'%s.%06d+00:00",' % (prefix, usec)

    @staticmethod
    def _second(sec: int) -> str:
        return datetime.datetime.fromtimestamp(sec, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")

    def format(self, posix: float) -> str:
        """Format a POSIX time (>= 0) as ISO-8601 UTC with microseconds."""
        sec = int(posix)
        usec = int((posix - sec) * 1e6 + 0.5)
        if usec >= 1_000_000:
            sec, usec = sec + 1, usec - 1_000_000
        cached_sec, prefix = self._cache
        if sec != cached_sec:
            prefix = self._second(sec)
            self._cache = (sec, prefix)
        return "%s.%06d+00:00" % (prefix, usec)  # noqa: UP031 - fastest here
