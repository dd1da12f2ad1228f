"""Atomic writes of the spool's small files (``recording.json``, ``stats.json``, ``COMPLETE``).

See ``docs/spool-format.md``. Files are written to a temporary name, fsynced and renamed, so
a crash leaves either the old or the new content, never a torn file.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
from typing import Any

import orjson

RECORDING_FILE = "recording.json"
STATS_FILE = "stats.json"
COMPLETE_FILE = "COMPLETE"
SCHEMA_VERSION = 1


def write_json_atomic(path: pathlib.Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically (temp file, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    # Key order is meaningful (recording.json lists streams in track order): never sort.
    payload = orjson.dumps(data, option=orjson.OPT_INDENT_2)
    try:
        with open(tmp, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_path(path.parent)


def write_complete_marker(directory: pathlib.Path) -> None:
    """Create the empty ``COMPLETE`` marker durably."""
    marker = directory / COMPLETE_FILE
    with open(marker, "wb") as fh:
        os.fsync(fh.fileno())
    fsync_path(directory)


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a file's or directory's data and metadata to disk; errors are ignored."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
