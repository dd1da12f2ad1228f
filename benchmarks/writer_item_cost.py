"""Fixed CPU cost per item of a whole writer (tiny frames, so encoding is nearly free).

Usage (with this repository's interpreter, or a venv holding the published ``omgrab==0.1.2``)::

    PYTHON benchmarks/writer_item_cost.py SPOOL [ITEMS_PER_STREAM]

Puts ITEMS_PER_STREAM (default 1500) 64x48 RGB, 32x24 depth and IMU items, pausing 0.2 s every
200 so a thread-based writer keeps up, stops the writer and prints the CPU seconds of this
process and of the worker processes (``StreamStats.worker_cpu_s``; the published writer has
none: its threads are in this process) and the microseconds per item.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import pathlib
import resource
import sys
import time
import types

import numpy as np

for _top in ("cv2", "depthai", "PIL", "requests", "gpiod", "luma", "smbus2"):
    if importlib.util.find_spec(_top) is None:  # the published package imports these
        sys.modules[_top] = types.ModuleType(_top)
        if _top == "PIL":
            sys.modules["PIL.Image"] = types.ModuleType("PIL.Image")

from omgrab import recording  # noqa: E402


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str]) -> int:
    spool = pathlib.Path(argv[0])
    items = int(argv[1]) if len(argv) > 1 else 1500
    spool.mkdir(parents=True, exist_ok=True)
    rgb_cfg = recording.VideoStreamConfig(
        width=64,
        height=48,
        fps=25,
        codec="libx264",
        bitrate=200_000,
        input_pixel_format="rgb24",
        output_pixel_format="yuv420p",
        stream_options={"preset": "ultrafast", "g": "25", "bf": "0"},
        metadata={"type": "rgb"},
    )
    depth_cfg = recording.VideoStreamConfig(
        width=32,
        height=24,
        fps=25,
        codec="ffv1",
        bitrate=200_000,
        input_pixel_format="gray16le",
        output_pixel_format="gray16le",
        metadata={"type": "depth"},
    )
    imu_cfg = recording.DataStreamConfig(codec="ass", metadata={"type": "imu"})
    writer = recording.ChunkedWriter(
        "rec", spool, {"rgb": rgb_cfg, "depth": depth_cfg}, sensor_stream_configs={"imu": imu_cfg}
    )
    writer.start()
    queues = {name: writer.get_encoder_queue(name) for name in ("rgb", "depth", "imu")}
    rgb, depth = np.zeros((48, 64, 3), np.uint8), np.zeros((24, 32), np.uint16)
    origin = datetime.datetime.now(datetime.UTC)
    cpu = _cpu_s()
    for i in range(items):
        ts = origin + datetime.timedelta(milliseconds=40 * i)
        queues["rgb"].put((rgb, ts))
        queues["depth"].put((depth, ts))
        queues["imu"].put((b'{"i": %d}' % i, ts))
        if i % 200 == 199:
            time.sleep(0.2)
    writer.stop()
    app = _cpu_s() - cpu
    stats = getattr(writer, "stats", None)  # this package only
    workers = sum(s.worker_cpu_s or 0.0 for s in stats.values()) if stats else 0.0
    report = {
        "omgrab": str(pathlib.Path(recording.__file__).parent.parent),
        "items": 3 * items,
        "app_cpu_s": round(app, 3),
        "worker_cpu_s": round(workers, 3),
        "us_per_item": round((app + workers) / (3 * items) * 1e6, 1),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
