"""Reads a spool recording directory (docs/spool-format.md) for merge and recovery.

Everything here is tolerant: a missing or half-written ``recording.json`` / ``stats.json`` is
reported, not fatal, because recovery must salvage whatever a crash left behind.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
from typing import Any

from omgrab.recording import ids

logger = logging.getLogger(__name__)

RECORDING_JSON = "recording.json"
STATS_JSON = "stats.json"
COMPLETE_MARKER = "COMPLETE"
CHUNK_SUFFIX = ".mkv"


@dataclasses.dataclass
class StreamSource:
    """One stream of a spool recording.

    Attributes:
        name: Stream name (its sub-directory).
        kind: ``"video"`` or ``"data"``; ``None`` when it must be inferred from the chunks.
        config: The stream config from recording.json (empty when inferred).
        chunks: Chunk files in chunk-id order.
    """

    name: str
    kind: str | None
    config: dict[str, Any]
    chunks: list[pathlib.Path]

    @property
    def metadata(self) -> dict[str, str]:
        """The stream metadata of the config (``'type'``, ``'TITLE'``, ...)."""
        meta = self.config.get("metadata") or {}
        return {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}


@dataclasses.dataclass
class SpoolRecording:
    """What a spool recording directory holds.

    Attributes:
        directory: The recording directory.
        recording_id: From recording.json, else the directory name.
        recording: Parsed recording.json, or ``None`` if missing/unreadable.
        stats: Parsed stats.json, or ``None`` if missing/unreadable.
        complete: Whether the ``COMPLETE`` marker exists.
        streams: Streams, those listed in recording.json first in its order, then any
            stream directory recording.json does not know.
        problems: Human-readable notes about what was missing or malformed.
    """

    directory: pathlib.Path
    recording_id: str
    recording: dict[str, Any] | None
    stats: dict[str, Any] | None
    complete: bool
    streams: list[StreamSource]
    problems: list[str]

    def stream_stats(self, name: str) -> dict[str, Any] | None:
        """Return stats.json's entry for stream ``name`` if there is a usable one."""
        if not self.stats:
            return None
        streams = self.stats.get("streams")
        entry = streams.get(name) if isinstance(streams, dict) else None
        return entry if isinstance(entry, dict) else None


def _load_json(path: pathlib.Path, problems: list[str]) -> dict[str, Any] | None:
    if not path.exists():
        problems.append(f"{path.name} missing")
        return None
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        problems.append(f"{path.name} unreadable ({exc})")
        return None
    if not isinstance(doc, dict):
        problems.append(f"{path.name} is not a JSON object")
        return None
    return doc


def chunk_files(stream_dir: pathlib.Path) -> list[pathlib.Path]:
    """Return the chunk files of one stream directory, sorted by chunk id."""
    return sorted(
        (p for p in stream_dir.iterdir() if p.suffix == CHUNK_SUFFIX and p.is_file()),
        key=lambda p: (len(p.stem), p.stem),
    )


def looks_like_recording(directory: pathlib.Path) -> bool:
    """Return whether ``directory`` is a spool recording (metadata or chunk files present)."""
    if not directory.is_dir():
        return False
    if (directory / RECORDING_JSON).exists() or (directory / COMPLETE_MARKER).exists():
        return True
    return any(sub.is_dir() and any(sub.glob(f"*{CHUNK_SUFFIX}")) for sub in directory.iterdir())


def read_spool_recording(directory: str | pathlib.Path) -> SpoolRecording:
    """Read a spool recording directory.

    Args:
        directory: ``<spool>/<recording_id>``.

    Returns:
        The recording's layout; see :class:`SpoolRecording`.

    Raises:
        FileNotFoundError: ``directory`` does not exist or is not a directory.
        ValueError: neither recording.json nor the directory name is a safe recording id.
    """
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"recording directory {directory} does not exist")
    problems: list[str] = []
    recording = _load_json(directory / RECORDING_JSON, problems)
    stats = _load_json(directory / STATS_JSON, problems)
    recording_id = directory.name
    if recording is not None:
        rid = recording.get("recording_id")
        try:
            recording_id = ids.check_recording_id(rid)
        except ValueError as exc:
            problems.append(f"recording.json: {exc}; using the directory name")
    # the directory name is a single path component already; it only has to be a safe name
    ids.check_recording_id(recording_id)
    streams: list[StreamSource] = []
    known: set[str] = set()
    declared = recording.get("streams") if recording is not None else None
    if recording is not None and not isinstance(declared, dict):
        problems.append("recording.json has no 'streams' object; streams inferred from files")
        declared = None
    if isinstance(declared, dict):
        for name, entry in declared.items():
            try:
                ids.check_path_component("stream name", name)
            except ValueError as exc:
                problems.append(f"recording.json: {exc}; stream ignored")
                continue
            entry = entry if isinstance(entry, dict) else {}
            kind = entry.get("kind")
            config = entry.get("config")
            if kind not in ("video", "data"):
                problems.append(f"stream {name!r} has unknown kind {kind!r}; inferred")
                kind = None
            stream_dir = directory / name
            chunks = chunk_files(stream_dir) if stream_dir.is_dir() else []
            streams.append(
                StreamSource(name, kind, config if isinstance(config, dict) else {}, chunks)
            )
            known.add(name)
    for sub in sorted(p for p in directory.iterdir() if p.is_dir()):
        if sub.name in known:
            continue
        chunks = chunk_files(sub)
        if chunks:
            if recording is not None:
                problems.append(f"stream directory {sub.name!r} not in recording.json")
            streams.append(StreamSource(sub.name, None, {}, chunks))
    return SpoolRecording(
        directory=directory,
        recording_id=recording_id,
        recording=recording,
        stats=stats,
        complete=(directory / COMPLETE_MARKER).exists(),
        streams=streams,
        problems=problems,
    )
