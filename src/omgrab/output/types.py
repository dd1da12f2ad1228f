"""Data types of the OutputManager: log entries, detections, storage status, errors."""

from __future__ import annotations

import dataclasses
import math
import numbers
import typing
from typing import Any, NotRequired, TypedDict

UINT64_MAX = 2**64 - 1


class WriteError(OSError):
    """An output could not be accepted or written.

    Raised synchronously by the ``OutputManager`` methods for input that can never be written
    (bad entries, a closed manager, a full queue); failures on the writer threads are logged,
    counted and never raised into the caller. Subclasses ``OSError`` so callers that already
    catch ``IOError`` around output code keep working.
    """


class InvalidEntryError(WriteError, ValueError):
    """An entry, frame or argument was rejected before anything was queued.

    Both a ``WriteError`` (the seed's error type for the write methods) and a ``ValueError``
    (it is bad input), so either ``except`` clause catches it. The message names what was wrong.
    """


class DetectionLogEntry(TypedDict):
    """One line of ``detections.jsonl``.

    Required keys are ``frame_id``, ``class_id``, ``label``, ``confidence`` and ``bbox``; any
    further JSON-serialisable keys (GPS fix, gimbal angles, VLM text ...) are kept verbatim.
    ``timestamp`` is added (ISO-8601 UTC, microseconds) when missing.

    Keys:
        timestamp: ISO-8601 UTC string or POSIX seconds.
        frame_id: Frame the detection came from (0 <= id < 2**64).
        class_id: Detector class number (>= 0).
        label: Class name (at most ``OutputConfig.max_label_chars`` characters).
        confidence: Finite, in [0, 1].
        bbox: ``[x_min, y_min, x_max, y_max]`` in pixels, finite, min <= max.
        track_id: Tracker id or ``None``.
        level: Recording level (1 or 2) in force when the detection was made.
    """

    frame_id: int
    class_id: int
    label: str
    confidence: float
    bbox: list[float]
    timestamp: NotRequired[str | float]
    track_id: NotRequired[int | None]
    level: NotRequired[int]


class HealthLogEntry(TypedDict, total=False):
    """One line of ``health.jsonl``; every key optional, extra keys kept.

    ``log_health`` also accepts any dataclass (such as ``omgrab.runtime.device_status``'s
    ``DeviceStatus``), converted with ``dataclasses.asdict``. ``timestamp`` is added when
    missing.
    """

    timestamp: str | float
    device_id: str
    state: str
    cpu_temp_c: float | None
    cpu_usage_pct: float
    memory_used_pct: float
    storage_free_pct: float
    battery_pct: float | None
    device_healthy: bool
    device_error: str | None


@dataclasses.dataclass(frozen=True)
class Detection:
    """One detection, as produced by the detector and delivered to the operator.

    Attributes:
        bbox: ``(x_min, y_min, x_max, y_max)`` in pixels.
        class_id: Detector class number (``classNum`` in the YOLO schema).
        label: Class name.
        confidence: Detector confidence in [0, 1].
        track_id: Tracker id, if tracked.
        frame_id: Frame the detection came from, if known.
        attributes: Extra JSON-serialisable fields copied into the log entry.
    """

    bbox: tuple[float, float, float, float]
    class_id: int
    label: str
    confidence: float
    track_id: int | None = None
    frame_id: int | None = None
    attributes: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_detection_fields(
            self.bbox, self.class_id, self.label, self.confidence, self.track_id, self.frame_id
        )

    @property
    def center_x(self) -> float:
        """Horizontal centre of the box in pixels."""
        return (self.bbox[0] + self.bbox[2]) / 2.0

    @property
    def center_y(self) -> float:
        """Vertical centre of the box in pixels."""
        return (self.bbox[1] + self.bbox[3]) / 2.0

    @property
    def width(self) -> float:
        """Box width in pixels."""
        return self.bbox[2] - self.bbox[0]

    @property
    def height(self) -> float:
        """Box height in pixels."""
        return self.bbox[3] - self.bbox[1]

    def to_yolo(self) -> dict[str, Any]:
        """Return the operator (YOLO output) schema of this detection.

        Keys ``centerX``, ``centerY``, ``width``, ``height`` (pixels), ``classNum``, ``label``,
        ``confidence``; ``trackId`` is added only for tracked detections.
        """
        out: dict[str, Any] = {
            "centerX": self.center_x,
            "centerY": self.center_y,
            "width": self.width,
            "height": self.height,
            "classNum": self.class_id,
            "label": self.label,
            "confidence": self.confidence,
        }
        if self.track_id is not None:
            out["trackId"] = self.track_id
        return out

    def to_log_entry(self) -> dict[str, Any]:
        """Return this detection as a ``DetectionLogEntry`` dict (``frame_id`` must be set)."""
        if self.frame_id is None:
            raise ValueError("Detection.frame_id is required to log a detection")
        entry: dict[str, Any] = dict(self.attributes)
        entry.update(
            frame_id=self.frame_id,
            class_id=self.class_id,
            label=self.label,
            confidence=self.confidence,
            bbox=list(self.bbox),
        )
        if self.track_id is not None:
            entry["track_id"] = self.track_id
        return entry


@dataclasses.dataclass(frozen=True)
class StorageStatus:
    """Snapshot returned by ``OutputManager.get_storage_status()``.

    Attributes:
        nvme_free_pct: Free space of the output filesystem, 0-100.
        frames_recorded: JPEG frames written this session.
        detections_logged: Detection entries written to disk this session.
        should_reduce_recording: True if free space is below the reduce threshold (20 %).
    """

    nvme_free_pct: float
    frames_recorded: int
    detections_logged: int
    should_reduce_recording: bool


def _is_int(value: object) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or _is_np_int(value)


def _is_np_int(value: object) -> bool:
    # numpy integer scalars, without importing numpy here.
    return (
        type(value).__module__ == "numpy"
        and hasattr(value, "dtype")
        and (getattr(getattr(value, "dtype", None), "kind", "") in "iu")
    )


def check_uint64(name: str, value: object) -> int:
    """Return ``value`` as an int if it is an integer in [0, 2**64), else raise ``ValueError``."""
    if type(value) is int and 0 <= value <= UINT64_MAX:  # fast path
        return value
    if not _is_int(value):
        raise ValueError(f"{name} must be an integer, got {type(value).__name__} {value!r:.80}")
    ivalue = int(typing.cast(int, value))
    if ivalue < 0 or ivalue > UINT64_MAX:
        raise ValueError(f"{name} must be in [0, 2**64 - 1], got {ivalue}")
    return ivalue


def _is_real(value: object) -> bool:
    t = type(value)
    return t is float or t is int or (isinstance(value, numbers.Real) and t is not bool)


_FAST_NUMBERS = frozenset((float, int))


def validate_detection_fields(
    bbox: object,
    class_id: object,
    label: object,
    confidence: object,
    track_id: object = None,
    frame_id: object = None,
    max_label_chars: int = 256,
) -> None:
    """Raise ``ValueError`` naming the first bad field of a detection.

    Written for speed (it runs on the caller's thread for every detection): plain ``float`` /
    ``int`` / ``str`` values take a fast path; numpy scalars and other ``numbers.Real`` go
    through the slower checks, which also produce the error messages.
    """
    if not (type(confidence) in _FAST_NUMBERS and 0.0 <= confidence <= 1.0):  # type: ignore[operator]
        _check_confidence(confidence)
    try:
        x0, y0, x1, y1 = typing.cast("tuple[Any, Any, Any, Any]", bbox)
    except (TypeError, ValueError):
        raise ValueError(f"bbox must be [x_min, y_min, x_max, y_max], got {bbox!r:.80}") from None
    if not (
        type(x0) in _FAST_NUMBERS
        and type(y0) in _FAST_NUMBERS
        and type(x1) in _FAST_NUMBERS
        and type(y1) in _FAST_NUMBERS
        and x0 - x0 == 0  # False for inf and nan
        and y0 - y0 == 0
        and x1 - x1 == 0
        and y1 - y1 == 0
    ):
        for v in (x0, y0, x1, y1):
            if not _is_real(v) or not math.isfinite(v):
                raise ValueError(f"bbox values must be finite numbers, got {bbox!r:.80}")
    if x0 > x1 or y0 > y1:
        raise ValueError(f"bbox must have x_min <= x_max and y_min <= y_max, got {bbox!r}")
    if (type(class_id) is not int or class_id < 0) and (
        not _is_int(class_id) or int(typing.cast(int, class_id)) < 0
    ):
        raise ValueError(f"class_id must be a non-negative integer, got {class_id!r:.80}")
    if type(label) is not str and not isinstance(label, str):
        raise ValueError(f"label must be a str, got {type(label).__name__}")
    if len(label) > max_label_chars:
        raise ValueError(
            f"label is {len(label)} characters, more than the {max_label_chars} allowed"
        )
    if track_id is not None and type(track_id) is not int and not _is_int(track_id):
        raise ValueError(f"track_id must be an integer or None, got {track_id!r:.80}")
    if frame_id is not None and not (type(frame_id) is int and 0 <= frame_id <= UINT64_MAX):
        check_uint64("frame_id", frame_id)


def _check_confidence(confidence: object) -> None:
    if not _is_real(confidence):
        raise ValueError(f"confidence must be a number, got {confidence!r:.80}")
    if not (0.0 <= confidence <= 1.0):  # type: ignore[operator]  # also rejects NaN
        raise ValueError(f"confidence must be finite and in [0, 1], got {confidence!r}")
