"""One omgrab instance per data directory: an advisory ``flock`` on a lock file in the spool.

Every command that writes into or deletes from a spool (``run``, ``record``, ``merge``,
``recover``) holds :class:`InstanceLock` on that spool for as long as it runs. A second command
on the same spool refuses to start with :class:`InstanceLockedError`, whose message names the
holder's pid; without the lock, a second ``run`` would take the first one's live recording for
a crash leftover, merge it and delete its spool under the running writers.

Data path: the lock file is ``<spool>/.omgrab.lock`` (recovery skips dot-files). The holder
writes its pid into the file after taking the lock; the file is never deleted (deleting a lock
file races with a process that has just opened it), only rewritten by the next holder.

Bounds and lifecycle: ``fcntl.flock`` is released by the kernel when the holder's file
description closes, including when the process is killed, so a crash never leaves a stale
lock. The descriptor is not inheritable: encoder workers started after the lock never hold it
(waiting for those is the recovery's per-recording lock).

Error policy: acquiring never blocks; a held lock raises :class:`InstanceLockedError` at once,
any other OS error propagates as :class:`OSError`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pathlib

from omgrab import lifecycle

LOCK_NAME = ".omgrab.lock"


class InstanceLockedError(RuntimeError):
    """Another live process holds the lock.

    Attributes:
        path: The lock file.
        holder_pid: The pid the holder wrote into the lock file, or None if unreadable.
    """

    def __init__(self, path: pathlib.Path, holder_pid: int | None) -> None:
        self.path = path
        self.holder_pid = holder_pid
        holder = f"pid {holder_pid}" if holder_pid is not None else "another process"
        super().__init__(f"{path.parent} is in use by omgrab {holder} (lock file {path})")


def read_holder_pid(path: pathlib.Path) -> int | None:
    """Return the pid written in a lock file, or None if there is none or it is unreadable."""
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text().split()[0])
    return None


class InstanceLock(lifecycle.OpenCloseContext):
    """An exclusive, non-blocking lock on one spool directory.

    Args:
        directory: The spool directory to lock; it must exist.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.path = pathlib.Path(directory) / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock and write this process's pid into the lock file (a no-op if held).

        Raises:
            InstanceLockedError: Another process holds it.
            OSError: The lock file cannot be created (missing or read-only directory).
        """
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InstanceLockedError(self.path, read_holder_pid(self.path)) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        """Release the lock (the file stays); a no-op if not held."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def open(self) -> None:
        """Take the lock (what ``with InstanceLock(spool):`` does); see :meth:`acquire`."""
        self.acquire()

    def close(self) -> None:
        """Release the lock; see :meth:`release`."""
        self.release()
