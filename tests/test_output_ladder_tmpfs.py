"""The storage ladder, disk-full behaviour and retention on a real 8 MiB tmpfs (root only)."""

from __future__ import annotations

import logging
import os
import pathlib
import threading

import numpy as np
import pytest

from omgrab import clock, output
from omgrab.output import manager
from tests import fixtures_output, tmpfs

pytestmark = pytest.mark.tmpfs

NOISE = np.random.default_rng(7).integers(0, 255, (96, 96, 3), np.uint8)  # ~25 KB as JPEG


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def feed(
    m: output.OutputManager, t: clock.ManualTimeSource, n: int, level: int, start: int
) -> None:
    for i in range(n):
        m.record_frame(NOISE, start + i, level)
        t.advance(1 / 30)
    assert m.flush(10)


def test_ladder_on_a_filling_tmpfs(
    small_tmpfs: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    t = clock.ManualTimeSource()
    cfg = output.OutputConfig(
        storage_check_interval_s=0.0, frame_queue_size=64, detection_reserve_bytes=64 * 1024
    )
    with output.OutputManager(cfg, time_source=t, output_dir=small_tmpfs / "out") as m:
        frames = pathlib.Path(m.session_dir or "", "frames")
        feed(m, t, 30, 2, 0)  # 1 s at L2: all 30 recorded
        assert m.stats()["frames"]["recorded"] == 30
        assert not m.get_storage_status().should_reduce_recording

        fixtures_output.fill_to_free_fraction(small_tmpfs, 0.20, "ballast1")
        st = m.get_storage_status()
        assert st.should_reduce_recording and 15 < st.nvme_free_pct < 20
        feed(m, t, 60, 2, 100)  # 2 s of L2 frames while < 20 %: recorded at the L1 rate only
        s = m.stats()["frames"]
        assert s["downgraded_to_l1"] == 60
        assert 30 + 4 <= s["recorded"] <= 30 + 5
        warnings = messages(caplog, logging.WARNING)
        assert len([w for w in warnings if "reducing to L1 recording only" in w]) == 1
        assert any(
            w.startswith("NVMe 1") and w.endswith("% free, reducing to L1 recording only")
            for w in warnings
        )

        fixtures_output.fill_to_free_fraction(small_tmpfs, 0.10, "ballast2")
        before = m.stats()["frames"]["recorded"]
        feed(m, t, 30, 1, 200)
        for i in range(50):
            m.log_detection(fixtures_output.detection_entry(i))
        assert m.flush(10)
        s = m.stats()["frames"]
        assert s["recorded"] == before  # detection-only mode
        assert s["dropped_storage"] == 30
        assert m.get_storage_status().detections_logged == 50
        assert len([w for w in messages(caplog, logging.WARNING) if "detection-only" in w]) == 1

        (small_tmpfs / "ballast2").unlink()
        (small_tmpfs / "ballast1").unlink()
        m.get_storage_status()
        infos = messages(caplog, logging.INFO)
        assert any("storage recovered: full recording resumed" in i for i in infos)
        feed(m, t, 30, 2, 300)
        assert m.stats()["frames"]["recorded"] == before + 30
        assert len(list(frames.glob("3*.jpg"))) >= 30
        assert m.error_count == 0


def test_disk_full_stops_frames_but_keeps_logging_detections(
    small_tmpfs: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    t = clock.ManualTimeSource()
    # A stale storage reading (checked once an hour) lets the disk fill up under the frame
    # recorder, as it would when something else eats the space between two checks.
    cfg = output.OutputConfig(
        storage_check_interval_s=3600.0, frame_queue_size=64, detection_reserve_bytes=128 * 1024
    )
    with output.OutputManager(cfg, time_source=t, output_dir=small_tmpfs / "out") as m:
        feed(m, t, 10, 2, 0)
        assert m.stats()["frames"]["recorded"] == 10
        ballast = fixtures_output.fill_completely(small_tmpfs)
        feed(m, t, 10, 2, 100)
        errors = messages(caplog, logging.ERROR)
        assert errors.count("Frame write failed: No space left on device") == 1
        s = m.stats()["frames"]
        assert s["disk_full"] and s["recorded"] == 10
        assert s["write_errors"] >= 1
        assert not any(
            p.name.endswith(".tmp") for p in pathlib.Path(m.session_dir or "", "frames").iterdir()
        )
        for i in range(300):  # ~70 KB of detections: they go into the released reserve
            m.log_detection(fixtures_output.detection_entry(i))
        m.log_health({"disk": "full"})
        assert m.flush(10) is not None
        assert m._detections is not None and m._detections.wait_written(300, 10)
        assert m.get_storage_status().detections_logged == 300
        # Frames stay off even after the retry interval while the disk is still full.
        t.advance(10)
        feed(m, t, 5, 2, 200)
        assert m.stats()["frames"]["recorded"] == 10
        # Space comes back: after the retry interval frames resume (with an INFO).
        ballast.unlink()
        t.advance(10)
        feed(m, t, 5, 2, 300)
        assert m.stats()["frames"]["recorded"] == 15
        assert not m.stats()["frames"]["disk_full"]
        assert any("Frame recording resumed" in i for i in messages(caplog, logging.INFO))
        session = pathlib.Path(m.session_dir or "")
    objs = output.read_jsonl(session / manager.DETECTIONS_FILE)
    assert [o["frame_id"] for o in objs] == list(range(300))
    assert (session / manager.DETECTIONS_FILE).read_bytes().endswith(b"\n")


def test_retention_deletes_oldest_frames_never_logs(small_tmpfs: pathlib.Path) -> None:
    t = clock.ManualTimeSource()
    out = small_tmpfs / "out"
    cfg0 = output.OutputConfig(frame_queue_size=64)
    with output.OutputManager(cfg0, time_source=t, output_dir=out) as first:
        feed(first, t, 40, 2, 0)
        first.log_detection(fixtures_output.detection_entry(1))
        old_session = pathlib.Path(first.session_dir or "")
    assert len(list((old_session / "frames").iterdir())) == 40
    t.advance(2)
    cfg = output.OutputConfig(
        retention_enabled=True,
        retention_target_free=0.70,
        storage_check_interval_s=0.0,
        frame_queue_size=64,
    )
    with output.OutputManager(cfg, time_source=t, output_dir=out) as m:
        for k in range(8):
            feed(m, t, 30, 2, 1000 + 30 * k)
            assert m._frames is not None
            m._frames.enforce_retention()  # also runs on its own thread; make it settle
        s = m.stats()["frames"]
        assert s["retention_deleted"] > 0
        assert s["recorded"] == 240
        new_frames = sorted(
            int(p.stem) for p in pathlib.Path(m.session_dir or "", "frames").glob("*.jpg")
        )
        # the frames still on disk are exactly the newest-written ones the retention index
        # still holds (it deletes from its oldest end): deleted in the order they were written
        still_indexed = sorted(int(pathlib.Path(path).stem) for path, _ in m._frames._written)
        assert os.statvfs(small_tmpfs).f_bavail / os.statvfs(small_tmpfs).f_blocks >= 0.69
    # The older session's frames went first, its logs were kept, and what remains of the new
    # session is its newest frames.
    assert list((old_session / "frames").glob("*.jpg")) == []
    assert len(output.read_jsonl(old_session / manager.DETECTIONS_FILE)) == 1
    assert (old_session / manager.HEALTH_FILE).exists()
    # Deleted in the order they were written (two encoder threads may finish neighbours out of
    # id order, by as many frames as a busy machine delays one thread: the write order is the
    # index's, not the ids').
    deleted = set(range(1000, 1240)) - set(new_frames)
    assert deleted and new_frames[-1] == 1239
    assert new_frames == still_indexed


def _fds_under(path: pathlib.Path) -> list[str]:
    fds = pathlib.Path("/proc/self/fd")
    targets = []
    for fd in fds.iterdir():
        try:
            targets.append(os.readlink(fd))
        except OSError:
            continue  # closed meanwhile (the listing's own fd)
    return [t for t in targets if t.startswith(str(path))]


def test_init_failing_for_lack_of_inodes_closes_every_log_it_opened(
    tmp_path: pathlib.Path,
) -> None:
    # Each inode limit makes a later step of init() fail (session dir, frames dir, each log):
    # whichever fails, the logs already opened are closed again (no fd, no writer thread).
    t = clock.ManualTimeSource()
    failures = []
    for inodes in range(2, 30):
        with tmpfs.mounted_tmpfs(tmp_path, f"8m,nr_inodes={inodes}") as mnt:
            m = output.OutputManager(time_source=t)
            try:
                m.init(str(mnt / "out"))
            except OSError as exc:
                failures.append(str(exc))
                assert _fds_under(mnt) == []
                assert not [th for th in threading.enumerate() if th.name.endswith(" log")]
                continue
            m.close()
            break
    else:
        pytest.fail("init never succeeded on a tmpfs with up to 29 inodes")
    assert sum("cannot open output logs" in f for f in failures) >= 3  # each of the 3 logs
