"""Published 0.1.2 import path ``omgrab.recording.py_av_writer``: a compatibility module.

Re-exports the 0.1.2 encoders (:mod:`omgrab.recording.pyav_encoders`) and merge functions.
``merge_recording_chunks(recording_dir, output_path)`` behaves as in 0.1.2: it merges a
recording directory, deletes it afterwards (here only once the merged file is verified) and
logs instead of raising when there is nothing to merge. It accepts both this package's
per-stream layout and 0.1.2's flat chunk layout. See ``docs/compat.md``.
"""

from __future__ import annotations

import logging
import pathlib

from omgrab.recording import flat_chunks, spool_files
from omgrab.recording import merge as merge_mod
from omgrab.recording.flat_chunks import merge_stream_files
from omgrab.recording.pyav_encoders import (
    TIME_BASE,
    DataStreamEncoder,
    StreamEncoder,
    VideoStreamEncoder,
)

logger = logging.getLogger(__name__)

__all__ = [
    "TIME_BASE",
    "DataStreamEncoder",
    "StreamEncoder",
    "VideoStreamEncoder",
    "merge_recording_chunks",
    "merge_stream_files",
]


def merge_recording_chunks(
    recording_dir: pathlib.Path, output_path: pathlib.Path
) -> pathlib.Path | None:
    """Merge a recording directory into ``output_path`` and remove the directory (0.1.2).

    Args:
        recording_dir: A writer's ``output_directory`` (per-stream layout) or a 0.1.2
            directory of multi-stream ``*.mkv`` chunks.
        output_path: The merged ``.mkv`` path.

    Returns:
        The merged file's path, or None when there was nothing to merge (logged).

    Raises:
        RuntimeError: The merge failed (``MergeError`` is a ``RuntimeError``); nothing is
            deleted then.
    """
    recording_dir = pathlib.Path(recording_dir)
    per_stream = (recording_dir / spool_files.RECORDING_FILE).exists() or any(
        recording_dir.glob("*/*.mkv")
    )
    if not per_stream:
        merged = flat_chunks.merge_flat_chunks(recording_dir, output_path)
        return pathlib.Path(output_path) if merged else None
    try:
        return merge_mod.merge_recording_chunks(recording_dir, output_path, cleanup=True)
    except merge_mod.EmptyRecordingError:
        logger.warning("no chunks in %s, nothing to merge", recording_dir)
        return None
