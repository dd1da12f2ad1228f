"""A stand-in perception loop: a detector, a gimbal and the OutputManager, as on the drone.

The real scan controller runs YOLO and drives a gimbal; here a small *hot-spot detector* looks
at real frames from the capture device (the brightest blob of a downscaled grey image, with a
confidence from its contrast), the gimbal is a proportional controller that turns toward the best
detection, and every output goes through the :class:`~omgrab.output.manager.OutputManager` exactly
as the real loop would: detections logged, frames recorded at L1 or L2, gimbal commands logged,
detections reported to the operator. The loop honours the storage ladder via
``get_storage_status().should_reduce_recording``.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from omgrab.output import types as output_types

logger = logging.getLogger(__name__)

FrameSource = Callable[[], "tuple[np.ndarray, datetime.datetime] | None"]


class OutputSink(Protocol):
    """The part of the OutputManager the loop uses."""

    def log_detection(self, entry: Any) -> None:
        """Log one detection entry."""
        ...

    def record_frame(self, frame: np.ndarray, frame_id: int, level: int) -> None:
        """Record one frame at a level."""
        ...

    def log_gimbal_command(self, cmd_str: str) -> None:
        """Log one gimbal command."""
        ...

    def report_to_operator(self, detections: list[output_types.Detection]) -> None:
        """Deliver detections to the operator."""
        ...

    def get_storage_status(self) -> output_types.StorageStatus:
        """Return the storage status."""
        ...


class HotspotDetector:
    """Finds the brightest compact region of a frame: a cheap, deterministic stand-in for YOLO.

    Args:
        cell: Side of the square cells (pixels) the frame is averaged over.
        min_contrast: Cells must be this much brighter (0-255) than the frame mean to count.
    """

    LABEL = "hotspot"
    CLASS_ID = 0

    def __init__(self, cell: int = 32, min_contrast: float = 20.0) -> None:
        if cell <= 0:
            raise ValueError(f"cell must be > 0, got {cell}")
        self._cell = cell
        self._min_contrast = min_contrast

    def detect(self, frame: np.ndarray, frame_id: int) -> list[output_types.Detection]:
        """Return at most one detection for an RGB ``HxWx3`` or grey ``HxW`` frame."""
        grey = frame.mean(axis=2) if frame.ndim == 3 else frame.astype(np.float32)
        cell = self._cell
        rows, cols = grey.shape[0] // cell, grey.shape[1] // cell
        if rows == 0 or cols == 0:
            return []
        cells = grey[: rows * cell, : cols * cell].reshape(rows, cell, cols, cell).mean(axis=(1, 3))
        contrast = cells - float(cells.mean())
        row, col = np.unravel_index(int(np.argmax(contrast)), contrast.shape)
        peak = float(contrast[row, col])
        if peak < self._min_contrast:
            return []
        confidence = float(min(1.0, peak / 128.0))
        x0, y0 = float(col * cell), float(row * cell)
        return [
            output_types.Detection(
                bbox=(x0, y0, x0 + cell, y0 + cell),
                class_id=self.CLASS_ID,
                label=self.LABEL,
                confidence=round(confidence, 4),
                frame_id=frame_id,
            )
        ]


@dataclasses.dataclass
class GimbalState:
    """Pan/tilt angles in degrees."""

    pan_deg: float = 0.0
    tilt_deg: float = 0.0


class Gimbal:
    """Proportional pan/tilt controller aiming at the centre of a detection.

    Args:
        fov_deg: Horizontal and vertical field of view of the camera.
        gain: Fraction of the angular error corrected per step.
    """

    def __init__(self, fov_deg: tuple[float, float] = (70.0, 45.0), gain: float = 0.5) -> None:
        self._fov = fov_deg
        self._gain = gain
        self.state = GimbalState()

    def aim(self, detection: output_types.Detection, frame_shape: tuple[int, ...]) -> str:
        """Update the angles toward ``detection`` and return the command string sent."""
        height, width = frame_shape[0], frame_shape[1]
        err_x = (detection.center_x / width - 0.5) * self._fov[0]
        err_y = (detection.center_y / height - 0.5) * self._fov[1]
        self.state.pan_deg = _clamp(self.state.pan_deg + self._gain * err_x, -170.0, 170.0)
        self.state.tilt_deg = _clamp(self.state.tilt_deg - self._gain * err_y, -90.0, 30.0)
        return f"MOVE pan={self.state.pan_deg:+.2f} tilt={self.state.tilt_deg:+.2f}"


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


@dataclasses.dataclass
class ScanStats:
    """What the scan loop did."""

    frames_seen: int = 0
    detections: int = 0
    frames_submitted: int = 0
    gimbal_commands: int = 0
    output_errors: int = 0
    level: int = 2


class ScanLoop:
    """Runs detector -> gimbal -> outputs on its own thread until stopped.

    Args:
        frame_source: Returns the latest ``(frame, timestamp)`` or None (e.g. a device preview).
        output: The OutputManager.
        rate_hz: Loop rate.
        detector: Detector; a HotspotDetector by default.
        gimbal: Gimbal; a default Gimbal by default.
    """

    def __init__(
        self,
        frame_source: FrameSource,
        output: OutputSink,
        *,
        rate_hz: float = 10.0,
        detector: HotspotDetector | None = None,
        gimbal: Gimbal | None = None,
    ) -> None:
        if rate_hz <= 0:
            raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
        self._source = frame_source
        self._output = output
        self._period = 1.0 / rate_hz
        self._detector = detector if detector is not None else HotspotDetector()
        self._gimbal = gimbal if gimbal is not None else Gimbal()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._frame_id = 0
        self._last_timestamp: datetime.datetime | None = None
        self.stats = ScanStats()
        self.error: BaseException | None = None

    def start(self) -> None:
        """Start the loop thread."""
        if self._thread is not None:
            raise RuntimeError("scan loop already started")
        self._thread = threading.Thread(target=self._run, name="scan-loop", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop and wait for it; re-raises an error that ended the loop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.error is not None:
            raise RuntimeError("scan loop failed") from self.error

    def step(self) -> bool:
        """Process the latest frame once; return False when no new frame was available."""
        latest = self._source()
        if latest is None:
            return False
        frame, timestamp = latest
        if self._last_timestamp is not None and timestamp <= self._last_timestamp:
            return False
        self._last_timestamp = timestamp
        self._frame_id += 1
        self.stats.frames_seen += 1
        detections = self._detector.detect(frame, self._frame_id)
        reduce = self._output.get_storage_status().should_reduce_recording
        level = 1 if reduce or not detections else 2
        self.stats.level = level
        try:
            for detection in detections:
                entry = detection.to_log_entry()
                entry["timestamp"] = timestamp.isoformat()
                entry["level"] = level
                entry["gimbal"] = dataclasses.asdict(self._gimbal.state)
                self._output.log_detection(entry)
                self.stats.detections += 1
            self._output.record_frame(frame, self._frame_id, level)
            self.stats.frames_submitted += 1
            if detections:
                best = max(detections, key=lambda d: d.confidence)
                self._output.log_gimbal_command(self._gimbal.aim(best, frame.shape))
                self.stats.gimbal_commands += 1
            self._output.report_to_operator(detections)
        except output_types.WriteError as exc:
            # Recording failure must not block inference: count it and go on.
            self.stats.output_errors += 1
            logger.warning("output rejected frame %d: %s", self._frame_id, exc)
        return True

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._period):
                self.step()
        except BaseException as exc:
            self.error = exc
            logger.exception("scan loop crashed")
