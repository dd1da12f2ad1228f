"""A cheap recorder rig for lifecycle and stress tests: one 64x48 camera, real writer and merge.

:class:`OwnedDevice` checks the invariant the lifecycle promises: the devices are never opened
while open and never closed while a recording (other than the stopping one) owns them.
"""

from __future__ import annotations

import pathlib
import threading
from collections.abc import Callable

from omgrab import recording
from omgrab.cameras import base as camera_base
from omgrab.cameras import synthetic
from omgrab.runtime import recording_manager
from omgrab.testing import fake_device

SIZE = camera_base.CameraConfig(30, 64, 48)
RECORDING = recording_manager.RecorderPhase.RECORDING


class OwnedDevice(fake_device.FakeCaptureDevice):
    """A fake device that records ownership violations, and can be slow or fail to close."""

    def __init__(self) -> None:
        self.camera = synthetic.SyntheticCamera(SIZE)
        super().__init__(cameras={"rgb": self.camera}, sensors={})
        self.manager: recording_manager.RecordingManager | None = None
        self.violations: list[str] = []
        self.close_gate: threading.Event | None = None
        self.close_entered = threading.Event()
        self.close_errors = 0  # raise this many more times from close()

    def open(self) -> None:
        if self.is_open:
            self.violations.append("opened while already open")
        super().open()

    def wait_until_ready(self, timeout: float | None = None) -> bool:
        """Wait for ``set_ready(True)`` up to ``timeout`` (the 0.1.2-style fake does not wait)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._ready, timeout)

    def close(self) -> None:
        manager = self.manager
        if manager is not None and manager.phase is RECORDING:
            self.violations.append(f"closed while {manager.snapshot().recording_id} records")
        self.close_entered.set()
        if self.close_gate is not None:
            self.close_gate.wait(10)
        super().close()
        if self.close_errors > 0:
            self.close_errors -= 1
            raise RuntimeError("close failed (injected)")


def make_manager(
    tmp_path: pathlib.Path,
    device: OwnedDevice | None = None,
    *,
    free_percent: Callable[[pathlib.Path], float] = lambda _path: 50.0,
    **config: float,
) -> tuple[recording_manager.RecordingManager, OwnedDevice]:
    """A manager recording ``device``'s one small camera, with fast health checks."""
    device = device if device is not None else OwnedDevice()
    settings: dict[str, float] = {
        "chunk_length_s": 5.0,
        "health_check_interval_s": 0.02,
        "stall_timeout_s": 5.0,
        "device_ready_timeout_s": 2.0,
        "health_join_timeout_s": 0.5,
        # A pulled cable stops at once here; reconnects: tests/test_runtime_reconnect.py.
        "reconnect_timeout_s": 0.0,
        # These rigs test the lifecycle: a stop returns when the recording is stopped, the
        # merge is waited for with wait_for_merges() (stop waiting for it:
        # tests/test_recording_live_merge.py and the published SDK's integration tests).
        "stop_waits_for_merge_s": 0.0,
    }
    settings.update(config)
    manager = recording_manager.RecordingManager(
        [device],
        [device.camera],
        ["rgb"],
        {
            "rgb": recording.rgb_stream_config(
                width=SIZE.width,
                height=SIZE.height,
                fps=SIZE.fps,
                bitrate=50_000,
                preset="ultrafast",
            )
        },
        tmp_path / "spool",
        tmp_path / "out",
        recording_manager.RecordingConfig(**settings),  # type: ignore[arg-type]
        free_percent_fn=free_percent,
    )
    device.manager = manager
    # Threads of earlier tests' recorders (a test may leave a crashed app behind) are not ours.
    manager.threads_before = set(threading.enumerate())  # type: ignore[attr-defined]
    return manager, device


def merged_ids(tmp_path: pathlib.Path) -> set[str]:
    """Recording ids with a merged MKV in the rig's output directory."""
    return {path.stem for path in (tmp_path / "out").glob("*.mkv")}


def leftover_threads(manager: recording_manager.RecordingManager) -> list[str]:
    """Recorder threads (health, stop-after-error) started since ``manager`` and still alive."""
    before = manager.threads_before  # type: ignore[attr-defined]
    return [
        t.name
        for t in threading.enumerate()
        if t not in before and t.name.startswith(("health-", "stop-after-error-"))
    ]


class ZombieWatch:
    """Samples the manager from a thread: RECORDING with the device closed is a zombie.

    A sample counts only if the snapshot did not change while the device was read (a stop in
    between is not a zombie).
    """

    def __init__(self, manager: recording_manager.RecordingManager, device: OwnedDevice) -> None:
        self.manager = manager
        self.device = device
        self.zombies: list[str] = []
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="zombie-watch", daemon=True)

    def __enter__(self) -> ZombieWatch:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            before = self.manager.snapshot()
            is_open = self.device.is_open
            after = self.manager.snapshot()
            if before is after and before.phase is RECORDING:
                self.samples += 1
                if not is_open:
                    self.zombies.append(str(before.recording_id))


def wait_for_frames(manager: recording_manager.RecordingManager, count: int = 3) -> None:
    """Wait until the active recording queued ``count`` frames (so it has a chunk to merge)."""
    tick = threading.Event()
    for _ in range(1000):
        session = manager.active_session
        if session is not None and session.capture_stats()["rgb"].items_queued >= count:
            return
        tick.wait(0.01)
    raise AssertionError(f"the active recording did not queue {count} frames in 10 s")
