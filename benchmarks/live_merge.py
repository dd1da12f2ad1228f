"""Stop means done: the incremental merge on the reference set, for 1- and 30-minute recordings.

Usage::

    .venv/bin/python benchmarks/live_merge.py [--minutes 1 30] [--chunk-seconds 60]
        [--no-reference] [--keep DIR]

Builds one chunk per stream of the reference set once (``benchmarks/merge.py``: RGB 1280x800
libx264 4 Mbit/s, depth 640x400 FFV1 gray16le with sensor noise, IMU 100 Hz), then for each
length replays a recording: chunk k of every stream is written (the base chunk stream-copied
with its pts moved by k chunk lengths, as fast as the disk takes it) while chunk k-1 is marked
closed in ``stats.json``, exactly what the writer does when a worker rotates. A
:class:`~omgrab.recording.live_merge.LiveMerge` runs beside it, as ``RecordingManager`` runs
it. At the end the last chunks are closed (the stop) and ``finish()`` is timed.

Reported per length:

* ``stop_to_final_s``: stop -> final MKV and manifest durable under their final names
  (``published_at``); ``stop_to_done_s`` adds the spool clean-up; target <= 2 s.
* ``append_cpu_per_recorded_s``: CPU seconds of the merge thread per second of recording,
  i.e. the fraction of one core the appending costs at real time; target <= 0.05.
* ``peak_disk_bytes`` vs ``final_bytes``: spool + output sampled every 50 ms; ``peak_over_final
  _chunks`` is the excess in chunk sets (one chunk of every stream); target <= 2.
* ``reference``: the previous behaviour in the same run, the full merge after the stop
  (``merge_recording(cleanup=True)``) on the same chunks: its stop-to-final time and its peak
  disk (spool + output). ``--no-reference`` skips it (it needs the whole recording twice).

Prints one JSON document; the command line is in it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pathlib
import shutil
import sys
import tempfile
import threading
import time
from typing import Any

import av

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from omgrab.recording import live_merge, merge  # noqa: E402

STREAMS = ("rgb", "depth", "imu")


def _merge_bench() -> Any:
    spec = importlib.util.spec_from_file_location("merge_bench", REPO / "benchmarks" / "merge.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shifted_copy(source: pathlib.Path, target: pathlib.Path, offset_ms: int) -> None:
    """Stream-copy one chunk with every pts (and dts) moved by ``offset_ms``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    with av.open(str(source)) as inp, av.open(str(part), "w", format="matroska") as out:
        in_stream = inp.streams[0]
        out_stream = out.add_stream_from_template(in_stream)
        out_stream.time_base = in_stream.time_base
        out_stream.metadata.update(in_stream.metadata)
        for packet in inp.demux(in_stream):
            if not packet.size:
                continue
            if packet.pts is not None:
                packet.pts += offset_ms
            if packet.dts is not None:
                packet.dts += offset_ms
            packet.stream = out_stream
            out.mux(packet)
    with part.open("rb+") as f:
        os.fsync(f.fileno())
    part.replace(target)


class DiskPeak:
    """Samples the bytes under some directories every ``interval`` seconds."""

    def __init__(self, *roots: pathlib.Path, interval: float = 0.05) -> None:
        self.roots = roots
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> int:
        total = 0
        for root in self.roots:
            for path in root.rglob("*"):
                try:
                    if path.is_file():
                        total += path.stat().st_size
                except OSError:
                    continue
        self.peak = max(self.peak, total)
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> DiskPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def write_stats(spool: pathlib.Path, chunks: int, closed: int, stopped: bool) -> None:
    streams = {
        name: {
            "chunks": [
                {"chunk_id": f"{i:05d}", "file": f"{name}/{i:05d}.mkv", "closed": i <= closed}
                for i in range(1, chunks + 1)
            ]
        }
        for name in STREAMS
    }
    doc = {"streams": streams, "stopped_at": "2026-11-22T04:00:00+00:00" if stopped else None}
    tmp = spool / ".stats.json.tmp"
    tmp.write_text(json.dumps(doc))
    tmp.replace(spool / "stats.json")


def wait(predicate: Any, timeout: float = 600.0) -> None:
    tick = threading.Event()
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the incremental merge did not catch up")
        tick.wait(0.01)


def run_length(
    base: pathlib.Path, root: pathlib.Path, minutes: float, chunk_s: int, reference: bool
) -> dict[str, Any]:
    chunks = max(1, round(minutes * 60 / chunk_s))
    spool = root / "spool" / "rec"
    out = root / "out"
    spool.mkdir(parents=True)
    out.mkdir(parents=True)
    shutil.copyfile(base / "recording.json", spool / "recording.json")
    write_stats(spool, chunks, 0, False)
    live = live_merge.LiveMerge(spool, out)
    live.start()
    with DiskPeak(spool, out) as disk:
        started = time.monotonic()
        for k in range(chunks):
            for name in STREAMS:
                source = base / name / "00001.mkv"
                shifted_copy(source, spool / name / f"{k + 1:05d}.mkv", k * chunk_s * 1000)
            looks = live.looks
            write_stats(spool, chunks, k, False)  # chunk k+1 is open, chunk k closed
            # caught up: it found nothing more to read twice since (then flushed and waited)
            wait(lambda n=looks: live.looks >= n + 2 and live.idle)
        recording_wall = time.monotonic() - started
        append_cpu = live.thread_cpu_s()
        write_stats(spool, chunks, chunks, True)
        (spool / "COMPLETE").touch()
        stop = time.monotonic()
        result = live.finish(600)
        done = time.monotonic()
    assert live.published_at is not None
    final = result.output_path.stat().st_size
    chunk_set = sum(
        (base / name / "00001.mkv").stat().st_size for name in STREAMS
    )  # one chunk of every stream
    report: dict[str, Any] = {
        "minutes": minutes,
        "chunks_per_stream": chunks,
        "chunk_seconds": chunk_s,
        "stop_to_final_s": round(live.published_at - stop, 3),
        "stop_to_done_s": round(done - stop, 3),
        "appends": live.appended_batches,
        "chunks_deleted_while_recording": len(live.deleted_chunks),
        "append_cpu_s": round(append_cpu, 2),
        "append_cpu_per_recorded_s": round(append_cpu / (chunks * chunk_s), 4),
        "replay_wall_s": round(recording_wall, 1),
        "final_bytes": final,
        "chunk_set_bytes": chunk_set,
        "peak_disk_bytes": disk.peak,
        "peak_over_final_chunks": round((disk.peak - final) / chunk_set, 2),
        "cleaned_up": result.cleaned_up,
    }
    shutil.rmtree(root / "spool", ignore_errors=True)
    if reference:
        report["reference"] = full_merge_reference(base, root, chunks, chunk_s, final)
    shutil.rmtree(out, ignore_errors=True)
    return report


def full_merge_reference(
    base: pathlib.Path, root: pathlib.Path, chunks: int, chunk_s: int, live_final: int
) -> dict[str, Any]:
    """The previous behaviour: every chunk stays in the spool, the whole merge runs at stop."""
    spool = root / "ref-spool" / "rec"
    out = root / "ref-out"
    spool.mkdir(parents=True)
    out.mkdir(parents=True)
    shutil.copyfile(base / "recording.json", spool / "recording.json")
    for k in range(chunks):
        for name in STREAMS:
            shifted_copy(
                base / name / "00001.mkv", spool / name / f"{k + 1:05d}.mkv", k * chunk_s * 1000
            )
    write_stats(spool, chunks, chunks, True)
    (spool / "COMPLETE").touch()
    with DiskPeak(spool, out) as disk:
        stop = time.monotonic()
        result = merge.merge_recording(spool, out, cleanup=True)
        done = time.monotonic()
    report = {
        "stop_to_done_s": round(done - stop, 3),
        "final_bytes": result.output_path.stat().st_size,
        "peak_disk_bytes": disk.peak,
        "same_size_as_live": result.output_path.stat().st_size == live_final,
    }
    shutil.rmtree(root / "ref-spool", ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 30.0])
    parser.add_argument("--chunk-seconds", type=int, default=60)
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--keep", type=pathlib.Path, default=None, help="work directory")
    args = parser.parse_args()
    work = args.keep or pathlib.Path(tempfile.mkdtemp(prefix="omgrab-live-", dir="/var/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "command": " ".join([".venv/bin/python", "benchmarks/live_merge.py", *sys.argv[1:]]),
        "cpus": os.cpu_count(),
        "load_average_before": os.getloadavg(),
    }
    try:
        base_root = work / "base"
        if not (base_root / "bench-recording").exists():
            _merge_bench().build_recording(base_root, args.chunk_seconds, args.chunk_seconds)
        base = base_root / "bench-recording"
        report["lengths"] = []
        for minutes in args.minutes:
            root = work / f"run-{minutes}"
            shutil.rmtree(root, ignore_errors=True)
            report["lengths"].append(
                run_length(base, root, minutes, args.chunk_seconds, not args.no_reference)
            )
            shutil.rmtree(root, ignore_errors=True)
    finally:
        report["load_average_after"] = os.getloadavg()
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
