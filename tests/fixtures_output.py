"""Shared pytest fixtures for the output tests (registered in tests/conftest.py)."""

from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from omgrab import clock
from tests import tmpfs

MOSQUITTO = "/usr/sbin/mosquitto"


def detection_entry(i: int, **extra: Any) -> dict[str, Any]:
    """A valid DetectionLogEntry for frame ``i``."""
    entry: dict[str, Any] = {
        "frame_id": i,
        "class_id": 3,
        "label": "person",
        "confidence": 0.875,
        "bbox": [10.0, 20.0, 110.0, 220.0],
        "track_id": i % 7,
    }
    entry.update(extra)
    return entry


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class MosquittoBroker:
    """A real Mosquitto broker on a loopback port, restartable on the same port."""

    def __init__(self, workdir: pathlib.Path) -> None:
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"
            f"log_dest file {self.log}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None


@pytest.fixture
def mosquitto_broker(tmp_path: pathlib.Path) -> Iterator[MosquittoBroker]:
    """A running Mosquitto broker (skipped if the binary is missing)."""
    if not os.path.exists(MOSQUITTO):
        pytest.skip(f"{MOSQUITTO} is not installed")
    broker = MosquittoBroker(tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def small_tmpfs(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    """A freshly mounted 8 MiB tmpfs (root only); unmounted afterwards."""
    with tmpfs.mounted_tmpfs(tmp_path, "8m") as mount_point:
        yield mount_point


def fill_to_free_fraction(mnt: pathlib.Path, target: float, name: str = "ballast") -> pathlib.Path:
    """Grow a ballast file on ``mnt`` until free space is just below ``target`` (0-1)."""
    path = mnt / name
    st = os.statvfs(mnt)
    block = st.f_frsize
    want_avail = int(target * st.f_blocks) - 2  # two blocks below the threshold
    grow = (st.f_bavail - want_avail) * block
    if grow > 0:
        with open(path, "ab") as f:
            f.write(b"\0" * grow)
    return path


def fill_completely(mnt: pathlib.Path, name: str = "ballast_full") -> pathlib.Path:
    """Write a ballast file until the filesystem reports ENOSPC."""
    path = mnt / name
    chunk = b"\0" * 65536
    with open(path, "ab", buffering=0) as f:
        with contextlib.suppress(OSError):
            while True:
                f.write(chunk)
        try:
            while True:
                f.write(b"\0" * 512)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return path


@pytest.fixture
def output_manual_time() -> clock.ManualTimeSource:
    """A hand-advanced time source."""
    return clock.ManualTimeSource()
