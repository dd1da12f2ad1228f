"""LinuxSystemMetrics: real psutil/statvfs readings, fake /sys and /proc trees, fake commands."""

from __future__ import annotations

import os
import pathlib
import stat
import time
from collections.abc import Iterator

import psutil
import pytest

from omgrab import clock
from omgrab.hardware import system_metrics as sm
from omgrab.runtime import device_status as ds
from tests import tmpfs

IW_CONNECTED = """Connected to 3c:84:6a:12:34:56 (on wlan0)
\tSSID: field lab: 5G
\tfreq: 5180
\tRX: 123456 bytes (789 packets)
\tsignal: -58 dBm
\trx bitrate: 400.0 MBit/s
"""

WIRELESS_HEADER = (
    "Inter-| sta-|   Quality        |   Discarded packets               | Missed | WE\n"
    " face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22\n"
)


def no_commands(argv: list[str], timeout: float) -> str | None:
    return None


def thermal_zone(root: pathlib.Path, index: int, kind: str, millideg: str) -> None:
    zone = root / "class" / "thermal" / f"thermal_zone{index}"
    zone.mkdir(parents=True)
    (zone / "type").write_text(kind + "\n")
    (zone / "temp").write_text(millideg + "\n")


# ---------------------------------------------------------------- storage


def test_storage_matches_statvfs(tmp_path: pathlib.Path) -> None:
    info = sm.LinuxSystemMetrics().get_storage_info(tmp_path)
    st = os.statvfs(tmp_path)
    assert info.total_bytes == st.f_blocks * st.f_frsize
    assert abs(info.available_bytes - st.f_bavail * st.f_frsize) < 64 * 2**20
    assert info.used_bytes == info.total_bytes - info.available_bytes
    expected = 100 * (1 - info.available_bytes / info.total_bytes)
    assert info.used_percent == pytest.approx(expected, abs=0.01)


def test_storage_of_a_spool_dir_not_created_yet_uses_its_parent(tmp_path: pathlib.Path) -> None:
    metrics = sm.LinuxSystemMetrics()
    missing = metrics.get_storage_info(tmp_path / "spool" / "not" / "yet")
    assert missing.total_bytes == metrics.get_storage_info(tmp_path).total_bytes > 0


@pytest.fixture
def metrics_tmpfs(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    """A freshly mounted 4 MiB tmpfs (root only)."""
    with tmpfs.mounted_tmpfs(tmp_path, "4m") as mount_point:
        yield mount_point


@pytest.mark.tmpfs
def test_storage_on_a_real_small_filesystem_filling_up(metrics_tmpfs: pathlib.Path) -> None:
    metrics = sm.LinuxSystemMetrics()
    empty = metrics.get_storage_info(metrics_tmpfs)
    assert empty.total_bytes == 4 * 2**20
    assert empty.used_percent < 1.0
    (metrics_tmpfs / "chunk.mkv").write_bytes(b"\0" * (3 * 2**20))
    filled = metrics.get_storage_info(metrics_tmpfs)
    assert filled.used_bytes - empty.used_bytes == pytest.approx(3 * 2**20, abs=64 * 1024)
    assert 74.0 < filled.used_percent < 77.0
    assert filled.available_bytes + filled.used_bytes == filled.total_bytes


def test_storage_never_raises(tmp_path: pathlib.Path) -> None:
    metrics = sm.LinuxSystemMetrics()
    # A NUL byte cannot exist in a path: the nearest real ancestor is measured instead.
    assert metrics.get_storage_info(tmp_path / "bad\0name").total_bytes > 0
    assert metrics.get_storage_info(None) == ds.StorageInfo(0, 0, 0, 0.0)  # type: ignore[arg-type]


# ---------------------------------------------------------------- CPU, temperature, memory


def test_cpu_usage_is_real_and_per_core() -> None:
    metrics = sm.LinuxSystemMetrics(sys_root="/nonexistent-sys")
    deadline = time.monotonic() + 0.05
    while time.monotonic() < deadline:  # burn a little CPU so there is something to measure
        pass
    info = metrics.get_cpu_info()
    assert len(info.usage_per_core) == psutil.cpu_count()
    assert 0.0 <= info.usage_percent <= 100.0
    assert all(0.0 <= c <= 100.0 for c in info.usage_per_core)
    assert info.temperature_celsius is None


def test_cpu_temperature_from_thermal_zones_prefers_the_cpu_zone(tmp_path: pathlib.Path) -> None:
    thermal_zone(tmp_path, 0, "acpitz", "27800")
    thermal_zone(tmp_path, 1, "x86_pkg_temp", "52375")
    thermal_zone(tmp_path, 2, "iwlwifi_1", "41000")
    assert sm.LinuxSystemMetrics(sys_root=str(tmp_path)).get_cpu_info().temperature_celsius == 52.4


def test_raspberry_pi_thermal_zone(tmp_path: pathlib.Path) -> None:
    thermal_zone(tmp_path, 0, "cpu-thermal", "61324")
    assert sm.LinuxSystemMetrics(sys_root=str(tmp_path)).cpu_temperature() == 61.3


def test_broken_or_implausible_thermal_readings_are_ignored(tmp_path: pathlib.Path) -> None:
    thermal_zone(tmp_path, 0, "cpu-thermal", "garbage")
    thermal_zone(tmp_path, 1, "soc_thermal", "-274000")
    assert sm.LinuxSystemMetrics(sys_root=str(tmp_path)).cpu_temperature() is None
    thermal_zone(tmp_path, 2, "gpu", "48000")
    assert sm.LinuxSystemMetrics(sys_root=str(tmp_path)).cpu_temperature() == 48.0


def test_memory_matches_psutil() -> None:
    info = sm.LinuxSystemMetrics().get_memory_info()
    vm = psutil.virtual_memory()
    assert info.total_bytes == vm.total
    assert info.used_bytes + info.available_bytes == info.total_bytes
    assert 0.0 < info.used_percent < 100.0


# ---------------------------------------------------------------- WiFi


def write_wireless(proc: pathlib.Path, rows: str) -> None:
    (proc / "net").mkdir(parents=True, exist_ok=True)
    (proc / "net" / "wireless").write_text(WIRELESS_HEADER + rows)


def test_signal_from_proc_net_wireless(tmp_path: pathlib.Path) -> None:
    write_wireless(tmp_path, "wlan0: 0000   54.  -56.  -256   0  0  0  0  132   0\n")
    metrics = sm.LinuxSystemMetrics(proc_root=str(tmp_path), sys_root=str(tmp_path),
                                    command_runner=no_commands)  # fmt: skip
    assert metrics.wifi_interface() == "wlan0"
    assert metrics.get_wifi_signal_strength() == -56


def test_unsigned_level_from_old_drivers(tmp_path: pathlib.Path) -> None:
    write_wireless(tmp_path, "wlan1: 0000   60.  195.  0  0 0 0 0 0 0\n")
    metrics = sm.LinuxSystemMetrics(proc_root=str(tmp_path), sys_root=str(tmp_path),
                                    command_runner=no_commands)  # fmt: skip
    assert metrics.get_wifi_signal_strength() == -61


def test_no_wifi_anywhere_gives_none(tmp_path: pathlib.Path) -> None:
    metrics = sm.LinuxSystemMetrics(proc_root=str(tmp_path), sys_root=str(tmp_path),
                                    command_runner=no_commands)  # fmt: skip
    assert metrics.wifi_interface() is None
    assert metrics.get_wifi_ssid() is None
    assert metrics.get_wifi_signal_strength() is None


def test_wifi_interface_from_sysfs_and_ssid_from_iw(tmp_path: pathlib.Path) -> None:
    (tmp_path / "class" / "net" / "wlan0" / "wireless").mkdir(parents=True)
    (tmp_path / "class" / "net" / "eth0").mkdir(parents=True)
    calls: list[list[str]] = []

    def runner(argv: list[str], timeout: float) -> str | None:
        calls.append(argv)
        return IW_CONNECTED if argv[0] == "iw" else None

    metrics = sm.LinuxSystemMetrics(proc_root=str(tmp_path), sys_root=str(tmp_path),
                                    command_runner=runner, command_timeout_s=0.5)  # fmt: skip
    assert metrics.get_wifi_ssid() == "field lab: 5G"
    assert metrics.get_wifi_signal_strength() == -58  # no /proc/net/wireless row: from iw
    assert calls[0] == ["iw", "dev", "wlan0", "link"]


def test_iw_not_connected_then_nmcli_fallback(tmp_path: pathlib.Path) -> None:
    outputs = {
        "iw": "Not connected.\n",
        "nmcli": "no:Neighbours:wlan0\nyes:Lab\\:North:wlan0\n",
    }
    metrics = sm.LinuxSystemMetrics(
        proc_root=str(tmp_path),
        sys_root=str(tmp_path),
        wifi_iface="wlan0",
        command_runner=lambda argv, timeout: outputs.get(argv[0]),
    )
    assert metrics.get_wifi_ssid() is None  # iw says "not connected": trusted
    del outputs["iw"]
    metrics = sm.LinuxSystemMetrics(
        proc_root=str(tmp_path),
        sys_root=str(tmp_path),
        wifi_iface="wlan0",
        command_runner=lambda argv, timeout: outputs.get(argv[0]),
    )
    assert metrics.get_wifi_ssid() == "Lab:North"


def test_ssid_is_cached_for_wifi_cache_s(tmp_path: pathlib.Path) -> None:
    source = clock.ManualTimeSource()
    calls = 0

    def runner(argv: list[str], timeout: float) -> str | None:
        nonlocal calls
        calls += 1
        return IW_CONNECTED

    metrics = sm.LinuxSystemMetrics(proc_root=str(tmp_path), sys_root=str(tmp_path),
                                    wifi_iface="wlan0", command_runner=runner,
                                    wifi_cache_s=5.0, clock=source)  # fmt: skip
    for _ in range(5):
        assert metrics.get_wifi_ssid() == "field lab: 5G"
        source.advance(1.0)
    assert calls == 1
    source.advance(1.0)
    metrics.get_wifi_ssid()
    assert calls == 2


def test_a_raising_command_runner_never_escapes(tmp_path: pathlib.Path) -> None:
    def runner(argv: list[str], timeout: float) -> str | None:
        raise OSError("fork failed")

    metrics = sm.LinuxSystemMetrics(proc_root=str(tmp_path), sys_root=str(tmp_path),
                                    wifi_iface="wlan0", command_runner=runner)  # fmt: skip
    assert metrics.get_wifi_ssid() is None
    assert metrics.get_wifi_signal_strength() is None


# ---------------------------------------------------------------- the real command runner


def fake_command(bin_dir: pathlib.Path, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_real_runner_runs_an_installed_iw(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_command(bin_dir, "iw", f"cat <<'EOF'\n{IW_CONNECTED}EOF\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    metrics = sm.LinuxSystemMetrics(proc_root=str(tmp_path), sys_root=str(tmp_path),
                                    wifi_iface="wlan0")  # fmt: skip
    assert metrics.get_wifi_ssid() == "field lab: 5G"
    assert metrics.get_wifi_signal_strength() == -58


def test_real_runner_missing_failing_and_hanging_commands(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_command(bin_dir, "omgrab-fails", "echo nope; exit 3\n")
    fake_command(bin_dir, "omgrab-hangs", "exec sleep 30\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert sm.run_command(["omgrab-no-such-command"], 1.0) is None
    assert sm.run_command(["omgrab-fails"], 1.0) is None
    start = time.monotonic()
    assert sm.run_command(["omgrab-hangs"], 0.2) is None
    assert time.monotonic() - start < 2.0
