"""Stand-alone PyAV stream encoders with omgrab 0.1.2's interface (``StreamEncoder``).

This package's writer encodes in its worker processes (``stream_worker``); these classes exist
for code written against omgrab 0.1.2 that builds its own containers. Each adds one stream to a
caller-owned PyAV output container and turns ``(data, timestamp_s)`` into packets whose pts are
microseconds (``TIME_BASE``) since ``timestamp_origin_s``, clamped at 0. The caller muxes and
closes the container; no thread, process or file is owned here.
"""

from __future__ import annotations

import fractions
import json
from typing import Any, Protocol, runtime_checkable

import av
import numpy as np

#: Stream and codec time base of the encoders: one microsecond.
TIME_BASE = fractions.Fraction(1, 1_000_000)


@runtime_checkable
class StreamEncoder(Protocol):
    """What every stream encoder offers: ``encode`` items and ``flush`` at the end."""

    def encode(self, data: Any, timestamp_s: float) -> list[av.Packet]:
        """Return the packets produced by one item (possibly none)."""
        ...

    def flush(self) -> list[av.Packet]:
        """Return the packets still held by the encoder."""
        ...


def _pts_us(timestamp_s: float, origin_s: float) -> int:
    return max(0, int((timestamp_s - origin_s) * TIME_BASE.denominator))


def _tag(stream: Any, metadata: dict[str, Any] | None) -> None:
    for key, value in (metadata or {}).items():
        stream.metadata[key] = value if isinstance(value, str) else json.dumps(value)


class VideoStreamEncoder:
    """Encodes ndarray frames of one video stream into packets (no muxing).

    Args:
        container: Output container the stream is added to.
        width: Frame width in pixels.
        height: Frame height in pixels.
        fps: Nominal frame rate.
        codec: FFmpeg encoder name.
        bitrate: Target bit rate in bits/s.
        input_pixel_format: Pixel format of the frames passed to ``encode``.
        output_pixel_format: Pixel format stored.
        options: Encoder options.
        timestamp_origin_s: Epoch seconds that become pts 0.
        metadata: Stream tags; non-string values are stored as JSON.
    """

    def __init__(
        self,
        container: Any,
        width: int,
        height: int,
        fps: float | fractions.Fraction,
        codec: str,
        bitrate: int,
        input_pixel_format: str,
        output_pixel_format: str,
        options: dict[str, str],
        timestamp_origin_s: float,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        rate = fractions.Fraction(fps).limit_denominator(1001)
        self._stream: Any = container.add_stream(
            codec,
            rate=rate,
            width=width,
            height=height,
            pix_fmt=output_pixel_format,
            bit_rate=bitrate,
            options=dict(options),
        )
        # Microsecond pts on both sides, else the encoder quantises pts to 1/fps.
        self._stream.codec_context.time_base = TIME_BASE
        self._stream.time_base = TIME_BASE
        self._format = input_pixel_format
        self._origin_s = timestamp_origin_s
        _tag(self._stream, metadata)

    def encode(self, frame: np.ndarray, timestamp_s: float) -> list[av.Packet]:
        """Encode one frame stamped ``timestamp_s`` (epoch seconds)."""
        if frame.ndim == 2:
            frame = frame[:, :, np.newaxis]
        video_frame = av.VideoFrame.from_ndarray(frame, format=self._format, channel_last=True)
        video_frame.pts = _pts_us(timestamp_s, self._origin_s)
        video_frame.time_base = TIME_BASE
        return list(self._stream.encode(video_frame))

    def flush(self) -> list[av.Packet]:
        """Drain the encoder."""
        return list(self._stream.encode(None))


class DataStreamEncoder:
    """Wraps byte payloads of one data stream into text-track packets (no muxing).

    Args:
        container: Output container the stream is added to.
        timestamp_origin_s: Epoch seconds that become pts 0.
        codec: Text codec of the track.
        metadata: Stream tags; non-string values are stored as JSON.
    """

    def __init__(
        self,
        container: Any,
        timestamp_origin_s: float,
        codec: str = "ass",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._stream: Any = container.add_stream(codec)
        self._stream.time_base = TIME_BASE
        self._origin_s = timestamp_origin_s
        _tag(self._stream, metadata)

    def encode(self, data: bytes, timestamp_s: float) -> list[av.Packet]:
        """Return the one packet carrying ``data`` at ``timestamp_s`` (epoch seconds)."""
        packet = av.Packet(data)
        packet.stream = self._stream
        packet.pts = packet.dts = _pts_us(timestamp_s, self._origin_s)
        packet.time_base = TIME_BASE
        return [packet]

    def flush(self) -> list[av.Packet]:
        """Nothing is buffered: always ``[]``."""
        return []
