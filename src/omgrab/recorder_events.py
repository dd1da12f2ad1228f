"""The recorder's lifecycle phases, its lock-free snapshot and its event dispatcher.

Data path: the :class:`~omgrab.runtime.recording_manager.RecordingManager` publishes an
immutable :class:`RecorderSnapshot` (one reference assignment, so any thread reads a consistent
value without taking a lock) and hands :class:`RecorderEvent` objects to an
:class:`EventDispatcher`, whose single thread calls the user's callbacks in order.

Why a dispatcher thread: the threads that detect a problem (health check, merge, capture) must
never block on a lock the callback's receiver holds (a state machine busy stopping the very
recording that failed would otherwise wait on them forever). The dispatcher holds no lock while
calling out.

Bounds: at most ``max_pending`` events wait (default 256; a recording produces at most a few);
beyond that an event is dropped, counted and logged. Lifecycle: the thread starts with the
dispatcher and ends at :meth:`EventDispatcher.close`, which waits a bounded time for the queue to
drain. Error policy: a callback that raises is logged and counted (``callback_errors``, and the
``recorder-events`` loop in :mod:`~omgrab.loop_health`), and the next event is delivered.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import enum
import inspect
import logging
import pathlib
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from omgrab import loop_health

logger = logging.getLogger(__name__)

LOOP_NAME = "recorder-events"


class RecorderPhase(enum.Enum):
    """Who owns the capture devices right now.

    IDLE: nobody; a start may claim them. STARTING: a start is opening them. RECORDING: the
    active recording captures from them. STOPPING: the stopping recording is draining its
    capture and closing them; a start waits (bounded) or is refused.
    """

    IDLE = "idle"
    STARTING = "starting"
    RECORDING = "recording"
    STOPPING = "stopping"


class EventKind(enum.Enum):
    """What a :class:`RecorderEvent` reports."""

    DEVICE_UNHEALTHY = "device_unhealthy"
    RECORDING_ERROR = "recording_error"
    MERGE_FAILED = "merge_failed"


@dataclasses.dataclass(frozen=True)
class RecorderEvent:
    """A problem of one recording, delivered to ``on_device_unhealthy`` / ``on_recording_error``.

    Attributes:
        kind: What happened.
        recording_id: The recording it is about (not necessarily the active one: a merge of an
            earlier recording may fail while the next one records).
        message: Human-readable description, fixed when the event was created.
        stopped: True if the manager stopped that recording because of it.
    """

    kind: EventKind
    recording_id: str
    message: str
    stopped: bool


@dataclasses.dataclass(frozen=True)
class RecorderSnapshot:
    """An immutable view of the recorder, replaced as a whole at every change.

    Attributes:
        phase: Lifecycle phase.
        recording_id: The recording owning the devices (starting, recording or stopping).
        started_at: Wall-clock start of the active recording, or None.
        last_error: Most recent problem, or None (cleared when a recording starts).
        last_recording_path: Path of the most recently merged recording, or None.
        pending_merges: Recordings stopped but not merged yet.
        merges_failed: Merges that failed so far (chunks kept for recovery).
        recordings_started: Recordings started so far.
        recent_errors: The last few ``(recording_id, message)`` problems, oldest first.
    """

    phase: RecorderPhase = RecorderPhase.IDLE
    recording_id: str | None = None
    started_at: datetime.datetime | None = None
    last_error: str | None = None
    last_recording_path: pathlib.Path | None = None
    pending_merges: int = 0
    merges_failed: int = 0
    recordings_started: int = 0
    recent_errors: tuple[tuple[str, str], ...] = ()


def takes_argument(callback: Callable[..., Any]) -> bool:
    """True if ``callback`` can be called with one positional argument.

    Callbacks written for the published API take no argument; newer ones receive the
    :class:`RecorderEvent`. Both are accepted.
    """
    try:
        signature = inspect.signature(callback)
    except (TypeError, ValueError):
        return False
    try:
        signature.bind(None)
    except TypeError:
        return False
    return True


_STOP = object()


class EventDispatcher:
    """Delivers callbacks in order on one thread that holds no lock while calling out.

    Args:
        name: Thread name.
        max_pending: Most events waiting for delivery; more are dropped and counted.
        health: Where callback errors are recorded.
    """

    def __init__(
        self,
        name: str = LOOP_NAME,
        max_pending: int = 256,
        health: loop_health.LoopHealth | None = None,
    ) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_pending)
        self._health = health if health is not None else loop_health.default()
        self._counter_lock = threading.Lock()
        self._callback_errors = 0
        self._dropped = 0
        self._idle = threading.Condition(self._counter_lock)
        self._unfinished = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def callback_errors(self) -> int:
        """How many callbacks raised."""
        with self._counter_lock:
            return self._callback_errors

    @property
    def dropped(self) -> int:
        """How many events were dropped because ``max_pending`` were waiting."""
        with self._counter_lock:
            return self._dropped

    def submit(self, callback: Callable[..., Any] | None, *args: Any) -> None:
        """Queue ``callback(*args)`` for delivery; never blocks."""
        if callback is None:
            return
        with self._counter_lock:
            self._unfinished += 1
        try:
            self._queue.put_nowait((callback, args))
        except queue.Full:
            with self._counter_lock:
                self._unfinished -= 1
                self._dropped += 1
                self._idle.notify_all()
            logger.error(
                "event for %r dropped: %d events already pending", callback, self._queue.qsize()
            )

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every submitted callback returned; True if it happened in time."""
        if threading.current_thread() is self._thread:
            return True  # a callback waiting for itself
        with self._idle:
            return self._idle.wait_for(lambda: self._unfinished == 0, timeout)

    def close(self, timeout: float) -> bool:
        """Deliver what is queued (bounded by ``timeout``) and end the thread.

        Returns:
            True if the thread ended in time.
        """
        deadline = time.monotonic() + timeout
        self.wait_idle(timeout)
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=max(0.0, deadline - time.monotonic()))
        if threading.current_thread() is self._thread:
            return True
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            logger.error("event dispatcher still busy after %.1f s; left behind", timeout)
            return False
        return True

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            callback, args = item
            try:
                callback(*args)
            except Exception as exc:
                logger.exception("recorder callback %r failed", callback)
                self._health.record_error(LOOP_NAME, exc)
                with self._counter_lock:
                    self._callback_errors += 1
            finally:
                with self._counter_lock:
                    self._unfinished -= 1
                    self._idle.notify_all()
