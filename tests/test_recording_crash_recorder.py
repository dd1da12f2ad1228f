"""Recorder process for the SIGKILL campaign in ``test_recording_crash.py`` (no tests here).

Run as ``python -m tests.test_recording_crash_recorder SPOOL NAME SIZE SECONDS [CONFIG]``: it
records synthetic RGB + depth + IMU items in real time at 25 fps and, after every item has been
handed to the writer (``put`` returned), prints ``<pts_ms> <stream>=<backlog_ms>[!] ...`` and
flushes (``!``: the writer dropped that stream's item), so the parent knows exactly what the
writer had been given, and the backlog it reported, when it kills the process group.

CONFIG ``builtin`` (default) records RGB with ``rgb_stream_config``; ``plain`` with the published
SDK's quick-start config (libx264 with no ``stream_options``).
"""

from __future__ import annotations

import datetime
import pathlib
import sys
import time

SIZES = {
    "small": ((48, 64), (24, 32)),
    "reference": ((800, 1280), (400, 640)),
    "quickstart": ((400, 640), (400, 640)),
}


def main(argv: list[str]) -> int:
    from omgrab import clock as clock_mod
    from omgrab import recording
    from tests import fixtures_recording as fx

    spool, name, size, seconds = argv[0], argv[1], argv[2], float(argv[3])
    config = argv[4] if len(argv) > 4 else "builtin"
    (rgb_h, rgb_w), (depth_h, depth_w) = SIZES[size]
    if config == "plain":
        rgb_config = recording.VideoStreamConfig(
            width=rgb_w,
            height=rgb_h,
            fps=25,
            codec="libx264",
            bitrate=2_000_000,
            input_pixel_format="rgb24",
            output_pixel_format="yuv420p",
            metadata={"type": "rgb"},
        )
    else:
        rgb_config = recording.rgb_stream_config(width=rgb_w, height=rgb_h, preset="superfast")
    configs = {
        "rgb": rgb_config,
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
        fields = [str(40 * i)]
        for stream, item in (
            ("rgb", rgb[i % 8]),
            ("depth", depth[i % 8]),
            ("imu", fx.imu_payload(i)),
        ):
            dropped = queues[stream].frames_dropped
            queues[stream].put((item, ts))
            mark = "!" if queues[stream].frames_dropped > dropped else ""
            fields.append(f"{stream}={round(queues[stream].backlog_s() * 1000)}{mark}")
        sys.stdout.write(" ".join(fields) + "\n")
        sys.stdout.flush()
        i += 1
    writer.stop()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
