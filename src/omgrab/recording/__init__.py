"""Crash-safe chunked recording of video and data streams.

The writer half lives here (``ChunkedWriter`` and the stream configs); merge, manifest and
orphan recovery are added by their own modules. The on-disk contract between them is
``docs/spool-format.md``. ``chunked_writer``, ``py_av_writer`` and ``stream_configs`` are
omgrab 0.1.2's import paths (``docs/compat.md``).
"""

from omgrab.recording.config import (
    DataStreamConfig,
    VideoStreamConfig,
    depth_stream_config,
    imu_stream_config,
    rgb_stream_config,
)
from omgrab.recording.flat_chunks import merge_stream_files
from omgrab.recording.ids import default_chunk_id, new_recording_id
from omgrab.recording.manifest import Manifest, ManifestError, read_manifest, write_manifest
from omgrab.recording.merge import (
    EmptyRecordingError,
    MergeError,
    MergeResult,
    merge_recording,
    merge_recording_chunks,
)
from omgrab.recording.pyav_encoders import StreamEncoder
from omgrab.recording.recovery import RecoveryReport, merge_orphaned_chunks, recover_orphans
from omgrab.recording.stream_queue import StartChunkCallback, StreamQueue
from omgrab.recording.writer import ChunkedWriter
from omgrab.recording.writer_stats import ChunkInfo, StreamStats

__all__ = [
    "ChunkInfo",
    "ChunkedWriter",
    "DataStreamConfig",
    "EmptyRecordingError",
    "Manifest",
    "ManifestError",
    "MergeError",
    "MergeResult",
    "RecoveryReport",
    "StartChunkCallback",
    "StreamEncoder",
    "StreamQueue",
    "StreamStats",
    "VideoStreamConfig",
    "default_chunk_id",
    "depth_stream_config",
    "imu_stream_config",
    "merge_orphaned_chunks",
    "merge_recording",
    "merge_recording_chunks",
    "merge_stream_files",
    "new_recording_id",
    "read_manifest",
    "recover_orphans",
    "rgb_stream_config",
    "write_manifest",
]
