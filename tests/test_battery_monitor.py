from __future__ import annotations

import threading

import pytest

from omgrab import clock
from omgrab.hardware import ina219
from omgrab.runtime import battery_monitor
from omgrab.testing import ina219_twin


@pytest.fixture
def hat() -> tuple[ina219_twin.FakeI2CBus, ina219_twin.INA219Twin]:
    return ina219_twin.ups_hat_b(bus_voltage_v=7.4, current_a=-0.5)


def _monitor(
    adapter: ina219_twin.FakeI2CBus, source: clock.ManualTimeSource | None = None, **kwargs: object
) -> battery_monitor.BatteryMonitor:
    return battery_monitor.BatteryMonitor(
        bus_factory=adapter.open,
        clock=source or clock.ManualTimeSource(),
        **kwargs,  # type: ignore[arg-type]
    )


def test_defaults_match_the_seed() -> None:
    import inspect

    params = inspect.signature(battery_monitor.BatteryMonitor).parameters
    assert params["i2c_bus"].default == 1
    assert params["i2c_addr"].default == 0x42
    assert params["min_voltage"].default == 6.0
    assert params["max_voltage"].default == 8.4
    assert params["reconnect_interval_s"].default == 30.0


def test_calibration_and_config_written_on_connect(
    hat: tuple[ina219_twin.FakeI2CBus, ina219_twin.INA219Twin],
) -> None:
    adapter, chip = hat
    monitor = _monitor(adapter)
    assert monitor.available
    writes = [entry for entry in adapter.log if entry[0] == "write_block"]
    assert writes == [
        ("write_block", 0x42, ina219.REG_CALIBRATION, (0x68, 0xF4)),  # 26868, MSB first
        ("write_block", 0x42, ina219.REG_CONFIG, (0x3E, 0xEF)),
    ]
    assert chip.calibration == 26868


def test_status_decodes_volts_amps_watts_percent(
    hat: tuple[ina219_twin.FakeI2CBus, ina219_twin.INA219Twin],
) -> None:
    adapter, _ = hat
    status = _monitor(adapter).get_status()
    assert status is not None
    assert status.voltage_v == pytest.approx(7.4)
    assert status.current_a == pytest.approx(-0.5, abs=2e-4)
    assert status.power_w == pytest.approx(3.7, abs=3e-3)
    assert status.percent == pytest.approx((7.4 - 6.0) / 2.4 * 100)
    assert status.charging is False
    assert str(status) == "58.3% 7.40 V -0.500 A (discharging) 3.70 W"


def test_current_positive_when_charging(
    hat: tuple[ina219_twin.FakeI2CBus, ina219_twin.INA219Twin],
) -> None:
    adapter, chip = hat
    chip.current_a = 1.25
    chip.bus_voltage_v = 8.1
    status = _monitor(adapter).get_status()
    assert status is not None
    assert status.current_a == pytest.approx(1.25, abs=5e-4)
    assert status.charging is True
    assert "(charging)" in str(status)


@pytest.mark.parametrize(("volts", "percent"), [(5.2, 0.0), (6.0, 0.0), (7.2, 50.0), (9.0, 100.0)])
def test_percent_is_clamped(
    hat: tuple[ina219_twin.FakeI2CBus, ina219_twin.INA219Twin], volts: float, percent: float
) -> None:
    adapter, chip = hat
    chip.bus_voltage_v = volts
    status = _monitor(adapter).get_status()
    assert status is not None
    assert status.percent == pytest.approx(percent)


def test_custom_voltage_range(hat: tuple[ina219_twin.FakeI2CBus, ina219_twin.INA219Twin]) -> None:
    adapter, chip = hat
    chip.bus_voltage_v = 3.6
    status = _monitor(adapter, min_voltage=3.0, max_voltage=4.2).get_status()
    assert status is not None
    assert status.percent == pytest.approx(50.0)


def test_missing_chip_returns_none_and_reconnects_after_interval(
    hat: tuple[ina219_twin.FakeI2CBus, ina219_twin.INA219Twin],
) -> None:
    adapter, chip = hat
    chip.remove()
    source = clock.ManualTimeSource()
    monitor = _monitor(adapter, source)
    assert monitor.available is False
    assert monitor.get_status() is None
    assert monitor.connect_attempts == 1
    assert "Remote I/O error" in (monitor.last_error or "")
    chip.attach()
    source.advance(29.9)
    assert monitor.get_status() is None  # not retried before the interval
    assert monitor.connect_attempts == 1
    source.advance(0.1)
    status = monitor.get_status()
    assert status is not None and status.voltage_v == pytest.approx(7.4)
    assert monitor.available
    assert monitor.connect_attempts == 2


def test_custom_reconnect_interval(
    hat: tuple[ina219_twin.FakeI2CBus, ina219_twin.INA219Twin],
) -> None:
    adapter, chip = hat
    chip.remove()
    source = clock.ManualTimeSource()
    monitor = _monitor(adapter, source, reconnect_interval_s=5.0)
    for _ in range(4):
        source.advance(5.0)
        assert monitor.get_status() is None
    assert monitor.connect_attempts == 5


def test_missing_i2c_adapter(hat: tuple[ina219_twin.FakeI2CBus, ina219_twin.INA219Twin]) -> None:
    adapter, _ = hat
    monitor = battery_monitor.BatteryMonitor(
        i2c_bus=7, bus_factory=adapter.open, clock=clock.ManualTimeSource()
    )
    assert monitor.available is False
    assert monitor.get_status() is None
    assert "/dev/i2c-7" in (monitor.last_error or "")


def test_read_failure_returns_none_retries_once_then_waits(
    hat: tuple[ina219_twin.FakeI2CBus, ina219_twin.INA219Twin],
) -> None:
    adapter, chip = hat
    source = clock.ManualTimeSource()
    monitor = _monitor(adapter, source)
    assert monitor.get_status() is not None
    chip.remove()
    assert monitor.get_status() is None
    assert monitor.read_failures == 1
    assert monitor.available is False
    assert monitor.get_status() is None  # the immediate retry fails too
    assert monitor.connect_attempts == 2
    chip.attach()
    assert monitor.get_status() is None  # now waiting for the interval
    source.advance(30.0)
    assert monitor.get_status() is not None
    assert monitor.connect_attempts == 3


def test_transient_read_failure_recovers_on_next_call(
    hat: tuple[ina219_twin.FakeI2CBus, ina219_twin.INA219Twin],
) -> None:
    adapter, chip = hat
    monitor = _monitor(adapter)
    chip.remove()
    assert monitor.get_status() is None
    chip.attach()
    status = monitor.get_status()
    assert status is not None
    assert status.current_a == pytest.approx(-0.5, abs=2e-4)  # re-calibrated on reconnect


def test_lost_calibration_is_rewritten(
    hat: tuple[ina219_twin.FakeI2CBus, ina219_twin.INA219Twin],
) -> None:
    adapter, chip = hat
    monitor = _monitor(adapter)
    chip.power_on_reset()  # brown-out: calibration back to 0, current would read 0
    status = monitor.get_status()
    assert status is not None
    assert status.current_a == pytest.approx(-0.5, abs=2e-4)
    assert monitor.recalibrations == 1
    assert chip.config == 0x3EEF


def test_real_smbus2_without_i2c_device() -> None:
    pytest.importorskip("smbus2")
    monitor = battery_monitor.BatteryMonitor(i2c_bus=97, clock=clock.ManualTimeSource())
    assert monitor.available is False
    assert monitor.get_status() is None
    assert "/dev/i2c-97" in (monitor.last_error or "")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_voltage": 8.4, "max_voltage": 6.0}, "max_voltage"),
        ({"i2c_addr": 0x90}, "0x90"),
        ({"reconnect_interval_s": 0}, "reconnect_interval_s"),
        ({"min_voltage": float("nan")}, "finite"),
        ({"calibration": 0}, "calibration"),
    ],
)
def test_bad_arguments(
    hat: tuple[ina219_twin.FakeI2CBus, ina219_twin.INA219Twin],
    kwargs: dict[str, object],
    match: str,
) -> None:
    adapter, _ = hat
    with pytest.raises(ValueError, match=match):
        _monitor(adapter, **kwargs)


def test_concurrent_readers(hat: tuple[ina219_twin.FakeI2CBus, ina219_twin.INA219Twin]) -> None:
    adapter, _ = hat
    monitor = _monitor(adapter)
    results: list[battery_monitor.BatteryStatus | None] = []
    lock = threading.Lock()

    def reader() -> None:
        for _ in range(50):
            status = monitor.get_status()
            with lock:
                results.append(status)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 200
    assert all(r is not None and r.voltage_v == pytest.approx(7.4) for r in results)


def test_close_then_reconnect(hat: tuple[ina219_twin.FakeI2CBus, ina219_twin.INA219Twin]) -> None:
    adapter, _ = hat
    source = clock.ManualTimeSource()
    with _monitor(adapter, source) as monitor:
        assert monitor.available
    assert monitor.available is False
    source.advance(30.0)
    assert monitor.get_status() is not None
