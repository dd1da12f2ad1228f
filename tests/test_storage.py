"""Tests for the shared storage ladder monitor (omgrab.storage)."""

from __future__ import annotations

import logging
import os
import pathlib

import pytest

from omgrab import clock, storage
from tests import fixtures_output


class FakeStatvfs:
    """Scriptable statvfs replacement: 1000 blocks of 4 KiB, ``avail`` blocks free."""

    def __init__(self, avail: int = 1000, blocks: int = 1000) -> None:
        self.avail = avail
        self.blocks = blocks
        self.calls = 0
        self.fail: OSError | None = None

    def __call__(self, path: str) -> os.statvfs_result:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        # statvfs_result(f_bsize, f_frsize, f_blocks, f_bfree, f_bavail, f_files, f_ffree,
        #                f_favail, f_flag, f_namemax)
        return os.statvfs_result(
            (4096, 4096, self.blocks, self.avail + 10, self.avail, 100, 50, 50, 0, 255)
        )


def make_monitor(
    fake: FakeStatvfs, t: clock.ManualTimeSource, **kwargs: object
) -> storage.StorageMonitor:
    return storage.StorageMonitor(
        "/data",
        stat_fn=fake,
        time_source=t,
        min_interval_s=1.0,
        **kwargs,  # type: ignore[arg-type]
    )


def test_thresholds_map_free_fraction_to_levels() -> None:
    t = storage.StorageThresholds()
    assert t.level_for(1.0) is storage.StorageLevel.OK
    assert t.level_for(0.20) is storage.StorageLevel.OK
    assert t.level_for(0.1999) is storage.StorageLevel.REDUCE
    assert t.level_for(0.10) is storage.StorageLevel.REDUCE
    assert t.level_for(0.0999) is storage.StorageLevel.DETECTION_ONLY
    assert t.level_for(0.0) is storage.StorageLevel.DETECTION_ONLY


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"reduce_below": 1.5}, "reduce_below"),
        ({"detection_only_below": -0.1}, "detection_only_below"),
        ({"reduce_below": 0.1, "detection_only_below": 0.2}, "must not exceed"),
        ({"recorder_floor_bytes": -1}, "recorder_floor_bytes"),
    ],
)
def test_bad_thresholds_are_rejected_with_the_field_named(kwargs: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        storage.StorageThresholds(**kwargs)


def test_free_fraction_is_bavail_over_blocks() -> None:
    fake = FakeStatvfs(avail=250)
    r = storage.read_statvfs("/x", fake)
    assert r.free_fraction == pytest.approx(0.25)
    assert r.free_pct == pytest.approx(25.0)
    assert r.total_bytes == 1000 * 4096
    assert r.available_bytes == 250 * 4096


def test_readings_are_cached_for_min_interval() -> None:
    fake, t = FakeStatvfs(), clock.ManualTimeSource()
    mon = make_monitor(fake, t)
    for _ in range(100):
        mon.reading()
        assert not mon.should_reduce_recording
    assert fake.calls == 1
    t.advance(0.99)
    mon.reading()
    assert fake.calls == 1
    t.advance(0.02)
    mon.reading()
    assert fake.calls == 2
    mon.refresh()
    assert fake.calls == 3


def test_transitions_are_logged_once_each_and_reported_to_listeners(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, t = FakeStatvfs(avail=500), clock.ManualTimeSource()
    mon = make_monitor(fake, t)
    seen: list[tuple[storage.StorageLevel, storage.StorageLevel, float]] = []
    mon.add_listener(lambda old, new, r: seen.append((old, new, r.free_pct)))
    caplog.set_level(logging.INFO, logger="omgrab.storage")

    def step(avail: int) -> None:
        fake.avail = avail
        for _ in range(3):  # repeated readings at the same level report nothing new
            t.advance(1.0)
            mon.reading()

    step(500)
    step(180)
    step(170)
    step(80)
    step(60)
    step(150)
    step(900)
    assert [(o.name, n.name) for o, n, _ in seen] == [
        ("OK", "REDUCE"),
        ("REDUCE", "DETECTION_ONLY"),
        ("DETECTION_ONLY", "REDUCE"),
        ("REDUCE", "OK"),
    ]
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert messages == [
        ("WARNING", "NVMe 18% free, reducing to L1 recording only"),
        ("WARNING", "NVMe 8% free, stopping frame recording (detection-only mode)"),
        ("INFO", "NVMe 15% free, storage recovering: L1 frame recording resumed"),
        ("INFO", "NVMe 90% free, storage recovered: full recording resumed"),
    ]
    assert mon.transitions == 4


def test_a_failing_listener_is_counted_and_does_not_stop_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, t = FakeStatvfs(avail=500), clock.ManualTimeSource()
    mon = make_monitor(fake, t)
    calls: list[str] = []

    def bad(*_: object) -> None:
        raise RuntimeError("boom")

    mon.add_listener(bad)
    mon.add_listener(lambda *_: calls.append("good"))
    fake.avail = 100
    mon.refresh()
    assert calls == ["good"]
    assert mon.listener_errors == 1
    assert "listener" in caplog.text
    mon.remove_listener(bad)
    fake.avail = 50
    mon.refresh()
    assert mon.listener_errors == 1


def test_statvfs_failure_keeps_last_reading_and_is_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, t = FakeStatvfs(avail=300), clock.ManualTimeSource()
    mon = make_monitor(fake, t)
    assert mon.free_fraction == pytest.approx(0.3)
    fake.fail = OSError(5, "Input/output error")
    r = mon.refresh()
    assert r.free_fraction == pytest.approx(0.3)
    assert mon.stat_errors == 1
    assert "Input/output error" in caplog.text


def test_recorder_floor_by_fraction_and_bytes() -> None:
    fake, t = FakeStatvfs(avail=60), clock.ManualTimeSource()
    mon = make_monitor(fake, t, thresholds=storage.StorageThresholds(recorder_floor=0.05))
    assert mon.can_start_recording()
    fake.avail = 40
    assert not mon.can_start_recording()
    assert mon.below_recorder_floor()
    mon2 = make_monitor(
        FakeStatvfs(avail=500),
        t,
        thresholds=storage.StorageThresholds(recorder_floor=0.0, recorder_floor_bytes=10**9),
    )
    assert not mon2.can_start_recording()


def test_frames_allowed_and_reduce_flags() -> None:
    fake, t = FakeStatvfs(avail=150), clock.ManualTimeSource()
    mon = make_monitor(fake, t)
    assert mon.should_reduce_recording and mon.frames_allowed
    fake.avail = 50
    mon.refresh()
    assert mon.should_reduce_recording and not mon.frames_allowed


@pytest.mark.tmpfs
def test_real_tmpfs_reading_tracks_a_ballast_file(small_tmpfs: pathlib.Path) -> None:
    mon = storage.StorageMonitor(small_tmpfs, min_interval_s=0.0)
    assert mon.refresh().free_fraction > 0.99
    assert mon.level is storage.StorageLevel.OK
    fixtures_output.fill_to_free_fraction(small_tmpfs, 0.20)
    assert mon.level is storage.StorageLevel.REDUCE
    assert 0.18 < mon.free_fraction < 0.20
    fixtures_output.fill_to_free_fraction(small_tmpfs, 0.10)
    assert mon.level is storage.StorageLevel.DETECTION_ONLY
    (small_tmpfs / "ballast").unlink()
    assert mon.level is storage.StorageLevel.OK
