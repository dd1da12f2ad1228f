"""Published 0.1.2 import path ``omgrab.recording.chunked_writer``: a thin compatibility module.

Holds :class:`ChunkedWriter`, a subclass of :class:`omgrab.recording.writer.ChunkedWriter`
(same constructor parameters, order and defaults as 0.1.2) that gives code written against
this path 0.1.2's timing rules, and the names 0.1.2 made available here. This package's own
API (``omgrab.recording.ChunkedWriter``) keeps its stricter rules. What the subclass changes:

* **Naive timestamps** are read as local time (0.1.2), not refused as invalid items.
* **Origin at the first item.** When the caller gives no ``origin``, pts 0 is the first item
  put: the earliest item held before ``start()``, or else the first one put after it. Items
  put after ``start()`` are re-stamped by one fixed offset (``first item -> writer origin``),
  so the streams keep their relative timing and chunk k covers ``[k*L, (k+1)*L)`` after the
  first item, whatever time domain the stamps come from (0.1.2's device-clock case).
  ``recording.json``'s ``started_at`` is then the writer's start time.
* **One ``start_chunk_callback`` call per chunk**, as 0.1.2 counted: with the writer's name
  (0.1.2: ``(writer_name, started_at, ext)``), the first item's time of that chunk in the
  caller's time domain, and ``'mkv'``. Every stream's file of chunk k gets that same id.

The files a writer leaves in its ``output_directory`` keep this package's per-stream layout
(``<stream>/<chunk_id>.mkv``, not 0.1.2's ``<chunk_id>.mkv``); ``merge_recording_chunks``
turns them into one MKV. Lifecycle, bounds and error policy are the base writer's; the
wrappers add no thread, file or buffer. See ``docs/compat.md``.
"""

from __future__ import annotations

import datetime
import pathlib
import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any

from omgrab.recording import pending_queue, stream_queue, writer
from omgrab.recording.config import DataStreamConfig, VideoStreamConfig
from omgrab.recording.pyav_encoders import StreamEncoder
from omgrab.recording.stream_queue import StartChunkCallback

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


def as_aware(timestamp: datetime.datetime) -> datetime.datetime:
    """Return ``timestamp`` timezone-aware, reading a naive one as local time (0.1.2)."""
    return timestamp if timestamp.tzinfo is not None else timestamp.astimezone()


class _Timeline:
    """The fixed offset from the caller's item stamps to the writer's recording time line."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.offset: datetime.timedelta | None = None
        self.naive: bool | None = None  # whether the caller's first item was naive

    def fix(self, offset: datetime.timedelta) -> None:
        """Set the offset unless the first item already set it."""
        with self._lock:
            if self.offset is None:
                self.offset = offset

    def to_writer(
        self, timestamp: datetime.datetime, origin: datetime.datetime | None
    ) -> datetime.datetime:
        """Map a caller's stamp onto the writer's time line (``origin`` None: not started)."""
        aware = as_aware(timestamp)
        with self._lock:
            if self.naive is None:
                self.naive = timestamp.tzinfo is None
            if self.offset is None:
                if origin is None:
                    return aware  # held before start(); start() fixes the origin to cover it
                self.offset = origin - aware
            return aware + self.offset

    def to_caller(self, timestamp: datetime.datetime) -> datetime.datetime:
        """Map a writer time back into the caller's domain (naive local if theirs was)."""
        with self._lock:
            mapped = timestamp - (self.offset or datetime.timedelta(0))
            naive = bool(self.naive)
        return mapped.astimezone().replace(tzinfo=None) if naive else mapped


class _CompatQueue(queue.Queue):
    """A stream's encoder queue that re-stamps items onto the writer's time line."""

    def __init__(
        self,
        inner: stream_queue.StreamQueue | pending_queue.PendingQueue,
        owner: ChunkedWriter,
    ) -> None:
        super().__init__()
        self.inner = inner
        self._owner = owner

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Hand one ``(data, timestamp)`` item to the writer (naive stamps: local time)."""
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], datetime.datetime):
            item = (item[0], self._owner.timeline.to_writer(item[1], self._owner.origin))
        self.inner.put(item, block, timeout)

    def put_nowait(self, item: Any) -> None:
        """``put(item, block=False)``."""
        self.put(item, block=False)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """The underlying queue's ``get`` (allowed only before ``start()``)."""
        return self.inner.get(block, timeout)

    def qsize(self) -> int:
        """Items waiting."""
        return self.inner.qsize()

    def empty(self) -> bool:
        """True when no item waits."""
        return self.inner.empty()

    def full(self) -> bool:
        """True when no item fits without waiting."""
        return self.inner.full()

    def __getattr__(self, attr: str) -> Any:
        # Counters (frames_put, drops, ...) live on the underlying queue.
        inner = self.__dict__.get("inner")
        if inner is None or attr.startswith("_"):
            raise AttributeError(attr)
        return getattr(inner, attr)


class ChunkedWriter(writer.ChunkedWriter):
    """omgrab 0.1.2's ``ChunkedWriter`` timing rules on this package's writer (module doc).

    Args:
        name: Recording name.
        output_directory: The recording directory the writer writes into.
        stream_configs: Video streams by name.
        start_chunk_callback: ``(writer_name, started_at, ext) -> chunk_id``, called once per
            chunk (not per stream); ``started_at`` in the caller's time domain.
        sensor_stream_configs: Data streams by name.
        chunk_length_s: Chunk length in seconds after the first item.
        max_encoder_queue_size: Upper bound of slots per stream ring.
        on_error: As the base writer (``on_error(stream_name)`` for a one-argument callback).
        **options: The base writer's keyword-only options; a given ``origin`` is pts 0 and
            items are not re-stamped.
    """

    def __init__(
        self,
        name: str,
        output_directory: pathlib.Path | str,
        stream_configs: Mapping[str, VideoStreamConfig],
        start_chunk_callback: StartChunkCallback | None = None,
        sensor_stream_configs: Mapping[str, DataStreamConfig] | None = None,
        chunk_length_s: float = 60.0,
        max_encoder_queue_size: int = 200,
        on_error: Callable[..., None] | None = None,
        **options: Any,
    ) -> None:
        self.timeline = _Timeline()
        self._user_callback = start_chunk_callback
        self._chunk_ids_by_index: dict[int, str] = {}
        self._chunk_lock = threading.Lock()
        self._compat_queues: dict[str, _CompatQueue] = {}
        if options.get("origin") is not None:
            self.timeline.fix(datetime.timedelta(0))
        super().__init__(
            name,
            output_directory,
            stream_configs,
            None if start_chunk_callback is None else self._chunk_id,
            sensor_stream_configs,
            chunk_length_s,
            max_encoder_queue_size,
            on_error,
            **options,
        )
        self._chunk_ms = max(1, round(float(chunk_length_s) * 1000))

    def get_encoder_queue(self, name: str) -> _CompatQueue:  # type: ignore[override]
        """Return the queue taking ``(data, timestamp)`` items of stream ``name`` (0.1.2).

        Raises:
            KeyError: No such stream.
        """
        cached = self._compat_queues.get(name)
        if cached is None:
            cached = _CompatQueue(super().get_encoder_queue(name), self)
            self._compat_queues[name] = cached
        return cached

    def start(self) -> None:
        """Start the writer; pts 0 is the earliest item already put, if any (0.1.2)."""
        if self.origin is None and not self._started:
            held = [
                q.inner.earliest_timestamp()
                for q in self._compat_queues.values()
                if isinstance(q.inner, pending_queue.PendingQueue)
            ]
            earliest = min((t for t in held if t is not None), default=None)
            if earliest is not None:
                self._origin = earliest
                self.timeline.fix(datetime.timedelta(0))
        super().start()

    def _chunk_id(self, stream_name: str, started_at: datetime.datetime, ext: str) -> str:
        """The id of the chunk ``started_at`` falls in: one user callback call per chunk."""
        assert self._user_callback is not None and self.origin is not None
        index = stream_queue.pts_ms(started_at, self.origin) // self._chunk_ms
        with self._chunk_lock:
            chunk_id = self._chunk_ids_by_index.get(index)
            if chunk_id is None:
                chunk_id = self._user_callback(self.name, self.timeline.to_caller(started_at), ext)
                self._chunk_ids_by_index[index] = chunk_id
        return chunk_id
