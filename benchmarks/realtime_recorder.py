"""Record the reference stream set in real time with whichever ``omgrab`` this Python imports.

Run by ``benchmarks/recording.py --compare-published PYTHON`` twice in the same run: once with
this repository's interpreter and once with a venv holding the published ``omgrab==0.1.2``, so
both writers get the same frames, pacing, configs and machine load. Usage::

    PYTHON benchmarks/realtime_recorder.py SPOOL SECONDS CONFIG [RING_CAPACITY_S]

``CONFIG`` is ``builtin`` (RGB 1280x800 libx264 superfast g=25 bf=0 4 Mbit/s) or ``plain``
(RGB 640x400 libx264 with no ``stream_options``, the published quick-start config); depth is
640x400 FFV1 gray16le and IMU one JSON item per frame in both. ``RING_CAPACITY_S`` (this
package only) overrides the writer's default ring capacity in seconds per video stream.
Frames are random noise (the hardest case for the encoder), 8 distinct ones made up front.
Prints one JSON object: frames put, wall time, CPU seconds of the recorder (process + every
descendant), PSS (proportional set size: shared memory counted once across the processes)
sampled every second, the CPU per process while recording (``cpu_fraction_by_process``), the
CPU of the whole job including the drain at stop per video frame found in the files afterwards
(``cpu_ms_per_video_frame``: a writer that falls behind does part of its work after the window,
and the published one abandons what its threads have not encoded 5 s into ``stop()``), and the
frames each stream had queued at the end of the window.
The pre-made frames are the benchmark's, not the recorder's: ``bench_frames_mb`` states their
size and ``recorder_pss_mb_peak`` is the PSS peak without them (a camera's frames would live
in its driver's buffers instead).

It imports only ``omgrab.recording`` names both versions have. The published package imports
camera and display stacks (OpenCV, DepthAI, ...) at package import; they are not needed to
record and are stubbed when missing.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import pathlib
import sys
import threading
import time
import types
from typing import Any

import av
import numpy as np
import psutil

for _top in ("cv2", "depthai", "PIL", "requests", "gpiod", "luma", "smbus2"):
    if importlib.util.find_spec(_top) is None:
        sys.modules[_top] = types.ModuleType(_top)
        if _top == "PIL":
            sys.modules["PIL.Image"] = types.ModuleType("PIL.Image")

from omgrab import recording  # noqa: E402


def _tree() -> list[psutil.Process]:
    me = psutil.Process()
    return [me, *me.children(recursive=True)]


def _pss_mb() -> float:
    total = 0
    for proc in _tree():
        try:
            total += proc.memory_full_info().pss
        except psutil.Error:
            continue
    return total / 1e6


def _cpu_s(exclude: frozenset[int] = frozenset()) -> float:
    total = 0.0
    for proc in _tree():
        if proc.pid in exclude:
            continue
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            continue
    return total


def _cpu_by_process(workers: dict[int, str]) -> dict[str, float]:
    """CPU seconds so far per process of the tree: ``app``, a worker's stream name, or the
    process name (forkserver, resource tracker, ...)."""
    me = psutil.Process()
    out: dict[str, float] = {}
    for proc in _tree():
        try:
            times = proc.cpu_times()
            label = "app" if proc.pid == me.pid else workers.get(proc.pid) or proc.name()
        except psutil.Error:
            continue
        out[label] = out.get(label, 0.0) + times.user + times.system
    return out


def _video_packets_in_files(spool: pathlib.Path) -> int:
    """Video packets readable in every file under ``spool`` (what was recorded, whichever
    writer: the published one abandons what its encoder threads had not done at stop)."""
    count = 0
    for path in sorted(p for p in spool.rglob("*") if p.is_file() and p.suffix != ".json"):
        try:
            with av.open(str(path)) as container:
                video = [s for s in container.streams if s.type == "video"]
                if not video:
                    continue
                for packet in container.demux(video):
                    count += bool(packet.size)
        except (av.error.FFmpegError, ValueError):  # a truncated or non-media file
            continue
    return count


def _configs(config: str) -> dict[str, Any]:
    if config == "plain":
        rgb = recording.VideoStreamConfig(
            width=640,
            height=400,
            fps=25,
            codec="libx264",
            bitrate=2_000_000,
            input_pixel_format="rgb24",
            output_pixel_format="yuv420p",
            metadata={"type": "rgb"},
        )
    else:
        rgb = recording.VideoStreamConfig(
            width=1280,
            height=800,
            fps=25,
            codec="libx264",
            bitrate=4_000_000,
            input_pixel_format="rgb24",
            output_pixel_format="yuv420p",
            stream_options={"preset": "superfast", "g": "25", "bf": "0"},
            metadata={"type": "rgb"},
        )
    depth = recording.VideoStreamConfig(
        width=640,
        height=400,
        fps=25,
        codec="ffv1",
        bitrate=2_000_000,
        input_pixel_format="gray16le",
        output_pixel_format="gray16le",
        metadata={"type": "depth"},
    )
    return {"rgb": rgb, "depth": depth}


def main(argv: list[str]) -> int:
    spool, seconds, config = pathlib.Path(argv[0]), float(argv[1]), argv[2]
    ring: dict[str, Any] = {"ring_capacity_s": float(argv[3])} if len(argv) > 3 else {}
    spool.mkdir(parents=True, exist_ok=True)
    videos = _configs(config)
    rng = np.random.default_rng(1)
    rgb_cfg = videos["rgb"]
    rgb = [
        rng.integers(0, 256, (rgb_cfg.height, rgb_cfg.width, 3), dtype=np.uint8) for _ in range(8)
    ]
    depth = [rng.integers(0, 65536, (400, 640), dtype=np.uint16) for _ in range(8)]
    bench_frames_mb = sum(frame.nbytes for frame in [*rgb, *depth]) / 1e6
    writer = recording.ChunkedWriter(
        "rec-realtime",
        spool,
        videos,
        sensor_stream_configs={
            "imu": recording.DataStreamConfig(codec="ass", metadata={"type": "imu"})
        },
        chunk_length_s=10.0,
        **ring,
    )
    writer.start()
    queues = {name: writer.get_encoder_queue(name) for name in ("rgb", "depth", "imu")}
    worker_pid = getattr(writer, "worker_pid", None)  # this package only
    workers = {worker_pid(n): n for n in queues} if worker_pid else {}
    pss: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(1.0):
            pss.append(_pss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    cpu_before = _cpu_s()
    by_process_before = _cpu_by_process(workers)
    start = time.monotonic()
    sampler.start()
    origin = datetime.datetime.now(datetime.UTC)
    frames = int(seconds * 25)
    for i in range(frames):
        delay = start + i * 0.04 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        ts = origin + datetime.timedelta(milliseconds=40 * i)
        queues["rgb"].put((rgb[i % 8], ts))
        queues["depth"].put((depth[i % 8], ts))
        queues["imu"].put((json.dumps({"i": i, "acc": [0.0, -9.81, 0.1]}).encode(), ts))
    elapsed = time.monotonic() - start
    cpu = _cpu_s() - cpu_before
    by_process = {
        label: round((value - by_process_before.get(label, 0.0)) / elapsed / 2, 3)
        for label, value in _cpu_by_process(workers).items()
    }
    stop.set()
    sampler.join()
    queued = {name: q.qsize() for name, q in queues.items()}
    stop_start = time.monotonic()
    writer.stop()
    stop_s = time.monotonic() - stop_start
    # The whole job, drain at stop included: our workers have exited (their CPU is in stats),
    # the published writer's threads are in this process.
    stats = getattr(writer, "stats", None)
    worker_cpu = sum(s.worker_cpu_s or 0.0 for s in stats.values()) if stats else 0.0
    cpu_total = _cpu_s(exclude=frozenset(workers)) + worker_cpu - cpu_before
    video_frames = _video_packets_in_files(spool)
    report = {
        "omgrab": str(pathlib.Path(recording.__file__).parent.parent),
        "config": config,
        "ring_capacity_s": ring.get("ring_capacity_s", "default"),
        "frames_put": frames,
        "seconds": round(elapsed, 2),
        "cpu_fraction_of_two_cores": round(cpu / elapsed / 2, 3),
        "cpu_fraction_by_process": by_process,
        "cpu_s_total_incl_stop": round(cpu_total, 2),
        "video_frames_in_files": video_frames,
        "cpu_ms_per_video_frame": round(cpu_total / max(1, video_frames) * 1000, 2),
        "pss_mb_peak": round(max(pss), 1) if pss else None,
        "pss_mb_last": round(pss[-1], 1) if pss else None,
        "bench_frames_mb": round(bench_frames_mb, 1),
        "recorder_pss_mb_peak": round(max(pss) - bench_frames_mb, 1) if pss else None,
        "queued_at_end": queued,
        "stop_s": round(stop_s, 2),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
