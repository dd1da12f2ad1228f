"""A synthetic IMU producing batches of accelerometer and gyroscope readings as JSON.

Item schema (compact JSON, UTF-8, serialised with orjson), one item per batch::

    {
      "seq": 17,                                   # batch number since open, 0-based
      "t0": "2026-11-22T02:40:11.123456+00:00",    # time of the first reading (ISO 8601, UTC)
      "rate_hz": 100.0,                            # nominal sample rate
      "readings": [
        {"dt_ms": 0.0,  "accel": [0.01, 0.49, 9.79], "gyro": [0.001, 0.0, 0.2]},
        {"dt_ms": 10.0, "accel": [...], "gyro": [...]},
        ...
      ]
    }

- The item's timestamp (second element of ``get_next_item``'s tuple) equals ``t0``: the
  capture time of the first reading. ``dt_ms`` is each reading's offset from it in
  milliseconds (>= 0, increasing).
- ``accel`` is specific force in m/s^2 (gravity appears as +9.80665 on the gravity axis when
  level), ``gyro`` is angular rate in rad/s, both ``[x, y, z]`` in the sensor frame.
- Simulated motion: a slow constant yaw rotation about the gravity axis plus a gentle roll
  sway about the first other axis (which tilts gravity into it), with seeded Gaussian noise.

Readings are generated on a schedule derived from the device clock: batch ``k`` becomes
available when its last reading's time is reached (``pace=True``), so the stream runs at the
real rate. If the consumer falls more than one batch behind, the schedule restarts from the
current time rather than delivering a burst of stale batches.
"""

from __future__ import annotations

import math

import numpy as np
import orjson

from omgrab import clock as clock_mod
from omgrab.sensors import base

STANDARD_GRAVITY = 9.80665


class SyntheticImu(base.Sensor):
    """A software IMU: batches of accelerometer + gyroscope readings, JSON encoded.

    Args:
        rate_hz: Sample rate in Hz (> 0).
        batch_size: Readings per item (>= 1).
        clock: Device clock used for timestamps; the process-wide clock by default.
        pace: Deliver batches at the real rate; False delivers them as fast as asked, with
            reading times continuing the nominal schedule from open time.
        seed: Seed of the noise generator.
        gravity_axis: Axis (0 = x, 1 = y, 2 = z) that carries gravity when level.
        yaw_rate_rad_s: Constant rotation rate about the gravity axis.
        sway_amplitude_rad: Amplitude of the roll sway.
        sway_period_s: Period of the roll sway.
        accel_noise: Standard deviation of accelerometer noise in m/s^2.
        gyro_noise: Standard deviation of gyroscope noise in rad/s.

    Raises:
        ValueError: For a non-positive rate, a batch size below 1 or a bad axis.
    """

    def __init__(
        self,
        rate_hz: float = 100.0,
        batch_size: int = 10,
        *,
        clock: clock_mod.DeviceClock | None = None,
        pace: bool = True,
        seed: int = 0,
        gravity_axis: int = 2,
        yaw_rate_rad_s: float = 0.2,
        sway_amplitude_rad: float = 0.05,
        sway_period_s: float = 4.0,
        accel_noise: float = 0.02,
        gyro_noise: float = 0.002,
    ) -> None:
        super().__init__(clock=clock)
        if not rate_hz > 0:
            raise ValueError(f"SyntheticImu rate_hz must be > 0, got {rate_hz!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"SyntheticImu batch_size must be an int >= 1, got {batch_size!r}")
        if gravity_axis not in (0, 1, 2):
            raise ValueError(f"SyntheticImu gravity_axis must be 0, 1 or 2, got {gravity_axis!r}")
        self._rate = float(rate_hz)
        self._batch = batch_size
        self._pace = pace
        self._seed = seed
        self._gravity_axis = gravity_axis
        self._sway_axis = (gravity_axis + 1) % 3
        self._yaw_rate = yaw_rate_rad_s
        self._sway_amp = sway_amplitude_rad
        self._sway_omega = 2.0 * math.pi / sway_period_s
        self._accel_noise = accel_noise
        self._gyro_noise = gyro_noise
        self._rng = np.random.default_rng(seed)
        self._origin = 0.0
        self._next_start: float | None = None
        self._last_sample: float | None = None
        self._seq = 0

    @property
    def rate_hz(self) -> float:
        """Nominal sample rate."""
        return self._rate

    @property
    def batch_size(self) -> int:
        """Readings per item."""
        return self._batch

    @property
    def batch_period_s(self) -> float:
        """Seconds covered by one item."""
        return self._batch / self._rate

    @property
    def batches_delivered(self) -> int:
        """Items returned since open."""
        return self._seq

    def _open(self) -> None:
        self._rng = np.random.default_rng(self._seed)
        self._origin = self._clock.monotonic()
        self._next_start = None
        self._last_sample = None
        self._seq = 0

    def _close(self) -> None:
        pass

    def wait_for_next_batch(self, timeout_s: float | None = None) -> float:
        """Wait until the next batch is due and return its first sample's monotonic time.

        ``get_next_item`` is ``make_batch(wait_for_next_batch(timeout))``; the two halves are
        public so that a wrapper (e.g. a simulated device applying faults) can act in between.

        Raises:
            SensorDataUnavailableError: When the batch is not due within ``timeout_s``.
        """
        period = 1.0 / self._rate
        span = (self._batch - 1) * period
        if self._next_start is None:
            self._next_start = self._clock.monotonic() if self._pace else self._origin
        if not self._pace:
            start = self._next_start
            self._next_start = start + self._batch * period
            return start
        now = self._clock.monotonic()
        start = self._next_start
        if now - (start + span) > self._batch * period:
            # Fell more than a batch behind: restart the schedule so this batch ends now.
            start = now - span
            if self._last_sample is not None:
                start = max(start, self._last_sample + period)
        wait = start + span - now
        if timeout_s is not None and wait > timeout_s:
            self._clock.sleep(max(timeout_s, 0.0))
            self._next_start = start
            raise base.SensorDataUnavailableError(
                f"next IMU batch is due in {wait:.3f} s > timeout {timeout_s}"
            )
        if wait > 0:
            self._clock.sleep(wait)
        self._next_start = start + self._batch * period
        return start

    def readings(self, times_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return noisy ``(accel, gyro)`` arrays of shape ``(N, 3)`` at ``times_s`` since open."""
        n = len(times_s)
        phase = self._sway_omega * times_s
        roll = self._sway_amp * np.sin(phase)
        roll_rate = self._sway_amp * self._sway_omega * np.cos(phase)
        accel = np.zeros((n, 3))
        accel[:, self._gravity_axis] = STANDARD_GRAVITY * np.cos(roll)
        accel[:, self._sway_axis] = STANDARD_GRAVITY * np.sin(roll)
        gyro = np.zeros((n, 3))
        gyro[:, self._gravity_axis] = self._yaw_rate
        gyro[:, 3 - self._gravity_axis - self._sway_axis] = roll_rate
        accel += self._rng.normal(0.0, self._accel_noise, size=(n, 3))
        gyro += self._rng.normal(0.0, self._gyro_noise, size=(n, 3))
        return accel, gyro

    def _read_item(self, timeout_s: float | None) -> base.Item:
        return self.make_batch(self.wait_for_next_batch(timeout_s))

    def make_batch(self, start: float) -> base.Item:
        """Generate the batch whose first reading is at monotonic time ``start``."""
        period = 1.0 / self._rate
        offsets = np.arange(self._batch) * period
        accel, gyro = self.readings(start - self._origin + offsets)
        self._last_sample = start + offsets[-1]
        timestamp = self._clock.to_datetime(start)
        item = {
            "seq": self._seq,
            "t0": timestamp.isoformat(),
            "rate_hz": self._rate,
            "readings": [
                {
                    "dt_ms": round(float(offsets[i]) * 1000.0, 3),
                    "accel": [round(float(v), 5) for v in accel[i]],
                    "gyro": [round(float(v), 5) for v in gyro[i]],
                }
                for i in range(self._batch)
            ],
        }
        self._seq += 1
        return orjson.dumps(item), timestamp
