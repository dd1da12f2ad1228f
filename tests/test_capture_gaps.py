"""Frames lost before the writer: gap tracking, simulated sequence numbers, stop reasons in files.

Gap rule (``omgrab.recording.capture_gaps``): two consecutive items more than 1.5 nominal
intervals apart, or a device sequence number that skips. The merged file states the losses in
its manifest and MKV tags, read back here with ffprobe.
"""

from __future__ import annotations

import datetime
import json
import pathlib

import pytest

from omgrab import cameras, devices
from omgrab.recording import capture_gaps, merge, stop_reason
from tests import recording_mkv_probe as probe
from tests import recording_spool_factory as factory

ORIGIN = datetime.datetime(2026, 12, 2, 4, 0, 0, tzinfo=datetime.UTC)
PERIOD_S = 0.04  # 25 fps


def at(ms: float) -> datetime.datetime:
    return ORIGIN + datetime.timedelta(milliseconds=ms)


def feed(tracker: capture_gaps.GapTracker, times_ms: list[float], seqs=None) -> None:
    for i, t in enumerate(times_ms):
        tracker.observe(at(t), None if seqs is None else seqs[i])


# -- the 1.5-interval rule ---------------------------------------------------------------------


def test_interval_of_exactly_one_and_a_half_periods_is_not_a_gap() -> None:
    tracker = capture_gaps.GapTracker(PERIOD_S, ORIGIN)
    feed(tracker, [0, 40, 100, 140])  # 60 ms = 1.5 periods: jitter, not a loss
    assert (tracker.gap_count, tracker.frames_missed) == (0, 0)


def test_interval_just_over_one_and_a_half_periods_is_one_missed_frame() -> None:
    tracker = capture_gaps.GapTracker(PERIOD_S, ORIGIN)
    feed(tracker, [0, 40, 101, 141])
    assert (tracker.gap_count, tracker.frames_missed) == (1, 1)
    assert tracker.gaps == [capture_gaps.Gap(pts_ms=40, duration_ms=61, frames_missed=1,
                                             cause="timestamp")]  # fmt: skip


def test_long_gap_counts_the_frames_that_fit_in_it() -> None:
    tracker = capture_gaps.GapTracker(PERIOD_S, ORIGIN)
    feed(tracker, [0, 40, 80, 1080, 1120, 1200])  # 1 s hole (24 frames) and an 80 ms one (1)
    summary = tracker.summary()
    assert summary["frames_missed"] == 24 + 1
    assert summary["gaps"] == 2
    assert summary["gap_total_ms"] == 1000 + 80
    assert summary["gap_longest_ms"] == 1000
    assert [g["pts_ms"] for g in summary["gap_list"]] == [80, 1120]
    assert summary["items_captured"] == 6


# -- sequence numbers ----------------------------------------------------------------------------


def test_sequence_skip_is_a_gap_even_with_regular_timestamps() -> None:
    tracker = capture_gaps.GapTracker(PERIOD_S, ORIGIN)
    feed(tracker, [0, 40, 80, 120], seqs=[10, 11, 13, 14])
    assert tracker.frames_missed == 1
    assert tracker.gaps[0].cause == "sequence"
    assert tracker.gaps[0].pts_ms == 40


def test_sequence_is_exact_where_timestamps_jitter() -> None:
    tracker = capture_gaps.GapTracker(PERIOD_S, ORIGIN)
    # 70 ms looks like one lost frame by time, but the device says none was skipped.
    feed(tracker, [0, 70, 110], seqs=[0, 1, 2])
    assert tracker.frames_missed == 0
    # 3 numbers skipped in 100 ms (timestamps would say 1).
    feed(tracker, [210], seqs=[6])
    assert tracker.frames_missed == 3


def test_sequence_that_restarts_falls_back_to_timestamps() -> None:
    tracker = capture_gaps.GapTracker(PERIOD_S, ORIGIN)
    feed(tracker, [0, 40, 1040, 1080], seqs=[100, 101, 0, 1])  # reopened device
    assert tracker.frames_missed == 24
    assert tracker.gaps[0].cause == "timestamp"


def test_no_period_checks_only_sequence_numbers() -> None:
    tracker = capture_gaps.GapTracker(None, ORIGIN)
    feed(tracker, [0, 500, 510], seqs=[1, 2, 4])
    assert tracker.frames_missed == 1
    with pytest.raises(ValueError, match="period > 0"):
        capture_gaps.GapTracker(0.0, ORIGIN)


def test_gap_list_is_capped_but_the_totals_cover_every_gap(monkeypatch) -> None:
    monkeypatch.setattr(capture_gaps, "MAX_LISTED_GAPS", 3)
    tracker = capture_gaps.GapTracker(PERIOD_S, ORIGIN)
    feed(tracker, [i * 100 for i in range(6)])  # 5 gaps of 100 ms
    summary = tracker.summary(relabel=lambda gap: "device_disconnected" if gap.pts_ms else None)
    assert summary["gaps"] == 5 and len(summary["gap_list"]) == 3
    assert summary["gap_list_truncated"] is True
    assert summary["gap_total_ms"] == 500
    assert [g["cause"] for g in summary["gap_list"]] == [
        "timestamp",
        "device_disconnected",
        "device_disconnected",
    ]


# -- the simulated device numbers its frames ----------------------------------------------------


def test_simulated_camera_sequence_skips_exactly_the_frames_a_stall_cost(manual_clock) -> None:
    small = cameras.CameraConfig(25, 64, 48)
    device = devices.SimulatedCaptureDevice(rgb=small, depth=None, imu_rate_hz=None,
                                            clock=manual_clock)  # fmt: skip
    camera = device.cameras["rgb"]
    tracker = capture_gaps.GapTracker(PERIOD_S, manual_clock.now())
    with device:
        for _ in range(5):
            _, ts = camera.get_next_frame(timeout_s=1.0)
            tracker.observe(ts, capture_gaps.sequence_number(camera))
        assert camera.last_sequence_number == 4  # type: ignore[attr-defined]
        device.inject_stall("rgb", duration_s=0.4)  # right after frame 4 (t = 160 ms)
        with pytest.raises(cameras.FrameUnavailableError):
            camera.get_next_frame(timeout_s=0.2)
        # The failed read took slot 5 and ended at 400 ms; the next read takes slot 10 (due at
        # 400 ms) and is held until the stall ends at 560 ms: numbers 5..9 were skipped.
        _, ts = camera.get_next_frame(timeout_s=1.0)
        gap = tracker.observe(ts, capture_gaps.sequence_number(camera))
        assert camera.last_sequence_number == 10  # type: ignore[attr-defined]
        # Pacing then restarts at 560 ms = slot 14: 11..13 were skipped too.
        _, ts = camera.get_next_frame(timeout_s=1.0)
        second = tracker.observe(ts, capture_gaps.sequence_number(camera))
    assert gap is not None and gap.cause == "sequence"
    assert (gap.pts_ms, gap.duration_ms, gap.frames_missed) == (160, 400, 5)
    assert second is not None and second.frames_missed == 3
    assert tracker.items + tracker.frames_missed == 14 + 1  # every slot accounted for
    with device:  # numbering restarts at each open
        camera.get_next_frame(timeout_s=1.0)
        assert camera.last_sequence_number == 0  # type: ignore[attr-defined]


def test_simulated_device_cannot_open_while_disconnected_and_resumes_its_schedule(
    manual_clock,
) -> None:
    source = manual_clock.source
    device = devices.SimulatedCaptureDevice(
        rgb=cameras.CameraConfig(25, 64, 48), depth=None, imu_rate_hz=None,
        clock=manual_clock, faults="disconnect@1+0.5",
    )  # fmt: skip
    with device:
        source.advance(1.1)
        assert not device.connected
        device.close()  # a reconnect attempt: close ...
        with pytest.raises(ConnectionError, match="disconnected"):
            device.open()  # ... and open fails while the cable is out
        source.advance(0.5)
        device.open()
        assert device.connected and device.ready
        source.advance(5.0)  # the disconnect at 1 s does not fire again after the reopen
        assert device.connected
    kinds = [(e.kind.value, e.action) for e in device.fault_events]
    assert kinds == [("disconnect", "start"), ("disconnect", "end")]


# -- stop reasons and gaps in the merged file -------------------------------------------------


def test_stop_reason_rules() -> None:
    stats = {"stop_reason": "storage_low"}
    assert stop_reason.for_merge(stats, complete=True, recovered=False) == "storage_low"
    assert stop_reason.for_merge(stats, complete=False, recovered=True) == "crash_recovered"
    assert stop_reason.for_merge(None, complete=False, recovered=True) == "crash_recovered"
    assert stop_reason.for_merge(stats, complete=True, recovered=True) == "storage_low"
    assert stop_reason.for_merge({}, complete=True, recovered=False) is None  # older versions
    assert stop_reason.for_merge({"stop_reason": "bogus"}, True, False) is None


def _add_capture_report(directory: pathlib.Path, reason: str | None) -> None:
    stats_path = directory / "stats.json"
    doc = json.loads(stats_path.read_text())
    doc["stop_reason"] = reason
    doc["interruptions"] = [
        {"reason": "device_disconnected", "pts_ms": 960, "duration_ms": 1000, "recovered": True,
         "detail": "device(s) ['sim0']: 3 reopen attempt(s)"},
    ]  # fmt: skip
    doc["capture"] = {
        "rgb": {
            "items_captured": 26, "frames_missed": 24, "gaps": 1, "gap_total_ms": 1040,
            "gap_longest_ms": 1040, "nominal_period_ms": 40.0,
            "gap_list": [{"pts_ms": 960, "duration_ms": 1040, "frames_missed": 24,
                          "cause": "device_disconnected"}],
            "gap_list_truncated": False,
        }
    }  # fmt: skip
    stats_path.write_text(json.dumps(doc))


def test_merged_file_states_missed_frames_gaps_and_stop_reason(tmp_path) -> None:
    rgb_pts = [p for p in factory.regular_pts(2000, 40) if not 960 < p < 2000]
    spool = factory.make_recording(
        tmp_path / "spool", "rec-gaps", [factory.rgb_spec(), factory.depth_spec()],
        {"rgb": [rgb_pts], "depth": [factory.regular_pts(2000, 40)]},
    )  # fmt: skip
    _add_capture_report(spool.directory, "device_disconnected")
    result = merge.merge_recording(spool.directory, tmp_path / "out.mkv")
    doc = json.loads(result.manifest_path.read_text())
    assert doc["stop_reason"] == "device_disconnected"
    assert doc["complete"] is True
    assert any("cut short" in note for note in doc["notes"])
    assert doc["interruptions"][0]["duration_ms"] == 1000
    rgb = doc["streams"]["rgb"]
    assert rgb["frames_missed"] == 24
    assert rgb["capture_gaps"]["gap_list"][0]["pts_ms"] == 960
    assert doc["streams"]["depth"]["frames_missed"] is None  # not reported: unknown, not 0
    info = probe.ffprobe(tmp_path / "out.mkv", "-show_format", "-show_streams")
    assert info["format"]["tags"]["STOP_REASON"] == "device_disconnected"
    tags = {s["tags"]["STREAM_NAME"]: s["tags"] for s in info["streams"]}
    assert tags["rgb"]["FRAMES_MISSED"] == "24"
    assert tags["rgb"]["CAPTURE_GAPS"] == "1"
    assert tags["rgb"]["CAPTURE_GAP_LONGEST_MS"] == "1040"
    assert tags["depth"]["FRAMES_MISSED"] == "unknown"
    assert int(probe.ffprobe(tmp_path / "out.mkv", "-count_packets", "-show_streams")
               ["streams"][0]["nb_read_packets"]) == len(rgb_pts)  # fmt: skip


def test_recovered_crash_says_crash_recovered(tmp_path) -> None:
    spool = factory.standard_recording(tmp_path / "spool", complete=False)
    _add_capture_report(spool.directory, None)  # the session never stopped
    result = merge.merge_recording(spool.directory, tmp_path / "out.mkv", recovered=True)
    doc = json.loads(result.manifest_path.read_text())
    assert (doc["stop_reason"], doc["complete"], doc["recovered"]) == (
        "crash_recovered",
        False,
        True,
    )
    info = probe.ffprobe(tmp_path / "out.mkv", "-show_format")
    assert info["format"]["tags"]["STOP_REASON"] == "crash_recovered"


def test_spool_of_an_older_version_has_unknown_reason_and_losses(tmp_path) -> None:
    spool = factory.standard_recording(tmp_path / "spool")
    result = merge.merge_recording(spool.directory, tmp_path / "out.mkv")
    doc = json.loads(result.manifest_path.read_text())
    assert doc["stop_reason"] is None and doc["interruptions"] == []
    assert all(s["frames_missed"] is None for s in doc["streams"].values())
    info = probe.ffprobe(tmp_path / "out.mkv", "-show_format")
    assert info["format"]["tags"]["STOP_REASON"] == "unknown"


def test_pacing_survives_a_reopen_during_its_wait(manual_clock) -> None:
    """A reconnect reopens the camera while its capture thread sleeps in the pacing wait."""

    class Reopened(cameras.Camera):
        def _open(self) -> None:
            pass

        def _close(self) -> None:
            pass

        def _read_frame(self, timeout_s):
            return None, self.clock.now()

        def _sleep(self, seconds: float) -> None:
            super()._sleep(seconds)
            self._next_due = None  # what open() on the reconnecting thread does

    camera = Reopened(cameras.CameraConfig(25, 64, 48), clock=manual_clock, pace=True)
    with camera:
        for _ in range(3):  # the second read waits for its slot, and is reopened meanwhile
            camera.get_next_frame(timeout_s=1.0)
