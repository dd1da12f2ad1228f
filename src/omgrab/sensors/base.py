"""The sensor contract every non-video data source implements.

Sensors written for the published omgrab 0.1.2 API (overriding ``get_next_item``, ``setup`` and
``close``) instantiate and work unchanged, as for cameras (``docs/compat.md``).
"""

from __future__ import annotations

import datetime

from omgrab import clock as clock_mod
from omgrab import lifecycle


class SensorDataUnavailableError(RuntimeError):
    """No item arrived within the timeout, or the sensor is closed or disconnected."""


Item = tuple[bytes, datetime.datetime]


class Sensor(lifecycle.Openable):
    """A source of timestamped byte payloads (e.g. a batch of IMU readings as JSON).

    This package's sensors implement ``_open``, ``_close`` and ``_read_item``; a sensor written
    for omgrab 0.1.2 overrides ``get_next_item``, ``setup`` and ``close`` instead.

    Args:
        clock: Device clock used for timestamps; the process-wide clock by default.

    Raises:
        TypeError: When a subclass implements neither ``_read_item`` nor ``get_next_item``.
    """

    def __init__(self, *, clock: clock_mod.DeviceClock | None = None) -> None:
        super().__init__()
        cls = type(self)
        if cls._read_item is Sensor._read_item and cls.get_next_item is Sensor.get_next_item:
            raise TypeError(f"{cls.__name__} must implement _read_item or get_next_item")
        self._clock = clock if clock is not None else clock_mod.default_clock()

    def open(self) -> None:
        """Open (idempotent); also works for a 0.1.2-style subclass that skipped ``__init__``."""
        if "_open_lock" not in vars(self):
            Sensor.__init__(self)
        super().open()

    @property
    def clock(self) -> clock_mod.DeviceClock:
        """The clock that stamps this sensor's items."""
        return self._clock

    def get_next_item(self, timeout_s: float | None = None) -> Item:
        """Return the next payload and its timestamp.

        Args:
            timeout_s: Seconds to wait at most; None waits indefinitely.

        Raises:
            SensorDataUnavailableError: When nothing arrives in time or the sensor is not open.
        """
        if not self._is_open:
            raise SensorDataUnavailableError(f"{type(self).__name__} is not open")
        return self._read_item(timeout_s)

    def _read_item(self, timeout_s: float | None) -> Item:
        """Return the next item; raise SensorDataUnavailableError when none arrives in time."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _read_item")

    def _open(self) -> None:
        """Acquire the source; runs a 0.1.2-style subclass's ``setup`` override."""
        if type(self).setup is not Sensor.setup:
            self.setup()

    def _close(self) -> None:
        """Release the source; this package's sensors override it."""

    def setup(self) -> None:
        """Open the sensor (the published 0.1.2 name for ``open``)."""
        self.open()
