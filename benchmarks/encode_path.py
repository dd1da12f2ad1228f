"""CPU per frame of the worker's encode path against the published SDK's, encoder for encoder.

Usage::

    .venv/bin/python benchmarks/encode_path.py [--frames 150] [--repeats 3]

Encodes the same random-noise frames (the encoders' worst case) into a Matroska file in this
process, the way each writer does it, and reports CPU ms per frame (user + system of the
process, encoder threads included) and wall ms per frame, medians over ``--repeats`` runs that
alternate between the variants so a change of the machine's load hits them alike:

* ``published``: ``VideoFrame.from_ndarray`` (a copy), the config's options only, the default
  muxer (clusters written when full), as omgrab 0.1.2's ``PyAVWriter`` does;
* ``omgrab``: what ``stream_worker`` does: ``from_numpy_buffer`` over the ring slot (no copy)
  where the encoder converts the pixel format, the capture-safe options of
  ``encoder_options.plan`` (libx264: ``tune=zerolatency``), ``flush_packets`` and a 1 ms pad
  packet after every packet (so each packet is in the file when ``mux`` returns).

Streams: ``rgb`` (1280x800 rgb24 -> yuv420p libx264 superfast g=25 bf=0 4 Mbit/s, the built-in
config) and ``depth`` (640x400 gray16le FFV1).
"""

from __future__ import annotations

import argparse
import fractions
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from typing import Any

import av
import numpy as np

TB = fractions.Fraction(1, 1000)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _frames(kind: str) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    if kind == "rgb":
        return [rng.integers(0, 256, (800, 1280, 3), dtype=np.uint8) for _ in range(8)]
    return [rng.integers(0, 65536, (400, 640), dtype=np.uint16) for _ in range(8)]


def encode(kind: str, variant: str, frames: int, path: str) -> tuple[float, float]:
    """Encode ``frames`` frames; return (CPU ms, wall ms) per frame."""
    ours = variant == "omgrab"
    source = _frames(kind)
    if kind == "rgb":
        options = {"preset": "superfast", "g": "25", "bf": "0"}
        if ours:
            options["tune"] = "zerolatency"
        codec, pix_in, pix_out, width, height, bitrate = (
            "libx264",
            "rgb24",
            "yuv420p",
            1280,
            800,
            4_000_000,
        )
    else:
        options = {}
        codec, pix_in, pix_out, width, height, bitrate = (
            "ffv1",
            "gray16le",
            "gray16le",
            640,
            400,
            2_000_000,
        )
    container_options = {"flush_packets": "1", "cluster_time_limit": "1000"} if ours else {}
    make = (
        av.VideoFrame.from_numpy_buffer
        if ours and pix_in != pix_out
        else av.VideoFrame.from_ndarray
    )
    out = av.open(path, "w", format="matroska", container_options=container_options)
    stream = out.add_stream(codec, rate=25, options=options)
    stream.width, stream.height, stream.pix_fmt, stream.bit_rate = width, height, pix_out, bitrate
    stream.time_base = TB
    stream.codec_context.time_base = TB
    cpu, wall = _cpu_s(), time.perf_counter()
    for i in range(frames):
        frame = make(source[i % len(source)], format=pix_in)
        frame.pts = i * 40
        frame.time_base = TB
        for packet in stream.encode(frame):
            out.mux(packet)
            if ours:
                pad = av.Packet(b"")
                pad.pts, pad.dts = int(packet.pts) + 1, int(packet.dts)
                pad.time_base, pad.stream = TB, stream
                out.mux(pad)
    for packet in stream.encode(None):
        out.mux(packet)
    out.close()
    return (_cpu_s() - cpu) / frames * 1000, (time.perf_counter() - wall) / frames * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="omgrab-encode-path-") as tmp:
        for _ in range(args.repeats):
            for kind in ("rgb", "depth"):
                for variant in ("published", "omgrab"):
                    path = os.path.join(tmp, f"{kind}-{variant}.mkv")
                    runs.setdefault(f"{kind}/{variant}", []).append(
                        encode(kind, variant, args.frames, path)
                    )
    report: dict[str, Any] = {
        "command": " ".join([".venv/bin/python", "benchmarks/encode_path.py", *sys.argv[1:]]),
        "load_average": os.getloadavg(),
    }
    for key, values in runs.items():
        report[key] = {
            "cpu_ms_per_frame_median": round(statistics.median(v[0] for v in values), 2),
            "wall_ms_per_frame_median": round(statistics.median(v[1] for v in values), 2),
            "cpu_ms_per_frame_runs": [round(v[0], 2) for v in values],
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
