"""Per-stream configuration of a recording: video streams and data (sensor) streams.

``VideoStreamConfig`` and ``DataStreamConfig`` keep the published SDK's shapes. The helpers
``rgb_stream_config``, ``depth_stream_config`` and ``imu_stream_config`` build the reference
stream set (RGB 1280x800 H.264, depth 640x400 FFV1 gray16le, IMU JSON in a text track).
"""

from __future__ import annotations

import dataclasses
import fractions
import json
from typing import Any

import numpy as np

#: Input pixel formats a video stream accepts, with the frame shape and dtype each needs.
#: ``"hw"`` means ``(height, width)``, ``"hwc3"``/``"hwc4"`` add a channel axis,
#: ``"yuv420"`` is a planar 4:2:0 image of shape ``(height * 3 // 2, width)``.
INPUT_PIXEL_FORMATS: dict[str, tuple[str, np.dtype[Any]]] = {
    "rgb24": ("hwc3", np.dtype(np.uint8)),
    "bgr24": ("hwc3", np.dtype(np.uint8)),
    "rgba": ("hwc4", np.dtype(np.uint8)),
    "bgra": ("hwc4", np.dtype(np.uint8)),
    "gray": ("hw", np.dtype(np.uint8)),
    "gray8": ("hw", np.dtype(np.uint8)),
    "gray16le": ("hw", np.dtype("<u2")),
    "yuv420p": ("yuv420", np.dtype(np.uint8)),
    "nv12": ("yuv420", np.dtype(np.uint8)),
}

#: Codecs a data stream may use (Matroska text tracks whose packets carry raw bytes).
DATA_CODECS = ("ass",)


def _check_metadata(owner: str, metadata: Any) -> None:
    if not isinstance(metadata, dict):
        raise ValueError(f"{owner}.metadata must be a dict, got {type(metadata).__name__}")
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str | int | float):
            raise ValueError(
                f"{owner}.metadata keys must be strings and values strings or numbers, "
                f"got {key!r}: {value!r}"
            )


def check_stream_type(owner: str, metadata: dict[str, Any]) -> None:
    """Raise ValueError unless ``metadata`` carries a non-empty ``'type'``.

    Checked when a ``ChunkedWriter`` is built (as in omgrab 0.1.2), not when the config is.
    """
    if not metadata.get("type"):
        raise ValueError(
            f"{owner}.metadata must carry a non-empty 'type' (e.g. 'rgb', 'depth', 'imu'), "
            f"got {metadata!r}"
        )


def _json_fields(config: Any) -> dict[str, Any]:
    doc = dataclasses.asdict(config)
    doc["metadata"] = {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in config.metadata.items()
    }
    if isinstance(doc.get("fps"), fractions.Fraction):
        doc["fps"] = float(doc["fps"])
    return doc


@dataclasses.dataclass
class VideoStreamConfig:
    """How one camera stream is encoded.

    Attributes:
        width: Frame width in pixels (> 0; even for 4:2:0 output formats).
        height: Frame height in pixels (> 0; even for 4:2:0 output formats).
        fps: Nominal frame rate (> 0); also the stream's frame rate in the file.
        codec: FFmpeg encoder name, e.g. ``'libx264'`` or ``'ffv1'``.
        bitrate: Target bit rate in bits/s (>= 0; 0 sets no target, so the codec's own rate
            control applies, e.g. x264's CRF, as omgrab 0.1.2 allowed; ignored by lossless codecs).
        input_pixel_format: Pixel format of the frames handed to the writer; one of
            ``INPUT_PIXEL_FORMATS``. It fixes the ndarray shape and dtype the writer accepts.
        output_pixel_format: Pixel format stored in the file (e.g. ``'yuv420p'``).
        stream_options: Encoder options passed to FFmpeg, e.g. ``{'preset': 'superfast'}``.
        metadata: Track tags (numbers are stored as text); must carry ``'type'`` when a writer
            uses the config. A ``'TITLE'`` key becomes the track name.
        capture_safe: Let the writer bound the encoder's delay (no B-frame reordering, no
            look-ahead; see ``encoder_options``) so a crash loses at most a frame or two
            beyond the backlog. False passes ``stream_options`` to the encoder unchanged.
    """

    width: int
    height: int
    fps: float | fractions.Fraction
    codec: str = "libx264"
    bitrate: int = 2_000_000
    input_pixel_format: str = "rgb24"
    output_pixel_format: str = "yuv420p"
    stream_options: dict[str, str] = dataclasses.field(default_factory=dict)
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    capture_safe: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.capture_safe, bool):
            raise ValueError(
                f"VideoStreamConfig.capture_safe must be a bool, got {self.capture_safe!r}"
            )
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"VideoStreamConfig.{name} must be a positive int, got {value!r}")
        if (
            isinstance(self.fps, bool)
            or not isinstance(self.fps, int | float | fractions.Fraction)
            or self.fps <= 0
        ):
            raise ValueError(f"VideoStreamConfig.fps must be > 0, got {self.fps!r}")
        if not isinstance(self.codec, str) or not self.codec:
            raise ValueError(f"VideoStreamConfig.codec must be a codec name, got {self.codec!r}")
        if isinstance(self.bitrate, bool) or not isinstance(self.bitrate, int) or self.bitrate < 0:
            raise ValueError(
                f"VideoStreamConfig.bitrate must be an int >= 0 (bits/s), got {self.bitrate!r}"
            )
        if self.input_pixel_format not in INPUT_PIXEL_FORMATS:
            raise ValueError(
                f"VideoStreamConfig.input_pixel_format {self.input_pixel_format!r} is not "
                f"supported; use one of {sorted(INPUT_PIXEL_FORMATS)}"
            )
        if not isinstance(self.output_pixel_format, str) or not self.output_pixel_format:
            raise ValueError(
                "VideoStreamConfig.output_pixel_format must be a pixel format name, "
                f"got {self.output_pixel_format!r}"
            )
        chroma_420 = self.output_pixel_format in ("yuv420p", "nv12", "yuvj420p") or (
            INPUT_PIXEL_FORMATS[self.input_pixel_format][0] == "yuv420"
        )
        if chroma_420 and (self.width % 2 or self.height % 2):
            raise ValueError(
                f"VideoStreamConfig width and height must be even for 4:2:0 formats, "
                f"got {self.width}x{self.height}"
            )
        if not isinstance(self.stream_options, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.stream_options.items()
        ):
            raise ValueError(
                "VideoStreamConfig.stream_options must map option names to string values, "
                f"got {self.stream_options!r}"
            )
        _check_metadata("VideoStreamConfig", self.metadata)

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """The ndarray shape of one input frame."""
        layout = INPUT_PIXEL_FORMATS[self.input_pixel_format][0]
        if layout == "hwc3":
            return (self.height, self.width, 3)
        if layout == "hwc4":
            return (self.height, self.width, 4)
        if layout == "yuv420":
            return (self.height * 3 // 2, self.width)
        return (self.height, self.width)

    @property
    def frame_dtype(self) -> np.dtype[Any]:
        """The ndarray dtype of one input frame."""
        return INPUT_PIXEL_FORMATS[self.input_pixel_format][1]

    @property
    def frame_nbytes(self) -> int:
        """Bytes of one input frame."""
        return int(np.prod(self.frame_shape)) * self.frame_dtype.itemsize

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict of the fields (as written to ``recording.json``)."""
        return _json_fields(self)


@dataclasses.dataclass
class DataStreamConfig:
    """How one data (sensor) stream is stored: one text-track packet per item.

    Attributes:
        codec: Matroska text codec; only ``'ass'`` (``S_TEXT/ASS``) is supported. Each packet's
            payload is exactly the item's bytes.
        metadata: Track tags (numbers are stored as text); must carry ``'type'`` when a writer
            uses the config. A ``'TITLE'`` key becomes the track name.
        max_item_bytes: Largest item accepted (bytes); larger items are rejected and counted
            as invalid. It sizes the stream's shared-memory slots.
    """

    codec: str = "ass"
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    max_item_bytes: int = 65536

    def __post_init__(self) -> None:
        if self.codec not in DATA_CODECS:
            raise ValueError(
                f"DataStreamConfig.codec {self.codec!r} is not supported; use one of {DATA_CODECS}"
            )
        if (
            isinstance(self.max_item_bytes, bool)
            or not isinstance(self.max_item_bytes, int)
            or self.max_item_bytes <= 0
        ):
            raise ValueError(
                "DataStreamConfig.max_item_bytes must be a positive int, "
                f"got {self.max_item_bytes!r}"
            )
        _check_metadata("DataStreamConfig", self.metadata)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict of the fields (as written to ``recording.json``)."""
        return _json_fields(self)


def rgb_stream_config(
    width: int = 1280,
    height: int = 800,
    fps: float = 25,
    bitrate: int = 4_000_000,
    preset: str = "superfast",
    input_pixel_format: str = "rgb24",
    stream_options: dict[str, str] | None = None,
    metadata: dict[str, str] | None = None,
) -> VideoStreamConfig:
    """Return the reference RGB stream: H.264 (libx264), keyframe every second, no B-frames.

    Args:
        width: Frame width in pixels.
        height: Frame height in pixels.
        fps: Frame rate; also the GOP length (``g``).
        bitrate: Target bit rate in bits/s.
        preset: libx264 preset (``'ultrafast'`` ... ``'veryslow'``).
        input_pixel_format: ``'rgb24'`` or ``'bgr24'`` (OpenCV frames).
        stream_options: Extra encoder options; override the defaults above.
        metadata: Extra track tags; ``type`` defaults to ``'rgb'`` and ``TITLE`` to ``'rgb'``.

    Returns:
        The stream configuration.
    """
    options = {"preset": preset, "g": str(round(fps)), "bf": "0"}
    options.update(stream_options or {})
    tags = {"type": "rgb", "TITLE": "rgb"}
    tags.update(metadata or {})
    return VideoStreamConfig(
        width=width,
        height=height,
        fps=fps,
        codec="libx264",
        bitrate=bitrate,
        input_pixel_format=input_pixel_format,
        output_pixel_format="yuv420p",
        stream_options=options,
        metadata=tags,
    )


def depth_stream_config(
    width: int = 640,
    height: int = 400,
    fps: float = 25,
    metadata: dict[str, str] | None = None,
) -> VideoStreamConfig:
    """Return the reference depth stream: lossless FFV1, uint16 millimetres (gray16le).

    Args:
        width: Frame width in pixels.
        height: Frame height in pixels.
        fps: Frame rate.
        metadata: Extra track tags; ``type`` defaults to ``'depth'`` and ``TITLE`` to
            ``'depth'``; ``UNITS`` to ``'mm'``.

    Returns:
        The stream configuration.
    """
    tags = {"type": "depth", "TITLE": "depth", "UNITS": "mm"}
    tags.update(metadata or {})
    return VideoStreamConfig(
        width=width,
        height=height,
        fps=fps,
        codec="ffv1",
        bitrate=2_000_000,
        input_pixel_format="gray16le",
        output_pixel_format="gray16le",
        stream_options={},
        metadata=tags,
    )


def imu_stream_config(metadata: dict[str, str] | None = None) -> DataStreamConfig:
    """Return the reference IMU stream: compact JSON batches in an ``ass`` text track.

    Args:
        metadata: Extra track tags; ``type`` defaults to ``'imu'`` and ``TITLE`` to ``'imu'``.

    Returns:
        The stream configuration.
    """
    tags = {"type": "imu", "TITLE": "imu"}
    tags.update(metadata or {})
    return DataStreamConfig(codec="ass", metadata=tags)
