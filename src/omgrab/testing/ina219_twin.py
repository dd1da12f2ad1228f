"""A register-level INA219 twin on a fake SMBus, for battery monitor tests.

:class:`INA219Twin` holds the chip's registers and computes the measurement registers from a
simulated bus voltage and current the way the chip does (shunt counts of 10 uV clipped to the
PGA range, bus counts of 4 mV, ``current = shunt * cal / 4096``, ``power = current * bus /
5000``); with no calibration written, current and power read 0 as on a freshly reset chip.
:class:`FakeI2CBus` is an I2C adapter with devices at addresses; its :meth:`FakeI2CBus.open`
returns :class:`FakeSMBus` handles offering the smbus2 methods (block and word transfers).
A device that is absent raises ``OSError(errno.EREMOTEIO)`` (121, "Remote I/O error"), like a
missing chip on Linux; a missing adapter raises ``FileNotFoundError`` for ``/dev/i2c-N``.
"""

from __future__ import annotations

import errno
import threading
from typing import Protocol

from omgrab.hardware import ina219


class I2CDevice(Protocol):
    """A device on the fake bus, addressed by 16-bit registers."""

    def read_register(self, register: int) -> int:
        """Return a 16-bit register value."""
        ...

    def write_register(self, register: int, value: int) -> None:
        """Write a 16-bit register value."""
        ...


def _remote_io_error() -> OSError:
    return OSError(errno.EREMOTEIO, "Remote I/O error")


class INA219Twin:
    """Simulated INA219 registers driven by a simulated battery.

    Args:
        bus_voltage_v: Voltage on VIN- (the load side).
        current_a: Current through the shunt, positive when the battery charges.
        shunt_ohms: Shunt resistance (0.01 ohm on the UPS HAT B).
    """

    def __init__(
        self,
        bus_voltage_v: float = 7.4,
        current_a: float = -0.5,
        shunt_ohms: float = ina219.UPS_HAT_B_SHUNT_OHMS,
    ) -> None:
        self.bus_voltage_v = bus_voltage_v
        self.current_a = current_a
        self.shunt_ohms = shunt_ohms
        self.present = True
        self.reads = 0
        self.writes: list[tuple[int, int]] = []
        self._config = ina219.POWER_ON_CONFIG
        self._calibration = 0
        self._held: dict[int, int] | None = None

    # -- test side ------------------------------------------------------------------------

    def power_on_reset(self) -> None:
        """Reset every register to its power-on value (as after a brown-out)."""
        self._config = ina219.POWER_ON_CONFIG
        self._calibration = 0
        self._held = None

    def remove(self) -> None:
        """Make the chip stop answering (unplugged HAT)."""
        self.present = False

    def attach(self) -> None:
        """Make the chip answer again; it comes back from power-on reset."""
        self.present = True
        self.power_on_reset()

    @property
    def config(self) -> int:
        """Configuration register."""
        return self._config

    @property
    def calibration(self) -> int:
        """Calibration register."""
        return self._calibration

    # -- chip side ------------------------------------------------------------------------

    def read_register(self, register: int) -> int:
        """Return a register value as the chip would."""
        if not self.present:
            raise _remote_io_error()
        self.reads += 1
        if register == ina219.REG_CONFIG:
            return self._config
        if register == ina219.REG_CALIBRATION:
            return self._calibration
        if register not in (
            ina219.REG_SHUNT_VOLTAGE,
            ina219.REG_BUS_VOLTAGE,
            ina219.REG_POWER,
            ina219.REG_CURRENT,
        ):
            raise OSError(errno.EIO, f"INA219 has no register {register:#04x}")
        mode = self._config & 0x7
        if mode in (ina219.Mode.POWER_DOWN, ina219.Mode.ADC_OFF) and self._held is not None:
            return self._held[register]
        values = self._measure()
        self._held = values
        return values[register]

    def write_register(self, register: int, value: int) -> None:
        """Write a register as the chip would (read-only registers ignore writes)."""
        if not self.present:
            raise _remote_io_error()
        value &= 0xFFFF
        self.writes.append((register, value))
        if register == ina219.REG_CONFIG:
            if value & ina219.CONFIG_RESET_BIT:
                self.power_on_reset()
            else:
                self._config = value
        elif register == ina219.REG_CALIBRATION:
            self._calibration = value & 0xFFFE
        elif register > ina219.REG_CALIBRATION:
            raise OSError(errno.EIO, f"INA219 has no register {register:#04x}")

    def _measure(self) -> dict[int, int]:
        gain = (self._config >> 11) & 0x3
        shunt_limit = 4000 << gain  # +-40 mV * 2**gain in 10 uV counts
        shunt = round(self.current_a * self.shunt_ohms / ina219.SHUNT_LSB_V)
        shunt = max(-shunt_limit, min(shunt_limit, shunt))
        full_scale_v = 32.0 if (self._config >> 13) & 0x1 else 16.0
        bus_counts = round(max(0.0, min(full_scale_v, self.bus_voltage_v)) / ina219.BUS_LSB_V)
        current = int(shunt * self._calibration / 4096)
        overflow = not -0x8000 <= current <= 0x7FFF
        current = max(-0x8000, min(0x7FFF, current))
        power = abs(current) * bus_counts // 5000
        overflow = overflow or power > 0xFFFF
        power = min(power, 0xFFFF)
        bus = (bus_counts << 3) | 0x2 | (0x1 if overflow else 0x0)  # CNVR set
        return {
            ina219.REG_SHUNT_VOLTAGE: shunt & 0xFFFF,
            ina219.REG_BUS_VOLTAGE: bus,
            ina219.REG_CURRENT: current & 0xFFFF,
            ina219.REG_POWER: power,
        }


class FakeI2CBus:
    """An I2C adapter (``/dev/i2c-N``) with simulated devices.

    Args:
        bus_number: The adapter's number.
    """

    def __init__(self, bus_number: int = 1) -> None:
        self.bus_number = bus_number
        self.exists = True
        self.devices: dict[int, I2CDevice] = {}
        self.opened = 0
        self.log: list[tuple[str, int, int, tuple[int, ...]]] = []
        self._lock = threading.Lock()  # serialises transfers, as the kernel does

    def attach(self, address: int, device: I2CDevice) -> None:
        """Put a device at ``address``."""
        self.devices[address] = device

    def open(self, bus_number: int) -> FakeSMBus:
        """Open the adapter like ``smbus2.SMBus(bus_number)``; usable as a ``bus_factory``.

        Raises:
            FileNotFoundError: If ``bus_number`` is not this adapter or it does not exist.
        """
        path = f"/dev/i2c-{bus_number}"
        if bus_number != self.bus_number or not self.exists:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        self.opened += 1
        return FakeSMBus(self)

    def _transfer_read(self, address: int, register: int) -> int:
        with self._lock:
            device = self.devices.get(address)
            if device is None:
                raise _remote_io_error()
            return device.read_register(register)

    def _transfer_write(self, address: int, register: int, value: int) -> None:
        with self._lock:
            device = self.devices.get(address)
            if device is None:
                raise _remote_io_error()
            device.write_register(register, value)


class FakeSMBus:
    """An open handle on a :class:`FakeI2CBus`, with the smbus2 ``SMBus`` methods used here.

    Word transfers follow SMBus byte order (low byte first), so ``read_word_data`` on a chip
    that sends its MSB first returns the byte-swapped value, exactly as on hardware.
    """

    def __init__(self, adapter: FakeI2CBus) -> None:
        self._adapter = adapter
        self.closed = False

    def read_i2c_block_data(
        self, i2c_addr: int, register: int, length: int, force: bool | None = None
    ) -> list[int]:
        """Read ``length`` bytes of a 16-bit register, MSB first (longer reads repeat it)."""
        self._check_open()
        if not 0 < length <= 32:
            raise ValueError(f"block length {length} must be in 1..32")
        value = self._adapter._transfer_read(i2c_addr, register)
        data = [(value >> 8) & 0xFF, value & 0xFF] * ((length + 1) // 2)
        data = data[:length]
        self._adapter.log.append(("read_block", i2c_addr, register, tuple(data)))
        return data

    def write_i2c_block_data(
        self, i2c_addr: int, register: int, data: list[int], force: bool | None = None
    ) -> None:
        """Write a 16-bit register as two bytes, MSB first."""
        self._check_open()
        if len(data) != 2 or any(not 0 <= b <= 0xFF for b in data):
            raise ValueError(f"expected two bytes for a 16-bit register, got {data!r}")
        self._adapter._transfer_write(i2c_addr, register, (data[0] << 8) | data[1])
        self._adapter.log.append(("write_block", i2c_addr, register, tuple(data)))

    def read_word_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        """SMBus read word: the first byte on the wire is the low byte of the result."""
        self._check_open()
        value = self._adapter._transfer_read(i2c_addr, register)
        self._adapter.log.append(("read_word", i2c_addr, register, (value,)))
        return ((value & 0xFF) << 8) | (value >> 8)

    def write_word_data(
        self, i2c_addr: int, register: int, value: int, force: bool | None = None
    ) -> None:
        """SMBus write word: the low byte of ``value`` goes first on the wire."""
        self._check_open()
        wire = ((value & 0xFF) << 8) | ((value >> 8) & 0xFF)
        self._adapter._transfer_write(i2c_addr, register, wire)
        self._adapter.log.append(("write_word", i2c_addr, register, (value,)))

    def close(self) -> None:
        """Close the handle."""
        self.closed = True

    def __enter__(self) -> FakeSMBus:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self.closed:
            raise OSError(errno.EBADF, "Bad file descriptor (SMBus closed)")


def ups_hat_b(
    bus_voltage_v: float = 7.4, current_a: float = -0.5, address: int = 0x42, bus_number: int = 1
) -> tuple[FakeI2CBus, INA219Twin]:
    """Return an I2C adapter with an INA219 twin at the UPS HAT B's address."""
    adapter = FakeI2CBus(bus_number)
    chip = INA219Twin(bus_voltage_v=bus_voltage_v, current_a=current_a)
    adapter.attach(address, chip)
    return adapter, chip
