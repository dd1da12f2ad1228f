"""The device app's uploader: completed recordings go to S3 in the background, gated and bounded.

Data path: one thread (``omgrab-upload``) runs :meth:`omgrab.upload.uploader.Uploader.run_once`
passes over ``recordings/`` (and the perception ``output/`` sessions), then one retention pass
(:meth:`UploadService.reclaim`), then waits ``poll_interval_s`` (after a failed pass: a back-off
from ``retry_initial_s`` doubling to ``retry_max_s``). :meth:`UploadService.progress` is what
``status.json`` shows under ``upload``.

Gates: ``only_when_idle`` asks the recorder's lock-free ``snapshot()`` (any phase but IDLE is
"recording"); ``only_on_wifi`` asks the network monitor (not OFFLINE) and whether the interface
carrying the default route is wireless (``/sys/class/net/<iface>/wireless``).

Retention: when the data filesystem is below the storage ladder's first rung
(``reduce_below``) or the recorder floor, uploaded recordings are deleted oldest first through
:meth:`~omgrab.upload.uploader.Uploader.delete_if_uploaded` (which verifies the remote copy
again, size and ETag, just before deleting) until the filesystem is back above them. Nothing
that was not verified remotely is ever deleted; no other path deletes recordings.

Lifecycle: :meth:`start` after the app recovered its spool; :meth:`stop` at shutdown aborts the
part in flight (its multipart state stays on disk, the next run continues it) and joins the
thread for at most ``timeout`` seconds, logging an error if it is still running.

Error policy: a failed pass is counted and kept as ``last_error`` by the uploader; a failed
retention pass is logged and counted in ``retention_errors``; neither stops the thread.
"""

from __future__ import annotations

import logging
import os
import pathlib
import threading
from typing import Any

from omgrab import recorder_events, storage
from omgrab.runtime import network_monitor
from omgrab.upload import config as upload_config
from omgrab.upload import uploader as uploader_mod

logger = logging.getLogger(__name__)


def is_wireless(iface: str | None, sys_root: str = "/sys") -> bool:
    """Whether ``iface`` is a wireless interface (it has ``class/net/<iface>/wireless``)."""
    if not iface:
        return False
    return os.path.isdir(os.path.join(sys_root, "class", "net", iface, "wireless"))


def on_wifi(monitor: network_monitor.NetworkMonitor, sys_root: str = "/sys") -> bool:
    """Whether the device reaches the network, and through a wireless interface."""
    if monitor.snapshot.status is network_monitor.Status.OFFLINE:
        return False
    local = network_monitor.check_local_network(monitor.iface)
    return local.ok and is_wireless(local.iface, sys_root)


def recorder_busy(recorder: Any) -> bool:
    """Whether the recorder is anything but idle (read from its lock-free snapshot)."""
    return recorder.snapshot().phase is not recorder_events.RecorderPhase.IDLE


class UploadService:
    """Runs an :class:`~omgrab.upload.uploader.Uploader` and storage retention in one thread.

    Args:
        uploader: The uploader (its gates already wired).
        monitor: The data filesystem's storage monitor (retention reads its thresholds).
    """

    def __init__(self, uploader: uploader_mod.Uploader, monitor: storage.StorageMonitor) -> None:
        self.uploader = uploader
        self.monitor = monitor
        self.retention_deleted = 0
        self.retention_errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def build(
        cls,
        config: upload_config.UploadConfig,
        recordings_dir: pathlib.Path,
        output_dir: pathlib.Path | None,
        recorder: Any,
        network: network_monitor.NetworkMonitor,
        monitor: storage.StorageMonitor,
    ) -> UploadService:
        """The service for the device app's recorder, network monitor and directories.

        Raises:
            UploadConfigError: Credentials missing or unreadable (the message says which).
        """
        uploader = uploader_mod.Uploader(
            config,
            recordings_dir,
            output_dir,
            on_wifi=lambda: on_wifi(network),
            is_recording=lambda: recorder_busy(recorder),
        )
        return cls(uploader, monitor)

    def progress(self) -> dict[str, Any]:
        """The uploader's progress and backlog, plus retention counters (JSON-ready)."""
        snap = self.uploader.progress()
        snap["retention_deleted"] = self.retention_deleted
        snap["retention_errors"] = self.retention_errors
        return snap

    def start(self) -> None:
        """Start the background thread."""
        if self._thread is not None:
            raise RuntimeError("upload service already started")
        self._thread = threading.Thread(target=self._run, name="omgrab-upload", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread: abort the part in flight, join for at most ``timeout`` seconds."""
        self._stop.set()
        self.uploader.stop(timeout=0)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.error("upload thread still running %.0f s after stop; left behind", timeout)
            else:
                logger.info("upload thread stopped")
            self._thread = None

    def _below_target(self) -> bool:
        reading = self.monitor.refresh()
        below_ladder = reading.free_fraction < self.monitor.thresholds.reduce_below
        return below_ladder or self.monitor.below_recorder_floor(reading)

    def reclaim(self) -> int:
        """Delete uploaded, remotely verified recordings (oldest first) while space is short.

        Returns:
            How many recordings were deleted.
        """
        deleted = 0
        if not self._below_target():
            return 0
        for mkv in self.uploader.retention_candidates():
            if self._stop.is_set():
                break
            if self.uploader.delete_if_uploaded(mkv):
                deleted += 1
                self.retention_deleted += 1
                logger.warning("storage low: deleted uploaded recording %s", mkv.name)
            if not self._below_target():
                break
        return deleted

    def _run(self) -> None:
        config = self.uploader.config
        backoff = config.retry_initial_s
        while not self._stop.is_set():
            errors_before = self.uploader.progress()["errors"]
            snap = self.uploader.run_once()
            try:
                self.reclaim()
            except Exception:
                self.retention_errors += 1
                logger.exception("retention pass failed")
            if snap["errors"] > errors_before:
                self._stop.wait(backoff)
                backoff = min(backoff * 2, config.retry_max_s)
            else:
                backoff = config.retry_initial_s
                self._stop.wait(config.poll_interval_s)
