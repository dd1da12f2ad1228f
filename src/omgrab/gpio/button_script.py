"""A button level scripted over time, and the shapes of short, long and double presses."""

from __future__ import annotations

import bisect
import dataclasses
import enum
import math
from collections.abc import Sequence


class PressKind(enum.Enum):
    """A kind of button press that can be requested remotely or scripted."""

    SHORT = "short"
    LONG = "long"
    DOUBLE = "double"

    @classmethod
    def parse(cls, text: str) -> PressKind:
        """Parse a press request such as the content of a trigger file.

        Empty text, ``short``, ``press`` and ``tap`` mean a short press; ``long`` and ``hold``
        a long press; ``double`` a double press (case and surrounding whitespace ignored).

        Raises:
            ValueError: If ``text`` names no press kind.
        """
        word = text.strip().lower()
        if word in ("", "short", "press", "tap"):
            return cls.SHORT
        if word in ("long", "hold"):
            return cls.LONG
        if word == "double":
            return cls.DOUBLE
        raise ValueError(
            f"unknown button press request {text.strip()[:40]!r}; "
            "expected empty, 'short', 'long' or 'double'"
        )


@dataclasses.dataclass(frozen=True)
class PressTimings:
    """Durations used when a press is synthesised.

    Attributes:
        short_s: How long a short press (and each tap of a double press) holds the button.
        long_s: How long a long press holds the button; above the 5 s WiFi-setup threshold.
        double_gap_s: Release time between the two taps of a double press.
        queue_gap_s: Release time kept between queued presses so that two queued short
            presses are not mistaken for a double press.
    """

    short_s: float = 0.15
    long_s: float = 6.0
    double_gap_s: float = 0.2
    queue_gap_s: float = 1.0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"PressTimings.{field.name}={value!r} must be finite and > 0")

    def edges(self, kind: PressKind, start: float) -> list[tuple[float, bool]]:
        """Return the ``(time, pressed)`` edges of a press of ``kind`` starting at ``start``."""
        if kind is PressKind.SHORT:
            return [(start, True), (start + self.short_s, False)]
        if kind is PressKind.LONG:
            return [(start, True), (start + self.long_s, False)]
        second = start + self.short_s + self.double_gap_s
        return [
            (start, True),
            (start + self.short_s, False),
            (second, True),
            (second + self.short_s, False),
        ]


class ButtonTimeline:
    """The level of a button as a function of time, given as sorted ``(time, pressed)`` edges.

    Not thread-safe by itself: the owner serialises access with its lock. Edges already in the
    past are pruned down to the one that sets the current level, so memory stays bounded; the
    full record is kept in :attr:`history` (bounded by ``history_limit``).
    """

    def __init__(self, history_limit: int = 10_000) -> None:
        self._times: list[float] = []
        self._levels: list[bool] = []
        self._history: list[tuple[float, bool]] = []
        self._history_limit = history_limit

    def add(self, when: float, pressed: bool) -> None:
        """Schedule the level ``pressed`` from time ``when`` on (until a later edge)."""
        index = bisect.bisect_right(self._times, when)
        self._times.insert(index, when)
        self._levels.insert(index, pressed)
        self._history.append((when, pressed))
        if len(self._history) > self._history_limit:
            del self._history[: len(self._history) - self._history_limit]

    def add_edges(self, edges: Sequence[tuple[float, bool]]) -> None:
        """Schedule several edges."""
        for when, pressed in edges:
            self.add(when, pressed)

    def level(self, now: float) -> bool:
        """Return the level at ``now`` (released before the first edge)."""
        index = bisect.bisect_right(self._times, now)
        if index == 0:
            return False
        if index > 1:
            # Edges before the one in force can never matter again.
            del self._times[: index - 1]
            del self._levels[: index - 1]
        return self._levels[0]

    def last_edge_time(self) -> float | None:
        """Return the time of the latest scheduled edge, or None if there is none."""
        return self._times[-1] if self._times else None

    def pending(self, now: float) -> bool:
        """Return True while edges are scheduled after ``now``."""
        return bool(self._times) and self._times[-1] > now

    @property
    def history(self) -> list[tuple[float, bool]]:
        """Every edge added, in the order added, as ``(time, pressed)``."""
        return list(self._history)

    def schedule_press(self, kind: PressKind, now: float, timings: PressTimings) -> float:
        """Queue a press of ``kind`` at ``now`` or after the presses already scheduled.

        Returns:
            The time at which the press starts.
        """
        start = now
        last = self.last_edge_time()
        if last is not None and (last > now or self.level(now)):
            start = max(now, last + timings.queue_gap_s)
        self.add_edges(timings.edges(kind, start))
        return start
