"""Published 0.1.2 import path ``omgrab.recording.chunked_writer``: a thin compatibility module.

Re-exports :class:`~omgrab.recording.writer.ChunkedWriter` (same constructor parameters, order
and defaults as 0.1.2) and the names 0.1.2 made available here. The files a writer leaves in its
``output_directory`` use this package's per-stream layout; ``merge_recording_chunks`` turns
them into one MKV. See ``docs/compat.md``.
"""

from omgrab.recording.config import DataStreamConfig, VideoStreamConfig
from omgrab.recording.pyav_encoders import StreamEncoder
from omgrab.recording.stream_queue import StartChunkCallback
from omgrab.recording.writer import ChunkedWriter

#: Stream metadata keys every stream config must carry.
EXPECTED_METADATA_KEYS = ["type"]

__all__ = [
    "EXPECTED_METADATA_KEYS",
    "ChunkedWriter",
    "DataStreamConfig",
    "StartChunkCallback",
    "StreamEncoder",
    "VideoStreamConfig",
]
