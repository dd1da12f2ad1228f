"""The default ``SystemMetricsProvider``: Linux /proc and /sys plus psutil.

:class:`LinuxSystemMetrics` never raises and never blocks for long: every reading falls back to
a neutral value (zeros, an empty list or None) when its source is missing or broken, and the
only external commands (``iw``, ``nmcli``) run with a short timeout, only when installed, and
their answers are cached for a few seconds.

``sys_root`` and ``proc_root`` point at the sysfs / procfs trees to read, so tests can feed
fake thermal zones and wireless tables.
"""

from __future__ import annotations

import glob
import logging
import os
import pathlib
import re
import shutil
import subprocess
import threading
from collections.abc import Callable

import psutil

from omgrab import clock as clock_mod
from omgrab.runtime import device_status

logger = logging.getLogger(__name__)

CommandRunner = Callable[[list[str], float], str | None]
"""Runs a command with a timeout and returns its stdout, or None if it failed."""

# Thermal zone / psutil sensor names that describe the CPU or SoC, best first.
_CPU_SENSOR_NAMES = (
    "cpu_thermal",
    "cpu-thermal",
    "soc_thermal",
    "soc-thermal",
    "x86_pkg_temp",
    "coretemp",
    "k10temp",
    "zenpower",
    "cpu",
    "soc",
    "tcpu",
    "acpitz",
)
_SSID_RE = re.compile(r"^\s*SSID:\s?(.*)$", re.MULTILINE)
_SIGNAL_RE = re.compile(r"^\s*signal:\s*(-?\d+)", re.MULTILINE)


def run_command(argv: list[str], timeout: float) -> str | None:
    """Run ``argv`` and return its stdout, or None if it is missing, fails or times out."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "LC_ALL": "C"},
        )
    except (OSError, subprocess.SubprocessError) as exc:
        logger.debug("%s failed: %s", argv[0], exc)
        return None
    if done.returncode != 0:
        return None
    return done.stdout


def _rank(name: str) -> int:
    lowered = name.lower()
    for i, candidate in enumerate(_CPU_SENSOR_NAMES):
        if candidate in lowered:
            return i
    return len(_CPU_SENSOR_NAMES)


def _plausible(celsius: float) -> bool:
    return -40.0 <= celsius <= 150.0


class LinuxSystemMetrics:
    """System metrics from psutil, /proc and /sys.

    Args:
        sys_root: Root of the sysfs tree (thermal zones, network interfaces).
        proc_root: Root of the procfs tree (``net/wireless``).
        wifi_iface: The WiFi interface; by default the first one found in ``net/wireless`` or
            ``class/net/*/wireless``.
        command_runner: Runs ``iw`` / ``nmcli``; replace it to feed canned output.
        command_timeout_s: Timeout for each external command.
        wifi_cache_s: Seconds an SSID answer from a command is reused.
        clock: Time source for the SSID cache.
    """

    def __init__(
        self,
        sys_root: str = "/sys",
        proc_root: str = "/proc",
        *,
        wifi_iface: str | None = None,
        command_runner: CommandRunner = run_command,
        command_timeout_s: float = 1.0,
        wifi_cache_s: float = 5.0,
        clock: clock_mod.TimeSource | None = None,
    ) -> None:
        self._sys_root = sys_root
        self._proc_root = proc_root
        self._wifi_iface = wifi_iface
        self._run = command_runner
        self._timeout = command_timeout_s
        self._wifi_cache_s = wifi_cache_s
        self._clock: clock_mod.TimeSource = (
            clock if clock is not None else clock_mod.SystemTimeSource()
        )
        self._lock = threading.Lock()  # guards the SSID cache
        self._ssid_cache: tuple[float, str | None] | None = None
        self._warned: set[str] = set()
        # psutil's non-blocking cpu_percent measures since the previous call: prime it.
        try:
            psutil.cpu_percent(interval=None)
            psutil.cpu_percent(interval=None, percpu=True)
        except Exception as exc:
            self._warn_once("cpu", exc)

    def _warn_once(self, what: str, exc: BaseException) -> None:
        if what not in self._warned:
            self._warned.add(what)
            logger.warning("cannot read %s metrics: %s", what, exc)

    # ------------------------------------------------------------------ storage

    def get_storage_info(self, path: pathlib.Path) -> device_status.StorageInfo:
        """Return disk space of the filesystem holding ``path`` (or its nearest existing parent).

        ``available_bytes`` is what an unprivileged writer may use (statvfs ``f_bavail``) and
        ``used_percent`` is ``100 * (1 - available / total)``.
        """
        try:
            target = pathlib.Path(path).absolute()
            while not target.exists() and target != target.parent:
                target = target.parent
            usage = shutil.disk_usage(target)
        except Exception as exc:
            self._warn_once("storage", exc)
            return device_status.StorageInfo(0, 0, 0, 0.0)
        return device_status.StorageInfo(*_usage(usage.total, usage.free))

    # ------------------------------------------------------------------ CPU / memory

    def get_cpu_info(self) -> device_status.CPUInfo:
        """Return CPU usage since the previous call (non-blocking) and the CPU temperature."""
        try:
            overall = float(psutil.cpu_percent(interval=None))
            per_core = [float(c) for c in psutil.cpu_percent(interval=None, percpu=True)]
        except Exception as exc:
            self._warn_once("cpu", exc)
            overall, per_core = 0.0, []
        return device_status.CPUInfo(self.cpu_temperature(), overall, per_core)

    def cpu_temperature(self) -> float | None:
        """Return the CPU temperature in Celsius, or None when no sensor is found."""
        temp = self._thermal_zone_temperature()
        if temp is None and self._sys_root == "/sys":
            temp = self._psutil_temperature()
        return temp

    def _thermal_zone_temperature(self) -> float | None:
        best: tuple[int, float] | None = None
        pattern = os.path.join(self._sys_root, "class", "thermal", "thermal_zone*")
        for zone in sorted(glob.glob(pattern)):
            try:
                with open(os.path.join(zone, "temp"), encoding="ascii") as f:
                    millideg = int(f.read().strip())
            except (OSError, ValueError):
                continue
            try:
                with open(os.path.join(zone, "type"), encoding="ascii") as f:
                    kind = f.read().strip()
            except OSError:
                kind = ""
            celsius = millideg / 1000.0
            if not _plausible(celsius):
                continue
            rank = _rank(kind)
            if best is None or rank < best[0]:
                best = (rank, celsius)
        return round(best[1], 1) if best is not None else None

    def _psutil_temperature(self) -> float | None:
        read = getattr(psutil, "sensors_temperatures", None)
        if read is None:
            return None
        try:
            sensors = read()
        except Exception as exc:
            self._warn_once("temperature", exc)
            return None
        best: tuple[int, float] | None = None
        for name, entries in sensors.items():
            for entry in entries:
                current = float(entry.current)
                if not _plausible(current):
                    continue
                rank = _rank(name)
                if best is None or rank < best[0]:
                    best = (rank, current)
                break
        return round(best[1], 1) if best is not None else None

    def get_memory_info(self) -> device_status.MemoryInfo:
        """Return RAM usage (used = total - available)."""
        try:
            vm = psutil.virtual_memory()
        except Exception as exc:
            self._warn_once("memory", exc)
            return device_status.MemoryInfo(0, 0, 0, 0.0)
        return device_status.MemoryInfo(*_usage(vm.total, vm.available))

    # ------------------------------------------------------------------ WiFi

    def wifi_interface(self) -> str | None:
        """Return the WiFi interface to report on, or None if there is none."""
        if self._wifi_iface is not None:
            return self._wifi_iface
        table = self._wireless_table()
        if table:
            return next(iter(table))
        pattern = os.path.join(self._sys_root, "class", "net", "*", "wireless")
        for path in sorted(glob.glob(pattern)):
            return os.path.basename(os.path.dirname(path))
        return None

    def _wireless_table(self) -> dict[str, float]:
        """Parse ``net/wireless``: interface -> signal level (dBm)."""
        try:
            with open(os.path.join(self._proc_root, "net", "wireless"), encoding="ascii") as f:
                lines = f.read().splitlines()[2:]
        except OSError:
            return {}
        levels: dict[str, float] = {}
        for line in lines:
            name, sep, rest = line.partition(":")
            fields = rest.split()
            if not sep or len(fields) < 3:
                continue
            try:
                levels[name.strip()] = float(fields[2].rstrip("."))
            except ValueError:
                continue
        return levels

    def get_wifi_signal_strength(self) -> int | None:
        """Return the signal level of the WiFi link in dBm, or None when not connected."""
        try:
            iface = self.wifi_interface()
            if iface is None:
                return None
            level = self._wireless_table().get(iface)
            if level is not None:
                if level >= 128:  # old drivers report an unsigned byte
                    level -= 256
                if -120 <= level < 0:
                    return int(level)
            out = self._run(["iw", "dev", iface, "link"], self._timeout)
            if out:
                match = _SIGNAL_RE.search(out)
                if match:
                    return int(match.group(1))
        except Exception as exc:
            self._warn_once("wifi signal", exc)
        return None

    def get_wifi_ssid(self) -> str | None:
        """Return the SSID of the connected WiFi network, or None (cached for a few seconds)."""
        now = self._clock.monotonic()
        with self._lock:
            cache = self._ssid_cache
        if cache is not None and now - cache[0] < self._wifi_cache_s:
            return cache[1]
        try:
            ssid = self._read_ssid()
        except Exception as exc:
            self._warn_once("wifi ssid", exc)
            ssid = None
        with self._lock:
            self._ssid_cache = (now, ssid)
        return ssid

    def _read_ssid(self) -> str | None:
        iface = self.wifi_interface()
        if iface is None:
            return None
        out = self._run(["iw", "dev", iface, "link"], self._timeout)
        if out:
            if out.strip().startswith("Not connected"):
                return None
            match = _SSID_RE.search(out)
            if match and match.group(1).strip():
                return match.group(1).rstrip("\n")
        out = self._run(["nmcli", "-t", "-f", "ACTIVE,SSID,DEVICE", "dev", "wifi"], self._timeout)
        if out:
            for line in out.splitlines():
                parts = re.split(r"(?<!\\):", line)
                if len(parts) >= 3 and parts[0] == "yes" and parts[2] in ("", iface):
                    return parts[1].replace("\\:", ":") or None
                if len(parts) == 2 and parts[0] == "yes":
                    return parts[1].replace("\\:", ":") or None
        return None


def _usage(total: float, available: float) -> tuple[int, int, int, float]:
    """``(total, used, available, used percent)``: used is what is not available (>= 0)."""
    total_i, available_i = int(total), int(available)
    used = max(0, total_i - available_i)
    percent = 100.0 * used / total_i if total_i > 0 else 0.0
    return total_i, used, available_i, round(percent, 2)
