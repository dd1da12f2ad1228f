"""What ``omgrab inspect`` shows: a summary of one merged recording, from its manifest or tags.

The manifest beside the MKV (``<name>.json``) is used when it is there. Without it the summary
is built from the MKV itself: the merge writes the recording id, start time and, per track,
the stream name and the written/dropped/out-of-order counts into Matroska tags, so a file that
left the device alone still says what it holds. Durations and gaps are always measured from
the packets in the file, not taken on trust.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import pathlib
import statistics
from typing import Any

import av

from omgrab.recording import manifest as manifest_mod

#: A packet interval longer than this many median intervals counts as a gap.
GAP_FACTOR = 2.5


class InspectError(ValueError):
    """The recording or its manifest cannot be read (the message says which and why)."""


@dataclasses.dataclass
class TrackSummary:
    """One track as measured in the file, with the writer's counts from manifest or tags."""

    name: str
    kind: str
    codec: str
    frames: int
    first_ms: int | None
    last_ms: int | None
    duration_s: float
    gaps: int
    longest_gap_ms: int
    dropped: int | None
    out_of_order: int | None


@dataclasses.dataclass
class RecordingSummary:
    """A merged recording: identity, where the facts came from, and its tracks."""

    path: str
    source: str
    recording_id: str | None
    started_at: str | None
    duration_s: float
    size_bytes: int
    recovered: bool | None
    complete: bool | None
    stop_reason: str | None
    notes: list[str]
    tracks: list[TrackSummary]

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as a JSON-ready dict."""
        return dataclasses.asdict(self)


def _int_tag(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _load_manifest(path: pathlib.Path) -> dict[str, Any] | None:
    manifest_path = manifest_mod.manifest_path_for(path)
    if not manifest_path.exists():
        return None
    try:
        doc = json.loads(manifest_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InspectError(f"manifest {manifest_path} is unreadable: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("streams"), dict):
        raise InspectError(f"manifest {manifest_path} is not an omgrab manifest (no 'streams')")
    return doc


def _measure(packets: list[int]) -> tuple[int, int]:
    """Return (gap count, longest gap ms) of sorted pts in ms."""
    deltas = [b - a for a, b in itertools.pairwise(packets) if b > a]
    if len(deltas) < 2:
        return 0, 0
    median = statistics.median(deltas)
    gaps = [d for d in deltas if d > GAP_FACTOR * median]
    return len(gaps), max(gaps, default=0)


def summarize(path: str | pathlib.Path) -> RecordingSummary:
    """Summarize the merged recording at ``path``.

    Raises:
        InspectError: The file does not exist, is not a readable media file, or its manifest
            is corrupt.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise InspectError(f"{path} does not exist or is not a file")
    doc = _load_manifest(path)
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise InspectError(f"{path} is not a readable media file: {exc}") from exc
    with container:
        tags = {k.upper(): v for k, v in container.metadata.items()}
        # Read everything from the streams while the container is open (PyAV objects of a
        # closed container must not be touched).
        streams = [
            (
                stream.index,
                stream.type,
                stream.codec_context.name if stream.codec_context else "?",
                {k.upper(): v for k, v in stream.metadata.items()},
            )
            for stream in container.streams
        ]
        pts: list[list[int]] = [[] for _ in streams]
        try:
            for packet in container.demux():
                if packet.size and packet.pts is not None and packet.time_base is not None:
                    pts[packet.stream.index].append(int(packet.pts * packet.time_base * 1000))
        except av.FFmpegError as exc:
            raise InspectError(f"{path} cannot be read to the end: {exc}") from exc
    manifest_streams: dict[str, Any] = doc["streams"] if doc else {}
    tracks = []
    for (index, kind, codec, meta), values in zip(streams, pts, strict=True):
        values.sort()
        name = meta.get("STREAM_NAME") or meta.get("TITLE") or f"track{index}"
        entry = manifest_streams.get(name, {})
        gaps, longest = _measure(values)
        first = values[0] if values else None
        last = values[-1] if values else None
        tracks.append(
            TrackSummary(
                name=name,
                kind="video" if kind == "video" else "data",
                codec=codec,
                frames=len(values),
                first_ms=first,
                last_ms=last,
                duration_s=round(((last or 0) - (first or 0)) / 1000, 3),
                gaps=gaps,
                longest_gap_ms=longest,
                dropped=entry.get("frames_dropped")
                if entry
                else _int_tag(meta.get("FRAMES_DROPPED")),
                out_of_order=entry.get("frames_out_of_order")
                if entry
                else _int_tag(meta.get("FRAMES_OUT_OF_ORDER")),
            )
        )
    ends = [t.last_ms for t in tracks if t.last_ms is not None]
    doc = doc or {}
    recovered_tag = tags.get("RECOVERED")
    return RecordingSummary(
        path=str(path),
        source="manifest" if doc else "mkv tags",
        recording_id=doc.get("recording_id") or tags.get("RECORDING_ID"),
        started_at=doc.get("started_at") or tags.get("DATE_RECORDED"),
        duration_s=float(doc.get("duration_s") or (max(ends) / 1000 if ends else 0.0)),
        size_bytes=path.stat().st_size,
        recovered=doc.get("recovered", None if recovered_tag is None else recovered_tag == "1"),
        complete=doc.get("complete"),
        stop_reason=doc.get("stop_reason") or tags.get("STOP_REASON"),
        notes=list(doc.get("notes") or []),
        tracks=tracks,
    )
