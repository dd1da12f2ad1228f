"""Drive ``omgrab run`` (simulated device, small streams) in its own process group for faults.

The application is a real subprocess: the button is pressed through its trigger file, its state
is read from its ``status.json``, and it is killed with real signals (the whole process group,
as a power loss does, or the application process alone, leaving its encoder workers orphaned).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import Any

import av

REPO = pathlib.Path(__file__).resolve().parents[2]

#: 320x200 RGB and 160x100 depth on the simulated rig (rig configuration overrides).
SMALL_STREAMS = {
    "OMGRAB_DEVICE_RGB_WIDTH": "320",
    "OMGRAB_DEVICE_RGB_HEIGHT": "200",
    "OMGRAB_DEVICE_DEPTH_WIDTH": "160",
    "OMGRAB_DEVICE_DEPTH_HEIGHT": "100",
}

#: Packet identity used by the checks: (pts, size, MD5 of the bytes). Computed here, not with
#: the code under test.
Packet = tuple[int, int, str]


class AppError(AssertionError):
    """The application did not reach an expected state in time."""


@dataclasses.dataclass
class App:
    """One ``omgrab run`` process over ``data_dir``."""

    data_dir: pathlib.Path
    proc: subprocess.Popen[bytes]
    started: float

    @property
    def status_file(self) -> pathlib.Path:
        return self.data_dir / "status.json"

    @property
    def trigger(self) -> pathlib.Path:
        return self.data_dir / "trigger"

    def status(self) -> dict[str, Any] | None:
        try:
            doc = json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def wait_for(self, what: str, predicate: Any, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AppError(f"application exited ({self.proc.returncode}) waiting for {what}")
            doc = self.status()
            if doc is not None and predicate(doc):
                return doc
            time.sleep(0.02)
        raise AppError(f"application not {what} after {timeout} s: {self.status()}")

    def wait_idle(self, timeout: float = 120) -> float:
        """Wait until the application is up and idle (start-up recovery done); return seconds."""
        self.wait_for("idle", lambda d: d.get("state_machine_state") == "idle", timeout)
        return time.monotonic() - self.started

    def press(self) -> None:
        tmp = self.trigger.with_suffix(".tmp")
        tmp.write_text("")
        os.replace(tmp, self.trigger)

    def wait_recording(self, seconds: float, timeout: float = 60) -> None:
        """Wait until a recording has run for ``seconds`` (of recording time)."""

        def recording(doc: dict[str, Any]) -> bool:
            rec = doc.get("recording") or {}
            return bool(rec.get("is_recording")) and (rec.get("duration_seconds") or 0) >= seconds

        self.wait_for("recording", recording, timeout)

    def group_pids(self) -> list[int]:
        """Every live process of the application's process group (app, forkserver, workers)."""
        pids = []
        for entry in pathlib.Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == self.proc.pid and fields[0] != "Z":
                pids.append(int(entry.name))
        return pids

    def kill_group(self) -> float:
        """Power loss: SIGKILL the whole process group; return the wall time of the kill."""
        now = time.time()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        wait_gone(self.group_pids, 30)
        return now

    def kill_app(self) -> float:
        """SIGKILL the application process alone (its workers live on); return the wall time."""
        now = time.time()
        self.proc.kill()
        self.proc.wait(30)
        return now

    def terminate(self, timeout: float = 120) -> int:
        """Stop gracefully (SIGTERM) and wait for the process group to finish."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        wait_gone(self.group_pids, 30)
        return code


def alive(pids: list[int]) -> list[int]:
    """The processes of ``pids`` that still run."""
    return [pid for pid in pids if rss_kib(pid) is not None]


def wait_gone(pids: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while pids():
        if time.monotonic() > deadline:
            raise AppError(f"processes {pids()} still alive after {timeout} s")
        time.sleep(0.02)


def start(data_dir: pathlib.Path, *extra: str) -> App:
    """Start ``omgrab run`` with small streams on ``data_dir`` (1 s chunks, free port)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("status.json", "trigger"):  # a press the killed app never consumed
        with contextlib.suppress(FileNotFoundError):
            (data_dir / stale).unlink()
    log = (data_dir / "app.log").open("ab")
    cmd = [
        sys.executable,
        "-m",
        "omgrab.cli",
        "run",
        "--data-dir",
        str(data_dir),
        "--dashboard-port",
        "0",
        "--trigger-file",
        str(data_dir / "trigger"),
        "--chunk-length",
        "1",
        *extra,
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env={**os.environ, **SMALL_STREAMS},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    return App(data_dir, proc, time.monotonic())


def packets(path: pathlib.Path) -> tuple[list[Packet], list[int]]:
    """Every non-empty packet of every track of an MKV file, and the stream index of each."""
    found: list[Packet] = []
    tracks: list[int] = []
    try:
        with av.open(str(path)) as container:
            for packet in container.demux():
                if not packet.size:
                    continue
                pts = packet.pts if packet.pts is not None else packet.dts
                found.append((int(pts or 0), packet.size, hashlib.md5(bytes(packet)).hexdigest()))
                tracks.append(packet.stream_index)
    except (av.error.FFmpegError, OSError, EOFError, ValueError):
        pass  # a chunk cut by the kill: what was readable is what it holds
    return found, tracks


def spool_packets(spool: pathlib.Path) -> dict[str, set[Packet]]:
    """Every packet readable now from every chunk in the spool, by recording directory."""
    held: dict[str, set[Packet]] = {}
    for chunk in spool.glob("*/*/*.mkv"):
        held.setdefault(chunk.parent.parent.name, set()).update(packets(chunk)[0])
    return held


def held_packets(data_dir: pathlib.Path) -> dict[str, set[Packet]]:
    """Every packet readable now in the spool chunks and in the growing merged files.

    A recording's chunks are deleted once the incremental merge has them in its growing
    ``<id>.mkv.partial``: from then on that file is where they must survive from.
    """
    held = spool_packets(data_dir / "spool")
    for partial in (data_dir / "recordings").glob("*.mkv.partial"):
        recording_id = partial.name[: -len(".mkv.partial")]
        held.setdefault(recording_id, set()).update(packets(partial)[0])
    return held


def kept_packets_in(recordings: pathlib.Path, recording_id: str) -> set[Packet]:
    """Every packet of ``recording_id`` in ``recordings``: its merged file(s) and quarantine."""
    kept: set[Packet] = set()
    for path in recordings.glob(f"{recording_id}*.mkv"):
        kept.update(packets(path)[0])
    for path in recordings.glob(f"{recording_id}*.quarantine/*/*.mkv"):
        kept.update(packets(path)[0])
    return kept


def kept_packets(data_dir: pathlib.Path, recording_id: str) -> set[Packet]:
    """Every packet of ``recording_id`` in its merged file, its quarantine and the spool."""
    return kept_packets_in(data_dir / "recordings", recording_id) | spool_packets(
        data_dir / "spool"
    ).get(recording_id, set())


def merge_snapshot(into: dict[str, set[Packet]], snapshot: dict[str, set[Packet]]) -> None:
    """Add a spool snapshot to what must survive."""
    for recording_id, held in snapshot.items():
        into.setdefault(recording_id, set()).update(held)


def missing_packets(data_dir: pathlib.Path, must_keep: dict[str, set[Packet]]) -> dict[str, int]:
    """Per recording, how many packets that were in the spool are nowhere now."""
    missing = {}
    for recording_id, held in must_keep.items():
        gone = held - kept_packets(data_dir, recording_id)
        if gone:
            missing[recording_id] = len(gone)
    return missing


def probe_valid(path: pathlib.Path) -> dict[str, Any]:
    """Run ffprobe and mkvmerge on a merged file; both must accept it. Return mkvmerge -J."""
    subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", str(path)],
        check=True,
        capture_output=True,
    )
    result = subprocess.run(["mkvmerge", "-J", str(path)], capture_output=True, text=True)
    assert result.returncode in (0, 1), result.stdout + result.stderr  # 1: warnings only
    doc = json.loads(result.stdout)
    assert doc["container"]["recognized"] and doc["container"]["supported"], doc
    return doc


def pts_by_track(path: pathlib.Path) -> dict[int, list[int]]:
    """Every packet's pts (ms) of each track of a merged file, in file order."""
    found, tracks = packets(path)
    by_track: dict[int, list[int]] = {}
    for (pts, _, _), track in zip(found, tracks, strict=True):
        by_track.setdefault(track, []).append(pts)
    return by_track


def last_pts_by_stream(path: pathlib.Path) -> dict[int, int]:
    """The last pts (ms) of each track of a merged file."""
    return {track: max(pts) for track, pts in pts_by_track(path).items()}


def rss_kib(pid: int) -> int | None:
    """Resident set size of ``pid`` in KiB, ``None`` if it is gone."""
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None
