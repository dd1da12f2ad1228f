"""The OutputManager facade: detections, frames, health, gimbal log, operator delivery.

Session layout (one directory per ``init``, named by its UTC start time)::

    <output_dir>/2026-03-19T14:00:05Z/
        detections.jsonl     one DetectionLogEntry per line (never truncated or deleted)
        frames/{frame_id}.jpg
        health.jsonl         one health entry per line
        gimbal.log           "<ISO UTC timestamp> <command>" per line

Every ``log_*`` / ``record_frame`` call validates on the caller's thread (bad input raises
``InvalidEntryError`` - both a ``WriteError`` and a ``ValueError`` - naming the problem) and
then hands the work to a background thread, so it returns in microseconds. Failures on the
background threads are logged, counted (``stats()``, ``error_count``) and never stop
processing. Calls after ``close()`` (or before ``init()``) raise ``WriteError``.

Crash safety: detection lines reach the kernel at the latest every ``flush_every`` (10)
entries or ``flush_interval_s`` (5 s) after the oldest unwritten one, so a SIGKILL loses at
most that window (``fsync=True`` extends this to power loss); frames are written under a
temporary name and renamed, so no truncated ``.jpg`` is ever left behind.

Storage ladder (``omgrab.storage``): below 20 % free, level-2 frames are recorded at the L1
rate and ``should_reduce_recording`` is true; below 10 % no frames are recorded; an
``ENOSPC`` stops frames until space is back; detection logs are never deleted, and keep
being written (from a pre-allocated reserve) after the disk fills.
"""

from __future__ import annotations

import atexit
import dataclasses
import datetime
import errno
import logging
import os
import types as pytypes
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from omgrab import clock as clock_mod
from omgrab import storage
from omgrab.output import config as config_mod
from omgrab.output import frame_recorder, line_writer, operator, serialize, timestamps, types
from omgrab.recording import ids

logger = logging.getLogger(__name__)

DETECTIONS_FILE = "detections.jsonl"
HEALTH_FILE = "health.jsonl"
GIMBAL_FILE = "gimbal.log"
FRAMES_DIR = "frames"

_REQUIRED = ("frame_id", "class_id", "label", "confidence", "bbox")
_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\x00": "\\0"})


# Managers still open at interpreter exit are closed (drained) by an atexit hook: the writer
# threads are daemons and would otherwise die with up to a flush window of entries unwritten.
_open_managers: weakref.WeakSet[OutputManager] = weakref.WeakSet()


@atexit.register
def _close_open_managers() -> None:
    for m in list(_open_managers):
        try:
            m.close(timeout=5.0)
        except Exception:
            logger.exception("Closing OutputManager at exit failed")


def session_dir_name(start: datetime.datetime) -> str:
    """Return the session directory name for a start time (``2026-03-19T14-00-05.120Z``).

    The same colon-free form as recording ids, so sessions can be copied to FAT/exFAT/SMB.
    """
    return ids.filesystem_timestamp(start)


class OutputManager:
    """Persists perception output for one session at a time.

    Args:
        config: Tuning (rates, flush policy, thresholds, queues, JPEG, retention).
        time_source: Raw time for timestamps, rate limiting and the flush interval; a
            ``ManualTimeSource`` makes tests deterministic (call ``poll()`` after advancing it).
        stat_fn: Replacement for ``os.statvfs`` (tests).
        monitor: A storage monitor to share (e.g. with the recorder); one is created on the
            session directory otherwise.
        sinks: Operator sinks to deliver reports to.
        output_dir: If given, ``init(output_dir)`` is called right away.
    """

    def __init__(
        self,
        config: config_mod.OutputConfig | None = None,
        *,
        time_source: clock_mod.TimeSource | None = None,
        stat_fn: storage.StatFunction = os.statvfs,
        monitor: storage.StorageMonitor | None = None,
        sinks: Iterable[operator.OperatorSink] = (),
        output_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self._config = config if config is not None else config_mod.OutputConfig()
        self._time: clock_mod.TimeSource = (
            time_source if time_source is not None else clock_mod.SystemTimeSource()
        )
        self._clock = clock_mod.DeviceClock(self._time)
        self._stamper = timestamps.IsoStamper(self._time)
        self._max_label_chars = self._config.max_label_chars
        self._max_entry_bytes = self._config.max_entry_bytes
        self._stat_fn = stat_fn
        self._monitor = monitor
        self._operator = operator.OperatorDelivery(sinks, self._config.operator_queue_size)
        self._session_dir: str | None = None
        self._detections: line_writer.LineWriter | None = None
        self._health: line_writer.LineWriter | None = None
        self._gimbal: line_writer.LineWriter | None = None
        self._frames: frame_recorder.FrameRecorder | None = None
        self._closed = False
        self.rejected = 0
        self._rejected_kinds: set[str] = set()
        self._last_stats_log = 0.0
        if output_dir is not None:
            self.init(output_dir)

    # --- lifecycle -------------------------------------------------------------------------

    def init(self, output_dir: str | os.PathLike[str] | None = None) -> None:
        """Create the session directory under ``output_dir`` and start the writers.

        Args:
            output_dir: Parent of the session directories; ``config.output_dir`` if omitted.

        Raises:
            IOError: The directory (or a log file in it) cannot be created.
            WriteError: The manager is closed or already initialised.
        """
        if self._closed:
            raise types.WriteError("OutputManager is closed; create a new one")
        if self._session_dir is not None:
            raise types.WriteError(f"OutputManager already initialised at {self._session_dir}")
        if output_dir is None:
            output_dir = self._config.output_dir
            if output_dir is None:
                raise types.InvalidEntryError(
                    "init() needs an output_dir (none given and config.output_dir is None)"
                )
        if not isinstance(output_dir, str | os.PathLike) or not os.fspath(output_dir):
            raise types.InvalidEntryError(f"output_dir must be a path, got {output_dir!r}")
        base = os.fspath(output_dir)
        cfg = self._config
        try:
            os.makedirs(base, exist_ok=True)
            session = self._make_session_dir(base)
            frames_dir = os.path.join(session, FRAMES_DIR)
            os.mkdir(frames_dir)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot create output session in {base}: {exc}") from exc
        if self._monitor is None:
            self._monitor = storage.StorageMonitor(
                session,
                thresholds=storage.StorageThresholds(
                    reduce_below=cfg.reduce_below, detection_only_below=cfg.detection_only_below
                ),
                min_interval_s=cfg.storage_check_interval_s,
                stat_fn=self._stat_fn,
                time_source=self._time,
            )
        started: list[line_writer.LineWriter] = []

        def open_log(filename: str, name: str, **options: Any) -> line_writer.LineWriter:
            writer = line_writer.LineWriter(
                os.path.join(session, filename), name=name, time_source=self._time, **options
            )
            started.append(writer)
            return writer

        try:
            self._detections = open_log(
                DETECTIONS_FILE,
                "Detection log",
                flush_every=cfg.flush_every,
                flush_interval_s=cfg.flush_interval_s,
                max_pending=cfg.detection_queue_size,
                fsync=cfg.fsync,
                reserve_bytes=cfg.detection_reserve_bytes,
                caller_assist=cfg.caller_flush_assist,
            )
            self._health = open_log(HEALTH_FILE, "Health log", max_pending=cfg.line_queue_size)
            self._gimbal = open_log(GIMBAL_FILE, "Gimbal log", max_pending=cfg.line_queue_size)
        except OSError as exc:
            for w in started:
                w.close()
            raise OSError(exc.errno, f"cannot open output logs in {session}: {exc}") from exc
        older = (
            self._older_frame_dirs(base, os.path.basename(session)) if cfg.retention_enabled else []
        )
        self._frames = frame_recorder.FrameRecorder(
            frames_dir,
            config=cfg,
            monitor=self._monitor,
            time_source=self._time,
            older_frame_dirs=older,
        )
        self._session_dir = session
        _open_managers.add(self)
        self._monitor.refresh()
        self._last_stats_log = self._time.monotonic()
        logger.info("Output session started: %s", session + os.sep)

    def _make_session_dir(self, base: str) -> str:
        name = session_dir_name(self._clock.now())
        for attempt in range(1000):
            path = os.path.join(base, name if attempt == 0 else f"{name}_{attempt}")
            try:
                os.mkdir(path)
            except FileExistsError:
                continue
            return path
        raise OSError(errno.EEXIST, f"no free session directory name for {name} in {base}")

    @staticmethod
    def _older_frame_dirs(base: str, current: str) -> list[str]:
        dirs = []
        for name in sorted(os.listdir(base)):
            frames = os.path.join(base, name, FRAMES_DIR)
            if name != current and os.path.isdir(frames):
                dirs.append(frames)
        return dirs

    def close(self, timeout: float = 30.0) -> None:
        """Drain every queue, close every file and sink (idempotent)."""
        if self._closed:
            return
        self._closed = True
        _open_managers.discard(self)
        if self._frames is not None:
            self._frames.close(timeout)
        for w in (self._detections, self._health, self._gimbal):
            if w is not None:
                w.close(timeout)
        self._operator.close(min(timeout, 5.0))
        if self._session_dir is not None:
            self.log_stats()
            s = self.stats()
            logger.info(
                "Output session closed: %s (%d detections, %d frames, %d errors)",
                self._session_dir,
                s["detections_logged"],
                s["frames_recorded"],
                s["error_count"],
            )

    def __enter__(self) -> OutputManager:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: pytypes.TracebackType | None,
    ) -> None:
        self.close()

    # --- properties ------------------------------------------------------------------------

    @property
    def config(self) -> config_mod.OutputConfig:
        """The configuration."""
        return self._config

    @property
    def session_dir(self) -> str | None:
        """The current session directory (None before ``init``)."""
        return self._session_dir

    @property
    def closed(self) -> bool:
        """True after ``close()``."""
        return self._closed

    @property
    def monitor(self) -> storage.StorageMonitor:
        """The storage monitor (share it with the recorder)."""
        self._require_open()
        assert self._monitor is not None
        return self._monitor

    # --- writes ----------------------------------------------------------------------------

    def _require_open(self) -> None:
        if self._closed:
            raise types.WriteError("OutputManager is closed")
        if self._session_dir is None:
            raise types.WriteError("OutputManager.init(output_dir) has not been called")

    def _reject(self, kind: str, exc: types.InvalidEntryError) -> types.InvalidEntryError:
        self.rejected += 1
        if kind not in self._rejected_kinds:
            self._rejected_kinds.add(kind)
            logger.warning("Rejected %s: %s (further rejections only counted)", kind, exc)
        return exc

    def log_detection(self, entry: types.DetectionLogEntry | Mapping[str, Any] | Any) -> None:
        """Append one detection to ``detections.jsonl`` (non-blocking).

        ``entry`` is a ``DetectionLogEntry`` dict (or a ``Detection`` with ``frame_id``, or a
        dataclass with the same fields). ``timestamp`` is added if missing. Non-finite floats
        outside the validated fields are written as ``null``.

        Raises:
            InvalidEntryError: A required field is missing or invalid, or the line would be
                longer than ``max_entry_bytes``.
            WriteError: Closed / not initialised, or the writer is ``detection_queue_size``
                entries behind.
        """
        if self._closed or self._detections is None:
            self._require_open()
        try:
            line = self._detection_line(entry)
        except types.InvalidEntryError as exc:
            raise self._reject("detection", exc) from None
        self._detections.submit(line)  # type: ignore[union-attr]

    def _detection_line(self, entry: Any) -> bytes:
        # Hot path (>= 200k calls/s): exact-type checks first, no copies of the caller's dict.
        if type(entry) is not dict:
            if isinstance(entry, types.Detection):
                try:
                    entry = entry.to_log_entry()
                except ValueError as exc:
                    raise types.InvalidEntryError(str(exc)) from None
            elif dataclasses.is_dataclass(entry) and not isinstance(entry, type):
                entry = dataclasses.asdict(entry)
            elif isinstance(entry, Mapping):
                entry = dict(entry)
            else:
                raise types.InvalidEntryError(
                    f"detection entry must be a dict, got {type(entry).__name__}"
                )
        try:
            types.validate_detection_fields(
                entry["bbox"],
                entry["class_id"],
                entry["label"],
                entry["confidence"],
                entry.get("track_id"),
                entry["frame_id"],
                self._max_label_chars,
            )
        except KeyError:
            missing = [k for k in _REQUIRED if k not in entry]
            raise types.InvalidEntryError(
                f"detection entry is missing required field(s) {missing}"
            ) from None
        except ValueError as exc:
            raise types.InvalidEntryError(f"invalid detection entry: {exc}") from None
        try:
            body = orjson.dumps(entry, default=serialize.default, option=serialize.OPTIONS)
        except orjson.JSONEncodeError as exc:
            raise types.InvalidEntryError(f"entry is not JSON-serialisable: {exc}") from None
        if "timestamp" not in entry:
            # Splice the timestamp in front of the serialised object: '{"timestamp":"...",'.
            body = self._stamper.json_prefix() + body[1:]
        return self._within_limit("detection entry", body)

    def _within_limit(self, what: str, line: bytes) -> bytes:
        """Return ``line``, or raise ``InvalidEntryError`` when it exceeds ``max_entry_bytes``."""
        if len(line) > self._max_entry_bytes:
            raise types.InvalidEntryError(
                f"{what} is {len(line)} bytes, more than max_entry_bytes={self._max_entry_bytes}"
            )
        return line

    def record_frame(self, frame: Any, frame_id: int, level: int) -> None:
        """Queue a frame for JPEG recording as ``frames/{frame_id}.jpg`` (non-blocking).

        ``frame`` is a uint8 array, HxW (grey) or HxWx3 / HxWx4 in ``config.color_order``
        (RGB by default; BGR for OpenCV arrays). ``level`` 1 records at ``l1_fps``, 2 at
        ``l2_fps``; below the reduce threshold level 2 is recorded at the L1 rate, below the
        detection-only threshold (or after a disk-full error) no frames are recorded. Skipped
        and dropped frames are counted in ``stats()``, not raised.

        Raises:
            InvalidEntryError: Bad frame (None, dtype, shape), frame id (not in [0, 2**64)) or
                level (not 1 or 2).
            WriteError: Closed / not initialised.
        """
        self._require_open()
        assert self._frames is not None
        try:
            self._frames.submit(frame, frame_id, level)
        except types.InvalidEntryError as exc:
            raise self._reject("frame", exc) from None

    def log_health(self, health: types.HealthLogEntry | Mapping[str, Any] | Any) -> None:
        """Append one line to ``health.jsonl``.

        Accepts a dict / ``HealthLogEntry`` or any dataclass instance (e.g. the runtime's
        ``DeviceStatus``; converted with ``dataclasses.asdict``; enums become their values,
        datetimes ISO strings, paths strings). ``timestamp`` is added if missing.

        Raises:
            InvalidEntryError: Not a dict/dataclass, not serialisable, or too long.
            WriteError: Closed / not initialised, or the writer is far behind.
        """
        self._require_open()
        try:
            if dataclasses.is_dataclass(health) and not isinstance(health, type):
                data: dict[str, Any] = dataclasses.asdict(health)
            elif isinstance(health, Mapping):
                data = dict(health)
            else:
                raise types.InvalidEntryError(
                    f"health entry must be a dict or a dataclass, got {type(health).__name__}"
                )
            if "timestamp" not in data:
                data = {"timestamp": self._stamper.now_iso(), **data}
            line = self._within_limit("health entry", serialize.dumps_line(data))
        except types.InvalidEntryError as exc:
            raise self._reject("health entry", exc) from None
        assert self._health is not None
        self._health.submit(line)
        interval = self._config.stats_log_interval_s
        if interval > 0 and self._time.monotonic() - self._last_stats_log >= interval:
            self.log_stats()

    def log_gimbal_command(self, cmd_str: str) -> None:
        r"""Append ``"<ISO UTC timestamp> <command>"`` to ``gimbal.log``.

        Backslashes, newlines, carriage returns, tabs and NULs in the command are escaped
        (``\\\\``, ``\\n``, ``\\r``, ``\\t``, ``\\0``) so every command stays on one line.

        Raises:
            InvalidEntryError: Not a str, or longer than ``max_entry_bytes``.
            WriteError: Closed / not initialised, or the writer is far behind.
        """
        self._require_open()
        try:
            if not isinstance(cmd_str, str):
                raise types.InvalidEntryError(
                    f"gimbal command must be a str, got {type(cmd_str).__name__}"
                )
            text = cmd_str.translate(_ESCAPES)
            line = self._within_limit(
                "gimbal command",
                f"{self._stamper.now_iso()} {text}\n".encode(errors="backslashreplace"),
            )
        except types.InvalidEntryError as exc:
            raise self._reject("gimbal command", exc) from None
        assert self._gimbal is not None
        self._gimbal.submit(line)

    # --- operator --------------------------------------------------------------------------

    def report_to_operator(self, detections: Iterable[types.Detection | Mapping[str, Any]]) -> None:
        """Format detections in the YOLO output schema and hand them to every operator sink.

        Never blocks: each sink has its own thread and bounded queue (oldest dropped). An empty
        list is delivered too (the operator sees "nothing detected").

        Raises:
            InvalidEntryError: An item is not a ``Detection`` / detection dict or is invalid.
            WriteError: Closed.
        """
        if self._closed:
            raise types.WriteError("OutputManager is closed")
        try:
            report = self._operator.make_report(detections)
        except types.InvalidEntryError as exc:
            raise self._reject("operator report", exc) from None
        self._operator.publish(report)

    def add_operator_sink(self, sink: operator.OperatorSink, queue_size: int | None = None) -> None:
        """Start delivering operator reports to ``sink``.

        Args:
            sink: The sink (``CallbackSink``, ``QueueSink``, ``MqttSink``, ``NdjsonHub`` ...).
            queue_size: Reports that may wait for this sink (default
                ``config.operator_queue_size``); the oldest is dropped beyond it.
        """
        if self._closed:
            raise types.WriteError("OutputManager is closed")
        self._operator.add_sink(sink, queue_size)

    def remove_operator_sink(self, sink: operator.OperatorSink) -> None:
        """Stop delivering to ``sink`` and close it."""
        self._operator.remove_sink(sink)

    # --- status ----------------------------------------------------------------------------

    def get_storage_status(self) -> types.StorageStatus:
        """Return free space, frames recorded, detections logged and the reduce flag.

        Raises:
            WriteError: Before ``init``.
        """
        if self._monitor is None or self._frames is None or self._detections is None:
            raise types.WriteError("OutputManager.init(output_dir) has not been called")
        level = self._monitor.level
        return types.StorageStatus(
            nvme_free_pct=self._monitor.reading().free_pct,
            frames_recorded=self._frames.recorded,
            detections_logged=self._detections.lines_written,
            should_reduce_recording=level >= storage.StorageLevel.REDUCE,
        )

    @property
    def error_count(self) -> int:
        """Write failures on any background thread (files, frames, encoders, sinks)."""
        s = self.stats()
        return int(s["error_count"])

    def stats(self) -> dict[str, Any]:
        """All counters, for dashboards and tests."""
        out: dict[str, Any] = {"rejected": self.rejected}
        errors = 0
        for key, w in (
            ("detections", self._detections),
            ("health", self._health),
            ("gimbal", self._gimbal),
        ):
            if w is None:
                continue
            out[key] = {
                "submitted": w.lines_submitted,
                "written": w.lines_written,
                "pending": w.pending,
                "lost": w.lines_lost + w.lines_refused,
                "refused": w.lines_refused,
                "flushes": w.flushes,
                "write_errors": w.write_errors,
                "thread_errors": w.thread_errors,
            }
            errors += w.write_errors + w.thread_errors
        f = self._frames
        if f is not None:
            out["frames"] = {
                "submitted": f.submitted,
                "recorded": f.recorded,
                "rate_limited": f.rate_limited,
                "downgraded_to_l1": f.downgraded,
                "dropped_queue_full": f.dropped_queue_full,
                "dropped_storage": f.dropped_storage,
                "write_errors": f.write_errors,
                "encode_errors": f.encode_errors,
                "thread_errors": f.thread_errors,
                "retention_deleted": f.retention_deleted,
                "buffer_reuse_detected": f.buffer_reuse_detected,
                "disk_full": f.disk_full,
            }
            errors += f.write_errors + f.encode_errors + f.thread_errors
        out["operator"] = self._operator.stats()
        errors += self._operator.errors
        out["detections_logged"] = self._detections.lines_written if self._detections else 0
        out["detections_lost"] = (
            self._detections.lines_lost + self._detections.lines_refused if self._detections else 0
        )
        out["frames_recorded"] = f.recorded if f is not None else 0
        out["error_count"] = errors
        return out

    def log_stats(self) -> str:
        """Log (INFO) and return a one-line summary of the session's counters."""
        self._last_stats_log = self._time.monotonic()
        s = self.stats()
        f = s.get("frames", {})
        free = self._monitor.reading().free_pct if self._monitor is not None else float("nan")
        line = (
            f"Output stats: {s['detections_logged']} detections ({s['detections_lost']} lost), "
            f"{s['frames_recorded']} frames "
            f"({f.get('rate_limited', 0)} rate-limited, {f.get('dropped_queue_full', 0)} dropped "
            f"queue full, {f.get('dropped_storage', 0)} dropped storage), "
            f"{s['error_count']} errors, {s['rejected']} rejected, {free:.1f}% free"
        )
        logger.info("%s", line)
        return line

    def poll(self) -> None:
        """Make the log writers re-check their time-based flush rule now.

        The writers check on their own at least every 0.25 s; with a ``ManualTimeSource`` call
        this after advancing the clock.
        """
        for w in (self._detections, self._health, self._gimbal):
            if w is not None:
                w.poll()

    def flush(self, timeout: float = 10.0) -> bool:
        """Write everything accepted so far (frames included) and wait for it; False on timeout.

        Detection lines are written immediately, regardless of the flush policy.
        """
        ok = True
        for w in (self._detections, self._health, self._gimbal):
            if w is not None:
                target = w.lines_submitted - w.lines_lost
                w.flush_now()
                ok = w.wait_written(target, timeout) and ok
        if self._frames is not None:
            ok = self._frames.wait_idle(timeout) and ok
        return self._operator.wait_idle(timeout) and ok
