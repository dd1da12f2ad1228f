"""Chunk assignment at exact boundaries, and the open chunk fsynced every 100 ms."""

from __future__ import annotations

import inspect
import json
import os
import pathlib
import signal
import threading
from collections.abc import Callable

import pytest

from omgrab import recording
from omgrab.recording import stream_worker
from tests import fixtures_recording as fx
from tests import recording_worker_harness as harness
from tests.test_recording_writer import wait_for


def test_exact_boundaries_land_in_the_chunk_they_start(
    writer_factory: Callable[..., recording.ChunkedWriter],
) -> None:
    """With 1 s chunks, pts 999 ends chunk 1 and pts 1000 starts chunk 2 (checked by file)."""
    writer = writer_factory(chunk_length_s=1.0)
    points = [0, 998, 999, 1000, 1001, 1999, 2000]
    with writer:
        for ms in points:
            ts = fx.timestamp_at(ms)
            writer.get_encoder_queue("rgb").put((fx.rgb_frame(ms), ts))
            writer.get_encoder_queue("depth").put((fx.depth_frame(ms), ts))
            writer.get_encoder_queue("imu").put((fx.imu_payload(ms), ts))
    for stream in ("rgb", "depth", "imu"):
        files = fx.chunk_files(writer.directory, stream)
        by_file = {f.name: [p.pts for p in fx.demux_packets(f)] for f in files}
        assert by_file == {
            "00001.mkv": [0, 998, 999],
            "00002.mkv": [1000, 1001, 1999],
            "00003.mkv": [2000],
        }, stream


class _Ticks:
    """Stands in for the syncer's stop Event: each ``wait`` records its timeout and returns
    only when the test ticks (False) or stops it (True)."""

    def __init__(self) -> None:
        self.timeouts: list[float | None] = []
        self._tick = threading.Semaphore(0)
        self._waiting = threading.Semaphore(0)
        self._stopped = False

    def wait(self, timeout: float | None = None) -> bool:
        self.timeouts.append(timeout)
        self._waiting.release()
        if not self._stopped:
            self._tick.acquire()
        return self._stopped

    def set(self) -> None:
        self._stopped = True
        self._tick.release()

    def is_set(self) -> bool:
        return self._stopped

    def tick(self) -> None:
        """Let one interval pass; return once the syncer waits for the next one."""
        assert self._waiting.acquire(timeout=10), "the fsync thread did not come back"
        self._tick.release()
        assert self._waiting.acquire(timeout=10), "the fsync thread did not come back"
        self._waiting.release()


def test_open_chunk_is_fsynced_at_every_100ms_interval(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fdatasync = os.fdatasync

    def counting_fdatasync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fdatasync(fd)

    ticks = _Ticks()
    monkeypatch.setattr(stream_worker.os, "fdatasync", counting_fdatasync)
    real_syncer = stream_worker._Syncer
    monkeypatch.setattr(
        stream_worker,
        "_Syncer",
        lambda interval_s, on_error: real_syncer(interval_s, on_error, stop_event=ticks),  # type: ignore[arg-type]
    )
    made = harness.WorkerHarness(tmp_path, fsync_interval_ms=100)
    try:
        made.put(0, 0, b"first")
        first = str(tmp_path / "00001.mkv")
        for _ in range(3):
            ticks.tick()
        assert synced == [first] * 3
        made.put(1, 1000, b"second", chunk_id=b"00002")  # rotation: the new chunk is followed
        synced.clear()
        for _ in range(2):
            ticks.tick()
        assert synced == [str(tmp_path / "00002.mkv")] * 2
        assert set(ticks.timeouts) == {0.1}  # every wait is one 100 ms interval
        # ... which is what a writer asks of its workers unless told otherwise
        default = inspect.signature(recording.ChunkedWriter).parameters["fsync_interval_ms"]
        assert default.default == 100
    finally:
        made.close()


def test_backlog_is_visible_live_capped_and_reported_once(
    writer_factory: Callable[..., recording.ChunkedWriter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stalled encoder (its worker SIGSTOPped): the backlog grows in stats item by item, is
    reported once as falling behind, and items beyond ``max_backlog_s`` are dropped and
    counted instead of queued."""
    writer = writer_factory(data={}, max_backlog_s=0.5, behind_report_s=0.2)
    writer.start()
    pid = writer.worker_pid("rgb")
    assert pid is not None
    queue = writer.get_encoder_queue("rgb")
    for i in range(5):
        queue.put((fx.rgb_frame(i), fx.timestamp_at(40 * i)))
    wait_for(lambda: writer.stats["rgb"].frames_written == 5)
    assert writer.stats["rgb"].backlog_s == 0.0
    os.kill(pid, signal.SIGSTOP)
    try:
        for i in range(5, 25):  # 0.2 .. 0.96 s
            queue.put((fx.rgb_frame(i), fx.timestamp_at(40 * i)), block=False)
            backlog = writer.stats["rgb"].backlog_s
            # the worker took item 4 (pts 160) and nothing since: the backlog is what came after
            assert backlog == pytest.approx(min(40 * i - 160, 480) / 1000), i
        stats = writer.stats["rgb"]
        assert stats.drops["backlog_cap"] == 8  # pts 680 .. 960 would exceed the 0.5 s cap
        assert stats.frames_dropped == 8
        assert stats.behind_reported_s == pytest.approx(0.24)  # first backlog over 0.2 s
        assert stats.backlog_max_s == pytest.approx(0.48)  # the most ever queued
        behind = [r for r in caplog.records if "falling behind real time" in r.message]
        assert len(behind) == 1 and "0.24 s" in behind[0].message
    finally:
        os.kill(pid, signal.SIGCONT)
    writer.stop()
    final = writer.stats["rgb"]
    assert final.frames_written == 17 and final.backlog_s == 0.0
    doc = json.loads((writer.directory / "stats.json").read_text())["streams"]["rgb"]
    assert doc["drops"]["backlog_cap"] == 8 and doc["behind_reported_s"] == pytest.approx(0.24)
