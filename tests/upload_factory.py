"""Generated recordings for the upload and fleet-index tests: valid manifests, sized payloads."""

from __future__ import annotations

import datetime
import hashlib
import pathlib
import random

from omgrab.recording import manifest as manifest_mod


def make_manifest(
    recording_id: str,
    started: datetime.datetime,
    duration_s: float,
    size_bytes: int,
    frames: int = 100,
    dropped: int | None = 0,
    recovered: bool = False,
) -> manifest_mod.Manifest:
    """A schema-valid manifest of a three-stream recording."""
    stopped = started + datetime.timedelta(seconds=duration_s)

    def stream(name: str, kind: str, codec: str, index: int, n: int) -> manifest_mod.StreamEntry:
        return manifest_mod.StreamEntry(
            name=name,
            kind=kind,
            track_index=index,
            codec=codec,
            config={},
            frames_written=n,
            frames_dropped=dropped,
            frames_out_of_order=0 if dropped is not None else None,
            first_pts_ms=0,
            last_pts_ms=round(duration_s * 1000),
        )

    return manifest_mod.Manifest(
        recording_id=recording_id,
        started_at=started.isoformat().replace("+00:00", "Z"),
        stopped_at=stopped.isoformat().replace("+00:00", "Z"),
        duration_s=duration_s,
        devices=[{"label": "sim-0", "device_type": "simulated"}],
        streams={
            "rgb": stream("rgb", "video", "h264", 0, frames),
            "depth": stream("depth", "video", "ffv1", 1, frames),
            "imu": stream("imu", "data", "ass", 2, frames // 4),
        },
        chunks=[],
        skipped_chunks=[],
        software_version="0.1.0",
        merge_software_version="0.1.0",
        recovered=recovered,
        complete=not recovered,
        streams_inferred=False,
        stats_available=dropped is not None,
        notes=[],
        merged_at=stopped.isoformat().replace("+00:00", "Z"),
        merge_duration_s=0.5,
        output_file=f"{recording_id}.mkv",
        output_size_bytes=size_bytes,
    )


def write_payload(path: pathlib.Path, size: int, seed: int) -> str:
    """Write ``size`` pseudo-random bytes to ``path``; return their SHA-256."""
    rng = random.Random(seed)
    digest = hashlib.sha256()
    with path.open("wb") as f:
        left = size
        while left:
            block = rng.randbytes(min(left, 4 * 1024 * 1024))
            f.write(block)
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


def make_recording(
    directory: pathlib.Path, recording_id: str, size: int, started: datetime.datetime, seed: int = 0
) -> tuple[pathlib.Path, str]:
    """A recording in ``directory``: ``<id>.mkv`` of ``size`` bytes and its manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    mkv = directory / f"{recording_id}.mkv"
    sha = write_payload(mkv, size, seed)
    manifest_mod.write_manifest(
        make_manifest(recording_id, started, 60.0, size), manifest_mod.manifest_path_for(mkv)
    )
    return mkv, sha


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
