"""Error counters of the runtime's background loops, surfaced in the device status.

Every background loop (button, recorder health, recorder merge, recorder events, device status,
network) catches an exception raised by what it calls, logs it, records it here and goes on. The
device status reads :meth:`LoopHealth.counts` so an operator sees a loop that keeps failing.

Bounds: one counter and one last-error string per loop name (a handful of fixed names).
Thread safety: every method may be called from any thread; one small lock guards the counters
and is never held while calling out.
"""

from __future__ import annotations

import threading

_MAX_MESSAGE = 300


class LoopHealth:
    """Thread-safe error counters, one per background loop name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._errors: dict[str, int] = {}
        self._last: dict[str, str] = {}

    def record_error(self, loop: str, exc: BaseException) -> None:
        """Count one exception caught by ``loop`` and keep its description."""
        message = f"{type(exc).__name__}: {exc}"[:_MAX_MESSAGE]
        with self._lock:
            self._errors[loop] = self._errors.get(loop, 0) + 1
            self._last[loop] = message

    def errors(self, loop: str) -> int:
        """How many exceptions ``loop`` caught so far."""
        with self._lock:
            return self._errors.get(loop, 0)

    def counts(self) -> dict[str, int]:
        """A copy of every loop's error count."""
        with self._lock:
            return dict(self._errors)

    def last_errors(self) -> dict[str, str]:
        """A copy of every loop's most recent error description."""
        with self._lock:
            return dict(self._last)


_DEFAULT = LoopHealth()


def default() -> LoopHealth:
    """The process-wide counters the runtime's loops record into unless given others."""
    return _DEFAULT
