"""``omgrab record``: one recording of a fixed length with a live progress line, then the result.

The whole device runtime (:class:`~omgrab.app.device_app.DeviceApp`, which takes the data
directory's instance lock and recovers leftovers first) is started, the workflow is pressed
once to start and once to stop after ``duration_s``, and the merged recording is returned.
While it records, :func:`record_once` calls ``on_progress`` about twice a second with a
:class:`Progress` read from the live writer (frames written, dropped and queued per stream)
and the data directory's free space.
"""

from __future__ import annotations

import dataclasses
import pathlib
import shutil
import threading
from collections.abc import Callable

from omgrab.app import device_app
from omgrab.workflows import states

PROGRESS_INTERVAL_S = 0.5


class RecordError(RuntimeError):
    """The recording did not start or was not merged (the message says which and why)."""


@dataclasses.dataclass
class StreamProgress:
    """One stream at one moment of the recording."""

    name: str
    frames: int
    dropped: int
    backlog: int


@dataclasses.dataclass
class Progress:
    """The recording at one moment."""

    elapsed_s: float
    streams: list[StreamProgress]
    disk_free_bytes: int


def _progress(app: device_app.DeviceApp, elapsed: float) -> Progress:
    streams: list[StreamProgress] = []
    session = app.recorder.active_session
    if session is not None:
        capture = session.capture_stats()
        for name, stats in session.writer.stats.items():
            captured = capture.get(name)
            streams.append(
                StreamProgress(
                    name=name,
                    frames=stats.frames_written,
                    dropped=stats.frames_dropped + (captured.items_dropped if captured else 0),
                    backlog=stats.queued,
                )
            )
    return Progress(elapsed, streams, shutil.disk_usage(app.config.data_dir).free)


def record_once(
    app: device_app.DeviceApp,
    duration_s: float,
    on_progress: Callable[[Progress], None] | None = None,
    merge_timeout_s: float = 300.0,
) -> pathlib.Path:
    """Start ``app``, record ``duration_s`` seconds, stop it and return the merged MKV.

    Raises:
        ValueError: ``duration_s`` is not positive.
        RecordError: Recording did not start, stopped early, or was not merged in time.
    """
    if duration_s <= 0:
        raise ValueError(f"duration must be > 0 s, got {duration_s:g}")
    waiter = threading.Event()
    app.start()
    try:
        app.state_machine.handle_short_press()
        if app.state_machine.state is not states.WorkflowState.RECORDING:
            raise RecordError(f"recording did not start: {app.recorder.last_error}")
        started = app.clock.monotonic()
        while True:
            elapsed = app.clock.monotonic() - started
            if elapsed >= duration_s:
                break
            if not app.recorder.is_recording:
                raise RecordError(f"recording stopped early: {app.recorder.last_error}")
            if on_progress is not None:
                on_progress(_progress(app, elapsed))
            waiter.wait(min(PROGRESS_INTERVAL_S, duration_s - elapsed))
        if on_progress is not None:
            on_progress(_progress(app, duration_s))
        app.state_machine.handle_short_press()
        if not app.wait_for_recordings(1, timeout=merge_timeout_s):
            raise RecordError(f"recording was not merged: {app.recorder.last_error}")
        return app.completed[0]
    finally:
        app.stop()
