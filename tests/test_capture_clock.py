"""One clock for every stream: a wall-clock step never makes timestamps go backwards."""

from __future__ import annotations

import itertools

from omgrab import cameras, devices, sensors


def test_wall_step_mid_stream_keeps_camera_and_imu_monotonic(manual_clock) -> None:
    source = manual_clock.source
    config = cameras.CameraConfig(25, 160, 120)
    cam = cameras.SyntheticCamera(config, clock=manual_clock)
    imu = sensors.SyntheticImu(clock=manual_clock)
    frame_times = []
    imu_times = []
    with cam, imu:
        for step in range(30):
            if step == 10:
                source.step_wall(-3600.0)  # NTP sets the clock back an hour
            if step == 20:
                source.step_wall(+7200.0)  # and then forward two
            frame_times.append(cam.get_next_frame(1.0)[1])
            imu_times.append(imu.get_next_item(1.0)[1])
    for times in (frame_times, imu_times):
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        assert all(gap > 0 for gap in gaps)
        assert max(gaps) < 1.0  # no jump either


def test_device_streams_share_one_clock(manual_clock) -> None:
    device = devices.SimulatedCaptureDevice(
        rgb=cameras.CameraConfig(25, 160, 120),
        depth=cameras.CameraConfig(25, 160, 120),
        clock=manual_clock,
    )
    with device:
        _, rgb_ts = device.cameras["rgb"].get_next_frame(1.0)
        _, depth_ts = device.cameras["depth"].get_next_frame(1.0)
        manual_clock.source.step_wall(-100.0)
        _, imu_ts = device.sensors["imu"].get_next_item(1.0)
    expected_start = manual_clock.to_datetime(manual_clock.source.monotonic())
    assert rgb_ts <= depth_ts <= imu_ts <= expected_start
    assert (expected_start - rgb_ts).total_seconds() < 0.2
