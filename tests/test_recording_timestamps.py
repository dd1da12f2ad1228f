"""Capture timestamps to pts: clock steps are rebased, sub-millisecond spacing is nudged."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from omgrab import recording
from omgrab.recording import timestamp_policy
from tests import fixtures_recording as fx


def _assign(policy: timestamp_policy.TimestampPolicy, micros: list[int]) -> list[int | None]:
    return [policy.assign(m) for m in micros]


def test_sub_millisecond_spacing_is_nudged_not_dropped() -> None:
    policy = timestamp_policy.TimestampPolicy("depth")
    got = _assign(policy, [0, 33_300, 33_400, 66_600, 66_601, 100_000])
    assert got == [0, 33, 34, 67, 68, 100]
    assert policy.nudged == 2


def test_nudging_is_bounded_and_true_duplicates_are_out_of_order() -> None:
    policy = timestamp_policy.TimestampPolicy("imu", max_nudge_ms=2)
    # a burst 100 us apart: nudged while at most 2 ms ahead of its clock, then rejected
    got = _assign(policy, [10_000 + 100 * i for i in range(6)])
    assert got == [10, 11, 12, None, None, None]
    assert policy.assign(11_100) == 13  # the clock caught up
    assert policy.assign(11_100) is None  # not after the previous item: out of order
    assert policy.assign(10_500) is None


def test_forward_jump_beyond_the_bound_is_rebased_and_counted() -> None:
    policy = timestamp_policy.TimestampPolicy("rgb", max_forward_jump_s=5)
    year_us = 365 * 86_400 * 1_000_000
    got = _assign(policy, [0, 40_000, 80_000, year_us + 120_000, year_us + 160_000])
    assert got == [0, 40, 80, 120, 160]
    assert policy.clock_steps == 1
    assert policy.clock_step_ms == year_us // 1000
    # a jump within the bound is a real gap and is kept
    assert policy.assign(year_us + 4_160_000) == 4160
    assert policy.clock_steps == 1


def test_backward_clock_step_is_rebased_small_ones_are_out_of_order() -> None:
    policy = timestamp_policy.TimestampPolicy("rgb", max_backward_step_s=2)
    assert _assign(policy, [600_000_000, 600_040_000]) == [600_000, 600_040]
    assert policy.assign(599_900_000) is None  # 0.14 s back: out of order
    # the clock was stepped back by 5 minutes: the stream carries on after its last item
    assert _assign(policy, [300_080_000, 300_120_000]) == [600_080, 600_120]
    assert policy.clock_steps == 1 and policy.clock_step_ms < 0


@pytest.mark.parametrize("field", ["max_forward_jump_s", "max_backward_step_s", "max_nudge_ms"])
def test_bounds_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        timestamp_policy.TimestampPolicy("x", **{field: 0})


def test_writer_keeps_sub_ms_frames_and_does_not_write_a_year_of_gap(
    writer_factory: Callable[..., recording.ChunkedWriter],
) -> None:
    writer = writer_factory()
    writer.start()
    q = writer.get_encoder_queue("imu")
    base = [0.0, 10.0, 10.4, 20.0, 20.3, 30.0]
    year_ms = 365 * 86_400 * 1000.0
    for i, ms in enumerate([*base, year_ms + 40, year_ms + 50]):
        q.put((fx.imu_payload(i), fx.timestamp_at(ms)))
    writer.stop()
    assert writer.stats["imu"].frames_written == 8
    assert writer.stats["imu"].frames_out_of_order == 0
    chunks = fx.chunk_files(writer.directory, "imu")
    pts = [p.pts for chunk in chunks for p in fx.demux_packets(chunk) if p.payload]
    assert pts == [0, 10, 11, 20, 21, 30, 40, 50]
    assert q.timestamps.clock_steps == 1
    doc = json.loads((writer.directory / "stats.json").read_text())
    assert doc["streams"]["imu"]["last_pts_ms"] == 50
