"""SyntheticCamera must be cheap enough to stand in for real cameras in benchmarks."""

from __future__ import annotations

import time

from omgrab import cameras


def test_synthetic_rgb_1280x800_at_least_200_fps() -> None:
    cam = cameras.SyntheticCamera(cameras.CameraConfig(25, 1280, 800), pace=False)
    with cam:
        cam.get_next_frame(timeout_s=1.0)
        frames = 100
        start = time.perf_counter()
        for _ in range(frames):
            cam.get_next_frame(timeout_s=1.0)
        rate = frames / (time.perf_counter() - start)
    print(f"SyntheticCamera 1280x800 RGB: {rate:.0f} frames/s")
    assert rate >= 200, f"only {rate:.0f} frames/s"
