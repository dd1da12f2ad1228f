"""ChunkedWriter: files, tracks, timing, rotation, ordering and draining, on real MKV files."""

from __future__ import annotations

import datetime
import json
import pathlib
import queue
import threading
import time
from collections.abc import Callable

import av
import numpy as np
import pytest

from omgrab import recording
from tests import fixtures_recording as fx


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def all_pts(directory: pathlib.Path, stream: str) -> list[int]:
    return [p.pts for f in fx.chunk_files(directory, stream) for p in fx.demux_packets(f)]


def test_track_layout_validated_by_ffprobe_and_mkvmerge(tmp_path: pathlib.Path) -> None:
    rec = fx.write_recording(tmp_path, frames=50, chunk_length_s=1.0)
    expected_codec = {"rgb": "h264", "depth": "ffv1", "imu": "ass"}
    expected_mkv = {"rgb": "V_MPEG4/ISO/AVC", "depth": "V_FFV1", "imu": "S_TEXT/ASS"}
    for stream in ("rgb", "depth", "imu"):
        files = fx.chunk_files(rec.directory, stream)
        assert [f.name for f in files] == ["00001.mkv", "00002.mkv"]
        for path in files:
            probe = fx.ffprobe_json(path)
            assert len(probe["streams"]) == 1
            info = probe["streams"][0]
            assert info["codec_name"] == expected_codec[stream]
            assert info["time_base"] == "1/1000"
            assert info["tags"]["title"] == stream
            assert info["tags"].get("TYPE", info["tags"].get("type")) == stream
            packets = probe["packets"]
            assert packets[0]["flags"].startswith("K"), f"{path} must start with a keyframe"
            if stream == "rgb":
                assert (info["width"], info["height"], info["pix_fmt"]) == (64, 48, "yuv420p")
                assert info["has_b_frames"] == 0
            if stream == "depth":
                assert (info["width"], info["height"], info["pix_fmt"]) == (32, 24, "gray16le")
            ident = fx.mkvmerge_json(path)
            assert ident["errors"] == []
            assert ident["container"]["recognized"] and ident["container"]["supported"]
            assert len(ident["tracks"]) == 1
            props = ident["tracks"][0]["properties"]
            assert props["codec_id"] == expected_mkv[stream]
            assert props["track_name"] == stream
        assert all_pts(rec.directory, stream) == rec.expected_pts[stream]


def test_depth_round_trips_bit_exact(tmp_path: pathlib.Path) -> None:
    rec = fx.write_recording(tmp_path, frames=30, chunk_length_s=0.5)
    decoded = []
    for path in fx.chunk_files(rec.directory, "depth"):
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                assert frame.format.name == "gray16le"
                decoded.append(frame.to_ndarray())
    assert len(decoded) == 30
    for i, array in enumerate(decoded):
        assert array.dtype == np.uint16
        np.testing.assert_array_equal(array, fx.depth_frame(i))


def test_imu_payload_bytes_intact(tmp_path: pathlib.Path) -> None:
    rec = fx.write_recording(tmp_path, frames=40, chunk_length_s=0.5)
    payloads = [
        p.payload for f in fx.chunk_files(rec.directory, "imu") for p in fx.demux_packets(f)
    ]
    assert payloads == [fx.imu_payload(i) for i in range(40)]
    probe = fx.ffprobe_json(fx.chunk_files(rec.directory, "imu")[0])
    assert [int(p["size"]) for p in probe["packets"]] == [len(fx.imu_payload(i)) for i in range(13)]


def test_pts_exact_with_jitter_and_frames_dropped_around_chunk_boundary(
    writer_factory: Callable[..., recording.ChunkedWriter],
) -> None:
    writer = writer_factory(chunk_length_s=1.0)
    writer.start()
    rng = np.random.default_rng(7)
    expected: list[int] = []
    q_rgb = writer.get_encoder_queue("rgb")
    q_depth = writer.get_encoder_queue("depth")
    for i in range(75):
        if 22 <= i <= 27 or 48 <= i <= 52:  # capture gaps straddling both boundaries
            continue
        # up to +-3 ms of jitter, in microseconds, so rounding to the ms is exercised
        ms = i * 40 + float(rng.integers(-3000, 3000)) / 1000.0
        ts = fx.timestamp_at(ms)
        q_rgb.put((fx.rgb_frame(i), ts))
        q_depth.put((fx.depth_frame(i), ts))
        expected.append(recording.stream_queue.pts_ms(ts, fx.ORIGIN))
    writer.stop()
    for stream in ("rgb", "depth"):
        files = fx.chunk_files(writer.directory, stream)
        assert len(files) == 3
        for k, path in enumerate(files):
            packets = fx.demux_packets(path)
            assert packets[0].keyframe
            assert all(k * 1000 <= p.pts < (k + 1) * 1000 for p in packets), (stream, k)
        assert all_pts(writer.directory, stream) == expected
        assert writer.stats[stream].frames_written == len(expected)
        assert writer.stats[stream].frames_dropped == 0


def test_pts_rounding_is_to_nearest_millisecond() -> None:
    origin = fx.ORIGIN
    us = datetime.timedelta(microseconds=1)
    assert recording.stream_queue.pts_ms(origin + 1499 * us, origin) == 1
    assert recording.stream_queue.pts_ms(origin + 1500 * us, origin) == 2
    assert recording.stream_queue.pts_ms(origin + datetime.timedelta(hours=30), origin) == (
        30 * 3600 * 1000
    )


def test_rotation_follows_capture_time_per_stream(
    writer_factory: Callable[..., recording.ChunkedWriter],
) -> None:
    writer = writer_factory(chunk_length_s=0.5)
    writer.start()
    q_rgb = writer.get_encoder_queue("rgb")
    q_depth = writer.get_encoder_queue("depth")
    for i in range(40):  # rgb: 0 .. 1560 ms
        q_rgb.put((fx.rgb_frame(i), fx.timestamp_at(i * 40)))
    for i in range(5):  # depth starts late, at 2300 ms: first chunk covers [2000, 2500)
        q_depth.put((fx.depth_frame(i), fx.timestamp_at(2300 + i * 100)))
    writer.stop()
    stats = writer.stats
    rgb_chunks = stats["rgb"].chunks
    assert [c.chunk_id for c in rgb_chunks] == ["00001", "00002", "00003", "00004"]
    assert [(c.first_pts_ms, c.last_pts_ms) for c in rgb_chunks] == [
        (0, 480),
        (520, 960),
        (1000, 1480),
        (1520, 1560),
    ]
    assert all(c.closed for c in rgb_chunks)
    depth_chunks = stats["depth"].chunks
    assert [(c.chunk_id, c.first_pts_ms, c.last_pts_ms) for c in depth_chunks] == [
        ("00001", 2300, 2400),
        ("00002", 2500, 2700),
    ]
    assert stats["imu"].chunks == ()
    for chunks in (rgb_chunks, depth_chunks):
        for chunk in chunks:
            packets = fx.demux_packets(writer.directory / chunk.file)
            assert len(packets) == chunk.frames
            assert packets[0].keyframe


def test_stalled_stream_never_blocks_the_others(
    writer_factory: Callable[..., recording.ChunkedWriter],
) -> None:
    writer = writer_factory(chunk_length_s=1.0)
    writer.start()
    q_rgb = writer.get_encoder_queue("rgb")
    q_imu = writer.get_encoder_queue("imu")
    for i in range(90):  # 3.6 s of recording time; depth never gets a frame
        ts = fx.timestamp_at(i * 40)
        q_rgb.put((fx.rgb_frame(i), ts))
        q_imu.put((fx.imu_payload(i), ts))
    # Chunks 1-3 of rgb and imu are closed while the recording still runs.
    for stream in ("rgb", "imu"):  # 3 closed chunks and the 4th open
        wait_for(
            lambda s=stream: [c.closed for c in writer.stats[s].chunks] == [True, True, True, False]
        )
    for chunk in writer.stats["rgb"].chunks[:3]:
        assert len(fx.demux_packets(writer.directory / chunk.file)) == 25

    def stats_file_chunks() -> int:
        doc = json.loads((writer.directory / "stats.json").read_text())
        return len(doc["streams"]["rgb"]["chunks"])

    wait_for(lambda: stats_file_chunks() == 4)  # rewritten at every rotation
    stats_doc = json.loads((writer.directory / "stats.json").read_text())
    assert stats_doc["streams"]["depth"]["chunks"] == []
    assert writer.stats["depth"].frames_put == 0
    assert writer.stats["depth"].last_timestamp is None
    writer.stop()
    assert all_pts(writer.directory, "rgb") == [i * 40 for i in range(90)]
    assert fx.chunk_files(writer.directory, "depth") == []
    assert writer.healthy


def test_backwards_and_duplicate_timestamps_are_dropped_and_counted(
    writer_factory: Callable[..., recording.ChunkedWriter],
) -> None:
    errors: list[None] = []
    writer = writer_factory(on_error=lambda: errors.append(None))
    writer.start()
    q = writer.get_encoder_queue("rgb")
    q_imu = writer.get_encoder_queue("imu")
    for i, ms in enumerate([0, 40, 80, 60, 80, 120, -5 + 125, 160]):
        q.put((fx.rgb_frame(i), fx.timestamp_at(ms)))
        q_imu.put((fx.imu_payload(i), fx.timestamp_at(ms)))
    writer.stop()
    for stream in ("rgb", "imu"):
        assert all_pts(writer.directory, stream) == [0, 40, 80, 120, 160]
        assert writer.stats[stream].frames_out_of_order == 3
        assert writer.stats[stream].frames_written == 5
    assert writer.healthy
    assert errors == []
    doc = json.loads((writer.directory / "stats.json").read_text())
    assert doc["streams"]["rgb"]["frames_out_of_order"] == 3


def test_items_before_origin_are_dropped_and_counted(
    writer_factory: Callable[..., recording.ChunkedWriter],
) -> None:
    writer = writer_factory()
    writer.start()
    q = writer.get_encoder_queue("imu")
    q.put((b"early", fx.timestamp_at(-100)))
    q.put((b"ok", fx.timestamp_at(10)))
    writer.stop()
    assert all_pts(writer.directory, "imu") == [10]
    assert writer.stats["imu"].frames_dropped == 1


def test_stop_drains_every_queued_frame(
    writer_factory: Callable[..., recording.ChunkedWriter],
) -> None:
    writer = writer_factory(chunk_length_s=2.0)
    writer.start()
    queues = {s: writer.get_encoder_queue(s) for s in ("rgb", "depth", "imu")}
    total = 150
    for i in range(total):
        ts = fx.timestamp_at(i * 10)
        queues["rgb"].put((fx.rgb_frame(i), ts))
        queues["depth"].put((fx.depth_frame(i), ts))
        queues["imu"].put((fx.imu_payload(i), ts))
    writer.stop()  # immediately: most frames are still in the rings
    for stream in queues:
        assert all_pts(writer.directory, stream) == [i * 10 for i in range(total)]
        st = writer.stats[stream]
        assert (st.frames_put, st.frames_written, st.frames_dropped) == (total, total, 0)
    assert (writer.directory / "COMPLETE").exists()
    doc = json.loads((writer.directory / "stats.json").read_text())
    assert doc["stopped_at"] is not None
    assert all(c["closed"] for s in doc["streams"].values() for c in s["chunks"])


def test_full_ring_drops_newest_and_counts_it(
    writer_factory: Callable[..., recording.ChunkedWriter],
) -> None:
    video = {"rgb": recording.rgb_stream_config(width=640, height=400, preset="medium")}
    writer = writer_factory(video=video, data={}, max_encoder_queue_size=2)
    writer.start()
    assert writer.slot_count("rgb") == 2
    q = writer.get_encoder_queue("rgb")
    assert q.maxsize == 2
    frame = fx.rgb_frame(0, 400, 640)
    total = 60
    for i in range(total):
        q.put((frame, fx.timestamp_at(i * 40)), block=False)
    writer.stop()
    st = writer.stats["rgb"]
    assert st.frames_dropped > 0
    assert st.frames_put + st.frames_dropped == total
    pts = all_pts(writer.directory, "rgb")
    assert len(pts) == st.frames_put == st.frames_written
    assert pts == sorted(set(pts))
    assert set(pts) <= {i * 40 for i in range(total)}
    assert pts[0] == 0  # the oldest frames are kept: the newest is the one dropped


def test_put_after_stop_is_dropped_and_counted(
    writer_factory: Callable[..., recording.ChunkedWriter],
) -> None:
    writer = writer_factory()
    writer.start()
    q = writer.get_encoder_queue("imu")
    q.put((b"a", fx.timestamp_at(0)))
    writer.stop()
    q.put((b"b", fx.timestamp_at(40)))
    assert writer.stats["imu"].frames_dropped == 1
    assert writer.stats["imu"].frames_written == 1


def test_encoder_queue_is_a_write_only_queue(
    writer_factory: Callable[..., recording.ChunkedWriter],
) -> None:
    writer = writer_factory()
    before_start = writer.get_encoder_queue("rgb")  # omgrab 0.1.2 usage (tests/test_compat_*)
    writer.start()
    q = writer.get_encoder_queue("rgb")
    assert q is before_start
    assert isinstance(q, queue.Queue)
    with pytest.raises(TypeError, match="write-only"):
        q.get()
    with pytest.raises(KeyError, match="streams are"):
        writer.get_encoder_queue("thermal")
    q.put_nowait((fx.rgb_frame(0), fx.timestamp_at(0)))
    writer.stop()
    assert writer.stats["rgb"].frames_written == 1


def test_start_chunk_callback_names_chunks(
    writer_factory: Callable[..., recording.ChunkedWriter],
) -> None:
    calls: list[tuple[str, datetime.datetime, str]] = []

    def chunk_id(name: str, start: datetime.datetime, ext: str) -> str:
        calls.append((name, start, ext))
        if name == "imu":
            return "same"  # duplicate ids must not overwrite an earlier chunk
        return f"{name}-{start:%H%M%S}"

    writer = writer_factory(start_chunk_callback=chunk_id, chunk_length_s=1.0)
    writer.start()
    for i in range(3):
        ts = fx.timestamp_at(i * 1000 + 5)
        writer.get_encoder_queue("rgb").put((fx.rgb_frame(i), ts))
        writer.get_encoder_queue("imu").put((fx.imu_payload(i), ts))
    writer.stop()
    assert [c.chunk_id for c in writer.stats["rgb"].chunks] == [
        "rgb-024011",
        "rgb-024012",
        "rgb-024013",
    ]
    imu_ids = [c.chunk_id for c in writer.stats["imu"].chunks]
    assert imu_ids[0] == "same" and len(set(imu_ids)) == 3
    assert len(fx.chunk_files(writer.directory, "imu")) == 3
    chunks = writer.stats["imu"].chunks
    assert [fx.demux_packets(writer.directory / c.file)[0].pts for c in chunks] == [5, 1005, 2005]
    rgb_calls = [c for c in calls if c[0] == "rgb"]
    assert rgb_calls[0] == ("rgb", fx.timestamp_at(5), "mkv")
    assert all(call[1].tzinfo is not None for call in calls)


def test_recording_json_stats_json_and_complete(tmp_path: pathlib.Path) -> None:
    rec = fx.write_recording(tmp_path, name="rec-42", frames=30, chunk_length_s=1.0)
    doc = json.loads((rec.directory / "recording.json").read_text())
    assert doc["schema"] == 1
    assert doc["recording_id"] == "rec-42"
    assert datetime.datetime.fromisoformat(doc["started_at"]) == fx.ORIGIN
    assert doc["chunk_length_s"] == 1.0
    assert doc["streams"]["rgb"]["kind"] == "video"
    assert doc["streams"]["rgb"]["config"]["codec"] == "libx264"
    assert doc["streams"]["depth"]["config"]["output_pixel_format"] == "gray16le"
    assert doc["streams"]["imu"] == {
        "kind": "data",
        "config": {
            "codec": "ass",
            "metadata": {"type": "imu", "TITLE": "imu"},
            "max_item_bytes": 65536,
        },
    }
    assert doc["devices"] == []
    stats = json.loads((rec.directory / "stats.json").read_text())
    assert stats["stopped_at"] is not None
    rgb = stats["streams"]["rgb"]
    assert (rgb["frames_written"], rgb["frames_dropped"], rgb["frames_out_of_order"]) == (30, 0, 0)
    assert (rgb["first_pts_ms"], rgb["last_pts_ms"]) == (0, 1160)
    assert [(c["chunk_id"], c["file"], c["frames"]) for c in rgb["chunks"]] == [
        ("00001", "rgb/00001.mkv", 25),
        ("00002", "rgb/00002.mkv", 5),
    ]
    assert (rec.directory / "COMPLETE").exists()
    assert (rec.directory / "COMPLETE").stat().st_size == 0


def test_existing_recording_directory_is_never_overwritten(tmp_path: pathlib.Path) -> None:
    fx.write_recording(tmp_path, name="dup", frames=3)
    before = (tmp_path / "dup" / "rgb" / "00001.mkv").read_bytes()
    writer = recording.ChunkedWriter("dup", tmp_path / "dup", fx.small_video_configs())
    with pytest.raises(FileExistsError, match="already holds a recording"):
        writer.start()
    assert (tmp_path / "dup" / "rgb" / "00001.mkv").read_bytes() == before


def test_devices_are_listed_in_recording_json(
    writer_factory: Callable[..., recording.ChunkedWriter],
) -> None:
    writer = writer_factory(devices=[{"label": "sim-1", "device_type": "simulated"}])
    writer.start()
    writer.stop()
    doc = json.loads((writer.directory / "recording.json").read_text())
    assert doc["devices"] == [{"label": "sim-1", "device_type": "simulated"}]


def test_default_origin_comes_from_the_clock(tmp_path: pathlib.Path) -> None:
    from omgrab import clock as clock_mod

    source = clock_mod.ManualTimeSource(wall=1_800_000_000.0)
    device_clock = clock_mod.DeviceClock(source)
    writer = recording.ChunkedWriter(
        "rec", tmp_path / "rec", fx.small_video_configs(), clock=device_clock
    )
    writer.start()
    try:
        assert writer.origin == datetime.datetime.fromtimestamp(1_800_000_000.0, datetime.UTC)
        source.advance(0.25)
        writer.get_encoder_queue("rgb").put((fx.rgb_frame(0), device_clock.now()))
    finally:
        writer.stop()
    assert all_pts(writer.directory, "rgb") == [250]


def test_memory_bound_of_the_rings(tmp_path: pathlib.Path) -> None:
    configs = {
        "rgb": recording.rgb_stream_config(),
        "depth": recording.depth_stream_config(),
    }
    writer = recording.ChunkedWriter(
        "rec", tmp_path / "rec", configs, sensor_stream_configs=fx.small_data_configs()
    )
    # the default ring holds 0.5 s of capture per video stream (25 fps: ceil(12.5) slots)
    assert recording.writer.DEFAULT_RING_CAPACITY_S == 0.5
    assert writer.slot_count("rgb") == 13
    assert writer.slot_count("depth") == 13
    assert writer.slot_count("imu") == 200
    # 13 RGB slots of 1280x800x3 + 13 depth slots of 640x400x2: 46.6 MB of shared memory
    assert writer.slot_count("rgb") * 1280 * 800 * 3 + 13 * 640 * 400 * 2 < 47_000_000
    longer = recording.ChunkedWriter(
        "rec", tmp_path, configs, ring_capacity_s={"depth": 4.0}, max_encoder_queue_size=90
    )
    assert longer.slot_count("rgb") == 13
    assert longer.slot_count("depth") == 90  # 100 by time, capped by the queue size
    assert (
        recording.ChunkedWriter("rec", tmp_path, configs, ring_capacity_s=2.5).slot_count("depth")
        == 63
    )  # ceil(62.5)
    # the memory cap still applies
    roomy = recording.ChunkedWriter("rec", tmp_path, configs, ring_capacity_s=60.0)
    assert roomy.slot_count("rgb") == 128 * 1024 * 1024 // (1280 * 800 * 3) == 43
    small = recording.ChunkedWriter(
        "rec",
        tmp_path / "rec",
        configs,
        max_buffer_bytes_per_stream=8 * 1024 * 1024,
        ring_capacity_s=1.0,
    )
    assert small.slot_count("rgb") == 2
    assert small.slot_count("depth") == 16  # 8 MiB // 512 kB, below the 25 slots of 1 s
    with pytest.raises(ValueError, match="unknown streams"):
        recording.ChunkedWriter("rec", tmp_path, configs, ring_capacity_s={"rbg": 2.0})
    with pytest.raises(ValueError, match="ring_capacity_s of stream 'rgb'"):
        recording.ChunkedWriter("rec", tmp_path, configs, ring_capacity_s=0)


def test_every_frame_reaches_the_files_under_a_gil_hogging_thread(
    writer_factory: Callable[..., recording.ChunkedWriter],
) -> None:
    stop = threading.Event()

    def hog() -> None:  # pure Python, never sleeps, never releases the GIL voluntarily
        n = 0
        while not stop.is_set():
            n += 1

    thread = threading.Thread(target=hog, daemon=True)
    writer = writer_factory(chunk_length_s=1.0, put_timeout_s=30.0)
    writer.start()
    thread.start()
    try:
        queues = {s: writer.get_encoder_queue(s) for s in ("rgb", "depth", "imu")}
        for i in range(100):
            ts = fx.timestamp_at(i * 40)
            queues["rgb"].put((fx.rgb_frame(i), ts))
            queues["depth"].put((fx.depth_frame(i), ts))
            queues["imu"].put((fx.imu_payload(i), ts))
        writer.stop()
    finally:
        stop.set()
        thread.join()
    for stream in ("rgb", "depth", "imu"):
        assert all_pts(writer.directory, stream) == [i * 40 for i in range(100)]
        assert writer.stats[stream].frames_dropped == 0


def test_short_recording_fixture(short_recording: fx.WrittenRecording) -> None:
    assert (short_recording.directory / "COMPLETE").exists()
    for stream in ("rgb", "depth", "imu"):
        assert all_pts(short_recording.directory, stream) == short_recording.expected_pts[stream]
        assert short_recording.stats[stream].frames_written == 50


def test_prewarmed_writer_starts_quickly(tmp_path: pathlib.Path) -> None:
    from omgrab.recording import worker_start

    worker_start.prewarm()
    worker_start.prewarm()  # idempotent
    writer = recording.ChunkedWriter(
        "rec",
        tmp_path / "rec",
        fx.small_video_configs(),
        sensor_stream_configs=fx.small_data_configs(),
    )
    started = time.monotonic()
    writer.start()
    elapsed = time.monotonic() - started
    writer.stop()
    assert elapsed < 5.0  # generous for a shared CI box; ~0.05 s when idle


def test_frames_survive_slot_reuse_in_a_tiny_ring(
    writer_factory: Callable[..., recording.ChunkedWriter],
) -> None:
    # The RGB worker encodes straight from the shared slot (zero copy); with 2 slots every
    # slot is rewritten right after it is freed, so any early release would show up here.
    video = {"rgb": recording.rgb_stream_config(width=64, height=48, bitrate=2_000_000)}
    writer = writer_factory(video=video, data={}, max_encoder_queue_size=2, put_timeout_s=10)
    writer.start()
    q = writer.get_encoder_queue("rgb")
    levels = [(i * 37) % 200 + 20 for i in range(60)]
    for i, level in enumerate(levels):
        q.put((np.full((48, 64, 3), level, np.uint8), fx.timestamp_at(i * 40)))
    writer.stop()
    decoded = []
    for path in fx.chunk_files(writer.directory, "rgb"):
        with av.open(str(path)) as container:
            decoded += [f.to_ndarray(format="rgb24").mean() for f in container.decode(video=0)]
    assert len(decoded) == len(levels)
    assert all(abs(got - want) < 4 for got, want in zip(decoded, levels, strict=True)), decoded


def test_writer_left_running_is_finished_at_interpreter_exit(tmp_path: pathlib.Path) -> None:
    script = f"""
import sys
sys.path.insert(0, {str(pathlib.Path(__file__).resolve().parent.parent)!r})
from omgrab import recording
from tests import fixtures_recording as fx

if __name__ == "__main__":
    writer = recording.ChunkedWriter(
        "rec", {str(tmp_path / "rec")!r}, fx.small_video_configs(), origin=fx.ORIGIN
    )
    writer.start()
    for i in range(60):
        writer.get_encoder_queue("rgb").put((fx.rgb_frame(i), fx.timestamp_at(i * 40)))
    # no stop(): the interpreter exits with the writer running
"""
    path = tmp_path / "leave_running.py"
    path.write_text(script)
    import subprocess
    import sys

    subprocess.run([sys.executable, str(path)], check=True, timeout=60)
    directory = tmp_path / "rec"
    assert (directory / "COMPLETE").exists()
    assert all_pts(directory, "rgb") == [i * 40 for i in range(60)]
