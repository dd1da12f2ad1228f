"""Build one Matroska file from pieces libavformat muxed separately, and finish it in place.

The incremental merge (:mod:`omgrab.recording.live_merge`) never keeps a muxer open across
chunks: every batch of packets is muxed by libavformat into memory as a complete file, and only
its ``Cluster`` elements are appended to the growing file. This module holds the byte-level
part of that:

* :func:`split` takes a complete file libavformat wrote and returns its header (everything of
  the Segment before the first Cluster), its clusters and its cue points;
* :func:`growing_header` turns a header into the start of a growing file: the Segment size is
  set to "unknown", which every Matroska reader accepts for a file still being written (a
  crash leaves exactly such a file, readable up to its last complete cluster);
* :func:`blocks` lists the frames of a cluster (track, timestamp, payload, keyframe);
* :func:`finish_file` appends the Cues, writes the SeekHead, the Info duration and the Segment size
  in place, which turns the growing file into a finished one. Nothing before the clusters
  moves: the SeekHead is rewritten inside the bytes libavformat reserved for it.

Cue positions: libavformat's cue points of each batch point into that batch's own Segment;
:class:`CuePoint` keeps them relative to the batch's first cluster so they can be moved to
where that cluster lands in the growing file.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Iterator

from omgrab.recording import ebml

EBML_HEADER = 0x1A45DFA3
SEGMENT = 0x18538067
SEEK_HEAD = 0x114D9B74
SEEK = 0x4DBB
SEEK_ID = 0x53AB
SEEK_POSITION = 0x53AC
INFO = 0x1549A966
DURATION = 0x4489
TRACKS = 0x1654AE6B
TAGS = 0x1254C367
CLUSTER = 0x1F43B675
CLUSTER_TIMESTAMP = 0xE7
SIMPLE_BLOCK = 0xA3
BLOCK_GROUP = 0xA0
BLOCK = 0xA1
BLOCK_DURATION = 0x9B
CUES = 0x1C53BB6B
CUE_POINT = 0xBB
CUE_TRACK_POSITIONS = 0xB7
CUE_CLUSTER_POSITION = 0xF1

#: Level-1 elements the SeekHead of a finished file points to, in file order.
SEEK_TARGETS = (INFO, TRACKS, TAGS, CUES)


class SpliceError(ValueError):
    """A piece is not the Matroska libavformat writes, or a growing file cannot be finished."""


@dataclasses.dataclass
class CuePoint:
    """One cue point of a batch, its cluster positions relative to the batch's first cluster.

    Attributes:
        time_payload: The CuePoint's children other than its CueTrackPositions (CueTime).
        tracks: Per CueTrackPositions, its children other than CueClusterPosition and that
            cluster's offset from the batch's first cluster.
    """

    time_payload: bytes
    tracks: list[tuple[bytes, int]]  # (CueTrackPositions payload without the position, offset)

    def encode(self, first_cluster: int) -> bytes:
        """The CuePoint element with positions relative to the file's Segment data."""
        body = bytearray(self.time_payload)
        for rest, offset in self.tracks:
            inner = ebml.uint_element(CUE_CLUSTER_POSITION, first_cluster + offset) + rest
            body += ebml.element(CUE_TRACK_POSITIONS, inner)
        return ebml.element(CUE_POINT, bytes(body))


@dataclasses.dataclass
class Pieces:
    """What :func:`split` found in a complete file."""

    header: bytes
    segment_data: int  # offset of the Segment's payload in ``header``
    clusters: list[bytes]
    cues: list[CuePoint]


def segment_bounds(data: bytes | memoryview) -> tuple[int, int, int, int]:
    """Return (segment start, size field position, payload start, payload end) of a file."""
    element_id, after = ebml.read_id(data, 0)
    if element_id != EBML_HEADER:
        raise SpliceError("not a Matroska file (no EBML header)")
    size, payload, _ = ebml.read_size(data, after)
    start = payload + size
    element_id, size_at = ebml.read_id(data, start)
    if element_id != SEGMENT:
        raise SpliceError("no Segment after the EBML header")
    size, seg_payload, _ = ebml.read_size(data, size_at)
    end = len(data) if size == ebml.UNKNOWN_SIZE else seg_payload + size
    return start, size_at, seg_payload, end


def split(data: bytes) -> Pieces:
    """Split a complete file libavformat wrote into its header, clusters and cue points.

    Raises:
        SpliceError: ``data`` is not such a file.
    """
    try:
        _, _, seg_data, seg_end = segment_bounds(data)
        header_end = None
        clusters: list[bytes] = []
        first_cluster: int | None = None
        cues: list[CuePoint] = []
        for element_id, start, payload, end in ebml.iter_children(data, seg_data, seg_end):
            if element_id == CLUSTER:
                if header_end is None:
                    header_end = start
                    first_cluster = start - seg_data
                clusters.append(data[start:end])
            elif element_id == CUES and first_cluster is not None:
                cues.extend(_cue_points(data, payload, end, first_cluster))
    except (IndexError, ebml.EbmlError) as exc:
        raise SpliceError(f"muxed batch cannot be parsed: {exc}") from exc
    return Pieces(data[: header_end or seg_end], seg_data, clusters, cues)


def _cue_points(data: bytes, start: int, end: int, first_cluster: int) -> Iterator[CuePoint]:
    for element_id, _, payload, point_end in ebml.iter_children(data, start, end):
        if element_id != CUE_POINT:
            continue
        time_payload = bytearray()
        tracks = []
        for child_id, child_start, child_payload, child_end in ebml.iter_children(
            data, payload, point_end
        ):
            if child_id != CUE_TRACK_POSITIONS:
                time_payload += data[child_start:child_end]
                continue
            rest = bytearray()
            offset = 0
            for sub_id, sub_start, sub_payload, sub_end in ebml.iter_children(
                data, child_payload, child_end
            ):
                if sub_id == CUE_CLUSTER_POSITION:
                    offset = ebml.read_uint(data[sub_payload:sub_end]) - first_cluster
                else:
                    rest += data[sub_start:sub_end]
            tracks.append((bytes(rest), offset))
        yield CuePoint(bytes(time_payload), tracks)


def growing_header(pieces: Pieces) -> bytes:
    """The start of a growing file: ``pieces.header`` with an unknown Segment size.

    Raises:
        SpliceError: the Segment size field is not 8 bytes wide (libavformat always writes 8).
    """
    header = bytearray(pieces.header)
    _, size_at, seg_data, _ = segment_bounds(header)
    if seg_data - size_at != 8:
        raise SpliceError("the Segment size field is not 8 bytes wide")
    header[size_at:seg_data] = ebml.unknown_size(8)
    return bytes(header)


@dataclasses.dataclass
class Block:
    """One frame of a cluster."""

    track: int
    pts: int
    payload: memoryview
    keyframe: bool
    duration: int | None = None  # a BlockGroup's BlockDuration (ms), if it has one


def blocks(cluster: bytes | memoryview) -> Iterator[Block]:
    """List the frames of one Cluster element (SimpleBlocks and BlockGroups, no lacing).

    Raises:
        SpliceError: the cluster is malformed or uses lacing (libavformat never laces these).
    """
    view = memoryview(cluster)
    try:
        element_id, after = ebml.read_id(view, 0)
        size, payload, _ = ebml.read_size(view, after)
        if element_id != CLUSTER or size == ebml.UNKNOWN_SIZE:
            raise SpliceError("not a complete Cluster element")
        cluster_ts = 0
        for child_id, _, start, end in ebml.iter_children(view, payload, payload + size):
            if child_id == CLUSTER_TIMESTAMP:
                cluster_ts = ebml.read_uint(view[start:end])
            elif child_id == SIMPLE_BLOCK:
                yield _block(view, start, end, cluster_ts, simple=True)
            elif child_id == BLOCK_GROUP:
                found = None
                duration = None
                for sub_id, _, sub_start, sub_end in ebml.iter_children(view, start, end):
                    if sub_id == BLOCK:
                        found = _block(view, sub_start, sub_end, cluster_ts, simple=False)
                    elif sub_id == BLOCK_DURATION:
                        duration = ebml.read_uint(view[sub_start:sub_end])
                if found is not None:
                    found.duration = duration
                    yield found
    except (IndexError, ebml.EbmlError) as exc:
        raise SpliceError(f"malformed cluster: {exc}") from exc


def _block(view: memoryview, start: int, end: int, cluster_ts: int, simple: bool) -> Block:
    track, pos, _ = ebml.read_size(view, start)  # the track number is a vint
    relative = int.from_bytes(view[pos : pos + 2], "big", signed=True)
    flags = view[pos + 2]
    if flags & 0x06:
        raise SpliceError("laced block")
    keyframe = bool(flags & 0x80) if simple else True
    return Block(track, cluster_ts + relative, view[pos + 3 : end], keyframe)


@dataclasses.dataclass
class HeaderLayout:
    """Where the parts :func:`finish_file` edits sit in a growing file (absolute offsets)."""

    segment_size_at: int
    segment_data: int
    seek_head: tuple[int, int]  # (start, bytes available: SeekHead plus the Void after it)
    duration: tuple[int, int] | None  # (payload offset, width) of Info's Duration
    positions: dict[int, int]  # level-1 element id -> offset relative to the Segment data
    first_cluster: int  # absolute offset where the header ends


def header_layout(header: bytes) -> HeaderLayout:
    """Locate what :func:`finish_file` edits in a growing file's header.

    Raises:
        SpliceError: the header lacks a SeekHead (libavformat always reserves one).
    """
    try:
        _, size_at, seg_data, _ = segment_bounds(header)
        seek_head: tuple[int, int] | None = None
        duration = None
        positions: dict[int, int] = {}
        end = len(header)
        previous_was_seek_head = False
        for element_id, start, payload, element_end in ebml.iter_children(header, seg_data, end):
            if element_id == SEEK_HEAD and seek_head is None:
                seek_head = (start, element_end - start)
                previous_was_seek_head = True
                continue
            if element_id == ebml.VOID and previous_was_seek_head and seek_head is not None:
                seek_head = (seek_head[0], element_end - seek_head[0])
            previous_was_seek_head = False
            positions.setdefault(element_id, start - seg_data)
            if element_id == INFO:
                for child_id, _, child_payload, child_end in ebml.iter_children(
                    header, payload, element_end
                ):
                    if child_id == DURATION:
                        duration = (child_payload, child_end - child_payload)
    except (IndexError, ebml.EbmlError) as exc:
        raise SpliceError(f"header cannot be parsed: {exc}") from exc
    if seek_head is None:
        raise SpliceError("header has no SeekHead")
    return HeaderLayout(size_at, seg_data, seek_head, duration, positions, len(header))


def _seek_head(positions: dict[int, int], available: int) -> bytes:
    entries = bytearray()
    for element_id in SEEK_TARGETS:
        if element_id in positions:
            seek = ebml.element(SEEK_ID, element_id.to_bytes(4, "big"))
            seek += ebml.uint_element(SEEK_POSITION, positions[element_id])
            entries += ebml.element(SEEK, seek)
    block = ebml.element(SEEK_HEAD, bytes(entries))
    gap = available - len(block)
    if gap < 0 or gap == 1:
        raise SpliceError(f"the SeekHead needs {len(block)} bytes, {available} are reserved")
    return block + (ebml.void(gap) if gap else b"")


def cues_element(points: bytes) -> bytes:
    """The Cues element holding the encoded CuePoint elements ``points`` (empty: none)."""
    return ebml.element(CUES, points) if points else b""


def finish_file(
    path: pathlib.Path,
    layout: HeaderLayout,
    cues: bytes,
    duration_ms: float | None,
) -> int:
    """Finish the growing file at ``path`` in place; return its final size.

    Appends ``cues`` (from :func:`cues_element`, may be empty when nothing is seekable), then
    writes the SeekHead (Info, Tracks, Tags, Cues), the Info duration and the Segment size into
    the header bytes reserved for them. The file must end right after its last cluster.

    Raises:
        SpliceError: the reserved SeekHead space is too small.
        OSError: writing failed.
    """
    with path.open("r+b") as f:
        f.seek(0, os.SEEK_END)
        cues_at = f.tell()
        positions = dict(layout.positions)
        if cues:
            f.write(cues)
            positions[CUES] = cues_at - layout.segment_data
        end = f.tell()
        f.seek(layout.seek_head[0])
        f.write(_seek_head(positions, layout.seek_head[1]))
        if layout.duration is not None and duration_ms is not None:
            offset, width = layout.duration
            f.seek(offset)
            f.write(ebml.float_payload(float(duration_ms), width))
        f.seek(layout.segment_size_at)
        f.write(ebml.encode_size(end - layout.segment_data, 8))
        f.flush()
        os.fsync(f.fileno())
    return end


def reopen_file(path: pathlib.Path, layout: HeaderLayout, size: int) -> None:
    """Make a (possibly half-finished) file growing again, ``size`` bytes long.

    Cuts what follows its last verified cluster (a cut batch, or the Cues of a finish that was
    interrupted), and sets the Segment size back to unknown and the SeekHead to the header's
    elements, so clusters appended next are inside the Segment.
    """
    with path.open("r+b") as f:
        f.truncate(size)
        f.seek(layout.seek_head[0])
        f.write(_seek_head(layout.positions, layout.seek_head[1]))
        f.seek(layout.segment_size_at)
        f.write(ebml.unknown_size(8))
        f.flush()
        os.fsync(f.fileno())
