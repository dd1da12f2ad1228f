"""The web dashboard: device status, live detections, a preview and a remote button.

Routes:

* ``GET /`` — the page (``static/index.html``), plain HTML + JS, no build step;
* ``GET /api/status`` — the device status (``DeviceStatusManager.get_status_dict()``) plus the
  recorder, storage and output counters, as JSON;
* ``GET /api/detections`` — operator reports as they happen (``application/x-ndjson``, one
  YOLO-schema report per line);
* ``GET /api/preview.jpg`` — the device's latest RGB frame as JPEG (404 when there is none);
* ``POST /api/button/{gesture}`` — press the button remotely: ``short``, ``double`` or ``long``;
* ``GET /api/recordings`` — the manifests of merged recordings, newest first.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.resources
import json
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import cv2
import uvicorn
from starlette import applications, requests, responses, routing

if TYPE_CHECKING:
    from omgrab.app import device_app

GESTURES = ("short", "double", "long")


def create_app(app: device_app.DeviceApp) -> applications.Starlette:
    """Build the Starlette application serving ``app``'s dashboard."""

    async def index(_request: requests.Request) -> responses.Response:
        page = importlib.resources.files("omgrab.app").joinpath("static/index.html").read_text()
        return responses.HTMLResponse(page)

    async def status(_request: requests.Request) -> responses.Response:
        return responses.JSONResponse(status_document(app))

    async def detections(_request: requests.Request) -> responses.Response:
        try:
            subscription = app.ndjson.subscribe()
        except RuntimeError as exc:
            return responses.PlainTextResponse(str(exc), status_code=503)

        async def lines() -> AsyncIterator[bytes]:
            try:
                yield b'{"hello":"omgrab detections"}\n'
                while True:
                    try:
                        line = await asyncio.wait_for(subscription.get(), timeout=15.0)
                    except TimeoutError:
                        yield b"{}\n"  # keep-alive so proxies and clients see a live stream
                        continue
                    if line is None:
                        return
                    yield line
            finally:
                app.ndjson.unsubscribe(subscription)

        return responses.StreamingResponse(lines(), media_type=app.ndjson.media_type)

    async def preview(_request: requests.Request) -> responses.Response:
        latest = app.device.preview()
        if latest is None:
            return responses.PlainTextResponse("no preview: device closed or stalled", 404)
        frame, _timestamp = latest
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR) if frame.ndim == 3 else frame
        ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 80])
        if not ok:
            return responses.PlainTextResponse("JPEG encoding failed", 500)
        return responses.Response(jpeg.tobytes(), media_type="image/jpeg")

    async def button(request: requests.Request) -> responses.Response:
        gesture = request.path_params["gesture"]
        if gesture not in GESTURES:
            return responses.JSONResponse(
                {"error": f"unknown gesture {gesture!r}; use one of {list(GESTURES)}"}, 400
            )
        await asyncio.to_thread(press, app, gesture)
        return responses.JSONResponse({"gesture": gesture, "state": app.state_machine.state.value})

    async def recordings(_request: requests.Request) -> responses.Response:
        manifests = []
        for path in sorted(app.config.recordings_dir.glob("*.json"), reverse=True):
            with contextlib.suppress(OSError, ValueError):
                manifests.append(json.loads(path.read_text()))
        return responses.JSONResponse(manifests)

    return applications.Starlette(
        routes=[
            routing.Route("/", index),
            routing.Route("/api/status", status),
            routing.Route("/api/detections", detections),
            routing.Route("/api/preview.jpg", preview),
            routing.Route("/api/button/{gesture}", button, methods=["POST"]),
            routing.Route("/api/recordings", recordings),
        ]
    )


def press(app: device_app.DeviceApp, gesture: str) -> None:
    """Act on a remote button gesture exactly as the physical button's loop would."""
    machine = app.state_machine
    if gesture == "short":
        machine.handle_short_press()
    elif gesture == "double":
        machine.handle_double_press()
    elif gesture == "long" and machine.handle_long_press():
        # No WiFi provisioning on a dashboard press: report the setup as not completed.
        machine.finish_wifi_setup(False)


def status_document(app: device_app.DeviceApp) -> dict[str, Any]:
    """Everything the page shows, JSON-ready."""
    storage = app.output.get_storage_status()
    return {
        "device": app.status.get_status_dict(),
        "state": app.state_machine.state.value,
        "recorder": {
            "is_recording": app.recorder.is_recording,
            "recording_id": app.recorder.active_recording_id,
            "last_error": app.recorder.last_error,
            "last_recording": str(app.recorder.last_recording_path or "") or None,
        },
        "output": {
            "session_dir": app.output.session_dir,
            "storage": dataclasses.asdict(storage),
            "error_count": app.output.error_count,
        },
        "perception": dataclasses.asdict(app.scan.stats),
    }


class DashboardServer:
    """Runs the dashboard with uvicorn on a background thread.

    Args:
        asgi_app: The Starlette app.
        host: Address to listen on.
        port: Port; 0 picks a free one (see ``url`` after ``start``).
    """

    def __init__(self, asgi_app: applications.Starlette, host: str, port: int) -> None:
        self._server = uvicorn.Server(
            uvicorn.Config(asgi_app, host=host, port=port, log_level="warning", lifespan="off")
        )
        self._thread = threading.Thread(target=self._server.run, name="dashboard", daemon=True)
        self._host = host
        self.port = port

    @property
    def url(self) -> str:
        """Base URL of the running dashboard."""
        return f"http://{self._host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Start serving; returns once the socket listens."""
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout / 0.02)):
            if self._server.started:
                break
            if not self._thread.is_alive():
                raise RuntimeError("dashboard server failed to start (see log)")
            deadline.wait(0.02)
        else:
            raise RuntimeError(f"dashboard server did not start within {timeout} s")
        sockets = [s for server in self._server.servers for s in server.sockets]
        if sockets:
            self.port = sockets[0].getsockname()[1]

    def stop(self) -> None:
        """Stop serving and join the thread."""
        self._server.should_exit = True
        self._thread.join(10)
