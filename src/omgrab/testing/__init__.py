"""Fakes and pytest fixtures for users' own tests."""

from omgrab.testing.fake_device import FakeCaptureDevice
from omgrab.testing.network import make_snapshot

__all__ = ["FakeCaptureDevice", "make_snapshot"]
