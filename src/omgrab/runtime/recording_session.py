"""Recording session that owns capture threads and a parallel writer.

One session is one recording: a capture thread per camera and per sensor pulls timestamped items
and hands them to the :class:`~omgrab.recording.writer.ChunkedWriter`'s encoder queues; the
writer encodes them into crash-safe chunks in the spool directory. Threads never die silently:
a capture thread that crashes records the error and fires ``on_error`` (once per session), and a
stream that stops delivering is reported by :meth:`RecordingSession.stalled_streams`.

Frames lost before the writer are counted per stream by a
:class:`~omgrab.recording.capture_gaps.GapTracker` fed by the capture thread (gaps in capture
timestamps over 1.5 frame intervals, or skipped device sequence numbers); device interruptions
the manager reports (:meth:`RecordingSession.note_interruption`) relabel the gaps they cover.
The session publishes both, and the reason it stopped (:meth:`RecordingSession.set_stop_reason`,
first reason wins, ``requested`` when none was set), into the writer's stats.json, from where the
merge copies them into the manifest and the MKV tags.

A read that fails at once (a device closed while it is being reopened) is followed by a short
wait, so a capture thread never spins while its source is away.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import pathlib
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from omgrab import lifecycle
from omgrab.cameras import base as camera_base
from omgrab.recording import capture_gaps
from omgrab.recording import config as recording_config
from omgrab.recording import stop_reason as stop_reason_mod
from omgrab.recording import writer as recording_writer
from omgrab.sensors import base as sensor_base

logger = logging.getLogger(__name__)

StartChunkCallback = recording_writer.StartChunkCallback

_READ_TIMEOUT_S = 0.25
_PUT_TIMEOUT_S = 1.0
# A capture thread notices the stop within one read plus one put; joins wait this long at most.
_JOIN_TIMEOUT_S = 5.0
_UNAVAILABLE_BACKOFF_S = 0.02

# omgrab 0.1.2's public tuning constant (its session waited this long for the writer's queues to
# go quiet before stopping it). Kept so code that sets it still runs; unused here: this writer
# drains by waiting for its worker processes to finish every queued item.
WRITER_DRAIN_QUIET_PERIOD_S = 0.5


@dataclasses.dataclass
class StreamCaptureStats:
    """What one capture thread has seen.

    Attributes:
        name: Stream name.
        items_captured: Items read from the source.
        items_queued: Items handed to the writer's queue.
        items_dropped: Items dropped because the writer's queue stayed full.
        frames_missed: Items the source lost before this thread saw them (capture gaps).
        gaps: Capture gaps seen (see ``omgrab.recording.capture_gaps``).
        timeouts: Reads that returned nothing within the read timeout.
        last_item_monotonic: Monotonic time of the last item, or None before the first.
        error: Description of the error that ended the thread, or None.
    """

    name: str
    items_captured: int = 0
    items_queued: int = 0
    items_dropped: int = 0
    frames_missed: int = 0
    gaps: int = 0
    timeouts: int = 0
    last_item_monotonic: float | None = None
    error: str | None = None


class RecordingSession:
    """A single recording session with isolated threads and parallel writer.

    Owns the per-stream encoder queues (via ChunkedWriter), one capture thread per camera and
    sensor, and the writer's encoders.

    Lifecycle: ``start()`` starts capture threads and the writer; ``stop()`` signals capture
    threads to stop, joins them and drains the writer; ``join()`` waits for everything.

    Args:
        recording_id: Unique ID for this recording (fixed for session lifetime).
        target_cameras: Cameras to capture from (already open).
        stream_names: Stream names, one per camera.
        stream_configs: Configuration for each video stream.
        spool_dir: Directory to write chunk files (the session writes ``spool_dir/recording_id``).
        start_chunk_callback: Optional callback to generate chunk IDs. When None, ChunkedWriter
            generates sequential 5-digit IDs.
        sensors: Optional sensors (e.g. IMU), already open.
        sensor_stream_names: Sensor stream names, one per sensor.
        sensor_stream_configs: Configuration for each sensor stream.
        chunk_length_s: Duration of each recording chunk in seconds.
        max_queue_size: Maximum size per encoder queue.
        on_error: Called once (even if several streams fail) when the writer or a capture thread
            crashes, so the recording can be stopped.
        writer_options: Extra keyword arguments for the ChunkedWriter (e.g. ``clock``).
    """

    def __init__(
        self,
        recording_id: str,
        target_cameras: list[camera_base.Camera],
        stream_names: list[str],
        stream_configs: dict[str, recording_config.VideoStreamConfig],
        spool_dir: pathlib.Path,
        start_chunk_callback: StartChunkCallback | None = None,
        sensors: list[sensor_base.Sensor] | None = None,
        sensor_stream_names: list[str] | None = None,
        sensor_stream_configs: dict[str, recording_config.DataStreamConfig] | None = None,
        chunk_length_s: float = 60.0,
        max_queue_size: int = 400,
        on_error: Callable[[], None] | None = None,
        *,
        writer_options: dict[str, Any] | None = None,
    ) -> None:
        sensors = list(sensors or [])
        sensor_stream_names = list(sensor_stream_names or [])
        sensor_stream_configs = dict(sensor_stream_configs or {})
        _check_counts("camera", target_cameras, stream_names)
        _check_counts("sensor", sensors, sensor_stream_names)
        # Missing stream configs fail at start(), as in omgrab 0.1.2 (docs/compat.md).
        self._config_problem = _config_problem(
            ("camera", stream_names, stream_configs),
            ("sensor", sensor_stream_names, sensor_stream_configs),
        )
        duplicates = set(stream_names) & set(sensor_stream_names)
        if duplicates or len(set(stream_names)) != len(stream_names):
            raise ValueError(
                f"stream names must be unique, got {stream_names + sensor_stream_names}"
            )
        if chunk_length_s <= 0:
            raise ValueError(f"chunk_length_s must be > 0, got {chunk_length_s}")
        if max_queue_size <= 0:
            raise ValueError(f"max_queue_size must be > 0, got {max_queue_size}")

        self._recording_id = recording_id
        self._cameras = list(target_cameras)
        self._opened_here: list[lifecycle.Openable] = []
        self._stream_names = list(stream_names)
        self._sensors = sensors
        self._sensor_stream_names = sensor_stream_names
        self._on_error = on_error
        self._spool_dir = pathlib.Path(spool_dir)
        self._built_writer: recording_writer.ChunkedWriter | None = None
        if self._config_problem is None:
            self._built_writer = self._build_writer(
                start_chunk_callback,
                {name: stream_configs[name] for name in stream_names},
                {name: sensor_stream_configs[name] for name in sensor_stream_names},
                chunk_length_s,
                max_queue_size,
                writer_options,
            )
        self._stop_event = threading.Event()
        self._threads: list[threading.Thread] = []
        self._stats: dict[str, StreamCaptureStats] = {
            name: StreamCaptureStats(name) for name in stream_names + sensor_stream_names
        }
        self._state_lock = threading.Lock()
        self._started = False
        self._stopped = False
        self._error_reported = False
        self._errors: list[str] = []
        self._started_monotonic: float | None = None
        self._stopped_monotonic: float | None = None
        self._writer_stopped = threading.Event()
        self._sources: dict[str, object] = {
            **dict(zip(stream_names, self._cameras, strict=True)),
            **dict(zip(sensor_stream_names, sensors, strict=True)),
        }
        self._gap_trackers: dict[str, capture_gaps.GapTracker] = {}
        self._interruptions: list[dict[str, Any]] = []
        self._stop_reason: stop_reason_mod.StopReason | None = None
        self._resumed_monotonic: float | None = None
        if self._built_writer is not None:
            self._built_writer.set_stats_extension(self.capture_report)

    def _build_writer(
        self,
        start_chunk_callback: StartChunkCallback | None,
        stream_configs: dict[str, recording_config.VideoStreamConfig],
        sensor_stream_configs: dict[str, recording_config.DataStreamConfig],
        chunk_length_s: float,
        max_queue_size: int,
        writer_options: dict[str, Any] | None,
    ) -> recording_writer.ChunkedWriter:
        return recording_writer.ChunkedWriter(
            self._recording_id,
            self._spool_dir / self._recording_id,
            stream_configs,
            start_chunk_callback=start_chunk_callback,
            sensor_stream_configs=sensor_stream_configs or None,
            chunk_length_s=chunk_length_s,
            max_encoder_queue_size=max_queue_size,
            on_error=self._handle_writer_error,
            **(writer_options or {}),
        )

    @property
    def _writer(self) -> recording_writer.ChunkedWriter:
        if self._built_writer is None:
            raise ValueError(f"recording session {self._recording_id}: {self._config_problem}")
        return self._built_writer

    @property
    def stopped(self) -> bool:
        """True if the session has been stopped."""
        return self._stopped

    @property
    def recording_id(self) -> str:
        """Get the recording ID for this session."""
        return self._recording_id

    @property
    def recording_dir(self) -> pathlib.Path:
        """The spool directory holding this recording's chunks."""
        return self._spool_dir / self._recording_id

    @property
    def recording_length_s(self) -> float:
        """Intended recording duration in seconds (capture start to stop signal)."""
        if self._started_monotonic is None:
            return 0.0
        end = self._stopped_monotonic if self._stopped_monotonic is not None else time.monotonic()
        return max(0.0, end - self._started_monotonic)

    @property
    def is_alive(self) -> bool:
        """True if any thread is still running."""
        if any(thread.is_alive() for thread in self._threads):
            return True
        return self._started and not self._writer_stopped.is_set()

    @property
    def writer(self) -> recording_writer.ChunkedWriter:
        """The session's writer (for stats and health)."""
        return self._writer

    @property
    def errors(self) -> list[str]:
        """Errors seen by capture threads or the writer, oldest first."""
        with self._state_lock:
            return list(self._errors)

    @property
    def stop_reason(self) -> stop_reason_mod.StopReason | None:
        """Why the session stopped (or will stop), None while no reason was set."""
        with self._state_lock:
            return self._stop_reason

    def set_stop_reason(self, reason: stop_reason_mod.StopReason | str) -> bool:
        """Record why the session stops; the first reason set wins.

        Call it before :meth:`stop`; ``stop()`` without a reason records ``requested``.

        Returns:
            True if this reason was recorded, False if one was already set.

        Raises:
            ValueError: For a string that is not a ``StopReason`` value.
        """
        value = stop_reason_mod.StopReason(reason)
        with self._state_lock:
            if self._stop_reason is not None:
                return False
            self._stop_reason = value
            return True

    def note_interruption(
        self,
        reason: str,
        started: datetime.datetime,
        ended: datetime.datetime | None,
        detail: str = "",
    ) -> None:
        """Record that the sources were interrupted (e.g. a device disconnect) in this span.

        Gaps overlapping the span are reported with ``reason`` as their cause; the span itself
        is listed under ``interruptions`` (pts and duration; ``ended`` None: not recovered).
        An interruption is noticed late (the health check polls), so the span starts at the
        last item any stream captured before ``started``, when that is earlier.
        """
        origin = self._writer.origin or started
        with self._state_lock:
            seen = [t.last_time for t in self._gap_trackers.values() if t.last_time is not None]
        if seen:
            started = min(started, max(seen))
        entry = {
            "reason": reason,
            "pts_ms": round((started - origin).total_seconds() * 1000),
            "duration_ms": (
                None if ended is None else round((ended - started).total_seconds() * 1000)
            ),
            "recovered": ended is not None,
            "detail": detail,
        }
        with self._state_lock:
            self._interruptions.append(entry)
            if ended is not None:
                self._resumed_monotonic = time.monotonic()

    def capture_report(self) -> dict[str, Any]:
        """Return what stats.json records for the capture side.

        ``stop_reason``, ``interruptions`` and per stream (``capture``) the items captured,
        frames missed, gap count, total and longest gap and the listed gaps.
        """
        with self._state_lock:
            interruptions = [dict(entry) for entry in self._interruptions]
            reason = self._stop_reason

            def relabel(gap: capture_gaps.Gap) -> str | None:
                end = gap.pts_ms + gap.duration_ms
                for entry in interruptions:
                    span_end = (
                        entry["pts_ms"] + entry["duration_ms"]
                        if entry["duration_ms"] is not None
                        else float("inf")
                    )
                    if gap.pts_ms <= span_end and entry["pts_ms"] <= end:
                        return str(entry["reason"])
                return None

            capture = {
                name: tracker.summary(relabel) for name, tracker in self._gap_trackers.items()
            }
        return {
            "stop_reason": reason.value if reason is not None else None,
            "interruptions": interruptions,
            "capture": capture,
        }

    def capture_stats(self) -> dict[str, StreamCaptureStats]:
        """Return a copy of every stream's capture statistics."""
        with self._state_lock:
            return {name: dataclasses.replace(stats) for name, stats in self._stats.items()}

    def stalled_streams(self, stall_timeout_s: float, now: float | None = None) -> list[str]:
        """Return the streams that delivered nothing for ``stall_timeout_s`` seconds.

        A stream counts from the session start until its first item, so a camera that never
        delivers is reported too, and from the end of the last interruption (a reconnected
        device gets the full timeout to deliver again). Streams whose capture thread ended with
        an error are included.
        """
        now = time.monotonic() if now is None else now
        started = self._started_monotonic
        if started is None or self._stopped:
            return []
        stalled = []
        with self._state_lock:
            floor = max(started, self._resumed_monotonic or started)
            for name, stats in self._stats.items():
                last = max(floor, stats.last_item_monotonic or floor)
                if stats.error is not None or now - last >= stall_timeout_s:
                    stalled.append(name)
        return stalled

    def writer_backlog_s(self) -> dict[str, float]:
        """Return each stream's backlog in seconds: capture time queued for its encoder.

        It is what a crash now would lose on top of the encoder delay (see
        ``omgrab.recording.encoder_options``); for the device status.
        """
        return {name: stats.backlog_s for name, stats in self._writer.stats.items()}

    def start(self) -> None:
        """Start capture threads and parallel writer.

        Raises:
            RuntimeError: If already started.
        """
        with self._state_lock:
            if self._started:
                raise RuntimeError(f"recording session {self._recording_id} already started")
            if self._config_problem is not None:
                raise ValueError(f"recording session {self._recording_id}: {self._config_problem}")
            self._started = True
        self._writer.start()
        origin = self._writer.origin
        assert origin is not None  # set by start()
        with self._state_lock:
            for name, source in self._sources.items():
                self._gap_trackers[name] = capture_gaps.GapTracker(_period_s(source), origin)
        self._started_monotonic = time.monotonic()
        # Sources a device has not opened (a 0.1.2-style camera passed on its own) are opened
        # by their capture thread and closed at stop, as 0.1.2's session did (its setup()
        # runs once per recording; a failing setup ends that stream's thread, not the start).
        self._opened_here = [
            source
            for source in [*self._cameras, *self._sensors]
            if isinstance(source, lifecycle.Openable) and not source.is_open
        ]
        for camera, name in zip(self._cameras, self._stream_names, strict=True):
            self._threads.append(self._spawn(name, self._camera_reader(camera), camera))
        for sensor, name in zip(self._sensors, self._sensor_stream_names, strict=True):
            self._threads.append(self._spawn(name, self._sensor_reader(sensor), sensor))
        logger.info("recording %s started with streams %s", self._recording_id, list(self._stats))

    def stop(self, reason: stop_reason_mod.StopReason | str | None = None) -> None:
        """Stop the recording session.

        Joins capture threads, then stops the parallel writer (which drains every queued item into
        the chunk files and closes them). Blocks until complete. Safe to call more than once.

        Args:
            reason: Why it stops, unless a reason was already set (first wins); ``requested``
                when none was ever set.
        """
        self.set_stop_reason(reason or stop_reason_mod.StopReason.REQUESTED)
        with self._state_lock:
            if self._stopped:
                already = True
            else:
                already = False
                self._stopped = True
        if already:
            self._writer_stopped.wait()
            return
        self._stopped_monotonic = time.monotonic()
        self._stop_event.set()
        deadline = time.monotonic() + _JOIN_TIMEOUT_S
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                # A read stuck in a driver: the writer still drains what was handed over.
                logger.error("%s still running %.1f s after stop", thread.name, _JOIN_TIMEOUT_S)
        for source in self._opened_here:
            try:
                if source.is_open:
                    source.close()
                if source.is_open:  # a 0.1.2-style close() override: end the open state too
                    lifecycle.Openable.close(source)
            except Exception:
                logger.exception("closing %s after recording %s failed", source, self._recording_id)
        try:
            if self._started:
                self._writer.stop()
        finally:
            self._writer_stopped.set()
        logger.info(
            "recording %s stopped after %.2f s", self._recording_id, self.recording_length_s
        )

    def join(self, timeout: float | None = None) -> bool:
        """Wait for all threads to finish (including writer drain).

        Args:
            timeout: Maximum time to wait in seconds, or None for no timeout.

        Returns:
            True if all threads finished, False if timeout expired.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining)
            if thread.is_alive():
                return False
        if not self._started:
            return True
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        return self._writer_stopped.wait(remaining)

    # -- capture threads -------------------------------------------------------------------

    def _spawn(
        self, name: str, reader: Callable[[], tuple[Any, Any]], source: object
    ) -> threading.Thread:
        thread = threading.Thread(
            target=self._capture_loop,
            args=(name, reader, source),
            name=f"capture-{self._recording_id}-{name}",
            daemon=True,
        )
        thread.start()
        return thread

    @staticmethod
    def _camera_reader(camera: camera_base.Camera) -> Callable[[], tuple[Any, Any]]:
        def read() -> tuple[Any, Any]:
            try:
                return camera.get_next_frame(timeout_s=_READ_TIMEOUT_S)
            except camera_base.FrameUnavailableError as exc:
                raise _NothingYet from exc

        return read

    @staticmethod
    def _sensor_reader(sensor: sensor_base.Sensor) -> Callable[[], tuple[Any, Any]]:
        def read() -> tuple[Any, Any]:
            try:
                return sensor.get_next_item(timeout_s=_READ_TIMEOUT_S)
            except sensor_base.SensorDataUnavailableError as exc:
                raise _NothingYet from exc

        return read

    def _capture_loop(self, name: str, read: Callable[[], tuple[Any, Any]], source: object) -> None:
        stats = self._stats[name]
        tracker = self._gap_trackers[name]
        encoder_queue = self._writer.get_encoder_queue(name)
        try:
            if source in self._opened_here and isinstance(source, lifecycle.Openable):
                source.open()
            while not self._stop_event.is_set():
                began = time.monotonic()
                try:
                    item = read()
                except _NothingYet:
                    with self._state_lock:
                        stats.timeouts += 1
                    if time.monotonic() - began < _UNAVAILABLE_BACKOFF_S:
                        self._stop_event.wait(_UNAVAILABLE_BACKOFF_S)
                    continue
                sequence = capture_gaps.sequence_number(source)
                with self._state_lock:
                    stats.items_captured += 1
                    stats.last_item_monotonic = time.monotonic()
                    if isinstance(item[1], datetime.datetime):
                        gap = tracker.observe(item[1], sequence)
                        if gap is not None:
                            stats.frames_missed += gap.frames_missed
                            stats.gaps += 1
                if self._stop_event.is_set():
                    break
                try:
                    encoder_queue.put(item, timeout=_PUT_TIMEOUT_S)
                except queue.Full:
                    with self._state_lock:
                        stats.items_dropped += 1
                    logger.warning("stream %s: writer queue full, item dropped", name)
                    continue
                with self._state_lock:
                    stats.items_queued += 1
        except Exception as exc:
            message = f"capture thread crashed for stream {name!r}: {type(exc).__name__}: {exc}"
            logger.exception(message)
            with self._state_lock:
                stats.error = message
            self.set_stop_reason(stop_reason_mod.StopReason.CAPTURE_ERROR)
            self._report_error(message)

    def _handle_writer_error(self) -> None:
        detail = "; ".join(self._writer.errors) or "writer failure"
        self.set_stop_reason(stop_reason_mod.StopReason.ENCODER_ERROR)
        self._report_error(f"writer error: {detail}")

    def _report_error(self, message: str) -> None:
        with self._state_lock:
            self._errors.append(message)
            if self._error_reported:
                return
            self._error_reported = True
        if self._on_error is not None:
            try:
                self._on_error()
            except Exception:
                logger.exception("on_error callback of recording %s failed", self._recording_id)


class _NothingYet(Exception):
    """Internal: a read timed out without an item."""


def _period_s(source: object) -> float | None:
    """Nominal item period of a camera (1 / fps) or sensor (``nominal_period_s``), or None."""
    if isinstance(source, camera_base.Camera):
        return 1.0 / source.config.fps
    period = getattr(source, "nominal_period_s", None)
    return float(period) if isinstance(period, int | float) and period > 0 else None


def _check_counts(kind: str, sources: list[Any], names: list[str]) -> None:
    if len(sources) != len(names):
        raise ValueError(
            f"Mismatch: {len(sources)} {kind}s but {len(names)} {kind} stream names: "
            f"one name per {kind}"
        )


def _config_problem(*groups: tuple[str, list[str], dict[str, Any]]) -> str | None:
    """Describe the first stream of ``groups`` (kind, names, configs) without a config."""
    for kind, names, configs in groups:
        missing = [name for name in names if name not in configs]
        if missing:
            return f"no stream config for {kind} stream(s) {missing}"
    return None
