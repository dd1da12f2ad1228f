"""The storage ladder shared by the recorder and the OutputManager.

Free space is the fraction of the data filesystem a normal user may still write:
``statvfs.f_bavail / statvfs.f_blocks``. The ladder maps it onto three levels:

* ``OK`` - at or above ``reduce_below`` (20 % by default): record everything.
* ``REDUCE`` - below ``reduce_below``: frame logger records L1 only,
  ``should_reduce_recording`` is true.
* ``DETECTION_ONLY`` - below ``detection_only_below`` (10 %): frame recording stops, only
  detections (and health / gimbal logs) are written.

Independently of the ladder the recorder has a configurable *floor*: it refuses to start below
it and stops cleanly (closing a valid file) when free space falls under it.

``StorageMonitor`` caches readings (``statvfs`` at most once per ``min_interval_s``), logs each
level transition exactly once (WARN going down, INFO on recovery) and calls registered
listeners with ``(old_level, new_level, reading)``.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import math
import os
import threading
from collections.abc import Callable

from omgrab import clock as clock_mod

logger = logging.getLogger(__name__)


class StorageLevel(enum.IntEnum):
    """Rungs of the storage ladder, ordered from healthy to critical."""

    OK = 0
    REDUCE = 1
    DETECTION_ONLY = 2


@dataclasses.dataclass(frozen=True)
class StorageThresholds:
    """Free-space thresholds, as fractions of the filesystem (0-1).

    Attributes:
        reduce_below: Below this free fraction the ladder is ``REDUCE`` (default 0.20).
        detection_only_below: Below this it is ``DETECTION_ONLY`` (default 0.10).
        recorder_floor: The recorder refuses to start / stops below this free fraction
            (default 0.05).
        recorder_floor_bytes: ...and also below this many available bytes (default 0: off).
    """

    reduce_below: float = 0.20
    detection_only_below: float = 0.10
    recorder_floor: float = 0.05
    recorder_floor_bytes: int = 0

    def __post_init__(self) -> None:
        for name in ("reduce_below", "detection_only_below", "recorder_floor"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise ValueError(f"StorageThresholds.{name} must be in [0, 1], got {value!r}")
        if self.detection_only_below > self.reduce_below:
            raise ValueError(
                "StorageThresholds.detection_only_below "
                f"({self.detection_only_below}) must not exceed reduce_below "
                f"({self.reduce_below})"
            )
        if self.recorder_floor_bytes < 0:
            raise ValueError(
                f"StorageThresholds.recorder_floor_bytes must be >= 0, "
                f"got {self.recorder_floor_bytes}"
            )

    def level_for(self, free_fraction: float) -> StorageLevel:
        """Return the ladder level for a free fraction."""
        if free_fraction < self.detection_only_below:
            return StorageLevel.DETECTION_ONLY
        if free_fraction < self.reduce_below:
            return StorageLevel.REDUCE
        return StorageLevel.OK


@dataclasses.dataclass(frozen=True)
class StorageReading:
    """One ``statvfs`` reading of the data filesystem.

    Attributes:
        total_bytes: Filesystem size (``f_blocks * f_frsize``).
        available_bytes: Bytes an unprivileged user may still write (``f_bavail * f_frsize``).
        free_fraction: ``f_bavail / f_blocks`` (0-1; 0 for an empty filesystem).
        taken_at: Monotonic time of the reading.
    """

    total_bytes: int
    available_bytes: int
    free_fraction: float
    taken_at: float

    @property
    def free_pct(self) -> float:
        """Free space in percent (0-100)."""
        return self.free_fraction * 100.0


StatFunction = Callable[[str], os.statvfs_result]
TransitionListener = Callable[[StorageLevel, StorageLevel, StorageReading], None]


def read_statvfs(
    path: str | os.PathLike[str], stat_fn: StatFunction = os.statvfs
) -> StorageReading:
    """Take one uncached reading of the filesystem holding ``path``.

    Args:
        path: Any path on the data filesystem.
        stat_fn: ``os.statvfs`` or a replacement with the same result fields (tests).

    Returns:
        The reading; ``taken_at`` is 0.
    """
    st = stat_fn(os.fspath(path))
    frsize = st.f_frsize or st.f_bsize
    blocks = st.f_blocks
    avail = st.f_bavail
    fraction = (avail / blocks) if blocks > 0 else 0.0
    return StorageReading(
        total_bytes=int(blocks * frsize),
        available_bytes=int(avail * frsize),
        free_fraction=max(0.0, min(1.0, fraction)),
        taken_at=0.0,
    )


class StorageMonitor:
    """Caches free-space readings of one filesystem and reports ladder transitions.

    Thread-safe. ``statvfs`` runs at most once per ``min_interval_s`` (callers on hot paths may
    ask as often as they like); ``refresh()`` forces a reading. Each transition is logged once
    and passed to every listener; a listener that raises is logged and counted in
    ``listener_errors`` and never stops the others.

    Args:
        path: Any path on the data filesystem (e.g. the output or spool directory).
        thresholds: Ladder thresholds and recorder floor.
        min_interval_s: Minimum time between two ``statvfs`` calls.
        stat_fn: Replacement for ``os.statvfs`` (tests).
        time_source: Monotonic time for the rate limit; the system clock by default.
        name: Device name used in log messages ("NVMe" as in the spec).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        thresholds: StorageThresholds | None = None,
        min_interval_s: float = 1.0,
        stat_fn: StatFunction = os.statvfs,
        time_source: clock_mod.TimeSource | None = None,
        name: str = "NVMe",
    ) -> None:
        if min_interval_s < 0:
            raise ValueError(f"min_interval_s must be >= 0, got {min_interval_s}")
        self._path = os.fspath(path)
        self._thresholds = thresholds if thresholds is not None else StorageThresholds()
        self._min_interval_s = float(min_interval_s)
        self._stat_fn = stat_fn
        self._time: clock_mod.TimeSource = (
            time_source if time_source is not None else clock_mod.SystemTimeSource()
        )
        self._name = name
        self._lock = threading.Lock()
        self._listeners: list[TransitionListener] = []
        self._reading: StorageReading | None = None
        self._level = StorageLevel.OK
        self.stat_calls = 0
        self.stat_errors = 0
        self.listener_errors = 0
        self.transitions = 0

    @property
    def path(self) -> str:
        """The monitored path."""
        return self._path

    @property
    def thresholds(self) -> StorageThresholds:
        """The ladder thresholds."""
        return self._thresholds

    def add_listener(self, listener: TransitionListener) -> None:
        """Call ``listener(old_level, new_level, reading)`` on every level transition."""
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: TransitionListener) -> None:
        """Stop calling ``listener``; unknown listeners are ignored."""
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def reading(self) -> StorageReading:
        """Return the cached reading, taking a new one if it is older than ``min_interval_s``."""
        with self._lock:
            cached = self._reading
            if cached is not None and (
                self._time.monotonic() - cached.taken_at < self._min_interval_s
            ):
                return cached
        return self.refresh()

    def refresh(self) -> StorageReading:
        """Take a new reading now, update the level and report a transition if there is one.

        If ``statvfs`` fails the error is logged and counted and the previous reading is kept
        (an unreadable filesystem is reported as 0 % free if there never was a reading).
        """
        now = self._time.monotonic()
        try:
            raw = read_statvfs(self._path, self._stat_fn)
            reading = dataclasses.replace(raw, taken_at=now)
        except OSError as exc:
            with self._lock:
                self.stat_errors += 1
                previous = self._reading
            logger.error("Storage check of %s failed: %s", self._path, exc)
            if previous is not None:
                reading = dataclasses.replace(previous, taken_at=now)
            else:
                reading = StorageReading(0, 0, 0.0, now)
        with self._lock:
            self.stat_calls += 1
            self._reading = reading
            old = self._level
            new = self._thresholds.level_for(reading.free_fraction)
            self._level = new
            listeners = list(self._listeners) if new != old else []
            if new != old:
                self.transitions += 1
        if new != old:
            self._log_transition(old, new, reading)
            for listener in listeners:
                try:
                    listener(old, new, reading)
                except Exception:
                    with self._lock:
                        self.listener_errors += 1
                    logger.exception("Storage transition listener %r failed", listener)
        return reading

    def _log_transition(
        self, old: StorageLevel, new: StorageLevel, reading: StorageReading
    ) -> None:
        pct = math.floor(reading.free_pct)  # 19.9 % is reported as 19 %, never 20 %
        if new == StorageLevel.DETECTION_ONLY:
            logger.warning(
                "%s %d%% free, stopping frame recording (detection-only mode)", self._name, pct
            )
        elif new == StorageLevel.REDUCE and old == StorageLevel.OK:
            logger.warning("%s %d%% free, reducing to L1 recording only", self._name, pct)
        elif new == StorageLevel.REDUCE:
            logger.info(
                "%s %d%% free, storage recovering: L1 frame recording resumed", self._name, pct
            )
        else:
            logger.info("%s %d%% free, storage recovered: full recording resumed", self._name, pct)

    @property
    def level(self) -> StorageLevel:
        """The ladder level of the current (possibly cached) reading."""
        with self._lock:  # fast path: one lock, no reading object touched
            cached = self._reading
            if cached is not None and (
                self._time.monotonic() - cached.taken_at < self._min_interval_s
            ):
                return self._level
        self.refresh()
        with self._lock:
            return self._level

    @property
    def free_fraction(self) -> float:
        """Free fraction (0-1) of the current (possibly cached) reading."""
        return self.reading().free_fraction

    @property
    def should_reduce_recording(self) -> bool:
        """True while free space is below ``reduce_below`` (20 %)."""
        return self.level >= StorageLevel.REDUCE

    @property
    def frames_allowed(self) -> bool:
        """True while free space is at or above ``detection_only_below`` (10 %)."""
        return self.level < StorageLevel.DETECTION_ONLY

    def below_recorder_floor(self, reading: StorageReading | None = None) -> bool:
        """True if the recorder must not start, or must stop, at this reading.

        Args:
            reading: Reading to judge; the current (possibly cached) one by default.
        """
        r = reading if reading is not None else self.reading()
        t = self._thresholds
        return r.free_fraction < t.recorder_floor or r.available_bytes < t.recorder_floor_bytes

    def can_start_recording(self) -> bool:
        """True if a fresh reading is at or above the recorder floor."""
        return not self.below_recorder_floor(self.refresh())
