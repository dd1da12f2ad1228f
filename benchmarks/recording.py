"""Recording benchmark: ChunkedWriter throughput under application load, merge speed, crash loss.

Usage::

    .venv/bin/python benchmarks/recording.py [--frames N] [--quick] [--out DIR]

Prints one JSON document. Measures, in one run on the same pre-generated frames:

* ``ceiling``: the two reference encoders alone, each in its own process, in parallel
  (RGB 1280x800 libx264 superfast 4 Mbit/s g=25 bf=0, depth 640x400 FFV1 gray16le); fps is
  frames / wall time until both are done.
* ``writer``: ChunkedWriter (RGB + depth + IMU) fed as fast as it takes frames from the main
  thread, from the first put until ``stop()`` returned (everything drained), under three loads
  in the same process: ``none``, ``busy30`` (a pure-Python thread busy 3 ms then sleeping 7 ms)
  and ``hog`` (a pure-Python thread that never sleeps). Reported: fps, ratio to the ceiling and
  to the unloaded run, frames put vs packets demuxed back from the files, drops, CPU % of both
  cores (psutil, whole system, over the run) and peak RSS of this process plus its children
  (sampled; shared memory is counted in every process that maps it).
* ``merge``: ``omgrab.recording.merge.merge_recording_chunks`` MB/s vs ``ffmpeg -f concat -c
  copy`` on the same chunks (null when the merge module is missing).
* ``realtime``: the reference set paced at 25 fps for ``--realtime-s`` seconds: drops and CPU
  of the recorder (process + workers) and of the whole system, in % of both cores.
* ``crash``: ms and bytes unreadable per stream after SIGKILL of a real-time recorder process
  group (reference size); ``crash_plain``: the same with the plain quick-start config at each
  of ``CRASH_KILL_POINTS_S``, with each stream's backlog at the kill and the bound it implies
  (encoder delay + 1 frame + backlog). ``--crash-only`` runs just these, for both configs.
* ``published`` (with ``--compare-published PYTHON``, a venv holding ``omgrab==0.1.2``):
  ``benchmarks/realtime_recorder.py`` run by this interpreter and by ``PYTHON`` one after the
  other in the same run, each recording random-noise frames in real time for
  ``--compare-seconds`` with the built-in RGB config and with the published quick-start
  config (``plain``): PSS of the whole recorder (process tree), CPU in fractions of both
  cores while recording and CPU ms per video frame including the drain at stop, for the two
  writers side by side; ``--compare-repeats N`` alternates N runs each and adds medians.
* ``plain``: the published quick-start config (RGB 640x400 libx264, no ``stream_options``)
  alone: the writer fed as fast as it takes frames vs the same encoder alone in one process
  with the options the writer applies (``encoder_options.plan``), and frames put vs in files.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import fractions
import json
import multiprocessing
import os
import pathlib
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from typing import Any

import av
import numpy as np
import psutil

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

from omgrab import recording  # noqa: E402

RGB_SHAPE = (800, 1280, 3)
DEPTH_SHAPE = (400, 640)
DISTINCT = 24
TB = fractions.Fraction(1, 1000)
ORIGIN = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


# -- frames ----------------------------------------------------------------------------------


def make_rgb(n: int) -> list[np.ndarray]:
    """Moving colour gradients with some texture: realistic work for libx264."""
    h, w, _ = RGB_SHAPE
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 12, size=(h, w), dtype=np.uint8)
    frames = []
    for i in range(n):
        r = (x * 0.2 + i * 6) % 256
        g = (y * 0.3 + i * 3) % 256
        b = 128 + 100 * np.sin((x + y) / 60.0 + i / 5.0)
        frame = np.stack([r, g, b], axis=-1).astype(np.uint8)
        frame[..., 1] += noise
        frames.append(frame)
    return frames


def make_depth(n: int) -> list[np.ndarray]:
    """Millimetre depth: a tilted floor, a moving box and +-3 mm sensor noise."""
    h, w = DEPTH_SHAPE
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(2)
    frames = []
    for i in range(n):
        depth = 800 + y * 6 + x * 0.5
        x0 = 100 + (i * 7) % 400
        depth[100:250, x0 : x0 + 120] = 650
        depth += rng.normal(0, 3, size=(h, w))
        frames.append(np.clip(depth, 0, 65535).astype(np.uint16))
    return frames


def imu_item(i: int) -> bytes:
    return json.dumps(
        {"t": i, "acc": [0.01 * i, -9.81, 0.2], "gyro": [0.001, 0.002 * i, 0.0]},
        separators=(",", ":"),
    ).encode()


# -- encode-only ceiling -----------------------------------------------------------------------


def _encode_only(kind: str, frames: int, path: str, barrier: Any, result: Any) -> None:
    source = make_rgb(DISTINCT) if kind == "rgb" else make_depth(DISTINCT)
    cfg = recording.rgb_stream_config() if kind == "rgb" else recording.depth_stream_config()
    out = av.open(path, "w", format="matroska")
    st = out.add_stream(cfg.codec, rate=cfg.fps, options=dict(cfg.stream_options))
    st.width, st.height = cfg.width, cfg.height
    st.pix_fmt = cfg.output_pixel_format
    st.bit_rate = cfg.bitrate
    st.time_base = TB
    st.codec_context.time_base = TB
    barrier.wait()
    start = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_start = usage.ru_utime + usage.ru_stime
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(source[i % DISTINCT], format=cfg.input_pixel_format)
        frame.pts = i * 40
        frame.time_base = TB
        for packet in st.encode(frame):
            out.mux(packet)
    for packet in st.encode(None):
        out.mux(packet)
    out.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu_start
    result.put((kind, (time.perf_counter() - start, cpu)))


def encode_only_ceiling(frames: int, workdir: pathlib.Path) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(3)
    result = ctx.Queue()
    procs = [
        ctx.Process(
            target=_encode_only, args=(kind, frames, str(workdir / f"{kind}.mkv"), barrier, result)
        )
        for kind in ("rgb", "depth")
    ]
    for p in procs:
        p.start()
    barrier.wait()
    start = time.perf_counter()
    times = dict(result.get() for _ in procs)
    wall = time.perf_counter() - start
    for p in procs:
        p.join()
    cpu_s = times["rgb"][1] + times["depth"][1]
    return {
        "fps": frames / wall,
        "rgb_alone_fps": frames / times["rgb"][0],
        "depth_alone_fps": frames / times["depth"][0],
        "cpu_ms_per_frame": round(1000 * cpu_s / frames, 2),
        "frames": frames,
    }


# -- application load --------------------------------------------------------------------------


class Load:
    """A pure-Python thread: busy ``busy_ms`` then asleep ``sleep_ms`` (0: never sleeps)."""

    def __init__(self, busy_ms: float, sleep_ms: float) -> None:
        self._busy_s = busy_ms / 1000
        self._sleep_s = sleep_ms / 1000
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.loops = 0

    def _run(self) -> None:
        n = 0
        stop = self._stop
        if self._sleep_s <= 0:  # never sleeps
            while not stop.is_set():
                n += 1
        else:
            while not stop.is_set():
                end = time.perf_counter() + self._busy_s
                while time.perf_counter() < end:
                    n += 1
                time.sleep(self._sleep_s)
        self.loops = n

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class PeakRss:
    """Samples RSS of this process and its children (listed once at start) every 200 ms.

    Listing children scans all of /proc, so it is done once, not per sample: a sampler that
    costs CPU in the measured process would distort the measurement.
    """

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._me = psutil.Process()
        self._children = self._me.children(recursive=True)

    def _sample(self) -> int:
        total = self._me.memory_info().rss
        for child in self._children:
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
        return int(total)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self._sample())

    def __enter__(self) -> PeakRss:
        self.peak = self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def count_packets(directory: pathlib.Path, stream: str) -> int:
    n = 0
    for path in sorted((directory / stream).glob("*.mkv")):
        with av.open(str(path)) as container:
            n += sum(
                1 for p in container.demux(container.streams[0]) if p.size and p.pts is not None
            )
    return n


def run_realtime(seconds: float, spool: pathlib.Path) -> dict[str, Any]:
    """Reference set paced at 25 fps (one IMU batch per frame) for ``seconds``."""
    rgb = make_rgb(DISTINCT)
    depth = make_depth(DISTINCT)
    configs = {"rgb": recording.rgb_stream_config(), "depth": recording.depth_stream_config()}
    writer = recording.ChunkedWriter(
        "rec-realtime",
        spool,
        configs,
        sensor_stream_configs={"imu": recording.imu_stream_config()},
        chunk_length_s=10.0,
    )
    writer.start()
    origin = writer.origin
    assert origin is not None
    queues = {s: writer.get_encoder_queue(s) for s in ("rgb", "depth", "imu")}
    me = psutil.Process()
    procs = [me, *me.children(recursive=True)]
    cpu_before = sum(sum(p.cpu_times()[:2]) for p in procs)
    psutil.cpu_percent()
    start = time.monotonic()
    frames = int(seconds * 25)
    for i in range(frames):
        delay = start + i * 0.04 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        ts = origin + datetime.timedelta(milliseconds=40 * i)
        queues["rgb"].put((rgb[i % DISTINCT], ts))
        queues["depth"].put((depth[i % DISTINCT], ts))
        queues["imu"].put((imu_item(i), ts))
    elapsed = time.monotonic() - start
    cpu_after = sum(sum(p.cpu_times()[:2]) for p in procs)
    system_cpu = psutil.cpu_percent()
    writer.stop()
    stats = writer.stats
    return {
        "seconds": round(elapsed, 1),
        "frames": frames,
        "dropped": {s: stats[s].frames_dropped for s in stats},
        "written": {s: stats[s].frames_written for s in stats},
        "recorder_cpu_percent_of_both_cores": round(
            100 * (cpu_after - cpu_before) / elapsed / (os.cpu_count() or 1), 1
        ),
        "system_cpu_percent_of_both_cores": system_cpu,
    }


def run_writer(
    frames: int, spool: pathlib.Path, name: str, load: tuple[float, float] | None
) -> dict[str, Any]:
    rgb = make_rgb(DISTINCT)
    depth = make_depth(DISTINCT)
    configs = {"rgb": recording.rgb_stream_config(), "depth": recording.depth_stream_config()}
    writer = recording.ChunkedWriter(
        name,
        spool,
        configs,
        sensor_stream_configs={"imu": recording.imu_stream_config()},
        chunk_length_s=10.0,
        origin=ORIGIN,
        put_timeout_s=60.0,  # fed as fast as it takes frames: wait, never drop
    )
    writer.start()
    queues = {s: writer.get_encoder_queue(s) for s in ("rgb", "depth", "imu")}
    load_ctx = Load(*load) if load else None
    if load_ctx:
        load_ctx.__enter__()
    try:
        with PeakRss() as rss:
            me_cpu_start = sum(psutil.Process().cpu_times()[:2])
            psutil.cpu_percent(percpu=True)
            start = time.perf_counter()
            for i in range(frames):
                ts = ORIGIN + datetime.timedelta(milliseconds=40 * i)
                queues["rgb"].put((rgb[i % DISTINCT], ts))
                queues["depth"].put((depth[i % DISTINCT], ts))
                queues["imu"].put((imu_item(i), ts))
            put_done = time.perf_counter() - start
            writer.stop()
            wall = time.perf_counter() - start
            cpu = psutil.cpu_percent(percpu=True)
            me_cpu = sum(psutil.Process().cpu_times()[:2]) - me_cpu_start
    finally:
        if load_ctx:
            load_ctx.__exit__(None, None, None)
    stats = writer.stats
    workers_cpu = sum(s.worker_cpu_s or 0.0 for s in stats.values())
    return {
        "fps": frames / wall,
        "seconds": wall,
        # CPU per frame set: app process (producer + monitor; + the load thread if any) and
        # every worker process, independent of how busy the shared machine was.
        "cpu_ms_per_frame": {
            "app_process": round(1000 * me_cpu / frames, 2),
            "workers": round(1000 * workers_cpu / frames, 2),
        },
        "put_seconds": put_done,
        "frames_put": {s: stats[s].frames_put for s in stats},
        "frames_in_files": {s: count_packets(writer.directory, s) for s in stats},
        "dropped": {s: stats[s].frames_dropped for s in stats},
        "cpu_percent_per_core": cpu,
        "cpu_percent_both_cores": sum(cpu) / len(cpu),
        "peak_rss_mb": round(rss.peak / 2**20, 1),
        "healthy": writer.healthy,
    }


# -- merge -------------------------------------------------------------------------------------


def bench_merge(recording_dir: pathlib.Path, workdir: pathlib.Path) -> dict[str, Any]:
    try:
        from omgrab.recording import merge
    except ImportError:
        return {"omgrab_mb_s": None, "note": "omgrab.recording.merge is not available"}
    if not hasattr(merge, "merge_recording_chunks"):
        return {"omgrab_mb_s": None, "note": "merge_recording_chunks is not available"}
    chunk_bytes = sum(p.stat().st_size for p in recording_dir.glob("*/*.mkv"))
    os.sync()
    out = workdir / "merged.mkv"
    start = time.perf_counter()
    merge.merge_recording_chunks(recording_dir, out)
    omgrab_s = time.perf_counter() - start
    lists = []
    streams = sorted(p.name for p in recording_dir.iterdir() if p.is_dir())
    for stream in streams:
        listing = workdir / f"{stream}.txt"
        listing.write_text(
            "".join(f"file '{p}'\n" for p in sorted((recording_dir / stream).glob("*.mkv")))
        )
        lists.append(listing)
    cmd = ["ffmpeg", "-v", "error", "-y"]
    for listing in lists:
        cmd += ["-f", "concat", "-safe", "0", "-i", str(listing)]
    for n in range(len(lists)):
        cmd += ["-map", str(n)]
    cmd += ["-c", "copy", str(workdir / "concat.mkv")]
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    ffmpeg_s = time.perf_counter() - start
    mb = chunk_bytes / 1e6
    return {
        "chunk_mb": round(mb, 2),
        "omgrab_mb_s": round(mb / omgrab_s, 1),
        "ffmpeg_concat_mb_s": round(mb / ffmpeg_s, 1),
        "ratio": round(ffmpeg_s / omgrab_s, 2),
    }


# -- crash -------------------------------------------------------------------------------------


CRASH_KILL_POINTS_S = (0.6, 1.3, 2.2, 3.1, 4.7)


def _crash_once(
    workdir: pathlib.Path, name: str, config: str, kill_after_s: float
) -> dict[str, Any]:
    """Record in real time (``tests/test_recording_crash_recorder.py``), SIGKILL the whole
    process group ``kill_after_s`` after the first item, and read back what the files hold."""
    size = "quickstart" if config == "plain" else "reference"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.test_recording_crash_recorder",
            str(workdir),
            name,
            size,
            "60",
            config,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    accepted: dict[str, int] = {}
    backlog: dict[str, int] = {}
    first = threading.Event()

    def read() -> None:
        # lines: ``<pts_ms> rgb=<backlog_ms>[!] depth=... imu=...`` ("!": that item dropped)
        assert proc.stdout is not None
        for line in proc.stdout:
            pts_text, *fields = line.split()
            if not pts_text.isdigit():
                continue
            for field in fields:
                stream, value = field.split("=")
                if not value.endswith("!"):
                    accepted[stream] = int(pts_text)
                backlog[stream] = int(value.rstrip("!"))
            first.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    first.wait(60)
    time.sleep(kill_after_s)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    reader.join(10)
    for leftover in pathlib.Path("/dev/shm").glob(f"omgrab-{proc.pid}-*"):
        leftover.unlink()
    directory = workdir / name
    streams = json.loads((directory / "recording.json").read_text())["streams"]
    result: dict[str, Any] = {"kill_after_s": kill_after_s}
    for stream in ("rgb", "depth", "imu"):
        last_pts, end, size_bytes = None, 0, 0
        for path in sorted((directory / stream).glob("*.mkv")):
            with av.open(str(path)) as container:
                for packet in container.demux(container.streams[0]):
                    if packet.size and packet.pts is not None:
                        last_pts, end = int(packet.pts), int(packet.pos or 0) + packet.size
            size_bytes = path.stat().st_size
        delay = (streams[stream].get("encoder") or {}).get("delay_frames") or 0
        lost = None if stream not in accepted else accepted[stream] - (last_pts or -40)
        result[stream] = {
            "ms_lost": lost,
            "backlog_ms_at_kill": backlog.get(stream),
            "stated_bound_ms": (delay + 1) * 40 + backlog.get(stream, 0),
            "bytes_after_last_readable_packet": size_bytes - end,
        }
    return result


def bench_crash(
    workdir: pathlib.Path, config: str = "builtin", kill_points_s: Sequence[float] = (2.5,)
) -> list[dict[str, Any]]:
    """ms lost per stream after SIGKILL at each kill point, with the backlog at the kill and
    the bound it implies (encoder delay + 1 frame + backlog)."""
    return [
        _crash_once(workdir, f"crash-{config}-{n}", config, kill_after)
        for n, kill_after in enumerate(kill_points_s)
    ]


# -- main --------------------------------------------------------------------------------------


def plain_config() -> recording.VideoStreamConfig:
    """The published SDK's quick-start RGB config (no stream_options)."""
    return recording.VideoStreamConfig(
        width=640,
        height=400,
        fps=25,
        codec="libx264",
        bitrate=2_000_000,
        input_pixel_format="rgb24",
        output_pixel_format="yuv420p",
        metadata={"type": "rgb"},
    )


def bench_plain(frames: int, workdir: pathlib.Path) -> dict[str, Any]:
    """Plain libx264 config: writer throughput vs the encoder alone (same effective options)."""
    from omgrab.recording import encoder_options

    cfg = plain_config()
    plan = encoder_options.plan("rgb", cfg)
    source = [np.ascontiguousarray(f[::2, ::2]) for f in make_rgb(DISTINCT)]
    out = av.open(str(workdir / "plain-ceiling.mkv"), "w", format="matroska")
    st = out.add_stream(cfg.codec, rate=cfg.fps, options=dict(plan.options))
    st.width, st.height, st.pix_fmt, st.bit_rate = cfg.width, cfg.height, "yuv420p", cfg.bitrate
    st.time_base = TB
    st.codec_context.time_base = TB
    start = time.perf_counter()
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(source[i % DISTINCT], format="rgb24")
        frame.pts = i * 40
        frame.time_base = TB
        for packet in st.encode(frame):
            out.mux(packet)
    for packet in st.encode(None):
        out.mux(packet)
    out.close()
    ceiling_fps = frames / (time.perf_counter() - start)
    writer = recording.ChunkedWriter(
        "rec-plain", workdir / "spool", {"rgb": cfg}, origin=ORIGIN, put_timeout_s=60.0
    )
    writer.start()
    queue = writer.get_encoder_queue("rgb")
    start = time.perf_counter()
    for i in range(frames):
        queue.put((source[i % DISTINCT], ORIGIN + datetime.timedelta(milliseconds=40 * i)))
    writer.stop()
    writer_fps = frames / (time.perf_counter() - start)
    return {
        "encoder_options": plan.options,
        "ceiling_fps": round(ceiling_fps, 1),
        "writer_fps": round(writer_fps, 1),
        "ratio_to_ceiling": round(writer_fps / ceiling_fps, 3),
        "frames_put": writer.stats["rgb"].frames_put,
        "frames_in_files": count_packets(writer.directory, "rgb"),
        "encoder_delay_frames": writer.stats["rgb"].encoder_delay_frames,
    }


_MEDIAN_FIELDS = (
    "cpu_fraction_of_two_cores",
    "cpu_ms_per_video_frame",
    "recorder_pss_mb_peak",
    "seconds",
    "stop_s",
)


def compare_published(
    python: str, seconds: float, workdir: pathlib.Path, repeats: int = 1
) -> dict[str, Any]:
    """Run ``realtime_recorder.py`` with this package and with the published one (see doc).

    The runs alternate (ours, published, ours, ...) ``repeats`` times per config, so a change
    of the machine's load hits both alike; ``median`` holds the median of each figure.
    """
    script = str(REPO / "benchmarks" / "realtime_recorder.py")
    runs: dict[str, list[Any]] = {}
    for repeat in range(repeats):
        for config in ("builtin", "plain"):
            for label, interpreter in (("omgrab", sys.executable), ("published_0.1.2", python)):
                spool = workdir / f"rt-{label}-{config}-{repeat}"
                proc = subprocess.run(
                    [interpreter, script, str(spool), str(seconds), config],
                    capture_output=True,
                    text=True,
                    cwd=workdir,  # not the repository: the published venv imports its own omgrab
                    timeout=seconds * 20 + 120,
                )
                shutil.rmtree(spool, ignore_errors=True)
                lines = proc.stdout.strip().splitlines()
                runs.setdefault(f"{label}/{config}", []).append(
                    json.loads(lines[-1]) if proc.returncode == 0 and lines else proc.stderr[-2000:]
                )
    out: dict[str, Any] = {}
    for key, results in runs.items():
        ok = [r for r in results if isinstance(r, dict)]
        out[key] = {
            "runs": results,
            "median": {
                field: statistics.median(r[field] for r in ok)
                for field in _MEDIAN_FIELDS
                if ok and all(r.get(field) is not None for r in ok)
            },
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="150 frames, skip crash")
    parser.add_argument("--out", type=pathlib.Path, default=None, help="keep files here")
    parser.add_argument(
        "--realtime-s", type=float, default=20.0, help="real-time 25 fps run length (0: skip)"
    )
    parser.add_argument(
        "--compare-published",
        metavar="PYTHON",
        default=None,
        help="interpreter of a venv with omgrab==0.1.2: PSS/CPU at real time side by side",
    )
    parser.add_argument("--compare-seconds", type=float, default=15.0)
    parser.add_argument(
        "--compare-repeats", type=int, default=1, help="alternating runs per writer and config"
    )
    parser.add_argument("--plain", action="store_true", help="also the plain-config throughput")
    parser.add_argument(
        "--crash-only",
        action="store_true",
        help="run only the SIGKILL part, both configs, at each of CRASH_KILL_POINTS_S",
    )
    parser.add_argument(
        "--only-compare", action="store_true", help="run only the --compare-published part"
    )
    args = parser.parse_args()
    frames = 150 if args.quick else args.frames
    if args.quick:
        args.realtime_s = min(args.realtime_s, 5.0)
    workdir = args.out or pathlib.Path(tempfile.mkdtemp(prefix="omgrab-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "command": " ".join([".venv/bin/python", "benchmarks/recording.py", *sys.argv[1:]]),
        "cpus": os.cpu_count(),
        "load_average_before": os.getloadavg(),
        "frames": frames,
    }
    if args.compare_published:
        report["published"] = compare_published(
            args.compare_published, args.compare_seconds, workdir, args.compare_repeats
        )
    if args.crash_only:
        report["crash"] = {
            config: bench_crash(workdir, config, CRASH_KILL_POINTS_S)
            for config in ("plain", "builtin")
        }
        report["load_average_after"] = os.getloadavg()
        print(json.dumps(report, indent=2))
        if args.out is None:
            shutil.rmtree(workdir, ignore_errors=True)
        return
    if args.plain or args.only_compare:
        report["plain"] = bench_plain(frames, workdir)
    if args.only_compare:
        report["load_average_after"] = os.getloadavg()
        print(json.dumps(report, indent=2))
        if args.out is None:
            shutil.rmtree(workdir, ignore_errors=True)
        return
    try:
        # The machine may be shared: measure the ceiling before and after the writer runs and
        # compare against their mean.
        ceiling_before = encode_only_ceiling(frames, workdir)
        loads = {"none": None, "busy30": (3.0, 7.0), "hog": (0.0, 0.0)}
        writer: dict[str, Any] = {}
        for name, load in loads.items():
            writer[name] = run_writer(frames, workdir / "spool", f"rec-{name}", load)
        ceiling_after = encode_only_ceiling(frames, workdir)
        ceiling = {
            "fps": (ceiling_before["fps"] + ceiling_after["fps"]) / 2,
            "before": ceiling_before,
            "after": ceiling_after,
        }
        report["ceiling"] = ceiling
        for result in writer.values():
            result["ratio_to_ceiling"] = round(result["fps"] / ceiling["fps"], 3)
            result["ratio_to_unloaded"] = round(result["fps"] / writer["none"]["fps"], 3)
        report["writer"] = writer
        report["targets"] = {
            "unloaded_ge_0.9_ceiling": writer["none"]["ratio_to_ceiling"] >= 0.9,
            "busy30_ge_0.8_unloaded": writer["busy30"]["ratio_to_unloaded"] >= 0.8,
            "hog_ge_0.4_ceiling": writer["hog"]["ratio_to_ceiling"] >= 0.4,
            "hog_ge_30fps": writer["hog"]["fps"] >= 30,
            "every_frame_put_in_files": all(
                w["frames_put"] == w["frames_in_files"] for w in writer.values()
            ),
        }
        report["realtime"] = (
            run_realtime(args.realtime_s, workdir / "spool") if args.realtime_s > 0 else None
        )
        report["merge"] = bench_merge(workdir / "spool" / "rec-none", workdir)
        report["crash"] = None if args.quick else bench_crash(workdir)
        report["crash_plain"] = (
            None if args.quick else bench_crash(workdir, "plain", CRASH_KILL_POINTS_S)
        )
        report["load_average_after"] = os.getloadavg()
    finally:
        if args.out is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
