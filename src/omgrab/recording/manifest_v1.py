"""omgrab 0.1.2's manifest sidecar (``RecordingManifest``, schema 1), kept for its users.

This package's own manifest is :class:`omgrab.recording.manifest.Manifest` (richer: chunks,
per-stream counts, losses). Code written for 0.1.2 builds and writes the 0.1.2 document with
the names here, which :mod:`omgrab.recording.manifest` re-exports at their published path.

Files: :func:`write_manifest_v1` writes ``<output_dir>/<recording_id>.json`` atomically
(temporary file, fsync, rename, directory fsync); nothing else is written or deleted.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import pathlib
from typing import Any

from omgrab.recording import atomic_files
from omgrab.recording import config as config_mod

#: Version of the 0.1.2 manifest document.
SCHEMA_VERSION_V1 = 1


@dataclasses.dataclass(frozen=True)
class DeviceInfo:
    """A capture device as listed in the manifest.

    Attributes:
        label: Human-readable device label.
        device_type: Device type identifier, or None when unknown.
    """

    label: str
    device_type: str | None


@dataclasses.dataclass(frozen=True)
class RecordingManifest:
    """The 0.1.2 metadata sidecar of a merged recording.

    Attributes:
        schema_version: Document version (1).
        recording_id: Recording identifier.
        started_at: ISO 8601 start time, or None (recovered recordings).
        stopped_at: ISO 8601 stop time, or None.
        duration_s: Duration in seconds, or None.
        devices: Devices recorded.
        streams: Video stream settings by stream name.
        sensor_streams: Data stream settings by stream name.
        output_file: File name of the merged MKV.
        recovered: True when merged by boot-time recovery.
    """

    schema_version: int
    recording_id: str
    started_at: str | None
    stopped_at: str | None
    duration_s: float | None
    devices: list[DeviceInfo]
    streams: dict[str, dict[str, Any]]
    sensor_streams: dict[str, dict[str, Any]]
    output_file: str
    recovered: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON document."""
        return dataclasses.asdict(self)


def build_manifest(
    recording_id: str,
    started_at: datetime.datetime | None,
    stopped_at: datetime.datetime | None,
    duration_s: float | None,
    devices: list[DeviceInfo],
    stream_configs_map: dict[str, config_mod.VideoStreamConfig],
    sensor_stream_configs_map: dict[str, config_mod.DataStreamConfig],
    output_file: str,
    recovered: bool = False,
) -> RecordingManifest:
    """Build the 0.1.2 manifest of a recording (stream settings as consumers need them)."""
    return RecordingManifest(
        schema_version=SCHEMA_VERSION_V1,
        recording_id=recording_id,
        started_at=started_at.isoformat() if started_at else None,
        stopped_at=stopped_at.isoformat() if stopped_at else None,
        duration_s=duration_s,
        devices=list(devices),
        streams={
            name: {
                "width": cfg.width,
                "height": cfg.height,
                "fps": float(cfg.fps),
                "codec": cfg.codec,
                "bitrate": cfg.bitrate,
                "pixel_format": cfg.output_pixel_format,
                "metadata": cfg.metadata,
            }
            for name, cfg in stream_configs_map.items()
        },
        sensor_streams={
            name: {"codec": cfg.codec, "metadata": cfg.metadata}
            for name, cfg in sensor_stream_configs_map.items()
        },
        output_file=output_file,
        recovered=recovered,
    )


def write_manifest_v1(
    recording_manifest: RecordingManifest, output_dir: pathlib.Path
) -> pathlib.Path:
    """Write ``<output_dir>/<recording_id>.json`` atomically and durably; return its path."""
    output_dir = pathlib.Path(output_dir)
    path = output_dir / f"{recording_manifest.recording_id}.json"
    payload = json.dumps(recording_manifest.to_dict(), indent=2).encode()
    atomic_files.write_bytes_atomic(path, payload)
    return path
