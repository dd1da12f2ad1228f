"""SIGKILL campaign: a kill at a random moment loses at most the stated bound per stream.

A recorder subprocess (``test_recording_crash_recorder``) records in real time and prints the
pts of every item once ``put`` returned, with each stream's backlog. The whole process group
(recorder, forkserver and encoder processes: as in a power loss) is killed with SIGKILL at a
random moment; then every chunk of every stream is demuxed (and video decoded) packet by packet
with PyAV. The stated bound (``encoder_options``): the last readable pts of each stream is at
most ``(delay_frames + 1)`` frame intervals plus the backlog the writer reported for the last
item before the last pts handed over -- so a busy machine (a long backlog) does not fail the
test, and a written frame that is lost still does. Every item accepted before the last
readable one must be readable (no gap). It runs with the built-in RGB config and with the
published SDK's quick-start config (libx264 defaults, no ``stream_options``).
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import threading
import time

import av
import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
BOUND_MS = 200
INTERVAL_MS = 40
STREAMS = ("rgb", "depth", "imu")


@dataclasses.dataclass
class Handed:
    """What the recorder reported for one stream: items accepted and the last backlog."""

    accepted: list[int] = dataclasses.field(default_factory=list)
    backlog_ms: int = 0


@dataclasses.dataclass
class StreamReadback:
    pts: list[int]
    chunks: int
    decoded: int


class Recorder:
    """The recorder subprocess with a thread collecting its progress lines."""

    def __init__(
        self, spool: pathlib.Path, name: str, size: str, seconds: float, config: str = "builtin"
    ) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.test_recording_crash_recorder",
                str(spool),
                name,
                size,
                str(seconds),
                config,
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: kill it all at once
        )
        self.ready = threading.Event()
        self.first_item = threading.Event()
        self.reported: list[int] = []
        self.handed = {stream: Handed() for stream in STREAMS}
        self.worker_pids: list[int] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("pids "):
                self.worker_pids = [int(p) for p in line[5:].split(",")]
            elif line == "ready":
                self.ready.set()
            elif line[:1].isdigit():
                pts_text, *fields = line.split()
                with self._lock:
                    self.reported.append(int(pts_text))
                    for field in fields:
                        stream, value = field.split("=")
                        handed = self.handed[stream]
                        if not value.endswith("!"):
                            handed.accepted.append(int(pts_text))
                        handed.backlog_ms = int(value.rstrip("!"))
                self.first_item.set()

    def kill_group(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)

    def kill_main_only(self) -> None:
        self.proc.kill()

    def finish(self) -> tuple[list[int], str]:
        self.proc.wait(30)
        self._reader.join(10)
        assert self.proc.stderr is not None
        err = self.proc.stderr.read()
        with self._lock:
            return list(self.reported), err


def remove_leftover_shared_memory(pid: int) -> None:
    """Shared memory of a SIGKILLed recorder is never unlinked by it: remove it here."""
    for path in glob.glob(f"/dev/shm/omgrab-{pid}-*"):
        os.unlink(path)


def read_back(directory: pathlib.Path, stream: str) -> StreamReadback:
    """Demux (and decode, for video) every chunk packet by packet; fail on any error."""
    pts: list[int] = []
    decoded = 0
    files = sorted((directory / stream).glob("*.mkv"))
    for path in files:
        with av.open(str(path)) as container:
            st = container.streams[0]
            first = True
            for packet in container.demux(st):
                if packet.size == 0 or packet.pts is None:
                    continue
                if first:
                    assert packet.is_keyframe, f"{path} does not start with a keyframe"
                    first = False
                if st.type == "video":
                    decoded += len(st.codec_context.decode(packet))
                pts.append(int(packet.pts))
    assert pts == sorted(pts) and len(set(pts)) == len(pts), f"{stream}: pts not increasing"
    return StreamReadback(pts=pts, chunks=len(files), decoded=decoded)


def encoder_delay_frames(directory: pathlib.Path, stream: str) -> int:
    """The encoder delay the writer stated in recording.json (0 for data streams)."""
    doc = json.loads((directory / "recording.json").read_text())
    encoder = doc["streams"][stream].get("encoder")
    if encoder is None:
        return 0
    assert encoder["delay_frames"] is not None, f"{stream}: no stated delay bound"
    return int(encoder["delay_frames"])


def run_campaign(
    tmp_path: pathlib.Path,
    size: str,
    kill_points_s: list[float],
    whole_group: bool = True,
    config: str = "builtin",
) -> list[dict[str, int]]:
    losses = []
    for n, kill_after in enumerate(kill_points_s):
        name = f"rec-{size}-{config}-{n}"
        recorder = Recorder(tmp_path, name, size, seconds=60, config=config)
        try:
            assert recorder.ready.wait(60), "recorder did not start"
            assert recorder.first_item.wait(10), "recorder produced nothing"
            # Kill at a random moment measured from the first item handed over.
            time.sleep(kill_after)
        finally:
            if whole_group:
                recorder.kill_group()
            else:
                recorder.kill_main_only()
        reported, stderr = recorder.finish()
        remove_leftover_shared_memory(recorder.proc.pid)
        assert reported, f"no item reported before the kill; stderr: {stderr}"
        last_handed = reported[-1]
        directory = tmp_path / name
        if not whole_group:
            # Orphaned workers notice the lost parent, drain and close their chunks.
            deadline = time.monotonic() + 20
            while any(_alive(pid) for pid in recorder.worker_pids):
                assert time.monotonic() < deadline, "orphaned workers did not finish"
                time.sleep(0.05)
        loss = {"kill_after_ms": round(kill_after * 1000), "last_handed_ms": last_handed}
        for stream in STREAMS:
            handed = recorder.handed[stream]
            back = read_back(directory, stream)
            # Nothing readable is possible only when the backlog covered the whole recording
            # (the bound below then still holds, with the last readable pts taken as -40).
            last_readable = back.pts[-1] if back.pts else -INTERVAL_MS
            if back.pts:
                assert back.chunks in (last_handed // 1000 + 1, back.pts[-1] // 1000 + 1)
            if stream != "imu":
                assert back.decoded >= len(back.pts) - 2, f"{name}/{stream}: undecodable packets"
            last_accepted = handed.accepted[-1]
            lost = last_accepted - last_readable
            delay = encoder_delay_frames(directory, stream)
            bound = (delay + 1) * INTERVAL_MS + handed.backlog_ms
            loss[stream] = lost
            loss[f"{stream}_bound"] = bound
            assert lost <= bound, (
                f"{name}/{stream}: killed after {kill_after:.2f} s, last accepted pts "
                f"{last_accepted} ms, last readable {last_readable} ms: {lost} ms lost, over the "
                f"stated bound {bound} ms ({delay} frames held + 1 in work + backlog "
                f"{handed.backlog_ms} ms)"
            )
            # (items put after the last line printed may be readable too: the kill came
            # between their put and their line)
            common = min(len(back.pts), len(handed.accepted))
            assert back.pts[:common] == handed.accepted[:common], (
                f"{name}/{stream}: a gap in the readable packets"
            )
            assert all(pts > last_accepted for pts in back.pts[common:]), back.pts[common:]
        losses.append(loss)
    return losses


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie left unreaped by a container's init counts as gone)."""
    try:
        status = pathlib.Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "\nState:\tZ" not in status


def kill_points(seed: int, count: int, low: float, high: float) -> list[float]:
    rng = random.Random(seed)
    points = [rng.uniform(low, high) for _ in range(count)]
    points[0] = min(points[0], 0.7)  # always at least one kill inside the first chunk
    return points


def test_sigkill_small_frames_loses_at_most_200ms(tmp_path: pathlib.Path) -> None:
    losses = run_campaign(tmp_path, "small", kill_points(1, 5, 0.2, 2.6))
    print("losses (ms):", losses)


def test_sigkill_reference_size_loses_at_most_200ms(tmp_path: pathlib.Path) -> None:
    losses = run_campaign(tmp_path, "reference", [0.6, 1.3, 2.2])  # chunks 1, 2 and 3
    print("losses (ms):", losses)


def test_sigkill_with_the_published_quick_start_config(tmp_path: pathlib.Path) -> None:
    """libx264 with its defaults (no stream_options) at 640x400, as the published SDK's docs
    configure it: the writer's capture-safe settings keep the loss within the bound (issue
    8 measured 1.2-1.6 s lost without them)."""
    losses = run_campaign(tmp_path, "quickstart", [0.6, 1.3, 2.2], config="plain")
    print("losses (ms):", losses)
    losses = run_campaign(tmp_path, "small", kill_points(4, 2, 0.2, 2.6), config="plain")
    print("losses (ms):", losses)


def test_sigkill_of_the_app_process_alone_lets_workers_finish_the_files(
    tmp_path: pathlib.Path,
) -> None:
    losses = run_campaign(tmp_path, "small", [0.8, 1.7], whole_group=False)
    for loss in losses:  # every item handed over reached the files (< 0: the kill came
        # after a put returned but before its line was printed)
        assert all(-40 <= loss[s] <= 0 for s in STREAMS), losses
    for path in sorted(tmp_path.glob("*/*/*.mkv")):  # and every chunk was closed properly
        out = subprocess.run(["mkvmerge", "-J", str(path)], capture_output=True, text=True)
        assert out.returncode == 0, f"{path}: {out.stdout}"


@pytest.mark.slow
def test_sigkill_campaign_long(tmp_path: pathlib.Path, request: pytest.FixtureRequest) -> None:
    # ~2 minutes: runs with ``pytest -m slow`` or OMGRAB_RUN_SLOW=1, not in the default run.
    if "slow" not in (request.config.getoption("markexpr") or "") and not os.environ.get(
        "OMGRAB_RUN_SLOW"
    ):
        pytest.skip("long SIGKILL campaign: run with -m slow or OMGRAB_RUN_SLOW=1")
    losses = run_campaign(tmp_path, "small", kill_points(2, 40, 0.05, 3.5))
    losses += run_campaign(tmp_path, "reference", kill_points(3, 6, 0.2, 3.5))
    losses += run_campaign(tmp_path, "quickstart", kill_points(5, 5, 0.05, 3.5), config="plain")
    worst = {s: max(loss[s] for loss in losses) for s in STREAMS}
    print("worst loss (ms):", worst)
