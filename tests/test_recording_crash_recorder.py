"""Recorder process for the SIGKILL campaign in ``test_recording_crash.py`` (no tests here).

Run as ``python -m tests.test_recording_crash_recorder SPOOL NAME SIZE SECONDS``: it records
synthetic RGB + depth + IMU items in real time at 25 fps and, after every item has been
handed to the writer (``put`` returned), prints ``<pts_ms>`` and flushes, so the parent
knows exactly what the writer had been given when it kills the process group.
"""

from __future__ import annotations

import datetime
import pathlib
import sys
import time

SIZES = {
    "small": ((48, 64), (24, 32)),
    "reference": ((800, 1280), (400, 640)),
}


def main(argv: list[str]) -> int:
    from omgrab import clock as clock_mod
    from omgrab import recording
    from tests import fixtures_recording as fx

    spool, name, size, seconds = argv[0], argv[1], argv[2], float(argv[3])
    (rgb_h, rgb_w), (depth_h, depth_w) = SIZES[size]
    configs = {
        "rgb": recording.rgb_stream_config(width=rgb_w, height=rgb_h, preset="superfast"),
        "depth": recording.depth_stream_config(width=depth_w, height=depth_h),
    }
    # A handful of distinct frames, made up front so the loop only hands them over.
    rgb = [fx.rgb_frame(i, rgb_h, rgb_w) for i in range(8)]
    depth = [fx.depth_frame(i, depth_h, depth_w) for i in range(8)]
    device_clock = clock_mod.DeviceClock()
    writer = recording.ChunkedWriter(
        name,
        pathlib.Path(spool) / name,
        configs,
        sensor_stream_configs={"imu": recording.imu_stream_config()},
        chunk_length_s=1.0,
        clock=device_clock,
    )
    writer.start()
    origin = writer.origin
    assert origin is not None
    queues = {s: writer.get_encoder_queue(s) for s in ("rgb", "depth", "imu")}
    pids = ",".join(str(writer.worker_pid(s)) for s in queues)
    print(f"pids {pids}", flush=True)
    print("ready", flush=True)
    start = time.monotonic()
    i = 0
    while time.monotonic() - start < seconds:
        due = start + i * 0.040
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        ts = origin + datetime.timedelta(milliseconds=40 * i)
        queues["rgb"].put((rgb[i % 8], ts))
        queues["depth"].put((depth[i % 8], ts))
        queues["imu"].put((fx.imu_payload(i), ts))
        sys.stdout.write(f"{40 * i}\n")
        sys.stdout.flush()
        i += 1
    writer.stop()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
