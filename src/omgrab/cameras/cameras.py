"""Published 0.1.2 import path ``omgrab.cameras.cameras``: a thin compatibility module.

Re-exports the camera contract from :mod:`omgrab.cameras.base` under the names omgrab 0.1.2
published. ``Frame`` here is an image array (the published meaning); the ``(image, timestamp)``
pair is :data:`omgrab.cameras.base.Frame`. See ``docs/compat.md``.
"""

import time

from omgrab.cameras.base import (
    Camera,
    CameraConfig,
    DepthFrame,
    FrameT,
    FrameUnavailableError,
    RGBFrame,
)
from omgrab.cameras.base import FrameArray as Frame

__all__ = [
    "Camera",
    "CameraConfig",
    "DepthFrame",
    "Frame",
    "FrameT",
    "FrameUnavailableError",
    "RGBFrame",
    "time",
]
