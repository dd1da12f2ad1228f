"""Merge a spool recording's per-stream chunk files into one MKV by stream copy (PyAV only).

Timing: chunk packets carry pts in milliseconds since the recording origin
(docs/spool-format.md) and the merge copies them unchanged, so every frame in the merged file
sits at its capture time relative to the recording start, to the 1 ms resolution of Matroska,
whatever was dropped around chunk boundaries. Nothing is re-timed by file durations.

Layout: one track per stream, video streams in recording.json order, then data streams. Track
names come from the stream metadata ``'TITLE'`` (else the stream name); the rest of the stream
metadata (including ``'type'``) becomes track tags, plus ``FRAMES_WRITTEN`` (packets actually
copied), ``FRAMES_DROPPED`` and ``FRAMES_OUT_OF_ORDER`` (from stats.json, ``unknown`` if lost),
and the capture side's ``FRAMES_MISSED`` / ``CAPTURE_GAPS`` (``capture_report``).
Global tags: ``DATE_RECORDED`` (wall-clock time of pts 0, ISO 8601 UTC), ``RECORDING_ID``,
``OMGRAB_VERSION`` (recorder), ``ENCODER`` (``omgrab <version> (<libavformat>)``),
``RECOVERED``, ``STOP_REASON``. libavformat writes Cues, so the file is seekable.

Robustness: packets are read chunk by chunk until the first read error (a crash leaves the last
chunk unterminated and possibly cut mid-cluster); empty packets, packets without timing,
packets not after the previous one of their stream and video packets before a chunk's first
keyframe (or after a discarded packet, until the next keyframe) are discarded and counted, as
are packets before the recording origin (negative pts). A
chunk that cannot be opened, or whose codec parameters differ from the stream's first usable
chunk, is skipped and listed in the manifest's ``skipped_chunks``; it never fails the merge.

Durability and idempotency: the MKV is muxed to a hidden temporary name in the output
directory, its tags are finalised, it is fsynced, checked by re-opening it, then renamed over
the final name and the directory is fsynced; the manifest follows the same way. A crash during
a merge therefore never leaves a partial file under the final name. The output is muxed with
libavformat's bitexact flag, so merging the same chunks again gives a byte-identical MKV.

Spool clean-up policy: the spool directory is kept by default (``cleanup=False``). With
``cleanup=True`` it is deleted only after the MKV and manifest are durable and the MKV has been
re-read packet by packet and every stream's packet count matched what was copied; on any
failure the spool is kept so nothing is lost.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime
import errno
import fractions
import functools
import heapq
import logging
import math
import os
import pathlib
import time
from collections.abc import Iterable, Iterator
from typing import Any

import av

import omgrab
from omgrab.recording import (
    atomic_files,
    capture_report,
    data_track,
    manifest,
    mkv_tags,
    spool_cleanup,
    spool_lock,
    spool_reader,
    writer_loss_tags,
)
from omgrab.recording import stop_reason as stop_reason_mod

logger = logging.getLogger(__name__)

MS_TIME_BASE = fractions.Fraction(1, 1000)
_PENDING = "@omgrab-pending:{index}:{field}@"
READ_ERRORS = (av.error.FFmpegError, OSError, EOFError, ValueError)


class MergeError(RuntimeError):
    """The recording cannot be merged at all (no readable chunk in any stream)."""


class EmptyRecordingError(MergeError):
    """The recording has no chunk file at all (e.g. the writer died before its first packet)."""


@dataclasses.dataclass
class MergeResult:
    """What :func:`merge_recording` produced.

    Attributes:
        output_path: The merged MKV.
        manifest_path: Its manifest.
        manifest: The manifest written.
        cleaned_up: Whether the spool directory was deleted.
    """

    output_path: pathlib.Path
    manifest_path: pathlib.Path
    manifest: manifest.Manifest
    cleaned_up: bool


@dataclasses.dataclass
class TrackState:
    """Merge state of one stream."""

    source: spool_reader.StreamSource
    kind: str
    template: Any  # the first usable input av container (kept open, reused)
    chunks: Iterable[pathlib.Path]  # in pts order; an incremental merge passes a live feed
    codec: str
    signature: tuple[Any, ...]
    config: dict[str, Any]
    metadata: dict[str, str]
    index: int = -1
    out_stream: Any = None
    frames: int = 0
    discarded: int = 0
    bytes: int = 0
    first_pts: int | None = None
    last_pts: int | None = None
    last_duration: int = 0
    chunk_entries: list[manifest.ChunkEntry] = dataclasses.field(default_factory=list)
    part: int = 1  # 1: the stream's track; 2, ...: a track of other codec parameters
    template_in_chunks: bool = True  # the first chunk is read through ``template``
    floor: int = -1  # every packet must come after it (an incremental merge's resume point)
    skip: int = 0  # cleaned packets of the first chunk already in the output (resume)
    tracker: Any = None  # the incremental merge's bookkeeping (live_merge._Tracker)
    opener: Any = None  # opens a chunk for reading instead of open_chunk (a chunk being written)

    @property
    def key(self) -> str:
        """Manifest key of this track: the stream name, ``<name>~<part>`` for extra tracks."""
        return self.source.name if self.part == 1 else f"{self.source.name}~{self.part}"


def codec_signature(stream: Any) -> tuple[Any, ...]:
    """Codec parameters that must agree between chunks of one stream for a stream copy."""
    ctx = stream.codec_context
    extradata = bytes(ctx.extradata) if ctx is not None and ctx.extradata else b""
    if stream.type == "video":
        # the pixel format is unknown (None) when a truncated chunk has no decodable packet
        pix_fmt = ctx.format.name if ctx.format is not None else None
        return (stream.type, ctx.name, ctx.width, ctx.height, extradata, pix_fmt)
    return (stream.type, ctx.name if ctx is not None else None, extradata)


def compatible(signature: tuple[Any, ...], reference: tuple[Any, ...]) -> bool:
    """Whether a chunk with ``signature`` can be stream-copied after ``reference``."""
    if signature[0] == "video" and reference[0] == "video":
        pix_a, pix_b = signature[-1], reference[-1]
        return signature[:-1] == reference[:-1] and (None in (pix_a, pix_b) or pix_a == pix_b)
    return signature == reference


def _kind_of(stream: Any) -> str | None:
    if stream.type == "video":
        return "video"
    if stream.type in ("subtitle", "data"):
        return "data"
    return None


# Opening a later chunk only needs its header (codec, size, extradata): skip the probe decode
# of a first frame, which costs ~15 ms per 1280x800 H.264 chunk (more than copying it).
HEADER_ONLY_OPTIONS = {"skip_frame": "all", "probesize": "32", "analyzeduration": "0"}

# Muxer options. bitexact: no random UIDs or version strings, so merging the same chunks
# twice gives the same bytes. write_crc32=0: no CRC-32 elements (bitexact implies it today;
# explicit because the in-place tag rewrite must not invalidate a checksum).
# flush_packets=0: write in full buffers, not once per packet (a bulk copy needs no
# per-packet durability; the finished file is fsynced before it is published).
MUXER_OPTIONS = {"fflags": "+bitexact", "write_crc32": "0", "flush_packets": "0"}


def open_chunk(path: pathlib.Path, header_only: bool = False) -> tuple[Any | None, str | None]:
    """Open a chunk; return (container, None) or (None, reason)."""
    try:
        container = av.open(
            str(path),
            "r",
            format="matroska",
            options=HEADER_ONLY_OPTIONS if header_only else None,
        )
    except READ_ERRORS as exc:
        return None, f"cannot be opened: {exc}"
    if len(container.streams) != 1:
        count = len(container.streams)
        container.close()
        return None, f"holds {count} streams, a chunk must hold exactly one"
    if _kind_of(container.streams[0]) is None:
        kind = container.streams[0].type
        container.close()
        return None, f"holds a {kind} stream, expected video or data"
    return container, None


def _first_pts(container: Any) -> int | None:
    """Return the pts of the first non-empty packet of an open chunk, if it has one."""
    try:
        for packet in container.demux():
            if packet.size:
                return packet.pts if packet.pts is not None else packet.dts
    except READ_ERRORS:
        return None
    return None


def _iso_utc(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed


#: Largest frame rate taken from recording.json; beyond it (or not finite) it is ignored.
MAX_FPS = 10_000


def _usable_fps(fps: Any) -> float | None:
    """recording.json's ``fps`` if it can be a track frame rate; hostile values are ignored."""
    if isinstance(fps, bool) or not isinstance(fps, int | float):
        return None
    return float(fps) if math.isfinite(fps) and 0 < fps <= MAX_FPS else None


def _stat_int(stats: dict[str, Any] | None, key: str) -> int | None:
    """A non-negative 63-bit count from stats.json, else ``None`` (unknown)."""
    if stats is None:
        return None
    value = stats.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value < 2**63 else None


def _relative(path: pathlib.Path, root: pathlib.Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


class Merger:
    """One merge of one spool recording."""

    def __init__(self, spool: spool_reader.SpoolRecording) -> None:
        self.spool = spool
        self.streams: list[TrackState] = []
        self.skipped: list[manifest.SkippedChunk] = []
        self.notes: list[str] = list(spool.problems)
        self.empty_streams: list[spool_reader.StreamSource] = []

    def skip(self, source: spool_reader.StreamSource, path: pathlib.Path, reason: str) -> None:
        """Record a chunk that cannot be used (listed in the manifest's ``skipped_chunks``)."""
        rel = _relative(path, self.spool.directory)
        logger.warning("merge %s: skipping chunk %s: %s", self.spool.recording_id, rel, reason)
        self.skipped.append(manifest.SkippedChunk(source.name, rel, reason))

    def ordered_chunks(
        self, source: spool_reader.StreamSource
    ) -> list[tuple[pathlib.Path, tuple[Any, ...]]]:
        """Return the stream's readable chunks, with their codec signature, by first pts.

        Chunk ids come from a user callback and need not sort in time order, so the order is
        taken from the packets themselves. Unreadable chunks are skipped here.
        """
        keyed = []
        for position, path in enumerate(source.chunks):
            container, reason = open_chunk(path, header_only=True)
            if container is None:
                self.skip(source, path, reason or "unreadable")
                continue
            try:
                kind = _kind_of(container.streams[0])
                if source.kind is not None and kind != source.kind:
                    self.skip(
                        source, path, f"holds a {kind} stream but the stream is {source.kind}"
                    )
                    continue
                signature = codec_signature(container.streams[0])
                first = _first_pts(container)
            finally:
                container.close()
            # chunks without a readable packet sort last; they only add a manifest entry
            keyed.append((first is None, first or 0, position, path, signature))
        return [(path, signature) for *_, path, signature in sorted(keyed)]

    @staticmethod
    def _groups(
        ordered: list[tuple[pathlib.Path, tuple[Any, ...]]],
    ) -> list[list[pathlib.Path]]:
        """Split a stream's chunks into groups of stream-copy compatible codec parameters.

        The first group is the stream's own track; every other set of codec parameters (a
        camera reconfigured mid-recording, a chunk of another resolution) becomes one more
        track, so no chunk is dropped for differing.
        """
        groups: list[tuple[tuple[Any, ...], list[pathlib.Path]]] = []
        for path, signature in ordered:
            for reference, members in groups:
                if compatible(signature, reference):
                    members.append(path)
                    break
            else:
                groups.append((signature, [path]))
        return [members for _, members in groups]

    def prepare(self) -> None:
        """Order chunks, open each track's first usable chunk, order the tracks.

        The first usable chunk of a track is its codec template; video tracks come first.
        Chunks whose codec parameters differ from the stream's first chunk get their own
        track (named ``<title> (2)`` ..., manifest key ``<stream>~2`` ...).
        """
        for source in self.spool.streams:
            groups = self._groups(self.ordered_chunks(source))
            added = 0
            for members in groups:
                chosen = None
                for position, path in enumerate(members):
                    container, reason = open_chunk(path)
                    if container is None:
                        self.skip(source, path, reason or "unreadable")
                        continue
                    chosen = (container, members[position:])
                    break
                if chosen is None:
                    continue
                added += 1
                self.add_stream(source, *chosen, part=added)
            if added == 0:
                self.empty_streams.append(source)
                self.notes.append(f"stream {source.name!r} has no readable chunk; no track")
            elif added > 1:
                self.notes.append(
                    f"stream {source.name!r}: codec parameters change between chunks; "
                    f"{added} tracks, one per set of parameters"
                )
        if not self.streams:
            if not any(source.chunks for source in self.spool.streams):
                raise EmptyRecordingError(
                    f"recording {self.spool.directory} has no chunk file in any stream"
                )
            raise MergeError(
                f"recording {self.spool.directory} has no readable chunk in any stream"
            )
        video = [s for s in self.streams if s.kind == "video"]
        data = [s for s in self.streams if s.kind != "video"]
        self.streams = video + data
        for index, stream in enumerate(self.streams):
            stream.index = index

    def add_stream(
        self,
        source: spool_reader.StreamSource,
        container: Any,
        chunks: Iterable[pathlib.Path],
        part: int,
    ) -> None:
        """Add a track of ``source`` whose codec template is ``container``'s only stream."""
        in_stream = container.streams[0]
        kind = _kind_of(in_stream)
        config = dict(source.config)
        metadata = source.metadata
        if source.kind is None:
            config, metadata = self._infer_config(in_stream)
            if part == 1:
                self.notes.append(f"stream {source.name!r}: kind and config inferred from chunks")
        elif part > 1:
            inferred, _ = self._infer_config(in_stream)
            config.update({k: v for k, v in inferred.items() if k != "metadata"})
        self.streams.append(
            TrackState(
                source=source,
                kind=str(kind),
                template=container,
                chunks=chunks,
                codec=(
                    in_stream.codec_context.codec.canonical_name
                    if in_stream.codec_context
                    else "data"
                ),
                signature=codec_signature(in_stream),
                config=config,
                metadata=metadata,
                part=part,
            )
        )

    @staticmethod
    def _infer_config(in_stream: Any) -> tuple[dict[str, Any], dict[str, str]]:
        metadata = {}
        for key, value in in_stream.metadata.items():
            upper = key.upper()
            if upper == "DURATION" or upper.startswith("FRAMES_"):
                continue
            metadata["TITLE" if upper == "TITLE" else key.lower()] = value
        ctx = in_stream.codec_context
        config: dict[str, Any] = {"codec": ctx.name if ctx else None, "metadata": metadata}
        if in_stream.type == "video":
            config.update(
                width=ctx.width,
                height=ctx.height,
                pixel_format=ctx.format.name if ctx.format is not None else None,
            )
        return config, metadata

    def add_output_streams(self, out: Any) -> None:
        """Add one output track per merged track to ``out``, with its title and tags."""
        spool = self.spool
        for stream in self.streams:
            in_stream = stream.template.streams[0]
            if data_track.lacks_header(in_stream):  # published SDK / omgrab < 0.2 chunks
                in_stream = data_track.template_stream()
            try:
                out_stream = out.add_stream_from_template(in_stream)
            except av.codec.codec.UnknownCodecError:  # e.g. AV1 read by libdav1d: no encoder
                out_stream = out.add_stream_from_template(in_stream, opaque=True)
            out_stream.time_base = MS_TIME_BASE
            fps = _usable_fps(stream.config.get("fps"))
            if stream.kind == "video" and fps is not None:
                out_stream.codec_context.framerate = fractions.Fraction(fps).limit_denominator(1001)
            title = stream.source.name
            tags: dict[str, str] = {}
            for key, value in stream.metadata.items():
                if key.upper() == "TITLE":
                    title = value
                else:
                    tags[key] = value
            if stream.part > 1:
                title = f"{title} ({stream.part})"
            stats = spool.stream_stats(stream.source.name)
            dropped = _stat_int(stats, "frames_dropped")
            out_of_order = _stat_int(stats, "frames_out_of_order")
            tags["STREAM_NAME"] = stream.source.name
            tags["FRAMES_WRITTEN"] = _PENDING.format(index=stream.index, field="frames")
            tags["FRAMES_DROPPED"] = "unknown" if dropped is None else str(dropped)
            tags["FRAMES_OUT_OF_ORDER"] = "unknown" if out_of_order is None else str(out_of_order)
            tags["FIRST_PTS_MS"] = _PENDING.format(index=stream.index, field="first")
            tags["LAST_PTS_MS"] = _PENDING.format(index=stream.index, field="last")
            tags.update(capture_report.track_tags(spool.stats, stream.source.name))
            tags.update(writer_loss_tags.track_tags(stats))
            out_stream.metadata.clear()
            out_stream.metadata.update({"title": title, **tags})
            if stream.index == 0:
                out_stream.disposition = av.stream.Disposition.default
            stream.out_stream = out_stream

    def packets(self, stream: TrackState) -> Iterator[tuple[int, int, Any]]:
        """Yield (pts, track index, packet) of one stream across its chunks, cleaned up."""
        index = stream.index
        out_stream = stream.out_stream
        is_video = stream.kind == "video"
        # a packet must come after the previous one of its stream (data packets may share a
        # millisecond) and not before the recording origin; video packets come in decode
        # order (B-frames: pts not monotonic), so they need only come after every packet of
        # the earlier chunks and not repeat a pts of their own chunk
        floor = stream.floor
        skip = stream.skip
        tracker = stream.tracker
        for position, path in enumerate(stream.chunks):
            if position == 0 and stream.template_in_chunks:
                container = stream.template
            else:
                opener = stream.opener or functools.partial(open_chunk, header_only=True)
                container, reason = opener(path)
                if container is None:
                    self.skip(stream.source, path, reason or "unreadable")
                    continue
                if not compatible(codec_signature(container.streams[0]), stream.signature):
                    container.close()
                    self.skip(
                        stream.source,
                        path,
                        "codec parameters differ from the stream's first chunk",
                    )
                    continue
            entry = manifest.ChunkEntry(
                stream=stream.source.name,
                file=_relative(path, self.spool.directory),
                size_bytes=path.stat().st_size,
                packets=0,
            )
            stream.chunk_entries.append(entry)
            if tracker is not None:
                tracker.chunk_started(stream, path, entry, floor)
            need_key = is_video
            chunk_pts: set[int] = set()
            count = discarded = 0
            first = last = last_duration = None
            nbytes = 0
            try:
                demux = container.demux()
                while True:
                    try:
                        packet = next(demux)
                    except StopIteration:
                        break
                    except READ_ERRORS as exc:
                        entry.truncated = True
                        entry.error = str(exc)
                        break
                    size = packet.size
                    if not size:
                        continue  # end-of-file marker or padding
                    pts = packet.pts
                    if pts is None:
                        pts = packet.dts
                    if pts is None or pts <= floor or pts in chunk_pts or packet.is_corrupt:
                        discarded += 1
                        need_key = is_video
                        continue
                    if need_key:
                        if not packet.is_keyframe:
                            discarded += 1
                            continue
                        need_key = False
                    if packet.dts is None:
                        packet.dts = pts  # video dts are redone by decode_timestamps
                    if is_video:
                        chunk_pts.add(pts)
                    else:
                        floor = pts - 1
                    first = pts if first is None else min(first, pts)
                    last = pts if last is None else max(last, pts)
                    last_duration = packet.duration
                    count += 1
                    nbytes += size
                    if skip:  # already in the output (an incremental merge resumed here)
                        skip -= 1
                        continue
                    if tracker is not None:
                        tracker.pulled(stream)
                    if out_stream is not None:  # the incremental merge sets it per batch
                        packet.stream = out_stream
                    yield pts, index, packet
            finally:
                container.close()
                entry.packets = count
                entry.packets_discarded = discarded
                entry.first_pts_ms = first
                entry.last_pts_ms = last
                stream.frames += count
                stream.discarded += discarded
                stream.bytes += nbytes
                if first is not None and stream.first_pts is None:
                    stream.first_pts = first
                if last is not None:
                    stream.last_pts = last
                    stream.last_duration = int(last_duration or 0)
            skip = 0
            if is_video and last is not None:
                floor = max(floor, last)
            if not entry.truncated:
                # an unterminated file (crash) reads to a clean EOF too
                entry.truncated = not mkv_tags.segment_is_complete(path)
            if tracker is not None:
                tracker.chunk_done(stream, entry, nbytes, int(last_duration or 0), floor)

    def close_templates(self) -> None:
        """Close every track's template container."""
        for stream in self.streams:
            with contextlib.suppress(Exception):
                stream.template.close()


_REORDER_DEPTH = 16  # more than any encoder's B-frame reordering (x264: 16 B-frames at most)


def decode_timestamps(
    packets: Iterator[tuple[int, int, Any]],
) -> Iterator[tuple[int, int, Any]]:
    """Give video packets (in decode order) a dts the muxer accepts: monotonic and <= pts.

    Matroska stores no dts, and a chunk opened without probing gets none (or dts = pts, which
    decreases across B-frames). The smallest pts of the next ``_REORDER_DEPTH`` packets is a
    valid dts for any stream reordered by fewer frames than that.
    """
    window: collections.deque[tuple[int, int, Any]] = collections.deque()
    last_dts: int | None = None

    def release() -> tuple[int, int, Any]:
        nonlocal last_dts
        item = window.popleft()
        dts = min([item[0], *(other[0] for other in window)])
        if last_dts is not None:
            dts = min(item[0], max(dts, last_dts))
        item[2].dts = dts
        last_dts = dts
        return item

    for item in packets:
        window.append(item)
        if len(window) > _REORDER_DEPTH:
            yield release()
    while window:
        yield release()


def container_tags(spool: spool_reader.SpoolRecording, recovered: bool) -> dict[str, str]:
    """The merged file's global tags (placeholders reserved for what is known at the end)."""
    recording = spool.recording or {}
    tags = {
        "title": spool.recording_id,
        "RECORDING_ID": spool.recording_id,
        "encoding_tool": f"omgrab {omgrab.__version__}",
        "RECOVERED": "1" if recovered else "0",
        mkv_tags.RESERVED_TAG: " " * 200,
    }
    started = _parse_time(recording.get("started_at"))
    if started is not None:
        tags["DATE_RECORDED"] = _iso_utc(started)
        tags["creation_time"] = _iso_utc(started)
    version = recording.get("software_version")
    if isinstance(version, str):
        tags["OMGRAB_VERSION"] = version
    tags.update(capture_report.container_tags(spool.stats, spool.complete, recovered))
    return tags


def fill_pending_tags(tags: list[mkv_tags.Tag], streams: list[TrackState]) -> None:
    """Replace the per-track placeholders with the final counts and set the global ENCODER."""
    values: dict[str, str] = {}
    for stream in streams:
        values[_PENDING.format(index=stream.index, field="frames")] = str(stream.frames)
        for field, value in (("first", stream.first_pts), ("last", stream.last_pts)):
            values[_PENDING.format(index=stream.index, field=field)] = (
                "none" if value is None else str(value)
            )
    lavf = "libavformat " + ".".join(str(x) for x in _lavf_version())
    for tag in tags:
        for simple in tag.simple_tags:
            if simple.value in values:
                simple.value = values[simple.value]
        if tag.track_uid is None and not any(s.name == "ENCODER" for s in tag.simple_tags):
            tag.simple_tags.append(
                mkv_tags.SimpleTag("ENCODER", f"omgrab {omgrab.__version__} ({lavf})")
            )


def finalise_tags(path: pathlib.Path, streams: list[TrackState]) -> None:
    """Fill the placeholders of the merged file's tags in place (see :func:`fill_pending_tags`)."""
    mkv_tags.rewrite_tags(path, lambda tags: fill_pending_tags(tags, streams))


def _lavf_version() -> tuple[int, ...]:
    info = av.library_versions.get("libavformat", (0, 0, 0))
    return tuple(int(x) for x in info)


def verify_output(path: pathlib.Path, streams: list[TrackState], count_packets: bool) -> None:
    """Re-open the merged file and check its layout (and packet counts if asked)."""
    try:
        with av.open(str(path), options=HEADER_ONLY_OPTIONS) as container:
            if len(container.streams) != len(streams):
                raise MergeError(
                    f"merged file has {len(container.streams)} tracks, expected {len(streams)}"
                )
            for stream, got in zip(streams, container.streams, strict=True):
                if _kind_of(got) != stream.kind:
                    raise MergeError(f"track {stream.index} of the merged file is {got.type}")
            if count_packets:
                counts = [0] * len(streams)
                for packet in container.demux():
                    if packet.size:
                        counts[packet.stream_index] += 1
                expected = [s.frames for s in streams]
                if counts != expected:
                    raise MergeError(
                        f"merged file holds {counts} packets per track, copied {expected}"
                    )
    except READ_ERRORS as exc:
        raise MergeError(f"merged file {path} cannot be read back: {exc}") from exc


def resolve_output_path(output_path: str | os.PathLike[str], recording_id: str) -> pathlib.Path:
    """Return the merged MKV path for ``output_path`` (a directory or a ``.mkv`` file path).

    Raises:
        ValueError: ``output_path`` is neither an existing directory nor a ``.mkv`` path.
    """
    path = pathlib.Path(output_path)
    if path.is_dir():
        return path / f"{recording_id}.mkv"
    if path.suffix.lower() != ".mkv":
        raise ValueError(
            f"output_path {path} must be an existing directory or a file path ending in .mkv"
        )
    return path


def _remove_stale_temps(target: pathlib.Path) -> None:
    for candidate in (target, manifest.manifest_path_for(target)):
        if not candidate.parent.is_dir():
            continue
        for tmp in candidate.parent.iterdir():
            if atomic_files.is_temp_file_of(tmp, candidate):
                pid = tmp.name[len(candidate.name) + 2 : -4]
                if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
                    logger.info("removing stale temporary file %s", tmp)
                    with contextlib.suppress(FileNotFoundError):
                        tmp.unlink()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: Highest ``-N`` suffix tried when ``<recording_id>.mkv`` belongs to another spool.
MAX_NAME_SUFFIX = 99


def _owner(mkv: pathlib.Path) -> manifest.Manifest | None:
    """The manifest of an existing merged file, ``None`` if it has none that is readable."""
    try:
        return manifest.read_manifest(manifest.manifest_path_for(mkv))
    except manifest.ManifestError:
        return None


def _is_ours(doc: manifest.Manifest | None, recording_id: str, spool_name: str) -> bool:
    return (
        doc is not None
        and doc.recording_id == recording_id
        and doc.spool_directory in (None, spool_name)
    )


def _candidates(directory: pathlib.Path, recording_id: str) -> Iterator[pathlib.Path]:
    yield directory / f"{recording_id}.mkv"
    for n in range(2, MAX_NAME_SUFFIX + 1):
        yield directory / f"{recording_id}-{n}.mkv"


def _taken(path: pathlib.Path) -> bool:
    return path.exists() or manifest.manifest_path_for(path).exists()


def existing_merge(
    output_dir: pathlib.Path, recording_id: str, spool_name: str
) -> pathlib.Path | None:
    """Return the merged file of spool directory ``spool_name`` in ``output_dir``, if any.

    Looks at ``<recording_id>.mkv`` then ``<recording_id>-2.mkv`` ... (see
    :func:`output_target`) for one whose manifest names this recording and spool directory.
    """
    for candidate in _candidates(output_dir, recording_id):
        if not _taken(candidate):
            return None
        if candidate.is_file() and _is_ours(_owner(candidate), recording_id, spool_name):
            return candidate
    return None


def output_target(
    spool: spool_reader.SpoolRecording, output_path: str | os.PathLike[str]
) -> pathlib.Path:
    """Return where ``spool`` is merged to, never over another recording's output.

    In a directory the name is ``<recording_id>.mkv``, or ``<recording_id>-2.mkv`` ... when that
    name holds another spool's merge (two spools with the same id). An explicit ``.mkv`` path
    that holds something else is an error.

    Raises:
        ValueError: ``output_path`` is neither a directory nor a ``.mkv`` path.
        FileExistsError: the explicit path, or every suffixed name, is taken.
    """
    path = pathlib.Path(output_path)
    rid, name = spool.recording_id, spool.directory.name
    if path.is_dir():
        for candidate in _candidates(path, rid):
            if not _taken(candidate) or _is_ours(_owner(candidate), rid, name):
                return candidate
        raise FileExistsError(
            errno.EEXIST, f"every output name for recording {rid!r} is taken", str(path)
        )
    target = resolve_output_path(path, rid)
    if _taken(target) and not _is_ours(_owner(target), rid, name):
        raise FileExistsError(
            errno.EEXIST,
            f"{target} (or its manifest) holds another recording; not overwritten",
            str(target),
        )
    return target


def _already_merged(
    recording_path: pathlib.Path, output_path: str | os.PathLike[str]
) -> MergeResult:
    """The result for a spool directory that is gone: its finished merge, if there is one."""
    path = pathlib.Path(output_path)
    if path.is_dir():
        target = existing_merge(path, recording_path.name, recording_path.name)
    else:
        target = resolve_output_path(path, recording_path.name)
    if target is not None and target.exists():
        manifest_file = manifest.manifest_path_for(target)
        if manifest_file.exists():
            existing = manifest.read_manifest(manifest_file)
            logger.info("%s already merged into %s", recording_path, target)
            return MergeResult(target, manifest_file, existing, cleaned_up=True)
    raise FileNotFoundError(f"recording directory {recording_path} does not exist")


def merge_recording(
    recording_dir: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    recovered: bool = False,
    cleanup: bool = False,
    verify_packets: bool | None = None,
    lock_timeout_s: float = spool_lock.DEFAULT_WAIT_S,
) -> MergeResult:
    """Merge a spool recording into one MKV plus manifest; see the module docstring.

    The recording's writer lock is held exclusively for the whole merge and clean-up, after
    waiting at most ``lock_timeout_s`` for its writer processes to exit.

    Args:
        recording_dir: ``<spool>/<recording_id>``.
        output_path: The merged ``.mkv`` path, or an existing directory (the file is then
            ``<dir>/<recording_id>.mkv``, see :func:`output_target`). The manifest is written
            beside it as ``.json``.
        recovered: Mark the result as salvaged by crash recovery.
        cleanup: Clean up the spool after a verified, durable merge
            (:func:`omgrab.recording.spool_cleanup.clean_up`).
        verify_packets: Re-read the merged file and compare per-track packet counts
            (default: only when ``cleanup`` is set; the layout is always checked).
        lock_timeout_s: Bound on the wait for the recording's writers.

    Returns:
        Paths and the manifest.

    Raises:
        FileNotFoundError: ``recording_dir`` does not exist (and no earlier merge of it does).
        FileExistsError: the explicit output path holds another recording.
        ValueError: ``output_path`` is not a directory or ``.mkv`` path.
        EmptyRecordingError: the recording has no chunk file at all.
        MergeError: no stream has a readable chunk, or the merged file failed verification.
        spool_lock.WritersActiveError: writers still write after ``lock_timeout_s``.
        OSError: writing failed; the error names the file and errno, nothing is left under
            the final names.
    """
    recording_path = pathlib.Path(recording_dir)
    if not recording_path.is_dir():
        return _already_merged(recording_path, output_path)
    with spool_lock.exclusive(recording_path, lock_timeout_s) as present:
        if not present:
            return _already_merged(recording_path, output_path)
        return merge_locked(
            recording_path,
            output_path,
            recovered=recovered,
            cleanup=cleanup,
            verify_packets=verify_packets,
        )


def _published_merge(recording_path: pathlib.Path, out_dir: pathlib.Path) -> MergeResult | None:
    """The finished merge of a spool whose clean-up did not finish, cleaned up now."""
    from omgrab.recording import recovery  # imports this module

    mkv = recovery.finished_merge(spool_reader.read_spool_recording(recording_path), out_dir)
    if mkv is None:
        return None
    manifest_file = manifest.manifest_path_for(mkv)
    logger.info("%s was already merged into %s; finishing its clean-up", recording_path, mkv)
    outcome = spool_cleanup.clean_up(recording_path, mkv, manifest_file)
    return MergeResult(
        mkv, manifest_file, manifest.read_manifest(manifest_file), outcome.removed_directory
    )


def merge_locked(
    recording_path: pathlib.Path,
    output_path: str | os.PathLike[str],
    *,
    recovered: bool = False,
    cleanup: bool = False,
    verify_packets: bool | None = None,
) -> MergeResult:
    """:func:`merge_recording` for a caller that already holds the recording's writer lock.

    A spool whose merge was being built while it recorded (it holds the incremental merge's
    state file) is continued from its growing file instead (:mod:`.live_merge`): its chunks
    deleted so far are only in that file. The final name is then the one chosen when the
    growing file was started, in ``output_path``'s directory.
    """
    from omgrab.recording import live_merge  # imports this module

    if live_merge.has_state(recording_path):
        out_dir = pathlib.Path(output_path)
        if not out_dir.is_dir():
            out_dir = resolve_output_path(out_dir, recording_path.name).parent
        live = live_merge.LiveMerge(recording_path, out_dir, recovered=recovered)
        try:
            return live.run_to_end()
        except live_merge.GrowingFileMissing:
            published = _published_merge(recording_path, out_dir)
            if published is not None:  # it was finished; a crash cut its clean-up short
                return published
            live_merge.set_aside_state(recording_path)  # merge what the spool still holds
    started = time.monotonic()
    spool = spool_reader.read_spool_recording(recording_path)
    target = output_target(spool, output_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    manifest_file = manifest.manifest_path_for(target)
    _remove_stale_temps(target)
    if verify_packets is None:
        verify_packets = cleanup

    merger = Merger(spool)
    tmp = atomic_files.temp_path_for(target)
    try:
        merger.prepare()
        try:
            out = av.open(
                str(tmp),
                "w",
                format="matroska",
                container_options=MUXER_OPTIONS,
            )
            try:
                out.metadata.update(container_tags(spool, recovered))
                merger.add_output_streams(out)
                mux = out.mux_one
                sources = [
                    decode_timestamps(merger.packets(s)) if s.kind == "video" else merger.packets(s)
                    for s in merger.streams
                ]
                for _, _, packet in heapq.merge(*sources):
                    mux(packet)
            finally:
                out.close()
            finalise_tags(tmp, merger.streams)
            atomic_files.fsync_path(tmp)
        except OSError as exc:
            raise atomic_files.naming(exc, target) from exc
        verify_output(tmp, merger.streams, verify_packets)
        size = tmp.stat().st_size
        doc = build_manifest(spool, merger, target, size, recovered, time.monotonic() - started)
        publish(tmp, target, doc)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    finally:
        merger.close_templates()

    logger.info(
        "merged %s into %s (%d tracks, %d skipped chunks)",
        recording_path,
        target,
        len(merger.streams),
        len(merger.skipped),
    )
    cleaned = False
    if cleanup:
        outcome = spool_cleanup.clean_up(recording_path, target, manifest_file)
        if outcome.quarantined:
            doc = manifest.read_manifest(manifest_file)
        cleaned = outcome.removed_directory
    return MergeResult(target, manifest_file, doc, cleaned)


def publish(mkv: pathlib.Path, target: pathlib.Path, doc: manifest.Manifest) -> pathlib.Path:
    """Write ``doc`` as ``target``'s manifest, then rename the finished ``mkv`` to ``target``.

    The manifest goes first: a manifest without its MKV is merged again, an MKV without its
    manifest would be a file nobody can account for. Both renames are atomic and the directory
    is fsynced; on failure nothing is left under the final names. Returns the manifest path.
    """
    manifest_file = manifest.manifest_path_for(target)
    manifest_tmp = atomic_files.write_temp(manifest_file, manifest.manifest_bytes(doc))
    try:
        os.replace(manifest_tmp, manifest_file)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            manifest_tmp.unlink()
        raise atomic_files.naming(exc, manifest_file) from exc
    try:
        os.replace(mkv, target)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            manifest_file.unlink()
        raise atomic_files.naming(exc, target) from exc
    atomic_files.fsync_path(target.parent)
    return manifest_file


def build_manifest(
    spool: spool_reader.SpoolRecording,
    merger: Merger,
    target: pathlib.Path,
    size: int,
    recovered: bool,
    elapsed: float,
) -> manifest.Manifest:
    """The manifest of a merged file from the spool and what the merger copied."""
    recording = spool.recording or {}
    notes = list(merger.notes)
    started = _parse_time(recording.get("started_at"))
    if spool.recording is not None and started is None:
        notes.append("recording.json has no valid started_at; wall-clock start unknown")
    if spool.recording is None:
        notes.append("recording.json missing: wall-clock start unknown, streams inferred")
    ends = [s.last_pts + s.last_duration for s in merger.streams if s.last_pts is not None]
    duration_s = max(ends) / 1000.0 if ends else None
    stopped = _parse_time((spool.stats or {}).get("stopped_at"))
    if stopped is None and started is not None and duration_s is not None:
        with contextlib.suppress(OverflowError):
            stopped = started + datetime.timedelta(seconds=duration_s)
        notes.append("stopped_at estimated from the last packet (the writer never recorded it)")
    streams: dict[str, manifest.StreamEntry] = {}
    for s in merger.streams:
        stats = spool.stream_stats(s.source.name)
        streams[s.key] = manifest.StreamEntry(
            name=s.source.name,
            kind=s.kind,
            track_index=s.index,
            codec=s.codec,
            config=s.config,
            frames_written=s.frames,
            frames_dropped=_stat_int(stats, "frames_dropped"),
            frames_out_of_order=_stat_int(stats, "frames_out_of_order"),
            frames_missed=capture_report.frames_missed(spool.stats, s.source.name),
            capture_gaps=capture_report.stream_capture(spool.stats, s.source.name),
            packets_discarded=s.discarded,
            first_pts_ms=s.first_pts,
            last_pts_ms=s.last_pts,
            bytes_written=s.bytes,
            chunks=[c.file for c in s.chunk_entries],
            encoder=_encoder_entry(recording, s.source.name),
            writer=_writer_entry(stats),
        )
    for source in merger.empty_streams:
        stats = spool.stream_stats(source.name)
        streams[source.name] = manifest.StreamEntry(
            name=source.name,
            kind=source.kind or "unknown",
            track_index=None,
            codec=None,
            config=dict(source.config),
            frames_written=0,
            frames_dropped=_stat_int(stats, "frames_dropped"),
            frames_out_of_order=_stat_int(stats, "frames_out_of_order"),
            frames_missed=capture_report.frames_missed(spool.stats, source.name),
            capture_gaps=capture_report.stream_capture(spool.stats, source.name),
        )
    reason = stop_reason_mod.for_merge(spool.stats, spool.complete, recovered)
    if reason in stop_reason_mod.FAULT_REASONS:
        notes.append(f"recording cut short: stop_reason {reason}")
    devices = recording.get("devices")
    version = recording.get("software_version")
    return manifest.Manifest(
        recording_id=spool.recording_id,
        started_at=_iso_utc(started) if started else None,
        stopped_at=_iso_utc(stopped) if stopped else None,
        duration_s=duration_s,
        devices=devices if isinstance(devices, list) else [],
        streams=streams,
        chunks=[c for s in merger.streams for c in s.chunk_entries],
        skipped_chunks=list(merger.skipped),
        software_version=version if isinstance(version, str) else None,
        merge_software_version=omgrab.__version__,
        recovered=recovered,
        complete=spool.complete,
        streams_inferred=any(s.kind is None for s in spool.streams),
        stats_available=spool.stats is not None,
        notes=notes,
        merged_at=_iso_utc(datetime.datetime.now(datetime.UTC)),
        merge_duration_s=round(elapsed, 6),
        output_file=target.name,
        output_size_bytes=size,
        spool_directory=spool.directory.name,
        stop_reason=reason,
        interruptions=capture_report.interruptions(spool.stats),
    )


def _encoder_entry(recording: dict[str, Any], name: str) -> dict[str, Any] | None:
    """recording.json's ``streams.<name>.encoder`` (written since capture-safe encoding)."""
    streams = recording.get("streams")
    entry = streams.get(name) if isinstance(streams, dict) else None
    encoder = entry.get("encoder") if isinstance(entry, dict) else None
    return encoder if isinstance(encoder, dict) else None


def _writer_entry(stats: dict[str, Any] | None) -> dict[str, Any] | None:
    """The writer-side loss and backlog counters of a stream's stats.json entry."""
    if stats is None or not isinstance(stats.get("drops"), dict):
        return None
    keys = ("drops", "backlog_max_s", "behind_reported_s", "encoder_delay_frames")
    return {key: stats.get(key) for key in keys}


def merge_recording_chunks(
    recording_dir: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    recovered: bool = False,
    cleanup: bool = False,
    verify_packets: bool | None = None,
) -> pathlib.Path:
    """Merge a spool recording's chunks into one MKV (stream copy) and write its manifest.

    See the module docstring for timing, layout, robustness, durability and clean-up rules.

    Args:
        recording_dir: ``<spool>/<recording_id>``.
        output_path: The merged ``.mkv`` path, or an existing directory (the file is then
            ``<dir>/<recording_id>.mkv``). The manifest goes beside it as ``<name>.json``.
        recovered: Mark the manifest and tags as salvaged by crash recovery.
        cleanup: Delete the spool directory once the merge is durable and verified.
        verify_packets: Re-read the merged file and compare per-track packet counts
            (default: only when ``cleanup`` is set).

    Returns:
        Path of the merged MKV.

    Raises:
        FileNotFoundError: ``recording_dir`` does not exist (and no earlier merge of it does).
        ValueError: ``output_path`` is neither a directory nor a ``.mkv`` path.
        EmptyRecordingError: the recording has no chunk file at all.
        MergeError: no stream has a readable chunk, or the merged file failed verification.
    """
    return merge_recording(
        recording_dir,
        output_path,
        recovered=recovered,
        cleanup=cleanup,
        verify_packets=verify_packets,
    ).output_path
