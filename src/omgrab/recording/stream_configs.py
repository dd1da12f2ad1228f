"""Published 0.1.2 import path ``omgrab.recording.stream_configs``: a thin compatibility module.

Re-exports :class:`~omgrab.recording.config.VideoStreamConfig` and
:class:`~omgrab.recording.config.DataStreamConfig`. See ``docs/compat.md``.
"""

from omgrab.recording.config import DataStreamConfig, VideoStreamConfig

__all__ = ["DataStreamConfig", "VideoStreamConfig"]
