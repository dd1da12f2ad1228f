"""POSIX named semaphores shared by name between the writer and its worker processes.

``multiprocessing``'s semaphores, under the forkserver/spawn start methods, keep their names
(``/dev/shm/sem.mp-*``) until garbage collection and rely on the resource tracker process to
remove them, so a SIGKILL of the whole process group leaks them. These are the same C objects
(``_multiprocessing.SemLock``) without that bookkeeping: the writer creates them, the worker
opens them by name, and the writer unlinks the names as soon as the worker has opened them
(both keep working handles), so nothing is left behind whatever kills the processes later.

``acquire(False)`` (``sem_trywait``) and ``release()`` (``sem_post``) run without releasing
the GIL; only a blocking ``acquire`` releases it while it waits.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import secrets
from typing import Any

_mp: Any = importlib.import_module("_multiprocessing")  # the C module behind multiprocessing
_SEMAPHORE = 1  # multiprocessing.synchronize.SEMAPHORE
_MAX = _mp.SemLock.SEM_VALUE_MAX


def create(value: int, prefix: str = "omgrab") -> tuple[Any, str]:
    """Create a counting semaphore with initial ``value``; return it and its name."""
    name = f"/{prefix}-{os.getpid()}-{secrets.token_hex(4)}"
    lock = _mp.SemLock(_SEMAPHORE, value, _MAX, name, False)
    return lock, name


def open_existing(name: str) -> Any:
    """Open the semaphore ``name`` created by another process."""
    return _mp.SemLock._rebuild(0, _SEMAPHORE, _MAX, name)


def unlink(name: str) -> None:
    """Remove the name (handles already open keep working); a missing name is fine."""
    with contextlib.suppress(FileNotFoundError, OSError):
        _mp.sem_unlink(name)
