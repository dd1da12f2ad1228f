"""Starting encoder worker processes quickly, without re-running the application's main module.

Workers are started with the ``forkserver`` method (never ``fork`` from a threaded process) and
the worker module is preloaded into the server, so a worker starts in milliseconds.

``multiprocessing`` also re-imports the parent's ``__main__`` module in every child it starts
(by path, or by name under ``python -m``). For a worker that only runs
:mod:`omgrab.recording.stream_worker` this is pure cost — importing the ``omgrab`` command
pulls in the whole application (about 1.3 s here), once per stream per recording — and a hazard
for scripts without an ``if __name__ == "__main__":`` guard. :func:`main_module_hidden` hides the
main module from ``multiprocessing`` while a worker is started, so children skip that import.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
import threading
from collections.abc import Iterator
from typing import Any

WORKER_MODULE = "omgrab.recording.stream_worker"

_lock = threading.Lock()
_preloaded = False


def forkserver_context() -> Any:
    """Return the forkserver context, preloading the worker module into the server once."""
    global _preloaded
    ctx = multiprocessing.get_context("forkserver")
    with _lock:
        if not _preloaded:
            ctx.set_forkserver_preload([WORKER_MODULE])
            _preloaded = True
    return ctx


@contextlib.contextmanager
def main_module_hidden() -> Iterator[None]:
    """Within the block, processes started by ``multiprocessing`` do not import ``__main__``.

    ``multiprocessing.spawn.get_preparation_data`` reads ``__main__.__spec__`` and
    ``__main__.__file__`` when a process starts; both are hidden for the duration (and restored
    even on error). Only start processes whose target lives in an importable module inside it.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    with _lock:
        missing = object()
        saved_spec = getattr(main, "__spec__", missing)
        saved_file = main.__dict__.get("__file__", missing)
        try:
            main.__spec__ = None
            main.__dict__.pop("__file__", None)
            yield
        finally:
            if saved_spec is not missing:
                main.__spec__ = saved_spec  # type: ignore[assignment]
            if saved_file is not missing:
                main.__dict__["__file__"] = saved_file


def _noop() -> None:
    """Target of the prewarm process."""


def prewarm() -> None:
    """Start the forkserver (and its preloaded worker module) now, not at the first recording.

    Runs one empty process through the server and waits for it; call at application start-up so
    the first button press records as fast as later ones.
    """
    ctx = forkserver_context()
    with main_module_hidden():
        process = ctx.Process(target=_noop, name="omgrab-writer-prewarm", daemon=True)
        process.start()
    process.join()
