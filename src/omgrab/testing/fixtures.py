"""pytest fixtures for users' own tests of code built on omgrab.

Enable them in a ``conftest.py``::

    pytest_plugins = ["omgrab.testing.fixtures"]

Fixtures:
    omgrab_clock: a ``DeviceClock`` on a ``ManualTimeSource`` (advance with
        ``omgrab_clock.source.advance(s)``; ``step_wall`` for NTP-like steps).
    omgrab_gpio: a ``FakeGPIOController`` on that clock (closed afterwards).
    omgrab_device: a ``FakeCaptureDevice`` with a small synthetic RGB camera and IMU.
    omgrab_recorder: a ``RecordingManager`` over ``omgrab_device`` writing into ``tmp_path``
        (``spool/`` and ``recordings/``), shut down afterwards.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from omgrab import clock as clock_mod
from omgrab import recording
from omgrab.runtime import recording_manager
from omgrab.testing import fake_device, fake_gpio


@pytest.fixture
def omgrab_clock() -> clock_mod.DeviceClock:
    """A device clock on a manual time source."""
    return clock_mod.DeviceClock(clock_mod.ManualTimeSource())


@pytest.fixture
def omgrab_gpio(omgrab_clock: clock_mod.DeviceClock) -> Iterator[fake_gpio.FakeGPIOController]:
    """A fake GPIO controller whose button scripts run on ``omgrab_clock``."""
    controller = fake_gpio.FakeGPIOController(omgrab_clock.source)
    yield controller
    controller.close()


@pytest.fixture
def omgrab_device() -> Iterator[fake_device.FakeCaptureDevice]:
    """A fake capture device (64x48 RGB @ 10 fps and a 50 Hz IMU), closed afterwards."""
    device = fake_device.FakeCaptureDevice()
    yield device
    device.close()


@pytest.fixture
def omgrab_recorder(
    omgrab_device: fake_device.FakeCaptureDevice, tmp_path: pathlib.Path
) -> Iterator[recording_manager.RecordingManager]:
    """A recording manager over ``omgrab_device``; chunks of 1 s; shut down afterwards."""
    camera = omgrab_device.cameras["rgb"]
    size = camera.config
    manager = recording_manager.RecordingManager(
        [omgrab_device],
        [camera],
        ["rgb"],
        {
            "rgb": recording.rgb_stream_config(
                width=size.width,
                height=size.height,
                fps=size.fps,
                bitrate=200_000,
                preset="ultrafast",
            )
        },
        tmp_path / "spool",
        tmp_path / "recordings",
        recording_manager.RecordingConfig(chunk_length_s=1.0, health_check_interval_s=0.1),
        sensors=list(omgrab_device.sensors.values()),
        sensor_stream_names=list(omgrab_device.sensors),
        sensor_stream_configs={
            name: recording.imu_stream_config() for name in omgrab_device.sensors
        },
    )
    yield manager
    manager.shutdown()
