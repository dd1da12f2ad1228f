"""End to end: ChunkedWriter spool -> merge / crash recovery -> one MKV with exact timing."""

from __future__ import annotations

import datetime
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from omgrab import recording
from omgrab.recording import manifest
from tests import recording_mkv_probe as probe
from tests import recording_spool_factory as factory

ORIGIN = datetime.datetime(2026, 11, 22, 3, 0, 0, tzinfo=datetime.UTC)
REPO = pathlib.Path(__file__).resolve().parent.parent


def _configs() -> tuple[
    dict[str, recording.VideoStreamConfig], dict[str, recording.DataStreamConfig]
]:
    video = {
        "rgb": recording.rgb_stream_config(width=64, height=48, preset="ultrafast"),
        "depth": recording.depth_stream_config(width=32, height=24),
    }
    data = {"imu": recording.imu_stream_config()}
    return video, data


def _capture_plan() -> dict[str, list[int]]:
    # 2.4 s of capture, frames missing on both sides of the 1 s chunk boundaries
    rgb = [p for p in range(0, 2400, 40) if p not in (960, 1000, 1040, 2000)]
    depth = [p + 5 for p in range(0, 2400, 40) if p not in (1000, 1960)]
    imu = [p for p in range(2, 2400, 10) if not 995 <= p <= 1025]
    return {"rgb": rgb, "depth": depth, "imu": imu}


def _payload(name: str, pts: int) -> object:
    if name == "rgb":
        return factory.rgb_frame(pts, 64, 48)
    if name == "depth":
        return factory.depth_frame(pts, 32, 24)
    return factory.imu_payload(pts)


@pytest.mark.timeout(120)
def test_writer_recording_merges_with_exact_capture_times(tmp_path: pathlib.Path) -> None:
    video, data = _configs()
    plan = _capture_plan()
    spool = tmp_path / "spool"
    writer = recording.ChunkedWriter(
        "rec-e2e",
        spool / "rec-e2e",
        video,
        sensor_stream_configs=data,
        chunk_length_s=1.0,
        origin=ORIGIN,
    )
    with writer:
        queues = {name: writer.get_encoder_queue(name) for name in plan}
        events = sorted((pts, name) for name, pts_list in plan.items() for pts in pts_list)
        for pts, name in events:
            stamp = ORIGIN + datetime.timedelta(milliseconds=pts)
            queues[name].put((_payload(name, pts), stamp), timeout=30)
    assert (spool / "rec-e2e" / "COMPLETE").exists()

    out = tmp_path / "out"
    out.mkdir()
    result = recording.merge_recording_chunks(spool / "rec-e2e", out)
    packets = probe.pyav_packets(result)
    assert [p for p, _ in packets[0]] == plan["rgb"]
    assert [p for p, _ in packets[1]] == plan["depth"]
    assert packets[2] == [(p, factory.imu_payload(p)) for p in plan["imu"]]
    for pts, array in probe.decode_frames(result, 1, "gray16le"):
        np.testing.assert_array_equal(array, factory.depth_frame(pts, 32, 24))
    doc = recording.read_manifest(result.with_suffix(".json"))
    assert doc.started_at == "2026-11-22T03:00:00.000000Z"
    assert [s.frames_written for s in doc.streams.values()] == [len(v) for v in plan.values()]
    assert all(s.frames_dropped == 0 for s in doc.streams.values())
    assert len(doc.streams["rgb"].chunks) == 3
    assert not doc.recovered and doc.complete
    if probe.HAVE_MKVMERGE:
        ident = probe.mkvmerge_identify(result)
        assert [t["type"] for t in ident["tracks"]] == ["video", "video", "subtitles"]


_RECORDER = """
import datetime, pathlib, sys
from omgrab import recording
from tests import recording_spool_factory as factory
from tests.test_recording_merge_writer import ORIGIN, _capture_plan, _configs, _payload

video, data = _configs()
plan = _capture_plan()
writer = recording.ChunkedWriter(
    "rec-killed", pathlib.Path(sys.argv[1]) / "rec-killed", video,
    sensor_stream_configs=data, chunk_length_s=1.0, origin=ORIGIN,
)
writer.start()
queues = {name: writer.get_encoder_queue(name) for name in plan}
events = sorted((pts, name) for name, pts_list in plan.items() for pts in pts_list)
for pts, name in events:
    queues[name].put((_payload(name, pts), ORIGIN + datetime.timedelta(milliseconds=pts)))
    print(name, pts, flush=True)
    if pts >= 1700 and name == "imu":
        break
print("HOLD", flush=True)
sys.stdin.read()  # wait to be killed
"""


@pytest.mark.timeout(120)
def test_writer_killed_mid_recording_is_recovered(tmp_path: pathlib.Path) -> None:
    spool = tmp_path / "spool"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(["src", "."])}
    proc = subprocess.Popen(
        [sys.executable, "-c", _RECORDER, str(spool)],
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # recorder + encoder processes die together, like power loss
    )
    handed: dict[str, list[int]] = {"rgb": [], "depth": [], "imu": []}
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == "HOLD":
                break
            name, pts = line.split()
            handed[name].append(int(pts))
        # wait until every stream's encoder has put packets into its second chunk (a chunk
        # file gets its final name once it holds a packet), then pull the plug
        rec_dir = spool / "rec-killed"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(len(list((rec_dir / n).glob("*.mkv"))) >= 2 for n in handed):
                break
            time.sleep(0.01)  # watching another process's files; there is no event to wait on
        else:
            pytest.fail("the recorder never wrote a second chunk of every stream")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert not (spool / "rec-killed" / "COMPLETE").exists()

    out = tmp_path / "out"
    merged = recording.merge_orphaned_chunks(spool, out)
    assert merged == [out / "rec-killed.mkv"]
    packets = probe.pyav_packets(merged[0])
    for index, name in enumerate(("rgb", "depth", "imu")):
        got = [p for p, _ in packets.get(index, [])]
        want = handed[name]
        assert got == want[: len(got)], name  # exact capture times, nothing invented
        assert [p for p in got if p < 1000] == [p for p in want if p < 1000], name  # chunk 1
        assert got[-1] >= 1000, name  # and part of chunk 2
    doc = manifest.read_manifest(out / "rec-killed.json")
    assert doc.recovered and not doc.complete
    if probe.HAVE_MKVMERGE:
        probe.mkvmerge_identify(merged[0])
