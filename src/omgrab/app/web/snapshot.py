"""The console's status snapshot, refreshed off the event loop.

Data path: a ``console-snapshot`` thread builds the status document every ``period_s`` from the
device app (recorder, writer stats, storage, device status, perception, the uploader's progress
and backlog under ``upload``, None without an uploader) and publishes it by
replacing one reference, serialized to JSON once on that thread. HTTP handlers, the SSE
stream and ``/metrics`` only read that reference: they never take the recorder's lock, so a
start waiting for a slow device (which holds that lock for seconds) cannot stall the event
loop. While the thread is blocked the
published document simply ages; its ``updated_at`` says when it was built.

Bounds: one document (a few KB) plus the previous counters for rate computation.

Lifecycle: :meth:`StatusSnapshot.start` / :meth:`StatusSnapshot.stop` (joins the thread, a
:class:`~omgrab.background_thread.BackgroundLoop`, for at most 10 s and logs the outcome).

Errors: an exception while building a document is logged and counted in ``errors`` (exposed in
the document, in ``/metrics`` and under ``console-snapshot`` in :mod:`~omgrab.loop_health`);
the previous document stays published and the thread keeps running.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from omgrab import background_thread, loop_health
from omgrab.runtime import recording_manager

if TYPE_CHECKING:
    from omgrab.app import device_app

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """One published status document.

    Attributes:
        seq: Increases by one per refresh.
        taken_at: Monotonic time it was built.
        document: The JSON-ready status document.
        json: ``document`` serialized once, off the loop (what handlers send).
    """

    seq: int
    taken_at: float
    document: dict[str, Any]
    json: bytes = b"{}"


class StatusSnapshot:
    """Builds the status document on its own thread; readers get the latest without waiting.

    Args:
        app: The device application.
        period_s: Refresh period.
        wifi: Optional callable returning the Wi-Fi setup state dict.
    """

    def __init__(self, app: device_app.DeviceApp, period_s: float = 0.5, wifi: Any = None) -> None:
        self._app = app
        self._listeners: list[Callable[[], None]] = []
        self._period_s = period_s
        self._wifi = wifi
        self._thread = background_thread.BackgroundLoop(
            "console-snapshot", self._step, first_wait_s=period_s, retry_s=period_s
        )
        self._latest = Snapshot(0, time.monotonic(), {"state": "starting"}, b'{"state":"starting"}')
        self._prev_frames: dict[str, tuple[float, int]] = {}
        self._prev_size: tuple[float, int] | None = None
        self._write_rate_bps: float | None = None
        self.errors = 0
        self.last_error: str | None = None

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` (on the snapshot thread; keep it short) after each refresh."""
        self._listeners.append(listener)

    @property
    def latest(self) -> Snapshot:
        """The newest document (never blocks)."""
        return self._latest

    def document(self) -> dict[str, Any]:
        """The newest document (its ``updated_at`` says when it was built)."""
        return self._latest.document

    def json_bytes(self) -> bytes:
        """The newest document as JSON, serialized when it was built."""
        return self._latest.json

    def start(self) -> None:
        """Build the first document, then refresh on the thread."""
        self.refresh()
        self._thread.start()

    def refresh_soon(self) -> None:
        """Ask the thread for a refresh now (after a button press or command)."""
        self._thread.wake()

    def stop(self) -> None:
        """Stop the thread."""
        self._thread.stop(10.0)

    def _step(self) -> float:
        self.refresh()
        return self._period_s

    def refresh(self) -> None:
        """Build and publish one document (errors counted, previous kept)."""
        try:
            document = self._build()
        except Exception as exc:
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            loop_health.default().record_error(self._thread.name, exc)
            logger.exception("console status snapshot failed")
            return
        self._latest = Snapshot(
            self._latest.seq + 1, time.monotonic(), document, orjson.dumps(document)
        )
        for listener in self._listeners:
            try:
                listener()
            except Exception:
                self.errors += 1
                logger.exception("status snapshot listener failed")

    def _build(self) -> dict[str, Any]:
        app = self._app
        now = time.monotonic()
        recorder = app.recorder
        phase = recorder.snapshot()
        session = recorder.active_session
        started = recorder.recording_started_at
        current: dict[str, Any] | None = None
        if session is not None:
            current = self._current_recording(session, now)
        else:
            self._prev_frames.clear()
            self._prev_size = None
        reading = app.storage.reading()
        available = reading.available_bytes
        rate = self._write_rate_bps
        hours_left = (available / rate / 3600.0) if rate else None
        storage = app.output.get_storage_status()
        device = app.status.get_status_dict()
        return {
            "device_id": app.config.device_id,
            "state": app.state_machine.state.value,
            "seq": self._latest.seq + 1,
            "updated_at": datetime.datetime.now(datetime.UTC).isoformat(),
            "recorder": {
                "phase": phase.phase.value,
                "pending_merges": phase.pending_merges,
                "merges_failed": phase.merges_failed,
                "is_recording": session is not None,
                "recording_id": session.recording_id if session is not None else None,
                "started_at": started.isoformat() if started is not None else None,
                "last_error": recorder.last_error,
                "last_recording": str(recorder.last_recording_path or "") or None,
                "current": current,
            },
            "storage": {
                "total_bytes": reading.total_bytes,
                "available_bytes": available,
                "free_pct": round(reading.free_pct, 2),
                "level": app.storage.level.name.lower(),
                "write_rate_bps": rate,
                "hours_left": hours_left,
                "frames_recorded": storage.frames_recorded,
                "detections_logged": storage.detections_logged,
                "should_reduce_recording": storage.should_reduce_recording,
            },
            "output": {
                "session_dir": app.output.session_dir,
                "error_count": app.output.error_count,
            },
            "perception": dataclasses.asdict(app.scan.stats),
            "battery": device.get("battery"),
            "network": device.get("network"),
            "device": device,
            "imu": _latest_imu(app),
            "wifi": self._wifi() if self._wifi is not None else None,
            "upload": app.upload.progress() if app.upload is not None else None,
            "snapshot_errors": self.errors,
        }

    def _current_recording(self, session: Any, now: float) -> dict[str, Any]:
        streams: dict[str, Any] = {}
        writer_stats = session.writer.stats
        capture = session.capture_stats()
        for name, stats in writer_stats.items():
            prev = self._prev_frames.get(name)
            fps = None
            if prev is not None and now > prev[0]:
                fps = round((stats.frames_written - prev[1]) / (now - prev[0]), 2)
            self._prev_frames[name] = (now, stats.frames_written)
            cap = capture.get(name)
            streams[name] = {
                "kind": stats.kind,
                "fps": fps,
                "frames_written": stats.frames_written,
                "dropped": stats.frames_dropped + (cap.items_dropped if cap is not None else 0),
                "gaps": cap.gaps if cap is not None else 0,
                "missed": cap.frames_missed if cap is not None else 0,
                "backlog": stats.queued,
                "healthy": stats.healthy,
            }
        size = recording_manager.directory_bytes(session.recording_dir)
        if self._prev_size is not None and now > self._prev_size[0]:
            delta = size - self._prev_size[1]
            if delta >= 0:
                self._write_rate_bps = delta / (now - self._prev_size[0])
        self._prev_size = (now, size)
        return {
            "elapsed_s": round(session.recording_length_s, 2),
            "size_bytes": size,
            "streams": streams,
            "errors": list(session.errors),
        }


def _latest_imu(app: device_app.DeviceApp) -> dict[str, Any] | None:
    for sensor in app.device.sensors.values():
        item = getattr(sensor, "latest", None)
        if item is None:
            continue
        payload, timestamp = item
        try:
            batch = orjson.loads(payload)
            reading = batch["readings"][-1]
        except (ValueError, KeyError, IndexError, TypeError):
            return None
        return {"t": timestamp.isoformat(), "accel": reading["accel"], "gyro": reading["gyro"]}
    return None
