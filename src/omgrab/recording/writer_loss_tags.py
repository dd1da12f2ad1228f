"""MKV track tags for the items a stream's writer lost, from its entry in the spool's stats.json.

The merge writes ``FRAMES_DROPPED`` and ``FRAMES_OUT_OF_ORDER`` itself and the capture side's
counts through ``capture_report.track_tags``; this module adds what the writer knows beyond
them (``StreamStats.to_dict``), so every lost item is counted in the merged file too:

* ``FRAMES_INVALID``: items rejected for their shape, dtype, type or size;
* ``FRAMES_DROPPED_<REASON>``: ``frames_dropped`` split by reason, one tag for each of
  ``stream_queue.DROP_REASONS`` (``RING_FULL``, ``BACKLOG_CAP``, ``BEFORE_ORIGIN``,
  ``AFTER_STOP``, ``WORKER_FAILED``);
* ``BACKLOG_MAX_S``: the longest backlog (capture time queued, not yet encoded) seen;
* ``BEHIND_REALTIME_S``: the backlog when the stream was reported as falling behind real time,
  ``none`` if it never was.

A spool whose stats.json was lost, or one written by an older version without a field, gets
``unknown`` for that tag: never a guessed zero.
"""

from __future__ import annotations

from typing import Any

from omgrab.recording import stream_queue

UNKNOWN = "unknown"
NEVER = "none"


def _count(value: Any) -> str:
    """A non-negative int counter as tag text, ``unknown`` for anything else."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    return UNKNOWN


def _seconds(value: Any) -> str:
    """Seconds as tag text with ms resolution, ``unknown`` for anything but a number >= 0."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return f"{value:.3f}"
    return UNKNOWN


def track_tags(stream_stats: dict[str, Any] | None) -> dict[str, str]:
    """Return the writer-side loss tags of one stream.

    Args:
        stream_stats: The stream's entry of stats.json (``SpoolInfo.stream_stats(name)``), or
            None when there is none.

    Returns:
        Tag name to text, every tag of the module docstring present.
    """
    entry = stream_stats or {}
    drops = entry.get("drops")
    drops = drops if isinstance(drops, dict) else {}
    tags = {"FRAMES_INVALID": _count(entry.get("frames_invalid"))}
    for reason in stream_queue.DROP_REASONS:
        tags[f"FRAMES_DROPPED_{reason.upper()}"] = _count(drops.get(reason))
    tags["BACKLOG_MAX_S"] = _seconds(entry.get("backlog_max_s"))
    if "behind_reported_s" not in entry:
        tags["BEHIND_REALTIME_S"] = UNKNOWN
    elif entry["behind_reported_s"] is None:
        tags["BEHIND_REALTIME_S"] = NEVER
    else:
        tags["BEHIND_REALTIME_S"] = _seconds(entry["behind_reported_s"])
    return tags
