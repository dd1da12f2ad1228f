"""Recording manager that owns capture devices and recording sessions.

The state machine calls :meth:`RecordingManager.start_recording` and
:meth:`RecordingManager.stop_recording`; this module handles the threads, the devices and the
merge. At most one session is active; finished sessions are merged into one MKV each on a
background thread (so a button press is never stuck behind a merge) and joined on shutdown.

While recording, a health thread checks every ``health_check_interval_s``:

* every device is still connected (a pulled cable) -> ``on_device_unhealthy``, recording stopped
  and merged into a valid file;
* every stream delivered within ``stall_timeout_s`` (a stalled camera) -> ``on_device_unhealthy``;
  the other streams keep recording (streams are independent in the writer);
* free space of the spool filesystem is above the floor -> otherwise the recording is stopped
  cleanly before the disk is full and ``on_recording_error`` fires.

A writer or capture-thread crash fires ``on_recording_error`` and stops the recording.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import os
import pathlib
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from omgrab import clock as clock_mod
from omgrab import storage
from omgrab.cameras import base as camera_base
from omgrab.devices import base as device_base
from omgrab.recording import config as recording_config
from omgrab.recording import ids as recording_ids
from omgrab.recording import merge as recording_merge
from omgrab.recording import worker_start
from omgrab.runtime import recording_session
from omgrab.sensors import base as sensor_base

logger = logging.getLogger(__name__)

OnDeviceUnhealthyCallback = Callable[[], None]
OnRecordingCompleteCallback = Callable[[pathlib.Path], None]
OnRecordingErrorCallback = Callable[[], None]


@dataclasses.dataclass
class RecordingConfig:
    """Configuration for the recording manager.

    Attributes:
        device_ready_timeout_s: Max time to wait for the capture device to become ready before
            starting a recording.
        health_check_interval_s: Interval between device health checks during recording.
        session_join_timeout_s: Timeout for joining finished recording session threads during
            shutdown.
        chunk_length_s: Duration of each recording chunk in seconds.
        max_queue_size: Maximum size per encoder queue.
        stall_timeout_s: A stream that delivers nothing for this long is reported unhealthy.
        min_free_percent: Refuse to start a recording when the spool filesystem has less free
            space than this (percent of its size).
        stop_free_percent: Stop a running recording cleanly (merged, valid file) when free space
            falls below this.
        merge_headroom_bytes: The merge copies the chunks into one file on the same disk, so a
            running recording is also stopped when the available space falls below its spool
            size (plus 10 %) plus this margin: the merge always has room to finish.
    """

    device_ready_timeout_s: float = 7.5
    health_check_interval_s: float = 1.0
    session_join_timeout_s: float = 10.0
    chunk_length_s: float = 60.0
    max_queue_size: int = 400
    stall_timeout_s: float = 3.0
    min_free_percent: float = 5.0
    stop_free_percent: float = 2.0
    merge_headroom_bytes: int = 32 * 1024 * 1024

    def __post_init__(self) -> None:
        for name in (
            "device_ready_timeout_s",
            "health_check_interval_s",
            "session_join_timeout_s",
            "chunk_length_s",
            "stall_timeout_s",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"RecordingConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if self.merge_headroom_bytes < 0:
            raise ValueError(
                "RecordingConfig.merge_headroom_bytes must be >= 0, got "
                f"{self.merge_headroom_bytes}"
            )
        if self.max_queue_size <= 0:
            raise ValueError(
                f"RecordingConfig.max_queue_size must be > 0, got {self.max_queue_size}"
            )
        if not 0 <= self.stop_free_percent <= self.min_free_percent <= 100:
            raise ValueError(
                "RecordingConfig needs 0 <= stop_free_percent <= min_free_percent <= 100, got "
                f"{self.stop_free_percent} and {self.min_free_percent}"
            )


class RecordingController(Protocol):
    """What the state machine needs from a recorder."""

    @property
    def is_recording(self) -> bool:
        """True while a session is capturing."""
        ...

    def start_recording(self) -> bool:
        """Start a recording; return True on success."""
        ...

    def stop_recording(self) -> None:
        """Stop the active recording (no-op when idle)."""
        ...

    def shutdown(self) -> None:
        """Stop everything and join threads."""
        ...


def free_percent(path: pathlib.Path) -> float:
    """Return the user-available free space of ``path``'s filesystem in percent of its size."""
    return storage.read_statvfs(path).free_pct


def available_bytes(path: pathlib.Path) -> int:
    """Return the bytes an unprivileged user may still write on ``path``'s filesystem."""
    return storage.read_statvfs(path).available_bytes


def directory_bytes(path: pathlib.Path) -> int:
    """Return the total size of the files below ``path`` (0 if it does not exist)."""
    total = 0
    stack = [path]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except FileNotFoundError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(pathlib.Path(entry.path))
                else:
                    total += entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:
                continue  # a chunk renamed or removed while we looked
    return total


@dataclasses.dataclass
class _FinishedSession:
    session: recording_session.RecordingSession
    merge_thread: threading.Thread
    output_path: pathlib.Path
    result: pathlib.Path | None = None
    error: str | None = None


def _prewarm() -> None:
    try:
        worker_start.prewarm()
    except Exception:
        logger.exception("prewarming the encoder processes failed; the first start is slower")


class RecordingManager:
    """Manages recording sessions and capture device lifecycles.

    Owns the capture devices (opened and closed per recording), the active recording session
    (at most one at a time) and the finished sessions pending merge and cleanup.

    Args:
        devices: Capture devices to use for recording. All must be connected for recording to
            start, and all are monitored for health during recording.
        target_cameras: Cameras to capture from.
        stream_names: Stream names, one per camera.
        stream_configs: Configuration for each video stream.
        spool_dir: Directory to write temporary video chunks.
        output_dir: Directory to write merged final recordings.
        config: Recording configuration.
        on_device_unhealthy: Invoked when any device becomes unhealthy during recording.
        on_recording_complete: Invoked with the merged MKV's path when a recording is merged.
        sensors: Optional sensors (e.g. IMU).
        sensor_stream_names: Sensor stream names, one per sensor.
        sensor_stream_configs: Configuration for each sensor stream.
        clock: Device clock shared by every stream; anchored to wall time at each start.
        free_percent_fn: Returns free space in percent for a path (injectable for tests).
        available_bytes_fn: Returns the available bytes for a path (injectable for tests).
        storage_monitor: The storage monitor shared with the OutputManager; when given, free
            space is read through it (and ``free_percent_fn`` is not used).
        prewarm: Start the encoder process server in the background now, so the first
            recording starts as fast as later ones (~0.05 s instead of ~0.5 s).
    """

    def __init__(
        self,
        devices: list[device_base.CaptureDevice],
        target_cameras: list[camera_base.Camera],
        stream_names: list[str],
        stream_configs: dict[str, recording_config.VideoStreamConfig],
        spool_dir: pathlib.Path,
        output_dir: pathlib.Path,
        config: RecordingConfig | None = None,
        on_device_unhealthy: OnDeviceUnhealthyCallback | None = None,
        on_recording_complete: OnRecordingCompleteCallback | None = None,
        sensors: list[sensor_base.Sensor] | None = None,
        sensor_stream_names: list[str] | None = None,
        sensor_stream_configs: dict[str, recording_config.DataStreamConfig] | None = None,
        *,
        clock: clock_mod.DeviceClock | None = None,
        free_percent_fn: Callable[[pathlib.Path], float] = free_percent,
        available_bytes_fn: Callable[[pathlib.Path], int] = available_bytes,
        storage_monitor: storage.StorageMonitor | None = None,
        prewarm: bool = True,
    ) -> None:
        if len(target_cameras) != len(stream_names):
            raise ValueError(
                f"{len(target_cameras)} cameras but {len(stream_names)} stream names: "
                "one name per camera"
            )
        self._devices = list(devices)
        self._cameras = list(target_cameras)
        self._stream_names = list(stream_names)
        self._stream_configs = dict(stream_configs)
        self._sensors = list(sensors or [])
        self._sensor_stream_names = list(sensor_stream_names or [])
        self._sensor_stream_configs = dict(sensor_stream_configs or {})
        self._spool_dir = pathlib.Path(spool_dir)
        self._output_dir = pathlib.Path(output_dir)
        self._config = config if config is not None else RecordingConfig()
        self._on_device_unhealthy = on_device_unhealthy
        self._on_recording_complete = on_recording_complete
        self._on_recording_error: OnRecordingErrorCallback | None = None
        self._clock = clock if clock is not None else clock_mod.default_clock()
        self._free_percent = free_percent_fn
        self._available_bytes = available_bytes_fn
        if storage_monitor is not None:
            monitor = storage_monitor
            self._free_percent = lambda _path: monitor.refresh().free_pct
            self._available_bytes = lambda _path: monitor.reading().available_bytes

        self._lock = threading.RLock()
        self._session: recording_session.RecordingSession | None = None
        self._device_stack: contextlib.ExitStack | None = None
        self._started_at: datetime.datetime | None = None
        self._health_stop = threading.Event()
        self._health_thread: threading.Thread | None = None
        self._unhealthy_reported = False
        self._finished: list[_FinishedSession] = []
        self._last_error: str | None = None
        self._last_recording_path: pathlib.Path | None = None
        self._callback_errors = 0
        self._shut_down = False
        if prewarm:
            threading.Thread(target=_prewarm, name="writer-prewarm", daemon=True).start()

    # -- properties --------------------------------------------------------------------------

    @property
    def config(self) -> RecordingConfig:
        """The recording configuration."""
        return self._config

    @property
    def devices(self) -> list[device_base.CaptureDevice]:
        """The capture devices this manager records from."""
        return list(self._devices)

    @property
    def is_recording(self) -> bool:
        """True if there is an active session currently capturing."""
        with self._lock:
            return self._session is not None and not self._session.stopped

    @property
    def active_recording_id(self) -> str | None:
        """Get the ID of the active recording, or None if not recording."""
        with self._lock:
            return self._session.recording_id if self._session is not None else None

    @property
    def recording_started_at(self) -> datetime.datetime | None:
        """Get the start time of the active recording, or None if not recording."""
        with self._lock:
            return self._started_at if self._session is not None else None

    @property
    def active_session(self) -> recording_session.RecordingSession | None:
        """The active session, or None."""
        with self._lock:
            return self._session

    @property
    def last_error(self) -> str | None:
        """The most recent problem (unhealthy device, writer error, refused start), or None."""
        with self._lock:
            return self._last_error

    @property
    def last_recording_path(self) -> pathlib.Path | None:
        """Path of the most recently merged recording, or None."""
        with self._lock:
            return self._last_recording_path

    @property
    def callback_errors(self) -> int:
        """How many user callbacks raised (each is logged)."""
        return self._callback_errors

    # -- callbacks ---------------------------------------------------------------------------

    def set_on_device_unhealthy(self, callback: OnDeviceUnhealthyCallback | None) -> None:
        """Set the callback for device unhealthy events.

        Allows setting the callback after construction, needed when there are circular
        dependencies (the StateMachine needs the RecordingManager and vice versa).

        Args:
            callback: Invoked when a device becomes unhealthy during recording, or None to clear.
        """
        self._on_device_unhealthy = callback

    def set_on_recording_error(self, callback: OnRecordingErrorCallback | None) -> None:
        """Set the callback for recording error events (e.g. encoder crash).

        Args:
            callback: Invoked when a recording error occurs, or None to clear.
        """
        self._on_recording_error = callback

    def set_on_recording_complete(self, callback: OnRecordingCompleteCallback | None) -> None:
        """Set the callback invoked with the merged file's path after each merge."""
        self._on_recording_complete = callback

    # -- lifecycle ---------------------------------------------------------------------------

    def start_recording(self) -> bool:
        """Start a new recording session.

        Opens the capture devices, waits until they are ready, creates a new session with a
        unique timestamp-based recording id, and starts its threads.

        Returns:
            True if recording started successfully, False otherwise (see ``last_error``).
        """
        with self._lock:
            if self._shut_down:
                return self._refuse("recording manager is shut down")
            if self._session is not None:
                return self._refuse("a recording is already active")
            self._spool_dir.mkdir(parents=True, exist_ok=True)
            self._output_dir.mkdir(parents=True, exist_ok=True)
            free = self._free_percent(self._spool_dir)
            if free < self._config.min_free_percent:
                return self._refuse(
                    f"only {free:.1f}% free on {self._spool_dir}, below the "
                    f"{self._config.min_free_percent}% needed to start a recording"
                )
            available = self._available_bytes(self._spool_dir)
            if available < self._config.merge_headroom_bytes:
                return self._refuse(
                    f"only {available} bytes available on {self._spool_dir}, below the "
                    f"{self._config.merge_headroom_bytes} bytes kept for merging"
                )
            stack = contextlib.ExitStack()
            try:
                for device in self._devices:
                    stack.enter_context(device)
                not_connected = [device.label for device in self._devices if not device.connected]
                if not_connected:
                    stack.close()
                    return self._refuse(f"device(s) not connected: {not_connected}")
                deadline = time.monotonic() + self._config.device_ready_timeout_s
                for device in self._devices:
                    remaining = max(0.0, deadline - time.monotonic())
                    if not device.wait_until_ready(remaining):
                        stack.close()
                        return self._refuse(
                            f"device {device.label} not ready within "
                            f"{self._config.device_ready_timeout_s} s"
                        )
                started_at = self._clock.anchor()
                recording_id = self._new_recording_id(started_at)
                session = recording_session.RecordingSession(
                    recording_id,
                    self._cameras,
                    self._stream_names,
                    self._stream_configs,
                    self._spool_dir,
                    sensors=self._sensors,
                    sensor_stream_names=self._sensor_stream_names,
                    sensor_stream_configs=self._sensor_stream_configs,
                    chunk_length_s=self._config.chunk_length_s,
                    max_queue_size=self._config.max_queue_size,
                    on_error=self._handle_session_error,
                    writer_options={
                        "origin": started_at,
                        "clock": self._clock,
                        "devices": [
                            {"label": d.label, "device_type": d.device_type.value}
                            for d in self._devices
                        ],
                    },
                )
                session.start()
            except Exception as exc:
                stack.close()
                logger.exception("could not start recording")
                return self._refuse(f"could not start recording: {type(exc).__name__}: {exc}")
            self._session = session
            self._device_stack = stack
            self._started_at = started_at
            self._unhealthy_reported = False
            self._last_error = None
            self._health_stop = threading.Event()
            self._health_thread = threading.Thread(
                target=self._health_loop,
                args=(session, self._health_stop),
                name=f"health-{recording_id}",
                daemon=True,
            )
            self._health_thread.start()
            logger.info("recording %s started at %s", recording_id, started_at.isoformat())
            return True

    def stop_recording(self) -> None:
        """Stop the current recording session.

        Stops capture threads immediately and drains the writer into the chunk files, closes the
        devices, then merges the chunks into a final MKV on a background thread. The session is
        moved to the finished sessions for later cleanup. No-op when not recording.
        """
        with self._lock:
            session = self._session
            if session is None:
                return
            self._session = None
            stack = self._device_stack
            self._device_stack = None
            self._health_stop.set()
            health_thread = self._health_thread
            self._health_thread = None
        if health_thread is not None and health_thread is not threading.current_thread():
            health_thread.join()
        try:
            session.stop()
        finally:
            if stack is not None:
                stack.close()
        output_path = self._output_dir / f"{session.recording_id}.mkv"
        finished = _FinishedSession(session, threading.Thread(), output_path)
        finished.merge_thread = threading.Thread(
            target=self._merge, args=(finished,), name=f"merge-{session.recording_id}", daemon=True
        )
        with self._lock:
            self._finished.append(finished)
        finished.merge_thread.start()

    def wait_for_merges(self, timeout: float | None = None) -> bool:
        """Wait until every finished session is merged; True if all finished in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            pending = list(self._finished)
        for finished in pending:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            finished.merge_thread.join(remaining)
            if finished.merge_thread.is_alive():
                return False
        self._cleanup_finished()
        return True

    def shutdown(self) -> None:
        """Shutdown the manager: stop the active session, merge it, and join all threads."""
        with self._lock:
            self._shut_down = True
        self.stop_recording()
        if not self.wait_for_merges(self._config.session_join_timeout_s):
            logger.error(
                "merges still running after %.1f s at shutdown; chunks stay in %s and are "
                "recovered at next start",
                self._config.session_join_timeout_s,
                self._spool_dir,
            )

    # -- internals ---------------------------------------------------------------------------

    def _refuse(self, reason: str) -> bool:
        logger.warning("recording not started: %s", reason)
        self._last_error = reason
        return False

    def _new_recording_id(self, started_at: datetime.datetime) -> str:
        # The id's random suffix makes collisions unlikely; checking the disk makes them
        # impossible, even for two recordings started in the same millisecond.
        while True:
            candidate = recording_ids.new_recording_id(started_at)
            taken = (self._spool_dir / candidate).exists() or (
                self._output_dir / f"{candidate}.mkv"
            ).exists()
            if not taken:
                return candidate

    def _merge(self, finished: _FinishedSession) -> None:
        recording_id = finished.session.recording_id
        try:
            path = recording_merge.merge_recording_chunks(
                finished.session.recording_dir, finished.output_path, cleanup=True
            )
        except Exception as exc:
            finished.error = f"merge of {recording_id} failed: {type(exc).__name__}: {exc}"
            logger.exception(
                "merge of %s failed; chunks kept in %s for recovery",
                recording_id,
                finished.session.recording_dir,
            )
            with self._lock:
                self._last_error = finished.error
            self._fire(self._on_recording_error)
            return
        finished.result = pathlib.Path(path)
        with self._lock:
            self._last_recording_path = finished.result
        logger.info("recording %s merged into %s", recording_id, finished.result)
        if self._on_recording_complete is not None:
            self._fire(self._on_recording_complete, finished.result)

    def _cleanup_finished(self) -> None:
        with self._lock:
            self._finished = [f for f in self._finished if f.merge_thread.is_alive()]

    def _handle_session_error(self) -> None:
        session = self.active_session
        detail = "; ".join(session.errors) if session is not None else "recording error"
        with self._lock:
            self._last_error = detail
        logger.error("recording error: %s", detail)
        # Stop on another thread: this callback runs on a capture or writer thread that the stop
        # joins. The callback fires once the recording is stopped, so listeners see the outcome.
        threading.Thread(
            target=self._stop_then_fire,
            args=(self._on_recording_error,),
            name="stop-after-error",
            daemon=True,
        ).start()

    def _stop_then_fire(self, callback: Callable[[], None] | None) -> None:
        self.stop_recording()
        self._fire(callback)

    def _health_loop(
        self, session: recording_session.RecordingSession, stop: threading.Event
    ) -> None:
        while not stop.wait(self._config.health_check_interval_s):
            try:
                self._check_health(session)
            except Exception:
                logger.exception("health check failed")

    def _check_health(self, session: recording_session.RecordingSession) -> None:
        problems = [f"device {d.label} disconnected" for d in self._devices if not d.connected]
        disconnected = bool(problems)
        stalled = session.stalled_streams(self._config.stall_timeout_s)
        problems += [
            f"stream {name} delivered nothing for {self._config.stall_timeout_s} s"
            for name in stalled
        ]
        if problems:
            message = "; ".join(problems)
            with self._lock:
                first = not self._unhealthy_reported
                self._unhealthy_reported = True
                self._last_error = message
            if disconnected:
                logger.error("stopping recording %s: %s", session.recording_id, message)
                self._stop_then_fire(self._on_device_unhealthy if first else None)
                return
            if first:
                logger.error("recording %s unhealthy: %s", session.recording_id, message)
                self._fire(self._on_device_unhealthy)
        else:
            with self._lock:
                self._unhealthy_reported = False
        free = self._free_percent(self._spool_dir)
        reason = None
        if free < self._config.stop_free_percent:
            reason = f"only {free:.1f}% free on {self._spool_dir}"
        else:
            needed = int(directory_bytes(session.recording_dir) * 1.1)
            needed += self._config.merge_headroom_bytes
            available = self._available_bytes(self._spool_dir)
            if available < needed:
                reason = (
                    f"only {available} bytes available on {self._spool_dir}, and merging "
                    f"needs about {needed}"
                )
        if reason is not None:
            message = (
                f"{reason}; stopping recording {session.recording_id} while it can still be "
                "merged into a valid file"
            )
            logger.error(message)
            with self._lock:
                self._last_error = message
            self._stop_then_fire(self._on_recording_error)

    def _fire(self, callback: Callable[..., None] | None, *args: Any) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:
            self._callback_errors += 1
            logger.exception("callback %r failed", callback)
