"""Recording manager that owns capture devices and recording sessions.

The state machine calls :meth:`RecordingManager.start_recording` and
:meth:`RecordingManager.stop_recording`; this module handles the threads, the devices and the
merge.

Lifecycle (:class:`~omgrab.recorder_events.RecorderPhase`)::

    IDLE --start--> STARTING --devices ready, session started--> RECORDING
      ^                 |                                            |
      |        refused / failed                         stop (press, error, pulled cable)
      +-----------------+<---- capture drained, devices closed ---- STOPPING

Exactly one recording owns the devices from STARTING until its STOPPING ends: a start is only
accepted in IDLE; a start during STOPPING waits up to ``start_waits_for_stop_s`` for the stop to
finish, then is refused with the reason, so it never shares a device with the stopping session.
A stop during STARTING waits for the start to resolve, then stops it. A stop while another
thread is already stopping waits (up to ``stop_timeout_s``) for that stop to finish, so
``stop_recording`` returning means the recording's capture is drained and its devices closed.
``stop_recording(recording_id)`` stops only that recording: a late error of recording A never
stops recording B.

Threads:

* caller threads (button loop, dashboard, CLI) run ``start_recording`` / ``stop_recording``;
* one ``health-<id>`` thread per recording checks every ``health_check_interval_s`` that every
  device is connected (a disconnected device is reopened with backoff for up to
  ``reconnect_timeout_s`` within the same recording, ``runtime.device_reconnect``; only a device
  that stays away stops the recording, ``stop_reason`` ``device_disconnected``, and fires
  ``on_device_unhealthy``),
  that every stream delivered within ``stall_timeout_s`` (reported, the other streams keep
  recording) and that free space stays above ``stop_free_percent`` and the room the merge needs
  (otherwise the recording is stopped cleanly and ``on_recording_error`` fires). It is joined
  by the stop with ``health_join_timeout_s``: a slow check never holds up a stop press;
* a ``stop-after-error-<id>`` thread stops a recording whose writer or capture thread failed
  (the failure is reported on a thread the stop joins, so it cannot stop from there);
* one ``live-merge-<id>`` thread per recording (``live_merge=True``, the default) appends its
  chunks to the growing ``<output>/<id>.mkv.partial`` while it records, the chunk being written
  included, and deletes each chunk once it is verified in the durable file
  (:mod:`omgrab.recording.live_merge`);
* one ``merge`` worker (a single-thread executor) finishes each stopped recording, oldest
  first: it ends the recording's incremental merge (the last chunks, cues, tags, manifest) and
  waits for it; if that fails (or ``live_merge`` is off) it runs ``merge_recording_chunks``,
  which continues the growing file from its last durable state or merges the whole spool.
  ``stop_recording()`` waits for that result up to ``stop_waits_for_merge_s``;
* one ``recorder-events`` thread (:class:`~omgrab.recorder_events.EventDispatcher`)
  calls the user's callbacks, in order, holding no lock.

Locks: ``_lock`` (with the condition ``_changed``) guards the phase, the session, the device
stack, the pending merges and the counters; it is held only to read or change them, never
during device I/O, a join, a merge or a callback. Readers (status, dashboard) read
:meth:`RecordingManager.snapshot`, an immutable value replaced under the lock, without locking.

Callbacks: ``on_device_unhealthy`` and ``on_recording_error`` receive a
:class:`~omgrab.recorder_events.RecorderEvent` naming the recording (callbacks taking no
argument are still accepted); ``on_recording_complete`` receives the merged path. All run on the
events thread, after the stop they report has finished.

Bounds: the pending-merge table holds only recordings not merged yet (an entry leaves it when
its merge ends, successful or not); ``recent_errors`` keeps the last ``RECENT_ERRORS``
problems; at most ``256`` callback events wait. Nothing else is kept per recording.
``shutdown()`` returns within about ``device_ready_timeout_s`` (a start in flight) +
``stop_timeout_s`` (the stop, whichever thread started it) + ``session_join_timeout_s``
(merges) + 5 s (callbacks); a merge still running then is logged and its chunks stay in the
spool for recovery at the next start.

Error policy: an exception in a health check, a merge or a callback is logged, counted in
:mod:`~omgrab.loop_health` (loops ``recorder-health``, ``recorder-merge``,
``recorder-events``) and in the snapshot, and the loop goes on. A failing ``session.stop()`` or
device ``close()`` is logged and the recording is still scheduled for merging.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime
import functools
import logging
import os
import pathlib
import threading
import time
from collections.abc import Callable
from concurrent import futures
from typing import Protocol

from omgrab import clock as clock_mod
from omgrab import loop_health, recorder_events, storage
from omgrab.cameras import base as camera_base
from omgrab.devices import base as device_base
from omgrab.recording import config as recording_config
from omgrab.recording import ids as recording_ids
from omgrab.recording import live_merge, stop_reason, worker_start
from omgrab.recording import merge as recording_merge
from omgrab.runtime import device_reconnect, recording_session
from omgrab.sensors import base as sensor_base

logger = logging.getLogger(__name__)

RecorderPhase = recorder_events.RecorderPhase
RecorderEvent = recorder_events.RecorderEvent
RecorderSnapshot = recorder_events.RecorderSnapshot

# Called with a RecorderEvent, or with no argument (the published API's form).
OnDeviceUnhealthyCallback = Callable[..., None]
OnRecordingCompleteCallback = Callable[[pathlib.Path], None]
OnRecordingErrorCallback = Callable[..., None]

RECENT_ERRORS = 20
"""How many ``(recording_id, message)`` problems the snapshot keeps."""

HEALTH_LOOP = "recorder-health"
MERGE_LOOP = "recorder-merge"


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
        merge_headroom_bytes: The merge copies the chunks still in the spool into the merged
            file on the same disk, so a running recording is also stopped when the available
            space falls below its spool size (plus 10 %) plus this margin: the merge always
            has room to finish. With ``live_merge`` the spool holds only the chunks not yet
            appended (about one per stream), so this is rarely what stops a recording.
        stop_timeout_s: How long a caller waits for a stop another thread is running (and
            ``shutdown()`` for a stop in flight) before giving up with a logged error.
        start_waits_for_stop_s: How long a start waits for the previous recording to finish
            stopping before it is refused.
        health_join_timeout_s: How long a stop waits for the health thread's current check.
        reconnect_timeout_s: How long a disconnected device is reopened (with backoff) within
            the same recording before the recording stops with ``device_disconnected``
            (keyword-only; 0: no reconnect, a disconnect stops the recording at once).
        live_merge: Build the merged MKV while recording (keyword-only, default True): each
            chunk is appended to ``<output>/<id>.mkv.partial`` as it closes and then deleted,
            so a stop only appends the last chunks (:mod:`omgrab.recording.live_merge`).
            False: the whole recording is merged after the stop.
        stop_waits_for_merge_s: How long ``stop_recording()`` waits, after the stop, for the
            recording's merged file (keyword-only; the published SDK merged inside
            ``stop_recording``). With ``live_merge`` that is the last chunks' append, about a
            second; past the bound the merge goes on in the background. 0: never wait.
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
    stop_timeout_s: float = 30.0
    start_waits_for_stop_s: float = 5.0
    health_join_timeout_s: float = 2.0
    reconnect_timeout_s: float = dataclasses.field(default=5.0, kw_only=True)
    live_merge: bool = dataclasses.field(default=True, kw_only=True)
    stop_waits_for_merge_s: float = dataclasses.field(default=10.0, kw_only=True)

    def __post_init__(self) -> None:
        if not self.stop_waits_for_merge_s >= 0:
            raise ValueError(
                "RecordingConfig.stop_waits_for_merge_s must be >= 0, got "
                f"{self.stop_waits_for_merge_s!r}"
            )
        if not self.reconnect_timeout_s >= 0:
            raise ValueError(
                "RecordingConfig.reconnect_timeout_s must be >= 0, got "
                f"{self.reconnect_timeout_s!r}"
            )
        for name in (
            "device_ready_timeout_s",
            "health_check_interval_s",
            "session_join_timeout_s",
            "chunk_length_s",
            "stall_timeout_s",
            "stop_timeout_s",
            "start_waits_for_stop_s",
            "health_join_timeout_s",
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
        """Stop the active recording (no-op when idle); return once it is stopped."""
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
class _PendingMerge:
    recording_id: str
    recording_dir: pathlib.Path
    output_path: pathlib.Path
    future: futures.Future[None] | None = None
    live: live_merge.LiveMerge | None = None


def _prewarm() -> None:
    try:
        worker_start.prewarm()
    except Exception:
        logger.exception("prewarming the encoder processes failed; the first start is slower")


def _deliver(callback: Callable[..., None], event: recorder_events.RecorderEvent) -> None:
    if recorder_events.takes_argument(callback):
        callback(event)
    else:
        callback()


class RecordingManager:
    """Manages recording sessions and capture device lifecycles.

    Owns the capture devices (opened and closed per recording), the active recording session
    (at most one at a time) and the stopped recordings pending merge. See the module docstring
    for the lifecycle, threads, locks and bounds.

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
        health: Where background-loop errors are counted (the process-wide counters by
            default).
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
        health: loop_health.LoopHealth | None = None,
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
        self._health = health if health is not None else loop_health.default()

        # Guarded by _lock (see the module docstring); _changed is notified at every phase change.
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._phase = RecorderPhase.IDLE
        self._owner_id: str | None = None  # the recording owning the devices (not IDLE)
        self._session: recording_session.RecordingSession | None = None
        self._device_stack: contextlib.ExitStack | None = None
        self._started_at: datetime.datetime | None = None
        self._health_stop = threading.Event()
        self._health_thread: threading.Thread | None = None
        self._unhealthy_reported = False
        self._finished: dict[str, _PendingMerge] = {}
        self._live: dict[str, live_merge.LiveMerge] = {}  # recording -> its incremental merge
        self._error_threads: set[threading.Thread] = set()
        self._last_error: str | None = None
        self._last_stop_reason: stop_reason.StopReason | None = None
        self._last_recording_path: pathlib.Path | None = None
        self._recent_errors: collections.deque[tuple[str, str]] = collections.deque(
            maxlen=RECENT_ERRORS
        )
        self._merges_failed = 0
        self._recordings_started = 0
        self._shut_down = False
        self._snapshot = RecorderSnapshot()
        self._merger = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="merge")
        self._events = recorder_events.EventDispatcher(health=self._health)
        if prewarm:
            threading.Thread(target=_prewarm, name="writer-prewarm", daemon=True).start()

    # -- properties (lock-free: read the snapshot) -----------------------------------------

    @property
    def config(self) -> RecordingConfig:
        """The recording configuration."""
        return self._config

    @property
    def devices(self) -> list[device_base.CaptureDevice]:
        """The capture devices this manager records from."""
        return list(self._devices)

    def snapshot(self) -> RecorderSnapshot:
        """The recorder's current state; never waits for a lock (safe on an event loop)."""
        return self._snapshot

    @property
    def phase(self) -> RecorderPhase:
        """Lifecycle phase (who owns the devices)."""
        return self._snapshot.phase

    @property
    def is_recording(self) -> bool:
        """True if there is an active session currently capturing."""
        return self._snapshot.phase is RecorderPhase.RECORDING

    @property
    def active_recording_id(self) -> str | None:
        """Get the ID of the active recording, or None if not recording."""
        snap = self._snapshot
        return snap.recording_id if snap.phase is RecorderPhase.RECORDING else None

    @property
    def recording_started_at(self) -> datetime.datetime | None:
        """Get the start time of the active recording, or None if not recording."""
        snap = self._snapshot
        return snap.started_at if snap.phase is RecorderPhase.RECORDING else None

    @property
    def active_session(self) -> recording_session.RecordingSession | None:
        """The active (capturing) session, or None."""
        session = self._session
        return session if self._snapshot.phase is RecorderPhase.RECORDING else None

    @property
    def last_error(self) -> str | None:
        """The most recent problem (unhealthy device, writer error, refused start), or None."""
        return self._snapshot.last_error

    @property
    def last_recording_path(self) -> pathlib.Path | None:
        """Path of the most recently merged recording, or None."""
        return self._snapshot.last_recording_path

    @property
    def last_stop_reason(self) -> stop_reason.StopReason | None:
        """Why the most recently stopped recording stopped, or None before the first stop."""
        return self._last_stop_reason

    @property
    def callback_errors(self) -> int:
        """How many user callbacks raised (each is logged)."""
        return self._events.callback_errors

    @property
    def pending_merges(self) -> int:
        """Recordings stopped but not merged yet."""
        return self._snapshot.pending_merges

    # -- callbacks ---------------------------------------------------------------------------

    def set_on_device_unhealthy(self, callback: OnDeviceUnhealthyCallback | None) -> None:
        """Set the callback for device unhealthy events.

        Allows setting the callback after construction, needed when there are circular
        dependencies (the StateMachine needs the RecordingManager and vice versa).

        Args:
            callback: Invoked (on the events thread) with a ``RecorderEvent``, or with no
                argument if it takes none, when a device becomes unhealthy during recording;
                None to clear.
        """
        self._on_device_unhealthy = callback

    def set_on_recording_error(self, callback: OnRecordingErrorCallback | None) -> None:
        """Set the callback for recording error events (e.g. encoder crash, failed merge).

        Args:
            callback: Invoked (on the events thread) with a ``RecorderEvent`` naming the
                recording, or with no argument if it takes none; None to clear.
        """
        self._on_recording_error = callback

    def set_on_recording_complete(self, callback: OnRecordingCompleteCallback | None) -> None:
        """Set the callback invoked with the merged file's path after each merge."""
        self._on_recording_complete = callback

    # -- lifecycle ---------------------------------------------------------------------------

    def start_recording(self) -> bool:
        """Start a new recording session.

        Claims the devices (only from IDLE; a stop in flight is waited for up to
        ``start_waits_for_stop_s``), opens them, waits until they are ready, creates a session
        with a unique timestamp-based recording id and starts its threads.

        Returns:
            True if recording started successfully, False otherwise (see ``last_error``).
        """
        with self._lock:
            if self._phase is RecorderPhase.STOPPING and not self._shut_down:
                self._changed.wait_for(
                    lambda: self._phase is not RecorderPhase.STOPPING,
                    self._config.start_waits_for_stop_s,
                )
            refusal = self._claim_locked()
        if refusal is not None:
            return self._refuse(refusal)
        try:
            started = self._open_and_start()
        except BaseException:
            self._release_claim()
            raise
        if isinstance(started, str):
            self._release_claim()
            return self._refuse(started)
        session, stack, started_at = started
        with self._lock:
            self._phase = RecorderPhase.RECORDING
            self._session = session
            self._device_stack = stack
            self._started_at = started_at
            self._unhealthy_reported = False
            self._last_error = None
            self._recordings_started += 1
            self._health_stop = threading.Event()
            self._health_thread = threading.Thread(
                target=self._health_loop,
                args=(session, self._health_stop),
                name=f"health-{session.recording_id}",
                daemon=True,
            )
            self._health_thread.start()
            self._publish_locked()
        logger.info("recording %s started at %s", session.recording_id, started_at.isoformat())
        return True

    def stop_recording(self, recording_id: str | None = None) -> None:
        """Stop the current recording session and return once it is stopped and merged.

        Stops the capture threads, drains the writer into the chunk files, closes the devices,
        then finishes the merged MKV on the merge thread and waits for it and for the
        ``on_recording_complete`` callback (up to ``stop_waits_for_merge_s``; with the
        incremental merge only the last chunks are left to append). A stop already running on
        another thread is waited for (up to ``stop_timeout_s``); a start in flight is waited
        for and then stopped. No-op when idle.

        Args:
            recording_id: Stop only this recording (ignored, and logged, if another recording
                is active); None stops whichever is active.
        """
        stopped = self._stopped_by(recording_id)
        if stopped is None:
            return
        with self._lock:
            pending = self._finished.get(stopped)
        future = pending.future if pending is not None else None
        if future is None or self._config.stop_waits_for_merge_s <= 0:
            return
        deadline = time.monotonic() + self._config.stop_waits_for_merge_s
        done, _ = futures.wait([future], self._config.stop_waits_for_merge_s)
        if not done:
            logger.warning(
                "recording %s: merge still running after %.1f s; it goes on in the background",
                stopped,
                self._config.stop_waits_for_merge_s,
            )
            return
        # ... and for on_recording_complete with the merged path (0.1.2 called it inline)
        self._events.wait_idle(max(0.0, deadline - time.monotonic()))

    def _stopped_by(self, recording_id: str | None) -> str | None:
        """Stop like :meth:`stop_recording` without waiting for the merge; the id it stopped."""
        with self._lock:
            owner = self._owner_id if recording_id is None else recording_id
        if owner is None:  # a start in flight has no id yet: stop it, nothing to wait for
            self._stop(recording_id)
            return None
        return owner if self._stop(recording_id) else None

    def wait_for_merges(self, timeout: float | None = None) -> bool:
        """Wait until every stopped recording is merged; True if all finished in time."""
        with self._lock:
            pending = [p.future for p in self._finished.values() if p.future is not None]
        if not pending:
            return True
        _done, not_done = futures.wait(pending, timeout)
        return not not_done

    def shutdown(self) -> None:
        """Stop the active session, wait for every stop and merge in flight, end the threads.

        Waits for a start in flight, stops the active recording or waits for a stop another
        thread is running, then waits for every pending merge and callback. Bounded as the
        module docstring states; what is left after the bound is logged.
        """
        with self._lock:
            self._shut_down = True
            self._publish_locked()
            active = self._session
        if active is not None:
            _set_stop_reason(active, stop_reason.StopReason.SHUTDOWN)
        self._stop(None)
        with self._lock:
            stopped = self._changed.wait_for(
                lambda: self._phase is RecorderPhase.IDLE, self._config.stop_timeout_s
            )
            error_threads = list(self._error_threads)
        if not stopped:
            logger.error(
                "a stop was still running after %.1f s at shutdown", self._config.stop_timeout_s
            )
        deadline = time.monotonic() + self._config.stop_timeout_s
        for thread in error_threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
                if thread.is_alive():
                    logger.error("%s still running at shutdown", thread.name)
        if not self.wait_for_merges(self._config.session_join_timeout_s):
            logger.error(
                "merges still running after %.1f s at shutdown; chunks stay in %s and are "
                "recovered at next start",
                self._config.session_join_timeout_s,
                self._spool_dir,
            )
        self._merger.shutdown(wait=False)
        self._events.close(5.0)

    # -- start internals ---------------------------------------------------------------------

    def _claim_locked(self) -> str | None:
        if self._shut_down:
            return "recording manager is shut down"
        if self._phase is RecorderPhase.STOPPING:
            return (
                f"recording {self._owner_id} is still stopping after "
                f"{self._config.start_waits_for_stop_s} s"
            )
        if self._phase is not RecorderPhase.IDLE:
            return "a recording is already active"
        self._phase = RecorderPhase.STARTING
        self._owner_id = None
        self._publish_locked()
        return None

    def _release_claim(self) -> None:
        with self._lock:
            self._phase = RecorderPhase.IDLE
            self._owner_id = None
            self._publish_locked()

    def _open_and_start(
        self,
    ) -> str | tuple[recording_session.RecordingSession, contextlib.ExitStack, datetime.datetime]:
        """Open the devices and start a session; a string is the reason it was refused."""
        self._spool_dir.mkdir(parents=True, exist_ok=True)
        self._output_dir.mkdir(parents=True, exist_ok=True)
        free = self._free_percent(self._spool_dir)
        if free < self._config.min_free_percent:
            return (
                f"only {free:.1f}% free on {self._spool_dir}, below the "
                f"{self._config.min_free_percent}% needed to start a recording"
            )
        available = self._available_bytes(self._spool_dir)
        if available < self._config.merge_headroom_bytes:
            return (
                f"only {available} bytes available on {self._spool_dir}, below the "
                f"{self._config.merge_headroom_bytes} bytes kept for merging"
            )
        stack = contextlib.ExitStack()
        recording_id: str | None = None
        try:
            for device in self._devices:
                stack.enter_context(device)
            not_connected = [device.label for device in self._devices if not device.connected]
            if not_connected:
                self._close_devices(stack, None)
                return f"device(s) not connected: {not_connected}"
            deadline = time.monotonic() + self._config.device_ready_timeout_s
            for device in self._devices:
                remaining = max(0.0, deadline - time.monotonic())
                if not device.wait_until_ready(remaining):
                    self._close_devices(stack, None)
                    return (
                        f"device {device.label} not ready within "
                        f"{self._config.device_ready_timeout_s} s"
                    )
            started_at = self._clock.anchor()
            recording_id = self._new_recording_id(started_at)
            with self._lock:
                self._owner_id = recording_id
                self._started_at = started_at
                self._publish_locked()
            holder: list[recording_session.RecordingSession] = []
            # Keyword arguments only, as 0.1.2 called it (code replacing RecordingSession
            # with a keyword-only factory keeps working).
            session = recording_session.RecordingSession(
                recording_id=recording_id,
                target_cameras=self._cameras,
                stream_names=self._stream_names,
                stream_configs=self._stream_configs,
                spool_dir=self._spool_dir,
                sensors=self._sensors,
                sensor_stream_names=self._sensor_stream_names,
                sensor_stream_configs=self._sensor_stream_configs,
                chunk_length_s=self._config.chunk_length_s,
                max_queue_size=self._config.max_queue_size,
                on_error=functools.partial(self._handle_session_error, recording_id, holder),
                writer_options={
                    "origin": started_at,
                    "clock": self._clock,
                    "devices": [
                        {
                            "label": d.label,
                            "device_type": getattr(d.device_type, "value", d.device_type) or "",
                        }
                        for d in self._devices
                    ],
                },
            )
            holder.append(session)
            session.start()
            if self._config.live_merge:
                live = live_merge.LiveMerge(
                    _recording_dir(session, self._spool_dir), self._output_dir
                )
                with self._lock:
                    self._live[recording_id] = live
                live.start()
        except Exception as exc:
            self._close_devices(stack, None)
            if recording_id is not None:
                _remove_if_empty(self._spool_dir / recording_id)
            logger.exception("could not start recording")
            return f"could not start recording: {type(exc).__name__}: {exc}"
        return session, stack, started_at

    # -- stop internals ----------------------------------------------------------------------

    def _stop(self, recording_id: str | None, *, wait: bool = True) -> bool:
        """Stop ``recording_id`` (or the active recording); True if this call stopped it.

        With ``wait`` False a stop already running on another thread is not waited for (the
        health thread must not: that stop joins it).
        """
        with self._lock:
            if self._phase is RecorderPhase.STARTING:
                # Bounded by the device-ready timeout the start itself honours.
                self._changed.wait_for(
                    lambda: self._phase is not RecorderPhase.STARTING,
                    self._config.device_ready_timeout_s + self._config.stop_timeout_s,
                )
            owner = self._owner_id
            if recording_id is not None and owner != recording_id:
                if owner is not None:
                    logger.info("stop of %s ignored: %s owns the devices", recording_id, owner)
                return False
            if self._phase is RecorderPhase.STOPPING:
                if not wait:
                    return False
                done = self._changed.wait_for(
                    lambda: self._owner_id != owner, self._config.stop_timeout_s
                )
                if not done:
                    logger.error(
                        "recording %s still stopping after %.1f s",
                        owner,
                        self._config.stop_timeout_s,
                    )
                return False
            session = self._session
            if self._phase is not RecorderPhase.RECORDING or session is None:
                return False
            self._phase = RecorderPhase.STOPPING
            stack = self._device_stack
            health_thread = self._health_thread
            self._health_stop.set()
            self._publish_locked()
        problems: list[str] = []
        try:
            self._join_health(health_thread)
            try:
                session.stop()
            except Exception as exc:
                logger.exception("stopping recording %s failed", session.recording_id)
                problems.append(f"stopping failed: {type(exc).__name__}: {exc}")
            self._close_devices(stack, problems)
        finally:
            self._finish_stop(session, problems)
        return True

    def _join_health(self, thread: threading.Thread | None) -> None:
        if thread is None or thread is threading.current_thread():
            return
        timeout = self._config.health_join_timeout_s
        thread.join(timeout)
        if thread.is_alive():
            logger.warning(
                "health check of %s still running after %.1f s; stopping without it",
                thread.name,
                timeout,
            )
        else:
            logger.debug("%s joined", thread.name)

    def _close_devices(
        self, stack: contextlib.ExitStack | None, problems: list[str] | None
    ) -> None:
        if stack is None:
            return
        try:
            stack.close()
        except Exception as exc:
            logger.exception("closing the capture devices failed")
            if problems is not None:
                problems.append(f"closing the devices failed: {type(exc).__name__}: {exc}")

    def _finish_stop(
        self, session: recording_session.RecordingSession, problems: list[str]
    ) -> None:
        recording_id = session.recording_id
        pending = _PendingMerge(
            recording_id,
            _recording_dir(session, self._spool_dir),
            self._output_dir / f"{recording_id}.mkv",
        )
        self._last_stop_reason = getattr(session, "stop_reason", None)
        with self._lock:
            self._phase = RecorderPhase.IDLE
            self._owner_id = None
            self._session = None
            self._device_stack = None
            self._health_thread = None
            self._started_at = None
            for problem in problems:
                self._note_error_locked(recording_id, problem)
            pending.live = self._live.pop(recording_id, None)
            self._finished[recording_id] = pending
            try:
                pending.future = self._merger.submit(self._merge, pending)
            except RuntimeError:
                # Only after shutdown's wait gave up: the chunks stay for recovery.
                del self._finished[recording_id]
                logger.error("recording %s stopped after shutdown; not merged", recording_id)
            self._publish_locked()
        logger.info("recording %s stopped; merge scheduled", recording_id)

    # -- internals ---------------------------------------------------------------------------

    def _publish_locked(self) -> None:
        """Replace the snapshot and wake every thread waiting for a change (lock held)."""
        self._changed.notify_all()
        self._snapshot = RecorderSnapshot(
            phase=self._phase,
            recording_id=self._owner_id,
            started_at=self._started_at,
            last_error=self._last_error,
            last_recording_path=self._last_recording_path,
            pending_merges=len(self._finished),
            merges_failed=self._merges_failed,
            recordings_started=self._recordings_started,
            recent_errors=tuple(self._recent_errors),
        )

    def _note_error_locked(self, recording_id: str, message: str) -> None:
        self._last_error = message
        self._recent_errors.append((recording_id, message))

    def _refuse(self, reason: str) -> bool:
        logger.warning("recording not started: %s", reason)
        with self._lock:
            self._last_error = reason
            self._publish_locked()
        return False

    def _new_recording_id(self, started_at: datetime.datetime) -> str:
        """Claim a unique id by creating its spool directory (exclusive ``mkdir``).

        The UTC start time alone (``2026-11-22T02-40-11.123Z``, 0.1.2's form) unless that is
        taken on disk; then the time plus a random suffix, so two recordings started in the
        same millisecond (by this or another process) never share an id.
        """
        candidate = recording_ids.filesystem_timestamp(started_at)
        while True:
            if not (self._output_dir / f"{candidate}.mkv").exists():
                try:
                    (self._spool_dir / candidate).mkdir()
                    return candidate
                except FileExistsError:
                    pass
            candidate = recording_ids.new_recording_id(started_at)

    def _finish_live(self, pending: _PendingMerge) -> pathlib.Path | None:
        """Finish the recording's incremental merge; None if it failed (logged)."""
        if pending.live is None:
            return None
        try:
            return pending.live.finish().output_path
        except Exception as exc:
            logger.warning(
                "incremental merge of %s failed (%s: %s); merging what it left",
                pending.recording_id,
                type(exc).__name__,
                exc,
            )
            self._health.record_error(MERGE_LOOP, exc)
            return None

    def _merge(self, pending: _PendingMerge) -> None:
        recording_id = pending.recording_id
        try:
            path = self._finish_live(pending)
            if path is None:  # no incremental merge, or it failed: continue it / merge all
                path = pathlib.Path(
                    recording_merge.merge_recording_chunks(
                        pending.recording_dir, self._output_dir, cleanup=True
                    )
                )
        except Exception as exc:
            message = f"merge of {recording_id} failed: {type(exc).__name__}: {exc}"
            logger.exception(
                "merge of %s failed; chunks kept in %s for recovery",
                recording_id,
                pending.recording_dir,
            )
            self._health.record_error(MERGE_LOOP, exc)
            with self._lock:
                self._finished.pop(recording_id, None)
                self._merges_failed += 1
                self._note_error_locked(recording_id, message)
                self._publish_locked()
            self._report(recorder_events.EventKind.MERGE_FAILED, recording_id, message, False)
            return
        with self._lock:
            self._finished.pop(recording_id, None)
            self._last_recording_path = path
            self._publish_locked()
        logger.info("recording %s merged into %s", recording_id, path)
        self._events.submit(self._on_recording_complete, path)

    def _report(
        self, kind: recorder_events.EventKind, recording_id: str, message: str, stopped: bool
    ) -> None:
        event = RecorderEvent(kind, recording_id, message, stopped)
        callback = (
            self._on_device_unhealthy
            if kind is recorder_events.EventKind.DEVICE_UNHEALTHY
            else self._on_recording_error
        )
        if callback is not None:
            self._events.submit(_deliver, callback, event)

    def _handle_session_error(
        self, recording_id: str, holder: list[recording_session.RecordingSession]
    ) -> None:
        detail = "; ".join(holder[0].errors) if holder else "recording error"
        detail = detail or "recording error"
        with self._lock:
            self._note_error_locked(recording_id, detail)
            self._publish_locked()
        logger.error("recording %s error: %s", recording_id, detail)
        # Stop on another thread: this callback runs on a capture or writer thread that the stop
        # joins. The callback fires once the recording is stopped, so listeners see the outcome.
        thread = threading.Thread(
            target=self._stop_after_error,
            args=(recording_id, detail),
            name=f"stop-after-error-{recording_id}",
            daemon=True,
        )
        with self._lock:
            self._error_threads.add(thread)
        thread.start()

    def _stop_after_error(self, recording_id: str, detail: str) -> None:
        try:
            stopped = self._stop(recording_id, wait=False)
            self._report(recorder_events.EventKind.RECORDING_ERROR, recording_id, detail, stopped)
        finally:
            with self._lock:
                self._error_threads.discard(threading.current_thread())

    def _health_loop(
        self, session: recording_session.RecordingSession, stop: threading.Event
    ) -> None:
        while not stop.wait(self._config.health_check_interval_s):
            try:
                if self._check_health(session, stop):
                    return
            except Exception as exc:
                logger.exception("health check of %s failed", session.recording_id)
                self._health.record_error(HEALTH_LOOP, exc)

    def _check_live_merge(self, recording_id: str) -> None:
        """Report, once, an incremental merge that failed while recording.

        The recording goes on: its chunks stay in the spool (none is deleted unless verified in
        the growing file) and the stop finishes the merge from the last durable state.
        """
        with self._lock:
            live = self._live.get(recording_id)
        if live is None or live.error is None or live.reported:
            return
        live.reported = True
        error = live.error
        message = f"incremental merge of {recording_id} failed: {type(error).__name__}: {error}"
        self._health.record_error(MERGE_LOOP, error)
        with self._lock:
            self._note_error_locked(recording_id, message)
            self._publish_locked()
        self._report(recorder_events.EventKind.MERGE_FAILED, recording_id, message, False)

    def _check_health(
        self, session: recording_session.RecordingSession, stop: threading.Event
    ) -> bool:
        """One health check; True if it stopped the recording."""
        recording_id = session.recording_id
        still_away = device_reconnect.bridge(
            session,
            self._devices,
            timeout_s=self._config.reconnect_timeout_s,
            stop=stop,
            clock=self._clock,
        )
        problems = [f"device {label} disconnected" for label in still_away]
        disconnected = bool(problems)
        stalled_streams = getattr(session, "stalled_streams", None)  # absent: a 0.1.2 session
        stalled = [] if stalled_streams is None else stalled_streams(self._config.stall_timeout_s)
        problems += [
            f"stream {name} delivered nothing for {self._config.stall_timeout_s} s"
            for name in stalled
        ]
        if stop.is_set():
            return True  # a stop is already under way: report nothing about a finished check
        self._check_live_merge(recording_id)
        if problems:
            message = "; ".join(problems)
            with self._lock:
                first = not self._unhealthy_reported
                self._unhealthy_reported = True
                self._note_error_locked(recording_id, message)
                self._publish_locked()
            if disconnected:
                logger.error("stopping recording %s: %s", recording_id, message)
                _set_stop_reason(session, stop_reason.StopReason.DEVICE_DISCONNECTED)
                stopped = self._stop(recording_id, wait=False)
                if first and stopped:
                    self._report(
                        recorder_events.EventKind.DEVICE_UNHEALTHY, recording_id, message, True
                    )
                return True
            if first:
                logger.error("recording %s unhealthy: %s", recording_id, message)
                self._report(
                    recorder_events.EventKind.DEVICE_UNHEALTHY, recording_id, message, False
                )
        else:
            with self._lock:
                self._unhealthy_reported = False
        reason = self._storage_problem(session)
        if reason is None or stop.is_set():
            return stop.is_set()
        message = (
            f"{reason}; stopping recording {recording_id} while it can still be "
            "merged into a valid file"
        )
        logger.error(message)
        with self._lock:
            self._note_error_locked(recording_id, message)
            self._publish_locked()
        _set_stop_reason(session, stop_reason.StopReason.STORAGE_LOW)
        stopped = self._stop(recording_id, wait=False)
        if stopped:
            self._report(recorder_events.EventKind.RECORDING_ERROR, recording_id, message, True)
        return True

    def _storage_problem(self, session: recording_session.RecordingSession) -> str | None:
        free = self._free_percent(self._spool_dir)
        if free < self._config.stop_free_percent:
            return f"only {free:.1f}% free on {self._spool_dir}"
        needed = int(directory_bytes(_recording_dir(session, self._spool_dir)) * 1.1)
        needed += self._config.merge_headroom_bytes
        available = self._available_bytes(self._spool_dir)
        if available < needed:
            return (
                f"only {available} bytes available on {self._spool_dir}, and merging "
                f"needs about {needed}"
            )
        return None


def _recording_dir(session: object, spool_dir: pathlib.Path) -> pathlib.Path:
    """The session's recording directory; ``spool/<id>`` for a session without the property."""
    default = spool_dir / str(getattr(session, "recording_id"))  # noqa: B009
    return pathlib.Path(getattr(session, "recording_dir", default))


def _remove_if_empty(directory: pathlib.Path) -> None:
    """Remove a recording directory claimed for a start that failed, if nothing is in it."""
    with contextlib.suppress(OSError):  # absent, or it holds something: left for recovery
        directory.rmdir()


def _set_stop_reason(session: object, reason: stop_reason.StopReason) -> None:
    """Tell ``session`` why it stops, if it takes a reason (a 0.1.2 session does not)."""
    setter = getattr(session, "set_stop_reason", None)
    if setter is not None:
        setter(reason)
