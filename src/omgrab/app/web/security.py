"""Who may use the console: cross-site refusal, the access token, body limits, safe paths.

The rules, applied by :class:`SecurityMiddleware` to every HTTP request before any route runs:

* **Host check** (DNS rebinding): the ``Host`` header must name the address the console is
  bound to, a loopback name, or one of ``allowed_hosts``; otherwise 421.
* **Cross-site refusal**: a request whose ``Origin`` is not the console's own origin, or that a
  browser labels ``Sec-Fetch-Site: cross-site``/``same-site``, is refused (403), except a plain
  top-level navigation to the page (a link to the console still opens it).
* **State changes** (any method but GET/HEAD/OPTIONS) also need the ``X-Omgrab-Request: 1``
  header. A cross-origin page cannot add a custom header without a CORS preflight, and the
  console answers no preflight, so a ``fetch(..., {mode: "no-cors"})`` from another origin
  never reaches a handler — on loopback too.
* **Token**: when a token is set (required off loopback, see :func:`check_bind`), every request
  must carry it: ``Authorization: Bearer <token>``, the ``omgrab_token`` cookie (HttpOnly,
  SameSite=Strict; set by opening ``/?token=<token>`` once), or ``?token=`` on the request.
  The comparison is constant-time.
* **Body limit**: a body larger than ``max_body_bytes`` is refused with 413, whether announced
  by ``Content-Length`` or streamed; the body (at most that size) is read before the route
  runs, so a route never sees a partial body.

The token is generated at first start by :func:`load_or_create_token` and stored with mode
0600; the caller prints it once. :func:`safe_child` is how every route turns a request value
into a path: it accepts a bare name only and checks the result stays inside the directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import http.cookies
import ipaddress
import os
import pathlib
import re
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSRF_HEADER = "x-omgrab-request"
TOKEN_COOKIE = "omgrab_token"
DEFAULT_MAX_BODY_BYTES = 64 * 1024
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$")


class InsecureBindError(ValueError):
    """Binding the console off loopback without an access token."""


class TokenFileError(ValueError):
    """The token file is unusable (empty, or readable by others)."""


def is_loopback(host: str) -> bool:
    """True when ``host`` is a loopback address or ``localhost``."""
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve on a non-loopback ``host`` without a token.

    Raises:
        InsecureBindError: ``host`` is not loopback and ``token`` is empty.
    """
    if not is_loopback(host) and not token:
        raise InsecureBindError(
            f"refusing to serve the dashboard on {host}: off loopback anyone on the network "
            "could watch and drive the device; set a dashboard token (or let omgrab generate "
            "one with --dashboard-token-file) or bind to 127.0.0.1"
        )


def load_or_create_token(path: pathlib.Path) -> tuple[str, bool]:
    """Read the token stored at ``path``, or generate one and store it with mode 0600.

    Returns:
        ``(token, created)``; ``created`` is True on the first start (print it once then).

    Raises:
        TokenFileError: The file exists but is empty or readable by group/others.
    """
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise TokenFileError(f"token file {path} has mode {mode:o}; make it 0600")
        token = path.read_text().strip()
        if not token:
            raise TokenFileError(f"token file {path} is empty")
        return token, False
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return token, True


def safe_child(root: pathlib.Path, name: str) -> pathlib.Path:
    """Return ``root / name`` if ``name`` is a plain file name that stays inside ``root``.

    Raises:
        ValueError: ``name`` has a separator, starts with a dot, or resolves outside ``root``.
    """
    if not _NAME_RE.match(name) or ".." in name:
        raise ValueError(f"not a plain file name: {name!r}")
    base = root.resolve()
    candidate = (base / name).resolve()
    if candidate.parent != base:
        raise ValueError(f"{name!r} resolves outside {root}")
    return candidate


@dataclasses.dataclass(frozen=True)
class SecurityConfig:
    """What :class:`SecurityMiddleware` enforces.

    Attributes:
        bind_host: The address the console listens on (allowed in ``Host``).
        token: Access token; None on loopback means no token is asked for.
        allowed_hosts: Extra host names clients may use (e.g. ``rig.local``).
        max_body_bytes: Largest request body accepted.
    """

    bind_host: str = "127.0.0.1"
    token: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def host_allowed(self, host_header: str) -> bool:
        """True when the ``Host`` header (port stripped) names this console."""
        name = _strip_port(host_header).lower()
        if name in _LOOPBACK_NAMES or is_loopback(name):
            return True
        allowed = {self.bind_host.lower(), *(h.lower() for h in self.allowed_hosts)}
        if self.bind_host in ("0.0.0.0", "::"):
            # Bound to every address: any name is acceptable since the token guards access.
            return bool(self.token)
        return name in allowed


def _strip_port(host: str) -> str:
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class SecurityMiddleware:
    """ASGI middleware applying :class:`SecurityConfig` (see the module docstring)."""

    def __init__(self, app: ASGIApp, config: SecurityConfig) -> None:
        self._app = app
        self._config = config
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request, then pass it on with a size-limited body."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        problem, status = self._check(scope, headers)
        if problem is not None:
            self.refused += 1
            await _plain(send, status, problem)
            return
        length = headers.get("content-length")
        limit = self._config.max_body_bytes
        if length is not None and (not length.isdigit() or int(length) > limit):
            self.refused += 1
            await _plain(send, 413, f"request body over {limit} bytes")
            return
        try:
            replay = await _read_body(receive, limit)
        except BodyTooLargeError as exc:
            self.refused += 1
            await _plain(send, 413, str(exc))
            return
        await self._app(scope, replay, self._with_cookie(scope, send))

    def _check(self, scope: Scope, headers: dict[str, str]) -> tuple[str | None, int]:
        config = self._config
        host = headers.get("host", "")
        if not config.host_allowed(host):
            return f"unknown host {host!r}", 421
        method = scope["method"]
        origin = headers.get("origin")
        if origin is not None and origin != "null":
            parsed = urllib.parse.urlsplit(origin)
            if parsed.netloc.lower() != host.lower():
                return f"cross-origin request from {origin} refused", 403
        elif origin == "null":
            return "request from an opaque origin refused", 403
        site = headers.get("sec-fetch-site")
        navigation = (
            method == "GET" and scope["path"] == "/" and headers.get("sec-fetch-mode") == "navigate"
        )
        if site in ("cross-site", "same-site") and not navigation:
            return f"{site} request refused", 403
        if method not in SAFE_METHODS and headers.get(CSRF_HEADER) != "1":
            return f"state-changing request without the {CSRF_HEADER} header refused", 403
        if config.token and not self._has_token(scope, headers):
            return "access token required", 401
        return None, 200

    def _has_token(self, scope: Scope, headers: dict[str, str]) -> bool:
        token = self._config.token
        assert token is not None
        candidates: list[str] = []
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            candidates.append(auth[7:].strip())
        cookie = http.cookies.SimpleCookie()
        with contextlib.suppress(http.cookies.CookieError):
            cookie.load(headers.get("cookie", ""))
        if TOKEN_COOKIE in cookie:
            candidates.append(cookie[TOKEN_COOKIE].value)
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
        candidates.extend(query.get("token", []))
        return any(hmac.compare_digest(c.encode(), token.encode()) for c in candidates)

    def _with_cookie(self, scope: Scope, send: Send) -> Send:
        """Set the token cookie when the token came in the query string of the page."""
        token = self._config.token
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if not token or scope["path"] != "/" or "token" not in query:
            return send

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookie = f"{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
            await send(message)

        return send_with_cookie


class BodyTooLargeError(Exception):
    """A streamed request body went over the limit."""


async def _read_body(receive: Receive, limit: int) -> Receive:
    """Read the whole body (at most ``limit`` bytes) and return a receive that replays it.

    Raises:
        BodyTooLargeError: More than ``limit`` bytes arrived.
    """
    parts: list[bytes] = []
    seen = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            first: Message = message
            break
        body = message.get("body", b"")
        seen += len(body)
        if seen > limit:
            raise BodyTooLargeError(f"request body over {limit} bytes")
        parts.append(body)
        if not message.get("more_body", False):
            first = {"type": "http.request", "body": b"".join(parts), "more_body": False}
            break
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return first
        return await receive()

    return replay


async def _plain(send: Send, status: int, text: str) -> None:
    body = (text + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
