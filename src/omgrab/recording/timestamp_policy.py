"""Turning one stream's capture timestamps into chunk pts: the jump and sub-millisecond policy.

Chunk packets carry ``pts`` in whole milliseconds since the recording origin (the Matroska time
base). This module decides the pts of each item of one stream, from its exact capture time in
microseconds since the origin:

* **Order.** An item not strictly after the previous accepted item of its stream (exact time,
  microseconds) is out of order: rejected (the caller counts it), unless it lies more than
  ``max_backward_step_s`` before it — see clock steps below.
* **Sub-millisecond spacing (nudging).** Two distinct items less than 1 ms apart would round to
  the same pts; the later one is *nudged* to ``previous pts + 1`` instead of being dropped, as
  long as the nudged pts stays within ``max_nudge_ms`` of its exact time (so a burst cannot drift
  a stream away from its clock). Only a stream sustaining more than 1000 items per second for
  longer than that can still lose items, counted as out of order. Nudged items are counted.
* **Clock steps (forward jump or backward step).** A pts more than ``max_forward_jump_s`` after
  the previous one (a wall clock stepped forward, a device that stalled for minutes), or an item
  more than ``max_backward_step_s`` before the previous one (a clock stepped back), is handled
  as a *clock step*, policy "rebase": the stream's time line is shifted so the item lands one
  previous item interval after the previous item, and every later item keeps that shift. The
  file therefore never holds years of empty time nor loses minutes of data; the step is logged
  as a warning with its size and counted (``clock_steps``, ``clock_step_ms`` the total removed;
  a backward step adds a negative amount).

Bounds: constant state per stream. Lifecycle: one policy per ``StreamQueue``, called under its
put lock. Error policy: never raises for a timestamp; rejected items are reported by the return
value for the caller to count.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

#: Default bound on a forward jump between two items of a stream before it is a clock step.
DEFAULT_MAX_FORWARD_JUMP_S = 5.0
#: Default bound on a backward step before it is a clock step (smaller ones are out of order).
DEFAULT_MAX_BACKWARD_STEP_S = 2.0
#: Default bound on how far nudging may move an item's pts after its exact time.
DEFAULT_MAX_NUDGE_MS = 5

_US_PER_MS = 1000


def round_ms(micros: int) -> int:
    """Microseconds to whole milliseconds, nearest, halves up."""
    return (micros + _US_PER_MS // 2) // _US_PER_MS


class TimestampPolicy:
    """The pts of one stream's items (see the module docstring).

    Args:
        name: Stream name, for log lines.
        max_forward_jump_s: A pts further than this after the previous one is a clock step.
        max_backward_step_s: An item earlier than this before the previous one is a clock step.
        max_nudge_ms: Furthest a pts may be nudged after its exact time.

    Raises:
        ValueError: a bound is not positive.
    """

    def __init__(
        self,
        name: str,
        *,
        max_forward_jump_s: float = DEFAULT_MAX_FORWARD_JUMP_S,
        max_backward_step_s: float = DEFAULT_MAX_BACKWARD_STEP_S,
        max_nudge_ms: int = DEFAULT_MAX_NUDGE_MS,
    ) -> None:
        for label, value in (
            ("max_forward_jump_s", max_forward_jump_s),
            ("max_backward_step_s", max_backward_step_s),
            ("max_nudge_ms", max_nudge_ms),
        ):
            if not value > 0:
                raise ValueError(f"{label} must be > 0, got {value!r}")
        self.name = name
        self._max_jump_ms = round(max_forward_jump_s * 1000)
        self._max_back_us = round(max_backward_step_s * 1_000_000)
        self._max_nudge_us = max_nudge_ms * _US_PER_MS
        self._offset_us = 0
        self._last_exact: int | None = None
        self._last_pts: int | None = None
        self._interval_us = _US_PER_MS
        self.nudged = 0
        self.clock_steps = 0
        self.clock_step_ms = 0

    def assign(self, micros: int) -> int | None:
        """Return the pts (ms) of an item captured ``micros`` after the origin, or ``None``.

        ``None`` means out of order (not after the previous item, or too dense to nudge).
        """
        exact = micros + self._offset_us
        last_exact, last_pts = self._last_exact, self._last_pts
        if last_exact is None or last_pts is None:
            return self._accept(exact, round_ms(exact))
        back = last_exact - exact
        if back > self._max_back_us or round_ms(exact) - last_pts > self._max_jump_ms:
            exact = self._rebase(exact, last_exact)
        elif back >= 0:
            return None
        pts = round_ms(exact)
        if pts <= last_pts:
            pts = last_pts + 1
            if pts * _US_PER_MS - exact > self._max_nudge_us:
                return None
            self.nudged += 1
        return self._accept(exact, pts)

    def _rebase(self, exact: int, last_exact: int) -> int:
        target = last_exact + self._interval_us
        shift = exact - target
        self._offset_us -= shift
        self.clock_steps += 1
        self.clock_step_ms += round_ms(shift)
        logger.warning(
            "stream %r: capture time %s by %.3f s between two items; treated as a clock step, "
            "later items shifted to follow on (see omgrab.recording.timestamp_policy)",
            self.name,
            "jumped forward" if shift > 0 else "stepped back",
            abs(shift) / 1e6,
        )
        return target

    def _accept(self, exact: int, pts: int) -> int:
        if self._last_exact is not None:
            self._interval_us = max(_US_PER_MS, exact - self._last_exact)
        self._last_exact = exact
        self._last_pts = pts
        return pts
