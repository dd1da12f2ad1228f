"""The recordings browser: list, details, download (HTTP Range), play in the browser, delete.

Data path: merged recordings live in the recordings directory as ``<id>.mkv`` beside their
manifest ``<id>.json``. Every route takes a recording id from the URL and turns it into paths
with :func:`omgrab.app.web.security.safe_child` only, so no request reaches outside that
directory.

* ``GET /api/recordings`` — one summary row per manifest; ``?sort=<field>&order=asc|desc``,
  ``?q=`` (substring of the id), ``?recovered=true|false``, ``?min_duration_s=``.
* ``GET /api/recordings/{id}`` — the whole manifest.
* ``GET /api/recordings/{id}/download`` — the MKV, streamed from disk by Starlette's
  ``FileResponse`` (``Accept-Ranges: bytes``; a ``Range`` request gets 206 with just those
  bytes, so a broken download resumes).
* ``GET /api/recordings/{id}/rgb.mp4`` — the RGB track remuxed on the fly into fragmented MP4
  (PyAV, packets copied, no re-encode) so a ``<video>`` element plays it. The remux runs on a
  worker thread feeding a bounded queue (8 fragments); the event loop only forwards bytes.
* ``DELETE /api/recordings/{id}?confirm=<id>`` — deletes the MKV and its manifest; the
  ``confirm`` parameter must repeat the id (the page asks the operator first).

Errors: an unknown or malformed id is 404/400 with the reason; a remux failure ends the stream
and is logged and counted in ``remux_errors``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging
import pathlib
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import av
from starlette import requests, responses, routing

from omgrab.app.web import security

logger = logging.getLogger(__name__)

SORT_FIELDS = (
    "started_at",
    "duration_s",
    "size_bytes",
    "frames",
    "dropped",
    "recording_id",
)
_FRAGMENT_QUEUE = 8


@dataclasses.dataclass(frozen=True)
class RecordingSummary:
    """One row of the recordings list.

    Attributes:
        recording_id: The id (file stem).
        started_at: Wall-clock start (ISO 8601) or None.
        duration_s: Duration or None.
        size_bytes: Size of the merged MKV on disk.
        streams: Stream names in track order.
        frames: Frames written per stream.
        dropped: Frames dropped, summed over streams with a known count.
        gaps: Gaps reported by the manifest (summed), 0 when it reports none.
        stop_reason: Why the recording stopped, when the manifest says.
        recovered: Salvaged by crash recovery.
        complete: The writer finished normally.
    """

    recording_id: str
    started_at: str | None
    duration_s: float | None
    size_bytes: int
    streams: list[str]
    frames: dict[str, int]
    dropped: int
    gaps: int
    stop_reason: str | None
    recovered: bool
    complete: bool


def summarize(manifest: dict[str, Any], mkv: pathlib.Path) -> RecordingSummary:
    """Build a list row from a manifest dict and its MKV."""
    streams: dict[str, Any] = manifest.get("streams") or {}
    try:
        size = mkv.stat().st_size
    except OSError:
        size = 0
    return RecordingSummary(
        recording_id=str(manifest.get("recording_id") or mkv.stem),
        started_at=manifest.get("started_at"),
        duration_s=manifest.get("duration_s"),
        size_bytes=size,
        streams=list(streams),
        frames={name: int(s.get("frames_written") or 0) for name, s in streams.items()},
        dropped=sum(int(s.get("frames_dropped") or 0) for s in streams.values()),
        gaps=sum(_gap_count(s) for s in streams.values()),
        stop_reason=manifest.get("stop_reason"),
        recovered=bool(manifest.get("recovered")),
        complete=bool(manifest.get("complete", True)),
    )


def _gap_count(stream: dict[str, Any]) -> int:
    report = stream.get("capture_gaps")
    if isinstance(report, dict):
        return int(report.get("gaps") or 0)
    gaps = stream.get("gaps")
    if isinstance(gaps, list):
        return len(gaps)
    if isinstance(gaps, int):
        return gaps
    return 0


def list_recordings(root: pathlib.Path) -> list[RecordingSummary]:
    """Summaries of every recording with a readable manifest and an MKV, newest first."""
    rows = []
    for path in sorted(root.glob("*.json"), reverse=True):
        mkv = path.with_suffix(".mkv")
        if not mkv.exists():
            continue
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            logger.warning("unreadable manifest %s: %s", path, exc)
            continue
        if isinstance(manifest, dict):
            rows.append(summarize(manifest, mkv))
    return rows


def select(rows: list[RecordingSummary], params: dict[str, str]) -> list[RecordingSummary]:
    """Filter and sort ``rows`` by the list's query parameters.

    Raises:
        ValueError: An unknown sort field, order or a malformed number.
    """
    query = params.get("q", "").strip()
    if query:
        rows = [r for r in rows if query in r.recording_id]
    recovered = params.get("recovered")
    if recovered is not None:
        if recovered not in ("true", "false"):
            raise ValueError(f"recovered must be true or false, got {recovered!r}")
        rows = [r for r in rows if r.recovered == (recovered == "true")]
    if "min_duration_s" in params:
        minimum = float(params["min_duration_s"])
        rows = [r for r in rows if (r.duration_s or 0.0) >= minimum]
    field = params.get("sort", "started_at")
    if field not in SORT_FIELDS:
        raise ValueError(f"unknown sort field {field!r}; use one of {list(SORT_FIELDS)}")
    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ValueError(f"order must be asc or desc, got {order!r}")

    def key(row: RecordingSummary) -> Any:
        value = getattr(row, field)
        if field == "frames":
            value = sum(value.values())
        return (value is not None, value if value is not None else 0)

    return sorted(rows, key=key, reverse=order == "desc")


def remux_rgb_fragments(mkv: pathlib.Path, stream: str = "rgb") -> Iterator[bytes]:
    """Yield a fragmented MP4 holding the ``stream`` video track of ``mkv``, packets copied.

    Raises:
        LookupError: The file has no such video track.
    """
    with av.open(str(mkv)) as source:
        video = [s for s in source.streams.video if _track_name(s) == stream]
        if not video:
            video = [s for s in source.streams.video if s.codec_context.name == "h264"]
        if not video:
            raise LookupError(f"{mkv.name} has no {stream} H.264 track")
        track = video[0]
        sink = _ChunkSink()
        with av.open(
            sink,
            "w",
            format="mp4",
            options={"movflags": "frag_keyframe+empty_moov+default_base_moof"},
        ) as out:
            out_stream = out.add_stream_from_template(track)
            for packet in source.demux(track):
                if packet.dts is None:
                    continue
                packet.stream = out_stream
                out.mux(packet)
                yield from sink.take()
        yield from sink.take()


def _track_name(stream: Any) -> str:
    metadata = stream.metadata or {}
    return str(metadata.get("title") or metadata.get("TITLE") or metadata.get("NAME") or "")


class _ChunkSink(io.RawIOBase):
    """A write-only file object collecting what the muxer wrote since the last ``take``."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> Iterator[bytes]:
        parts, self._parts = self._parts, []
        if parts:
            yield b"".join(parts)


class RecordingRoutes:
    """The recordings routes over ``root``.

    Args:
        root: The recordings directory.
        fragment_queue: MP4 fragments buffered between the remux thread and the client.
    """

    def __init__(self, root: pathlib.Path, fragment_queue: int = _FRAGMENT_QUEUE) -> None:
        self._root = root
        self.fragment_queue = fragment_queue
        self.remux_errors = 0

    def routes(self) -> list[routing.Route]:
        """The Starlette routes."""
        return [
            routing.Route("/api/recordings", self.list),
            routing.Route("/api/recordings/{rid}", self.details, methods=["GET"]),
            routing.Route("/api/recordings/{rid}", self.delete, methods=["DELETE"]),
            routing.Route("/api/recordings/{rid}/download", self.download),
            routing.Route("/api/recordings/{rid}/rgb.mp4", self.play),
        ]

    def _paths(self, rid: str) -> tuple[pathlib.Path, pathlib.Path]:
        mkv = security.safe_child(self._root, f"{rid}.mkv")
        return mkv, mkv.with_suffix(".json")

    def _resolve(self, request: requests.Request) -> tuple[pathlib.Path, pathlib.Path] | str:
        rid = request.path_params["rid"]
        try:
            mkv, manifest = self._paths(rid)
        except ValueError as exc:
            return str(exc)
        if not mkv.is_file():
            return ""
        return mkv, manifest

    async def list(self, request: requests.Request) -> responses.Response:
        """``GET /api/recordings``."""
        rows = await asyncio.to_thread(list_recordings, self._root)
        try:
            rows = select(rows, dict(request.query_params))
        except ValueError as exc:
            return responses.JSONResponse({"error": str(exc)}, 400)
        return responses.JSONResponse([dataclasses.asdict(r) for r in rows])

    async def details(self, request: requests.Request) -> responses.Response:
        """``GET /api/recordings/{id}``: the manifest."""
        resolved = self._resolve(request)
        if isinstance(resolved, str):
            return _not_found(request, resolved)
        _mkv, manifest = resolved
        try:
            text = await asyncio.to_thread(manifest.read_text)
        except OSError as exc:
            return responses.JSONResponse({"error": f"manifest unreadable: {exc}"}, 404)
        return responses.Response(text, media_type="application/json")

    async def download(self, request: requests.Request) -> responses.Response:
        """``GET /api/recordings/{id}/download``: the MKV, Range-capable."""
        resolved = self._resolve(request)
        if isinstance(resolved, str):
            return _not_found(request, resolved)
        mkv, _ = resolved
        return responses.FileResponse(mkv, media_type="video/x-matroska", filename=mkv.name)

    async def play(self, request: requests.Request) -> responses.Response:
        """``GET /api/recordings/{id}/rgb.mp4``: fragmented MP4 of the RGB track."""
        resolved = self._resolve(request)
        if isinstance(resolved, str):
            return _not_found(request, resolved)
        mkv, _ = resolved
        return responses.StreamingResponse(self._fragments(mkv), media_type="video/mp4")

    async def _fragments(self, mkv: pathlib.Path) -> AsyncIterator[bytes]:
        parts: queue.Queue[bytes | BaseException | None] = queue.Queue(self.fragment_queue)
        cancel = threading.Event()

        def offer(item: bytes | BaseException | None) -> bool:
            while not cancel.is_set():
                try:
                    parts.put(item, timeout=0.2)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                for part in remux_rgb_fragments(mkv):
                    if not offer(part):
                        return  # the client went away
                offer(None)
            except Exception as exc:
                self.remux_errors += 1
                logger.exception("remuxing %s failed", mkv)
                offer(exc)

        thread = threading.Thread(target=produce, name=f"remux-{mkv.stem}", daemon=True)
        thread.start()
        try:
            while True:
                # A bounded wait: when the client goes away the worker thread is free again
                # within 0.5 s instead of blocking on the queue for ever.
                item = await asyncio.to_thread(_next_part, parts)
                if item is _WAITING:
                    continue
                if item is None or isinstance(item, BaseException):
                    return
                assert isinstance(item, bytes)
                yield item
        finally:
            cancel.set()

    async def delete(self, request: requests.Request) -> responses.Response:
        """``DELETE /api/recordings/{id}?confirm=<id>``."""
        rid = request.path_params["rid"]
        if request.query_params.get("confirm") != rid:
            return responses.JSONResponse(
                {"error": f"deleting needs confirm={rid} (repeat the recording id)"}, 400
            )
        resolved = self._resolve(request)
        if isinstance(resolved, str):
            return _not_found(request, resolved)
        mkv, manifest = resolved
        await asyncio.to_thread(_delete_pair, mkv, manifest)
        logger.warning("recording %s deleted from the console", rid)
        return responses.JSONResponse({"deleted": rid})


_WAITING = object()


def _next_part(parts: queue.Queue[bytes | BaseException | None]) -> object:
    try:
        return parts.get(timeout=0.5)
    except queue.Empty:
        return _WAITING


def _delete_pair(mkv: pathlib.Path, manifest: pathlib.Path) -> None:
    # The MKV goes first: a manifest without its MKV is skipped by the list, never the reverse.
    mkv.unlink()
    manifest.unlink(missing_ok=True)


def _not_found(request: requests.Request, reason: str) -> responses.Response:
    rid = request.path_params.get("rid")
    if reason:
        return responses.JSONResponse({"error": reason}, 400)
    return responses.JSONResponse({"error": f"no recording {rid!r}"}, 404)
