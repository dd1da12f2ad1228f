"""The 0.1.2 path ``omgrab.recording.chunked_writer.ChunkedWriter`` keeps 0.1.2's timing rules.

Naive stamps are local time, pts 0 is the first item, the start-chunk callback runs once per
chunk (shared by every stream's file of that chunk), while this package's own
``omgrab.recording.ChunkedWriter`` keeps refusing naive stamps (docs/compat.md).
"""

from __future__ import annotations

import datetime
import pathlib
import time
from collections.abc import Iterator

import pytest

from omgrab import recording
from omgrab.recording import chunked_writer, py_av_writer
from tests import fixtures_recording as fx


@pytest.fixture
def new_york_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time UTC-5 in January, so a naive stamp read as UTC would land 5 h off."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


class Calls:
    """A 0.1.2 start-chunk callback recording its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, datetime.datetime, str]] = []

    def __call__(self, name: str, started_at: datetime.datetime, ext: str) -> str:
        self.calls.append((name, started_at, ext))
        return f"chunk-{len(self.calls) - 1}"


def packets_ms(path: pathlib.Path) -> list[int]:
    return [p.pts for p in fx.demux_packets(path)]


def test_naive_stamps_are_local_time_and_pts_zero_is_the_first_item(
    tmp_path: pathlib.Path, new_york_time: None
) -> None:
    calls = Calls()
    out = tmp_path / "rec"
    writer = chunked_writer.ChunkedWriter("rec", out, fx.small_video_configs(), calls)
    # Naive stamps a year in the past (0.1.2 tests do this): none is dropped.
    base = datetime.datetime(2025, 1, 1, 12, 0, 0)
    with writer:
        q = writer.get_encoder_queue("rgb")
        for i in range(5):
            q.put((fx.rgb_frame(i), base + datetime.timedelta(milliseconds=40 * i)))
    assert writer.stats["rgb"].frames_written == 5
    assert writer.stats["rgb"].frames_invalid == 0
    assert packets_ms(out / "rgb" / "chunk-0.mkv") == [0, 40, 80, 120, 160]
    # The callback sees the writer's name and the first item's stamp in the caller's domain.
    assert calls.calls == [("rec", base, "mkv")]
    # Read as local time: 12:00 New York is 17:00 UTC.
    assert base.astimezone(datetime.UTC).hour == 17


def test_callback_once_per_chunk_shared_by_every_stream(tmp_path: pathlib.Path) -> None:
    calls = Calls()
    out = tmp_path / "rec"
    writer = chunked_writer.ChunkedWriter(
        name="rec",
        output_directory=out,
        stream_configs=fx.small_video_configs(),
        start_chunk_callback=calls,
        sensor_stream_configs=fx.small_data_configs(),
        chunk_length_s=1.0,
    )
    # Aware stamps in another time domain (a device clock five years ahead).
    base = datetime.datetime(2031, 6, 1, 8, 0, 0, 500_000, tzinfo=datetime.UTC)
    with writer:
        rgb, depth, imu = (writer.get_encoder_queue(n) for n in ("rgb", "depth", "imu"))
        for i in range(25):  # 2.4 s: chunks 0, 1, 2 after the first item
            ts = base + datetime.timedelta(milliseconds=100 * i)
            rgb.put((fx.rgb_frame(i), ts))
            depth.put((fx.depth_frame(i), ts))
            imu.put((fx.imu_payload(i), ts))
    assert [c[0] for c in calls.calls] == ["rec"] * 3
    assert [c[1] for c in calls.calls] == [base + datetime.timedelta(seconds=s) for s in (0, 1, 2)]
    for stream in ("rgb", "depth", "imu"):
        files = [p.name for p in fx.chunk_files(out, stream)]
        assert files == ["chunk-0.mkv", "chunk-1.mkv", "chunk-2.mkv"], stream
        assert packets_ms(out / stream / "chunk-1.mkv")[0] == 1000
    merged = py_av_writer.merge_recording_chunks(out, tmp_path / "rec.mkv")
    counts = [s["nb_read_packets"] for s in fx.ffprobe_json(merged)["streams"]]
    assert counts == ["25", "25", "25"]


def test_items_held_before_start_set_the_origin(tmp_path: pathlib.Path) -> None:
    writer = chunked_writer.ChunkedWriter("rec", tmp_path / "rec", fx.small_video_configs())
    q = writer.get_encoder_queue("rgb")
    first = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)  # after the start time
    q.put((fx.rgb_frame(0), first + datetime.timedelta(milliseconds=40)))
    q.put((fx.rgb_frame(1), first + datetime.timedelta(milliseconds=80)))
    with writer:
        assert writer.get_encoder_queue("rgb") is q
        assert writer.origin == first + datetime.timedelta(milliseconds=40)
        q.put((fx.rgb_frame(2), first + datetime.timedelta(milliseconds=120)))
    assert packets_ms(fx.chunk_files(tmp_path / "rec", "rgb")[0]) == [0, 40, 80]


def test_a_given_origin_is_kept_and_items_are_not_restamped(tmp_path: pathlib.Path) -> None:
    origin = datetime.datetime.now(datetime.UTC)
    writer = chunked_writer.ChunkedWriter(
        "rec", tmp_path / "rec", fx.small_video_configs(), origin=origin
    )
    with writer:
        q = writer.get_encoder_queue("rgb")
        q.put((fx.rgb_frame(0), origin + datetime.timedelta(milliseconds=500)))
        q.put((fx.rgb_frame(1), origin - datetime.timedelta(seconds=1)))  # before the origin
    assert writer.origin == origin
    assert writer.stats["rgb"].drops["before_origin"] == 1
    assert packets_ms(fx.chunk_files(tmp_path / "rec", "rgb")[0]) == [500]


def test_this_package_writer_still_refuses_naive_stamps(tmp_path: pathlib.Path) -> None:
    writer = recording.ChunkedWriter("rec", tmp_path / "rec", fx.small_video_configs())
    with writer:
        writer.get_encoder_queue("rgb").put(
            (fx.rgb_frame(0), datetime.datetime.now() + datetime.timedelta(seconds=1))
        )
    assert writer.stats["rgb"].frames_invalid == 1
    assert writer.stats["rgb"].frames_written == 0
    assert not writer.healthy
    assert issubclass(chunked_writer.ChunkedWriter, recording.ChunkedWriter)
