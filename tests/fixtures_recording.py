"""Shared pytest fixtures and helpers for the recording tests (registered in tests/conftest.py).

Fixtures:
    small_stream_configs: tiny RGB (64x48 libx264) and depth (32x24 FFV1) video configs.
    small_sensor_stream_configs: the IMU data stream config.
    recording_origin: a fixed, timezone-aware recording origin.
    writer_factory: builds ``ChunkedWriter`` objects in ``tmp_path`` and stops them at teardown.
    short_recording: a finished 2 s recording (RGB, depth, IMU; 1 s chunks) in a spool dir.
    tiny_tmpfs: a fresh 3 MiB tmpfs mount to fill up (root only).
    spool, out_dir: a spool root (not created) and an empty output directory in tmp_path.

Helpers (import this module): ``rgb_frame``, ``depth_frame``, ``imu_payload``,
``write_recording`` (writes a short spool recording), ``ffprobe_json``, ``mkvmerge_json``,
``demux_packets``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import pathlib
import subprocess
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import av
import numpy as np
import pytest

from omgrab import recording
from tests import tmpfs

ORIGIN = datetime.datetime(2026, 11, 22, 2, 40, 11, 123456, tzinfo=datetime.UTC)

SMALL_RGB = (48, 64)  # height, width
SMALL_DEPTH = (24, 32)
#: Ring capacity (s) for tests that put frames in a burst, far faster than real time: the
#: default 1 s ring would drop frames whenever a busy machine delays the worker.
BURST_RING_S = 10.0


def small_video_configs() -> dict[str, recording.VideoStreamConfig]:
    """Tiny RGB + depth configs that encode in well under a millisecond per frame."""
    return {
        "rgb": recording.rgb_stream_config(
            width=SMALL_RGB[1], height=SMALL_RGB[0], fps=25, bitrate=200_000, preset="ultrafast"
        ),
        "depth": recording.depth_stream_config(width=SMALL_DEPTH[1], height=SMALL_DEPTH[0]),
    }


def small_data_configs() -> dict[str, recording.DataStreamConfig]:
    """The IMU data stream config."""
    return {"imu": recording.imu_stream_config()}


@pytest.fixture
def small_stream_configs() -> dict[str, recording.VideoStreamConfig]:
    return small_video_configs()


@pytest.fixture
def small_sensor_stream_configs() -> dict[str, recording.DataStreamConfig]:
    return small_data_configs()


@pytest.fixture
def recording_origin() -> datetime.datetime:
    return ORIGIN


def rgb_frame(index: int, height: int = SMALL_RGB[0], width: int = SMALL_RGB[1]) -> np.ndarray:
    """A moving RGB gradient (cheap to make, realistic to encode)."""
    x = np.arange(width, dtype=np.uint16)[None, :]
    y = np.arange(height, dtype=np.uint16)[:, None]
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[..., 0] = (x + index * 4) % 256
    frame[..., 1] = (y + index * 2) % 256
    frame[..., 2] = ((x + y) // 2 + index) % 256
    return frame


def depth_frame(
    index: int, height: int = SMALL_DEPTH[0], width: int = SMALL_DEPTH[1]
) -> np.ndarray:
    """A uint16 depth image in millimetres with values using all 16 bits."""
    x = np.arange(width, dtype=np.uint32)[None, :]
    y = np.arange(height, dtype=np.uint32)[:, None]
    return ((x * 977 + y * 131 + index * 7919) % 65536).astype(np.uint16)


def imu_payload(index: int) -> bytes:
    """One IMU batch as compact JSON."""
    return json.dumps(
        {"seq": index, "acc": [0.01 * index, -9.81, 0.5], "gyro": [0.0, 0.001 * index, -0.2]},
        separators=(",", ":"),
    ).encode()


def timestamp_at(ms: float, origin: datetime.datetime = ORIGIN) -> datetime.datetime:
    """The capture timestamp ``ms`` milliseconds after ``origin``."""
    return origin + datetime.timedelta(milliseconds=ms)


@dataclasses.dataclass
class WrittenRecording:
    """What ``write_recording`` wrote."""

    directory: pathlib.Path
    origin: datetime.datetime
    expected_pts: dict[str, list[int]]
    stats: dict[str, recording.StreamStats]


def write_recording(
    spool_dir: pathlib.Path,
    name: str = "rec-test",
    frames: int = 50,
    interval_ms: float = 40.0,
    chunk_length_s: float = 1.0,
    video_configs: dict[str, recording.VideoStreamConfig] | None = None,
    data_configs: dict[str, recording.DataStreamConfig] | None = None,
    origin: datetime.datetime = ORIGIN,
    skip: Sequence[int] = (),
) -> WrittenRecording:
    """Write a short recording of synthetic frames to ``spool_dir / name`` and stop it.

    Every stream gets item ``i`` at ``i * interval_ms`` ms after the origin, except the
    indexes in ``skip`` (a gap, as after dropped frames).
    """
    video = small_video_configs() if video_configs is None else video_configs
    data = small_data_configs() if data_configs is None else data_configs
    writer = recording.ChunkedWriter(
        name,
        pathlib.Path(spool_dir) / name,
        video,
        sensor_stream_configs=data,
        chunk_length_s=chunk_length_s,
        origin=origin,
        ring_capacity_s=BURST_RING_S,
    )
    expected: dict[str, list[int]] = {stream: [] for stream in [*video, *data]}
    with writer:
        queues = {stream: writer.get_encoder_queue(stream) for stream in expected}
        for i in range(frames):
            if i in skip:
                continue
            ms = i * interval_ms
            ts = timestamp_at(ms, origin)
            for stream, cfg in video.items():
                maker = depth_frame if cfg.input_pixel_format == "gray16le" else rgb_frame
                queues[stream].put((maker(i, cfg.height, cfg.width), ts))
                expected[stream].append(round(ms))
            for stream in data:
                queues[stream].put((imu_payload(i), ts))
                expected[stream].append(round(ms))
    return WrittenRecording(writer.directory, origin, expected, writer.stats)


@pytest.fixture
def writer_factory(
    tmp_path: pathlib.Path,
) -> Iterator[Callable[..., recording.ChunkedWriter]]:
    """Build writers under ``tmp_path / 'spool'``; any still running is stopped at teardown."""
    made: list[recording.ChunkedWriter] = []

    def make(
        video: dict[str, recording.VideoStreamConfig] | None = None,
        data: dict[str, recording.DataStreamConfig] | None = None,
        name: str = "rec",
        **kwargs: Any,
    ) -> recording.ChunkedWriter:
        kwargs.setdefault("origin", ORIGIN)
        kwargs.setdefault("ring_capacity_s", BURST_RING_S)
        writer = recording.ChunkedWriter(
            name,
            tmp_path / "spool" / name,
            small_video_configs() if video is None else video,
            sensor_stream_configs=small_data_configs() if data is None else data,
            **kwargs,
        )
        made.append(writer)
        return writer

    yield make
    for writer in made:
        writer.stop()


def ffprobe_json(path: pathlib.Path) -> dict[str, Any]:
    """``ffprobe -show_streams -show_packets`` of a file as a dict (fails on any error)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_packets", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    assert out.stderr.strip() == "", f"ffprobe reported errors for {path}: {out.stderr}"
    return dict(json.loads(out.stdout))


def mkvmerge_json(path: pathlib.Path) -> dict[str, Any]:
    """``mkvmerge -J`` identification of a file."""
    out = subprocess.run(["mkvmerge", "-J", str(path)], capture_output=True, text=True)
    assert out.returncode in (0, 1), f"mkvmerge failed on {path}: {out.stdout} {out.stderr}"
    return dict(json.loads(out.stdout))


@dataclasses.dataclass
class DemuxedPacket:
    pts: int
    keyframe: bool
    payload: bytes


def demux_packets(path: pathlib.Path) -> list[DemuxedPacket]:
    """All packets of the file's single stream, in file order (pts in the stream time base)."""
    packets = []
    with av.open(str(path)) as container:
        stream = container.streams[0]
        assert stream.time_base == 1 / 1000 or float(stream.time_base) == 0.001
        for packet in container.demux(stream):
            if packet.size == 0 or packet.pts is None:
                continue
            packets.append(DemuxedPacket(int(packet.pts), bool(packet.is_keyframe), bytes(packet)))
    return packets


def chunk_files(directory: pathlib.Path, stream: str) -> list[pathlib.Path]:
    """The chunk files of one stream, sorted by name."""
    return sorted((directory / stream).glob("*.mkv"))


@pytest.fixture
def short_recording(tmp_path: pathlib.Path) -> WrittenRecording:
    """A finished 2-second recording (RGB, depth, IMU; 1 s chunks) in ``tmp_path / 'spool'``."""
    return write_recording(tmp_path / "spool", name="rec-short", frames=50, chunk_length_s=1.0)


@pytest.fixture
def tiny_tmpfs(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    """A freshly mounted 3 MiB tmpfs to fill up (root only; skipped otherwise)."""
    with tmpfs.mounted_tmpfs(tmp_path, "3m") as mount_point:
        yield mount_point


@pytest.fixture
def spool(tmp_path: pathlib.Path) -> pathlib.Path:
    """A spool root (not created) for generated spool recordings."""
    return tmp_path / "spool"


@pytest.fixture
def out_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    """An existing, empty output directory for merged recordings."""
    path = tmp_path / "out"
    path.mkdir()
    return path
