"""Mounting a real, small tmpfs for disk-full tests (root only; skips otherwise)."""

from __future__ import annotations

import contextlib
import os
import pathlib
import subprocess
import uuid
from collections.abc import Iterator

import pytest


@contextlib.contextmanager
def mounted_tmpfs(parent: pathlib.Path, size: str) -> Iterator[pathlib.Path]:
    """Mount a fresh tmpfs of ``size`` (e.g. ``'8m'``) below ``parent``; unmount on exit.

    Skips the calling test when not root or when the mount fails.
    """
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount_point = parent / f"tmpfs-{uuid.uuid4().hex[:6]}"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, check=False)
