"""OutputManager benchmark: call latency, JPEG throughput vs raw OpenCV, detection log rate.

Run: ``.venv/bin/python benchmarks/output.py`` (prints one JSON object; ~35 s on 2 cores).

* ``latency``: an L2 scan loop in real time - 1280x800 RGB frames at 30 fps with 5 detections
  per frame for ``--seconds`` - measuring how long ``record_frame`` and ``log_detection``
  take to return (target p99 <= 0.5 ms), with the default ``copy_frames=False`` and again
  with ``copy_frames=True``; ``noop_us`` is a do-nothing call timed in the same loop.
  ``log_detection_tight`` times 50 k back-to-back calls; ``cold_call_baseline`` times a tiny
  pure-Python function as the first call after each sleep of the same paced loop (what this
  machine charges any code for waking up).
* ``jpeg``: frames/s of raw ``cv2.imencode`` q90 (1 and 2 threads) vs the OutputManager with
  1 and 2 encoder threads, frames fed with back-pressure (no drops), files written to a temp
  directory; measured alternately ``--repeats`` times, medians reported. Both colour orders
  (BGR needs no conversion, RGB adds ``cvtColor``). Target ratio >= 0.9. Repeated on
  ``/dev/shm`` (``jpeg_tmpfs``) to separate the filesystem's cost of creating files.
* ``detections``: entries/s through ``log_detection`` to disk with flush every 10 entries
  (target >= 200 k/s), timed from the first call until the last line is written.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

import cv2
import numpy as np

from omgrab import clock, output

W, H = 1280, 800


def make_frame() -> np.ndarray:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (H, W, 3), np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 3)  # ~125 KB at q90, like a real scene


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


def entry(i: int) -> dict[str, Any]:
    return {
        "frame_id": i,
        "class_id": 0,
        "label": "person",
        "confidence": 0.87,
        "bbox": [100.5, 200.25, 180.0, 400.75],
        "track_id": i % 13,
    }


def _noop(*args: Any) -> None:
    return None


def bench_latency(tmp: str, frame: np.ndarray, seconds: float, copy_frames: bool) -> dict[str, Any]:
    """Time the calls of an L2 scan loop; ``noop_us`` times a do-nothing call in the same loop
    (what the machine itself adds: scheduling, GIL hand-offs to the encoder threads)."""
    frame_us: list[float] = []
    det_us: list[float] = []
    noop_us: list[float] = []
    cfg = output.OutputConfig(copy_frames=copy_frames)
    with output.OutputManager(cfg, output_dir=tmp) as m:
        period = 1 / 30
        start = time.perf_counter()
        n = int(seconds * 30)
        for i in range(n):
            due = start + i * period
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            t0 = time.perf_counter()
            m.record_frame(frame, i, 2)
            frame_us.append((time.perf_counter() - t0) * 1e6)
            for k in range(5):
                e = entry(i * 5 + k)
                t0 = time.perf_counter()
                m.log_detection(e)
                det_us.append((time.perf_counter() - t0) * 1e6)
                t0 = time.perf_counter()
                _noop(e)
                noop_us.append((time.perf_counter() - t0) * 1e6)
        assert m.flush(30)
        stats = m.stats()
    return {
        "copy_frames": copy_frames,
        "frames": n,
        "frames_recorded": stats["frames"]["recorded"],
        "frames_dropped": stats["frames"]["dropped_queue_full"],
        "record_frame_us": {"p50": pct(frame_us, 0.5), "p99": pct(frame_us, 0.99)},
        "log_detection_us": {"p50": pct(det_us, 0.5), "p99": pct(det_us, 0.99)},
        "noop_us": {"p50": pct(noop_us, 0.5), "p99": pct(noop_us, 0.99)},
    }


def bench_cold_baseline(seconds: float) -> dict[str, Any]:
    """The same 30 Hz paced loop calling a small pure-Python function first after each sleep.

    ``record_frame`` is the first call after the loop's sleep, so it pays for whatever the
    machine charges a thread waking up (cold caches, scheduling on a shared VM); this measures
    that charge for code doing almost nothing.
    """
    samples: list[float] = []
    d = entry(1)
    start = time.perf_counter()
    for i in range(int(seconds * 30)):
        delay = start + i / 30 - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        t0 = time.perf_counter()
        _small_work(d)
        samples.append((time.perf_counter() - t0) * 1e6)
    return {"p50_us": pct(samples, 0.5), "p99_us": pct(samples, 0.99)}


def _small_work(d: dict[str, Any]) -> int:
    total = 0
    for key in ("frame_id", "class_id", "label", "confidence", "bbox"):
        total += len(str(d[key]))
    return total


def bench_log_detection_tight(tmp: str, n: int) -> dict[str, Any]:
    """Latency of log_detection called back to back (no frames): its own cost."""
    samples: list[float] = []
    entries = [entry(i) for i in range(n)]
    with output.OutputManager(output_dir=tmp) as m:
        for e in entries:
            t0 = time.perf_counter()
            m.log_detection(e)
            samples.append((time.perf_counter() - t0) * 1e6)
    return {"calls": n, "p50_us": pct(samples, 0.5), "p99_us": pct(samples, 0.99)}


class Rate:
    """Frames per wall-clock second and per CPU-second of this process (all threads)."""

    def __init__(self) -> None:
        self.wall0 = time.perf_counter()
        self.cpu0 = time.process_time()

    def done(self, frames: int) -> tuple[float, float]:
        wall = time.perf_counter() - self.wall0
        cpu = time.process_time() - self.cpu0
        return frames / wall, frames / max(cpu, 1e-9)


def raw_imencode(bgr: np.ndarray, n: int, threads: int) -> tuple[float, float]:
    params = [int(cv2.IMWRITE_JPEG_QUALITY), 90]
    cv2.imencode(".jpg", bgr, params)

    def work(count: int) -> None:
        for _ in range(count):
            ok, _buf = cv2.imencode(".jpg", bgr, params)
            assert ok

    rate = Rate()
    pool = [threading.Thread(target=work, args=(n // threads,)) for _ in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    return rate.done((n // threads) * threads)


def raw_convert_and_encode(rgb: np.ndarray, n: int) -> tuple[float, float]:
    """cvtColor RGB->BGR (into a reused buffer) + imencode: the raw work for RGB input."""
    params = [int(cv2.IMWRITE_JPEG_QUALITY), 90]
    dst = np.empty_like(rgb)
    rate = Rate()
    for _ in range(n):
        cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR, dst=dst)
        ok, _buf = cv2.imencode(".jpg", dst, params)
        assert ok
    return rate.done(n)


def raw_encode_and_write(tmp: str, bgr: np.ndarray, n: int) -> tuple[float, float]:
    """imencode plus writing each JPEG to its own file: the least any frame recorder does."""
    os.makedirs(tmp, exist_ok=True)
    params = [int(cv2.IMWRITE_JPEG_QUALITY), 90]
    rate = Rate()
    for i in range(n):
        ok, buf = cv2.imencode(".jpg", bgr, params)
        assert ok
        with open(os.path.join(tmp, f"{i}.jpg"), "wb") as f:
            f.write(buf.tobytes())
    return rate.done(n)


def manager_rate(
    tmp: str, frame: np.ndarray, n: int, workers: int, order: str
) -> tuple[float, float]:
    t = clock.ManualTimeSource()  # each frame 1 s apart: the rate limiter admits all
    cfg = output.OutputConfig(
        jpeg_workers=workers, frame_queue_size=8, color_order=output.ColorOrder(order)
    )
    with output.OutputManager(cfg, time_source=t, output_dir=tmp) as m:
        frames = m._frames
        assert frames is not None
        m.record_frame(frame, 0, 2)  # warm-up (scratch buffers)
        assert m.flush(30)
        rate = Rate()
        for i in range(1, n + 1):
            if frames.outstanding >= cfg.frame_queue_size:
                # Back-pressure with hysteresis (no drops, few producer wake-ups): refill
                # once the encoders are down to their last couple of frames.
                assert frames.wait_outstanding_below(workers + 2, 30)
            t.advance(1.0)
            m.record_frame(frame, i, 2)
        assert m.flush(60)
        result = rate.done(n)
        s = m.stats()["frames"]
        assert s["recorded"] == n + 1, s
    return result


def bench_jpeg(tmp: str, frame_rgb: np.ndarray, n: int, repeats: int) -> dict[str, Any]:
    """Raw work and the manager measured alternately ``repeats`` times; medians.

    ``*_per_cpu_s`` (frames per CPU-second of the process, all threads, user + system) is the
    per-core figure and is robust against other processes on the machine; ``*_wall`` shows
    elapsed-time throughput.
    """
    bgr = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR)
    runs: dict[str, list[tuple[float, float]]] = {}

    def add(key: str, value: tuple[float, float]) -> None:
        runs.setdefault(key, []).append(value)

    for r in range(repeats):
        add("raw_encode", raw_imencode(bgr, n, 1))
        add("raw_encode_2_threads", raw_imencode(bgr, n, 2))
        add("raw_encode_write", raw_encode_and_write(os.path.join(tmp, f"raw{r}"), bgr, n))
        add("raw_convert_encode", raw_convert_and_encode(frame_rgb, n))
        for workers in (1, 2):
            for order, src in (("bgr", bgr), ("rgb", frame_rgb)):
                add(
                    f"manager_{order}_{workers}",
                    manager_rate(os.path.join(tmp, f"{r}{workers}{order}"), src, n, workers, order),
                )
    wall = {k: statistics.median(v[0] for v in vals) for k, vals in runs.items()}
    cpu = {k: statistics.median(v[1] for v in vals) for k, vals in runs.items()}
    out: dict[str, Any] = {
        "repeats": repeats,
        "frames_per_cpu_s": cpu,
        "frames_per_s_wall": wall,
    }
    for order in ("bgr", "rgb"):
        same = "raw_encode" if order == "bgr" else "raw_convert_encode"
        key = f"manager_{order}_1"
        out[order] = {
            "ratio_per_core_vs_raw_imencode": cpu[key] / cpu["raw_encode"],
            "ratio_per_core_vs_same_raw_work": cpu[key] / cpu[same],
            "ratio_per_core_vs_encode_plus_write": cpu[key] / cpu["raw_encode_write"],
            "ratio_wall_vs_raw_imencode": wall[key] / wall["raw_encode"],
            "ratio_wall_2_workers_vs_2_threads": wall[f"manager_{order}_2"]
            / wall["raw_encode_2_threads"],
        }
    return out


def bench_detections(tmp: str, n: int) -> dict[str, Any]:
    entries = [entry(i) for i in range(n)]
    cfg = output.OutputConfig(detection_queue_size=n + 1)
    with output.OutputManager(cfg, output_dir=tmp) as m:
        w = m._detections
        assert w is not None
        t0 = time.perf_counter()
        for e in entries:
            m.log_detection(e)
        t_calls = time.perf_counter() - t0
        assert m.flush(60)  # force out the last < 10 entries (not due under the rule) and wait
        t_disk = time.perf_counter() - t0
        flushes = w.flushes
    size = os.path.getsize(os.path.join(m.session_dir or "", "detections.jsonl"))
    return {
        "entries": n,
        "entries_per_s_to_disk": n / t_disk,
        "entries_per_s_calls": n / t_calls,
        "writes": flushes,
        "bytes_per_entry": size / n,
    }


def _fs_type(path: str) -> str:
    best, fstype = "", "unknown"
    with open("/proc/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            mnt = fields[1]
            if os.path.realpath(path).startswith(mnt) and len(mnt) > len(best):
                best, fstype = mnt, fields[2]
    return fstype


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--seconds", type=float, default=8.0, help="L2 latency run length")
    ap.add_argument("--jpeg-frames", type=int, default=120)
    ap.add_argument("--repeats", type=int, default=3, help="alternating JPEG runs (median)")
    ap.add_argument("--detections", type=int, default=300_000)
    args = ap.parse_args(argv)
    # The benchmark passes one never-modified array again and again on purpose.
    logging.getLogger("omgrab.output.frame_recorder").setLevel(logging.ERROR)
    frame = make_frame()
    results: dict[str, Any] = {
        "python": sys.version.split()[0],
        "opencv": cv2.__version__,
        "cpus": os.cpu_count(),
        "frame": f"{W}x{H} RGB uint8",
    }
    with tempfile.TemporaryDirectory() as tmp:
        results["latency"] = bench_latency(os.path.join(tmp, "lat"), frame, args.seconds, False)
        results["latency_copy_frames"] = bench_latency(
            os.path.join(tmp, "latc"), frame, args.seconds / 2, True
        )
        results["cold_call_baseline"] = bench_cold_baseline(args.seconds / 2)
        results["log_detection_tight"] = bench_log_detection_tight(
            os.path.join(tmp, "tight"), 50_000
        )
        results["jpeg"] = bench_jpeg(
            os.path.join(tmp, "jpeg"), frame, args.jpeg_frames, args.repeats
        )
        results["jpeg"]["filesystem"] = _fs_type(tmp)
        if os.path.isdir("/dev/shm"):
            # The same on tmpfs, where creating and writing a 125 KB file is ~8x cheaper than
            # on ext4: isolates the pipeline's own overhead from the filesystem's.
            with tempfile.TemporaryDirectory(dir="/dev/shm") as shm:
                results["jpeg_tmpfs"] = bench_jpeg(shm, frame, args.jpeg_frames, args.repeats)
        results["detections"] = bench_detections(os.path.join(tmp, "det"), args.detections)
    lat = results["latency"]
    results["targets"] = {
        "record_frame_p99_le_0.5ms": lat["record_frame_us"]["p99"] <= 500,
        "log_detection_p99_le_0.5ms": lat["log_detection_us"]["p99"] <= 500,
        "jpeg_per_core_bgr_ge_0.9x_imencode": results["jpeg"]["bgr"][
            "ratio_per_core_vs_raw_imencode"
        ]
        >= 0.9,
        "jpeg_per_core_rgb_ge_0.9x_imencode": results["jpeg"]["rgb"][
            "ratio_per_core_vs_raw_imencode"
        ]
        >= 0.9,
        "detections_ge_200k_per_s": results["detections"]["entries_per_s_to_disk"] >= 200_000,
    }
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
