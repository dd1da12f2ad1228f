"""Helpers for the merge/recovery tests: read merged MKVs with ffprobe, mkvmerge and PyAV."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
from typing import Any

import av

HAVE_FFPROBE = shutil.which("ffprobe") is not None
HAVE_MKVMERGE = shutil.which("mkvmerge") is not None
HAVE_MKVINFO = shutil.which("mkvinfo") is not None


def ffprobe(path: pathlib.Path, *args: str) -> dict[str, Any]:
    """Run ffprobe with JSON output; fail the test on any ffprobe error output."""
    proc = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", *args, str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert proc.stderr.strip() == "", proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def ffprobe_packets(path: pathlib.Path) -> dict[int, list[dict[str, Any]]]:
    """Return ffprobe's packets per stream index (pts in ms as ints, size, data hash)."""
    doc = ffprobe(path, "-show_entries", "packet=stream_index,pts,size,flags", "-show_packets")
    out: dict[int, list[dict[str, Any]]] = {}
    for packet in doc["packets"]:
        out.setdefault(packet["stream_index"], []).append(packet)
    return out


def mkvmerge_identify(path: pathlib.Path) -> dict[str, Any]:
    """Return ``mkvmerge -J`` output and check it reports no errors."""
    proc = subprocess.run(["mkvmerge", "-J", str(path)], capture_output=True, text=True, timeout=60)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stdout
    assert doc["errors"] == [], doc["errors"]
    assert doc["container"]["recognized"] and doc["container"]["supported"]
    return doc  # type: ignore[no-any-return]


def mkvinfo(path: pathlib.Path) -> str:
    """Return ``mkvinfo --all`` output, clusters and cues included (fails on a non-zero exit)."""
    proc = subprocess.run(
        ["mkvinfo", "--all", str(path)], capture_output=True, text=True, check=True, timeout=60
    )
    return proc.stdout


def pyav_packets(path: pathlib.Path) -> dict[int, list[tuple[int, bytes]]]:
    """Return (pts, payload) of every non-empty packet per stream index, read with PyAV."""
    out: dict[int, list[tuple[int, bytes]]] = {}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size:
                out.setdefault(packet.stream_index, []).append((packet.pts, bytes(packet)))
    return out


def decode_frames(path: pathlib.Path, stream_index: int, fmt: str) -> list[tuple[int, Any]]:
    """Decode one video track with PyAV: (pts, ndarray in ``fmt``) per frame."""
    frames = []
    with av.open(str(path)) as container:
        stream = container.streams[stream_index]
        for frame in container.decode(stream):
            frames.append((frame.pts, frame.to_ndarray(format=fmt)))
    return frames
