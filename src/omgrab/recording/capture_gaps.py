"""Frames lost before the writer: gaps in a stream's capture timestamps or sequence numbers.

The writer counts what it drops itself (ring full, invalid, out of order); it cannot see frames
that never reached it: a camera whose reader fell behind, a device that skipped exposures, a
cable pulled for a second. One :class:`GapTracker` per stream watches the items a capture thread
hands over and records a gap when

* the capture timestamps of two consecutive items are more than ``GAP_THRESHOLD`` (1.5) nominal
  intervals apart; the frames missed are ``round(dt / interval) - 1``; or
* the source numbers its items (``last_sequence_number``, e.g. an OAK-D's or the simulated
  device's frame counter) and the number skips; the frames missed are then the numbers skipped,
  which is exact even when timestamps jitter. A number that goes backwards (the device was
  re-opened) restarts the numbering and only the timestamp rule applies to that pair.

A gap's ``pts_ms`` is the pts of the last item before it (ms since the recording origin) and its
``duration_ms`` the time between the items on either side. The first ``MAX_LISTED_GAPS`` gaps are
kept for the manifest; counts, total and longest cover every gap. Not thread-safe: each tracker
is fed by one capture thread and read under the session's lock.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Protocol, runtime_checkable

GAP_THRESHOLD = 1.5
MAX_LISTED_GAPS = 1000

CAUSE_TIMESTAMP = "timestamp"
CAUSE_SEQUENCE = "sequence"


@runtime_checkable
class SequencedSource(Protocol):
    """A camera or sensor that numbers its items (optional; trackers use it when present)."""

    @property
    def last_sequence_number(self) -> int | None:
        """Device sequence number of the item most recently returned, None if unknown."""
        ...


def sequence_number(source: object) -> int | None:
    """Return ``source.last_sequence_number`` when the source numbers its items, else None."""
    if isinstance(source, SequencedSource):
        value = source.last_sequence_number
        return int(value) if value is not None else None
    return None


@dataclasses.dataclass(frozen=True)
class Gap:
    """Items missing between two consecutive captured items of one stream.

    Attributes:
        pts_ms: Pts of the last item before the gap (ms since the recording origin).
        duration_ms: Time between the item before and the item after the gap.
        frames_missed: Items that should have arrived in between.
        cause: ``'timestamp'`` (interval > 1.5 periods) or ``'sequence'`` (numbers skipped);
            the session may relabel it (e.g. ``'device_disconnected'``).
    """

    pts_ms: int
    duration_ms: int
    frames_missed: int
    cause: str

    def to_dict(self) -> dict[str, Any]:
        """Return the stats/manifest form."""
        return dataclasses.asdict(self)


class GapTracker:
    """Counts the items one stream lost before reaching the writer.

    Args:
        period_s: Nominal time between items (1 / fps); None when unknown, so that only
            sequence numbers are checked.
        origin: Recording origin; gap positions are reported as pts relative to it.

    Raises:
        ValueError: For a period that is not > 0.
    """

    def __init__(self, period_s: float | None, origin: datetime.datetime) -> None:
        if period_s is not None and not period_s > 0:
            raise ValueError(f"a gap tracker needs a period > 0 s, got {period_s!r}")
        self._period_s = period_s
        self._origin = origin
        self._last_time: datetime.datetime | None = None
        self._last_seq: int | None = None
        self._gaps: list[Gap] = []
        self.items = 0
        self.frames_missed = 0
        self.gap_count = 0
        self.total_ms = 0
        self.longest_ms = 0

    @property
    def period_s(self) -> float | None:
        """Nominal item period in seconds, or None."""
        return self._period_s

    @property
    def last_time(self) -> datetime.datetime | None:
        """Capture time of the last item observed, or None before the first."""
        return self._last_time

    @property
    def gaps(self) -> list[Gap]:
        """The listed gaps (the first ``MAX_LISTED_GAPS``), oldest first."""
        return list(self._gaps)

    def observe(self, timestamp: datetime.datetime, sequence: int | None = None) -> Gap | None:
        """Account for one captured item; return the gap before it, if there was one."""
        previous_time, previous_seq = self._last_time, self._last_seq
        self._last_time, self._last_seq = timestamp, sequence
        self.items += 1
        if previous_time is None:
            return None
        dt_s = (timestamp - previous_time).total_seconds()
        missed = 0
        cause = CAUSE_TIMESTAMP
        if sequence is not None and previous_seq is not None and sequence > previous_seq:
            missed = sequence - previous_seq - 1
            cause = CAUSE_SEQUENCE
        elif self._period_s is not None and dt_s > GAP_THRESHOLD * self._period_s:
            missed = max(1, round(dt_s / self._period_s) - 1)
        if missed <= 0:
            return None
        gap = Gap(
            pts_ms=_pts_ms(previous_time, self._origin),
            duration_ms=max(0, round(dt_s * 1000)),
            frames_missed=missed,
            cause=cause,
        )
        self.gap_count += 1
        self.frames_missed += missed
        self.total_ms += gap.duration_ms
        self.longest_ms = max(self.longest_ms, gap.duration_ms)
        if len(self._gaps) < MAX_LISTED_GAPS:
            self._gaps.append(gap)
        return gap

    def summary(self, relabel: Any = None) -> dict[str, Any]:
        """Return the stats/manifest form: counts, total and longest, and the listed gaps.

        Args:
            relabel: Optional ``Gap -> str | None`` giving a better cause for a gap (e.g. a
                device disconnect that covered it); None keeps the tracker's cause.
        """
        listed = []
        for gap in self._gaps:
            cause = relabel(gap) if relabel is not None else None
            listed.append(dataclasses.replace(gap, cause=cause or gap.cause).to_dict())
        return {
            "items_captured": self.items,
            "frames_missed": self.frames_missed,
            "gaps": self.gap_count,
            "gap_total_ms": self.total_ms,
            "gap_longest_ms": self.longest_ms,
            "nominal_period_ms": (
                round(self._period_s * 1000, 3) if self._period_s is not None else None
            ),
            "gap_list": listed,
            "gap_list_truncated": self.gap_count > len(listed),
        }


def _pts_ms(timestamp: datetime.datetime, origin: datetime.datetime) -> int:
    return round((timestamp - origin).total_seconds() * 1000)
