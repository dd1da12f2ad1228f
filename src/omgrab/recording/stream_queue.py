"""The producer side of one stream: a write-only ``queue.Queue`` backed by a shared-memory ring.

``ChunkedWriter.get_encoder_queue(name)`` returns a ``StreamQueue``. Its ``put((data,
timestamp))`` runs in the caller's thread and does all the per-item work there, without a
feeder thread and without releasing the GIL on the fast path:

1. the timestamp becomes ``pts`` = milliseconds since the recording origin (nearest ms,
   halves up) by the stream's :class:`~omgrab.recording.timestamp_policy.TimestampPolicy`
   (``self.timestamps``): an item not after the previous one is dropped and counted *out of
   order*, sub-millisecond spacing is nudged rather than dropped, clock steps are rebased;
   a timestamp before the origin is dropped and counted *dropped*;
2. the item is checked against the stream config (ndarray shape/dtype for video, non-empty
   bytes up to ``max_item_bytes`` for data); a bad item is dropped, counted *invalid* and
   reported once through the writer's error path (the stream keeps recording);
3. chunk rotation is decided from the pts (chunk k covers ``[k*L, (k+1)*L)`` of recording
   time), so streams rotate independently; the chunk id comes from the start-chunk callback;
4. the bytes are copied into the next free slot and the worker is woken.

Drop policy when the ring is full (the worker is behind): ``put`` waits for a free slot up to
the writer's ``put_timeout_s`` (or the ``timeout`` argument; not at all with
``block=False``), then drops the *newest* item (the one being put) and counts it. ``put``
never raises ``queue.Full``. ``get`` is not supported: the consumer is another process.

Backlog: the capture time not yet handed to the encoder, ``pts of the newest item put - pts of
the newest item the worker took`` (``backlog_s``). It is what a crash would lose on top of the
encoder's delay. With ``max_backlog_s`` set, an item that would make the backlog longer is
dropped and counted (``backlog_cap``) instead of queued. The first time the backlog exceeds
``behind_report_s`` the stream is reported (a warning log) as falling behind real time, with
its backlog in seconds. Every drop is counted by reason in ``drops`` (see ``DROP_REASONS``).
"""

from __future__ import annotations

import datetime
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from omgrab.recording import config as config_mod
from omgrab.recording import frame_ring, ids, timestamp_policy

logger = logging.getLogger(__name__)

#: ``StartChunkCallback(name, start_time, ext) -> chunk_id``.
StartChunkCallback = Callable[[str, datetime.datetime, str], str]

#: Reasons an item is dropped by the writer (keys of ``StreamQueue.drops``).
DROP_REASONS = ("ring_full", "backlog_cap", "before_origin", "after_stop", "worker_failed")
_WAIT_SLICE_S = 0.1


def micros_since(timestamp: datetime.datetime, origin: datetime.datetime) -> int:
    """Return ``timestamp - origin`` in whole microseconds."""
    delta = timestamp - origin
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def pts_ms(timestamp: datetime.datetime, origin: datetime.datetime) -> int:
    """Return ``timestamp - origin`` in whole milliseconds, rounded to nearest (halves up)."""
    return timestamp_policy.round_ms(micros_since(timestamp, origin))


class StreamQueue(queue.Queue):
    """Write-only queue of ``(data, timestamp)`` items for one stream (see module docstring).

    Args:
        name: Stream name.
        stream_config: The stream's ``VideoStreamConfig`` or ``DataStreamConfig``.
        ring: The stream's ring (owned by the writer).
        filled: Semaphore released once per published item.
        free: Semaphore counting free slots.
        origin: Recording origin (tz-aware).
        chunk_length_s: Chunk length in seconds.
        put_timeout_s: Default wait for a free slot before dropping.
        start_chunk_callback: Chunk id source, or None for ``00001``, ``00002``, ...
        ext: Chunk file extension (without the dot) passed to the callback.
        on_invalid: Called (outside the lock) with a message for every invalid item.
        max_backlog_s: Longest backlog allowed (seconds); None: only the ring's size bounds it.
        behind_report_s: Backlog (seconds) at which the stream is reported as falling behind.
    """

    def __init__(
        self,
        name: str,
        stream_config: config_mod.VideoStreamConfig | config_mod.DataStreamConfig,
        ring: frame_ring.FrameRing,
        filled: Any,
        free: Any,
        origin: datetime.datetime,
        chunk_length_s: float,
        put_timeout_s: float,
        start_chunk_callback: StartChunkCallback | None,
        ext: str,
        on_invalid: Callable[[str, str], None],
        max_backlog_s: float | None = None,
        behind_report_s: float = 1.0,
    ) -> None:
        super().__init__(maxsize=ring.spec.slots)
        self.name = name
        self._config = stream_config
        self._ring = ring
        self._filled = filled
        self._free = free
        self._origin = origin
        self._chunk_ms = max(1, round(chunk_length_s * 1000))
        self._put_timeout_s = put_timeout_s
        self._callback = start_chunk_callback
        self._ext = ext
        self._on_invalid = on_invalid
        self._is_video = isinstance(stream_config, config_mod.VideoStreamConfig)
        if isinstance(stream_config, config_mod.VideoStreamConfig):
            self._shape: tuple[int, ...] = stream_config.frame_shape
            self._dtype: np.dtype[Any] = stream_config.frame_dtype
            self._nbytes = stream_config.frame_nbytes
        else:
            self._shape = ()
            self._dtype = np.dtype(np.uint8)
            self._nbytes = stream_config.max_item_bytes
        self._put_lock = threading.Lock()
        self._slots = ring.spec.slots
        self._header = ring.header
        self._slot_headers = ring.slot_headers
        self._closed = False
        self._dead = False
        self._last_pts: int | None = None
        self.timestamps = timestamp_policy.TimestampPolicy(name)
        self._chunk_index: int | None = None
        self._chunk_ids: set[str] = set()
        self._chunk_sequence = 0
        self._max_backlog_ms = None if max_backlog_s is None else round(max_backlog_s * 1000)
        self._behind_report_ms = round(behind_report_s * 1000)
        self._first_published_pts: int | None = None
        self._last_published_pts: int | None = None
        self.drops = dict.fromkeys(DROP_REASONS, 0)
        self.backlog_max_s = 0.0
        self.behind_reported_s: float | None = None  # backlog when first reported as behind
        self.frames_put = 0
        self.frames_out_of_order = 0
        self.frames_invalid = 0
        self.last_timestamp: datetime.datetime | None = None

    # -- queue.Queue interface -------------------------------------------------------------

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Hand one ``(data, timestamp)`` item to the writer (never raises ``queue.Full``).

        Args:
            item: ``(ndarray, datetime)`` for a video stream, ``(bytes, datetime)`` for a data
                stream; the datetime must be timezone-aware.
            block: Wait for a free slot when the ring is full.
            timeout: Longest wait in seconds; the writer's ``put_timeout_s`` when None.
        """
        problem: str | None = None
        with self._put_lock:
            problem = self._put_locked(item, block, timeout)
        if problem is not None:
            self._on_invalid(self.name, problem)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Not supported: items are consumed by the stream's worker process."""
        raise TypeError(f"the encoder queue of stream {self.name!r} is write-only")

    def qsize(self) -> int:
        """Return the number of items waiting in the ring for the worker."""
        header = self._header
        if header.size == 0:
            return 0
        return int(header[frame_ring.WRITE_COUNT_FIELD] - header[frame_ring.READ_COUNT_FIELD])

    @property
    def frames_dropped(self) -> int:
        """Items dropped by the writer, all reasons together."""
        return sum(self.drops.values())

    def backlog_s(self) -> float:
        """Return the capture time queued but not yet taken by the encoder, in seconds."""
        return self._backlog_ms(self._last_published_pts) / 1000.0

    def _backlog_ms(self, newest_pts: int | None) -> int:
        """Capture time from the newest item taken by the worker to ``newest_pts``."""
        header = self._header
        if newest_pts is None or header.size == 0 or self._last_published_pts is None:
            return 0
        if header[frame_ring.READ_COUNT_FIELD] >= header[frame_ring.WRITE_COUNT_FIELD]:
            taken = self._last_published_pts  # the worker took everything published
        else:
            taken = int(header[frame_ring.TAKEN_PTS_FIELD])
            if taken < 0:
                assert self._first_published_pts is not None
                taken = self._first_published_pts
        return max(0, newest_pts - taken)

    def empty(self) -> bool:
        """Return True when no item waits for the worker."""
        return self.qsize() == 0

    def full(self) -> bool:
        """Return True when every slot of the ring is taken."""
        return self.qsize() >= self._slots

    # -- writer side -------------------------------------------------------------------------

    def close(self) -> None:
        """Refuse further items (they are dropped and counted)."""
        with self._put_lock:
            self._closed = True
            # Let go of the shared memory so the writer can unmap it.
            self._header = np.zeros(0, dtype="<i8")
            self._slot_headers = np.zeros((0, 0), dtype="<i8")

    def mark_dead(self) -> None:
        """The worker failed: drop further items at once instead of waiting for slots."""
        self._dead = True

    # -- internals ---------------------------------------------------------------------------

    def _put_locked(self, item: Any, block: bool, timeout: float | None) -> str | None:
        try:
            data, timestamp = item
        except (TypeError, ValueError):
            self.frames_invalid += 1
            return f"item must be a (data, timestamp) tuple, got {type(item).__name__}"
        if not isinstance(timestamp, datetime.datetime) or timestamp.tzinfo is None:
            self.frames_invalid += 1
            return f"timestamp must be a timezone-aware datetime, got {timestamp!r}"
        if self._closed:
            self.drops["after_stop"] += 1
            logger.debug("stream %r: item after stop dropped", self.name)
            return None
        micros = micros_since(timestamp, self._origin)
        if timestamp_policy.round_ms(micros) < 0:
            self.drops["before_origin"] += 1
            logger.warning(
                "stream %r: item at %s is before the recording origin %s; dropped",
                self.name,
                timestamp.isoformat(),
                self._origin.isoformat(),
            )
            return None
        payload, problem = self._payload(data)
        if problem is not None:
            self.frames_invalid += 1
            return problem
        assert payload is not None
        pts = self.timestamps.assign(micros)  # jumps, clock steps, sub-ms nudging
        if pts is None:
            self.frames_out_of_order += 1
            logger.warning(
                "stream %r: timestamp %s not after previous pts %s ms; dropped",
                self.name,
                timestamp.isoformat(),
                self._last_pts,
            )
            return None
        self._last_pts = pts
        self.last_timestamp = timestamp
        if self._dead:
            self.drops["worker_failed"] += 1
            return None
        backlog_ms = self._backlog_ms(pts)
        self._check_behind(backlog_ms)
        if self._max_backlog_ms is not None and backlog_ms > self._max_backlog_ms:
            self.drops["backlog_cap"] += 1
            logger.debug(
                "stream %r: backlog %d ms over the cap, pts %d dropped", self.name, backlog_ms, pts
            )
            return None
        if not self._free.acquire(False) and not self._wait_for_slot(block, timeout):
            self.drops["ring_full"] += 1
            logger.debug("stream %r: ring full, item at pts %d dropped", self.name, pts)
            return None
        self._publish(payload, len(payload), pts, timestamp)
        self.backlog_max_s = max(self.backlog_max_s, backlog_ms / 1000.0)
        return None

    def _check_behind(self, backlog_ms: int) -> None:
        backlog_s = backlog_ms / 1000.0
        if self.behind_reported_s is None and backlog_ms > self._behind_report_ms:
            self.behind_reported_s = backlog_s
            logger.warning(
                "stream %r: the encoder is falling behind real time: backlog %.2f s "
                "(what a crash now would lose on top of the encoder delay)",
                self.name,
                backlog_s,
            )

    def _wait_for_slot(self, block: bool, timeout: float | None) -> bool:
        """Wait for a free slot (the slow path); False when none came or the worker died."""
        wait = self._put_timeout_s if timeout is None else max(0.0, timeout)
        if not block or wait <= 0:
            return False
        deadline = time.monotonic() + wait
        while not self._dead:  # in slices, so a worker that dies meanwhile ends the wait
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self._free.acquire(True, min(remaining, _WAIT_SLICE_S)):
                return True
        return False

    def _payload(self, data: Any) -> tuple[memoryview | None, str | None]:
        if self._is_video:
            if not isinstance(data, np.ndarray):
                return None, f"video frame must be a numpy array, got {type(data).__name__}"
            if data.shape != self._shape or data.dtype != self._dtype:
                return None, (
                    f"video frame must have shape {self._shape} and dtype {self._dtype} "
                    f"(input_pixel_format {self._config_format()}), "
                    f"got shape {data.shape} dtype {data.dtype}"
                )
            if not data.flags.c_contiguous:
                data = np.ascontiguousarray(data)
            return memoryview(data).cast("B"), None
        if not isinstance(data, bytes | bytearray | memoryview):
            return None, f"data item must be bytes, got {type(data).__name__}"
        view = memoryview(data).cast("B")
        if len(view) == 0:
            return None, "data item is empty"
        if len(view) > self._nbytes:
            return None, f"data item of {len(view)} bytes exceeds max_item_bytes {self._nbytes}"
        return view, None

    def _config_format(self) -> str:
        return getattr(self._config, "input_pixel_format", "")

    def _next_chunk_id(self, timestamp: datetime.datetime) -> str:
        self._chunk_sequence += 1
        fallback = ids.default_chunk_id(self._chunk_sequence)
        chunk_id = fallback
        if self._callback is not None:
            try:
                chunk_id = ids.check_path_component(
                    "chunk id", self._callback(self.name, timestamp, self._ext)
                )
            except Exception as exc:
                logger.error(
                    "stream %r: start_chunk_callback failed (%s); using chunk id %r",
                    self.name,
                    exc,
                    fallback,
                )
                chunk_id = fallback
        attempt = 0
        while chunk_id in self._chunk_ids:
            attempt += 1
            logger.error("stream %r: chunk id %r already used; renaming", self.name, chunk_id)
            chunk_id = f"{fallback}-{attempt}"
        self._chunk_ids.add(chunk_id)
        return chunk_id

    def _publish(self, payload: memoryview, nbytes: int, pts: int, ts: datetime.datetime) -> None:
        header = self._header
        index = int(header[frame_ring.WRITE_COUNT_FIELD]) % self._slots
        flags = 0
        chunk_index = pts // self._chunk_ms
        if chunk_index != self._chunk_index:
            self._chunk_index = chunk_index
            self._ring.set_chunk_id(index, self._next_chunk_id(ts).encode("utf-8"))
            flags = frame_ring.FLAG_NEW_CHUNK
        # memoryview slice assignment is a plain memcpy under the GIL (no release/re-acquire).
        self._ring.payload(index, nbytes)[:] = payload
        slot = self._slot_headers[index]
        slot[0] = pts
        slot[1] = flags
        slot[2] = nbytes
        header[frame_ring.WRITE_COUNT_FIELD] += 1
        if self._first_published_pts is None:
            self._first_published_pts = pts
        self._last_published_pts = pts
        self.frames_put += 1
        self._filled.release()
