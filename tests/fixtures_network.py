"""Shared pytest fixtures for the network tests (registered in tests/conftest.py).

- ``tcp_server``: a real TCP listener on 127.0.0.1 that counts accepted connections.
- ``refused_port``: a loopback port that is bound but not listening (connections are refused).
- ``netns_pair``: two fresh network namespaces joined by a veth pair, with helpers to run a TCP
  server in one, run probes / a live ``NetworkMonitor`` in the other (through a small agent
  subprocess speaking JSON lines), cut and restore the link. Skipped unless root and
  ``ip netns add`` works. Everything is torn down afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

PYTHON = sys.executable
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass
class LoopbackServer:
    """A listening TCP socket on loopback."""

    host: str
    port: int
    accepted: threading.Semaphore


@pytest.fixture
def tcp_server() -> Iterator[LoopbackServer]:
    """A real TCP server on 127.0.0.1 accepting (and immediately closing) connections."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    accepted = threading.Semaphore(0)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            conn.close()
            accepted.release()

    thread = threading.Thread(target=serve, name="test-tcp-server", daemon=True)
    thread.start()
    try:
        yield LoopbackServer("127.0.0.1", sock.getsockname()[1], accepted)
    finally:
        stop.set()
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        thread.join(5)


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port held bound but not listening, so connecting to it is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


# ------------------------------------------------------------------------------------------
# Network namespaces

_SERVER_CODE = r"""
import socket, sys
kind, host = sys.argv[1], sys.argv[2]
if kind == "tcp":
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, 0))
    s.listen(16)
else:  # a DNS server that reads queries and never answers
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, 53))
print(s.getsockname()[1], flush=True)
while True:
    if kind == "tcp":
        c, _ = s.accept()
        c.close()
    else:
        s.recvfrom(4096)
"""

_AGENT_CODE = r"""
import json, sys, threading
from omgrab.runtime import network_monitor as nm

out_lock = threading.Lock()
def emit(obj):
    with out_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

monitor = None
for line in sys.stdin:
    req = json.loads(line)
    cmd = req["cmd"]
    try:
        if cmd == "probe":
            r = nm.NetworkMonitor(nm.Config(**req["cfg"]), req.get("iface")).check_once()
            emit({"status": r.status.name, "detail": r.detail})
        elif cmd == "local":
            r = nm.check_local_network(req.get("iface"))
            emit({"ok": r.ok, "detail": r.detail, "iface": r.iface})
        elif cmd == "monitor_start":
            monitor = nm.NetworkMonitor(nm.Config(**req["cfg"]), req.get("iface"))
            monitor.register_on_change_callback(
                lambda s: emit({"event": "change", "status": s.status.name, "detail": s.detail})
            )
            monitor.start()
            emit({"ok": True})
        elif cmd == "wake":
            monitor.wake()
            emit({"ok": True})
        elif cmd == "snapshot":
            s = monitor.snapshot
            emit({"status": s.status.name, "detail": s.detail, "probes": monitor.probe_count})
        elif cmd == "quit":
            if monitor is not None:
                monitor.shutdown()
            emit({"ok": True})
            break
    except Exception as exc:
        emit({"error": repr(exc)})
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


class NetnsAgent:
    """A Python process inside a namespace that runs probes on request (JSON lines)."""

    def __init__(self, ns: str) -> None:
        env = dict(os.environ, PYTHONPATH=os.path.join(REPO_ROOT, "src"))
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, PYTHON, "-c", _AGENT_CODE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            msg = json.loads(line)
            (self.events if "event" in msg else self.replies).put(msg)

    def request(self, timeout: float = 20.0, **req: Any) -> dict[str, Any]:
        """Send one command and return its reply (raises on an agent-side error)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        reply = self.replies.get(timeout=timeout)
        if "error" in reply:
            raise AssertionError(f"agent error for {req}: {reply['error']}")
        return reply

    def next_event(self, timeout: float = 20.0) -> dict[str, Any]:
        """Return the next on-change event printed by a monitor running in the agent."""
        return self.events.get(timeout=timeout)

    def close(self) -> None:
        """Stop the agent process (only this one, by its handle)."""
        try:
            if self.proc.poll() is None:
                self.request(cmd="quit", timeout=10)
                self.proc.wait(10)
        except Exception:
            pass
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)


@dataclasses.dataclass
class NetnsPair:
    """Two namespaces joined by a veth pair: ``client`` (probes) and ``server`` (targets)."""

    client_ns: str
    server_ns: str
    client_if: str
    server_if: str
    client_ip: str
    server_ip: str
    processes: list[subprocess.Popen[str]] = dataclasses.field(default_factory=list)
    agents: list[NetnsAgent] = dataclasses.field(default_factory=list)

    def start_tcp_server(self) -> int:
        """Start a TCP server on ``server_ip`` inside the server namespace; return its port."""
        return self._start_server("tcp")

    def start_silent_dns(self) -> None:
        """Start a UDP 'DNS server' on ``server_ip``:53 that never answers."""
        self._start_server("udp")

    def _start_server(self, kind: str) -> int:
        proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.server_ns,
                PYTHON,
                "-c",
                _SERVER_CODE,
                kind,
                self.server_ip,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.processes.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{kind} server in {self.server_ns} failed to start")
        return int(line)

    def agent(self) -> NetnsAgent:
        """Start a probe agent inside the client namespace."""
        agent = NetnsAgent(self.client_ns)
        self.agents.append(agent)
        return agent

    def client_link(self, up: bool) -> None:
        """Set the client end of the veth pair administratively up or down."""
        _ip("-n", self.client_ns, "link", "set", self.client_if, "up" if up else "down")

    def server_link(self, up: bool) -> None:
        """Set the server end of the veth pair up or down (the client loses carrier)."""
        _ip("-n", self.server_ns, "link", "set", self.server_if, "up" if up else "down")

    def set_default_route(self, present: bool) -> None:
        """Add (replace) or delete the client's default route via the server."""
        if present:
            _ip("-n", self.client_ns, "route", "replace", "default", "via", self.server_ip)
        else:
            subprocess.run(
                ["ip", "-n", self.client_ns, "route", "del", "default"],
                capture_output=True,
                timeout=10,
            )

    def set_client_file(self, name: str, text: str) -> None:
        """Overlay ``/etc/<name>`` in the client namespace (``ip netns exec`` bind-mounts it)."""
        directory = os.path.join("/etc/netns", self.client_ns)
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, name), "w", encoding="ascii") as f:
            f.write(text)


@pytest.fixture
def netns_pair() -> Iterator[NetnsPair]:
    """Two connected network namespaces (root only; skipped with a reason otherwise)."""
    if os.geteuid() != 0:
        pytest.skip("network namespace tests need root")
    if shutil.which("ip") is None:
        pytest.skip("iproute2 'ip' command not found")
    tag = uuid.uuid4().hex[:8]
    pair = NetnsPair(
        client_ns=f"omgrab-c-{tag}",
        server_ns=f"omgrab-s-{tag}",
        client_if=f"oc{tag}",
        server_if=f"os{tag}",
        client_ip="10.231.7.2",
        server_ip="10.231.7.1",
    )
    created: list[str] = []
    try:
        try:
            for ns in (pair.client_ns, pair.server_ns):
                _ip("netns", "add", ns)
                created.append(ns)
        except (subprocess.CalledProcessError, OSError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            pytest.skip(f"cannot create network namespaces: {detail.strip()}")
        _ip("link", "add", pair.client_if, "type", "veth", "peer", "name", pair.server_if)
        _ip("link", "set", pair.client_if, "netns", pair.client_ns)
        _ip("link", "set", pair.server_if, "netns", pair.server_ns)
        _ip("-n", pair.client_ns, "addr", "add", f"{pair.client_ip}/24", "dev", pair.client_if)
        _ip("-n", pair.server_ns, "addr", "add", f"{pair.server_ip}/24", "dev", pair.server_if)
        for ns, dev in ((pair.client_ns, pair.client_if), (pair.server_ns, pair.server_if)):
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", dev, "up")
        pair.set_default_route(True)
        yield pair
    finally:
        for agent in pair.agents:
            agent.close()
        for proc in pair.processes:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
        subprocess.run(["ip", "link", "del", pair.client_if], capture_output=True, timeout=10)
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
            shutil.rmtree(os.path.join("/etc/netns", ns), ignore_errors=True)
        with contextlib.suppress(OSError):
            os.rmdir("/etc/netns")  # only if empty (we may have created it)
