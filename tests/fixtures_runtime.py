"""Shared pytest fixtures for the runtime tests (registered in tests/conftest.py)."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

import pytest

from tests import tmpfs


@pytest.fixture
def rig_dir(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    """A directory on a fresh tmpfs (root), else ``tmp_path``.

    The recorder fsyncs chunks and merged files; on a disk shared with other test runs each
    fsync can take tenths of a second, which would make a 200-cycle stress test measure the
    disk rather than the lifecycle.
    """
    if os.geteuid() != 0:
        yield tmp_path
        return
    with tmpfs.mounted_tmpfs(tmp_path, "512m") as mount_point:
        yield mount_point
