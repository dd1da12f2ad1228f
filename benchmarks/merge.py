"""Merge throughput: ``merge_recording_chunks`` (PyAV stream copy) vs ``ffmpeg -f concat -c copy``.

Usage::

    .venv/bin/python benchmarks/merge.py [--seconds 60] [--chunk-seconds 10] [--repeat 3]

Builds a realistic spool recording once in a temporary directory (RGB 1280x800 @ 25 fps
libx264 4 Mbit/s, depth 640x400 @ 25 fps FFV1 gray16le, IMU 100 Hz JSON in an ``ass`` track,
chunks per docs/spool-format.md), then times, on the same chunk files with a warm page cache:

* ``all_streams``: our merge of the whole recording vs one ffmpeg run that concatenates each
  stream's chunks with its own concat demuxer input and maps all three (``-map 0 -map 1
  -map 2 -c copy``): the same work, three tracks in one MKV.
* ``rgb_only``: our merge of a recording holding only the RGB stream vs ffmpeg concat of the
  RGB chunks alone.

Each comparison runs twice: with the outputs on disk beside the chunks (our merge fsyncs its
output before returning, so ffmpeg's output is fsynced too and counted) and on tmpfs
(``/dev/shm``: no disk, muxing work only). Throughput is input chunk bytes / wall time, best
of ``--repeat`` runs, alternating the tools; every output is deleted right after its run.
Prints one JSON document. ``run(recording_dir)`` does the comparison for any existing spool
recording (used by the recording benchmark).
"""

from __future__ import annotations

import argparse
import fractions
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

import av
import numpy as np

from omgrab.recording import merge

MS = fractions.Fraction(1, 1000)


def _chunk_container(path: pathlib.Path) -> Any:
    path.parent.mkdir(parents=True, exist_ok=True)
    return av.open(
        str(path),
        "w",
        format="matroska",
        container_options={"flush_packets": "1", "cluster_time_limit": "100"},
    )


def _video_stream(out: Any, codec: str, width: int, height: int, pix_fmt: str, **opts: Any) -> Any:
    stream = out.add_stream(codec, rate=25)
    stream.width = width
    stream.height = height
    stream.pix_fmt = pix_fmt
    stream.time_base = MS
    stream.codec_context.time_base = MS
    stream.codec_context.gop_size = 25
    if codec == "libx264":
        stream.codec_context.max_b_frames = 0
        stream.codec_context.bit_rate = 4_000_000
        stream.codec_context.options = {"preset": "ultrafast"}
    stream.metadata.update(opts.get("metadata", {}))
    return stream


def build_recording(root: pathlib.Path, seconds: int, chunk_seconds: int) -> pathlib.Path:
    """Write a reference-stream-set spool recording and return its directory."""
    rec = root / "bench-recording"
    rng = np.random.default_rng(7)
    texture = rng.integers(0, 256, size=(800 + 64, 1280 + 64, 3), dtype=np.uint8)
    # a smooth scene plus sensor noise so x264 has real work at 4 Mbit/s
    yy, xx = np.mgrid[0:864, 0:1344]
    scene = ((xx // 3 + yy // 5) % 256).astype(np.uint8)[..., None]
    texture = (scene // 2 + texture // 2).astype(np.uint8)
    depth_base = (1000 + (np.mgrid[0:400, 0:640][1] * 5)).astype(np.uint16)
    streams: dict[str, Any] = {
        "rgb": {
            "kind": "video",
            "config": {
                "width": 1280,
                "height": 800,
                "fps": 25,
                "codec": "libx264",
                "bitrate": 4_000_000,
                "input_pixel_format": "rgb24",
                "output_pixel_format": "yuv420p",
                "stream_options": {"preset": "ultrafast", "g": "25", "bf": "0"},
                "metadata": {"type": "rgb", "TITLE": "rgb"},
            },
        },
        "depth": {
            "kind": "video",
            "config": {
                "width": 640,
                "height": 400,
                "fps": 25,
                "codec": "ffv1",
                "bitrate": 0,
                "input_pixel_format": "gray16le",
                "output_pixel_format": "gray16le",
                "stream_options": {},
                "metadata": {"type": "depth", "TITLE": "depth"},
            },
        },
        "imu": {"kind": "data", "config": {"codec": "ass", "metadata": {"type": "imu"}}},
    }
    rec.mkdir(parents=True)
    (rec / "recording.json").write_text(
        json.dumps(
            {
                "schema": 1,
                "recording_id": rec.name,
                "started_at": "2026-11-22T03:00:00+00:00",
                "software_version": "bench",
                "chunk_length_s": float(chunk_seconds),
                "streams": streams,
                "devices": [],
            }
        )
    )
    frames_per_chunk = 25 * chunk_seconds
    for chunk in range(seconds // chunk_seconds):
        chunk_id = f"{chunk + 1:05d}"
        out = _chunk_container(rec / "rgb" / f"{chunk_id}.mkv")
        stream = _video_stream(out, "libx264", 1280, 800, "yuv420p")
        for i in range(frames_per_chunk):
            n = chunk * frames_per_chunk + i
            dx, dy = n % 64, (n // 2) % 64
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(texture[dy : dy + 800, dx : dx + 1280]), format="rgb24"
            )
            frame.pts = n * 40
            frame.time_base = MS
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        out.close()

        out = _chunk_container(rec / "depth" / f"{chunk_id}.mkv")
        stream = _video_stream(out, "ffv1", 640, 400, "gray16le")
        for i in range(frames_per_chunk):
            n = chunk * frames_per_chunk + i
            noise = rng.integers(0, 24, size=(400, 640), dtype=np.uint16)
            frame = av.VideoFrame.from_ndarray(depth_base + noise + n, format="gray16le")
            frame.pts = n * 40 + 3
            frame.time_base = MS
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        out.close()

        out = _chunk_container(rec / "imu" / f"{chunk_id}.mkv")
        data = out.add_mux_stream("ass")
        data.time_base = MS
        for i in range(100 * chunk_seconds):
            pts = (chunk * 100 * chunk_seconds + i) * 10 + 1
            payload = json.dumps(
                {"t": pts, "a": [0.01, -9.81, 0.2], "g": [0.001, 0.002, -0.003]},
                separators=(",", ":"),
            ).encode()
            packet = av.Packet(payload)
            packet.stream = data
            packet.time_base = MS
            packet.pts = packet.dts = pts
            packet.duration = 10
            out.mux(packet)
        out.close()
    (rec / "COMPLETE").touch()
    return rec


def _stream_dirs(recording_dir: pathlib.Path) -> list[pathlib.Path]:
    doc = json.loads((recording_dir / "recording.json").read_text())
    names = list(doc["streams"])
    video = [n for n in names if doc["streams"][n]["kind"] == "video"]
    data = [n for n in names if doc["streams"][n]["kind"] != "video"]
    return [recording_dir / n for n in video + data]


def _input_bytes(dirs: list[pathlib.Path]) -> int:
    return sum(p.stat().st_size for d in dirs for p in d.glob("*.mkv"))


def _ffmpeg_concat(
    dirs: list[pathlib.Path], work: pathlib.Path, output: pathlib.Path, fsync: bool
) -> float:
    cmd = ["ffmpeg", "-v", "error", "-y"]
    for d in dirs:
        listing = work / f"{d.name}.txt"
        listing.write_text("".join(f"file '{p.resolve()}'\n" for p in sorted(d.glob("*.mkv"))))
        cmd += ["-f", "concat", "-safe", "0", "-i", str(listing)]
    for i in range(len(dirs)):
        cmd += ["-map", str(i)]
    cmd += ["-c", "copy", str(output)]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    if fsync:  # our merge makes its output durable before returning; make ffmpeg's too
        fd = os.open(output, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return time.perf_counter() - start


def _ours(recording_dir: pathlib.Path, output: pathlib.Path) -> float:
    start = time.perf_counter()
    merge.merge_recording_chunks(recording_dir, output)
    return time.perf_counter() - start


def _compare(
    recording_dir: pathlib.Path,
    dirs: list[pathlib.Path],
    work: pathlib.Path,
    out_dir: pathlib.Path,
    repeat: int,
    fsync_ffmpeg: bool,
) -> dict[str, Any]:
    size = _input_bytes(dirs)
    ours: list[float] = []
    ffmpeg: list[float] = []
    for i in range(repeat):
        # outputs are deleted right away so no run pays for an earlier run's dirty pages
        target = out_dir / f"ffmpeg-{i}.mkv"
        ffmpeg.append(_ffmpeg_concat(dirs, work, target, fsync_ffmpeg))
        target.unlink()
        target = out_dir / f"ours-{i}.mkv"
        ours.append(_ours(recording_dir, target))
        target.unlink()
        target.with_suffix(".json").unlink()
    ours_s, ffmpeg_s = min(ours), min(ffmpeg)
    mb = size / 1e6
    return {
        "input_mb": round(mb, 2),
        "ours_s": round(ours_s, 4),
        "ffmpeg_concat_s": round(ffmpeg_s, 4),
        "ours_mb_per_s": round(mb / ours_s, 1),
        "ffmpeg_concat_mb_per_s": round(mb / ffmpeg_s, 1),
        "ratio": round(ffmpeg_s / ours_s, 2),
        "runs": {"ours_s": [round(t, 4) for t in ours], "ffmpeg_s": [round(t, 4) for t in ffmpeg]},
    }


def _rgb_only_recording(recording_dir: pathlib.Path, root: pathlib.Path) -> pathlib.Path:
    rgb_rec = root / "bench-rgb-only"
    (rgb_rec / "rgb").mkdir(parents=True)
    doc = json.loads((recording_dir / "recording.json").read_text())
    doc["streams"] = {"rgb": doc["streams"]["rgb"]}
    doc["recording_id"] = rgb_rec.name
    (rgb_rec / "recording.json").write_text(json.dumps(doc))
    for chunk in (recording_dir / "rgb").glob("*.mkv"):
        os.link(chunk, rgb_rec / "rgb" / chunk.name)
    (rgb_rec / "COMPLETE").touch()
    return rgb_rec


def run(
    spool_recording_dir: str | os.PathLike[str],
    repeat: int = 3,
    output_dirs: dict[str, pathlib.Path] | None = None,
) -> dict[str, Any]:
    """Compare our merge with ``ffmpeg -f concat -c copy`` on an existing spool recording.

    Args:
        spool_recording_dir: ``<spool>/<recording_id>`` (with recording.json).
        repeat: Runs per tool; the best is reported.
        output_dirs: Where the merged files go, by label; default: ``disk`` (a temporary
            directory beside the chunks; ffmpeg's output is fsynced too, as ours is) and
            ``tmpfs`` (``/dev/shm`` when present: no disk in the way, muxing speed only).

    Returns:
        Per output location, ``all_streams`` and (when there is an ``rgb`` stream)
        ``rgb_only`` results: MB/s of input chunks, ratio = ffmpeg time / our time.
    """
    recording_dir = pathlib.Path(spool_recording_dir)
    dirs = _stream_dirs(recording_dir)
    for d in dirs:  # warm the page cache so both tools read from memory
        for p in d.glob("*.mkv"):
            p.read_bytes()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="omgrab-merge-bench-", dir=recording_dir.parent) as tmp:
        work = pathlib.Path(tmp)
        rgb_rec = (
            _rgb_only_recording(recording_dir, work) if (recording_dir / "rgb").is_dir() else None
        )
        locations = output_dirs
        if locations is None:
            locations = {"disk": work}
            if pathlib.Path("/dev/shm").is_dir():
                locations["tmpfs"] = pathlib.Path("/dev/shm")
        for label, out_base in locations.items():
            with tempfile.TemporaryDirectory(prefix="omgrab-merge-out-", dir=out_base) as out:
                out_dir = pathlib.Path(out)
                fsync_ffmpeg = label != "tmpfs"
                entry = {
                    "ffmpeg_output_fsynced": fsync_ffmpeg,
                    "all_streams": _compare(
                        recording_dir, dirs, work, out_dir, repeat, fsync_ffmpeg
                    ),
                }
                if rgb_rec is not None:
                    entry["rgb_only"] = _compare(
                        rgb_rec, [rgb_rec / "rgb"], work, out_dir, repeat, fsync_ffmpeg
                    )
                results[label] = entry
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="recording length")
    parser.add_argument("--chunk-seconds", type=int, default=10, help="chunk length")
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool (best counts)")
    args = parser.parse_args(argv)
    if shutil.which("ffmpeg") is None:
        print("ffmpeg not installed: nothing to compare against", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="omgrab-merge-chunks-") as tmp:
        start = time.perf_counter()
        rec = build_recording(pathlib.Path(tmp), args.seconds, args.chunk_seconds)
        build_s = time.perf_counter() - start
        result = {
            "recording": {
                "seconds": args.seconds,
                "chunk_seconds": args.chunk_seconds,
                "streams": "rgb 1280x800@25 h264 4Mbit/s, depth 640x400@25 ffv1, imu 100 Hz",
                "build_s": round(build_s, 1),
            },
            **run(rec, repeat=args.repeat),
            "ffmpeg": subprocess.run(
                ["ffmpeg", "-version"], capture_output=True, text=True
            ).stdout.splitlines()[0],
            "pyav": av.__version__,
            "cpus": os.cpu_count(),
        }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
