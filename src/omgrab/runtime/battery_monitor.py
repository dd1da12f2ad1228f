"""Battery monitoring module for Waveshare UPS HAT B (INA219).

This module provides battery status information including voltage, current, power
consumption, and battery percentage for devices with the Waveshare UPS HAT B. The chip is
read over I2C with smbus2 (imported when the first bus is opened); register-level details
live in :mod:`omgrab.hardware.ina219`.

When the chip is absent (no HAT, no ``/dev/i2c-1``, nothing answering at the address),
:meth:`BatteryMonitor.get_status` returns None and retries the connection every
``reconnect_interval_s`` (30 s). After a read fails on a connected chip the next call retries
at once, then every interval. A chip that lost its calibration (brown-out reset) is
re-calibrated before it is read.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import math
import threading
from collections.abc import Callable
from typing import Any, Protocol

from omgrab.hardware import ina219

logger = logging.getLogger(__name__)


class _MonotonicClock(Protocol):
    def monotonic(self) -> float: ...


class _SystemClock:
    def monotonic(self) -> float:
        import time

        return time.monotonic()


@dataclasses.dataclass(frozen=True)
class BatteryStatus:
    """Battery status information from the INA219 sensor.

    Attributes:
        voltage_v: Load voltage in volts.
        current_a: Current draw in amps (positive when charging).
        power_w: Power consumption in watts.
        percent: Estimated battery percentage (0-100).
    """

    voltage_v: float
    current_a: float
    power_w: float
    percent: float

    @property
    def charging(self) -> bool:
        """True if current flows into the battery."""
        return self.current_a > 0

    def __str__(self) -> str:
        """Return human-readable battery status."""
        direction = "charging" if self.charging else "discharging"
        return (
            f"{self.percent:.1f}% {self.voltage_v:.2f} V {self.current_a:+.3f} A "
            f"({direction}) {self.power_w:.2f} W"
        )


def voltage_to_percent(voltage_v: float, min_voltage: float, max_voltage: float) -> float:
    """Return the battery percentage for a voltage, linear between min and max, clamped."""
    percent = (voltage_v - min_voltage) / (max_voltage - min_voltage) * 100.0
    return max(0.0, min(100.0, percent))


def _open_smbus(bus_number: int) -> Any:
    smbus2 = importlib.import_module("smbus2")
    return smbus2.SMBus(bus_number)


class BatteryMonitor:
    """Monitor battery status using INA219 chip on Waveshare UPS HAT B.

    The INA219 measures voltage, current, and power. Battery percentage is calculated based on
    voltage (6V = 0%, 8.4V = 100% for typical 2S Li-ion).

    Args:
        i2c_bus: I2C bus number (default: 1).
        i2c_addr: I2C address of INA219 chip (default: 0x42 for UPS HAT B).
        min_voltage: Minimum battery voltage for 0% (default: 6.0V).
        max_voltage: Maximum battery voltage for 100% (default: 8.4V).
        bus_factory: Opens an SMBus by number (``smbus2.SMBus`` by default); tests pass
            :meth:`omgrab.testing.ina219_twin.FakeI2CBus.open`.
        reconnect_interval_s: Seconds between reconnection attempts while the chip is absent.
        clock: Monotonic clock for the reconnection schedule (``time.monotonic``).
        shunt_ohms: Shunt resistance of the board.
        calibration: INA219 calibration register value.

    Raises:
        ValueError: If the voltage range, address or interval is invalid.
    """

    def __init__(
        self,
        i2c_bus: int = 1,
        i2c_addr: int = 0x42,
        min_voltage: float = 6.0,
        max_voltage: float = 8.4,
        *,
        bus_factory: Callable[[int], ina219.SMBusLike] | None = None,
        reconnect_interval_s: float = 30.0,
        clock: _MonotonicClock | None = None,
        shunt_ohms: float = ina219.UPS_HAT_B_SHUNT_OHMS,
        calibration: int = ina219.UPS_HAT_B_CALIBRATION,
    ) -> None:
        if not (math.isfinite(min_voltage) and math.isfinite(max_voltage)):
            raise ValueError(f"voltages must be finite, got {min_voltage!r}..{max_voltage!r}")
        if max_voltage <= min_voltage:
            raise ValueError(
                f"max_voltage ({max_voltage}) must be greater than min_voltage ({min_voltage})"
            )
        if not 0x03 <= i2c_addr <= 0x77:
            raise ValueError(f"i2c_addr {i2c_addr:#x} is not a 7-bit device address")
        if not reconnect_interval_s > 0:
            raise ValueError(f"reconnect_interval_s must be > 0, got {reconnect_interval_s!r}")
        # Validates the calibration and shunt now rather than at the first connection.
        ina219.current_lsb_a(calibration, shunt_ohms)
        self._i2c_bus = i2c_bus
        self._i2c_addr = i2c_addr
        self._min_voltage = min_voltage
        self._max_voltage = max_voltage
        self._bus_factory = bus_factory if bus_factory is not None else _open_smbus
        self._reconnect_interval_s = reconnect_interval_s
        self._clock = clock if clock is not None else _SystemClock()
        self._shunt_ohms = shunt_ohms
        self._calibration = calibration
        # The lock guards the bus, the chip and the counters (get_status may be called from
        # the status worker and from the dashboard at once).
        self._lock = threading.Lock()
        self._bus: ina219.SMBusLike | None = None
        self._chip: ina219.INA219 | None = None
        self._next_attempt = self._clock.monotonic()
        self._connect_attempts = 0
        self._read_failures = 0
        self._recalibrations = 0
        self._last_error: str | None = None
        self._warned_absent = False
        with self._lock:
            self._connect(self._clock.monotonic())

    @property
    def available(self) -> bool:
        """True if battery monitoring hardware is available."""
        with self._lock:
            return self._chip is not None

    @property
    def connect_attempts(self) -> int:
        """How many times a connection to the chip was attempted."""
        with self._lock:
            return self._connect_attempts

    @property
    def read_failures(self) -> int:
        """How many reads of a connected chip failed."""
        with self._lock:
            return self._read_failures

    @property
    def recalibrations(self) -> int:
        """How many times the chip had lost its calibration and was re-calibrated."""
        with self._lock:
            return self._recalibrations

    @property
    def last_error(self) -> str | None:
        """The latest connection or read error, if any."""
        with self._lock:
            return self._last_error

    def get_status(self) -> BatteryStatus | None:
        """Get current battery status.

        If the battery hardware is not available, this method will periodically attempt to
        reconnect (every 30 seconds by default).

        Returns:
            BatteryStatus with current measurements, or None if battery monitoring is not
            available or read fails.
        """
        with self._lock:
            now = self._clock.monotonic()
            if self._chip is None and (now < self._next_attempt or not self._connect(now)):
                return None
            chip = self._chip
            assert chip is not None
            try:
                if not chip.is_configured():
                    self._recalibrations += 1
                    logger.warning("INA219 lost its calibration (reset?); re-calibrating")
                    chip.configure()
                reading = chip.read()
            except OSError as exc:
                self._read_failures += 1
                self._last_error = f"reading INA219 at {self._where()}: {exc}"
                logger.warning("battery read failed: %s", self._last_error)
                self._disconnect()
                self._next_attempt = now  # one immediate retry, then every interval
                return None
        return BatteryStatus(
            voltage_v=reading.bus_voltage_v,
            current_a=reading.current_a,
            power_w=reading.power_w,
            percent=voltage_to_percent(reading.bus_voltage_v, self._min_voltage, self._max_voltage),
        )

    def close(self) -> None:
        """Close the I2C bus (a later ``get_status`` reconnects)."""
        with self._lock:
            self._disconnect()

    def __enter__(self) -> BatteryMonitor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _where(self) -> str:
        return f"/dev/i2c-{self._i2c_bus} address {self._i2c_addr:#04x}"

    def _connect(self, now: float) -> bool:
        self._connect_attempts += 1
        self._next_attempt = now + self._reconnect_interval_s
        bus: ina219.SMBusLike | None = None
        try:
            bus = self._bus_factory(self._i2c_bus)
            chip = ina219.INA219(
                bus, self._i2c_addr, shunt_ohms=self._shunt_ohms, calibration=self._calibration
            )
            chip.configure()
            if not chip.is_configured():
                raise OSError("calibration register did not keep the value written")
        except (OSError, ImportError) as exc:
            self._last_error = f"connecting to INA219 at {self._where()}: {exc}"
            if bus is not None:
                _close_quietly(bus)
            if not self._warned_absent:
                logger.warning(
                    "battery monitor unavailable (%s); retrying every %.0f s",
                    self._last_error,
                    self._reconnect_interval_s,
                )
                self._warned_absent = True
            else:
                logger.debug("battery monitor still unavailable: %s", self._last_error)
            return False
        self._bus = bus
        self._chip = chip
        if self._warned_absent:
            logger.info("battery monitor connected at %s", self._where())
        self._warned_absent = False
        return True

    def _disconnect(self) -> None:
        if self._bus is not None:
            _close_quietly(self._bus)
        self._bus = None
        self._chip = None


def _close_quietly(bus: ina219.SMBusLike) -> None:
    try:
        bus.close()
    except OSError as exc:
        logger.debug("closing I2C bus failed: %s", exc)
