"""Durable file replacement: write to a temporary name, fsync, rename, fsync the directory.

A crash at any point leaves either the old file or the new one under the final name, never a
partial file.
"""

from __future__ import annotations

import contextlib
import os
import pathlib


def fsync_path(path: pathlib.Path) -> None:
    """Flush the file or directory at ``path`` to disk (fsync)."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path_for(target: pathlib.Path) -> pathlib.Path:
    """Return a hidden temporary name beside ``target`` that is unique to this process."""
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


def is_temp_file_of(candidate: pathlib.Path, target: pathlib.Path) -> bool:
    """Return whether ``candidate`` is a temporary file made by :func:`temp_path_for`."""
    name = candidate.name
    prefix = f".{target.name}."
    return name.startswith(prefix) and name.endswith(".tmp")


def replace_durably(tmp: pathlib.Path, target: pathlib.Path) -> None:
    """Flush ``tmp`` to disk, rename it to ``target`` and fsync the directory."""
    fsync_path(tmp)
    os.replace(tmp, target)
    fsync_path(target.parent)


def write_temp(target: pathlib.Path, data: bytes) -> pathlib.Path:
    """Write ``data`` to ``target``'s temporary name, fsynced, and return that name.

    Nothing is left behind on failure; the error names ``target``.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(target)
    try:
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise naming(exc, target) from exc
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return tmp


def naming(exc: OSError, path: pathlib.Path) -> OSError:
    """Return ``exc`` if it names a file, else an OSError of the same errno naming ``path``."""
    if exc.filename is not None or exc.errno is None:
        return exc
    return OSError(exc.errno, os.strerror(exc.errno), str(path))


def write_bytes_atomic(target: pathlib.Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically and durably."""
    tmp = write_temp(target, data)
    try:
        os.replace(tmp, target)
        fsync_path(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
