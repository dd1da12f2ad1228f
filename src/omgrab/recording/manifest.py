"""The recording manifest: ``<output_dir>/<recording_id>.json`` beside ``<recording_id>.mkv``.

The manifest says what the merged file holds and how it came to be: wall-clock start, per-stream
frames written (counted from the packets actually copied), dropped and out-of-order counts (from
the writer's stats.json), the chunks used and skipped, and whether the recording was salvaged by
crash recovery. Counts the writer could not report (stats.json lost in a crash) are ``null``,
never a guessed zero.

Schema history: version 1 is the only version.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from typing import Any

from omgrab.recording import atomic_files, manifest_v1

# omgrab 0.1.2's manifest names at their published path (docs/compat.md).
from omgrab.recording.manifest_v1 import DeviceInfo as DeviceInfo
from omgrab.recording.manifest_v1 import RecordingManifest as RecordingManifest
from omgrab.recording.manifest_v1 import build_manifest as build_manifest

SCHEMA_VERSION = 1
MANIFEST_SUFFIX = ".json"


class ManifestError(ValueError):
    """A manifest file is missing, malformed, or of an unsupported schema version."""


@dataclasses.dataclass
class ChunkEntry:
    """One chunk file that contributed packets to the merged file.

    Attributes:
        stream: Stream name.
        file: Path relative to the recording directory (``rgb/00001.mkv``).
        size_bytes: Size of the chunk file when merged.
        packets: Packets copied from it.
        packets_discarded: Packets read but not copied (before the first keyframe, not after
            the previous packet, corrupt or empty of timing).
        first_pts_ms: First copied pts, ``None`` if nothing was copied.
        last_pts_ms: Last copied pts.
        truncated: The file ended without a proper end (crash) or reading stopped at an error.
        error: The read error that ended it early, if any.
    """

    stream: str
    file: str
    size_bytes: int
    packets: int
    packets_discarded: int = 0
    first_pts_ms: int | None = None
    last_pts_ms: int | None = None
    truncated: bool = False
    error: str | None = None


@dataclasses.dataclass
class SkippedChunk:
    """A chunk file that could not be used at all, and why."""

    stream: str
    file: str
    reason: str


@dataclasses.dataclass
class QuarantinedFile:
    """A spool file that was not deleted with the spool because the merge did not hold it all.

    Attributes:
        file: Its path relative to the recording's spool directory (``rgb/00002.mkv``).
        quarantine_path: Where it was moved, relative to the manifest's directory
            (``<recording_id>.quarantine/rgb/00002.mkv``).
        reason: Why it was kept.
    """

    file: str
    quarantine_path: str
    reason: str


@dataclasses.dataclass
class StreamEntry:
    """One stream (one track of the merged file).

    Attributes:
        name: Stream name.
        kind: ``"video"`` or ``"data"``.
        track_index: Index of the track in the merged file, ``None`` if no chunk was usable.
        codec: Codec of the chunks (``h264``, ``ffv1``, ``ass``).
        config: The stream config from recording.json; inferred fields when it was missing.
        frames_written: Packets copied into the merged file (counted during the merge).
        frames_dropped: Items the writer dropped (stats.json), ``None`` if unknown.
        frames_out_of_order: Items the writer rejected as out of order, ``None`` if unknown.
        frames_missed: Items lost before the writer (capture gaps, see
            ``omgrab.recording.capture_gaps``), ``None`` if unknown (older recordings).
        capture_gaps: The capture side's gap report: ``gaps`` (count), ``gap_total_ms``,
            ``gap_longest_ms``, ``gap_list`` (``pts_ms``, ``duration_ms``, ``frames_missed``,
            ``cause``), ``None`` if unknown.
        packets_discarded: Packets read from chunks but not copied by the merge.
        first_pts_ms: First pts in the merged file (ms since the recording start).
        last_pts_ms: Last pts in the merged file.
        bytes_written: Payload bytes copied.
        chunks: Files of the chunks used, in order.
        encoder: The encoder settings the writer applied and the crash-loss bound they imply
            (``encoder_options.EncoderPlan.to_dict``), ``None`` for data streams and
            recordings made before it was recorded.
        writer: Writer-side counters from stats.json: ``drops`` by reason, ``backlog_max_s``,
            ``behind_reported_s``, ``encoder_delay_frames`` (measured); ``None`` if unknown.
    """

    name: str
    kind: str
    track_index: int | None
    codec: str | None
    config: dict[str, Any]
    frames_written: int
    frames_dropped: int | None
    frames_out_of_order: int | None
    frames_missed: int | None = None
    capture_gaps: dict[str, Any] | None = None
    packets_discarded: int = 0
    first_pts_ms: int | None = None
    last_pts_ms: int | None = None
    bytes_written: int = 0
    chunks: list[str] = dataclasses.field(default_factory=list)
    encoder: dict[str, Any] | None = None
    writer: dict[str, Any] | None = None


@dataclasses.dataclass
class Manifest:
    """Everything known about one merged recording.

    Attributes:
        recording_id: The recording id.
        started_at: Wall-clock time of pts 0 (ISO 8601 UTC), ``None`` if recording.json was lost.
        stopped_at: When the writer stopped (stats.json); estimated from the last packet if the
            writer never recorded it (see ``notes``).
        duration_s: From pts 0 to the end of the last packet of any stream.
        devices: Capture devices (``{"label", "device_type"}``) from recording.json.
        streams: Streams keyed by name, in track order.
        chunks: Chunks used.
        skipped_chunks: Chunks that could not be read at all.
        software_version: omgrab version that recorded (recording.json).
        merge_software_version: omgrab version that merged.
        recovered: Produced by start-up crash recovery rather than a normal stop.
        complete: The writer finished the recording (``COMPLETE`` marker present): every item
            handed to it up to the stop is in the file. It does not say the stop was wanted:
            ``stop_reason`` does (``requested``/``shutdown`` or a fault).
        streams_inferred: recording.json was missing, stream kinds/configs come from the chunks.
        stats_available: stats.json was readable (otherwise dropped/out-of-order are ``None``).
        notes: Human-readable remarks about anything missing or repaired.
        merged_at: When the merge finished (ISO 8601 UTC).
        merge_duration_s: Wall time the merge took.
        output_file: File name of the merged MKV (same directory as the manifest).
        output_size_bytes: Size of the merged MKV.
        schema_version: Manifest schema version.
        stop_reason: Why the recording stopped (``omgrab.recording.stop_reason``), ``None`` for
            recordings from versions that did not record it.
        interruptions: Device interruptions during the recording (``reason``, ``pts_ms``,
            ``duration_ms``, ``recovered``, ``detail``).
        spool_directory: Name of the spool directory merged (tells two spools with the same
            recording id apart); ``None`` in manifests written before it was recorded.
        quarantined: Spool files kept in the quarantine folder when the spool was cleaned up.
    """

    recording_id: str
    started_at: str | None
    stopped_at: str | None
    duration_s: float | None
    devices: list[dict[str, Any]]
    streams: dict[str, StreamEntry]
    chunks: list[ChunkEntry]
    skipped_chunks: list[SkippedChunk]
    software_version: str | None
    merge_software_version: str
    recovered: bool
    complete: bool
    streams_inferred: bool
    stats_available: bool
    notes: list[str]
    merged_at: str
    merge_duration_s: float
    output_file: str
    output_size_bytes: int
    schema_version: int = SCHEMA_VERSION
    stop_reason: str | None = None
    interruptions: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    spool_directory: str | None = None
    quarantined: list[QuarantinedFile] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the manifest as a JSON-ready dict (schema version first).

        Each stream entry also carries the fields omgrab 0.1.2's manifest had per stream
        (``width``, ``height``, ``fps``, ``bitrate``, ``pixel_format``, ``metadata`` for video;
        ``metadata`` for data) and the data streams are listed under ``sensor_streams`` too,
        as 0.1.2 did, so code written for it reads this manifest unchanged.
        """
        doc = dataclasses.asdict(self)
        version = doc.pop("schema_version")
        sensor_streams = {}
        for name, entry in doc["streams"].items():
            published = _published_stream_fields(entry)
            entry.update({k: v for k, v in published.items() if k not in entry})
            if entry["kind"] == "data":
                sensor_streams[name] = {"codec": entry["config"].get("codec"), **published}
        return {"schema_version": version, **doc, "sensor_streams": sensor_streams}


def _published_stream_fields(entry: dict[str, Any]) -> dict[str, Any]:
    """The per-stream fields of omgrab 0.1.2's manifest, from the stream's config."""
    config = entry.get("config") or {}
    fields: dict[str, Any] = {"metadata": config.get("metadata") or {}}
    if entry.get("kind") == "video":
        fps = config.get("fps")
        fields.update(
            width=config.get("width"),
            height=config.get("height"),
            fps=float(fps) if isinstance(fps, int | float) and not isinstance(fps, bool) else None,
            bitrate=config.get("bitrate"),
            pixel_format=config.get("output_pixel_format", config.get("pixel_format")),
        )
    return fields


def manifest_path_for(mkv_path: str | os.PathLike[str]) -> pathlib.Path:
    """Return the manifest path that belongs beside the merged file ``mkv_path``."""
    return pathlib.Path(mkv_path).with_suffix(MANIFEST_SUFFIX)


def manifest_bytes(manifest: Manifest) -> bytes:
    """Return the manifest's file content (indented UTF-8 JSON)."""
    return json.dumps(manifest.to_dict(), indent=2, ensure_ascii=False).encode() + b"\n"


def write_manifest(
    manifest: Manifest | manifest_v1.RecordingManifest, path: str | os.PathLike[str]
) -> pathlib.Path:
    """Write ``manifest`` to ``path`` atomically (temp file, fsync, rename, directory fsync).

    A 0.1.2 ``RecordingManifest`` is written as 0.1.2 did: ``path`` is then the output
    directory and the file ``<recording_id>.json`` in it.

    Returns:
        The path written.
    """
    if isinstance(manifest, manifest_v1.RecordingManifest):
        return manifest_v1.write_manifest_v1(manifest, pathlib.Path(path))
    target = pathlib.Path(path)
    atomic_files.write_bytes_atomic(target, manifest_bytes(manifest))
    return target


def _field(doc: dict[str, Any], key: str, types: Any, where: str) -> Any:
    if key not in doc:
        raise ManifestError(f"{where}: missing field {key!r}")
    value = doc[key]
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise ManifestError(f"{where}: field {key!r} must not be a boolean")
    if not isinstance(value, types):
        raise ManifestError(f"{where}: field {key!r} has wrong type {type(value).__name__}")
    return value


def _build(cls: Any, doc: Any, where: str, nested: dict[str, Any] | None = None) -> Any:
    if not isinstance(doc, dict):
        raise ManifestError(f"{where}: expected an object, got {type(doc).__name__}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in doc:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ManifestError(f"{where}: missing field {f.name!r}")
            continue
        kwargs[f.name] = doc[f.name]
    for key, check in (nested or {}).items():
        if key in kwargs:
            kwargs[key] = check(kwargs[key])
    try:
        return cls(**kwargs)
    except TypeError as exc:  # pragma: no cover - fields are checked above
        raise ManifestError(f"{where}: {exc}") from exc


_OPT_INT = (int, type(None))
_OPT_STR = (str, type(None))
_OPT_NUM = (int, float, type(None))


def manifest_from_dict(doc: Any, source: str = "manifest") -> Manifest:
    """Build a :class:`Manifest` from parsed JSON, checking the schema version and field types.

    Raises:
        ManifestError: wrong schema version, missing field or wrong type (names the field).
    """
    if not isinstance(doc, dict):
        raise ManifestError(f"{source}: top level must be a JSON object")
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ManifestError(
            f"{source}: unsupported manifest schema_version {version!r} "
            f"(this omgrab reads version {SCHEMA_VERSION})"
        )
    for key, types in (
        ("recording_id", str),
        ("started_at", _OPT_STR),
        ("stopped_at", _OPT_STR),
        ("duration_s", _OPT_NUM),
        ("devices", list),
        ("streams", dict),
        ("chunks", list),
        ("skipped_chunks", list),
        ("software_version", _OPT_STR),
        ("merge_software_version", str),
        ("recovered", bool),
        ("complete", bool),
        ("streams_inferred", bool),
        ("stats_available", bool),
        ("notes", list),
        ("merged_at", str),
        ("merge_duration_s", (int, float)),
        ("output_file", str),
        ("output_size_bytes", int),
    ):
        _field(doc, key, types, source)

    def streams(value: dict[str, Any]) -> dict[str, StreamEntry]:
        out = {}
        for name, entry in value.items():
            where = f"{source}: streams[{name!r}]"
            if not isinstance(entry, dict):
                raise ManifestError(f"{where}: expected an object")
            for key, types in (
                ("kind", str),
                ("track_index", _OPT_INT),
                ("frames_written", int),
                ("frames_dropped", _OPT_INT),
                ("frames_out_of_order", _OPT_INT),
                ("config", dict),
            ):
                _field(entry, key, types, where)
            out[name] = _build(StreamEntry, entry, where)
        return out

    def chunks(value: list[Any]) -> list[ChunkEntry]:
        return [_build(ChunkEntry, c, f"{source}: chunks[{i}]") for i, c in enumerate(value)]

    def skipped(value: list[Any]) -> list[SkippedChunk]:
        return [
            _build(SkippedChunk, c, f"{source}: skipped_chunks[{i}]") for i, c in enumerate(value)
        ]

    def quarantined(value: Any) -> list[QuarantinedFile]:
        if not isinstance(value, list):
            raise ManifestError(f"{source}: field 'quarantined' has wrong type")
        return [
            _build(QuarantinedFile, c, f"{source}: quarantined[{i}]") for i, c in enumerate(value)
        ]

    if not isinstance(doc.get("spool_directory"), _OPT_STR):
        raise ManifestError(f"{source}: field 'spool_directory' has wrong type")
    return _build(
        Manifest,
        doc,
        source,
        {
            "streams": streams,
            "chunks": chunks,
            "skipped_chunks": skipped,
            "quarantined": quarantined,
        },
    )


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read and validate the manifest at ``path``.

    Raises:
        ManifestError: the file is missing, is not JSON, or does not match the schema.
    """
    file = pathlib.Path(path)
    try:
        raw = file.read_bytes()
    except FileNotFoundError as exc:
        raise ManifestError(f"manifest {file} does not exist") from exc
    except OSError as exc:
        raise ManifestError(f"manifest {file} cannot be read: {exc}") from exc
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise ManifestError(f"manifest {file} is not valid JSON: {exc}") from exc
    return manifest_from_dict(doc, str(file))
