"""The rule for a spool recording with nothing in it: when it may be removed, and why.

A recording whose process died before its first packet reached a chunk (SIGKILL or power loss
in the first fraction of a second) leaves a spool directory with ``recording.json``, the
writer lock and perhaps a bare-header ``<chunk>.mkv.part``: nothing to merge. Kept, it is
rescanned and reported at every start for ever. It is removed, by a ``cleanup=True``
recovery, only when every entry in it is one of ours and holds no packet:

* ``recording.json``, ``COMPLETE``, ``.writers.lock`` and the writer's ``.<name>.tmp`` metadata
  temporaries;
* ``stats.json`` when it is valid JSON and counts no written item (``frames_written`` 0 or
  missing in every stream);
* stream sub-directories holding nothing, or only ``.mkv.part`` files that libavformat reads as a
  Matroska header without any packet (:func:`omgrab.recording.spool_cleanup.header_only`).

Anything else (a ``.mkv`` chunk, even empty; a ``.part`` with a cluster; an unknown file; a
nested directory; a symlink; unreadable stats) keeps the directory, with the reason returned.
The caller holds the recording's writer lock exclusively (no live writer) while checking and
removing; the files are removed one by one, then the directories, and the spool root is
fsynced.
"""

from __future__ import annotations

import contextlib
import json
import logging
import pathlib
from typing import Any

from omgrab.recording import atomic_files, spool_cleanup, spool_lock, spool_reader

logger = logging.getLogger(__name__)

_METADATA = frozenset(
    {spool_reader.RECORDING_JSON, spool_reader.COMPLETE_MARKER, spool_lock.LOCK_FILE}
)
_TEMPS = frozenset(
    f".{name}.tmp" for name in (spool_reader.RECORDING_JSON, spool_reader.STATS_JSON)
)
_PART_SUFFIX = ".mkv.part"


def _written(doc: Any) -> int:
    """Sum of every ``frames_written`` count in a ``stats.json`` document."""
    if isinstance(doc, dict):
        own = doc.get("frames_written")
        total = own if isinstance(own, int) and not isinstance(own, bool) else 0
        return total + sum(_written(v) for k, v in doc.items() if k != "frames_written")
    if isinstance(doc, list):
        return sum(_written(v) for v in doc)
    return 0


def _stats_problem(path: pathlib.Path) -> str | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"{path.name} cannot be read ({exc})"
    written = _written(doc)
    return f"{path.name} counts {written} written items" if written else None


def _stream_dir_problem(directory: pathlib.Path) -> str | None:
    for entry in sorted(directory.iterdir()):
        name = f"{directory.name}/{entry.name}"
        if entry.is_symlink() or not entry.is_file():
            return f"{name} is not a plain file"
        if not entry.name.endswith(_PART_SUFFIX):
            return f"{name} is not an unfinished chunk"
        if not spool_cleanup.header_only(entry):
            return f"{name} may hold packets"
    return None


def keep_reason(directory: pathlib.Path) -> str | None:
    """Why the recording in ``directory`` must be kept, or None when it holds nothing.

    See the module docstring for the rule.
    """
    for entry in sorted(directory.iterdir()):
        if entry.is_symlink():
            return f"{entry.name} is a symlink"
        if entry.is_dir():
            problem = _stream_dir_problem(entry)
        elif entry.name in _METADATA or entry.name in _TEMPS:
            problem = None
        elif entry.name == spool_reader.STATS_JSON:
            problem = _stats_problem(entry)
        else:
            problem = f"{entry.name} is not recording metadata"
        if problem is not None:
            return problem
    return None


def remove(directory: pathlib.Path) -> list[str]:
    """Remove the empty recording ``directory`` (caller checked :func:`keep_reason`).

    Returns:
        The removed files, relative to ``directory``.

    Raises:
        OSError: removing failed (names the file); what is left stays for a later pass.
    """
    removed = []
    for path in sorted(directory.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        rel = path.relative_to(directory).as_posix()
        if path.is_dir():
            path.rmdir()
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            removed.append(rel)
    directory.rmdir()
    atomic_files.fsync_path(directory.parent)
    return removed
