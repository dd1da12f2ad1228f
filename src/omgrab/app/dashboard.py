"""The operator's console: status with live updates, live view, recordings, Wi-Fi, metrics.

Routes (the page is ``static/index.html``, plain HTML + JS, no build step):

* ``GET /`` — the page;
* ``GET /api/status`` — the newest status document (see :mod:`omgrab.app.web.snapshot`);
* ``GET /api/events`` — the same document as server-sent events, one per refresh;
* ``GET /api/detections`` — operator reports as they happen (NDJSON, one report per line);
* ``GET /api/live/{rgb|depth}.mjpg``, ``GET /api/preview.jpg`` — live view
  (:mod:`omgrab.app.web.live`);
* ``POST /api/button/{gesture}`` — press the button remotely: ``short``, ``double``, ``long``;
* ``POST /api/recording/start``, ``POST /api/recording/stop`` — explicit start/stop;
* ``/api/recordings...`` — the recordings browser (:mod:`omgrab.app.web.recordings`);
* ``/api/wifi/...`` — the Wi-Fi setup page's API (:mod:`omgrab.app.web.wifi`);
* ``GET /metrics`` — Prometheus text format (:mod:`omgrab.app.web.metrics`).

Every request first passes :class:`omgrab.app.web.security.SecurityMiddleware` (cross-site
refusal, token, body limit). The event loop never waits for the recorder: handlers read the
status snapshot (built on its own thread), JPEGs are encoded on the live thread, file reads and
button presses run in worker threads.

Lifecycle: :class:`Console` owns the snapshot and live threads (``start``/``stop``);
:class:`DashboardServer` runs uvicorn on a background thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.resources
import logging
import pathlib
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette import applications, requests, responses, routing

from omgrab.app.web import live, metrics, recordings, security, snapshot, wifi

if TYPE_CHECKING:
    from omgrab.app import device_app

logger = logging.getLogger(__name__)

GESTURES = ("short", "double", "long")


@dataclasses.dataclass(frozen=True)
class DashboardOptions:
    """How the console is served and protected.

    Attributes:
        host: Address to listen on.
        port: Port; 0 picks a free one.
        token: Access token; required off loopback (see ``token_file``).
        token_file: Where a generated token is kept (mode 0600) when ``token`` is None and
            ``host`` is not loopback; generated at first start and printed once.
        allowed_hosts: Extra host names clients may use in ``Host``.
        max_body_bytes: Largest request body accepted.
        live_fps: Live view frame rate.
        snapshot_period_s: Status refresh period.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None
    token_file: pathlib.Path | None = None
    allowed_hosts: tuple[str, ...] = ()
    max_body_bytes: int = security.DEFAULT_MAX_BODY_BYTES
    live_fps: float = 10.0
    snapshot_period_s: float = 0.5

    def resolve_token(self) -> str | None:
        """The token to enforce: the given one, or one loaded/generated from ``token_file``.

        Raises:
            security.InsecureBindError: Off loopback without a token or a token file.
            security.TokenFileError: The token file is unusable.
        """
        token = self.token
        if token is None and self.token_file is not None:
            token, created = security.load_or_create_token(self.token_file)
            if created:
                # Printed once, at first start, for the operator to copy.
                print(
                    f"omgrab dashboard token (stored in {self.token_file}): {token}\n"
                    f"open http://{self.host}:{self.port}/?token={token} once to log in",
                    flush=True,
                )
        security.check_bind(self.host, token)
        return token


class Console:
    """Everything behind the dashboard's routes for one device app.

    Args:
        app: The device application.
        options: Serving options.
    """

    def __init__(self, app: device_app.DeviceApp, options: DashboardOptions | None = None):
        self.app = app
        self.options = options if options is not None else DashboardOptions()
        self.token = self.options.resolve_token()
        self.snapshot = snapshot.StatusSnapshot(
            app, self.options.snapshot_period_s, wifi=lambda: wifi.wifi_state(app)
        )
        self.live = live.LiveView(
            app, fps=self.options.live_fps, state=lambda: self.snapshot.latest.document["state"]
        )
        self.recordings = recordings.RecordingRoutes(app.config.recordings_dir)
        self.wifi = wifi.WifiRoutes(app)
        self.security_config = security.SecurityConfig(
            bind_host=self.options.host,
            token=self.token,
            allowed_hosts=self.options.allowed_hosts,
            max_body_bytes=self.options.max_body_bytes,
        )
        self._page = importlib.resources.files("omgrab.app").joinpath("static/index.html")
        self.middleware: security.SecurityMiddleware | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed = asyncio.Event()
        self.snapshot.add_listener(self._published)

    def start(self) -> None:
        """Start the snapshot and live threads."""
        self.snapshot.start()
        self.live.start()

    def stop(self) -> None:
        """Stop the threads."""
        self.live.stop()
        self.snapshot.stop()

    def counters(self) -> dict[str, float]:
        """Console counters for ``/metrics``."""
        return {
            "refused_requests": self.middleware.refused if self.middleware is not None else 0,
            "live_errors": self.live.errors,
            "remux_errors": self.recordings.remux_errors,
            "snapshot_errors": self.snapshot.errors,
        }

    def asgi(self) -> security.SecurityMiddleware:
        """The ASGI application: the Starlette routes behind the security middleware."""
        page = self._page.read_bytes()
        app = self.app

        async def index(_request: requests.Request) -> responses.Response:
            return responses.Response(
                page, media_type="text/html", headers={"Cache-Control": "no-store"}
            )

        async def status(_request: requests.Request) -> responses.Response:
            return responses.Response(self.snapshot.json_bytes(), media_type="application/json")

        async def events(request: requests.Request) -> responses.Response:
            return responses.StreamingResponse(
                self._events(request),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
            )

        async def button(request: requests.Request) -> responses.Response:
            gesture = request.path_params["gesture"]
            if gesture not in GESTURES:
                return responses.JSONResponse(
                    {"error": f"unknown gesture {gesture!r}; use one of {list(GESTURES)}"}, 400
                )
            state = await asyncio.to_thread(press, app, gesture)
            self.snapshot.refresh_soon()
            return responses.JSONResponse({"gesture": gesture, "state": state})

        async def recording(request: requests.Request) -> responses.Response:
            action = request.path_params["action"]
            if action not in ("start", "stop"):
                return responses.JSONResponse({"error": "use start or stop"}, 404)
            ok, state = await asyncio.to_thread(command, app, action)
            self.snapshot.refresh_soon()
            body: dict[str, Any] = {"action": action, "ok": ok, "state": state}
            if not ok:
                body["error"] = app.recorder.last_error or f"cannot {action} in state {state}"
            return responses.JSONResponse(body, 200 if ok else 409)

        starlette_app = applications.Starlette(
            routes=[
                routing.Route("/", index),
                routing.Route("/api/status", status),
                routing.Route("/api/events", events),
                routing.Route("/api/detections", self._detections),
                routing.Route("/api/button/{gesture}", button, methods=["POST"]),
                routing.Route("/api/recording/{action}", recording, methods=["POST"]),
                *self.live.routes(),
                *self.recordings.routes(),
                *self.wifi.routes(),
                *metrics.routes(metrics.ConsoleCollector(self.snapshot.document, self.counters)),
            ]
        )
        self.middleware = security.SecurityMiddleware(starlette_app, self.security_config)
        return self.middleware

    def _published(self) -> None:
        """Snapshot thread: wake every SSE stream on the loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake_streams)

    def _wake_streams(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _events(self, request: requests.Request) -> AsyncIterator[bytes]:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._changed = asyncio.Event()
        last = -1
        while True:
            changed = self._changed
            current = self.snapshot.latest
            if current.seq != last:
                last = current.seq
                yield b"data: " + current.json + b"\n\n"
            try:
                await asyncio.wait_for(changed.wait(), timeout=15.0)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield b": keep-alive\n\n"

    async def _detections(self, _request: requests.Request) -> responses.Response:
        hub = self.app.ndjson
        try:
            subscription = hub.subscribe()
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
                hub.unsubscribe(subscription)

        return responses.StreamingResponse(lines(), media_type=hub.media_type)


def create_app(
    app: device_app.DeviceApp, options: DashboardOptions | None = None
) -> security.SecurityMiddleware:
    """Build a started :class:`Console` for ``app`` and return its ASGI application.

    The console's threads stop with the process (daemon threads); use :class:`Console`
    directly to control them.
    """
    console = Console(app, options)
    console.start()
    return console.asgi()


def press(app: device_app.DeviceApp, gesture: str) -> str:
    """Act on a remote button gesture exactly as the physical button's loop would.

    Returns:
        The workflow state afterwards.
    """
    machine = app.state_machine
    if gesture == "short":
        machine.handle_short_press()
    elif gesture == "double":
        machine.handle_double_press()
    elif gesture == "long" and machine.handle_long_press():
        manager = app.wifi_manager
        started = False
        if manager is not None:
            started = manager.start_wifi_connect(
                force_mode=True, callback=machine.finish_wifi_setup
            )
        if not started:
            machine.finish_wifi_setup(False)
    return machine.state.value


def command(app: device_app.DeviceApp, action: str) -> tuple[bool, str]:
    """Start or stop recording from the console or MQTT; ``(done, state afterwards)``."""
    machine = app.state_machine
    state = machine.state.value
    if action == "start":
        if state == "recording":
            return True, state
        if state != "idle":
            return False, state
    elif action == "stop" and state != "recording":
        return True, state
    machine.handle_short_press()
    after = machine.state.value
    return after == ("recording" if action == "start" else "idle"), after


class DashboardServer:
    """Runs the dashboard with uvicorn on a background thread.

    Args:
        asgi_app: The ASGI app (``Console.asgi()``).
        host: Address to listen on.
        port: Port; 0 picks a free one (see ``url`` after ``start``).
    """

    def __init__(self, asgi_app: Any, host: str, port: int) -> None:
        self._server = uvicorn.Server(
            uvicorn.Config(
                asgi_app,
                host=host,
                port=port,
                log_level="warning",
                lifespan="off",
                backlog=2048,
                timeout_graceful_shutdown=2,
            )
        )
        self._thread = threading.Thread(target=self._server.run, name="dashboard", daemon=True)
        self._host = host
        self.port = port

    @property
    def url(self) -> str:
        """Base URL of the running dashboard."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

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
