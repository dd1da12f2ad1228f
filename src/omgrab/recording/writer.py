"""``ChunkedWriter``: writes a recording's streams to crash-safe, time-chunked Matroska files.

Architecture (one writer = one recording directory, see ``docs/spool-format.md``)::

    capture thread --put--> StreamQueue --shared-memory ring--> worker process --> <stream>/*.mkv
                                                                     |
    monitor thread <------------------------- events pipe ----------+

* Every stream (video or data) gets its own worker *process* that owns the PyAV containers,
  so encoding never competes for the application's GIL. Processes come from the
  ``forkserver`` start method (never ``fork`` from a threaded process) with the worker module
  preloaded, so starting a recording after the first takes milliseconds.
* Frames are copied in the caller's thread straight into a slot of a shared-memory ring
  (``frame_ring``), and only semaphores cross the process boundary (see ``stream_queue``).
* Chunk rotation follows capture timestamps: chunk k of a stream covers ``[k*L, (k+1)*L)``
  of recording time; each stream rotates on its own, so a stalled stream never blocks another.
* The monitor thread turns worker events into stats (rewriting ``stats.json`` at every
  rotation) and notices a worker that fails or dies.

Memory: each video stream's ring holds ``slots = min(max_encoder_queue_size,
max(2, max_buffer_bytes_per_stream // frame_bytes), max(2, ceil(fps * ring_capacity_s)))``
frames; ``ring_capacity_s`` defaults to ``DEFAULT_RING_CAPACITY_S`` = 0.5 s of capture per
video stream (settable per stream). With the defaults the reference RGB stream (1280x800x3 =
3.07 MB a frame) gets 13 slots (40 MB), depth (640x400x2 = 512 kB) 13 slots (6.7 MB) and a data
stream ``max_encoder_queue_size`` slots of ``max_item_bytes`` (IMU: 200 x 64 KiB = 13 MB, of
which only the bytes of items put are ever touched). The memory bound of a writer is the sum of
its rings (about 60 MB of shared memory for the reference set, mapped by the writer and one
worker each) plus one encoder per stream; nothing else queues frames. Whole recorder (app +
workers + forkserver, PSS) recording the reference set in real time: 224 MB peak on a busy
2-core machine (``benchmarks/realtime_recorder.py``, see ``benchmarks/README.md``; 267 MB with
the former 1 s default). A ring that fills up
drops the newest items and counts them (``ring_full``); ``max_backlog_s`` caps the queued
capture time below the ring's capacity.

Lifecycle: ``start()`` writes ``recording.json`` and waits until every worker has opened its
encoder (bad codec options fail here, leaving nothing behind); ``stop()`` drains every item
already handed over, closes all chunks, writes the final ``stats.json`` and then ``COMPLETE``.
A writer still running at interpreter exit is stopped the same way. Crash safety: every packet
is in its chunk file as soon as it is muxed and the open chunk is fsynced every 100 ms, so a
SIGKILL costs at most the encoder's delay plus the frame in work (``encoder_options``: 0 + 1
frames with the capture-safe settings every stream gets unless it opts out) plus the backlog
(``StreamStats.backlog_s``) at that moment; a power loss up to 100 ms more.

Error policy:

* Out-of-order / duplicate timestamps: dropped, counted, logged; never fatal.
* Invalid items (wrong shape/dtype/type/size): dropped and counted; the stream keeps
  recording, the writer becomes unhealthy and ``on_error`` fires (once per writer).
* Worker failure (encoder error, process killed): the stream's further items are dropped and
  counted, its chunk files written so far stay readable, the other streams keep recording,
  and ``on_error`` fires once per writer. ``stop()`` never waits longer than ``stop_timeout_s``.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import inspect
import logging
import math
import pathlib
import threading
import time
import types
import weakref
from collections.abc import Callable, Mapping, Sequence
from multiprocessing import connection
from typing import Any

import omgrab
from omgrab import clock as clock_mod
from omgrab.recording import config as config_mod
from omgrab.recording import (
    encoder_options,
    frame_ring,
    ids,
    named_semaphore,
    pending_queue,
    spool_files,
    spool_lock,
    stream_queue,
    stream_worker,
    worker_start,
    writer_stats,
)

logger = logging.getLogger(__name__)

#: ``StartChunkCallback(name, start_time, ext) -> chunk_id``; ``ext`` is ``'mkv'``.
StartChunkCallback = stream_queue.StartChunkCallback

CHUNK_EXT = "mkv"
DEFAULT_MAX_BUFFER_BYTES_PER_STREAM = 128 * 1024 * 1024
#: Capture time a video stream's ring holds by default (seconds).
DEFAULT_RING_CAPACITY_S = 0.5


# Writers started and not yet stopped; stopped (drained, finished) at interpreter exit, before
# multiprocessing terminates the daemonic workers (atexit runs handlers last-in first-out and
# multiprocessing registers its own handler when it is imported, before this module's).
_running_writers: weakref.WeakSet[ChunkedWriter] = weakref.WeakSet()


def _stop_running_writers() -> None:
    for writer in list(_running_writers):
        try:
            writer.stop()
        except Exception:
            logger.exception("writer %r: stop at exit failed", writer.name)


atexit.register(_stop_running_writers)


class _Stream:
    """Writer-side state of one stream (guarded by the writer's ``_lock`` where mutable)."""

    def __init__(
        self,
        name: str,
        kind: str,
        stream_config: config_mod.VideoStreamConfig | config_mod.DataStreamConfig,
    ) -> None:
        self.name = name
        self.kind = kind
        self.config = stream_config
        # The encoder settings applied (video streams; see ``encoder_options``).
        self.encoder: encoder_options.EncoderPlan | None = None
        if isinstance(stream_config, config_mod.VideoStreamConfig):
            self.encoder = encoder_options.plan(name, stream_config)
        self.ring: frame_ring.FrameRing | None = None
        self.queue: stream_queue.StreamQueue | None = None
        self.process: Any = None
        self.events: connection.Connection | None = None
        self.lifeline: connection.Connection | None = None
        self.chunks: list[writer_stats.ChunkInfo] = []
        self.ready = False
        self.finished = False
        self.exited = False
        # Set by the monitor thread, the only thread that polls/joins the process (a
        # multiprocessing.Process is not safe to poll from two threads: the forkserver exit
        # status can be read only once).
        self.exited_event = threading.Event()
        self.error: str | None = None
        self.frames_written_final: int | None = None
        self.worker_cpu_s: float | None = None
        self.filled: Any = None
        self.semaphore_names: list[str] = []
        self.frames_final: tuple[int, int | None, int | None, int] | None = None


class ChunkedWriter:
    """Writes video and data streams to per-stream, time-chunked, crash-safe MKV files.

    Items are handed over with ``get_encoder_queue(name).put((data, timestamp))``: an ndarray
    matching the stream's ``VideoStreamConfig`` for video streams, bytes for data streams, and
    a timezone-aware capture timestamp. Packet pts are milliseconds since ``origin``.

    Args:
        name: Recording id (recorded in ``recording.json``).
        output_directory: The recording directory the writer writes into (as in omgrab
            0.1.2); ``merge_recording_chunks(output_directory, out)`` merges it. The runtime
            passes ``spool/<recording_id>``.
        stream_configs: Video streams by name.
        start_chunk_callback: ``(name, start_time, ext) -> chunk_id`` called (in the putting
            thread) when a stream starts a chunk, with the capture time of the chunk's first
            item and ``'mkv'``; ids ``00001``, ``00002``, ... per stream when None. A failing
            callback or a bad/duplicate id falls back to a default id (logged).
        sensor_stream_configs: Data streams by name.
        chunk_length_s: Chunk length in seconds of recording time.
        max_encoder_queue_size: Upper bound of slots per stream ring.
        on_error: Called once (from its own thread) at the first stream failure or invalid
            item; details in ``errors``. A callback taking one argument gets the name of the
            stream that failed (omgrab 0.1.2's ``on_error(stream_name)``; None when the error
            belongs to no single stream).
        origin: Recording origin (tz-aware); ``clock.now()`` at ``start()`` when None.
        clock: Device clock used for the default origin and ``stats.json`` times.
        devices: Devices recorded (objects with ``label`` and ``device_type``, or dicts)
            listed in ``recording.json``.
        max_buffer_bytes_per_stream: Memory cap of a video stream's ring (see module doc).
        ring_capacity_s: Capture time a video stream's ring holds (slots = fps x seconds,
            at least 2), one value for every video stream or a mapping by stream name
            (streams left out get ``DEFAULT_RING_CAPACITY_S``).
        max_backlog_s: Cap on each stream's backlog in seconds (None: only the ring bounds
            it); items beyond it are dropped and counted as ``backlog_cap``. The backlog is
            what a crash loses on top of the encoder delay.
        behind_report_s: Backlog in seconds at which a stream is reported (once) as falling
            behind real time.
        put_timeout_s: How long ``put`` waits for a free slot before dropping the item.
        cluster_time_limit_ms: Matroska ``cluster_time_limit`` (0..100). The default 0 gives
            every packet its own cluster, written out as soon as it is muxed (see
            ``stream_worker._Chunk``), so a SIGKILL loses only what the encoder still holds.
        fsync_interval_ms: How often each worker fsyncs its open chunk (0: never); bounds
            what a power loss can take.
        start_timeout_s: Longest wait for the worker processes to come up in ``start()``.
        stop_timeout_s: Longest wait for the workers to drain in ``stop()``; a worker still
            running then is killed (its chunk stays readable up to the kill).
    """

    def __init__(
        self,
        name: str,
        output_directory: pathlib.Path | str,
        stream_configs: Mapping[str, config_mod.VideoStreamConfig],
        start_chunk_callback: StartChunkCallback | None = None,
        sensor_stream_configs: Mapping[str, config_mod.DataStreamConfig] | None = None,
        chunk_length_s: float = 60.0,
        max_encoder_queue_size: int = 200,
        on_error: Callable[..., None] | None = None,
        *,
        origin: datetime.datetime | None = None,
        clock: clock_mod.DeviceClock | None = None,
        devices: Sequence[Any] | None = None,
        max_buffer_bytes_per_stream: int = DEFAULT_MAX_BUFFER_BYTES_PER_STREAM,
        ring_capacity_s: float | Mapping[str, float] = DEFAULT_RING_CAPACITY_S,
        max_backlog_s: float | None = None,
        behind_report_s: float = 1.0,
        put_timeout_s: float = 0.5,
        cluster_time_limit_ms: int = 0,
        fsync_interval_ms: int = 100,
        start_timeout_s: float = 30.0,
        stop_timeout_s: float = 60.0,
    ) -> None:
        self._name = ids.check_path_component("recording name", name)
        self._directory = pathlib.Path(output_directory)
        if not chunk_length_s > 0:
            raise ValueError(f"chunk_length_s must be > 0, got {chunk_length_s!r}")
        if not isinstance(max_encoder_queue_size, int) or max_encoder_queue_size < 1:
            raise ValueError(
                f"max_encoder_queue_size must be an int >= 1, got {max_encoder_queue_size!r}"
            )
        if not 0 <= cluster_time_limit_ms <= 100:
            raise ValueError(
                f"cluster_time_limit_ms must be within 0..100, got {cluster_time_limit_ms!r}"
            )
        if fsync_interval_ms < 0:
            raise ValueError(f"fsync_interval_ms must be >= 0, got {fsync_interval_ms!r}")
        if not put_timeout_s >= 0:
            raise ValueError(f"put_timeout_s must be >= 0, got {put_timeout_s!r}")
        if max_buffer_bytes_per_stream < 1:
            raise ValueError(
                f"max_buffer_bytes_per_stream must be >= 1, got {max_buffer_bytes_per_stream!r}"
            )
        if max_backlog_s is not None and not max_backlog_s > 0:
            raise ValueError(f"max_backlog_s must be > 0 or None, got {max_backlog_s!r}")
        if not behind_report_s > 0:
            raise ValueError(f"behind_report_s must be > 0, got {behind_report_s!r}")
        if origin is not None and (
            not isinstance(origin, datetime.datetime) or origin.tzinfo is None
        ):
            raise ValueError(f"origin must be a timezone-aware datetime, got {origin!r}")
        self._streams: dict[str, _Stream] = {}
        for stream_name, video_config in dict(stream_configs).items():
            if not isinstance(video_config, config_mod.VideoStreamConfig):
                raise ValueError(
                    f"stream {stream_name!r}: expected a VideoStreamConfig, "
                    f"got {type(video_config).__name__}"
                )
            self._add_stream(stream_name, "video", video_config)
        for stream_name, data_config in dict(sensor_stream_configs or {}).items():
            if not isinstance(data_config, config_mod.DataStreamConfig):
                raise ValueError(
                    f"sensor stream {stream_name!r}: expected a DataStreamConfig, "
                    f"got {type(data_config).__name__}"
                )
            self._add_stream(stream_name, "data", data_config)
        if not self._streams:
            raise ValueError("a ChunkedWriter needs at least one stream")
        self._callback = start_chunk_callback
        self._chunk_length_s = float(chunk_length_s)
        self._max_queue = max_encoder_queue_size
        self._on_error = on_error
        self._origin = origin
        self._clock = clock if clock is not None else clock_mod.default_clock()
        self._devices = [_device_entry(d) for d in (devices or [])]
        self._max_buffer = max_buffer_bytes_per_stream
        self._ring_s = _ring_capacities(ring_capacity_s, self._streams)
        self._max_backlog_s = max_backlog_s
        self._behind_report_s = behind_report_s
        self._put_timeout_s = put_timeout_s
        self._cluster_ms = cluster_time_limit_ms
        self._fsync_ms = fsync_interval_ms
        self._start_timeout_s = start_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._lock = threading.Lock()  # guards stream error/chunk state, _errors, stats file
        self._errors: list[str] = []
        self._error_reported = False
        self._started = False
        self._stopped = False
        self._monitor: threading.Thread | None = None
        self._stopped_at: datetime.datetime | None = None
        self._on_error_thread: threading.Thread | None = None
        self._stop_lock = threading.Lock()  # serialises stop() callers
        self._created_directory = False
        self._pending: dict[str, pending_queue.PendingQueue] = {}
        self._first_error_stream: str | None = None
        self._stats_extension: Callable[[], Mapping[str, Any]] | None = None
        self._writers_lock: int | None = None  # shared spool_lock while this writer writes

    def _add_stream(
        self,
        name: str,
        kind: str,
        stream_config: config_mod.VideoStreamConfig | config_mod.DataStreamConfig,
    ) -> None:
        ids.check_path_component("stream name", name)
        config_mod.check_stream_type(f"stream {name!r}", stream_config.metadata)
        if name in self._streams:
            raise ValueError(f"stream name {name!r} is used twice")
        self._streams[name] = _Stream(name, kind, stream_config)

    # -- properties --------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The recording id (directory name)."""
        return self._name

    @property
    def directory(self) -> pathlib.Path:
        """The recording directory, ``output_directory``."""
        return self._directory

    @property
    def origin(self) -> datetime.datetime | None:
        """The recording origin (pts 0), known once started."""
        return self._origin

    @property
    def stream_names(self) -> list[str]:
        """All stream names, video streams first."""
        return list(self._streams)

    @property
    def errors(self) -> list[str]:
        """Error messages so far, oldest first."""
        with self._lock:
            return list(self._errors)

    @property
    def healthy(self) -> bool:
        """False once any stream failed, received an invalid item, or its worker died."""
        with self._lock:
            return not self._errors

    @property
    def stats(self) -> dict[str, writer_stats.StreamStats]:
        """A snapshot of every stream's counters."""
        with self._lock:
            return {name: self._stream_stats(s) for name, s in self._streams.items()}

    def worker_pid(self, name: str) -> int | None:
        """Return the pid of stream ``name``'s worker process (None before ``start()``)."""
        stream = self._stream(name)
        return None if stream.process is None else int(stream.process.pid)

    def slot_count(self, name: str) -> int:
        """Return the number of ring slots stream ``name`` gets (its queue capacity)."""
        stream = self._stream(name)
        if isinstance(stream.config, config_mod.VideoStreamConfig):
            by_memory = max(2, self._max_buffer // stream.config.frame_nbytes)
            by_time = max(2, math.ceil(stream.config.fps * self._ring_s[name] - 1e-9))
            return max(1, min(self._max_queue, by_memory, by_time))
        return self._max_queue

    def is_data_stream(self, name: str) -> bool:
        """True if ``name`` is one of this writer's data (sensor) streams (omgrab 0.1.2 API)."""
        stream = self._streams.get(name)
        return stream is not None and isinstance(stream.config, config_mod.DataStreamConfig)

    # -- lifecycle ---------------------------------------------------------------------------

    def get_encoder_queue(self, name: str) -> stream_queue.StreamQueue | pending_queue.PendingQueue:
        """Return the queue that takes ``(data, timestamp)`` items of stream ``name``.

        Before ``start()`` this is a :class:`~omgrab.recording.pending_queue.PendingQueue`
        (the omgrab 0.1.2 quick start takes the queues first): it holds up to
        ``slot_count(name)`` items and forwards everything to the stream queue once started.

        Raises:
            KeyError: No such stream.
            RuntimeError: The writer's start failed or it was stopped before it started.
        """
        stream = self._stream(name)
        if name in self._pending:
            return self._pending[name]
        if stream.queue is None:
            if self._started:
                raise RuntimeError(f"ChunkedWriter {self._name!r} has no running stream {name!r}")
            return self._pending.setdefault(
                name, pending_queue.PendingQueue(name, self.slot_count(name))
            )
        return stream.queue

    def start(self) -> None:
        """Create the recording directory, write ``recording.json`` and start the workers.

        Raises:
            RuntimeError: Already started, or a worker failed to start (bad codec options).
            FileExistsError: The recording directory already holds a recording.
        """
        if self._started:
            raise RuntimeError(f"ChunkedWriter {self._name!r} already started")
        self._started = True
        if (self._directory / spool_files.RECORDING_FILE).exists():
            raise FileExistsError(f"{self._directory} already holds a recording")
        self._created_directory = not self._directory.exists()
        self._directory.mkdir(parents=True, exist_ok=True)
        self._writers_lock = spool_lock.hold_shared(self._directory)
        if self._origin is None:
            held = [p.earliest_timestamp() for p in self._pending.values()]
            self._origin = min([self._clock.now(), *[t for t in held if t is not None]])
        spool_files.write_json_atomic(
            self._directory / spool_files.RECORDING_FILE, self._recording_document()
        )
        ctx = worker_start.forkserver_context()
        try:
            for stream in self._streams.values():
                self._start_stream(ctx, stream)
            self._wait_ready()
        except BaseException:
            self._abort_start()
            raise
        for name, pending in self._pending.items():
            target = self._streams[name].queue
            assert target is not None
            pending.attach(target)
        self._write_stats()
        self._monitor = threading.Thread(
            target=self._monitor_loop, name=f"chunked-writer-{self._name}", daemon=True
        )
        self._monitor.start()
        _running_writers.add(self)

    def stop(self) -> None:
        """Drain every queued item into the files, close all chunks, write stats and COMPLETE.

        Idempotent and thread-safe (a second caller waits for the first to finish); returns
        within about ``stop_timeout_s`` even if a worker hangs.
        """
        with self._stop_lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        if not self._started or self._stopped:
            return
        self._stopped = True
        _running_writers.discard(self)
        for stream in self._streams.values():
            if stream.queue is not None:
                stream.queue.close()
        for stream in self._streams.values():
            if stream.ring is not None:
                stream.ring.header[frame_ring.STOP_FIELD] = 1
                stream.filled.release()
        deadline = time.monotonic() + self._stop_timeout_s
        for stream in self._streams.values():
            if stream.process is None:
                continue
            if not self._wait_exited(stream, deadline - time.monotonic()):
                self._stream_failed(
                    stream, f"stream {stream.name!r}: worker did not finish within stop timeout"
                )
                stream.process.kill()
                self._wait_exited(stream, 5.0)
        if self._monitor is not None:
            self._monitor.join(5.0)
            if self._monitor.is_alive():
                logger.error("writer %r: monitor thread did not finish", self._name)
        self._stopped_at = self._clock.now()
        try:
            # Without final stats there is no COMPLETE: start-up recovery then salvages the
            # chunks (e.g. after the disk filled up).
            if not self._write_stats():
                raise OSError("final stats.json could not be written")
            spool_files.write_complete_marker(self._directory)
        except OSError as exc:
            self._report_error(f"cannot finish the recording directory: {exc}")
        finally:
            self._release_resources()

    def __enter__(self) -> ChunkedWriter:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.stop()

    # -- start helpers -----------------------------------------------------------------------

    def _start_stream(self, ctx: Any, stream: _Stream) -> None:
        (self._directory / stream.name).mkdir(exist_ok=True)
        if isinstance(stream.config, config_mod.VideoStreamConfig):
            slot_bytes = stream.config.frame_nbytes
        else:
            slot_bytes = stream.config.max_item_bytes
        slots = self.slot_count(stream.name)
        ring = frame_ring.FrameRing.create(slots, slot_bytes)
        stream.ring = ring
        filled, filled_name = named_semaphore.create(0)
        free, free_name = named_semaphore.create(slots)
        stream.filled = filled
        stream.semaphore_names = [filled_name, free_name]
        events_recv, events_send = ctx.Pipe(duplex=False)
        lifeline_recv, lifeline_send = ctx.Pipe(duplex=False)
        spec = stream_worker.WorkerSpec(
            stream_name=stream.name,
            kind=stream.kind,
            config=self._worker_config(stream),
            directory=str(self._directory / stream.name),
            ext=CHUNK_EXT,
            ring=ring.spec,
            filled_semaphore=filled_name,
            free_semaphore=free_name,
            cluster_time_limit_ms=self._cluster_ms,
            fsync_interval_ms=self._fsync_ms,
        )
        process = ctx.Process(
            target=stream_worker.run_worker,
            args=(spec, events_send, lifeline_recv),
            name=f"omgrab-writer-{stream.name}",
            daemon=True,
        )
        with worker_start.main_module_hidden():
            process.start()
        events_send.close()
        lifeline_recv.close()
        stream.process = process
        stream.events = events_recv
        stream.lifeline = lifeline_send
        assert self._origin is not None
        stream.queue = stream_queue.StreamQueue(
            name=stream.name,
            stream_config=stream.config,
            ring=ring,
            filled=filled,
            free=free,
            origin=self._origin,
            chunk_length_s=self._chunk_length_s,
            put_timeout_s=self._put_timeout_s,
            start_chunk_callback=self._callback,
            ext=CHUNK_EXT,
            on_invalid=self._invalid_item,
            max_backlog_s=self._max_backlog_s,
            behind_report_s=self._behind_report_s,
        )

    @staticmethod
    def _worker_config(stream: _Stream) -> dict[str, Any]:
        """The stream config as the worker applies it (effective encoder options)."""
        cfg = stream.config.to_dict()
        if stream.encoder is not None:
            cfg["stream_options"] = dict(stream.encoder.options)
        return cfg

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self._start_timeout_s
        pending = {s.name: s for s in self._streams.values()}
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(
                    f"writer {self._name!r}: workers of {sorted(pending)} did not start within "
                    f"{self._start_timeout_s} s"
                )
            waitables: list[Any] = [s.events for s in pending.values()]
            connection.wait(waitables, timeout=remaining)
            for stream in list(pending.values()):
                assert stream.events is not None
                while stream.events.poll():
                    try:
                        kind, payload = stream.events.recv()
                    except EOFError:
                        raise RuntimeError(
                            f"writer {self._name!r}: worker of stream {stream.name!r} exited "
                            f"during start (exit code {stream.process.exitcode})"
                        ) from None
                    if kind == "ready":
                        stream.ready = True
                        pending.pop(stream.name, None)
                        self._unlink_names(stream)
                        break
                    if kind == "error":
                        raise RuntimeError(
                            f"writer {self._name!r} could not start: {payload['message']}"
                        )

    def _wait_exited(self, stream: _Stream, timeout: float) -> bool:
        """Wait until the monitor saw ``stream``'s worker exit (or join it if no monitor)."""
        timeout = max(0.0, timeout)
        monitor = self._monitor
        if monitor is not None and monitor.is_alive():
            if stream.exited_event.wait(timeout):
                return True
            if monitor.is_alive():
                return False
        # No monitor (it failed): this thread is the only one touching the process now.
        stream.process.join(timeout)
        if stream.process.is_alive():
            return False
        if not stream.exited:
            stream.exited = True
            stream.exited_event.set()
        return True

    def _unlink_names(self, stream: _Stream) -> None:
        """Remove the ring's and semaphores' names once the worker holds them open.

        From then on nothing of the stream is left in ``/dev/shm`` whatever kills the
        processes; both sides keep their mappings and handles.
        """
        if stream.ring is not None:
            stream.ring.unlink()
        for name in stream.semaphore_names:
            named_semaphore.unlink(name)
        stream.semaphore_names = []

    def _abort_start(self) -> None:
        for stream in self._streams.values():
            if stream.process is not None and stream.process.is_alive():
                stream.process.kill()
                stream.process.join(5.0)
        self._stopped = True
        self._release_resources()
        self._remove_empty_recording()

    def _remove_empty_recording(self) -> None:
        """After a failed start, remove what start() created if no chunk was written."""
        if any(self._directory.glob("*/*.mkv*")):
            return
        for name in (spool_files.RECORDING_FILE, spool_files.STATS_FILE, spool_lock.LOCK_FILE):
            with contextlib.suppress(FileNotFoundError):
                (self._directory / name).unlink()
        for stream in self._streams.values():
            with contextlib.suppress(OSError):
                (self._directory / stream.name).rmdir()
        if self._created_directory:
            with contextlib.suppress(OSError):
                self._directory.rmdir()

    # -- monitor -----------------------------------------------------------------------------

    def _monitor_loop(self) -> None:
        try:
            while True:
                active = [s for s in self._streams.values() if not s.exited]
                if not active:
                    return
                waitables: list[Any] = []
                for stream in active:
                    waitables.append(stream.events)
                    waitables.append(stream.process.sentinel)
                ready = connection.wait(waitables, timeout=1.0)
                for stream in active:
                    if stream.events in ready or stream.process.sentinel in ready:
                        self._pump_events(stream)
        except Exception as exc:  # never die silently
            logger.exception("writer %r: monitor thread failed", self._name)
            self._report_error(f"writer monitor failed: {type(exc).__name__}: {exc}")

    def _pump_events(self, stream: _Stream) -> None:
        assert stream.events is not None
        eof = False
        try:
            while stream.events.poll():
                kind, payload = stream.events.recv()
                self._handle_event(stream, kind, payload)
        except (EOFError, OSError):
            eof = True
        if eof or not stream.process.is_alive():
            stream.process.join(1.0)
            if stream.process.is_alive():
                return
            # read anything sent just before exit
            try:
                while stream.events.poll():
                    kind, payload = stream.events.recv()
                    self._handle_event(stream, kind, payload)
            except (EOFError, OSError):
                pass
            stream.exited = True
            stream.exited_event.set()
            code = stream.process.exitcode
            if not stream.finished or code != 0:
                if stream.queue is not None:
                    stream.queue.mark_dead()  # before reporting: later puts drop at once
                with self._lock:
                    had_error = stream.error is not None and "invalid item" not in stream.error
                if not had_error:
                    self._stream_failed(
                        stream,
                        f"stream {stream.name!r}: worker process exited unexpectedly "
                        f"(exit code {code})",
                    )

    def _handle_event(self, stream: _Stream, kind: str, payload: dict[str, Any]) -> None:
        if kind == "chunk_opened":
            with self._lock:
                stream.chunks.append(
                    writer_stats.ChunkInfo(
                        chunk_id=payload["chunk_id"], file=f"{stream.name}/{payload['file']}"
                    )
                )
            self._write_stats()
        elif kind == "chunk_closed":
            with self._lock:
                info = writer_stats.ChunkInfo(
                    chunk_id=payload["chunk_id"],
                    file=f"{stream.name}/{payload['file']}",
                    frames=payload["frames"],
                    first_pts_ms=payload["first_pts_ms"],
                    last_pts_ms=payload["last_pts_ms"],
                    closed=True,
                )
                for i, chunk in enumerate(stream.chunks):
                    if chunk.chunk_id == info.chunk_id:
                        stream.chunks[i] = info
                        break
                else:
                    stream.chunks.append(info)
            self._write_stats()
        elif kind == "error":
            logger.error("%s\n%s", payload["message"], payload.get("traceback", ""))
            if stream.queue is not None:
                stream.queue.mark_dead()
            self._stream_failed(stream, payload["message"])
        elif kind == "io_error":  # the stream goes on, but durability is in question
            self._stream_failed(stream, payload["message"])
        elif kind == "finished":
            stream.finished = True
            stream.frames_written_final = payload.get("frames_written")
            stream.worker_cpu_s = payload.get("cpu_s")
        elif kind == "ready":
            stream.ready = True

    # -- errors ------------------------------------------------------------------------------

    def _invalid_item(self, stream_name: str, message: str) -> None:
        stream = self._streams[stream_name]
        text = f"stream {stream_name!r}: invalid item dropped: {message}"
        with self._lock:
            first_for_stream = stream.error is None
            if first_for_stream:
                stream.error = text
        if first_for_stream:
            logger.error("%s", text)
            self._report_error(text, stream_name)
        else:
            logger.debug("%s", text)

    def _stream_failed(self, stream: _Stream, message: str) -> None:
        with self._lock:
            if stream.error is None or "invalid item" in stream.error:
                stream.error = message
        logger.error("writer %r: %s", self._name, message)
        self._report_error(message, stream.name)

    def _report_error(self, message: str, stream_name: str | None = None) -> None:
        with self._lock:
            self._errors.append(message)
            first = not self._error_reported
            self._error_reported = True
            if first:
                self._first_error_stream = stream_name
        if first and self._on_error is not None:
            # From its own thread, so the callback may call stop() (which waits for the
            # monitor thread) or block without stalling a capture or the monitor thread.
            self._on_error_thread = threading.Thread(
                target=self._call_on_error,
                name=f"chunked-writer-{self._name}-on-error",
                daemon=True,
            )
            self._on_error_thread.start()

    def _call_on_error(self) -> None:
        assert self._on_error is not None
        try:
            if _takes_one_argument(self._on_error):
                # omgrab 0.1.2's on_error(stream_name); None when no single stream failed.
                self._on_error(self._first_error_stream)
            else:
                self._on_error()
        except Exception:
            logger.exception("writer %r: on_error callback failed", self._name)

    # -- stats -------------------------------------------------------------------------------

    def _stream(self, name: str) -> _Stream:
        try:
            return self._streams[name]
        except KeyError:
            raise KeyError(
                f"no stream named {name!r}; streams are {sorted(self._streams)}"
            ) from None

    def _stream_stats(self, stream: _Stream) -> writer_stats.StreamStats:
        q = stream.queue
        written = 0
        first: int | None = None
        last: int | None = None
        ring = stream.ring
        delay: int | None = None
        if ring is not None and ring.header.size:
            delay = int(ring.header[frame_ring.ENCODER_DELAY_FIELD])
            written = int(ring.header[frame_ring.WRITTEN_FIELD])
            first_raw = int(ring.header[frame_ring.FIRST_PTS_FIELD])
            last_raw = int(ring.header[frame_ring.LAST_PTS_FIELD])
            first = first_raw if first_raw >= 0 else None
            last = last_raw if last_raw >= 0 else None
        elif stream.frames_final is not None:
            written, first, last, delay = stream.frames_final
        alive = stream.process is not None and not stream.exited
        return writer_stats.StreamStats(
            kind=stream.kind,
            frames_put=q.frames_put if q else 0,
            frames_written=written,
            frames_dropped=q.frames_dropped if q else 0,
            frames_out_of_order=q.frames_out_of_order if q else 0,
            frames_invalid=q.frames_invalid if q else 0,
            queued=q.qsize() if q and alive else 0,
            first_pts_ms=first,
            last_pts_ms=last,
            last_timestamp=q.last_timestamp if q else None,
            chunks=tuple(stream.chunks),
            healthy=stream.error is None,
            error=stream.error,
            worker_cpu_s=stream.worker_cpu_s,
            drops=dict(q.drops) if q else {},
            backlog_s=q.backlog_s() if q and alive else 0.0,
            backlog_max_s=q.backlog_max_s if q else 0.0,
            behind_reported_s=q.behind_reported_s if q else None,
            encoder_delay_frames=delay if stream.kind == "video" else None,
            ring_slots=self.slot_count(stream.name),
        )

    def set_stats_extension(self, provider: Callable[[], Mapping[str, Any]] | None) -> None:
        """Add ``provider()``'s top-level keys to every stats.json written (None: stop adding).

        The recording session uses it for what only the capture side knows (capture gaps,
        interruptions, stop reason). The provider runs without the writer's lock held; if it
        raises, the error is logged and stats.json is written without its keys.
        """
        self._stats_extension = provider

    def _write_stats(self) -> bool:
        """Rewrite stats.json; False (logged) when it could not be written."""
        extra: Mapping[str, Any] = {}
        if self._stats_extension is not None:
            try:
                extra = self._stats_extension()
            except Exception:
                logger.exception("writer %r: stats extension failed", self._name)
        with self._lock:
            doc = {
                **extra,
                "updated_at": self._clock.now().isoformat(),
                "stopped_at": self._stopped_at.isoformat() if self._stopped_at else None,
                "streams": {
                    name: self._stream_stats(s).to_dict() for name, s in self._streams.items()
                },
            }
            try:
                spool_files.write_json_atomic(self._directory / spool_files.STATS_FILE, doc)
            except OSError as exc:
                logger.error("writer %r: cannot write stats.json: %s", self._name, exc)
                return False
            return True

    def _recording_document(self) -> dict[str, Any]:
        assert self._origin is not None
        return {
            "schema": spool_files.SCHEMA_VERSION,
            "recording_id": self._name,
            "started_at": self._origin.isoformat(),
            "software_version": omgrab.__version__,
            "chunk_length_s": self._chunk_length_s,
            "streams": {name: self._stream_document(s) for name, s in self._streams.items()},
            "devices": self._devices,
        }

    @staticmethod
    def _stream_document(stream: _Stream) -> dict[str, Any]:
        doc: dict[str, Any] = {"kind": stream.kind, "config": stream.config.to_dict()}
        if stream.encoder is not None:
            assert isinstance(stream.config, config_mod.VideoStreamConfig)
            doc["encoder"] = stream.encoder.to_dict(float(stream.config.fps))
        return doc

    def _release_resources(self) -> None:
        spool_lock.release(self._writers_lock)
        self._writers_lock = None
        with self._lock:
            for stream in self._streams.values():
                ring = stream.ring
                if ring is not None:
                    header = ring.header
                    stream.frames_final = (
                        int(header[frame_ring.WRITTEN_FIELD]),
                        _opt(int(header[frame_ring.FIRST_PTS_FIELD])),
                        _opt(int(header[frame_ring.LAST_PTS_FIELD])),
                        int(header[frame_ring.ENCODER_DELAY_FIELD]),
                    )
                    stream.ring = None
                    ring.unlink()
                    ring.close()
                for name in stream.semaphore_names:
                    named_semaphore.unlink(name)
                stream.semaphore_names = []
                for conn in (stream.events, stream.lifeline):
                    if conn is not None:
                        conn.close()
                stream.events = None
                stream.lifeline = None


def _takes_one_argument(callback: Callable[..., None]) -> bool:
    """True when ``callback`` must be called with one positional argument (0.1.2 style)."""
    try:
        signature = inspect.signature(callback)
    except (TypeError, ValueError):
        return False
    try:
        signature.bind()
    except TypeError:
        try:
            signature.bind(None)
        except TypeError:
            return False
        return True
    return False


def _ring_capacities(
    value: float | Mapping[str, float], streams: Mapping[str, _Stream]
) -> dict[str, float]:
    """Ring capacity in seconds per stream from ``ring_capacity_s`` (validated)."""
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(streams))
        if unknown:
            raise ValueError(
                f"ring_capacity_s names unknown streams {unknown}; streams are {sorted(streams)}"
            )
        capacities = {name: float(value.get(name, DEFAULT_RING_CAPACITY_S)) for name in streams}
    else:
        capacities = dict.fromkeys(streams, value)
    for name, seconds in capacities.items():
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
            raise ValueError(f"ring_capacity_s of stream {name!r} must be > 0, got {seconds!r}")
    return {name: float(seconds) for name, seconds in capacities.items()}


def _opt(value: int) -> int | None:
    return value if value >= 0 else None


def _device_entry(device: Any) -> dict[str, str]:
    if isinstance(device, Mapping):
        return {"label": str(device["label"]), "device_type": str(device["device_type"])}
    device_type = getattr(device, "device_type", "")
    return {"label": str(device.label), "device_type": str(getattr(device_type, "value", ""))}
