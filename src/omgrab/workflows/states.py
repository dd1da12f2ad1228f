"""Workflow states of the device."""

from __future__ import annotations

import enum


class WorkflowState(enum.Enum):
    """The device's top-level state; the value is what status reports show."""

    BOOT = "boot"
    IDLE = "idle"
    RECORDING = "recording"
    CAMERA_PREVIEW = "camera_preview"
    WIFI_SETUP = "wifi_setup"
    SHUTDOWN = "shutdown"
