"""Frame pacing in the Camera base, on a manual clock."""

from __future__ import annotations

import itertools

import pytest

from omgrab import cameras


def _mono(manual_clock) -> float:
    return manual_clock.source.monotonic()


def test_paced_camera_never_faster_than_fps(manual_clock) -> None:
    config = cameras.CameraConfig(25, 160, 120)
    period = 1 / 25
    with cameras.SyntheticCamera(config, clock=manual_clock, pace=True) as cam:
        times = []
        for _ in range(20):
            cam.get_next_frame(timeout_s=1.0)  # the consumer asks as fast as it can
            times.append(_mono(manual_clock))
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap == pytest.approx(period) for gap in gaps)
    assert times[-1] - times[0] == pytest.approx(19 * period)


def test_unpaced_camera_does_not_wait(manual_clock) -> None:
    config = cameras.CameraConfig(25, 160, 120)
    with cameras.SyntheticCamera(config, clock=manual_clock, pace=False) as cam:
        start = _mono(manual_clock)
        for _ in range(10):
            cam.get_next_frame(timeout_s=1.0)
        assert _mono(manual_clock) == start


def test_falling_behind_restarts_schedule_without_burst(manual_clock) -> None:
    config = cameras.CameraConfig(25, 160, 120)
    period = 1 / 25
    with cameras.SyntheticCamera(config, clock=manual_clock, pace=True) as cam:
        cam.get_next_frame(timeout_s=1.0)
        cam.get_next_frame(timeout_s=1.0)
        manual_clock.source.advance(1.0)  # the consumer stalls for 25 periods
        before = _mono(manual_clock)
        cam.get_next_frame(timeout_s=1.0)  # overdue: delivered at once
        assert _mono(manual_clock) == pytest.approx(before)
        cam.get_next_frame(timeout_s=1.0)  # but the next waits a full period: no burst
        assert _mono(manual_clock) == pytest.approx(before + period)
        cam.get_next_frame(timeout_s=1.0)
        assert _mono(manual_clock) == pytest.approx(before + 2 * period)


def test_slightly_late_consumer_keeps_schedule(manual_clock) -> None:
    """Less than a period late: the schedule holds, so the average rate stays exact."""
    config = cameras.CameraConfig(10, 160, 120)
    with cameras.SyntheticCamera(config, clock=manual_clock, pace=True) as cam:
        cam.get_next_frame(timeout_s=1.0)
        start = _mono(manual_clock)
        manual_clock.source.advance(0.13)  # frame 2 was due at +0.1
        cam.get_next_frame(timeout_s=1.0)
        assert _mono(manual_clock) == pytest.approx(start + 0.13)
        cam.get_next_frame(timeout_s=1.0)  # due at +0.2
        assert _mono(manual_clock) == pytest.approx(start + 0.2)


def test_pacing_timeout_raises(manual_clock) -> None:
    config = cameras.CameraConfig(1, 160, 120)  # one frame per second
    with cameras.SyntheticCamera(config, clock=manual_clock, pace=True) as cam:
        cam.get_next_frame(timeout_s=0.1)
        with pytest.raises(cameras.FrameUnavailableError, match="timeout"):
            cam.get_next_frame(timeout_s=0.1)
        # The frame is still delivered on time for a patient reader, not skipped.
        image, _ = cam.get_next_frame(timeout_s=2.0)
        assert cameras.read_frame_counter(image) == 1
