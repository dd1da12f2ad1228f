"""``BackgroundLoop``: one named daemon thread that runs a step, waits, and runs it again.

Data path: the owner gives a ``step`` callable; the thread waits (for the delay the previous
step returned, ``None`` meaning until :meth:`BackgroundLoop.wake`), then calls ``step`` and
takes the delay it returns for the next wait. A :meth:`~BackgroundLoop.wake` cuts the current
wait short. The console's MQTT publisher, live view and status snapshot run on it.

Bounds: one thread, one wake event; the helper keeps an error count and the last error's
description only.

Lifecycle: :meth:`~BackgroundLoop.start` starts the thread (once); :meth:`~BackgroundLoop.stop`
sets the stop flag, wakes the thread, joins it for at most ``timeout`` seconds and logs the
outcome (stopped, or still running after the timeout: a step that does not return). A stop
never interrupts a step; the loop ends before the next one.

Error policy: an ``Exception`` raised by ``step`` is counted (``errors``, ``last_error``),
logged with its traceback and recorded under the loop's name in
:mod:`~omgrab.loop_health` (so the device status' ``loop_errors`` shows it); the loop then
waits ``retry_s`` and goes on. Anything else (``KeyboardInterrupt``, ``SystemExit``) is logged
(critical) and recorded the same way and ends the thread, which then shows ``failed`` True
and ``alive`` False.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from omgrab import loop_health

logger = logging.getLogger(__name__)

_MAX_MESSAGE = 300


class BackgroundLoop:
    """A daemon thread calling ``step`` until stopped, with counted, logged step errors.

    Args:
        name: Thread name, also the loop's name in :mod:`~omgrab.loop_health`.
        step: Does one round of work and returns how long to wait before the next one
            (seconds; ``None``: until woken).
        first_wait_s: Wait before the first step (``None``: until woken; 0: at once).
        retry_s: Wait after a step that raised.
        health: Error counters the loop records into; the process-wide ones by default.
    """

    def __init__(
        self,
        name: str,
        step: Callable[[], float | None],
        *,
        first_wait_s: float | None = 0.0,
        retry_s: float = 1.0,
        health: loop_health.LoopHealth | None = None,
    ) -> None:
        self.name = name
        self._step = step
        self._first_wait = first_wait_s
        self._retry_s = retry_s
        self._health = health if health is not None else loop_health.default()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._errors = 0  # guarded by _lock, with the two below
        self._last_error: str | None = None
        self._failed = False

    @property
    def errors(self) -> int:
        """Exceptions raised by ``step`` so far."""
        with self._lock:
            return self._errors

    @property
    def last_error(self) -> str | None:
        """``'<type>: <message>'`` of the latest step error, or None."""
        with self._lock:
            return self._last_error

    @property
    def failed(self) -> bool:
        """True when the thread ended on something other than an ``Exception``."""
        with self._lock:
            return self._failed

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stop.is_set()

    @property
    def alive(self) -> bool:
        """True while the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread.

        Raises:
            RuntimeError: It was started before.
        """
        if self._thread is not None:
            raise RuntimeError(f"background loop {self.name!r} was already started")
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """End the current wait: the next step runs now (or after the running one)."""
        self._wake.set()

    def wait_stopping(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` inside a step, returning early (True) when stopping."""
        return self._stop.wait(seconds)

    def stop(self, timeout: float = 10.0) -> bool:
        """Ask the loop to end, join it for up to ``timeout`` seconds and log the outcome.

        Returns:
            True when the thread ended (or never started), False when it still runs.
        """
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        if thread.is_alive():
            logger.warning(
                "background loop %s still running %.1f s after stop (a step does not return)",
                self.name,
                timeout,
            )
            return False
        logger.debug("background loop %s stopped (%d step errors)", self.name, self.errors)
        return True

    def _record(self, exc: BaseException) -> None:
        with self._lock:
            self._errors += 1
            self._last_error = f"{type(exc).__name__}: {exc}"[:_MAX_MESSAGE]
        self._health.record_error(self.name, exc)

    def _run(self) -> None:
        delay = self._first_wait
        try:
            while not self._stop.is_set():
                if delay is None or delay > 0:
                    self._wake.wait(delay)
                self._wake.clear()
                if self._stop.is_set():
                    return
                try:
                    delay = self._step()
                except Exception as exc:
                    self._record(exc)
                    logger.exception("background loop %s: step failed", self.name)
                    delay = self._retry_s
        except BaseException as exc:
            with self._lock:
                self._failed = True
            self._record(exc)
            logger.critical("background loop %s ended on %r", self.name, exc)
