"""Live view: RGB and depth (colour-mapped) as MJPEG streams, encoded off the event loop.

Data path: while at least one viewer watches, a ``console-live`` thread takes the device's
current RGB frame (``device.preview()``, which never consumes a frame from the recording) and
the depth camera's latest frame every ``1 / fps`` seconds, encodes each as JPEG (OpenCV) and
publishes the bytes by replacing one reference per stream. The MJPEG handlers on the event loop
only wait for a newer sequence number and write the published bytes: no encoding, no device
call and no lock on the loop.

Device lease: in the IDLE and CAMERA_PREVIEW states nothing else holds the device open, so the
live thread opens it while someone watches (``open()`` is idempotent, so a recording that starts
meanwhile shares it) and closes it ``linger_s`` after the last viewer left, unless the
recorder's phase says a recording owns it (starting, recording or stopping); the recording
closes it when it stops and the live view opens it again if someone still watches. Known
window: a start claimed between that check and the close finds the device closed (refused as
"not ready", or, if the live thread was descheduled for the whole start, a recording error
reported by the recorder's health check).

Bounds: one JPEG per stream; viewers wait on an ``asyncio.Event`` per frame.

Lifecycle: :meth:`LiveView.start` starts the thread
(:class:`~omgrab.background_thread.BackgroundLoop`); :meth:`LiveView.stop` joins it (at most
10 s, outcome logged) and releases the device lease.

Errors: encoding or device errors are logged and counted in ``errors`` (and under
``console-live`` in :mod:`~omgrab.loop_health`); the thread keeps running; a stream with no
frame yet answers 503 to single-image requests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from starlette import requests, responses, routing

from omgrab import background_thread, recorder_events

if TYPE_CHECKING:
    from omgrab.app import device_app

logger = logging.getLogger(__name__)

BOUNDARY = "omgrabframe"
STREAMS = ("rgb", "depth")
_LEASE_STATES = ("idle", "camera_preview")


def encode_rgb(frame: np.ndarray, quality: int = 75) -> bytes:
    """JPEG-encode an RGB (or grey) frame."""
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR) if frame.ndim == 3 else frame
    ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return bytes(jpeg.tobytes())


def colorize_depth(depth: np.ndarray) -> np.ndarray:
    """Map a 16-bit depth frame (mm, 0 = unknown) to a BGR colour image (TURBO)."""
    valid = depth > 0
    if not valid.any():
        return np.zeros((*depth.shape[:2], 3), np.uint8)
    lo, hi = np.percentile(depth[valid], (2, 98))
    scale = 255.0 / max(float(hi - lo), 1.0)
    norm = np.clip((depth.astype(np.float32) - lo) * scale, 0, 255).astype(np.uint8)
    colored = cv2.applyColorMap(norm, cv2.COLORMAP_TURBO)
    colored[~valid] = 0
    return np.asarray(colored)


class LiveView:
    """The live thread and its published JPEGs.

    Args:
        app: The device application.
        fps: Frames per second published while watched.
        linger_s: Keep the device leased this long after the last viewer left.
        state: Callable returning the workflow state value (from the status snapshot).
    """

    def __init__(
        self, app: device_app.DeviceApp, fps: float = 10.0, linger_s: float = 5.0, state: Any = None
    ) -> None:
        self._app = app
        self._period = 1.0 / fps
        self._linger_s = linger_s
        self._state = state if state is not None else (lambda: app.state_machine.state.value)
        self._frames: dict[str, tuple[int, bytes]] = {}
        self._viewers = 0
        self._last_viewer = 0.0
        self._thread = background_thread.BackgroundLoop(
            "console-live", self._step, retry_s=self._period
        )
        self._leased = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._new_frame: asyncio.Event | None = None
        self.frames_published = 0

    @property
    def errors(self) -> int:
        """Frames that failed (device or encoding errors) so far."""
        return self._thread.errors

    # -- thread ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the live thread (it idles until someone watches)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and release the device lease."""
        self._thread.stop(10.0)
        self._release(force=True)

    def _step(self) -> float | None:
        """Publish one frame while watched; else end an expired lease and idle until woken."""
        if self._viewers == 0:
            if self._leased and time.monotonic() - self._last_viewer > self._linger_s:
                self._release(force=False)
            return 0.5 if self._leased else None
        started = time.monotonic()
        self._publish_once()
        return max(0.0, self._period - (time.monotonic() - started))

    def _publish_once(self) -> None:
        # Duck-typed: a device that can be opened and closed (every omgrab device is a
        # context manager) is leased; one without ``is_open`` is never opened here.
        device: Any = self._app.device
        latest = device.preview()
        if (
            latest is None
            and self._state() in _LEASE_STATES
            and self._app.recorder.phase is recorder_events.RecorderPhase.IDLE
            and getattr(device, "is_open", True) is False
        ):
            device.open()
            self._leased = True
            device.wait_until_ready(1.0)
            latest = device.preview()
        if latest is not None:
            self._put("rgb", encode_rgb(latest[0]))
        depth = _depth_frame(device)
        if depth is not None:
            self._put("depth", encode_rgb(colorize_depth(depth), quality=70))
        self.frames_published += 1
        if self._loop is not None and self._new_frame is not None:
            self._loop.call_soon_threadsafe(self._notify)

    def _notify(self) -> None:
        assert self._new_frame is not None
        self._new_frame.set()
        self._new_frame = asyncio.Event()

    def _put(self, stream: str, jpeg: bytes) -> None:
        seq = self._frames.get(stream, (0, b""))[0] + 1
        self._frames[stream] = (seq, jpeg)

    def _release(self, force: bool) -> None:
        if not self._leased:
            return
        if not force and self._app.recorder.phase is not recorder_events.RecorderPhase.IDLE:
            # A recording took the device over; it closes the device when it stops.
            self._leased = False
            return
        self._leased = False
        device: Any = self._app.device
        device.close()

    # -- event loop side ---------------------------------------------------------------------

    def latest(self, stream: str) -> tuple[int, bytes] | None:
        """The newest ``(seq, jpeg)`` of ``stream``."""
        return self._frames.get(stream)

    async def frames(self, stream: str) -> AsyncGenerator[bytes, None]:
        """Yield multipart MJPEG parts of ``stream`` as they are published."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._new_frame = asyncio.Event()
        self._viewers += 1
        self._thread.wake()
        last = 0
        try:
            while not self._thread.stopping:
                assert self._new_frame is not None
                event = self._new_frame
                current = self._frames.get(stream)
                if current is not None and current[0] != last:
                    last = current[0]
                    header = (
                        f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                        f"Content-Length: {len(current[1])}\r\n\r\n"
                    ).encode()
                    yield header + current[1] + b"\r\n"
                try:
                    await asyncio.wait_for(event.wait(), timeout=2.0)
                except TimeoutError:
                    continue
        finally:
            self._viewers -= 1
            self._last_viewer = time.monotonic()
            self._thread.wake()

    def routes(self) -> list[routing.Route]:
        """``/api/live/{stream}.mjpg`` and ``/api/preview.jpg`` (one frame)."""
        return [
            routing.Route("/api/live/{stream}.mjpg", self.mjpeg),
            routing.Route("/api/preview.jpg", self.single),
        ]

    async def mjpeg(self, request: requests.Request) -> responses.Response:
        """``GET /api/live/{rgb|depth}.mjpg``."""
        stream = request.path_params["stream"]
        if stream not in STREAMS:
            return responses.PlainTextResponse(f"unknown stream {stream!r}; use {STREAMS}", 404)
        return responses.StreamingResponse(
            self.frames(stream),
            media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
            headers={"Cache-Control": "no-store"},
        )

    async def single(self, _request: requests.Request) -> responses.Response:
        """``GET /api/preview.jpg``: the newest RGB JPEG (waits up to 2 s for a first one)."""
        current = self._frames.get("rgb")
        if current is None:
            frames = self.frames("rgb")
            try:
                await asyncio.wait_for(anext(frames), timeout=2.0)
            except (TimeoutError, StopAsyncIteration):
                pass
            finally:
                await frames.aclose()
            current = self._frames.get("rgb")
        if current is None:
            return responses.PlainTextResponse("no preview: device closed or stalled", 404)
        return responses.Response(
            current[1], media_type="image/jpeg", headers={"Cache-Control": "no-store"}
        )


def _depth_frame(device: Any) -> np.ndarray | None:
    camera = device.cameras.get("depth") if hasattr(device, "cameras") else None
    if camera is None:
        return None
    latest = getattr(camera, "latest", None)
    if latest is not None:
        return np.asarray(latest[0])
    inner = getattr(camera, "inner", None)
    if inner is not None and getattr(inner, "is_open", False) and hasattr(inner, "render"):
        return np.asarray(inner.render(inner.frames_generated))
    return None
