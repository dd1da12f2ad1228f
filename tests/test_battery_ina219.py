from __future__ import annotations

import errno

import hypothesis
import pytest
from hypothesis import strategies as st

from omgrab.hardware import ina219
from omgrab.testing import ina219_twin

LSB: float = ina219.current_lsb_a(ina219.UPS_HAT_B_CALIBRATION, ina219.UPS_HAT_B_SHUNT_OHMS)


def test_ups_hat_b_constants() -> None:
    # 32 V range, PGA /8, 12-bit x32 on both ADCs, continuous shunt+bus
    assert ina219.UPS_HAT_B_CONFIG == 0x3EEF
    assert ina219.UPS_HAT_B_CALIBRATION == 26868
    assert ina219.current_lsb_a(26868, 0.01) == pytest.approx(0.15245e-3, rel=1e-4)


@pytest.mark.parametrize(
    ("raw", "volts"),
    [(0x39D2, 7.4), (0x0000, 0.0), (0x4B03, 9.6), (0xFFF8, 8191 * 0.004)],
)
def test_bus_voltage_uses_bits_15_to_3(raw: int, volts: float) -> None:
    assert ina219.decode_bus_voltage(raw) == pytest.approx(volts)


def test_signed_registers() -> None:
    assert ina219.to_signed16(0x7FFF) == 32767
    assert ina219.to_signed16(0x8000) == -32768
    assert ina219.to_signed16(0xFE0C) == -500
    assert ina219.decode_shunt_voltage(0xFE0C) == pytest.approx(-0.005)
    assert ina219.decode_shunt_voltage(0x01F4) == pytest.approx(0.005)
    assert ina219.decode_current(0xF331, LSB) == pytest.approx(-3279 * LSB)
    assert ina219.decode_current(0xF331, LSB) == pytest.approx(-0.49988, abs=1e-4)
    assert ina219.decode_power(1213, LSB) == pytest.approx(3.6986, abs=1e-3)


def test_bad_calibration_is_rejected() -> None:
    with pytest.raises(ValueError, match="calibration"):
        ina219.current_lsb_a(0, 0.01)
    adapter, _ = ina219_twin.ups_hat_b()
    with pytest.raises(ValueError, match="calibration 70000"):
        ina219.INA219(adapter.open(1), 0x42, calibration=70000)


def test_twin_computes_registers_like_the_chip() -> None:
    adapter, chip = ina219_twin.ups_hat_b(bus_voltage_v=7.4, current_a=-0.5)
    driver = ina219.INA219(adapter.open(1), 0x42)
    # before calibration: shunt and bus are measured, current and power read 0
    assert driver.read_register(ina219.REG_CURRENT) == 0
    assert driver.read_register(ina219.REG_SHUNT_VOLTAGE) == 0xFE0C
    driver.configure()
    assert chip.config == 0x3EEF
    assert chip.calibration == 26868
    assert driver.read_register(ina219.REG_BUS_VOLTAGE) == 0x39D2  # 1850 << 3 | CNVR
    assert driver.read_register(ina219.REG_CURRENT) == 0xF331  # -500 * 26868 / 4096
    assert driver.read_register(ina219.REG_POWER) == 1213  # 3279 * 1850 / 5000
    reading = driver.read()
    assert reading.bus_voltage_v == pytest.approx(7.4)
    assert reading.current_a == pytest.approx(-0.5, abs=2e-4)
    assert reading.power_w == pytest.approx(3.7, abs=3e-3)
    assert reading.overflow is False


def test_twin_clips_shunt_to_pga_range_and_flags_overflow() -> None:
    adapter, chip = ina219_twin.ups_hat_b(current_a=-40.0)
    driver = ina219.INA219(adapter.open(1), 0x42)
    driver.configure()
    assert driver.read().shunt_voltage_v == pytest.approx(-0.32)  # PGA /8 limit
    driver.write_register(ina219.REG_CONFIG, ina219.UPS_HAT_B_CONFIG & ~0x1800)  # PGA /1
    assert driver.read().shunt_voltage_v == pytest.approx(-0.04)
    chip.current_a = 0.0
    chip.bus_voltage_v = 40.0  # above the 32 V range
    assert driver.read().bus_voltage_v == pytest.approx(32.0)


def test_word_transfers_are_little_endian_on_the_wire() -> None:
    adapter, chip = ina219_twin.ups_hat_b()
    bus = adapter.open(1)
    assert bus.read_word_data(0x42, ina219.REG_CONFIG) == 0x9F39  # 0x399F byte-swapped
    bus.write_word_data(0x42, ina219.REG_CALIBRATION, 0xF468)
    assert chip.calibration == 0x68F4


def test_absent_chip_and_bus() -> None:
    adapter, chip = ina219_twin.ups_hat_b()
    bus = adapter.open(1)
    chip.remove()
    with pytest.raises(OSError) as info:
        bus.read_i2c_block_data(0x42, 0, 2)
    assert info.value.errno == errno.EREMOTEIO
    with pytest.raises(OSError) as info:
        bus.read_i2c_block_data(0x40, 0, 2)  # nothing at that address
    assert info.value.errno == errno.EREMOTEIO
    with pytest.raises(FileNotFoundError, match="/dev/i2c-3"):
        adapter.open(3)
    chip.attach()
    assert chip.calibration == 0  # came back from power-on reset
    bus.close()
    with pytest.raises(OSError, match="closed"):
        bus.read_i2c_block_data(0x42, 0, 2)


def test_reset_bit_restores_power_on_values() -> None:
    adapter, chip = ina219_twin.ups_hat_b()
    driver = ina219.INA219(adapter.open(1), 0x42)
    driver.configure()
    assert driver.is_configured()
    driver.write_register(ina219.REG_CONFIG, ina219.CONFIG_RESET_BIT)
    assert chip.config == ina219.POWER_ON_CONFIG
    assert not driver.is_configured()


@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(
    volts=st.floats(min_value=0.0, max_value=26.0),
    amps=st.floats(min_value=-31.0, max_value=31.0),
)
def test_driver_recovers_what_the_twin_simulates(volts: float, amps: float) -> None:
    adapter, _ = ina219_twin.ups_hat_b(bus_voltage_v=volts, current_a=amps)
    driver = ina219.INA219(adapter.open(1), 0x42)
    driver.configure()
    reading = driver.read()
    assert reading.bus_voltage_v == pytest.approx(volts, abs=0.002 + 1e-9)
    assert reading.shunt_voltage_v == pytest.approx(amps * 0.01, abs=5e-6 + 1e-12)
    # current register: shunt quantised to 10 uV then truncated to whole current LSBs; above
    # ~5 A the chip's math overflows and the driver falls back to the shunt voltage
    if abs(amps) < 4.99:
        assert reading.overflow is False
    elif abs(amps) > 5.0:
        assert reading.overflow is True
    assert reading.current_a == pytest.approx(amps, abs=0.0005 + 2 * LSB)
    # bus voltage is truncated to 4 mV steps, so power may be off by up to |I| * 4 mV too
    tolerance = 0.05 + 0.004 * abs(amps) + 0.001 * abs(amps * volts)
    assert reading.power_w == pytest.approx(abs(amps) * volts, abs=tolerance)


def test_current_overflow_falls_back_to_shunt_voltage() -> None:
    adapter, _ = ina219_twin.ups_hat_b(bus_voltage_v=7.0, current_a=6.0)
    driver = ina219.INA219(adapter.open(1), 0x42)
    driver.configure()
    assert driver.read_register(ina219.REG_BUS_VOLTAGE) & 0x1  # OVF
    assert ina219.decode_current(driver.read_register(ina219.REG_CURRENT), LSB) < 5.0
    reading = driver.read()
    assert reading.overflow is True
    assert reading.current_a == pytest.approx(6.0)
    assert reading.power_w == pytest.approx(42.0)
