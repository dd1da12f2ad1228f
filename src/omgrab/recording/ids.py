"""Recording and chunk identifiers."""

from __future__ import annotations

import datetime
import secrets

#: Longest chunk id accepted (UTF-8 bytes); chunk ids become file names.
MAX_CHUNK_ID_BYTES = 64


def new_recording_id(started_at: datetime.datetime | None = None) -> str:
    """Return a unique, sortable recording id such as ``2026-11-22T02-40-11.123Z-3f9a``.

    The time part (UTC, millisecond resolution) sorts recordings chronologically; a random
    suffix keeps two recordings started in the same millisecond apart.

    Args:
        started_at: Wall-clock start (tz-aware); now when omitted.

    Returns:
        The id, safe as a file or directory name.
    """
    when = started_at if started_at is not None else datetime.datetime.now(datetime.UTC)
    return f"{filesystem_timestamp(when)}-{secrets.token_hex(2)}"


def filesystem_timestamp(when: datetime.datetime) -> str:
    """Return ``when`` as ``2026-11-22T02-40-11.123Z``: UTC, ms, no colons (FAT/exFAT/SMB-safe).

    Raises:
        ValueError: ``when`` is naive.
    """
    if when.tzinfo is None:
        raise ValueError(f"started_at must be timezone-aware, got {when!r}")
    utc = when.astimezone(datetime.UTC)
    return utc.strftime("%Y-%m-%dT%H-%M-%S") + f".{utc.microsecond // 1000:03d}Z"


def default_chunk_id(sequence: int) -> str:
    """Return the default id of a stream's ``sequence``-th chunk (1-based): ``00001``, ..."""
    if sequence < 1:
        raise ValueError(f"chunk sequence numbers start at 1, got {sequence}")
    return f"{sequence:05d}"


def check_path_component(kind: str, value: object) -> str:
    """Return ``value`` if it is usable as one file or directory name, else raise ValueError.

    Args:
        kind: What the value names, for the error message (e.g. ``'stream name'``).
        value: The candidate name.

    Returns:
        The validated name.
    """
    if not isinstance(value, str) or not value:
        raise ValueError(f"{kind} must be a non-empty string, got {value!r}")
    if value in (".", "..") or value.startswith(".") or any(c in value for c in "/\\\0"):
        raise ValueError(
            f"{kind} {value!r} cannot be used as a file name (no '/', '\\', NUL or leading '.')"
        )
    if len(value.encode("utf-8")) > MAX_CHUNK_ID_BYTES:
        raise ValueError(f"{kind} {value!r} is longer than {MAX_CHUNK_ID_BYTES} UTF-8 bytes")
    return value
