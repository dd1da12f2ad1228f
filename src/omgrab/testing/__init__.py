"""Fakes and pytest fixtures for users' own tests."""

from omgrab.testing.fake_device import FakeCaptureDevice
from omgrab.testing.fake_gpio import FakeGPIOController
from omgrab.testing.ina219_twin import FakeI2CBus, FakeSMBus, INA219Twin
from omgrab.testing.network import make_snapshot

__all__ = [
    "FakeCaptureDevice",
    "FakeGPIOController",
    "FakeI2CBus",
    "FakeSMBus",
    "INA219Twin",
    "make_snapshot",
]
