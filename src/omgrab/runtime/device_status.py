"""Centralized device status and system information manager.

This module provides a single source of truth for all device state, system metrics, and
operational status. Can be queried by a display module or external consumers.

:class:`DeviceStatusManager` gathers a :class:`DeviceStatus` from the system metrics provider,
the workflow state machine, the recording manager, the network monitor, the capture devices and
the battery monitor. A background worker refreshes it every ``update_interval_s`` (1 s), caches
it as a JSON-able dict, writes it atomically to ``status_file`` for external readers and hands
it to ``on_status`` (the app writes its health log from there). Every source is read defensively:
a failing source is logged and counted and falls back to a neutral value, so one broken part
never loses the rest of the status and never stops the worker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import importlib
import logging
import os
import pathlib
import tempfile
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

import orjson

from omgrab import clock as clock_mod
from omgrab import loop_health

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

NETWORK_STATUSES = ("offline", "network_only", "online")
UNKNOWN_STATE = "unknown"
#: The state the status file is left in when the status manager shuts down.
STOPPED_STATE = "stopped"
#: Key of the ISO 8601 UTC time of the update in the status dict and file.
UPDATED_AT_KEY = "updated_at"


@runtime_checkable
class StateProvider(Protocol):
    """Minimal interface for querying workflow state.

    Used by DeviceStatusManager to decouple from the full StateMachine.
    """

    def get_current_state(self) -> str:
        """Get the current workflow state as a string."""
        ...


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


@dataclasses.dataclass
class StorageInfo:
    """Storage space information.

    ``used_percent`` is ``100 * (1 - available / total)``: blocks reserved for root count as
    used, matching the storage ladder's ``free / total``.

    Attributes:
        total_bytes: Total storage capacity in bytes.
        used_bytes: Used storage in bytes.
        available_bytes: Available storage in bytes.
        used_percent: Percentage of storage used (0-100).
    """

    total_bytes: int
    used_bytes: int
    available_bytes: int
    used_percent: float

    def __str__(self) -> str:
        """Return human-readable storage status."""
        return (
            f"Storage: {_gib(self.available_bytes)} free of {_gib(self.total_bytes)} "
            f"({self.used_percent:.1f}% used)"
        )


@dataclasses.dataclass
class CPUInfo:
    """CPU metrics.

    Attributes:
        temperature_celsius: CPU temperature in Celsius, or None if unavailable.
        usage_percent: Overall CPU usage percentage (0-100).
        usage_per_core: Per-core usage percentages (0-100).
    """

    temperature_celsius: float | None
    usage_percent: float
    usage_per_core: list[float]

    def __str__(self) -> str:
        """Return human-readable CPU status."""
        temp = (
            "temp n/a" if self.temperature_celsius is None else f"{self.temperature_celsius:.1f}°C"
        )
        cores = ", ".join(f"{c:.0f}%" for c in self.usage_per_core)
        per_core = f" [{cores}]" if cores else ""
        return f"CPU: {self.usage_percent:.1f}%{per_core}, {temp}"


@dataclasses.dataclass
class MemoryInfo:
    """Memory usage information.

    Attributes:
        total_bytes: Total RAM in bytes.
        used_bytes: Used RAM in bytes.
        available_bytes: Available RAM in bytes.
        used_percent: Percentage of RAM used (0-100).
    """

    total_bytes: int
    used_bytes: int
    available_bytes: int
    used_percent: float

    def __str__(self) -> str:
        """Return human-readable memory status."""
        return (
            f"Memory: {self.used_bytes / 2**20:.0f} MiB used of "
            f"{self.total_bytes / 2**20:.0f} MiB ({self.used_percent:.1f}%)"
        )


@dataclasses.dataclass
class NetworkInfo:
    """Network connectivity information.

    Attributes:
        status: Connection state, one of 'offline', 'network_only', or 'online'; 'unknown'
            when no network monitor is wired (as omgrab 0.1.2 reports it).
        wifi_ssid: Connected WiFi network name, or None if not on WiFi.
        wifi_signal_strength: Signal strength in dBm (e.g. -62), or None if unavailable.

    Raises:
        ValueError: If ``status`` is not one of the three states or 'unknown'.
    """

    status: str
    wifi_ssid: str | None
    wifi_signal_strength: int | None

    def __post_init__(self) -> None:
        if self.status not in (*NETWORK_STATUSES, UNKNOWN_STATE):
            raise ValueError(
                f"NetworkInfo.status must be one of {(*NETWORK_STATUSES, UNKNOWN_STATE)}, "
                f"got {self.status!r}"
            )


@dataclasses.dataclass
class RecordingInfo:
    """Active recording information.

    Attributes:
        is_recording: Whether a recording is currently in progress.
        recording_id: Timestamp-based identifier for the active recording, or None.
        duration_seconds: Elapsed recording time in seconds, or None if not recording.
    """

    is_recording: bool
    recording_id: str | None
    duration_seconds: float | None


@dataclasses.dataclass
class BatteryInfo:
    """Battery status information.

    Attributes:
        percent: Battery percentage (0-100).
        voltage_v: Battery voltage in volts.
        current_a: Current draw in amps (positive when charging).
        power_w: Power consumption in watts.
        is_charging: Whether the battery is currently charging.
    """

    percent: float
    voltage_v: float
    current_a: float
    power_w: float
    is_charging: bool

    def __str__(self) -> str:
        """Return human-readable battery status."""
        state = "charging" if self.is_charging else "discharging"
        return (
            f"Battery: {self.percent:.0f}% ({self.voltage_v:.2f} V, {self.current_a:+.2f} A, "
            f"{self.power_w:.2f} W, {state})"
        )


@dataclasses.dataclass
class DeviceStatus:
    """Complete device status snapshot.

    Aggregates all subsystem statuses into a single point-in-time reading, produced by
    DeviceStatusManager on each update cycle.

    Attributes:
        device_id: Unique identifier for this device.
        software_version: Currently running software version string.
        uptime_seconds: Seconds since the status manager started.
        state_machine_state: Current workflow state (e.g. 'idle', 'recording').
        storage: Disk space metrics for the spool directory.
        cpu: CPU temperature and usage metrics.
        memory: RAM usage metrics.
        network: Network connectivity and WiFi details.
        recording: Active recording state and duration.
        device_healthy: Whether the device is operating normally.
        device_error: Human-readable error description, or None if healthy.
        battery: Battery metrics, or None if no battery hardware is present.
    """

    device_id: str
    software_version: str
    uptime_seconds: float
    state_machine_state: str
    storage: StorageInfo
    cpu: CPUInfo
    memory: MemoryInfo
    network: NetworkInfo
    recording: RecordingInfo
    device_healthy: bool
    device_error: str | None
    battery: BatteryInfo | None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict (nested dataclasses become dicts)."""
        return dataclasses.asdict(self)


@runtime_checkable
class SystemMetricsProvider(Protocol):
    """Interface for reading system-level hardware and OS metrics.

    The default implementation reads from Linux /proc and /sys filesystems
    (:class:`omgrab.hardware.system_metrics.LinuxSystemMetrics`). Inject an alternative for
    testing or non-Linux development hosts. Implementations should not raise and should return
    quickly (the status worker calls every method once per second).
    """

    def get_storage_info(self, path: pathlib.Path) -> StorageInfo:
        """Return disk space of the filesystem holding ``path``."""
        ...

    def get_cpu_info(self) -> CPUInfo:
        """Return CPU usage (since the previous call) and temperature."""
        ...

    def get_memory_info(self) -> MemoryInfo:
        """Return RAM usage."""
        ...

    def get_wifi_ssid(self) -> str | None:
        """Return the SSID of the connected WiFi network, or None.

        Optional, like ``get_wifi_signal_strength``: a provider without them (or with 0.1.2's
        ``get_wifi_info() -> (ssid, dbm)`` instead) is accepted; missing fields read None.
        """
        ...

    def get_wifi_signal_strength(self) -> int | None:
        """Return the WiFi signal level in dBm, or None."""
        ...


class BatteryReader(Protocol):
    """What the status manager needs from a battery monitor (``BatteryMonitor`` fits)."""

    @property
    def available(self) -> bool:
        """True if battery monitoring hardware is available."""
        ...

    def get_status(self) -> Any:
        """Return an object with voltage_v, current_a, power_w and percent, or None."""
        ...


StatusCallback = Callable[[DeviceStatus], None]

_EMPTY_STORAGE = StorageInfo(0, 0, 0, 0.0)
_EMPTY_MEMORY = MemoryInfo(0, 0, 0, 0.0)


def write_json_atomically(path: pathlib.Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` so readers see the old or the new file, never a mix.

    The JSON goes to a temporary file in the same directory, is fsynced, then renamed over
    ``path`` (and the directory is fsynced so the rename survives power loss).

    Args:
        path: Destination file; its directory is created if missing.
        data: JSON-able data.

    Raises:
        OSError: If the file cannot be written (the temporary file is removed).
        TypeError: If ``data`` is not JSON-able.
    """
    payload = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _value(obj: Any, name: str) -> Any:
    """Read a duck-typed attribute that may be a property or a zero-argument method."""
    attr = getattr(obj, name, None)
    return attr() if callable(attr) else attr


class DeviceStatusManager:
    """Manages and aggregates device status information from multiple sources.

    Args:
        device_id: Unique device identifier.
        software_version: Current software version.
        spool_base_dir: Base directory for storage calculations.
        system_metrics: Provider for system-level metrics (CPU, memory, storage, WiFi).
        enable_battery_monitor: Whether to enable battery monitoring.
        status_file: Path to write status JSON file for external readers.
        battery_monitor: A battery monitor to use instead of constructing
            ``omgrab.runtime.battery_monitor.BatteryMonitor()`` on first use.
        devices: Capture devices whose ``connected`` / ``ready`` feed ``device_healthy``.
        update_interval_s: Seconds between background updates.
        on_status: Called with every DeviceStatus the worker produces (on the worker thread).
        clock: Device clock used for uptime and recording duration (the process-wide one by
            default, the same one recordings are timestamped with).

    Raises:
        ValueError: If an argument is out of range (the message names it).
        TypeError: If ``system_metrics`` lacks a required method.
    """

    def __init__(
        self,
        device_id: str,
        software_version: str,
        spool_base_dir: pathlib.Path,
        system_metrics: SystemMetricsProvider,
        enable_battery_monitor: bool = True,
        status_file: pathlib.Path | None = None,
        *,
        battery_monitor: BatteryReader | None = None,
        devices: Sequence[Any] | None = None,
        update_interval_s: float = 1.0,
        on_status: StatusCallback | None = None,
        clock: clock_mod.DeviceClock | None = None,
    ) -> None:
        if not isinstance(device_id, str) or not device_id:
            raise ValueError(f"device_id must be a non-empty string, got {device_id!r}")
        if not isinstance(software_version, str):
            raise ValueError(f"software_version must be a string, got {software_version!r}")
        missing = [
            name
            # Wi-Fi methods are optional (omgrab 0.1.2 providers have ``get_wifi_info()`` or
            # none): without them the Wi-Fi fields are reported unknown (None).
            for name in ("get_storage_info", "get_cpu_info", "get_memory_info")
            if not callable(getattr(system_metrics, name, None))
        ]
        if missing:
            raise TypeError(
                f"system_metrics {type(system_metrics).__name__} lacks {', '.join(missing)}"
            )
        if (
            not isinstance(update_interval_s, (int, float))
            or isinstance(update_interval_s, bool)
            or update_interval_s <= 0
        ):
            raise ValueError(f"update_interval_s must be positive, got {update_interval_s!r}")
        if on_status is not None and not callable(on_status):
            raise TypeError(f"on_status must be callable, got {on_status!r}")
        self._device_id = device_id
        self._software_version = software_version
        self._spool_base_dir = pathlib.Path(spool_base_dir)
        self._metrics = system_metrics
        self._enable_battery = enable_battery_monitor
        self._status_file = pathlib.Path(status_file) if status_file is not None else None
        self._battery: BatteryReader | None = battery_monitor
        self._battery_tried = battery_monitor is not None
        self._battery_lock = threading.Lock()  # one lazy BatteryMonitor construction
        self._devices = list(devices) if devices is not None else []
        self._interval = float(update_interval_s)
        self._on_status = on_status
        self._clock = clock if clock is not None else clock_mod.default_clock()

        self._lock = threading.Lock()  # guards references, cache and counters below
        self._state_machine: StateProvider | None = None
        self._recording_manager: Any = None
        self._network_monitor: Any = None
        self._upload_progress: Callable[[], dict[str, Any]] | None = None
        self._sections: dict[str, Callable[[], dict[str, Any]]] = {}
        self._started_mono = self._clock.monotonic()
        self._cache: dict[str, Any] | None = None
        self._capture: dict[str, Any] = {}
        self._last_status: DeviceStatus | None = None
        self._update_count = 0
        self._source_errors = 0
        self._update_errors = 0
        self._write_errors = 0
        self._callback_errors = 0
        self._last_error: BaseException | None = None
        self._failing_sources: set[str] = set()

        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ wiring

    def set_state_machine(self, state_machine: StateProvider | None) -> None:
        """Set the state machine reference."""
        with self._lock:
            self._state_machine = state_machine

    def set_recording_manager(self, recording_manager: Any) -> None:
        """Set the recording manager reference.

        Duck-typed: ``is_recording``, ``active_recording_id`` and ``recording_started_at``
        (datetime or None) are read, and ``last_error`` (str or None) when it exists.
        """
        with self._lock:
            self._recording_manager = recording_manager

    def set_network_monitor(self, network_monitor: Any) -> None:
        """Set the network monitor reference (its ``snapshot`` is read)."""
        with self._lock:
            self._network_monitor = network_monitor

    def set_upload_progress(self, progress: Callable[[], dict[str, Any]] | None) -> None:
        """Set the uploader's progress source; its dict appears as ``upload`` in the status."""
        with self._lock:
            self._upload_progress = progress

    def set_section(self, name: str, provider: Callable[[], dict[str, Any]]) -> None:
        """Add a top-level ``name`` section read from ``provider`` at each update.

        A provider that raises is counted like any failing source and shows as None.
        """
        with self._lock:
            self._sections[name] = provider

    def set_devices(self, devices: Sequence[Any]) -> None:
        """Replace the capture devices whose health feeds ``device_healthy``."""
        with self._lock:
            self._devices = list(devices)

    # ------------------------------------------------------------------ counters

    @property
    def running(self) -> bool:
        """True while the background worker is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def update_count(self) -> int:
        """Number of completed background update cycles."""
        with self._lock:
            return self._update_count

    @property
    def source_errors(self) -> int:
        """Number of times a status source raised (its neutral fallback was used)."""
        with self._lock:
            return self._source_errors

    @property
    def update_errors(self) -> int:
        """Number of background cycles that failed as a whole."""
        with self._lock:
            return self._update_errors

    @property
    def write_errors(self) -> int:
        """Number of failed status-file writes."""
        with self._lock:
            return self._write_errors

    @property
    def callback_errors(self) -> int:
        """Number of exceptions raised by ``on_status``."""
        with self._lock:
            return self._callback_errors

    @property
    def last_error(self) -> BaseException | None:
        """The most recent error of any kind, or None."""
        with self._lock:
            return self._last_error

    @property
    def last_status(self) -> DeviceStatus | None:
        """The DeviceStatus of the most recent background cycle, or None."""
        with self._lock:
            return self._last_status

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the background worker that updates status periodically.

        The first update runs immediately.

        Raises:
            RuntimeError: If the worker was already started.
        """
        if self._thread is not None:
            raise RuntimeError("DeviceStatusManager already started (it cannot be restarted)")
        with self._lock:
            self._started_mono = self._clock.monotonic()
        self._thread = threading.Thread(target=self._run, name="device-status", daemon=True)
        self._thread.start()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop the background worker.

        Args:
            timeout: Seconds to wait for the worker to finish its current cycle.
        """
        self._stop.set()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return
        thread.join(timeout)
        if thread.is_alive():
            logger.warning("device status worker did not stop within %.1f s", timeout)
        self._write_final_status()

    def _updated_at(self) -> str:
        return self._clock.now().astimezone(datetime.UTC).isoformat(timespec="milliseconds")

    def _write_status_file(self, as_dict: dict[str, Any]) -> None:
        if self._status_file is None:
            return
        try:
            write_json_atomically(self._status_file, as_dict)
        except Exception as exc:
            logger.exception("could not write status file %s", self._status_file)
            with self._lock:
                self._write_errors += 1
                self._last_error = exc

    def _write_final_status(self) -> None:
        """Leave the status file saying ``stopped`` (nothing records once this process ends)."""
        if self._status_file is None:
            return
        with self._lock:
            final = orjson.loads(orjson.dumps(self._cache)) if self._cache is not None else None
        if final is None:
            final = self.get_status().to_dict()
        final["state_machine_state"] = STOPPED_STATE
        final["recording"] = dataclasses.asdict(RecordingInfo(False, None, None))
        final[UPDATED_AT_KEY] = self._updated_at()
        with self._lock:
            self._cache = final
        self._write_status_file(final)

    # ------------------------------------------------------------------ status

    def get_status(self) -> DeviceStatus:
        """Get a complete snapshot of device status.

        Every source is read now; a source that raises is logged and counted and its neutral
        value is used instead.

        Returns:
            DeviceStatus dataclass with all current information.
        """
        with self._lock:
            state_machine = self._state_machine
            recording_manager = self._recording_manager
            network_monitor = self._network_monitor
            devices = list(self._devices)
            uptime = max(0.0, self._clock.monotonic() - self._started_mono)

        recording = self._read("recording", lambda: self._recording_info(recording_manager), None)
        errors = self._read(
            "device health",
            lambda: self._health_errors(devices, recording_manager, recording),
            ["device health check failed"],
        )
        return DeviceStatus(
            device_id=self._device_id,
            software_version=self._software_version,
            uptime_seconds=round(uptime, 3),
            state_machine_state=self._read(
                "state machine", lambda: self._state(state_machine), UNKNOWN_STATE
            ),
            storage=self._read(
                "storage",
                lambda: self._metrics.get_storage_info(self._spool_base_dir),
                _EMPTY_STORAGE,
            ),
            cpu=self._read("cpu", self._metrics.get_cpu_info, CPUInfo(None, 0.0, [])),
            memory=self._read("memory", self._metrics.get_memory_info, _EMPTY_MEMORY),
            network=self._network_info(network_monitor),
            recording=recording or RecordingInfo(False, None, None),
            device_healthy=not errors,
            device_error="; ".join(errors) if errors else None,
            battery=self._read("battery", self._battery_info, None),
        )

    def get_status_dict(self) -> dict[str, Any]:
        """Get the cached status dictionary.

        The status is updated every second by the background worker. This method returns the
        most recent cached value for fast access (computing one first if none exists yet).

        Returns:
            Dictionary representation of device status (JSON-able; a copy the caller may
            modify).
        """
        with self._lock:
            cached = self._cache
        if cached is None:
            status = self.get_status()
            cached = self._status_dict(status)
            cached["loop_errors"] = self.loop_errors()
            with self._lock:
                if self._cache is None:
                    self._cache = cached
                    self._last_status = status
                cached = self._cache
        return orjson.loads(orjson.dumps(cached))

    def update_now(self) -> DeviceStatus:
        """Run one update cycle now: refresh the cache, write the file, call ``on_status``.

        Returns:
            The new status.
        """
        status = self.get_status()
        as_dict = self._status_dict(status)
        as_dict["loop_errors"] = self.loop_errors()
        as_dict[UPDATED_AT_KEY] = self._updated_at()
        with self._lock:
            self._cache = as_dict
            self._last_status = status
        self._write_status_file(as_dict)
        if self._on_status is not None:
            try:
                self._on_status(status)
            except Exception as exc:
                logger.exception("on_status callback raised")
                with self._lock:
                    self._callback_errors += 1
                    self._last_error = exc
        with self._lock:
            self._update_count += 1
        return status

    # ------------------------------------------------------------------ internals

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.update_now()
            except Exception as exc:  # never let the worker die
                logger.exception("device status update failed")
                with self._lock:
                    self._update_errors += 1
                    self._last_error = exc
            self._stop.wait(self._interval)

    def _read(self, name: str, read: Callable[[], _T], fallback: _T) -> _T:
        try:
            value = read()
        except Exception as exc:
            with self._lock:
                self._source_errors += 1
                self._last_error = exc
                first = name not in self._failing_sources
                self._failing_sources.add(name)
            if first:
                logger.exception("status source %r failed; using a neutral value", name)
            else:
                logger.debug("status source %r failed again: %s", name, exc)
            return fallback
        with self._lock:
            recovered = name in self._failing_sources
            self._failing_sources.discard(name)
        if recovered:
            logger.info("status source %r recovered", name)
        return value

    def loop_errors(self) -> dict[str, int]:
        """Exceptions caught so far by each background loop that went on after them.

        Keys: ``button``, ``recorder-health``, ``recorder-merge``, ``recorder-events``,
        ``status`` and ``network``; loops without errors are left out. The status dict (and
        ``status.json``) carries it as ``loop_errors``.
        """
        with self._lock:
            network_monitor = self._network_monitor
        counts = loop_health.default().counts()
        with self._lock:
            status_errors = self._update_errors
        if status_errors:
            counts["status"] = status_errors
        network_errors = self._read(
            "network loop errors",
            lambda: int(getattr(network_monitor, "loop_errors", 0) or 0),
            0,
        )
        if network_errors:
            counts["network"] = network_errors
        return counts

    @staticmethod
    def _state(state_machine: StateProvider | None) -> str:
        if state_machine is None:
            return UNKNOWN_STATE
        state: Any = state_machine.get_current_state()
        value = getattr(state, "value", state)  # tolerate an enum
        return str(value)

    def _status_dict(self, status: DeviceStatus) -> dict[str, Any]:
        """``status.to_dict()`` plus ``recording.capture``, ``upload`` and the added sections.

        ``recording.capture``: see ``_capture_info``. ``upload``: the uploader's progress and
        backlog when one is set (None if it could not be read).
        """
        doc = status.to_dict()
        with self._lock:
            capture = dict(self._capture)
            upload = self._upload_progress
            sections = dict(self._sections)
        if isinstance(doc.get("recording"), dict) and capture:
            doc["recording"]["capture"] = capture
        if upload is not None:
            doc["upload"] = self._read("upload", upload, None)
        for name, provider in sections.items():
            doc[name] = self._read(name, provider, None)
        return doc

    def _capture_info(self, manager: Any) -> dict[str, Any]:
        """Losses the active recording saw before its writer, and why the last one stopped.

        ``frames_missed`` / ``gaps`` sum every stream's capture gaps (None when not recording
        or unknown), ``streams`` has them per stream, ``last_stop_reason`` is the previous
        recording's ``stop_reason`` (None before the first stop).
        """
        reason = _value(manager, "last_stop_reason")
        info: dict[str, Any] = {
            "frames_missed": None,
            "gaps": None,
            "streams": {},
            "last_stop_reason": str(getattr(reason, "value", reason)) if reason else None,
        }
        session = _value(manager, "active_session")
        stats = _value(session, "capture_stats") if session is not None else None
        if isinstance(stats, dict):
            streams = {
                str(name): {
                    "frames_missed": int(getattr(s, "frames_missed", 0)),
                    "gaps": int(getattr(s, "gaps", 0)),
                }
                for name, s in stats.items()
            }
            info["streams"] = streams
            info["frames_missed"] = sum(s["frames_missed"] for s in streams.values())
            info["gaps"] = sum(s["gaps"] for s in streams.values())
        return info

    def _recording_info(self, manager: Any) -> RecordingInfo | None:
        if manager is None:
            return None
        capture = self._capture_info(manager)
        with self._lock:
            self._capture = capture
        snapshot = getattr(manager, "snapshot", None)
        if callable(snapshot):
            # One consistent, lock-free read (a start waiting for a device holds no lock here).
            snap = snapshot()
            is_recording = str(getattr(snap.phase, "value", snap.phase)) == "recording"
            recording_id, started = snap.recording_id, snap.started_at
        else:
            is_recording = bool(_value(manager, "is_recording"))
            recording_id = _value(manager, "active_recording_id")
            started = _value(manager, "recording_started_at")
        if not is_recording:
            return RecordingInfo(False, None, None)
        duration: float | None = None
        if isinstance(started, datetime.datetime):
            if started.tzinfo is None:
                started = started.replace(tzinfo=datetime.UTC)
            duration = max(0.0, (self._clock.now() - started).total_seconds())
            duration = round(duration, 3)
        return RecordingInfo(
            True, str(recording_id) if recording_id is not None else None, duration
        )

    @staticmethod
    def _health_errors(
        devices: list[Any], manager: Any, recording: RecordingInfo | None
    ) -> list[str]:
        errors: list[str] = []
        is_recording = recording is not None and recording.is_recording
        for index, device in enumerate(devices):
            try:
                label = str(getattr(device, "label", f"device {index}"))
            except Exception:
                label = f"device {index}"
            try:
                if not device.connected:
                    errors.append(f"capture device {label!r} is not connected")
                elif is_recording and not device.ready:
                    errors.append(f"capture device {label!r} is not ready")
            except Exception as exc:
                errors.append(f"capture device {label!r} health check failed: {exc}")
        if manager is not None:
            last_error = _value(manager, "last_error")
            if last_error:
                errors.append(f"recording: {last_error}")
        return errors

    def _network_info(self, monitor: Any) -> NetworkInfo:
        def status() -> str:
            if monitor is None:
                return UNKNOWN_STATE
            snap = monitor.snapshot
            label = getattr(snap.status, "label", None)
            if label is None:
                label = str(getattr(snap.status, "name", snap.status)).lower()
            if label not in NETWORK_STATUSES:
                raise ValueError(f"network monitor reported unknown status {snap.status!r}")
            return str(label)

        ssid, signal = self._wifi()
        return NetworkInfo(
            status=self._read("network", status, "offline"),
            wifi_ssid=ssid,
            wifi_signal_strength=int(signal) if signal is not None else None,
        )

    def _wifi(self) -> tuple[str | None, int | None]:
        """Read SSID and signal from whichever Wi-Fi methods the provider has (None if none)."""
        metrics: Any = self._metrics
        get_ssid = getattr(metrics, "get_wifi_ssid", None)
        get_signal = getattr(metrics, "get_wifi_signal_strength", None)
        if callable(get_ssid) or callable(get_signal):
            ssid = self._read("wifi ssid", get_ssid, None) if callable(get_ssid) else None
            signal = self._read("wifi signal", get_signal, None) if callable(get_signal) else None
            return ssid, signal
        get_info = getattr(metrics, "get_wifi_info", None)
        if callable(get_info):  # omgrab 0.1.2: (ssid, signal_dbm)
            return self._read("wifi info", get_info, (None, None)) or (None, None)
        return None, None

    def _battery_reader(self) -> BatteryReader | None:
        if not self._enable_battery:
            return None
        with self._battery_lock:
            if self._battery is None and not self._battery_tried:
                self._battery_tried = True
                try:
                    # Imported lazily: optional hardware, and the module pulls in smbus2.
                    module = importlib.import_module("omgrab.runtime.battery_monitor")
                    self._battery = module.BatteryMonitor()
                except Exception as exc:
                    logger.info("battery monitoring unavailable: %s", exc)
                    self._battery = None
            return self._battery

    def _battery_info(self) -> BatteryInfo | None:
        reader = self._battery_reader()
        if reader is None:
            return None
        reading = reader.get_status()
        if reading is None:
            return None
        current = float(reading.current_a)
        return BatteryInfo(
            percent=float(reading.percent),
            voltage_v=float(reading.voltage_v),
            current_a=current,
            power_w=float(reading.power_w),
            is_charging=current > 0,
        )
