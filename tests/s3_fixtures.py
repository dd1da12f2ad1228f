"""A real S3 endpoint on loopback (moto's standalone server) and a TCP proxy the tests control.

Registered in tests/conftest.py (fixture ``s3_server``: one server per test module).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore import config as botocore_config

ACCESS_KEY = "AKIAOMGRABTEST000001"
SECRET_KEY = "omgrab-test-secret-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoServer:
    """moto's S3 server in a child process on ``127.0.0.1:<port>`` (restartable, same port)."""

    def __init__(self, port: int | None = None, env: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        env = {**os.environ, **self.env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.proc.returncode}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.5),
            ):
                return
            time.sleep(0.1)
        raise RuntimeError("moto server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(120)
            self.proc = None

    def client(self, url: str | None = None, **kw: Any) -> Any:
        return make_client(url or self.url, **kw)


def make_client(url: str, key: str = ACCESS_KEY, secret: str = SECRET_KEY) -> Any:
    return boto3.session.Session(
        aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1"
    ).client(
        "s3",
        endpoint_url=url,
        config=botocore_config.Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


@pytest.fixture(scope="module")
def s3_server() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


class TcpProxy:
    """Relays 127.0.0.1:<port> to an upstream port; can cut the network or answer S3 errors.

    Modes: ``"pass"`` relays; ``"cut"`` resets every open connection and every new one (as a
    lost network); ``"error"`` answers each new request with ``error_response`` and closes.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.mode = "pass"
        self.error_response = b""
        self.bytes_up = 0
        self.cut_after: int | None = None
        self.corrupt_next_body = False
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = int(self._listener.getsockname()[1])
        self._closed = False
        self._cut_event = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        with self._lock:
            self.mode = "cut"
            conns, self._conns = self._conns, []
        for conn in conns:
            _reset(conn)
        self._cut_event.set()

    def restore(self) -> None:
        with self._lock:
            self.mode = "pass"
            self._cut_event.clear()

    def cut_after_bytes(self, nbytes: int) -> threading.Event:
        """Cut the network once ``nbytes`` more bytes went upstream; returns the cut event."""
        with self._lock:
            self.cut_after = self.bytes_up + nbytes
        return self._cut_event

    def answer_errors(self, response: bytes) -> None:
        with self._lock:
            self.mode = "error"
            self.error_response = response

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.cut()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                mode = self.mode
            if mode == "cut":
                _reset(client)
                continue
            if mode == "error":
                threading.Thread(target=self._answer_error, args=(client,), daemon=True).start()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), 5)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _answer_error(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            client.settimeout(5)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(65536)
                if not chunk:
                    break
                head += chunk
            client.sendall(self.error_response)
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_RDWR)
        client.close()

    def _corrupt(self, data: bytes, state: dict[str, int]) -> bytes:
        """Flip one byte of the first request body that passes while ``corrupt_next_body``."""
        with self._lock:
            if not self.corrupt_next_body:
                return data
            if state.get("body_at") is None:
                end = data.find(b"\r\n\r\n")
                if end < 0 or not data.startswith(b"PUT"):
                    return data
                state["body_at"] = end + 4
            at = state.pop("body_at")
            if at >= len(data):
                state["body_at"] = at - len(data)
                return data
            self.corrupt_next_body = False
        return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]

    def _pipe(self, src: socket.socket, dst: socket.socket, upward: bool) -> None:
        state: dict[str, int] = {}
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if upward:
                    data = self._corrupt(data, state)
                dst.sendall(data)
                if upward:
                    with self._lock:
                        self.bytes_up += len(data)
                        trip = self.cut_after is not None and self.bytes_up >= self.cut_after
                        if trip:
                            self.cut_after = None
                    if trip:
                        self.cut()
                        break
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with contextlib.suppress(OSError):
        sock.close()


def s3_error(status: int, code: str, message: str) -> bytes:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message></Error>"
    ).encode()
    reason = {403: "Forbidden", 507: "Insufficient Storage"}.get(status, "Error")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    return head + body
