"""Merging omgrab 0.1.2's on-disk layout: single-stream part files and flat chunk directories.

omgrab 0.1.2 wrote each chunk as one multi-stream ``NNNNN.mkv`` directly in the recording
directory (assembled from per-stream ``.mkv.part`` files). This package's writer keeps one
directory per stream instead (``docs/spool-format.md``); these functions keep 0.1.2's merge
entry points working, so recordings and code from 0.1.2 still merge.

Data path: FFmpeg stream copy (``ffmpeg -c copy``; the concat demuxer for chunk lists) into
``<output>.tmp``, verified, fsynced and renamed over the output. Bounds: one FFmpeg process at a
time, 300 s at most. Error policy: a failing FFmpeg raises ``RuntimeError`` with its stderr tail
and removes the temporary file. Deletes: the inputs (part files, chunks) are removed only after
the merged file is fsynced and holds, per stream, as many packets as the inputs; a single chunk
is moved (renamed) instead; the chunk directory is removed only when nothing else is left in it.
"""

from __future__ import annotations

import logging
import os
import pathlib
import subprocess
from collections.abc import Sequence

import av

logger = logging.getLogger(__name__)

_FFMPEG_TIMEOUT_S = 300


def packet_counts(path: pathlib.Path) -> list[int]:
    """Return the number of packets of each stream of an MKV file, in stream order."""
    with av.open(str(path)) as container:
        counts = [0] * len(container.streams)
        for packet in container.demux():
            if packet.size:
                counts[packet.stream.index] += 1
    return counts


def _run_ffmpeg(args: list[str], tmp_path: pathlib.Path) -> None:
    cmd = ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", *args, "-f", "matroska", str(tmp_path)]
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=_FFMPEG_TIMEOUT_S, check=False
    )
    if result.returncode != 0:
        tmp_path.unlink(missing_ok=True)
        raise RuntimeError(f"ffmpeg failed (exit {result.returncode}): {result.stderr[-500:]}")


def _publish(tmp_path: pathlib.Path, output_path: pathlib.Path) -> None:
    with open(tmp_path, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp_path, output_path)
    _fsync_file_and_directory(output_path)


def _fsync_file_and_directory(path: pathlib.Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def merge_stream_files(part_paths: Sequence[pathlib.Path], output_path: pathlib.Path) -> None:
    """Merge single-stream MKV part files into one multi-stream MKV (stream copy).

    Streams keep the order of ``part_paths``. The parts are deleted once the merged file is
    durable and holds every packet. An empty list does nothing.

    Raises:
        RuntimeError: FFmpeg failed or the merged file lacks packets (parts are kept).
    """
    if not part_paths:
        return
    output_path = pathlib.Path(output_path)
    tmp_path = output_path.with_name(output_path.name + ".tmp")
    args: list[str] = []
    for part in part_paths:
        args += ["-i", str(part)]
    args += ["-c", "copy"]
    for index in range(len(part_paths)):
        args += ["-map", str(index)]
    _run_ffmpeg(args, tmp_path)
    expected = [sum(packet_counts(pathlib.Path(p))) for p in part_paths]
    if packet_counts(tmp_path) != expected:
        tmp_path.unlink(missing_ok=True)
        raise RuntimeError(f"merged {output_path.name} lacks packets; parts kept")
    _publish(tmp_path, output_path)
    for part in part_paths:
        pathlib.Path(part).unlink(missing_ok=True)


def merge_flat_chunks(recording_dir: pathlib.Path, output_path: pathlib.Path) -> bool:
    """Concatenate a 0.1.2-layout directory of ``*.mkv`` chunks into ``output_path``.

    The directory is removed once the merged file is durable and holds every packet.

    Returns:
        False when the directory holds no chunk (nothing is written), else True.

    Raises:
        RuntimeError: FFmpeg failed or the merged file lacks packets (chunks are kept).
    """
    recording_dir = pathlib.Path(recording_dir)
    output_path = pathlib.Path(output_path)
    chunks = sorted(recording_dir.glob("*.mkv"))
    if not chunks:
        logger.warning("no chunks in %s, nothing to merge", recording_dir)
        return False
    if len(chunks) == 1:
        # One chunk is the recording: moving it loses nothing (as in 0.1.2).
        os.replace(chunks[0], output_path)
        _fsync_file_and_directory(output_path)
        _remove_if_empty(recording_dir)
        return True
    tmp_path = output_path.with_name(output_path.name + ".tmp")
    list_file = recording_dir / "filelist.txt"
    lines = ["file '" + str(c.resolve()).replace("'", "'\\''") + "'" for c in chunks]
    list_file.write_text("\n".join(lines) + "\n")
    try:
        _run_ffmpeg(
            ["-f", "concat", "-safe", "0", "-i", str(list_file), "-map", "0", "-c", "copy"],
            tmp_path,
        )
    finally:
        list_file.unlink(missing_ok=True)
    per_chunk = [packet_counts(c) for c in chunks]
    expected = [sum(column) for column in zip(*per_chunk, strict=False)]
    if packet_counts(tmp_path) != expected:
        tmp_path.unlink(missing_ok=True)
        raise RuntimeError(f"merged {output_path.name} lacks packets; chunks kept")
    _publish(tmp_path, output_path)
    logger.info("merged %d chunks of %s into %s", len(chunks), recording_dir, output_path)
    for chunk in chunks:
        chunk.unlink(missing_ok=True)
    _remove_if_empty(recording_dir)
    return True


def _remove_if_empty(directory: pathlib.Path) -> None:
    try:
        directory.rmdir()
    except OSError:
        logger.info("%s still holds other files; left in place", directory)
