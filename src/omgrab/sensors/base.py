"""The sensor contract every non-video data source implements."""

from __future__ import annotations

import abc
import datetime
import threading
import types

from omgrab import clock as clock_mod


class SensorDataUnavailableError(Exception):
    """No item arrived within the timeout, or the sensor is closed or disconnected."""


Item = tuple[bytes, datetime.datetime]


class Sensor(abc.ABC):
    """A source of timestamped byte payloads (e.g. a batch of IMU readings as JSON).

    Args:
        clock: Device clock used for timestamps; the process-wide clock by default.
    """

    def __init__(self, *, clock: clock_mod.DeviceClock | None = None) -> None:
        self._clock = clock if clock is not None else clock_mod.default_clock()
        self._open_lock = threading.Lock()
        self._is_open = False

    @property
    def clock(self) -> clock_mod.DeviceClock:
        """The clock that stamps this sensor's items."""
        return self._clock

    @property
    def is_open(self) -> bool:
        """True between ``open()`` and ``close()``."""
        return self._is_open

    def open(self) -> None:
        """Open the sensor (idempotent)."""
        with self._open_lock:
            if self._is_open:
                return
            self._open()
            self._is_open = True

    def close(self) -> None:
        """Close the sensor (idempotent)."""
        with self._open_lock:
            if not self._is_open:
                return
            self._is_open = False
            self._close()

    def __enter__(self) -> Sensor:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.close()

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
    def _open(self) -> None:
        """Acquire the underlying resource."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Release the underlying resource."""

    @abc.abstractmethod
    def _read_item(self, timeout_s: float | None) -> Item:
        """Return the next item; raise SensorDataUnavailableError when none arrives in time."""
