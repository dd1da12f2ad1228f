"""Recording and chunk identifiers."""

from __future__ import annotations

import datetime
import re
import secrets

#: Longest chunk id accepted (UTF-8 bytes); chunk ids become file names.
MAX_CHUNK_ID_BYTES = 64

#: Longest recording id accepted from disk (it names the merged file and its manifest).
MAX_RECORDING_ID_CHARS = 128

_RECORDING_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


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


def check_recording_id(value: object) -> str:
    """Return ``value`` if it is a safe recording id, else raise ValueError naming the problem.

    A recording id read from disk becomes a file name in the output directory, so only
    ``A-Z a-z 0-9 . _ + -`` are accepted, starting with a letter or digit (no separators, no
    ``..``, no hidden names), at most :data:`MAX_RECORDING_ID_CHARS` characters.
    """
    if not isinstance(value, str) or not value:
        raise ValueError(f"recording id must be a non-empty string, got {value!r}")
    if len(value) > MAX_RECORDING_ID_CHARS:
        raise ValueError(
            f"recording id {value[:40]!r}... is longer than {MAX_RECORDING_ID_CHARS} characters"
        )
    if not _RECORDING_ID.fullmatch(value) or ".." in value:
        raise ValueError(
            f"recording id {value!r} is not a safe file name (letters, digits, '.', '_', '+', "
            "'-', starting with a letter or digit, no '..')"
        )
    return value
