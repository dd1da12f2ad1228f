"""Device runtime: recording manager and session, network, status, battery, GPIO and WiFi.

The names omgrab 0.1.2 exported from ``omgrab.runtime`` (``RecordingManager``,
``DeviceStatusManager``, ``NetworkMonitorConfig``, ...) resolve lazily to their modules here,
so importing this package stays cheap and free of import cycles (``docs/compat.md``).
"""

from __future__ import annotations

import importlib
from typing import Any

#: omgrab 0.1.2's ``omgrab.runtime`` exports: name -> (module, attribute).
_EXPORTS = {
    "BatteryInfo": ("device_status", "BatteryInfo"),
    "ButtonConfig": ("gpio_manager", "ButtonConfig"),
    "CPUInfo": ("device_status", "CPUInfo"),
    "DeviceStatus": ("device_status", "DeviceStatus"),
    "DeviceStatusManager": ("device_status", "DeviceStatusManager"),
    "MemoryInfo": ("device_status", "MemoryInfo"),
    "NetworkInfo": ("device_status", "NetworkInfo"),
    "NetworkMonitor": ("network_monitor", "NetworkMonitor"),
    "NetworkMonitorConfig": ("network_monitor", "Config"),
    "RecordingConfig": ("recording_manager", "RecordingConfig"),
    "RecordingController": ("recording_manager", "RecordingController"),
    "RecordingInfo": ("device_status", "RecordingInfo"),
    "RecordingManager": ("recording_manager", "RecordingManager"),
    "RecordingSession": ("recording_session", "RecordingSession"),
    "StorageInfo": ("device_status", "StorageInfo"),
    "SystemMetricsProvider": ("device_status", "SystemMetricsProvider"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
