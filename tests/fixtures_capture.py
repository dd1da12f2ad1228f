"""Shared pytest fixtures for the capture tests (registered in tests/conftest.py).

Fixture names are stable; other areas' tests use them:

- ``manual_clock``: a ``DeviceClock`` on a ``ManualTimeSource`` (advance it with
  ``manual_clock.source.advance(s)``; ``step_wall`` for NTP-like steps).
- ``sim_device``: a small, fast ``SimulatedCaptureDevice`` (RGB 160x120 @ 25 fps, depth
  160x120 @ 25 fps, IMU 100 Hz in batches of 10) on the real clock, not yet opened.
- ``small_video_file``: a real 1 s H.264 MKV (160x120 @ 25 fps, frames carrying the synthetic
  frame counter 0..24) written with PyAV into ``tmp_path``.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import av
import pytest

from omgrab import clock as clock_mod
from omgrab import devices
from omgrab.cameras import base as camera_base
from omgrab.cameras import synthetic

SMALL = camera_base.CameraConfig(25, 160, 120)


def write_video(
    path: pathlib.Path,
    frames: int = 25,
    config: camera_base.CameraConfig = SMALL,
    *,
    mode: synthetic.Mode = "rgb",
    codec: str | None = None,
    bitrate: int = 2_000_000,
) -> pathlib.Path:
    """Write ``frames`` synthetic frames (counter 0..frames-1) to a real video file.

    RGB goes to libx264 yuv420p (at ``bitrate``), depth to FFV1 gray16le (lossless).
    """
    camera = synthetic.SyntheticCamera(config, mode=mode, pace=False)
    with av.open(str(path), "w") as container:
        if mode == "rgb":
            stream = container.add_stream(codec or "libx264", rate=int(config.fps))
            stream.pix_fmt = "yuv420p"
            stream.bit_rate = bitrate
            stream.options = {"preset": "ultrafast", "bf": "0", "g": str(int(config.fps))}
            in_format = "rgb24"
        else:
            stream = container.add_stream(codec or "ffv1", rate=int(config.fps))
            stream.pix_fmt = "gray16le"
            in_format = "gray16le"
        stream.width = config.width
        stream.height = config.height
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(camera.render(index), format=in_format)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture
def manual_clock() -> clock_mod.DeviceClock:
    """A device clock on a manual time source (monotonic 1000 s, wall 1.7e9 s)."""
    return clock_mod.DeviceClock(clock_mod.ManualTimeSource())


@pytest.fixture
def sim_device() -> Iterator[devices.SimulatedCaptureDevice]:
    """A small simulated device (160x120 RGB + depth @ 25 fps, IMU 100 Hz); closed afterwards."""
    device = devices.SimulatedCaptureDevice(
        label="sim-test", rgb=SMALL, depth=SMALL, imu_rate_hz=100.0
    )
    yield device
    device.close()


@pytest.fixture
def small_video_file(tmp_path: pathlib.Path) -> pathlib.Path:
    """A real 25-frame H.264 MKV (160x120 @ 25 fps) whose frames carry counters 0..24."""
    return write_video(tmp_path / "small.mkv")
