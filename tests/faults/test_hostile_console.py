"""Hostile requests against the real console of a running device app, over raw loopback TCP.

Fuzzed request lines (traversal, encoded ``..``, NUL, backslashes, very long paths), headers
(Host, Origin, Range garbage, huge values) and bodies (oversized, chunked, invalid JSON) are
sent byte for byte on a socket, so nothing is normalized by a client library. Each answer must
not be a 5xx, must not hold a byte of the secret files placed outside the recordings directory
(next to it, in the data directory, and behind a symlink inside it), and the recordings
directory and the recorder state are unchanged afterwards.
"""

from __future__ import annotations

import hashlib
import pathlib
import socket
import urllib.parse

import httpx
import hypothesis
import pytest
from hypothesis import strategies as st

from omgrab.app import device_app
from omgrab.app.web import security
from tests import test_app
from tests.faults import conftest

pytestmark = pytest.mark.faults

EXAMPLES = conftest.iterations(150, 3000)
SECRET = b"OMGRAB-SECRET-OUTSIDE-THE-RECORDINGS-DIRECTORY"
RID = "rec-20261202-000000"
CSRF = {security.CSRF_HEADER: "1"}


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("hostile-console")
    (tmp / "secret.txt").write_bytes(SECRET)
    app = device_app.DeviceApp(test_app.small_config(tmp, dashboard_port=0))
    app.start()
    root: pathlib.Path = app.config.recordings_dir
    root.mkdir(parents=True, exist_ok=True)
    (app.config.data_dir / "secret.json").write_bytes(SECRET)
    (root / f"{RID}.mkv").write_bytes(b"\x1a\x45\xdf\xa3" + b"\0" * 4000)
    (root / f"{RID}.json").write_text(f'{{"recording_id": "{RID}"}}')
    (root / "leak.mkv").symlink_to(tmp / "secret.txt")
    (root / "leak.json").symlink_to(tmp / "secret.txt")
    url = app.dashboard_url
    assert url is not None
    try:
        yield app, urllib.parse.urlsplit(url)
    finally:
        app.stop()


def _snapshot(root: pathlib.Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(root.iterdir())
    }


def _send(address: urllib.parse.SplitResult, raw: bytes) -> tuple[bytes, bool]:
    """Send raw bytes; return the server's answer (read until it closes) and if all was sent."""
    assert address.hostname is not None and address.port is not None
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sent = True
        try:
            sock.sendall(raw)  # "Connection: close": the server closes after its answer
        except OSError:
            sent = False  # the server refused a huge request early; read what it said
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
    return b"".join(chunks), sent


def _check_answer(answer: bytes, sent: bool) -> None:
    """Not a 5xx, not a byte of the secret; silence only when the server cut a huge send."""
    status = _status(answer)
    assert status is not None or not sent, answer[:500]
    assert status is None or status < 500, answer[:500]
    assert SECRET not in answer


def _status(answer: bytes) -> int | None:
    if not answer.startswith(b"HTTP/1."):
        return None
    return int(answer.split(b" ", 2)[1])


TRAVERSALS = [
    "..",
    "%2e%2e",
    "..%2f..%2fsecret.txt",
    "..%252f..%252fsecret.txt",
    "%2e%2e%2fsecret.json",
    "..%5c..%5csecret.txt",
    "....//....//secret.txt",
    "%c0%ae%c0%ae/secret.txt",
    "leak",
    "../../secret",
    "/../../secret",
    "%00",
    "a%00b",
    RID + "%00.txt",
    "x" * 70000,
    "%" * 50,
    "%ff%fe",
]
PREFIXES = [
    "/api/recordings/{}/download",
    "/api/recordings/{}/rgb.mp4",
    "/api/recordings/{}",
    "/api/live/{}.mjpg",
    "/api/button/{}",
    "/api/recording/{}",
    "/static/{}",
    "/{}",
]
METHODS = ["GET", "HEAD", "POST", "DELETE", "PUT", "OPTIONS", "TRACE", "G\x00T", "X" * 300]
header_values = st.one_of(
    st.sampled_from(
        [
            "bytes=-",
            "bytes=99999999999999999999-",
            "bytes=5-1",
            "bytes=0-0,0-0,0-0," * 200,
            "items=0-10",
            "bytes=-0",
            "bytes=abc",
            "http://evil.test",
            "null",
            "attacker.example",
            "127.0.0.1:1",
            "a" * 20000,
        ]
    ),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
)
headers = st.dictionaries(
    st.sampled_from(["Host", "Origin", "Range", "Content-Type", "Sec-Fetch-Site", "Cookie", "X-Y"]),
    header_values,
    max_size=4,
)
bodies = st.one_of(
    st.just(b""),
    st.binary(max_size=200),
    st.sampled_from([b"{", b'{"ssid": ', b"[" * 5000, b"\xff\xfe\x00", b"x" * (2 * 1024 * 1024)]),
)


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from(METHODS))
    target = draw(st.sampled_from(PREFIXES)).format(draw(st.sampled_from(TRAVERSALS)))
    if draw(st.booleans()):
        target += "?confirm=" + draw(st.sampled_from(TRAVERSALS))
    head = draw(headers)
    body = draw(bodies)
    lines = [f"{method} {target} HTTP/1.1".encode("latin-1")]
    if "Host" not in head:
        head["Host"] = "127.0.0.1"
    if draw(st.booleans()):
        head.update(CSRF)
    lines += [f"{k}: {v}".encode("latin-1") for k, v in head.items()]
    chunked = draw(st.booleans())
    if chunked:
        lines.append(b"Transfer-Encoding: chunked")
        payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
        if draw(st.booleans()):
            payload = b"zz\r\n" + body  # a broken chunk size
    else:
        lines.append(b"Content-Length: %d" % len(body))
        payload = body
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + payload


def _assert_unharmed(app: device_app.DeviceApp, before: dict[str, str]) -> None:
    assert _snapshot(app.config.recordings_dir) == before
    with httpx.Client(base_url=app.dashboard_url or "", timeout=30) as client:
        status = client.get("/api/status")
        assert status.status_code == 200
        assert status.json()["recorder"]["current"] is None  # no request started a recording


@hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)
@hypothesis.given(raw=requests())
def test_fuzzed_requests_never_5xx_never_leak_and_change_nothing(console, raw: bytes) -> None:
    app, address = console
    before = _snapshot(app.config.recordings_dir)
    _check_answer(*_send(address, raw))
    _assert_unharmed(app, before)


def _request(line: str, *head: str, body: bytes = b"") -> bytes:
    lines = [line, "Host: 127.0.0.1", *head, f"Content-Length: {len(body)}", "Connection: close"]
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + body


NAMED = {
    "multi-range": _request(
        f"GET /api/recordings/{RID}/download HTTP/1.1", "Range: bytes=0-0,0-0,0-0"
    ),
    "symlink-download": _request("GET /api/recordings/leak/download HTTP/1.1"),
    "symlink-details": _request("GET /api/recordings/leak HTTP/1.1"),
    "symlink-play": _request("GET /api/recordings/leak/rgb.mp4 HTTP/1.1"),
    "dotdot": _request("GET /../secret.txt HTTP/1.1"),
    "huge-header": _request("GET /api/status HTTP/1.1", "X-Big: " + "a" * 200_000),
    "wifi-bad-json": _request(
        "POST /api/wifi/connect HTTP/1.1",
        f"{security.CSRF_HEADER}: 1",
        "Content-Type: application/json",
        body=b"{not json",
    ),
    "wifi-deep-json": _request(
        "POST /api/wifi/connect HTTP/1.1", f"{security.CSRF_HEADER}: 1", body=b"[" * 100_000
    ),
    "oversized-start": _request("POST /api/recording/start HTTP/1.1", body=b"x" * 4_000_000),
    "start-without-csrf": _request("POST /api/recording/start HTTP/1.1", body=b"{}"),
    "start-cross-origin": _request(
        "POST /api/recording/start HTTP/1.1",
        f"{security.CSRF_HEADER}: 1",
        "Origin: http://evil.test",
    ),
    "button-rebinding-host": _request(
        "POST /api/button/short HTTP/1.1", f"{security.CSRF_HEADER}: 1"
    ).replace(b"Host: 127.0.0.1", b"Host: attacker.example"),
    "delete-symlink": _request(
        "DELETE /api/recordings/leak?confirm=leak HTTP/1.1", f"{security.CSRF_HEADER}: 1"
    ),
    "binary": b"\x00\x01\x02 garbage \xff\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_hostile_requests(console, name: str) -> None:
    app, address = console
    before = _snapshot(app.config.recordings_dir)
    _check_answer(*_send(address, NAMED[name]))
    _assert_unharmed(app, before)


def test_control_the_harness_sees_a_served_file(console) -> None:
    """A legitimate download through the same raw socket returns the file's bytes."""
    app, address = console
    answer, _ = _send(address, _request(f"GET /api/recordings/{RID}/download HTTP/1.1"))
    assert _status(answer) == 200
    assert answer.endswith((app.config.recordings_dir / f"{RID}.mkv").read_bytes())
