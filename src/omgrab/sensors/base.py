"""The sensor contract every non-video data source implements."""

from __future__ import annotations

import abc
import datetime

from omgrab import clock as clock_mod
from omgrab import lifecycle


class SensorDataUnavailableError(Exception):
    """No item arrived within the timeout, or the sensor is closed or disconnected."""


Item = tuple[bytes, datetime.datetime]


class Sensor(lifecycle.Openable):
    """A source of timestamped byte payloads (e.g. a batch of IMU readings as JSON).

    Args:
        clock: Device clock used for timestamps; the process-wide clock by default.
    """

    def __init__(self, *, clock: clock_mod.DeviceClock | None = None) -> None:
        super().__init__()
        self._clock = clock if clock is not None else clock_mod.default_clock()

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

    @abc.abstractmethod
    def _read_item(self, timeout_s: float | None) -> Item:
        """Return the next item; raise SensorDataUnavailableError when none arrives in time."""
