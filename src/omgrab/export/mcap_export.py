"""Convert a merged recording (``REC.mkv`` + ``REC.json``) into an MCAP file Foxglove opens.

Data path: one pass over the MKV with PyAV's demuxer, in file order. Each packet becomes one
MCAP message on the topic ``/<stream name>``, logged at the recording's capture time: the
wall-clock start (manifest ``started_at``, else the MKV ``DATE_RECORDED`` tag) plus the packet's
pts. Nothing is re-encoded:

- H.264 video -> ``foxglove.CompressedVideo`` (protobuf). Matroska stores H.264 as AVCC
  (length-prefixed NAL units, SPS/PPS in the codec private); Foxglove wants Annex-B with SPS/PPS
  in front of every keyframe, so packets go through FFmpeg's ``h264_mp4toannexb`` bitstream
  filter, which rewrites framing only.
- Lossless 16-bit depth (FFV1 ``gray16le``) -> ``foxglove.RawImage`` with encoding ``16UC1``
  (the FFV1 frames are decoded; the pixels are exactly what was captured).
- Data tracks (IMU JSON batches in an ``ass`` text track) -> JSON messages with a JSON schema.
- The manifest -> an MCAP metadata record ``omgrab.manifest``.

Bounds: memory is one packet (one decoded depth frame) plus the MCAP writer's open chunk
(``chunk_size``). Lifecycle: the output is written to ``<output>.partial`` and renamed into place
only when the MCAP footer is written and flushed to disk, so a crash or an error never leaves a
truncated file under the requested name. Error policy: a missing or unreadable input, a stream
this exporter cannot map, or a recording without a wall-clock start raises
:class:`ExportError` naming what was wrong; the partial file is removed.
"""

from __future__ import annotations

import dataclasses
import datetime
import fractions
import json
import os
import pathlib
import time
from collections.abc import Callable
from typing import Any, BinaryIO

import av

from omgrab.recording import atomic_files
from omgrab.recording import manifest as manifest_mod

MANIFEST_METADATA_NAME = "omgrab.manifest"
"""Name of the MCAP metadata record holding the recording manifest."""

COMPRESSIONS = ("zstd", "lz4", "none")
"""Chunk compressions the exporter accepts."""

IMU_BATCH_SCHEMA: dict[str, Any] = {
    "title": "omgrab.ImuBatch",
    "description": "A batch of IMU readings; reading i was taken at t0 + dt_ms[i].",
    "type": "object",
    "properties": {
        "seq": {"type": "integer", "description": "Batch sequence number."},
        "t0": {"type": "string", "description": "Wall-clock time of the first reading."},
        "rate_hz": {"type": "number"},
        "readings": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "dt_ms": {"type": "number"},
                    "accel": {
                        "type": "array",
                        "items": {"type": "number"},
                        "description": "m/s^2, x y z",
                    },
                    "gyro": {
                        "type": "array",
                        "items": {"type": "number"},
                        "description": "rad/s, x y z",
                    },
                },
            },
        },
    },
}

GENERIC_DATA_SCHEMA: dict[str, Any] = {"title": "omgrab.DataItem", "type": "object"}


class ExportError(ValueError):
    """The recording cannot be exported (missing input, unknown stream, no wall-clock start)."""


@dataclasses.dataclass
class TopicSummary:
    """What one topic of the export holds.

    Attributes:
        topic: MCAP topic (``/rgb``).
        schema: Schema name (``foxglove.CompressedVideo``).
        messages: Messages written.
        first_log_time_ns: Log time of the first message (ns since the epoch).
        last_log_time_ns: Log time of the last message.
    """

    topic: str
    schema: str
    messages: int = 0
    first_log_time_ns: int | None = None
    last_log_time_ns: int | None = None


@dataclasses.dataclass
class ExportResult:
    """Summary of one export.

    Attributes:
        output: The MCAP file written.
        input_bytes: Size of the MKV read.
        output_bytes: Size of the MCAP written.
        seconds: Wall time of the export.
        start_ns: Wall-clock time of pts 0 (ns since the epoch).
        topics: Per-topic summaries, keyed by stream name.
    """

    output: pathlib.Path
    input_bytes: int
    output_bytes: int
    seconds: float
    start_ns: int
    topics: dict[str, TopicSummary]

    @property
    def input_mb_per_s(self) -> float:
        """MKV megabytes (10^6 bytes) processed per second."""
        return self.input_bytes / 1e6 / self.seconds if self.seconds > 0 else float("inf")


def _import_mcap() -> tuple[Any, Any, Any, Any]:
    try:
        from foxglove_schemas_protobuf import CompressedVideo_pb2, RawImage_pb2
        from google.protobuf import descriptor_pb2
        from mcap import writer as mcap_writer
    except ImportError as exc:  # pragma: no cover - exercised via the CLI check
        raise ExportError(
            f"MCAP export needs the 'export' extra: pip install 'omgrab[export]' ({exc.name} "
            "is missing)"
        ) from exc
    return mcap_writer, CompressedVideo_pb2, RawImage_pb2, descriptor_pb2


def _file_descriptor_set(message_class: Any, descriptor_pb2: Any) -> bytes:
    """Serialise the FileDescriptorSet of ``message_class`` and everything it imports."""
    files = descriptor_pb2.FileDescriptorSet()
    seen: set[str] = set()
    pending = [message_class.DESCRIPTOR.file]
    ordered = []
    while pending:
        file = pending.pop()
        if file.name in seen:
            continue
        seen.add(file.name)
        ordered.append(file)
        pending.extend(file.dependencies)
    for file in reversed(ordered):
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        files.file.append(proto)
    return bytes(files.SerializeToString())


def _parse_utc(value: str) -> datetime.datetime:
    text = value.strip().replace("Z", "+00:00")
    moment = datetime.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment


def _epoch_ns(moment: datetime.datetime) -> int:
    delta = moment - datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def recording_start_ns(
    container_tags: dict[str, str], manifest: manifest_mod.Manifest | None, source: str
) -> int:
    """Return the wall-clock time of pts 0 in ns since the epoch.

    The manifest's ``started_at`` wins; the MKV ``DATE_RECORDED`` tag is the fallback.

    Raises:
        ExportError: neither gives a parseable time.
    """
    candidates = []
    if manifest is not None and manifest.started_at:
        candidates.append(("manifest started_at", manifest.started_at))
    for key, value in container_tags.items():
        if key.upper() == "DATE_RECORDED":
            candidates.append(("MKV tag DATE_RECORDED", value))
    for where, value in candidates:
        try:
            return _epoch_ns(_parse_utc(value))
        except ValueError as exc:
            raise ExportError(f"{source}: {where} {value!r} is not an ISO 8601 time") from exc
    raise ExportError(
        f"{source}: no wall-clock start (manifest started_at is null and the MKV has no "
        "DATE_RECORDED tag); cannot place messages on capture time"
    )


def _pts_ns(pts: int, time_base: fractions.Fraction) -> int:
    return int(pts * time_base.numerator * 1_000_000_000 // time_base.denominator)


def _stream_name(stream: Any) -> str:
    meta = {k.upper(): v for k, v in stream.metadata.items()}
    return str(meta.get("STREAM_NAME") or meta.get("TITLE") or f"track{stream.index}")


def _timestamp(message: Any, ns: int) -> None:
    message.timestamp.seconds = ns // 1_000_000_000
    message.timestamp.nanos = ns % 1_000_000_000


class _Handler:
    """Turns the packets of one MKV stream into MCAP messages."""

    def __init__(self, name: str, schema: str, channel_id: int) -> None:
        self.summary = TopicSummary(topic=f"/{name}", schema=schema)
        self.name = name
        self.channel_id = channel_id

    def messages(self, packet: Any) -> list[tuple[int, Any]]:
        """Return ``(pts_ns, message)`` (protobuf message or JSON bytes) per message."""
        raise NotImplementedError

    def flush(self) -> list[tuple[int, Any]]:
        """Return messages still buffered at the end of the file."""
        return []


class _H264Handler(_Handler):
    def __init__(self, name: str, channel_id: int, stream: Any, pb2: Any) -> None:
        super().__init__(name, "foxglove.CompressedVideo", channel_id)
        self._bsf = av.bitstream.BitStreamFilterContext("h264_mp4toannexb", in_stream=stream)
        self._time_base = stream.time_base
        self._pb2 = pb2

    def _encode(self, packets: list[Any]) -> list[tuple[int, Any]]:
        out = []
        for packet in packets:
            if packet.pts is None:
                continue
            ns = _pts_ns(packet.pts, self._time_base)
            message = self._pb2.CompressedVideo(frame_id=self.name, format="h264")
            message.data = bytes(packet)
            out.append((ns, message))
        return out

    def messages(self, packet: Any) -> list[tuple[int, Any]]:
        return self._encode(self._bsf.filter(packet))

    def flush(self) -> list[tuple[int, Any]]:
        return self._encode(self._bsf.filter(None))


class _RawImageHandler(_Handler):
    def __init__(self, name: str, channel_id: int, stream: Any, pb2: Any) -> None:
        super().__init__(name, "foxglove.RawImage", channel_id)
        self._stream = stream
        self._time_base = stream.time_base
        self._pb2 = pb2
        # FFV1 decodes frames in parallel (frame threads); the decoder returns them in order.
        stream.codec_context.thread_type = "AUTO"
        stream.codec_context.thread_count = 0

    def _encode(self, frames: list[Any]) -> list[tuple[int, Any]]:
        out = []
        for frame in frames:
            if frame.pts is None:
                continue
            pixels = frame.to_ndarray()
            if pixels.dtype.itemsize != 2 or pixels.ndim != 2:
                raise ExportError(
                    f"stream {self.name!r}: expected 16-bit single-channel frames, got "
                    f"{frame.format.name}"
                )
            pixels = pixels.astype("<u2", copy=False)
            message = self._pb2.RawImage(
                frame_id=self.name,
                width=frame.width,
                height=frame.height,
                encoding="16UC1",
                step=frame.width * 2,
            )
            message.data = pixels.tobytes()
            out.append((_pts_ns(frame.pts, self._time_base), message))
        return out

    def messages(self, packet: Any) -> list[tuple[int, Any]]:
        return self._encode(list(packet.decode()))

    def flush(self) -> list[tuple[int, Any]]:
        return self._encode(list(self._stream.codec_context.decode(None)))


class _JsonHandler(_Handler):
    def __init__(self, name: str, channel_id: int, stream: Any, schema: str) -> None:
        super().__init__(name, schema, channel_id)
        self._time_base = stream.time_base

    def messages(self, packet: Any) -> list[tuple[int, Any]]:
        if packet.pts is None:
            return []
        payload = bytes(packet)
        try:
            doc = json.loads(payload)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            payload = json.dumps({"text": payload.decode("utf-8", "replace")}).encode()
        return [(_pts_ns(packet.pts, self._time_base), payload)]


def _read_manifest(mkv: pathlib.Path) -> manifest_mod.Manifest | None:
    path = manifest_mod.manifest_path_for(mkv)
    if not path.exists():
        return None
    try:
        return manifest_mod.read_manifest(path)
    except manifest_mod.ManifestError as exc:
        raise ExportError(str(exc)) from exc


def export_mcap(
    mkv_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    compression: str = "zstd",
    chunk_size: int = 4 * 1024 * 1024,
    on_progress: Callable[[int], None] | None = None,
) -> ExportResult:
    """Write the MCAP export of the merged recording ``mkv_path`` to ``output``.

    Args:
        mkv_path: The merged MKV; its manifest (same name, ``.json``) is used when present.
        output: The MCAP file to write (replaced atomically).
        compression: MCAP chunk compression, one of :data:`COMPRESSIONS`.
        chunk_size: MCAP chunk size in bytes.
        on_progress: Called with the number of messages written so far, every 500 messages.

    Returns:
        A summary with per-topic message counts and time ranges.

    Raises:
        ExportError: the input is missing or unusable, or a stream cannot be mapped.
    """
    if compression not in COMPRESSIONS:
        raise ExportError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
    mkv = pathlib.Path(mkv_path)
    if not mkv.is_file():
        raise ExportError(f"recording {mkv} does not exist or is not a file")
    target = pathlib.Path(output)
    if target.resolve() == mkv.resolve():
        raise ExportError(f"output {target} would overwrite the recording")
    mcap_writer, video_pb2, image_pb2, descriptor_pb2 = _import_mcap()
    manifest = _read_manifest(mkv)
    began = time.monotonic()
    try:
        container = av.open(str(mkv))
    except (av.error.FFmpegError, OSError) as exc:
        raise ExportError(f"recording {mkv} cannot be opened: {exc}") from exc
    partial = target.with_name(target.name + ".partial")
    try:
        with container, partial.open("wb") as sink:
            start_ns = recording_start_ns(dict(container.metadata), manifest, str(mkv))
            handlers = _write(
                container,
                sink,
                start_ns,
                manifest,
                mcap_writer,
                video_pb2,
                image_pb2,
                descriptor_pb2,
                compression,
                chunk_size,
                on_progress,
                str(mkv),
            )
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(partial, target)
        atomic_files.fsync_path(target.parent)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return ExportResult(
        output=target,
        input_bytes=mkv.stat().st_size,
        output_bytes=target.stat().st_size,
        seconds=time.monotonic() - began,
        start_ns=start_ns,
        topics={h.name: h.summary for h in handlers},
    )


def _write(
    container: Any,
    sink: BinaryIO,
    start_ns: int,
    manifest: manifest_mod.Manifest | None,
    mcap_writer: Any,
    video_pb2: Any,
    image_pb2: Any,
    descriptor_pb2: Any,
    compression: str,
    chunk_size: int,
    on_progress: Callable[[int], None] | None,
    source: str,
) -> list[_Handler]:
    writer = mcap_writer.Writer(
        sink,
        chunk_size=chunk_size,
        compression=mcap_writer.CompressionType[compression.upper()],
    )
    import omgrab

    writer.start(profile="", library=f"omgrab {omgrab.__version__}")
    schema_ids: dict[str, int] = {}

    def schema(name: str, encoding: str, data: bytes) -> int:
        if name not in schema_ids:
            schema_ids[name] = writer.register_schema(name=name, encoding=encoding, data=data)
        return schema_ids[name]

    def protobuf_channel(topic: str, message_class: Any, metadata: dict[str, str]) -> int:
        sid = schema(
            message_class.DESCRIPTOR.full_name,
            "protobuf",
            _file_descriptor_set(message_class, descriptor_pb2),
        )
        return int(writer.register_channel(topic, "protobuf", sid, metadata))

    handlers: dict[int, _Handler] = {}
    for stream in container.streams:
        name = _stream_name(stream)
        codec = stream.codec_context.name if stream.codec_context is not None else None
        topic = f"/{name}"
        meta = {k.upper(): str(v) for k, v in stream.metadata.items()}
        channel_meta = {"stream": name, "codec": str(codec), "type": meta.get("TYPE", "")}
        if stream.type == "video" and codec == "h264":
            if stream.codec_context.has_b_frames:
                raise ExportError(
                    f"{source}: stream {name!r} uses B-frames, which foxglove.CompressedVideo "
                    "cannot carry (record with the encoder option bf=0, omgrab's default)"
                )
            cid = protobuf_channel(topic, video_pb2.CompressedVideo, channel_meta)
            handlers[stream.index] = _H264Handler(name, cid, stream, video_pb2)
        elif stream.type == "video" and stream.codec_context.pix_fmt in ("gray16le", "gray16be"):
            cid = protobuf_channel(topic, image_pb2.RawImage, channel_meta)
            handlers[stream.index] = _RawImageHandler(name, cid, stream, image_pb2)
        elif stream.type in ("subtitle", "data"):
            doc = IMU_BATCH_SCHEMA if meta.get("TYPE") == "imu" else GENERIC_DATA_SCHEMA
            sid = schema(doc["title"], "jsonschema", json.dumps(doc).encode())
            cid = writer.register_channel(topic, "json", sid, channel_meta)
            handlers[stream.index] = _JsonHandler(name, cid, stream, doc["title"])
        else:
            raise ExportError(
                f"{source}: stream {name!r} ({stream.type}, codec {codec}, pixel format "
                f"{getattr(stream.codec_context, 'pix_fmt', None)}) has no MCAP mapping "
                "(supported: H.264 video, 16-bit depth, JSON data tracks)"
            )

    written = 0
    sequences: dict[int, int] = {}

    def emit(handler: _Handler, items: list[tuple[int, Any]]) -> None:
        nonlocal written
        for pts_ns, message in items:
            log_time = start_ns + pts_ns
            if isinstance(message, bytes):
                data = message
            else:
                _timestamp(message, log_time)
                data = message.SerializeToString()
            seq = sequences.get(handler.channel_id, 0)
            sequences[handler.channel_id] = seq + 1
            writer.add_message(
                channel_id=handler.channel_id,
                log_time=log_time,
                data=data,
                publish_time=log_time,
                sequence=seq,
            )
            summary = handler.summary
            summary.messages += 1
            if summary.first_log_time_ns is None:
                summary.first_log_time_ns = log_time
            summary.last_log_time_ns = log_time
            written += 1
            if on_progress is not None and written % 500 == 0:
                on_progress(written)

    try:
        for packet in container.demux():
            handler = handlers.get(packet.stream.index)
            if handler is None or packet.size == 0:
                continue
            emit(handler, handler.messages(packet))
        for handler in handlers.values():
            emit(handler, handler.flush())
    except av.error.FFmpegError as exc:
        raise ExportError(f"{source}: cannot read the recording: {exc}") from exc

    if manifest is not None:
        doc = manifest.to_dict()
        writer.add_metadata(
            MANIFEST_METADATA_NAME,
            {
                "recording_id": manifest.recording_id,
                "started_at": manifest.started_at or "",
                "json": json.dumps(doc, ensure_ascii=False),
            },
        )
    else:
        writer.add_metadata(
            MANIFEST_METADATA_NAME,
            {"recording_id": pathlib.Path(source).stem, "started_at": "", "json": ""},
        )
    writer.finish()
    return list(handlers.values())
