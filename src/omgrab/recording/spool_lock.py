"""The per-recording writer lock: merge and recovery never race a live writer.

Data path: one empty lock file, ``<spool>/<recording_id>/.writers.lock``. Every process that
writes into the recording directory (the application's ``ChunkedWriter`` and each encoder
worker process) holds a *shared* ``flock`` on it for as long as it writes. Merge and
start-up recovery take it *exclusively* before they read the spool and keep it until the merge
and the spool clean-up are finished.

Bounds: the exclusive lock is waited for at most ``timeout_s`` (polled every 20 ms); after that
the merge is refused with :class:`WritersActiveError` and the spool is left untouched, to be
recovered by a later pass.

Lifecycle: the kernel drops a ``flock`` when the last descriptor of its open file description
is closed, which includes process death (SIGKILL, power loss has no lock to leave behind). So
after the application alone is killed, its orphaned encoder workers keep the shared lock until
they have drained their rings and exited, and a recovery started at once waits for them instead
of deleting chunks under them. Two merges of the same recording serialise on the same lock;
the second one then finds the merge finished. No process ids are guessed.

A recording on a read-only filesystem (a card mounted read-only for salvage) is read
without the lock: no writer can be active there and nothing there can be deleted.

Error policy: failing to take the shared lock when a writer starts is an error of that start
(:class:`OSError`); waiting too long for the exclusive lock raises
:class:`WritersActiveError` (a :class:`TimeoutError`) naming the directory.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import pathlib
import time
from collections.abc import Iterator

#: Name of the lock file inside a recording's spool directory.
LOCK_FILE = ".writers.lock"

#: Default bound on the wait for a recording's writers to exit (seconds).
DEFAULT_WAIT_S = 10.0

_POLL_S = 0.02


class WritersActiveError(TimeoutError):
    """A recording's writer processes still hold its lock after the bounded wait."""


def lock_path(recording_dir: str | os.PathLike[str]) -> pathlib.Path:
    """Return the lock file of the spool recording directory ``recording_dir``."""
    return pathlib.Path(recording_dir) / LOCK_FILE


def _open(recording_dir: str | os.PathLike[str]) -> int:
    return os.open(lock_path(recording_dir), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)


def hold_shared(recording_dir: str | os.PathLike[str]) -> int:
    """Take the shared writer lock of ``recording_dir`` and return its descriptor.

    Waits at most :data:`DEFAULT_WAIT_S` if a merge holds the lock exclusively.

    Raises:
        OSError: the lock file cannot be created, or a merge held it for too long.
    """
    fd = _open(recording_dir)
    try:
        _acquire(fd, fcntl.LOCK_SH, DEFAULT_WAIT_S, recording_dir)
    except BaseException:
        os.close(fd)
        raise
    return fd


def release(fd: int | None) -> None:
    """Release a lock taken by :func:`hold_shared` (``None`` is ignored)."""
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def _acquire(fd: int, mode: int, timeout_s: float, recording_dir: object) -> None:
    deadline = time.monotonic() + max(0.0, timeout_s)
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise WritersActiveError(
                    f"recording {recording_dir} is still being written (its lock "
                    f"{LOCK_FILE} is held after {timeout_s:g} s); leaving it for a later pass"
                ) from None
            time.sleep(_POLL_S)


@contextlib.contextmanager
def exclusive(
    recording_dir: str | os.PathLike[str], timeout_s: float = DEFAULT_WAIT_S
) -> Iterator[bool]:
    """Hold the recording's lock exclusively within the block.

    Yields:
        ``True`` when the directory still exists under the lock; ``False`` when it was
        removed while waiting (another merge finished and cleaned it up).

    Raises:
        WritersActiveError: writers still hold the lock after ``timeout_s``.
    """
    directory = pathlib.Path(recording_dir)
    try:
        fd = _open(directory)
    except FileNotFoundError:
        yield False
        return
    except OSError as exc:
        if exc.errno != errno.EROFS:
            raise
        # A read-only filesystem has no live writer (none could open a chunk there) and
        # no merge of ours can delete from it: reading it needs no lock.
        yield directory.is_dir()
        return
    try:
        _acquire(fd, fcntl.LOCK_EX, timeout_s, directory)
        try:
            same = os.stat(lock_path(directory)).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        yield same
    finally:
        os.close(fd)
