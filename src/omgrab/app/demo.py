"""The demo job: one short recording on simulated hardware, end to end.

It starts the whole device runtime (:class:`~omgrab.app.device_app.DeviceApp`), presses the
(simulated) button to start recording, lets the perception loop feed the OutputManager, presses
again to stop, waits for the merge, and then *reads back* what was written — the merged MKV with
PyAV, the manifest, the perception session's files — so the summary reports what is on disk, not
what was intended.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import threading
from typing import Any

import av

from omgrab import gpio
from omgrab.app import config as config_mod
from omgrab.app import device_app
from omgrab.workflows import states


@dataclasses.dataclass
class StreamSummary:
    """One track of the merged recording, as read back from the file."""

    name: str
    codec: str
    packets: int
    first_ms: int | None
    last_ms: int | None
    dropped: int
    out_of_order: int
    missed: int | None = None  # lost before the writer (capture gaps); None: not reported


@dataclasses.dataclass
class DemoReport:
    """What the demo wrote, read back from disk."""

    recording: pathlib.Path
    manifest: pathlib.Path
    recording_bytes: int
    duration_s: float
    chunks: int
    streams: list[StreamSummary]
    output_session: pathlib.Path
    detections: int
    frames: int
    frame_bytes: int
    health_lines: int
    gimbal_lines: int
    status_file: pathlib.Path
    recovered: list[pathlib.Path]
    output_errors: int
    final_state: str
    stop_reason: str | None = None


class DemoError(RuntimeError):
    """The demo could not complete (the message says which step failed)."""


def run_demo(config: config_mod.AppConfig, seconds: float = 6.0) -> DemoReport:
    """Record ``seconds`` of RGB + depth + IMU with perception running; return the read-back.

    Raises:
        DemoError: A step did not happen in time (recording did not start, merge missing).
    """
    if seconds <= 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    controller = gpio.SimulatedGPIOController(trigger_path=config.trigger_file)
    app = device_app.DeviceApp(config, gpio_controller=controller)
    app.start()
    try:
        controller.tap()  # a real short press; the button loop waits out the double-press window
        if not _wait(lambda: app.state_machine.state is states.WorkflowState.RECORDING, 15.0):
            raise DemoError(f"recording did not start: {app.recorder.last_error}")
        threading.Event().wait(seconds)
        controller.tap()
        if not app.wait_for_recordings(1, timeout=120.0):
            raise DemoError(f"recording was not merged: {app.recorder.last_error}")
        # the press that stopped it returns once the file is merged: then the state is idle
        _wait(lambda: app.state_machine.state is states.WorkflowState.IDLE, 15.0)
        final_state = app.state_machine.state.value
    finally:
        app.stop()
    session = pathlib.Path(app.output.session_dir or "")
    return _read_back(app, session, final_state)


def _wait(predicate: Any, timeout: float) -> bool:
    waiter = threading.Event()
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return True
        waiter.wait(0.05)
    return bool(predicate())


def _read_back(app: device_app.DeviceApp, session: pathlib.Path, final_state: str) -> DemoReport:
    path = app.completed[0]
    manifest_path = path.with_suffix(".json")
    manifest = json.loads(manifest_path.read_text())
    stream_stats = manifest.get("streams", {})
    streams: list[StreamSummary] = []
    with av.open(str(path)) as container:
        names = [s.metadata.get("title") or f"track{s.index}" for s in container.streams]
        codecs = [s.codec_context.name for s in container.streams]
        counts = [0] * len(names)
        first: list[int | None] = [None] * len(names)
        last: list[int | None] = [None] * len(names)
        for packet in container.demux():
            if not packet.size or packet.pts is None:
                continue
            i = packet.stream.index
            ms = int(packet.pts * packet.time_base * 1000)
            counts[i] += 1
            first[i] = ms if first[i] is None else min(first[i] or 0, ms)
            last[i] = ms if last[i] is None else max(last[i] or 0, ms)
    for i, name in enumerate(names):
        stats = stream_stats.get(name, {})
        streams.append(
            StreamSummary(
                name=name,
                codec=codecs[i],
                packets=counts[i],
                first_ms=first[i],
                last_ms=last[i],
                dropped=int(stats.get("frames_dropped", 0) or 0),
                out_of_order=int(stats.get("frames_out_of_order", 0) or 0),
                missed=stats.get("frames_missed"),
            )
        )
    frames = sorted((session / "frames").glob("*.jpg")) if session.is_dir() else []
    return DemoReport(
        recording=path,
        manifest=manifest_path,
        recording_bytes=path.stat().st_size,
        duration_s=float(manifest.get("duration_s") or 0.0),
        chunks=len(manifest.get("chunks", [])),
        streams=streams,
        output_session=session,
        detections=_count_lines(session / "detections.jsonl"),
        frames=len(frames),
        frame_bytes=sum(f.stat().st_size for f in frames),
        health_lines=_count_lines(session / "health.jsonl"),
        gimbal_lines=_count_lines(session / "gimbal.log"),
        status_file=app.config.status_file,
        recovered=list(app.recovered),
        output_errors=app.output.error_count,
        final_state=final_state,
        stop_reason=manifest.get("stop_reason"),
    )


def _count_lines(path: pathlib.Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())
