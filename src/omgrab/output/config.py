"""Configuration of the OutputManager."""

from __future__ import annotations

import dataclasses
import enum


class ColorOrder(enum.StrEnum):
    """Channel order of 3-channel frames passed to ``record_frame``.

    ``RGB`` is the default because every omgrab camera yields RGB; OpenCV's own arrays (and
    ``cv2.VideoCapture``) are ``BGR``. Single-channel frames are grey either way.
    """

    RGB = "rgb"
    BGR = "bgr"


@dataclasses.dataclass(frozen=True)
class OutputConfig:
    """Everything the OutputManager can be tuned with.

    Attributes:
        output_dir: Where ``init()`` creates session directories when it is called without
            one (``/data/output`` on a rig); ``None`` requires ``init(output_dir)``.
        l1_fps: Frame rate of level-1 recording (wide scan), default 2.
        l2_fps: Frame rate of level-2 recording (close inspection), default 30.
        flush_every: Detection lines written to the OS at the latest every this many entries.
        flush_interval_s: ...or this long after the oldest unwritten entry arrived (5 s).
        fsync: Also ``fsync`` the detection log at every flush (power-loss safety, slower).
        caller_flush_assist: If a detection arrives while a due batch of ``flush_every``
            entries is still waiting for the writer thread (a bursty caller holding the GIL),
            ``log_detection`` writes that batch itself (a small page-cache ``write``; skipped
            if the writer thread is mid-write). Keeps the crash-loss bound at ``flush_every``
            entries; turn off to never issue a syscall on the caller's thread.
        reduce_below: Storage ladder: below this free fraction record L1 only (0.20).
        detection_only_below: Below this free fraction stop frames (0.10).
        storage_check_interval_s: Minimum time between two ``statvfs`` calls.
        detection_queue_size: Detection entries that may wait for the writer; beyond it
            ``log_detection`` raises ``WriteError`` (never blocks, never drops silently).
        line_queue_size: Same bound for the health and gimbal logs.
        frame_queue_size: Frames waiting for a JPEG worker; when full new frames are dropped
            and counted (``frames_dropped_queue_full``).
        jpeg_quality: JPEG quality 0-100 (90).
        jpeg_workers: JPEG encoder threads (OpenCV releases the GIL while encoding).
        color_order: Channel order of 3-channel input frames (see ``ColorOrder``).
        copy_frames: Copy each frame into a pooled buffer before ``record_frame`` returns.
            Off by default: the manager keeps a reference to the caller's array until it is
            encoded (a 1280x800 copy costs 0.1-0.4 ms on the caller's thread), so the caller
            must not modify it in place afterwards - true of every omgrab camera, OpenCV's
            ``VideoCapture.read()`` and PyAV, which return a new array per frame. Turn it on
            for sources that reuse one buffer; reuse of a buffer still queued is detected,
            counted (``buffer_reuse_detected``) and warned about once.
        max_entry_bytes: Largest serialised log line accepted (detections, health, gimbal).
        max_label_chars: Longest detection label accepted.
        detection_reserve_bytes: Space pre-allocated next to the detection log and released
            when the disk fills, so detections keep being written after frames fail.
        retention_enabled: Delete the oldest frames (this and earlier sessions under the output
            directory; never any ``.jsonl`` / ``.log``) while free space is below
            ``retention_target_free``.
        retention_target_free: Free fraction retention restores (default 0.25).
        operator_queue_size: Reports waiting per operator sink; oldest dropped when full.
        stats_log_interval_s: An INFO line with the session's counters is logged at most this
            often (checked whenever health is logged, and at close); 0 disables it.
    """

    output_dir: str | None = None

    l1_fps: float = 2.0
    l2_fps: float = 30.0
    flush_every: int = 10
    flush_interval_s: float = 5.0
    fsync: bool = False
    caller_flush_assist: bool = True
    reduce_below: float = 0.20
    detection_only_below: float = 0.10
    storage_check_interval_s: float = 1.0
    detection_queue_size: int = 100_000
    line_queue_size: int = 10_000
    frame_queue_size: int = 8
    jpeg_quality: int = 90
    jpeg_workers: int = 2
    color_order: ColorOrder = ColorOrder.RGB
    copy_frames: bool = False
    max_entry_bytes: int = 64 * 1024
    max_label_chars: int = 256
    detection_reserve_bytes: int = 1024 * 1024
    retention_enabled: bool = False
    retention_target_free: float = 0.25
    operator_queue_size: int = 256
    stats_log_interval_s: float = 60.0

    def __post_init__(self) -> None:
        for name in ("l1_fps", "l2_fps", "flush_interval_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"OutputConfig.{name} must be > 0, got {getattr(self, name)!r}")
        for name in (
            "flush_every",
            "detection_queue_size",
            "line_queue_size",
            "frame_queue_size",
            "jpeg_workers",
            "max_entry_bytes",
            "max_label_chars",
            "operator_queue_size",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"OutputConfig.{name} must be an int >= 1, got {value!r}")
        if self.stats_log_interval_s < 0:
            raise ValueError("OutputConfig.stats_log_interval_s must be >= 0")
        if self.storage_check_interval_s < 0:
            raise ValueError("OutputConfig.storage_check_interval_s must be >= 0")
        if self.detection_reserve_bytes < 0:
            raise ValueError("OutputConfig.detection_reserve_bytes must be >= 0")
        if not 0 <= self.jpeg_quality <= 100:
            raise ValueError(
                f"OutputConfig.jpeg_quality must be in [0, 100], got {self.jpeg_quality}"
            )
        for name in ("reduce_below", "detection_only_below", "retention_target_free"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"OutputConfig.{name} must be in [0, 1], got {value!r}")
        if self.detection_only_below > self.reduce_below:
            raise ValueError("OutputConfig.detection_only_below must not exceed reduce_below")
        object.__setattr__(self, "color_order", ColorOrder(self.color_order))
