"""Level-aware frame rate limiting (L1 2 fps, L2 30 fps by default)."""

from __future__ import annotations

import threading


class LevelRateLimiter:
    """Decides which frames to keep so that recording never exceeds the level's rate.

    One schedule is shared by all levels. Each admitted frame books a *slot*; a frame of level
    ``L`` is admitted when it arrives at least three quarters of ``L``'s interval after the last
    slot, and its slot is then the last slot plus one interval (or half an interval before the
    frame, if that is later). The tolerance keeps a camera running at exactly the level's rate
    (with timing jitter) from losing every other frame; slots advance by a full interval per
    admitted frame, so the long-run rate never exceeds the level's rate. Switching from L1 to
    L2 takes effect with the next frame.

    Args:
        fps_by_level: Frame rate for each level, e.g. ``{1: 2.0, 2: 30.0}``.
    """

    def __init__(self, fps_by_level: dict[int, float]) -> None:
        for level, fps in fps_by_level.items():
            if not fps > 0:
                raise ValueError(f"frame rate of level {level} must be > 0, got {fps!r}")
        self._interval = {level: 1.0 / fps for level, fps in fps_by_level.items()}
        self._lock = threading.Lock()
        self._slot: float | None = None

    @property
    def levels(self) -> tuple[int, ...]:
        """The configured levels."""
        return tuple(self._interval)

    def admit(self, level: int, now: float) -> bool:
        """Return True (and book the slot) if a frame of ``level`` arriving at ``now`` is kept.

        Raises:
            ValueError: ``level`` is not configured.
        """
        try:
            interval = self._interval[level]
        except KeyError:
            raise ValueError(
                f"level must be one of {sorted(self._interval)}, got {level!r}"
            ) from None
        with self._lock:
            slot = self._slot
            if slot is None:
                self._slot = now
                return True
            if now < slot + 0.75 * interval:
                return False
            self._slot = max(slot + interval, now - 0.5 * interval)
            return True
