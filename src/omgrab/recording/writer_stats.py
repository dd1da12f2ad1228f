"""Snapshots of a ``ChunkedWriter``'s per-stream counters (the ``stats`` property)."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any


@dataclasses.dataclass(frozen=True)
class ChunkInfo:
    """One chunk file of a stream.

    Attributes:
        chunk_id: Chunk id (file name without extension).
        file: Path relative to the recording directory, e.g. ``rgb/00001.mkv``.
        frames: Packets written to the file so far (final once ``closed``).
        first_pts_ms: Pts of its first packet, or None when empty.
        last_pts_ms: Pts of its last packet, or None when empty.
        closed: True once the worker closed the file (trailer written).
    """

    chunk_id: str
    file: str
    frames: int = 0
    first_pts_ms: int | None = None
    last_pts_ms: int | None = None
    closed: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the ``stats.json`` form."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class StreamStats:
    """Counters of one stream at one moment.

    Attributes:
        kind: ``'video'`` or ``'data'``.
        frames_put: Items accepted into the stream's ring.
        frames_written: Items muxed into chunk files by the worker.
        frames_dropped: Items discarded: ring full past the put timeout, worker failed,
            timestamp before the origin, or put after ``stop()``.
        frames_out_of_order: Items whose pts was not after the previous item's.
        frames_invalid: Items rejected for their shape, dtype, type or size.
        queued: Items waiting in the ring.
        first_pts_ms: Pts of the first item written, or None.
        last_pts_ms: Pts of the last item written, or None.
        last_timestamp: Capture time of the last item accepted, or None.
        chunks: The stream's chunk files in order.
        healthy: False once the stream's worker failed or an invalid item arrived.
        error: The first error of the stream, or None.
        worker_cpu_s: CPU seconds (user + system) the stream's worker process used, known
            once it finished.
        drops: ``frames_dropped`` by reason (``stream_queue.DROP_REASONS``: ``ring_full``,
            ``backlog_cap``, ``before_origin``, ``after_stop``, ``worker_failed``). Other
            loss counters (e.g. capture-side gaps) go beside it as further fields.
        backlog_s: Capture time queued but not yet taken by the encoder, now (live).
        backlog_max_s: The largest backlog seen.
        behind_reported_s: Backlog when the stream was reported as falling behind real time,
            None if it never was.
        encoder_delay_frames: Most frames the encoder held at once (measured by the worker).
        ring_slots: Capacity of the stream's ring in items.
    """

    kind: str
    frames_put: int
    frames_written: int
    frames_dropped: int
    frames_out_of_order: int
    frames_invalid: int
    queued: int
    first_pts_ms: int | None
    last_pts_ms: int | None
    last_timestamp: datetime.datetime | None
    chunks: tuple[ChunkInfo, ...]
    healthy: bool
    error: str | None
    worker_cpu_s: float | None = None
    drops: dict[str, int] = dataclasses.field(default_factory=dict)
    backlog_s: float = 0.0
    backlog_max_s: float = 0.0
    behind_reported_s: float | None = None
    encoder_delay_frames: int | None = None
    ring_slots: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the ``stats.json`` form of the stream."""
        return {
            "kind": self.kind,
            "frames_written": self.frames_written,
            "frames_dropped": self.frames_dropped,
            "frames_out_of_order": self.frames_out_of_order,
            "frames_invalid": self.frames_invalid,
            "frames_put": self.frames_put,
            "first_pts_ms": self.first_pts_ms,
            "last_pts_ms": self.last_pts_ms,
            "chunks": [chunk.to_dict() for chunk in self.chunks],
            "error": self.error,
            "worker_cpu_s": self.worker_cpu_s,
            "drops": dict(self.drops),
            "backlog_s": self.backlog_s,
            "backlog_max_s": self.backlog_max_s,
            "behind_reported_s": self.behind_reported_s,
            "encoder_delay_frames": self.encoder_delay_frames,
            "ring_slots": self.ring_slots,
        }
