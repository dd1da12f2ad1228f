"""Read the packets of a chunk file while its writer is still writing it.

The stream worker writes every packet of an open chunk as a Cluster of its own and flushes it
(``stream_worker``), so the file always ends with complete clusters, possibly followed by the
first bytes of the next one. :class:`TailingChunk` looks like the one-stream PyAV container the
merge reads a closed chunk through (``streams``, ``demux()``, ``close()``), but ``demux()``
yields the packets of the complete clusters as they appear and waits for more until the chunk
is closed, then reads it to its end (the Cues and Tags after the last cluster end it).

Packets are built from the Matroska blocks (:func:`mkv_splice.blocks`): the payload bytes, the
pts in milliseconds, the keyframe flag and the duration (the track's ``DefaultDuration``, or a
BlockGroup's ``BlockDuration``) are what libavformat's demuxer gives for the same block, so the
merge copies the same packets whichever way a chunk was read. Data path: one read of the bytes
appended since the last look, per look; memory holds at most one incomplete cluster.
"""

from __future__ import annotations

import fractions
import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import av

from omgrab.recording import ebml, mkv_splice

_TRACKS = 0x1654AE6B
_TRACK_ENTRY = 0xAE
_DEFAULT_DURATION = 0x23E383
_MS = fractions.Fraction(1, 1000)
_READ = 1 << 20


class TailingChunk:
    """A chunk file being written, read as it grows; see the module docstring.

    Args:
        path: The chunk file (its first packet already written: the writer renames it then).
        is_closed: Whether the writer has closed the file (its trailer written).
        wait: Called when every complete cluster has been read and the chunk is still open;
            returns after a while (or raises to abandon the read).
        template: The PyAV container opened header-only on the file (codec parameters).
    """

    def __init__(
        self,
        path: pathlib.Path,
        is_closed: Callable[[], bool],
        wait: Callable[[], None],
        template: Any,
    ) -> None:
        self.path = path
        self._is_closed = is_closed
        self._wait = wait
        self._template = template
        self.streams = template.streams

    def close(self) -> None:
        """Close the header container."""
        self._template.close()

    def demux(self) -> Iterator[Any]:
        """Yield the packets of the chunk until it is closed and read to its end."""
        with self.path.open("rb") as f:
            head = f.read(_READ)
            pos, default_ms = _first_cluster(head)
            buffer = b""
            while True:
                closed = self._is_closed()  # before reading: what follows is all there is
                f.seek(pos + len(buffer))
                buffer += f.read()
                used, packets, ended = _complete_clusters(buffer, default_ms)
                yield from packets
                pos += used
                buffer = buffer[used:]
                if ended or (closed and not packets):
                    return
                if not packets:
                    self._wait()


def open_tail(
    path: pathlib.Path, is_closed: Callable[[], bool], wait: Callable[[], None]
) -> TailingChunk | None:
    """A :class:`TailingChunk` for ``path``, or ``None`` while it has no readable header yet."""
    try:
        template = av.open(
            str(path),
            "r",
            format="matroska",
            options={"skip_frame": "all", "probesize": "32", "analyzeduration": "0"},
        )
    except (av.error.FFmpegError, OSError):
        return None
    if len(template.streams) != 1:
        template.close()
        return None
    return TailingChunk(path, is_closed, wait, template)


def _first_cluster(head: bytes) -> tuple[int, int]:
    """Return (offset of the first Cluster, the track's default duration in ms)."""
    try:
        _, _, seg_data, _ = mkv_splice.segment_bounds(head)
        default_ms = 0
        pos = seg_data
        while pos < len(head):
            element_id, after = ebml.read_id(head, pos)
            size, payload, _ = ebml.read_size(head, after)
            if element_id == mkv_splice.CLUSTER:
                return pos, default_ms
            if size == ebml.UNKNOWN_SIZE:
                break
            if element_id == _TRACKS:
                default_ms = _default_duration_ms(head, payload, payload + size)
            pos = payload + size
    except (IndexError, ebml.EbmlError) as exc:
        raise mkv_splice.SpliceError(f"chunk header cannot be parsed: {exc}") from exc
    raise mkv_splice.SpliceError("no cluster in the first MiB of the chunk")


def _default_duration_ms(data: bytes, start: int, end: int) -> int:
    for element_id, _, payload, entry_end in ebml.iter_children(data, start, end):
        if element_id != _TRACK_ENTRY:
            continue
        for child_id, _, child, child_end in ebml.iter_children(data, payload, entry_end):
            if child_id == _DEFAULT_DURATION:
                return round(ebml.read_uint(data[child:child_end]) / 1_000_000)
    return 0


def _complete_clusters(buffer: bytes, default_ms: int) -> tuple[int, list[Any], bool]:
    """Packets of the complete clusters at the start of ``buffer``.

    Returns (bytes used, packets, whether a non-cluster element ended the clusters).
    """
    pos = 0
    packets: list[Any] = []
    while pos < len(buffer):
        try:
            element_id, after = ebml.read_id(buffer, pos)
            size, payload, _ = ebml.read_size(buffer, after)
        except (IndexError, ebml.EbmlError):
            break  # the header of the next element is not all there yet
        if element_id != mkv_splice.CLUSTER:
            return pos, packets, True  # Cues / Tags of the trailer: the chunk is complete
        if size == ebml.UNKNOWN_SIZE or payload + size > len(buffer):
            break
        cluster = buffer[pos : payload + size]
        for block in mkv_splice.blocks(cluster):
            packets.append(_packet(block, default_ms))
        pos = payload + size
    return pos, packets, False


def _packet(block: mkv_splice.Block, default_ms: int) -> Any:
    packet = av.Packet(bytes(block.payload))
    packet.pts = block.pts
    packet.dts = block.pts
    packet.time_base = _MS
    packet.is_keyframe = block.keyframe
    packet.duration = block.duration if block.duration is not None else default_ms
    return packet
