"""Camera sources: the ``Camera`` contract and synthetic, file, queue and USB cameras.

Every camera is a context manager whose ``get_next_frame(timeout_s)`` returns
``(frame, timestamp)``: an ``HxWx3`` uint8 RGB or ``HxW`` uint16 depth array and a tz-aware UTC
datetime from the device clock (``omgrab.clock``). ``Frame`` is the image array (as in omgrab
0.1.2); the ``(image, timestamp)`` pair is ``omgrab.cameras.base.Frame``.
"""

from omgrab.cameras.base import (
    Camera,
    CameraConfig,
    DepthFrame,
    FrameUnavailableError,
    RGBFrame,
)
from omgrab.cameras.base import FrameArray as Frame
from omgrab.cameras.frame_counter import FrameCounterError
from omgrab.cameras.oakd_camera import OakDDepthCamera, OakDRGBCamera
from omgrab.cameras.queue_reader import QueueReaderCamera
from omgrab.cameras.synthetic import SyntheticCamera, read_frame_counter
from omgrab.cameras.usb import USBCamera
from omgrab.cameras.video_file import VideoFileCamera, probe_config

__all__ = [
    "Camera",
    "CameraConfig",
    "DepthFrame",
    "Frame",
    "FrameCounterError",
    "FrameUnavailableError",
    "OakDDepthCamera",
    "OakDRGBCamera",
    "QueueReaderCamera",
    "RGBFrame",
    "SyntheticCamera",
    "USBCamera",
    "VideoFileCamera",
    "probe_config",
    "read_frame_counter",
]
