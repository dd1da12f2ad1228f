"""Builds spool recording directories exactly as docs/spool-format.md describes, with PyAV.

Used by the merge / recovery / manifest tests (and the merge benchmark) so they do not depend on
the ChunkedWriter. Frame contents are a pure function of the stream name and pts, so a test can
regenerate the expected pixels of any frame after a merge.
"""

from __future__ import annotations

import dataclasses
import datetime
import fractions
import json
import os
import pathlib
from collections.abc import Iterable, Sequence
from typing import Any

import av
import numpy as np

MS = fractions.Fraction(1, 1000)
STARTED_AT = datetime.datetime(2026, 11, 22, 2, 40, 11, 123456, tzinfo=datetime.UTC)


@dataclasses.dataclass
class StreamSpec:
    """One stream of a synthetic recording."""

    name: str
    kind: str  # "video" or "data"
    codec: str
    width: int = 0
    height: int = 0
    fps: int = 25
    input_pixel_format: str = "rgb24"
    output_pixel_format: str = "yuv420p"
    bitrate: int = 2_000_000
    gop: int | None = None
    stream_options: dict[str, str] = dataclasses.field(default_factory=dict)
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)

    def config(self) -> dict[str, Any]:
        """Return the stream config as recording.json stores it."""
        if self.kind == "data":
            return {"codec": self.codec, "metadata": dict(self.metadata)}
        return {
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "codec": self.codec,
            "bitrate": self.bitrate,
            "input_pixel_format": self.input_pixel_format,
            "output_pixel_format": self.output_pixel_format,
            "stream_options": dict(self.stream_options),
            "metadata": dict(self.metadata),
        }


def rgb_spec(width: int = 64, height: int = 48, fps: int = 25, **kw: Any) -> StreamSpec:
    """The RGB stream: libx264 yuv420p without B-frames."""
    meta = kw.pop("metadata", {"type": "rgb", "TITLE": "RGB camera"})
    return StreamSpec(
        "rgb",
        "video",
        "libx264",
        width,
        height,
        fps,
        "rgb24",
        "yuv420p",
        metadata=meta,
        **kw,
    )


def depth_spec(width: int = 32, height: int = 24, fps: int = 25, **kw: Any) -> StreamSpec:
    """The depth stream: FFV1 gray16le (lossless)."""
    meta = kw.pop("metadata", {"type": "depth", "units": "mm"})
    return StreamSpec(
        "depth",
        "video",
        "ffv1",
        width,
        height,
        fps,
        "gray16le",
        "gray16le",
        metadata=meta,
        **kw,
    )


def imu_spec(**kw: Any) -> StreamSpec:
    """The IMU stream: compact JSON items in an `ass` text track."""
    meta = kw.pop("metadata", {"type": "imu", "TITLE": "IMU"})
    return StreamSpec("imu", "data", "ass", metadata=meta, **kw)


def rgb_frame(pts: int, width: int, height: int) -> np.ndarray:
    """Deterministic RGB frame for ``pts`` (smooth so x264 stays small and fast)."""
    y = np.arange(height, dtype=np.uint16)[:, None]
    x = np.arange(width, dtype=np.uint16)[None, :]
    base = (x * 3 + y * 2 + pts // 8) % 256
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[..., 0] = base
    frame[..., 1] = (base + 85) % 256
    frame[..., 2] = (pts // 40 * 7) % 256
    return frame


def depth_frame(pts: int, width: int, height: int) -> np.ndarray:
    """Deterministic 16-bit depth frame for ``pts`` using the full 16-bit range."""
    y = np.arange(height, dtype=np.uint32)[:, None]
    x = np.arange(width, dtype=np.uint32)[None, :]
    values = (x * 977 + y * 131 + pts * 61 + (x * y) % 17) % 65536
    return values.astype(np.uint16)


def imu_payload(pts: int) -> bytes:
    """Deterministic compact-JSON IMU batch for ``pts``."""
    return json.dumps(
        {"t": pts, "ax": round(pts * 0.001, 3), "gz": -pts % 97, "s": "é"},
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def payload_for(spec: StreamSpec, pts: int) -> Any:
    """The frame (video) or bytes (data) captured at ``pts`` for ``spec``."""
    if spec.kind == "data":
        return imu_payload(pts)
    if spec.output_pixel_format == "gray16le":
        return depth_frame(pts, spec.width, spec.height)
    return rgb_frame(pts, spec.width, spec.height)


def _open_chunk(path: pathlib.Path) -> Any:
    path.parent.mkdir(parents=True, exist_ok=True)
    return av.open(
        str(path),
        "w",
        format="matroska",
        container_options={"flush_packets": "1", "cluster_time_limit": "100"},
    )


def write_chunk(
    path: pathlib.Path, spec: StreamSpec, pts_list: Sequence[int], *, skip_packets: int = 0
) -> None:
    """Write one chunk file of ``spec`` holding the items captured at ``pts_list`` (ms).

    ``skip_packets`` leaves out the first encoded packets (a chunk that does not start with a
    keyframe, as a broken writer could produce).
    """
    out = _open_chunk(path)
    try:
        if spec.kind == "data":
            stream = out.add_mux_stream(spec.codec)
            stream.time_base = MS
            for key, value in spec.metadata.items():
                stream.metadata[key] = value
            for pts in pts_list:
                packet = av.Packet(payload_for(spec, pts))
                packet.stream = stream
                packet.time_base = MS
                packet.pts = pts
                packet.dts = pts
                packet.duration = 1
                out.mux(packet)
            return
        stream = out.add_stream(spec.codec, rate=spec.fps)
        stream.width = spec.width
        stream.height = spec.height
        stream.pix_fmt = spec.output_pixel_format
        stream.time_base = MS
        ctx = stream.codec_context
        ctx.time_base = MS
        if spec.codec == "libx264":
            ctx.max_b_frames = 0
            ctx.gop_size = spec.gop or spec.fps
            ctx.bit_rate = spec.bitrate
            ctx.options = {"preset": "ultrafast", **spec.stream_options}
        elif spec.gop:
            ctx.gop_size = spec.gop
        for key, value in spec.metadata.items():
            stream.metadata[key] = value
        packets = []
        for pts in pts_list:
            frame = av.VideoFrame.from_ndarray(
                payload_for(spec, pts), format=spec.input_pixel_format
            )
            frame.pts = pts
            frame.time_base = MS
            packets.extend(stream.encode(frame))
        packets.extend(stream.encode(None))
        out.mux(packets[skip_packets:])
    finally:
        out.close()


@dataclasses.dataclass
class SpoolRecording:
    """A generated spool recording and what each stream's chunks hold."""

    directory: pathlib.Path
    recording_id: str
    specs: list[StreamSpec]
    # stream name -> list of chunks, each a list of capture pts (ms since origin)
    chunks: dict[str, list[list[int]]]
    dropped: dict[str, int]

    def pts(self, name: str) -> list[int]:
        """Every pts written for stream ``name``, in order."""
        return [p for chunk in self.chunks[name] for p in chunk]

    def spec(self, name: str) -> StreamSpec:
        """The spec of stream ``name``."""
        return next(s for s in self.specs if s.name == name)

    def chunk_path(self, name: str, index: int) -> pathlib.Path:
        """Path of chunk ``index`` (0-based) of stream ``name``."""
        return self.directory / name / f"{index + 1:05d}.mkv"


def regular_pts(duration_ms: int, interval_ms: int, offset_ms: int = 0) -> list[int]:
    """Capture times every ``interval_ms`` in ``[offset_ms, duration_ms)``."""
    return list(range(offset_ms, duration_ms, interval_ms))


def split_chunks(pts: Iterable[int], chunk_ms: int) -> list[list[int]]:
    """Split capture times into chunks of ``chunk_ms`` of capture time each."""
    chunks: dict[int, list[int]] = {}
    for p in pts:
        chunks.setdefault(p // chunk_ms, []).append(p)
    return [chunks[k] for k in sorted(chunks)]


def make_recording(
    spool: pathlib.Path,
    recording_id: str,
    specs: Sequence[StreamSpec],
    chunks: dict[str, list[list[int]]],
    *,
    dropped: dict[str, int] | None = None,
    out_of_order: dict[str, int] | None = None,
    complete: bool = True,
    write_stats: bool = True,
    write_recording_json: bool = True,
    devices: list[dict[str, str]] | None = None,
) -> SpoolRecording:
    """Write ``<spool>/<recording_id>/`` with recording.json, chunks, stats.json and COMPLETE."""
    directory = spool / recording_id
    directory.mkdir(parents=True, exist_ok=True)
    dropped = dropped or {}
    out_of_order = out_of_order or {}
    if write_recording_json:
        doc = {
            "schema": 1,
            "recording_id": recording_id,
            "started_at": STARTED_AT.isoformat(),
            "software_version": "0.1.0",
            "chunk_length_s": 1.0,
            "streams": {s.name: {"kind": s.kind, "config": s.config()} for s in specs},
            "devices": devices
            if devices is not None
            else [{"label": "sim0", "device_type": "sim"}],
        }
        _write_json(directory / "recording.json", doc)
    for spec in specs:
        for index, pts_list in enumerate(chunks[spec.name]):
            write_chunk(directory / spec.name / f"{index + 1:05d}.mkv", spec, pts_list)
    if write_stats:
        streams = {}
        for spec in specs:
            all_pts = [p for c in chunks[spec.name] for p in c]
            streams[spec.name] = {
                "frames_written": len(all_pts),
                "frames_dropped": dropped.get(spec.name, 0),
                "frames_out_of_order": out_of_order.get(spec.name, 0),
                "first_pts_ms": all_pts[0] if all_pts else None,
                "last_pts_ms": all_pts[-1] if all_pts else None,
                "chunks": [
                    {
                        "chunk_id": f"{i + 1:05d}",
                        "file": f"{spec.name}/{i + 1:05d}.mkv",
                        "frames": len(c),
                    }
                    for i, c in enumerate(chunks[spec.name])
                ],
            }
        stopped = STARTED_AT + datetime.timedelta(seconds=5) if complete else None
        _write_json(
            directory / "stats.json",
            {
                "updated_at": STARTED_AT.isoformat(),
                "stopped_at": stopped.isoformat() if stopped else None,
                "streams": streams,
            },
        )
    if complete:
        (directory / "COMPLETE").touch()
    return SpoolRecording(directory, recording_id, list(specs), chunks, dict(dropped))


def standard_recording(
    spool: pathlib.Path,
    recording_id: str = "2026-11-22T02-40-11.123Z-3f9a",
    *,
    duration_ms: int = 2000,
    chunk_ms: int = 1000,
    **kw: Any,
) -> SpoolRecording:
    """RGB + depth at 25 fps and IMU at 100 Hz, split into ``chunk_ms`` chunks."""
    specs = [rgb_spec(), depth_spec(), imu_spec()]
    chunks = {
        "rgb": split_chunks(regular_pts(duration_ms, 40), chunk_ms),
        "depth": split_chunks(regular_pts(duration_ms, 40, 3), chunk_ms),
        "imu": split_chunks(regular_pts(duration_ms, 10, 1), chunk_ms),
    }
    return make_recording(spool, recording_id, specs, chunks, **kw)


def _write_json(path: pathlib.Path, doc: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    os.replace(tmp, path)
