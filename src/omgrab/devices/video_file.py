"""A capture device that replays a video file as its RGB camera (``[device] type = "video_file"``).

The file is decoded with PyAV (:class:`~omgrab.cameras.video_file.VideoFileCamera`), paced at
the configured rate, scaled to the configured size and replayed in a loop, so a rig can be run
against recorded footage. Frames are stamped with the device clock when delivered. The device
is connected while the camera is open and not finished, ready once a frame was delivered; the
preview is the last frame delivered.
"""

from __future__ import annotations

import pathlib

from omgrab import clock as clock_mod
from omgrab.cameras import base as camera_base
from omgrab.cameras import video_file
from omgrab.devices import base
from omgrab.sensors import base as sensor_base


class _ReplayCamera(video_file.VideoFileCamera):
    """A looping, paced replay that remembers the last frame it delivered (the preview)."""

    def __init__(
        self, path: pathlib.Path, config: camera_base.CameraConfig, clock: clock_mod.DeviceClock
    ) -> None:
        super().__init__(path, config, clock=clock, pace=True, loop=True, output="rgb", resize=True)
        self.latest: camera_base.Frame | None = None

    def _read_frame(self, timeout_s: float | None) -> camera_base.Frame:
        frame = super()._read_frame(timeout_s)
        self.latest = frame
        return frame


class VideoFileCaptureDevice(base.StreamDevice[_ReplayCamera, sensor_base.Sensor]):
    """One video file replayed in real time, in a loop, as the ``rgb`` stream.

    Args:
        label: Device label.
        path: The video file (anything PyAV decodes).
        config: Replay rate and frame size (frames are scaled to it).
        clock: Device clock; the process-wide clock by default.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """

    def __init__(
        self,
        label: str,
        path: str | pathlib.Path,
        config: camera_base.CameraConfig,
        clock: clock_mod.DeviceClock | None = None,
    ) -> None:
        clock = clock if clock is not None else clock_mod.default_clock()
        super().__init__(label, {"rgb": _ReplayCamera(pathlib.Path(path), config, clock)})

    @property
    def device_type(self) -> base.DeviceType:
        """Always ``DeviceType.SIMULATED`` (no hardware)."""
        return base.DeviceType.SIMULATED

    @property
    def connected(self) -> bool:
        """True while the file exists (closed) or replays (open)."""
        camera = self._cameras["rgb"]
        return (not camera.finished) if self._streams_open else camera.path.exists()

    @property
    def ready(self) -> bool:
        """True when open and a frame was delivered."""
        return self._streams_open and self._cameras["rgb"].frames_delivered > 0

    def wait_until_ready(self, timeout: float) -> bool:
        """Return ``connected``: frames flow as soon as the recorder reads them."""
        return self.connected

    def preview(self) -> camera_base.Frame | None:
        """The last frame delivered, or None."""
        return self._cameras["rgb"].latest
