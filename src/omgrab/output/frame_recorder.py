"""JPEG frame recording: validation, level-aware admission, pooled buffers, encoder threads.

``submit`` runs on the caller's thread and only validates, decides (storage ladder, rate
limit, queue space), copies the frame into a pooled buffer and enqueues it. Encoder threads
convert to OpenCV's BGR order if needed, encode with ``cv2.imencode`` (which releases the GIL)
and write ``frames/{frame_id}.jpg`` through a temporary name and ``os.replace``, so a crash
never leaves a truncated ``.jpg``.

Drop policy (each counted): frames arriving faster than the level's rate are skipped
(``rate_limited``); frames that find the queue and buffer pool full are dropped
(``dropped_queue_full`` - the newest frame is dropped, queued ones are kept); frames refused by
the storage ladder or after a disk-full error are dropped (``dropped_storage``).

Bounds: the queue holds ``frame_queue_size`` frames; with retention on, the index of written
frames holds at most ``retention_index_max`` entries (default 10,000, ~1 MB), after which
retention lists the directory instead; nothing else grows with the number of frames.
"""

from __future__ import annotations

import collections
import collections.abc
import contextlib
import errno
import logging
import os
import queue
import threading
import time
import typing

import cv2
import numpy as np

from omgrab import clock as clock_mod
from omgrab import storage
from omgrab.output import config as config_mod
from omgrab.output import rate_limit, types

logger = logging.getLogger(__name__)

_JPEG_MAX_SIDE = 65500
_UINT8 = np.dtype(np.uint8)
_DISK_FULL_RETRY_S = 5.0
_STOP = object()


RETENTION_INDEX_MAX = 10_000
"""Default bound of the retention index (frames remembered for deletion, oldest first)."""


class BufferPool:
    """A bounded set of reusable frame buffers (bounds memory and avoids page faults).

    Args:
        max_buffers: Buffers that may exist at once.
    """

    def __init__(self, max_buffers: int) -> None:
        self._max = max_buffers
        self._lock = threading.Lock()
        self._free: dict[tuple[tuple[int, ...], str], list[np.ndarray]] = {}
        self._count = 0

    def acquire(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
        """Return a free buffer of this shape and dtype, or None if the pool is exhausted."""
        key = (shape, dtype.str)
        with self._lock:
            free = self._free.get(key)
            if free:
                return free.pop()
            if self._count >= self._max:
                # Evict an idle buffer of another shape, if any.
                for other_key, other in self._free.items():
                    if other and other_key != key:
                        other.pop()
                        self._count -= 1
                        break
                else:
                    return None
            self._count += 1
        return np.empty(shape, dtype)

    def release(self, buf: np.ndarray) -> None:
        """Give a buffer back."""
        key = (buf.shape, buf.dtype.str)
        with self._lock:
            self._free.setdefault(key, []).append(buf)


def validate_frame(frame: object) -> np.ndarray:
    """Return ``frame`` if it can be JPEG-encoded, else raise ``InvalidEntryError``."""
    if frame is None:
        raise types.InvalidEntryError("frame is None")
    if not isinstance(frame, np.ndarray):
        raise types.InvalidEntryError(f"frame must be a numpy.ndarray, got {type(frame).__name__}")
    if frame.dtype is not _UINT8 and frame.dtype != _UINT8:
        raise types.InvalidEntryError(
            f"frame dtype must be uint8 for JPEG, got {frame.dtype} (shape {frame.shape})"
        )
    if frame.ndim == 3:
        if frame.shape[2] not in (1, 3, 4):
            raise types.InvalidEntryError(
                f"frame must have 1, 3 or 4 channels, got shape {frame.shape}"
            )
    elif frame.ndim != 2:
        raise types.InvalidEntryError(
            f"frame must be HxW or HxWxC, got {frame.ndim} dimensions (shape {frame.shape})"
        )
    h, w = frame.shape[:2]
    if h == 0 or w == 0:
        raise types.InvalidEntryError(f"frame is empty (shape {frame.shape})")
    if h > _JPEG_MAX_SIDE or w > _JPEG_MAX_SIDE:
        raise types.InvalidEntryError(f"frame too large for JPEG (shape {frame.shape})")
    return frame


class FrameRecorder:
    """Records JPEG frames into one directory with encoder threads.

    Args:
        frames_dir: Directory for ``{frame_id}.jpg`` (must exist).
        config: Rates, queue size, quality, worker count, colour order, retention.
        monitor: Storage monitor of the output filesystem (the ladder).
        time_source: Monotonic time for the rate limiter.
        older_frame_dirs: Frame directories of earlier sessions, oldest first, that
            retention may delete from before this session's frames.
        retention_index_max: Most frames the retention index remembers (oldest first). When it
            is full the index is dropped and retention's next pass lists this session's
            directory instead, so memory stays bounded (about 100 bytes an entry: 10,000
            entries ~1 MB) however long the session runs.
    """

    def __init__(
        self,
        frames_dir: str | os.PathLike[str],
        *,
        config: config_mod.OutputConfig,
        monitor: storage.StorageMonitor,
        time_source: clock_mod.TimeSource | None = None,
        older_frame_dirs: list[str] | None = None,
        retention_index_max: int = RETENTION_INDEX_MAX,
    ) -> None:
        if retention_index_max <= 0:
            raise ValueError(f"retention_index_max must be > 0, got {retention_index_max}")
        self._dir = os.fspath(frames_dir)
        self._config = config
        self._monitor = monitor
        self._time: clock_mod.TimeSource = (
            time_source if time_source is not None else clock_mod.SystemTimeSource()
        )
        self._limiter = rate_limit.LevelRateLimiter({1: config.l1_fps, 2: config.l2_fps})
        self._queue: queue.Queue[object] = queue.Queue(maxsize=config.frame_queue_size)
        self._pool = (
            BufferPool(config.frame_queue_size + config.jpeg_workers)
            if config.copy_frames
            else None
        )
        self._params = [int(cv2.IMWRITE_JPEG_QUALITY), int(config.jpeg_quality)]
        self._lock = threading.Lock()  # protects the counters and disk-full state below
        self._closed = False
        self._disk_full_at: float | None = None
        self.submitted = 0
        self.recorded = 0
        self.rate_limited = 0
        self.downgraded = 0
        self.dropped_queue_full = 0
        self.dropped_storage = 0
        self.write_errors = 0
        self.encode_errors = 0
        self.thread_errors = 0
        self.bytes_written = 0
        self.retention_deleted = 0
        self.last_error: BaseException | None = None
        self._done = threading.Condition(self._lock)
        self._outstanding = 0
        self._inflight: collections.Counter[int] = collections.Counter()
        self._wake_below = 0  # a wait_outstanding_below() limit in force (0: none)
        self.buffer_reuse_detected = 0
        # Retention bookkeeping: frames written, oldest first, at most retention_index_max; when
        # it overflows it is dropped and _scan_own_dir makes retention list the directory.
        self._written: collections.deque[tuple[str, int]] = collections.deque()
        self._written_max = retention_index_max
        self._scan_own_dir = False
        self._older_dirs = list(older_frame_dirs or [])
        self._retention_wake = threading.Event()
        self._retention_lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._worker, name=f"omgrab-jpeg-{i}", daemon=True)
            for i in range(config.jpeg_workers)
        ]
        for t in self._threads:
            t.start()
        self._retention_thread: threading.Thread | None = None
        if config.retention_enabled:
            self._retention_thread = threading.Thread(
                target=self._retention_loop, name="omgrab-frame-retention", daemon=True
            )
            self._retention_thread.start()
            monitor.add_listener(self._on_storage_transition)

    @property
    def disk_full(self) -> bool:
        """True after an ``ENOSPC`` until free space is back above the detection-only rung."""
        return self._disk_full_at is not None

    def submit(self, frame: object, frame_id: object, level: object) -> bool:
        """Validate and enqueue one frame; return True if it was queued for writing.

        Raises:
            InvalidEntryError: Bad frame, frame id or level (nothing is queued).
            WriteError: The recorder is closed.
        """
        if self._closed:
            raise types.WriteError("record_frame called after close()")
        arr = validate_frame(frame)
        try:
            fid = types.check_uint64("frame_id", frame_id)
        except ValueError as exc:
            raise types.InvalidEntryError(str(exc)) from None
        if level not in (1, 2) or isinstance(level, bool):
            raise types.InvalidEntryError(f"level must be 1 or 2, got {level!r:.40}")
        lvl = 1 if level == 1 else 2
        with self._lock:
            self.submitted += 1
        ladder = self._storage_level()
        if ladder >= storage.StorageLevel.DETECTION_ONLY:
            with self._lock:
                self.dropped_storage += 1
            return False
        if lvl == 2 and ladder >= storage.StorageLevel.REDUCE:
            lvl = 1
            with self._lock:
                self.downgraded += 1
        if not self._limiter.admit(lvl, self._time.monotonic()):
            with self._lock:
                self.rate_limited += 1
            return False
        if self._pool is not None:
            buf = self._pool.acquire(arr.shape, arr.dtype)
            if buf is None:
                with self._lock:
                    self.dropped_queue_full += 1
                return False
            np.copyto(buf, arr)
            arr = buf
            ptr = 0
        else:
            # The same array object while it is still queued means the caller reuses its
            # buffer (a live object's id is unique, so this never misfires).
            ptr = id(arr)
        warn = False
        with self._lock:
            self._outstanding += 1
            if ptr:
                if ptr in self._inflight:
                    self.buffer_reuse_detected += 1
                    warn = self.buffer_reuse_detected == 1
                self._inflight[ptr] += 1
        if warn:
            logger.warning(
                "record_frame got a buffer that is still queued for encoding: the caller "
                "reuses its frame array; set OutputConfig(copy_frames=True)"
            )
        try:
            self._queue.put_nowait((arr, fid, ptr))
        except queue.Full:
            self._finished(arr, ptr)
            with self._lock:
                self.dropped_queue_full += 1
            return False
        return True

    def _finished(self, arr: np.ndarray, ptr: int) -> None:
        if self._pool is not None:
            self._pool.release(arr)
        with self._done:
            self._outstanding -= 1
            if ptr:
                self._inflight[ptr] -= 1
                if self._inflight[ptr] <= 0:
                    del self._inflight[ptr]
            # Wake waiters only when what they wait for may have happened.
            if self._outstanding == 0 or self._outstanding < self._wake_below:
                self._done.notify_all()

    def _storage_level(self) -> storage.StorageLevel:
        """The ladder level, or DETECTION_ONLY while a disk-full error is in force."""
        if self._disk_full_at is not None:
            if self._time.monotonic() - self._disk_full_at < _DISK_FULL_RETRY_S:
                return storage.StorageLevel.DETECTION_ONLY
            reading = self._monitor.refresh()
            if self._monitor.thresholds.level_for(reading.free_fraction) >= (
                storage.StorageLevel.DETECTION_ONLY
            ):
                self._disk_full_at = self._time.monotonic()
                return storage.StorageLevel.DETECTION_ONLY
            with self._lock:
                self._disk_full_at = None
            logger.info("Frame recording resumed: %.0f%% free", reading.free_pct)
        return self._monitor.level

    @property
    def outstanding(self) -> int:
        """Frames queued or being encoded right now."""
        with self._lock:
            return self._outstanding

    def wait_outstanding_below(self, limit: int, timeout: float) -> bool:
        """Block until fewer than ``limit`` frames are queued or encoding; False on timeout.

        For producers that prefer back-pressure to drops (benchmarks, offline re-encoding).
        """
        with self._done:
            self._wake_below = max(self._wake_below, limit)
            try:
                return self._done.wait_for(lambda: self._outstanding < limit, timeout)
            finally:
                self._wake_below = 0

    def wait_idle(self, timeout: float) -> bool:
        """Block until every queued frame has been written or failed; False on timeout."""
        with self._done:
            return self._done.wait_for(lambda: self._outstanding == 0, timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write every queued frame, then stop the encoder threads (idempotent)."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout
        for _ in self._threads:
            try:
                self._queue.put(_STOP, timeout=max(0.0, deadline - time.monotonic()))
            except queue.Full:
                break
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                logger.error("JPEG encoder thread %s did not stop within %s s", t.name, timeout)
        # Frames that raced with close() (queued behind the stop markers) are counted, not
        # silently forgotten.
        left = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                arr, _fid, ptr = typing.cast(tuple[np.ndarray, int, int], item)
                self._finished(arr, ptr)
                left += 1
        if left:
            with self._lock:
                self.dropped_queue_full += left
            logger.error("%d frames queued during close() were not written", left)
        if self._retention_thread is not None:
            self._monitor.remove_listener(self._on_storage_transition)
            self._retention_wake.set()
            self._retention_thread.join(timeout)

    # --- encoder threads -------------------------------------------------------------------

    def _worker(self) -> None:
        scratch: dict[tuple[int, ...], np.ndarray] = {}
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            arr, fid, ptr = typing.cast(tuple[np.ndarray, int, int], item)
            try:
                self._encode_and_write(arr, fid, scratch)
            except Exception as exc:
                with self._lock:
                    self.thread_errors += 1
                    self.last_error = exc
                logger.exception("JPEG encoder thread error on frame %s (continuing)", fid)
            finally:
                self._finished(arr, ptr)

    def _to_bgr(self, arr: np.ndarray, scratch: dict[tuple[int, ...], np.ndarray]) -> np.ndarray:
        channels = 1 if arr.ndim == 2 else arr.shape[2]
        if channels == 1:
            return arr
        rgb = self._config.color_order == config_mod.ColorOrder.RGB
        if channels == 3 and not rgb:
            return arr
        shape = (arr.shape[0], arr.shape[1], 3)
        dst = scratch.get(shape)
        if dst is None:
            scratch.clear()
            dst = scratch[shape] = np.empty(shape, np.uint8)
        if channels == 3:
            code = cv2.COLOR_RGB2BGR
        else:
            code = cv2.COLOR_RGBA2BGR if rgb else cv2.COLOR_BGRA2BGR
        cv2.cvtColor(arr, code, dst=dst)
        return dst

    def _encode_and_write(
        self, arr: np.ndarray, fid: int, scratch: dict[tuple[int, ...], np.ndarray]
    ) -> None:
        if self._disk_full_at is not None:
            with self._lock:
                self.dropped_storage += 1
            return
        bgr = self._to_bgr(arr, scratch)
        ok, encoded = cv2.imencode(".jpg", bgr, self._params)
        if not ok:
            with self._lock:
                self.encode_errors += 1
            logger.error("Frame %d: JPEG encoding failed (shape %s)", fid, arr.shape)
            return
        final = os.path.join(self._dir, f"{fid}.jpg")
        tmp = os.path.join(self._dir, f".{fid}.jpg.tmp")
        try:
            _write_file(tmp, encoded)
            os.replace(tmp, final)
        except OSError as exc:
            _unlink_quietly(tmp)
            self._on_write_error(exc)
            return
        size = int(encoded.size)
        with self._lock:
            self.recorded += 1
            self.bytes_written += size
            if self._config.retention_enabled:
                if len(self._written) >= self._written_max:
                    self._written.clear()
                    self._scan_own_dir = True
                self._written.append((final, size))
        if self._config.retention_enabled and (
            self._monitor.reading().free_fraction < self._config.retention_target_free
        ):
            self._retention_wake.set()

    def _on_write_error(self, exc: OSError) -> None:
        first = False
        with self._lock:
            self.write_errors += 1
            self.last_error = exc
            if exc.errno == errno.ENOSPC:
                first = self._disk_full_at is None
                self._disk_full_at = self._time.monotonic()
        if exc.errno == errno.ENOSPC:
            if first:
                logger.error("Frame write failed: %s", exc.strerror or "No space left on device")
                logger.warning("Frame recording stopped (disk full); detections still logged")
                self._monitor.refresh()
                if self._config.retention_enabled:
                    self._retention_wake.set()
        else:
            logger.error("Frame write failed: %s", exc.strerror or exc)

    # --- retention -------------------------------------------------------------------------

    def _on_storage_transition(
        self, old: storage.StorageLevel, new: storage.StorageLevel, reading: storage.StorageReading
    ) -> None:
        if new > old:
            self._retention_wake.set()

    def _retention_loop(self) -> None:
        while not self._closed:
            self._retention_wake.wait()
            self._retention_wake.clear()
            if self._closed:
                return
            try:
                self.enforce_retention()
            except Exception as exc:
                with self._lock:
                    self.thread_errors += 1
                    self.last_error = exc
                logger.exception("Frame retention failed (continuing)")

    def enforce_retention(self) -> int:
        """Delete the oldest frames until free space reaches ``retention_target_free``.

        Only ``*.jpg`` files in frame directories are ever deleted. Returns the count deleted.
        Safe to call from any thread (one pass runs at a time).
        """
        with self._retention_lock:
            return self._enforce_retention()

    def _enforce_retention(self) -> int:
        reading = self._monitor.refresh()
        target = self._config.retention_target_free
        if reading.free_fraction >= target or reading.total_bytes == 0:
            return 0
        need = int((target - reading.free_fraction) * reading.total_bytes) + 1
        freed = 0
        deleted = 0
        candidates = self._oldest_frames()
        while freed < need:
            item = next(candidates, None)
            if item is None:
                break
            path, size = item
            try:
                os.unlink(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                logger.error("Retention could not delete %s: %s", path, exc)
                continue
            freed += size
            deleted += 1
        with self._lock:
            self.retention_deleted += deleted
        if deleted:
            after = self._monitor.refresh()
            logger.info(
                "Retention deleted %d oldest frames (%d bytes); %.0f%% free",
                deleted,
                freed,
                after.free_pct,
            )
        return deleted

    def _oldest_frames(self) -> collections.abc.Iterator[tuple[str, int]]:
        while self._older_dirs:
            directory = self._older_dirs[0]
            for path in _sorted_frames(directory):
                try:
                    size = os.stat(path).st_size
                except OSError:
                    continue
                yield path, size
            self._older_dirs.pop(0)
        with self._lock:
            scan, self._scan_own_dir = self._scan_own_dir, False
        if scan:
            # The index overflowed: every frame of this session, oldest first, from the disk
            # (frames still in the index are then found already deleted and skipped).
            for path in _sorted_frames(self._dir):
                try:
                    size = os.stat(path).st_size
                except OSError:
                    continue
                yield path, size
        while True:
            with self._lock:
                if not self._written:
                    return
                path, size = self._written.popleft()
            yield path, size


def _sorted_frames(directory: str) -> list[str]:
    def key(name: str) -> tuple[int, str]:
        stem = name[:-4]
        return (int(stem), name) if stem.isdigit() else (-1, name)

    try:
        names = [n for n in os.listdir(directory) if n.endswith(".jpg")]
    except OSError:
        return []
    return [os.path.join(directory, n) for n in sorted(names, key=key)]


def _write_file(path: str, data: np.ndarray) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        view = data.data.cast("B")
        written = 0
        while written < len(view):
            written += os.write(fd, view[written:])
    finally:
        os.close(fd)


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
