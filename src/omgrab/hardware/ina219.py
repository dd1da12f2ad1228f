"""Register-level logic of the TI INA219 current/power monitor (as on the Waveshare UPS HAT B).

Facts from the INA219 datasheet (SBOS448): six 16-bit registers sent most significant byte
first; shunt voltage is a signed count of 10 uV; the bus voltage sits in bits 15..3 with a
4 mV LSB (bit 1 conversion ready, bit 0 math overflow); the chip computes
``current = shunt * calibration / 4096`` (signed) and ``power = current * bus / 5000``, with
``calibration = trunc(0.04096 / (current_lsb * r_shunt))`` and ``power_lsb = 20 * current_lsb``.

The UPS HAT B has a 0.01 ohm shunt and is run at 32 V bus range, PGA /8 (+-320 mV), 12-bit
ADCs averaging 32 samples, continuous shunt and bus conversion, calibration 26868 (Waveshare's
figure); that gives a current LSB of 0.04096 / (26868 * 0.01) = 0.15245 mA and a power LSB of
3.049 mW. The LSBs are derived from the calibration value actually written.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Protocol

REG_CONFIG = 0x00
REG_SHUNT_VOLTAGE = 0x01
REG_BUS_VOLTAGE = 0x02
REG_POWER = 0x03
REG_CURRENT = 0x04
REG_CALIBRATION = 0x05

CONFIG_RESET_BIT = 0x8000
#: Configuration register value after power-on reset.
POWER_ON_CONFIG = 0x399F

SHUNT_LSB_V = 10e-6
BUS_LSB_V = 0.004
CALIBRATION_SCALE = 0.04096


class BusVoltageRange(enum.IntEnum):
    """Bus voltage full-scale range (config bit 13)."""

    RANGE_16V = 0
    RANGE_32V = 1


class Gain(enum.IntEnum):
    """Shunt PGA gain and range (config bits 12..11)."""

    DIV_1_40MV = 0
    DIV_2_80MV = 1
    DIV_4_160MV = 2
    DIV_8_320MV = 3


class AdcResolution(enum.IntEnum):
    """ADC resolution / averaging (config bits 10..7 for the bus, 6..3 for the shunt)."""

    BITS_9 = 0x0
    BITS_10 = 0x1
    BITS_11 = 0x2
    BITS_12 = 0x3
    BITS_12_2_SAMPLES = 0x9
    BITS_12_4_SAMPLES = 0xA
    BITS_12_8_SAMPLES = 0xB
    BITS_12_16_SAMPLES = 0xC
    BITS_12_32_SAMPLES = 0xD
    BITS_12_64_SAMPLES = 0xE
    BITS_12_128_SAMPLES = 0xF


class Mode(enum.IntEnum):
    """Operating mode (config bits 2..0)."""

    POWER_DOWN = 0
    SHUNT_TRIGGERED = 1
    BUS_TRIGGERED = 2
    SHUNT_AND_BUS_TRIGGERED = 3
    ADC_OFF = 4
    SHUNT_CONTINUOUS = 5
    BUS_CONTINUOUS = 6
    SHUNT_AND_BUS_CONTINUOUS = 7


def config_word(
    bus_range: BusVoltageRange,
    gain: Gain,
    bus_adc: AdcResolution,
    shunt_adc: AdcResolution,
    mode: Mode,
) -> int:
    """Compose the configuration register value."""
    return (bus_range << 13) | (gain << 11) | (bus_adc << 7) | (shunt_adc << 3) | mode


#: Configuration used on the UPS HAT B (0x3EEF).
UPS_HAT_B_CONFIG = config_word(
    BusVoltageRange.RANGE_32V,
    Gain.DIV_8_320MV,
    AdcResolution.BITS_12_32_SAMPLES,
    AdcResolution.BITS_12_32_SAMPLES,
    Mode.SHUNT_AND_BUS_CONTINUOUS,
)
#: Calibration register value used on the UPS HAT B (0.01 ohm shunt).
UPS_HAT_B_CALIBRATION = 26868
UPS_HAT_B_SHUNT_OHMS = 0.01


def to_signed16(raw: int) -> int:
    """Interpret a 16-bit register value as two's complement."""
    raw &= 0xFFFF
    return raw - 0x10000 if raw & 0x8000 else raw


def current_lsb_a(calibration: int, shunt_ohms: float) -> float:
    """Return the current register's LSB in amperes for a calibration value and shunt."""
    if calibration <= 0 or shunt_ohms <= 0:
        raise ValueError(
            f"calibration ({calibration}) and shunt_ohms ({shunt_ohms}) must be positive"
        )
    return CALIBRATION_SCALE / (calibration * shunt_ohms)


def decode_bus_voltage(raw: int) -> float:
    """Return the bus voltage in volts from the bus voltage register."""
    return ((raw & 0xFFFF) >> 3) * BUS_LSB_V


def decode_shunt_voltage(raw: int) -> float:
    """Return the shunt voltage in volts from the (signed) shunt voltage register."""
    return to_signed16(raw) * SHUNT_LSB_V


def decode_current(raw: int, lsb_a: float) -> float:
    """Return the current in amperes from the (signed) current register."""
    return to_signed16(raw) * lsb_a


def decode_power(raw: int, lsb_a: float) -> float:
    """Return the power in watts from the (unsigned) power register."""
    return (raw & 0xFFFF) * 20.0 * lsb_a


class SMBusLike(Protocol):
    """The smbus2 ``SMBus`` methods this driver uses."""

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        """Read ``length`` bytes starting at ``register``."""
        ...

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: list[int]) -> None:
        """Write bytes starting at ``register``."""
        ...

    def close(self) -> None:
        """Close the bus."""
        ...


@dataclasses.dataclass(frozen=True)
class Reading:
    """One set of INA219 measurements.

    Attributes:
        bus_voltage_v: Voltage on VIN- (the load side) in volts.
        shunt_voltage_v: Voltage across the shunt in volts (signed).
        current_a: Current in amperes (signed; positive into VIN+).
        power_w: Power in watts.
        overflow: The chip's math overflow flag (current/power out of range); current and
            power are then computed from the shunt and bus voltages instead.
    """

    bus_voltage_v: float
    shunt_voltage_v: float
    current_a: float
    power_w: float
    overflow: bool


class INA219:
    """An INA219 on an SMBus, with 16-bit big-endian register access.

    Args:
        bus: An open ``smbus2.SMBus`` (or anything with the same block methods).
        address: 7-bit I2C address.
        shunt_ohms: Shunt resistance.
        calibration: Calibration register value.
        config: Configuration register value.
    """

    def __init__(
        self,
        bus: SMBusLike,
        address: int,
        *,
        shunt_ohms: float = UPS_HAT_B_SHUNT_OHMS,
        calibration: int = UPS_HAT_B_CALIBRATION,
        config: int = UPS_HAT_B_CONFIG,
    ) -> None:
        if not 0 < calibration <= 0xFFFE:
            raise ValueError(f"calibration {calibration} must be in 1..65534")
        self._bus = bus
        self._address = address
        self._calibration = calibration & 0xFFFE  # bit 0 of the register is always 0
        self._config = config & 0x7FFF
        self._shunt_ohms = shunt_ohms
        self._lsb_a = current_lsb_a(self._calibration, shunt_ohms)

    @property
    def current_lsb_a(self) -> float:
        """Current register LSB in amperes."""
        return self._lsb_a

    @property
    def calibration(self) -> int:
        """Calibration register value written by :meth:`configure`."""
        return self._calibration

    def read_register(self, register: int) -> int:
        """Read one 16-bit register (sent MSB first).

        Raises:
            OSError: If the transfer fails (errno 121 when nothing answers).
        """
        data = self._bus.read_i2c_block_data(self._address, register, 2)
        if len(data) != 2:
            raise OSError(f"INA219 register {register:#04x}: expected 2 bytes, got {data!r}")
        return ((data[0] & 0xFF) << 8) | (data[1] & 0xFF)

    def write_register(self, register: int, value: int) -> None:
        """Write one 16-bit register (MSB first)."""
        self._bus.write_i2c_block_data(self._address, register, [(value >> 8) & 0xFF, value & 0xFF])

    def configure(self) -> None:
        """Write the calibration and configuration registers."""
        self.write_register(REG_CALIBRATION, self._calibration)
        self.write_register(REG_CONFIG, self._config)

    def is_configured(self) -> bool:
        """Return True if the chip still holds our calibration (False after a reset)."""
        return self.read_register(REG_CALIBRATION) == self._calibration

    def read(self) -> Reading:
        """Read shunt, bus, current and power registers."""
        shunt = self.read_register(REG_SHUNT_VOLTAGE)
        bus = self.read_register(REG_BUS_VOLTAGE)
        current = self.read_register(REG_CURRENT)
        power = self.read_register(REG_POWER)
        bus_v = decode_bus_voltage(bus)
        shunt_v = decode_shunt_voltage(shunt)
        overflow = bool(bus & 0x1)
        if overflow:
            # The chip's current/power math saturated (above ~5 A with the UPS HAT B
            # calibration); the shunt voltage still holds the truth up to the PGA range.
            current_a = shunt_v / self._shunt_ohms
            power_w = abs(current_a) * bus_v
        else:
            current_a = decode_current(current, self._lsb_a)
            power_w = decode_power(power, self._lsb_a)
        return Reading(
            bus_voltage_v=bus_v,
            shunt_voltage_v=shunt_v,
            current_a=current_a,
            power_w=power_w,
            overflow=overflow,
        )
