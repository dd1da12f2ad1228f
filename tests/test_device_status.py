"""DeviceStatusManager: aggregation, health, battery, network, cache, status file and worker."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import pathlib
import random
import sys
import threading
import types
from typing import Any

import pytest

from omgrab import clock
from omgrab.hardware import system_metrics
from omgrab.runtime import device_status as ds
from omgrab.runtime import network_monitor as nm


class StaticMetrics:
    """A SystemMetricsProvider with fixed readings (a twin of the host, not of the code)."""

    def __init__(self) -> None:
        self.calls = 0
        self.storage_paths: list[pathlib.Path] = []
        self.fail: set[str] = set()

    def _tick(self, name: str) -> None:
        self.calls += 1
        if name in self.fail:
            raise OSError(f"{name} sensor unplugged")

    def get_storage_info(self, path: pathlib.Path) -> ds.StorageInfo:
        self._tick("storage")
        self.storage_paths.append(path)
        return ds.StorageInfo(100_000, 25_000, 75_000, 25.0)

    def get_cpu_info(self) -> ds.CPUInfo:
        self._tick("cpu")
        return ds.CPUInfo(51.5, 12.5, [10.0, 15.0])

    def get_memory_info(self) -> ds.MemoryInfo:
        self._tick("memory")
        return ds.MemoryInfo(8 * 2**30, 2 * 2**30, 6 * 2**30, 25.0)

    def get_wifi_ssid(self) -> str | None:
        self._tick("ssid")
        return "field-lab"

    def get_wifi_signal_strength(self) -> int | None:
        self._tick("signal")
        return -62


class State:
    def __init__(self, state: Any = "idle") -> None:
        self.state = state

    def get_current_state(self) -> Any:
        return self.state


class Recorder:
    """Duck-typed recording manager, shaped like omgrab.runtime.recording_manager's."""

    def __init__(self) -> None:
        self.is_recording = False
        self.active_recording_id: str | None = None
        self.recording_started_at: datetime.datetime | None = None
        self.last_error: str | None = None


class Device:
    """A CaptureDevice-shaped twin with a settable plug state."""

    def __init__(self, label: str, connected: bool = True, ready: bool = False) -> None:
        self.label = label
        self.connected = connected
        self.ready = ready


class Battery:
    def __init__(self, reading: Any = None, error: Exception | None = None) -> None:
        self.reading = reading
        self.error = error
        self.available = reading is not None

    def get_status(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.reading


@dataclasses.dataclass
class Reading:
    voltage_v: float
    current_a: float
    power_w: float
    percent: float


def make_manager(tmp_path: pathlib.Path, **kwargs: Any) -> ds.DeviceStatusManager:
    kwargs.setdefault("enable_battery_monitor", False)
    metrics = kwargs.pop("metrics", None) or StaticMetrics()
    return ds.DeviceStatusManager("rig-7", "1.2.3", tmp_path / "spool", metrics, **kwargs)


# ---------------------------------------------------------------- dataclasses


def test_dataclass_fields_are_exactly_the_seed_ones() -> None:
    def names(cls: type) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    assert names(ds.StorageInfo) == ["total_bytes", "used_bytes", "available_bytes", "used_percent"]
    assert names(ds.CPUInfo) == ["temperature_celsius", "usage_percent", "usage_per_core"]
    assert names(ds.MemoryInfo) == ["total_bytes", "used_bytes", "available_bytes", "used_percent"]
    assert names(ds.NetworkInfo) == ["status", "wifi_ssid", "wifi_signal_strength"]
    assert names(ds.RecordingInfo) == ["is_recording", "recording_id", "duration_seconds"]
    assert names(ds.BatteryInfo) == ["percent", "voltage_v", "current_a", "power_w", "is_charging"]
    assert names(ds.DeviceStatus) == [
        "device_id", "software_version", "uptime_seconds", "state_machine_state", "storage",
        "cpu", "memory", "network", "recording", "device_healthy", "device_error", "battery",
    ]  # fmt: skip


def test_human_readable_strings() -> None:
    assert str(ds.CPUInfo(48.25, 33.3, [30.0, 36.6])) == "CPU: 33.3% [30%, 37%], 48.2°C"
    assert str(ds.CPUInfo(None, 5.0, [])) == "CPU: 5.0%, temp n/a"
    mem = ds.MemoryInfo(4 * 2**30, 3 * 2**30, 2**30, 75.0)
    assert str(mem) == "Memory: 3072 MiB used of 4096 MiB (75.0%)"
    bat = ds.BatteryInfo(81.6, 8.01, -0.52, 4.17, False)
    assert str(bat) == "Battery: 82% (8.01 V, -0.52 A, 4.17 W, discharging)"
    assert "charging)" in str(ds.BatteryInfo(50, 7.5, 0.8, 6.0, True))
    assert "25.0% used" in str(ds.StorageInfo(4 * 2**30, 2**30, 3 * 2**30, 25.0))


def test_network_info_rejects_unknown_status() -> None:
    with pytest.raises(ValueError, match=r"NetworkInfo\.status"):
        ds.NetworkInfo("connected", None, None)


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="device_id"):
        ds.DeviceStatusManager("", "1", pathlib.Path("/tmp"), StaticMetrics())
    with pytest.raises(TypeError, match="get_cpu_info"):
        ds.DeviceStatusManager("d", "1", pathlib.Path("/tmp"), object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="update_interval_s"):
        ds.DeviceStatusManager("d", "1", pathlib.Path("/tmp"), StaticMetrics(), update_interval_s=0)
    assert isinstance(StaticMetrics(), ds.SystemMetricsProvider)
    assert isinstance(system_metrics.LinuxSystemMetrics(), ds.SystemMetricsProvider)
    assert isinstance(State(), ds.StateProvider)


# ---------------------------------------------------------------- aggregation


def test_status_with_nothing_wired(tmp_path: pathlib.Path) -> None:
    metrics = StaticMetrics()
    manager = make_manager(tmp_path, metrics=metrics)
    status = manager.get_status()
    assert status.device_id == "rig-7" and status.software_version == "1.2.3"
    assert status.state_machine_state == "unknown"
    assert status.storage == ds.StorageInfo(100_000, 25_000, 75_000, 25.0)
    assert metrics.storage_paths == [tmp_path / "spool"]
    assert status.cpu.temperature_celsius == 51.5
    assert status.network == ds.NetworkInfo("unknown", "field-lab", -62)
    assert status.recording == ds.RecordingInfo(False, None, None)
    assert status.device_healthy and status.device_error is None
    assert status.battery is None


def test_uptime_and_recording_duration_follow_the_device_clock(tmp_path: pathlib.Path) -> None:
    source = clock.ManualTimeSource()
    device_clock = clock.DeviceClock(source)
    manager = make_manager(tmp_path, clock=device_clock)
    recorder = Recorder()
    manager.set_recording_manager(recorder)
    manager.set_state_machine(State("recording"))
    source.advance(3.0)
    assert manager.get_status().uptime_seconds == 3.0

    recorder.is_recording = True
    recorder.active_recording_id = "20261122T023000Z-a1b2"
    recorder.recording_started_at = device_clock.now()
    source.advance(12.5)
    source.step_wall(-3600)  # an NTP step must not change the duration
    status = manager.get_status()
    assert status.recording == ds.RecordingInfo(True, "20261122T023000Z-a1b2", 12.5)
    assert status.state_machine_state == "recording"
    assert status.uptime_seconds == 15.5


def test_state_machine_enum_state_is_reported_by_value(tmp_path: pathlib.Path) -> None:
    from omgrab.workflows import states

    manager = make_manager(tmp_path)
    manager.set_state_machine(State(states.WorkflowState.WIFI_SETUP))
    assert manager.get_status().state_machine_state == "wifi_setup"


def test_network_status_comes_from_the_monitor_snapshot(tmp_path: pathlib.Path) -> None:
    result = nm.ProbeResult(nm.Status.NETWORK_ONLY, "dns failing")
    monitor = nm.NetworkMonitor(nm.Config(), probe=lambda: result, rng=random.Random(1))
    manager = make_manager(tmp_path)
    manager.set_network_monitor(monitor)
    assert manager.get_status().network.status == "offline"
    monitor.poll()
    assert manager.get_status().network.status == "network_only"
    result = nm.ProbeResult(nm.Status.ONLINE, "ok")
    monitor.poll()
    assert manager.get_status().network.status == "online"


# ---------------------------------------------------------------- health


def test_disconnected_device_makes_the_status_unhealthy_naming_it(tmp_path: pathlib.Path) -> None:
    cam = Device("oakd-1844301011B5461200")
    imu = Device("usb-imu")
    manager = make_manager(tmp_path, devices=[cam, imu])
    assert manager.get_status().device_healthy
    cam.connected = False
    status = manager.get_status()
    assert not status.device_healthy
    assert status.device_error == "capture device 'oakd-1844301011B5461200' is not connected"
    cam.connected = True
    assert manager.get_status().device_healthy


def test_not_ready_matters_only_while_recording(tmp_path: pathlib.Path) -> None:
    cam = Device("cam0", connected=True, ready=False)
    recorder = Recorder()
    manager = make_manager(tmp_path, devices=[cam])
    manager.set_recording_manager(recorder)
    assert manager.get_status().device_healthy  # devices are opened per recording
    recorder.is_recording = True
    status = manager.get_status()
    assert not status.device_healthy and "'cam0' is not ready" in (status.device_error or "")


def test_recording_manager_errors_and_device_errors_are_combined(tmp_path: pathlib.Path) -> None:
    recorder = Recorder()
    recorder.last_error = "stream 'depth' stalled for 2.0 s"
    manager = make_manager(tmp_path, devices=[Device("cam0", connected=False)])
    manager.set_recording_manager(recorder)
    status = manager.get_status()
    assert status.device_error == (
        "capture device 'cam0' is not connected; recording: stream 'depth' stalled for 2.0 s"
    )


def test_device_whose_properties_raise_is_unhealthy(tmp_path: pathlib.Path) -> None:
    class Broken:
        label = "flaky"

        @property
        def connected(self) -> bool:
            raise RuntimeError("USB reset")

    manager = make_manager(tmp_path, devices=[Broken()])
    status = manager.get_status()
    assert not status.device_healthy
    assert "'flaky' health check failed: USB reset" in (status.device_error or "")


def test_simulated_capture_device_unplug(tmp_path: pathlib.Path) -> None:
    simulated = pytest.importorskip("omgrab.devices.simulated")
    device = simulated.SimulatedCaptureDevice()
    manager = make_manager(tmp_path, devices=[device])
    with device:
        assert manager.get_status().device_healthy
        device.inject_disconnect()
        status = manager.get_status()
        assert not status.device_healthy
        assert device.label in (status.device_error or "")
        device.reconnect()


# ---------------------------------------------------------------- battery


def test_battery_reading_and_charging_sign(tmp_path: pathlib.Path) -> None:
    battery = Battery(Reading(voltage_v=8.1, current_a=0.75, power_w=6.1, percent=87.5))
    manager = make_manager(tmp_path, enable_battery_monitor=True, battery_monitor=battery)
    assert manager.get_status().battery == ds.BatteryInfo(87.5, 8.1, 0.75, 6.1, True)
    battery.reading = Reading(voltage_v=7.2, current_a=-0.4, power_w=2.9, percent=50.0)
    assert manager.get_status().battery == ds.BatteryInfo(50.0, 7.2, -0.4, 2.9, False)
    battery.reading = None
    assert manager.get_status().battery is None


def test_battery_errors_give_none_and_are_counted(tmp_path: pathlib.Path) -> None:
    battery = Battery(error=OSError(121, "Remote I/O error"))
    manager = make_manager(tmp_path, enable_battery_monitor=True, battery_monitor=battery)
    assert manager.get_status().battery is None
    assert manager.source_errors == 1
    assert isinstance(manager.last_error, OSError)


def test_disabled_battery_monitor_is_never_read(tmp_path: pathlib.Path) -> None:
    battery = Battery(error=AssertionError("must not be read"))
    manager = make_manager(tmp_path, enable_battery_monitor=False, battery_monitor=battery)
    assert manager.get_status().battery is None
    assert manager.source_errors == 0


def test_battery_monitor_is_constructed_lazily_once(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    constructed: list[Battery] = []

    def factory() -> Battery:
        monitor = Battery(Reading(7.9, -0.2, 1.6, 79.0))
        constructed.append(monitor)
        return monitor

    fake = types.ModuleType("omgrab.runtime.battery_monitor")
    fake.BatteryMonitor = factory  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "omgrab.runtime.battery_monitor", fake)
    manager = make_manager(tmp_path, enable_battery_monitor=True)
    assert constructed == []
    assert manager.get_status().battery == ds.BatteryInfo(79.0, 7.9, -0.2, 1.6, False)
    manager.get_status()
    assert len(constructed) == 1


def test_battery_monitor_construction_failure_means_no_battery(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def factory() -> Battery:
        raise FileNotFoundError(2, "No such file or directory", "/dev/i2c-1")

    fake = types.ModuleType("omgrab.runtime.battery_monitor")
    fake.BatteryMonitor = factory  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "omgrab.runtime.battery_monitor", fake)
    manager = make_manager(tmp_path, enable_battery_monitor=True)
    assert manager.get_status().battery is None
    assert manager.get_status().battery is None


def test_real_battery_monitor_without_hardware_reports_none(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("omgrab.runtime.battery_monitor")
    if os.path.exists("/dev/i2c-1"):
        pytest.skip("this machine has an I2C bus; the battery may really be there")
    manager = make_manager(tmp_path, enable_battery_monitor=True)
    assert manager.get_status().battery is None


# ---------------------------------------------------------------- resilience and cache


def test_a_failing_metrics_source_falls_back_and_is_counted(tmp_path: pathlib.Path) -> None:
    metrics = StaticMetrics()
    metrics.fail = {"cpu", "ssid"}
    manager = make_manager(tmp_path, metrics=metrics)
    status = manager.get_status()
    assert status.cpu == ds.CPUInfo(None, 0.0, [])
    assert status.network.wifi_ssid is None and status.network.wifi_signal_strength == -62
    assert status.memory.total_bytes == 8 * 2**30
    assert manager.source_errors == 2
    assert "unplugged" in str(manager.last_error)


def test_status_dict_is_cached_json_able_and_a_copy(tmp_path: pathlib.Path) -> None:
    metrics = StaticMetrics()
    manager = make_manager(tmp_path, metrics=metrics)
    first = manager.get_status_dict()
    calls = metrics.calls
    json.dumps(first)
    assert first["network"] == {"status": "unknown", "wifi_ssid": "field-lab",
                                "wifi_signal_strength": -62}  # fmt: skip
    first["device_id"] = "mutated"
    second = manager.get_status_dict()
    assert second["device_id"] == "rig-7"
    assert metrics.calls == calls, "get_status_dict recomputed instead of using the cache"
    manager.update_now()
    assert metrics.calls > calls


# ---------------------------------------------------------------- status file


def test_status_file_written_atomically_with_the_cached_dict(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "run" / "status.json"
    manager = make_manager(tmp_path, status_file=path)
    manager.update_now()
    assert json.loads(path.read_text()) == manager.get_status_dict()
    assert sorted(p.name for p in path.parent.iterdir()) == ["status.json"]


def test_readers_never_see_a_partial_status_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "status.json"
    manager = make_manager(tmp_path, status_file=path)
    manager.update_now()
    stop = threading.Event()
    bad: list[str] = []
    reads = 0

    def reader() -> None:
        nonlocal reads
        while not stop.is_set():
            text = path.read_text()
            reads += 1
            try:
                json.loads(text)
            except ValueError:
                bad.append(text)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(150):
            manager.update_now()
    finally:
        stop.set()
        thread.join(10)
    assert bad == []
    assert reads > 0
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_status_file_write_failure_is_counted_not_raised(tmp_path: pathlib.Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the status directory should be")
    manager = make_manager(tmp_path, status_file=blocker / "status.json")
    status = manager.update_now()
    assert status.device_id == "rig-7"
    assert manager.write_errors == 1
    assert manager.get_status_dict()["device_id"] == "rig-7"


def test_write_json_atomically_keeps_the_old_file_when_data_is_bad(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "status.json"
    ds.write_json_atomically(path, {"ok": 1})
    with pytest.raises(TypeError):
        ds.write_json_atomically(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


# ---------------------------------------------------------------- worker


def test_worker_updates_periodically_and_feeds_on_status(tmp_path: pathlib.Path) -> None:
    seen: list[ds.DeviceStatus] = []
    three = threading.Event()

    def on_status(status: ds.DeviceStatus) -> None:
        seen.append(status)
        if len(seen) >= 3:
            three.set()

    path = tmp_path / "status.json"
    manager = make_manager(tmp_path, status_file=path, on_status=on_status,
                           update_interval_s=0.01)  # fmt: skip
    manager.start()
    try:
        assert three.wait(10)
        assert manager.running
        with pytest.raises(RuntimeError, match="already started"):
            manager.start()
    finally:
        manager.shutdown()
    assert not manager.running
    assert all(isinstance(s, ds.DeviceStatus) for s in seen)
    assert manager.update_count >= 3
    assert json.loads(path.read_text())["device_id"] == "rig-7"


def test_worker_survives_callback_and_update_errors(tmp_path: pathlib.Path) -> None:
    calls = 0
    enough = threading.Event()

    def on_status(status: ds.DeviceStatus) -> None:
        nonlocal calls
        calls += 1
        if calls >= 4:
            enough.set()
        raise RuntimeError("health log disk gone")

    manager = make_manager(tmp_path, on_status=on_status, update_interval_s=0.01)
    real_get_status = manager.get_status
    failures = 0

    def flaky_get_status() -> ds.DeviceStatus:
        nonlocal failures
        if failures < 2:
            failures += 1
            raise RuntimeError("transient")
        return real_get_status()

    manager.get_status = flaky_get_status  # type: ignore[method-assign]
    manager.start()
    try:
        assert enough.wait(10), "worker stopped after an error"
    finally:
        manager.shutdown()
    assert manager.update_errors == 2
    assert manager.callback_errors >= 4


def test_shutdown_without_start_is_harmless(tmp_path: pathlib.Path) -> None:
    manager = make_manager(tmp_path)
    manager.shutdown()
    assert not manager.running


def test_real_battery_monitor_on_the_ina219_twin(tmp_path: pathlib.Path) -> None:
    battery_monitor = pytest.importorskip("omgrab.runtime.battery_monitor")
    twin = pytest.importorskip("omgrab.testing.ina219_twin")
    adapter, chip = twin.ups_hat_b(bus_voltage_v=7.8, current_a=0.6)
    monitor = battery_monitor.BatteryMonitor(bus_factory=adapter.open)
    manager = make_manager(tmp_path, enable_battery_monitor=True, battery_monitor=monitor)
    battery = manager.get_status().battery
    assert battery is not None
    assert battery.voltage_v == pytest.approx(7.8, abs=0.02)
    assert battery.current_a == pytest.approx(0.6, abs=0.01)
    assert battery.is_charging
    assert battery.percent == pytest.approx((7.8 - 6.0) / (8.4 - 6.0) * 100, abs=1.0)
    chip.current_a = -1.2
    battery = manager.get_status().battery
    assert battery is not None and not battery.is_charging
    assert battery.current_a == pytest.approx(-1.2, abs=0.01)
    manager.update_now()
    chip.remove()  # the HAT stops answering
    assert manager.get_status().battery is None
    cached = manager.get_status_dict()["battery"]  # the cache holds the last cycle's reading
    assert cached is not None and cached["current_a"] == pytest.approx(-1.2, abs=0.01)
    manager.update_now()
    assert manager.get_status_dict()["battery"] is None
