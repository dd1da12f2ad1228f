"""Capture devices: the ``CaptureDevice`` protocol, a simulated device, USB and OAK-D rigs.

``OakDCaptureDevice`` needs the optional ``depthai`` package only when it is constructed.
"""

from omgrab.devices.base import CaptureDevice, DeviceType
from omgrab.devices.faults import Fault, FaultKind, format_faults, parse_fault, parse_faults
from omgrab.devices.oakd import OakDCaptureDevice
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
