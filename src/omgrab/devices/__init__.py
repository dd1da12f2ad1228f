"""Capture devices: the ``CaptureDevice`` protocol, a simulated device, USB and OAK-D rigs.

``OakDCaptureDevice`` is omgrab 0.1.2's OAK-D device (``OakDCaptureDevice(rgb_config,
depth_config, ...)``, queue API; ``devices.oakd_capture_device``) on this package's depthai 3
backend ``devices.oakd.OakDCaptureDevice``; both need the optional ``depthai`` package only
when constructed.
"""

from omgrab.devices.base import CaptureDevice, DeviceType
from omgrab.devices.faults import Fault, FaultKind, format_faults, parse_fault, parse_faults
from omgrab.devices.oakd_capture_device import OakDCaptureDevice
from omgrab.devices.simulated import (
    FaultEvent,
    SimulatedCamera,
    SimulatedCaptureDevice,
    SimulatedImuSensor,
)
from omgrab.devices.usb import USBCaptureDevice

__all__ = [
    "CaptureDevice",
    "DeviceType",
    "Fault",
    "FaultEvent",
    "FaultKind",
    "OakDCaptureDevice",
    "SimulatedCamera",
    "SimulatedCaptureDevice",
    "SimulatedImuSensor",
    "USBCaptureDevice",
    "format_faults",
    "parse_fault",
    "parse_faults",
]
