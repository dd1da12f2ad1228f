"""Why a recording stopped: the ``stop_reason`` of stats.json, the manifest, the tags and status.

Values (``StopReason``):

* ``requested``: the user stopped it (button, CLI, API ``stop_recording``).
* ``shutdown``: the app shut down while recording (service stop, SIGTERM).
* ``device_disconnected``: a capture device stayed disconnected longer than the reconnect
  window (``RecordingConfig.reconnect_timeout_s``). Shorter disconnects do not stop the
  recording; they appear as gaps with cause ``device_disconnected``.
* ``storage_low``: free space fell below the floor; stopped while the merge still fits.
* ``encoder_error``: a writer stream (encoder worker) failed.
* ``capture_error``: a capture thread crashed (a bug or a driver exception).
* ``crash_recovered``: the process died before the writer finished; the file was salvaged by
  start-up recovery and ends where the crash cut it.

The first reason set for a session wins (a storage stop that later also sees an encoder error
stays ``storage_low``). Recordings made by older versions have no reason (``null``).
"""

from __future__ import annotations

import enum
from typing import Any


class StopReason(enum.StrEnum):
    """Why a recording stopped."""

    REQUESTED = "requested"
    SHUTDOWN = "shutdown"
    DEVICE_DISCONNECTED = "device_disconnected"
    STORAGE_LOW = "storage_low"
    ENCODER_ERROR = "encoder_error"
    CAPTURE_ERROR = "capture_error"
    CRASH_RECOVERED = "crash_recovered"


FAULT_REASONS = frozenset(
    {
        StopReason.DEVICE_DISCONNECTED,
        StopReason.STORAGE_LOW,
        StopReason.ENCODER_ERROR,
        StopReason.CAPTURE_ERROR,
        StopReason.CRASH_RECOVERED,
    }
)


def for_merge(stats: dict[str, Any] | None, complete: bool, recovered: bool) -> str | None:
    """Return the stop reason a merged recording reports.

    Args:
        stats: The writer's stats.json (None when lost).
        complete: The writer finished (``COMPLETE`` marker present).
        recovered: The merge is start-up crash recovery.

    Returns:
        ``crash_recovered`` when recovery salvaged a recording the writer never finished; else
        the reason the session recorded; else ``crash_recovered`` for any other recovery; else
        None (a recording from a version that did not record reasons).
    """
    if recovered and not complete:
        return StopReason.CRASH_RECOVERED.value
    recorded = (stats or {}).get("stop_reason")
    if isinstance(recorded, str) and recorded in {reason.value for reason in StopReason}:
        return recorded
    return StopReason.CRASH_RECOVERED.value if recovered else None
