"""The capture side's part of stats.json, as the merge turns it into tags and manifest fields.

The recording session adds to the writer's stats.json (see
``RecordingSession.capture_report``)::

    "stop_reason": "requested",
    "interruptions": [{"reason", "pts_ms", "duration_ms", "recovered", "detail"}],
    "capture": {"<stream>": {"items_captured", "frames_missed", "gaps", "gap_total_ms",
                             "gap_longest_ms", "nominal_period_ms", "gap_list": [...],
                             "gap_list_truncated"}}

Spools written by older versions (or whose stats.json was lost) have none of these keys: the
functions here then answer ``None`` / ``"unknown"``, never a guessed zero.
"""

from __future__ import annotations

from typing import Any

from omgrab.recording import stop_reason as stop_reason_mod

UNKNOWN = "unknown"


def stream_capture(stats: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    """Return stream ``name``'s capture entry of stats.json, or None when it has none."""
    capture = (stats or {}).get("capture")
    entry = capture.get(name) if isinstance(capture, dict) else None
    return dict(entry) if isinstance(entry, dict) else None


def frames_missed(stats: dict[str, Any] | None, name: str) -> int | None:
    """Frames stream ``name`` lost before the writer, None when unknown."""
    value = (stream_capture(stats, name) or {}).get("frames_missed")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def interruptions(stats: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Device interruptions the session recorded (empty when none or unknown)."""
    value = (stats or {}).get("interruptions")
    return [dict(v) for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def track_tags(stats: dict[str, Any] | None, name: str) -> dict[str, str]:
    """MKV track tags for stream ``name``: frames missed and the capture gap summary."""
    entry = stream_capture(stats, name)
    if entry is None:
        return {"FRAMES_MISSED": UNKNOWN, "CAPTURE_GAPS": UNKNOWN}
    return {
        "FRAMES_MISSED": str(entry.get("frames_missed", UNKNOWN)),
        "CAPTURE_GAPS": str(entry.get("gaps", UNKNOWN)),
        "CAPTURE_GAP_TOTAL_MS": str(entry.get("gap_total_ms", UNKNOWN)),
        "CAPTURE_GAP_LONGEST_MS": str(entry.get("gap_longest_ms", UNKNOWN)),
    }


def container_tags(stats: dict[str, Any] | None, complete: bool, recovered: bool) -> dict[str, str]:
    """Global MKV tags: ``STOP_REASON`` (``unknown`` for recordings that did not record one)."""
    reason = stop_reason_mod.for_merge(stats, complete, recovered)
    return {"STOP_REASON": reason or UNKNOWN}
