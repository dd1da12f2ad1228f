"""The long-recording soak, simulated faster than real time by a fake capture clock.

The writer takes its timestamps from the items, so a fake clock (``origin + i / fps``, never
an accumulated float) feeds it small RGB, depth and IMU items as fast as it takes them. The
long form (``OMGRAB_FAULTS=1``) covers 8 hours of recording time, the short form 10 minutes.
Promised: every packet's pts is the fake clock's time to the millisecond (no drift, none
lost), the last pts is the recording's length exactly, the merged file ends at that length,
and the resident memory of the writer process and its workers stays flat (sampled after the
first tenth and at the end).
"""

from __future__ import annotations

import dataclasses
import datetime
import pathlib
import threading
import time
from collections.abc import Iterable
from typing import Any

import psutil
import pytest

from omgrab import recording
from tests import fixtures_recording as fx
from tests.faults import conftest

pytestmark = pytest.mark.faults

DURATION_S = conftest.iterations(600, 8 * 3600)
#: 3 fps: frame times are not whole milliseconds (333.333 ms apart), so rounding shows.
FPS = 3
CHUNK_S = conftest.iterations(10, 60)
#: Allowed growth of the writer's and workers' RSS between the first tenth and the end.
RSS_GROWTH_BYTES = 24 * 1024 * 1024


def _rss(writer: recording.ChunkedWriter) -> int:
    pids = [psutil.Process().pid]
    pids += [pid for name in writer.stream_names if (pid := writer.worker_pid(name)) is not None]
    return sum(psutil.Process(pid).memory_info().rss for pid in pids)


def _clock(i: int) -> datetime.datetime:
    """The fake capture clock: frame ``i`` at exactly ``i / FPS`` s after the origin."""
    return fx.ORIGIN + datetime.timedelta(microseconds=i * 1_000_000 // FPS)


def _pace(queues: Iterable[Any]) -> None:
    """Wait while any queue holds more than half its ring of capture time.

    The fake clock runs far faster than real time; a real camera never gets ahead of the
    encoder by more than the ring, so neither does this feed (a full ring drops, by design).
    """
    waiter = threading.Event()
    deadline = time.monotonic() + 60
    while any(q.backlog_s() > fx.BURST_RING_S / 2 for q in queues):
        assert time.monotonic() < deadline, "the writer took nothing for 60 s"
        waiter.wait(0.005)


def test_simulated_soak_has_no_drift_and_flat_memory(tmp_path: pathlib.Path) -> None:
    frames = DURATION_S * FPS + 1  # the last one exactly DURATION_S after the origin
    video = {
        name: dataclasses.replace(config, fps=float(FPS))
        for name, config in fx.small_video_configs().items()
    }
    writer = recording.ChunkedWriter(
        "rec-soak",
        tmp_path / "spool" / "rec-soak",
        video,
        sensor_stream_configs=fx.small_data_configs(),
        chunk_length_s=CHUNK_S,
        origin=fx.ORIGIN,
        ring_capacity_s=fx.BURST_RING_S,
    )
    samples: list[int] = []
    with writer:
        queues = {name: writer.get_encoder_queue(name) for name in writer.stream_names}
        for i in range(frames):
            ts = _clock(i)
            look = i % 1024  # the fixtures' frame makers take small indexes
            _pace(queues.values())
            queues["rgb"].put((fx.rgb_frame(look, *fx.SMALL_RGB), ts))
            queues["depth"].put((fx.depth_frame(look, *fx.SMALL_DEPTH), ts))
            queues["imu"].put((fx.imu_payload(look), ts))
            if i == frames // 10:
                samples.append(_rss(writer))
        samples.append(_rss(writer))
    # The writer's rule: the nearest millisecond of the microsecond timestamp, halves up.
    expected = [(i * 1_000_000 // FPS + 500) // 1000 for i in range(frames)]
    assert expected[-1] == DURATION_S * 1000
    for name in ("rgb", "depth", "imu"):
        stats = writer.stats[name]
        assert stats.frames_written == frames, (name, stats)
        pts = [p.pts for f in fx.chunk_files(writer.directory, name) for p in fx.demux_packets(f)]
        assert pts == expected, (name, pts[-3:], expected[-3:])
        assert len(fx.chunk_files(writer.directory, name)) == DURATION_S // CHUNK_S + 1
    growth = samples[-1] - samples[0]
    out = tmp_path / "out"
    out.mkdir()
    result = recording.merge_recording_chunks(writer.directory, out)  # the merged MKV
    merged = fx.ffprobe_json(result)
    last = {}
    for packet in merged["packets"]:
        last[packet["stream_index"]] = max(last.get(packet["stream_index"], 0), packet["pts"])
    for stream in merged["streams"]:
        assert last[stream["index"]] == DURATION_S * 1000, (stream, last)
    assert len(merged["streams"]) == 3
    print(
        f"FAULTS soak {DURATION_S} s simulated at {FPS} fps: {frames} items per stream, "
        f"RSS {samples[0] / 2**20:.1f} -> {samples[-1] / 2**20:.1f} MiB"
    )
    assert growth <= RSS_GROWTH_BYTES, samples
