"""The per-stream worker process: drains a ``FrameRing`` into crash-safe Matroska chunks.

One worker runs per stream (video or data), in its own process, so encoding never competes
for the application's GIL. It owns the PyAV containers of its stream and the chunk files.

Protocol with the parent (``ChunkedWriter``):

* items arrive through the ring (see ``frame_ring``); a slot flagged ``FLAG_NEW_CHUNK`` starts
  a new chunk file named by the slot's chunk id (the previous chunk is flushed and closed
  first, so every chunk starts with a keyframe);
* the worker reports over ``events`` (a one-way pipe) as ``(kind, payload)`` tuples:
  ``ready``, ``chunk_opened``, ``chunk_closed``, ``error`` and ``finished``;
* the ring header's ``STOP_FIELD`` asks it to drain every published item and exit; the
  ``lifeline`` pipe reaching EOF means the parent died, which is handled the same way.

Chunk files are written with ``flush_packets=1`` and a short ``cluster_time_limit`` so a
SIGKILL or power loss leaves at most ~0.2 s of the stream unreadable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fractions
import os
import resource
import sys
import threading
import traceback
from collections.abc import Callable
from multiprocessing import connection
from typing import Any

import av
import numpy as np

from omgrab.recording import data_track, frame_ring, named_semaphore, spool_files, spool_lock

TIME_BASE = fractions.Fraction(1, 1000)

#: Suffix of a chunk file until its first packet is written.
PART_SUFFIX = ".part"

#: Input pixel format names in ``VideoStreamConfig`` that FFmpeg spells differently.
_FFMPEG_PIXEL_FORMAT = {"gray8": "gray"}

_IDLE_WAIT_S = 0.2


@dataclasses.dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker process needs (picklable).

    Attributes:
        stream_name: The stream's name (directory name under the recording).
        kind: ``'video'`` or ``'data'``.
        config: The stream config as a dict (``VideoStreamConfig``/``DataStreamConfig``).
        directory: Directory of this stream's chunk files.
        ext: Chunk file extension without the dot.
        ring: The shared-memory ring to drain.
        filled_semaphore: Name of the semaphore the producer releases once per item.
        free_semaphore: Name of the semaphore counting free slots (released here per item).
        cluster_time_limit_ms: Matroska cluster time limit (0: a cluster per packet).
        fsync_interval_ms: How often the open chunk is fsynced (0: never), which bounds
            what a power loss can take.
    """

    stream_name: str
    kind: str
    config: dict[str, Any]
    directory: str
    ext: str
    ring: frame_ring.RingSpec
    filled_semaphore: str
    free_semaphore: str
    cluster_time_limit_ms: int = 0
    fsync_interval_ms: int = 100


class _Chunk:
    """One open chunk file with its single stream.

    Crash safety: the Matroska muxer keeps the cluster it is filling in memory and writes it
    when the next packet (with a later timestamp, ``cluster_time_limit`` 0) starts a new
    cluster. So after every packet an *empty* packet 1 ms later is muxed: it ends the cluster
    (flushed to the file at once with ``flush_packets``) and is itself never written. Every
    packet is therefore in the file when ``mux`` returns.

    The file is created as ``<chunk_id>.<ext>.part`` and renamed once its first packet is in
    it, so a ``.mkv`` chunk file is always demuxable; a ``.part`` file left by a crash holds
    no packet.
    """

    def __init__(self, spec: WorkerSpec, chunk_id: str) -> None:
        self.chunk_id = chunk_id
        self.file = f"{chunk_id}.{spec.ext}"
        self.path = os.path.join(spec.directory, self.file)
        self.part_path = self.path + PART_SUFFIX
        self.renamed = False
        self.frames = 0
        self.frames_in = 0  # frames handed to the encoder
        self.held_max = 0  # most frames the encoder held at once (in, no packet out yet)
        self.first_pts: int | None = None
        self.last_pts: int | None = None
        self._kind = spec.kind
        cfg = spec.config
        self.container: Any = av.open(
            self.part_path,
            "w",
            format="matroska",
            container_options={
                "flush_packets": "1",
                "cluster_time_limit": str(spec.cluster_time_limit_ms),
            },
        )
        try:
            if spec.kind == "video":
                fps = fractions.Fraction(cfg["fps"]).limit_denominator(1001)
                # the effective options: the writer applied ``encoder_options.plan`` already
                options = dict(cfg["stream_options"])
                stream = self.container.add_stream(cfg["codec"], rate=fps, options=options)
                stream.width = cfg["width"]
                stream.height = cfg["height"]
                stream.pix_fmt = cfg["output_pixel_format"]
                stream.bit_rate = cfg["bitrate"]
                stream.time_base = TIME_BASE
                stream.codec_context.time_base = TIME_BASE
                stream.codec_context.framerate = fps
            else:
                stream = self.container.add_stream_from_template(data_track.template_stream())
                stream.time_base = TIME_BASE
            for key, value in cfg["metadata"].items():
                stream.metadata["title" if key == "TITLE" else key] = value
            self.stream: Any = stream
        except Exception:
            self.container.close()
            raise

    def _mux(self, packet: Any) -> None:
        self.container.mux(packet)
        if packet.pts is None:
            return
        pts = int(packet.pts)
        # The pad's pts is what ends the cluster (one ms after ``packet``'s); its dts repeats
        # ``packet``'s: a dts of ``pts + 1`` would run ahead of the next packet's dts whenever
        # the encoder reorders frames (B-frames: dts < pts), and FFmpeg refuses a decreasing
        # dts with EINVAL (error 22).
        pad = av.Packet(b"")
        pad.pts = pts + 1
        pad.dts = pts if packet.dts is None else int(packet.dts)
        pad.time_base = TIME_BASE
        pad.stream = self.stream
        self.container.mux(pad)  # ends (and so writes out) the cluster holding ``packet``
        self.frames += 1
        # With B-frames packets come in decode order: the extremes are min and max.
        self.first_pts = pts if self.first_pts is None else min(self.first_pts, pts)
        self.last_pts = pts if self.last_pts is None else max(self.last_pts, pts)
        if not self.renamed:
            self.rename()

    def rename(self) -> None:
        """Give the file its final name (once it holds a packet, or once closed)."""
        os.replace(self.part_path, self.path)
        self.renamed = True
        _fsync_directory(os.path.dirname(self.path))

    def encode(self, frame: Any) -> list[int]:
        """Encode and mux one video frame; return the pts of packets written."""
        written = []
        self.frames_in += 1
        for packet in self.stream.encode(frame):
            self._mux(packet)
            written.append(int(packet.pts))
        self.held_max = max(self.held_max, self.frames_in - self.frames)
        return written

    def write_data(self, payload: bytes, pts: int) -> list[int]:
        """Mux one data item as a packet whose payload is exactly ``payload``."""
        packet = av.Packet(payload)
        packet.pts = pts
        packet.dts = pts
        packet.time_base = TIME_BASE
        packet.stream = self.stream
        self._mux(packet)
        return [pts]

    def close(self) -> list[int]:
        """Flush the encoder, write the trailer and close; return pts flushed out."""
        written: list[int] = []
        try:
            if self._kind == "video":
                for packet in self.stream.encode(None):
                    self._mux(packet)
                    written.append(int(packet.pts))
        finally:
            self.container.close()
            if not self.renamed:
                self.rename()
        return written

    def summary(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id,
            "file": self.file,
            "frames": self.frames,
            "first_pts_ms": self.first_pts,
            "last_pts_ms": self.last_pts,
        }


def _fsync_directory(directory: str) -> None:
    spool_files.fsync_path(directory)


class _Syncer:
    """Background thread fsyncing the open chunk file every ``interval_s`` (power-loss bound).

    It opens its own descriptor of the chunk file (fsync of any descriptor flushes the file's
    data); ``os.fdatasync`` releases the GIL, so encoding goes on meanwhile.
    """

    def __init__(
        self,
        interval_s: float,
        on_error: Callable[[str], None],
        stop_event: threading.Event | None = None,
    ) -> None:
        self._interval_s = interval_s
        self._on_error = on_error
        self._lock = threading.Lock()  # guards _fd
        self._fd: int | None = None
        # Its wait(interval_s) paces the fsyncs (tests pass an event they tick by hand).
        self._stop = threading.Event() if stop_event is None else stop_event
        self._thread = threading.Thread(target=self._run, name="chunk-fsync", daemon=True)
        self.errors = 0
        if interval_s > 0:
            self._thread.start()

    def follow(self, path: str | None) -> None:
        """Fsync ``path`` from now on (None: nothing)."""
        fd = None
        if path is not None and self._interval_s > 0:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError as exc:
                self._failed(f"cannot open {path} for fsync: {exc}")
        with self._lock:
            old, self._fd = self._fd, fd
        if old is not None:
            os.close(old)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            with self._lock:
                fd = self._fd
                if fd is None:
                    continue
                try:
                    os.fdatasync(fd)  # data and size; skips timestamp-only metadata
                except OSError as exc:
                    self._failed(f"fsync of the open chunk failed: {exc}")

    def _failed(self, message: str) -> None:
        self.errors += 1
        if self.errors == 1:  # reported once; the count goes out with every chunk summary
            self._on_error(message)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)
        self.follow(None)


def check_codec(kind: str, config: dict[str, Any]) -> None:
    """Open the stream's encoder once with its options, raising on a bad configuration."""
    if kind != "video":
        av.codec.Codec(config["codec"], "w")
        return
    ctx: Any = av.CodecContext.create(config["codec"], "w")
    ctx.width = config["width"]
    ctx.height = config["height"]
    ctx.pix_fmt = config["output_pixel_format"]
    ctx.time_base = TIME_BASE
    ctx.framerate = fractions.Fraction(config["fps"]).limit_denominator(1001)
    ctx.bit_rate = config["bitrate"]
    ctx.options = dict(config["stream_options"])
    try:
        ctx.open()
    except Exception as exc:
        from omgrab.recording import encoder_options

        raise ValueError(
            f"encoder {config['codec']} refused {config['width']}x{config['height']} "
            f"{config['output_pixel_format']} with options {config['stream_options']}: {exc}; "
            f"encoders that open here: {', '.join(encoder_options.usable_encoders()) or 'none'}"
        ) from exc


class _Worker:
    def __init__(
        self,
        spec: WorkerSpec,
        filled: Any,
        free: Any,
        events: connection.Connection,
        lifeline: connection.Connection,
    ) -> None:
        self.spec = spec
        self.filled = filled
        self.free = free
        self.events = events
        self.lifeline = lifeline
        self.ring = frame_ring.FrameRing.attach(spec.ring)
        self.header = self.ring.header
        self.chunk: _Chunk | None = None
        self.zero_copy = False
        self.credits = 0  # ``filled`` posts acquired and not yet matched by a consumed item
        self._send_lock = threading.Lock()  # the syncer thread sends too
        self._synced_chunk: _Chunk | None = None
        self.syncer = _Syncer(spec.fsync_interval_ms / 1000.0, self._io_error)
        cfg = spec.config
        if spec.kind == "video":
            from omgrab.recording import config as config_mod

            layout, dtype = config_mod.INPUT_PIXEL_FORMATS[cfg["input_pixel_format"]]
            self.frame_dtype = np.dtype(dtype)
            width, height = cfg["width"], cfg["height"]
            shapes = {
                "hwc3": (height, width, 3),
                "hwc4": (height, width, 4),
                "yuv420": (height * 3 // 2, width),
                "hw": (height, width),
            }
            self.frame_shape = shapes[layout]
            self.frame_nbytes = int(np.prod(self.frame_shape)) * self.frame_dtype.itemsize
            fmt = cfg["input_pixel_format"]
            self.frame_format = _FFMPEG_PIXEL_FORMAT.get(fmt, fmt)
            # Zero copy only when the encoder converts the pixel format (it then never holds
            # the slot's memory after encode() returns) and the rows need no padding.
            self.zero_copy = self.frame_format != cfg[
                "output_pixel_format"
            ] and self.frame_format in ("rgb24", "bgr24", "rgba", "bgra")

    def send(self, kind: str, payload: dict[str, Any]) -> None:
        # OSError: the parent is gone; the files are what matters now.
        with self._send_lock, contextlib.suppress(OSError):
            self.events.send((kind, payload))

    def _io_error(self, message: str) -> None:
        self.send("io_error", {"message": f"stream {self.spec.stream_name!r}: {message}"})

    def _record_written(self, pts_list: list[int]) -> None:
        header = self.header
        chunk = self.chunk
        if chunk is not None and chunk.held_max > header[frame_ring.ENCODER_DELAY_FIELD]:
            header[frame_ring.ENCODER_DELAY_FIELD] = chunk.held_max
        if not pts_list:
            return
        if header[frame_ring.FIRST_PTS_FIELD] < 0:
            header[frame_ring.FIRST_PTS_FIELD] = min(pts_list)
        header[frame_ring.LAST_PTS_FIELD] = max(int(header[frame_ring.LAST_PTS_FIELD]), *pts_list)
        header[frame_ring.WRITTEN_FIELD] += len(pts_list)

    def close_chunk(self) -> None:
        chunk = self.chunk
        if chunk is None:
            return
        self.chunk = None
        try:
            self._record_written(chunk.close())
        finally:
            self.syncer.follow(None)
        if self.spec.fsync_interval_ms > 0:
            spool_files.fsync_path(chunk.path)
        self.send("chunk_closed", chunk.summary())

    def open_chunk(self, chunk_id: str) -> None:
        self.close_chunk()
        self.chunk = _Chunk(self.spec, chunk_id)
        self._synced_chunk = None  # the file exists once its first packet is written
        self.header[frame_ring.CHUNKS_FIELD] += 1
        self.send("chunk_opened", {"chunk_id": chunk_id, "file": self.chunk.file})

    def consume(self, index: int) -> None:
        """Take the item in slot ``index`` out of the ring (freeing the slot) and write it."""
        slot = self.ring.slot_headers[index]
        pts = int(slot[0])
        flags = int(slot[1])
        nbytes = int(slot[2])
        self.header[frame_ring.TAKEN_PTS_FIELD] = pts
        released = False
        try:
            if flags & frame_ring.FLAG_NEW_CHUNK:
                self.open_chunk(self.ring.chunk_id(index))
            chunk = self.chunk
            if chunk is None:
                raise RuntimeError(f"stream {self.spec.stream_name!r}: item before a chunk start")
            if self.spec.kind == "video":
                if self.zero_copy:
                    # The frame reads the slot in place; the encoder's pixel-format conversion
                    # makes its own copy, after which the slot is no longer referenced.
                    self._record_written(self._encode_slot(chunk, index, pts))
                else:
                    frame = self._frame_copy(index)
                    self.release_slot()
                    released = True
                    frame.pts = pts
                    frame.time_base = TIME_BASE
                    self._record_written(chunk.encode(frame))
            else:
                payload = bytes(self.ring.payload(index, nbytes))
                self.release_slot()
                released = True
                self._record_written(chunk.write_data(payload, pts))
        finally:
            if not released:
                self.release_slot()
        chunk = self.chunk
        if chunk is not None and self._synced_chunk is not chunk and chunk.renamed:
            self._synced_chunk = chunk
            self.syncer.follow(chunk.path)

    def _frame_copy(self, index: int) -> Any:
        view = self.ring.payload(index, self.frame_nbytes)
        array = np.frombuffer(view, dtype=self.frame_dtype).reshape(self.frame_shape)
        frame = av.VideoFrame.from_ndarray(array, format=self.frame_format)
        del array, view
        return frame

    def _encode_slot(self, chunk: _Chunk, index: int, pts: int) -> list[int]:
        view = self.ring.payload(index, self.frame_nbytes)
        array = np.frombuffer(view, dtype=self.frame_dtype).reshape(self.frame_shape)
        frame = av.VideoFrame.from_numpy_buffer(array, format=self.frame_format)
        frame.pts = pts
        frame.time_base = TIME_BASE
        try:
            return chunk.encode(frame)
        finally:
            del frame, array, view

    def release_slot(self) -> None:
        self.header[frame_ring.READ_COUNT_FIELD] += 1
        self.free.release()

    def take_posts(self) -> None:
        """Acquire every ``filled`` post available now, each a credit to consume one item."""
        while self.filled.acquire(False):
            self.credits += 1

    def drain(self) -> None:
        """Consume the published items whose semaphore post this process has acquired.

        An item is read only after its own post was acquired (the producer posts after the
        slot's payload, header and the write count are stored), never because the write count
        alone says it is there: on weakly ordered CPUs (ARM) the write count can become visible
        before the slot's bytes. The stop request's extra post is a credit with no item.
        """
        slots = self.spec.ring.slots
        header = self.header
        while (
            self.credits > 0
            and header[frame_ring.READ_COUNT_FIELD] < header[frame_ring.WRITE_COUNT_FIELD]
        ):
            self.credits -= 1
            self.consume(int(header[frame_ring.READ_COUNT_FIELD]) % slots)

    def drain_orphaned(self) -> None:
        """After the parent died: consume what it published, posted or not.

        The parent is gone (its pipe reached EOF, which the kernel reports only after the
        process exited), so every store it made to the ring is complete and visible.
        """
        header = self.header
        self.take_posts()
        self.credits = max(
            self.credits,
            int(header[frame_ring.WRITE_COUNT_FIELD] - header[frame_ring.READ_COUNT_FIELD]),
        )
        self.drain()

    def parent_gone(self) -> bool:
        try:
            return self.lifeline.poll()
        except (EOFError, OSError):
            return True

    def run(self) -> None:
        header = self.header
        while True:
            woke = self.filled.acquire(timeout=_IDLE_WAIT_S)
            if woke:
                self.credits += 1
            self.take_posts()
            self.drain()
            # STOP_FIELD is set before the stop post, and the stop post comes after every
            # item's post, so once it is seen and every published item consumed, all is done.
            if header[frame_ring.STOP_FIELD] and (
                header[frame_ring.READ_COUNT_FIELD] >= header[frame_ring.WRITE_COUNT_FIELD]
            ):
                break
            if not woke and self.parent_gone():
                self.drain_orphaned()
                break
        self.close_chunk()
        self.syncer.stop()


def run_worker(
    spec: WorkerSpec,
    events: connection.Connection,
    lifeline: connection.Connection,
) -> None:
    """Entry point of a worker process (see the module docstring for the protocol).

    Args:
        spec: What to write and where.
        events: Send end of the event pipe to the parent.
        lifeline: Read end of a pipe whose write end only the parent holds.
    """
    worker: _Worker | None = None
    exit_code = 0
    try:
        filled = named_semaphore.open_existing(spec.filled_semaphore)
        free = named_semaphore.open_existing(spec.free_semaphore)
        check_codec(spec.kind, spec.config)
        # held until this process exits, even if the parent dies (see spool_lock)
        spool_lock.hold_shared(os.path.dirname(spec.directory))
        worker = _Worker(spec, filled, free, events, lifeline)
        worker.send("ready", {"pid": os.getpid()})
        worker.run()
    except BaseException as exc:
        exit_code = 1
        message = f"stream {spec.stream_name!r}: {type(exc).__name__}: {exc}"
        with contextlib.suppress(BrokenPipeError, OSError):
            events.send(("error", {"message": message, "traceback": traceback.format_exc()}))
        if worker is not None and worker.chunk is not None:
            chunk, worker.chunk = worker.chunk, None
            with contextlib.suppress(Exception):  # keep what was written readable
                chunk.container.close()
            worker.send("chunk_closed", chunk.summary())
    finally:
        written = 0
        if worker is not None:
            written = int(worker.header[frame_ring.WRITTEN_FIELD])
            worker.ring.close()
        with contextlib.suppress(BrokenPipeError, OSError):
            usage = resource.getrusage(resource.RUSAGE_SELF)
            events.send(
                (
                    "finished",
                    {
                        "frames_written": written,
                        "exit_code": exit_code,
                        "cpu_s": usage.ru_utime + usage.ru_stime,
                    },
                )
            )
        events.close()
    if exit_code:
        sys.exit(exit_code)
