"""An append-only line log written by its own thread in batches.

Callers hand over complete, newline-terminated lines with ``submit`` (a deque append; never
blocks). The writer thread writes everything pending in one ``os.write`` as soon as
``flush_every`` lines are pending, or ``flush_interval_s`` after the oldest pending line
arrived, whichever comes first - so at most ``flush_every - 1`` lines (or ``flush_interval_s``
of lines) live only in memory when the writer keeps up. Lines are written whole and in order,
to a file opened with ``O_APPEND`` (never truncated).

Write failures are logged, counted and retried: unwritten bytes stay in memory (bounded by
``max_retry_bytes``) and go out with the next batch, so a short ``ENOSPC`` loses nothing. An
optional reserve file is pre-allocated beside the log and released at the first ``ENOSPC``,
which keeps the log writable for a while after the rest of the disk filled up.

A write interrupted by SIGKILL or power loss can leave the file's last line incomplete (the
kernel may cut a write at a page boundary); ``omgrab.output.serialize.iter_jsonl`` skips such
a trailing fragment, and a new session never appends to an old file.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import os
import threading

from omgrab import clock as clock_mod
from omgrab.output import types

logger = logging.getLogger(__name__)

_POLL_S = 0.25
_REFUSED_LOG_INTERVAL_S = 5.0


class LineWriter:
    """Append lines to one file from a background thread.

    Args:
        path: File to append to (created if missing, never truncated).
        name: Human name for log messages ("Detection log").
        flush_every: Write as soon as this many lines are pending.
        flush_interval_s: Write at the latest this long after the oldest pending line arrived.
        max_pending: Lines that may wait; ``submit`` raises ``WriteError`` beyond it.
        time_source: Monotonic time for the interval rule (a ``ManualTimeSource`` in tests;
            call ``poll()`` after advancing it).
        fsync: ``fsync`` after every write.
        reserve_bytes: Size of the reserve file released on ``ENOSPC`` (0: none).
        max_retry_bytes: Unwritten bytes kept for retry after write errors; beyond it the
            oldest lines are discarded and counted in ``lines_lost``.
        caller_assist: When a line arrives while a due batch (``flush_every`` lines) is still
            pending because the writer thread has not been scheduled yet, write the batch on
            the caller's thread - but only if the writer is not itself writing (a non-blocking
            try-lock). A page-cache ``write`` of a few KB; keeps the crash-loss bound at
            ``flush_every`` lines even for bursty callers that hold the GIL.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        name: str,
        flush_every: int = 1,
        flush_interval_s: float = 5.0,
        max_pending: int = 10_000,
        time_source: clock_mod.TimeSource | None = None,
        fsync: bool = False,
        reserve_bytes: int = 0,
        max_retry_bytes: int = 64 * 1024 * 1024,
        caller_assist: bool = False,
    ) -> None:
        self._path = os.fspath(path)
        self._name = name
        self._flush_every = flush_every
        self._flush_interval_s = flush_interval_s
        self._max_pending = max_pending
        self._time: clock_mod.TimeSource = (
            time_source if time_source is not None else clock_mod.SystemTimeSource()
        )
        self._fsync = fsync
        self._max_retry_bytes = max_retry_bytes
        self._pending: collections.deque[bytes] = collections.deque()
        # The condition's lock protects _first_at, _closing and _wake; the deque itself is
        # appended/popped without it (deque operations are atomic).
        self._cond = threading.Condition()
        self._first_at: float | None = None
        self._closing = False
        self._wake = False
        self._retry: list[bytes] = []
        self._retry_bytes = 0
        self._in_error = False
        self.lines_submitted = 0
        self.lines_written = 0
        self.lines_lost = 0
        self.lines_refused = 0
        self._refusing = False
        self._refused_logged_at = 0.0
        self.bytes_written = 0
        self.flushes = 0
        self.write_errors = 0
        self.thread_errors = 0
        self.last_error: BaseException | None = None
        self._flushed = threading.Condition()
        self._write_lock = threading.Lock()  # held while draining the deque and writing
        self._caller_assist = caller_assist
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._reserve_path: str | None = None
        if reserve_bytes > 0:
            self._make_reserve(reserve_bytes)
        self._thread = threading.Thread(target=self._run, name=f"omgrab-{name}", daemon=True)
        self._thread.start()

    @property
    def path(self) -> str:
        """The file being appended to."""
        return self._path

    @property
    def pending(self) -> int:
        """Lines accepted but not yet written (including lines waiting for a retry)."""
        return len(self._pending) + self._retry_lines()

    def _refused(self) -> None:
        """Count a line refused because the writer is behind; log when it starts and every 5 s.

        The loss is reported while it happens (log line, ``lines_refused``), not at close.
        """
        self.lines_refused += 1
        now = self._time.monotonic()
        if not self._refusing or now - self._refused_logged_at >= _REFUSED_LOG_INTERVAL_S:
            self._refused_logged_at = now
            logger.error(
                "%s: writer %d lines behind (max_pending); lines are being lost: %d so far",
                self._name,
                len(self._pending),
                self.lines_refused,
            )
        self._refusing = True

    def _retry_lines(self) -> int:
        return sum(chunk.count(b"\n") for chunk in self._retry)

    def _make_reserve(self, size: int) -> None:
        path = self._path + ".reserve"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                os.posix_fallocate(fd, 0, size)
            finally:
                os.close(fd)
            self._reserve_path = path
        except OSError as exc:
            logger.warning("%s: could not reserve %d bytes (%s)", self._name, size, exc)
            with contextlib.suppress(OSError):
                os.unlink(path)

    def _release_reserve(self) -> bool:
        path, self._reserve_path = self._reserve_path, None
        if path is None:
            return False
        try:
            os.unlink(path)
        except OSError as exc:
            logger.error("%s: could not release reserve file %s: %s", self._name, path, exc)
            return False
        logger.warning("%s: disk full, released the reserved space to keep logging", self._name)
        return True

    def submit(self, line: bytes) -> None:
        """Queue one newline-terminated line; never blocks.

        Raises:
            WriteError: The writer is closed, or ``max_pending`` lines are already waiting.
        """
        if self._closing:
            raise types.WriteError(f"{self._name} is closed")
        pending = self._pending
        if len(pending) >= self._max_pending:
            self._refused()
            raise types.WriteError(
                f"{self._name}: {len(pending)} lines already waiting for the writer "
                f"(max_pending={self._max_pending}); entry not accepted"
            )
        if self._refusing:
            self._refusing = False
            logger.warning(
                "%s: writer caught up; %d lines refused so far", self._name, self.lines_refused
            )
        pending.append(line)
        self.lines_submitted += 1
        n = len(pending)
        if n > self._flush_every and self._caller_assist:
            # The writer was told at flush_every lines and has not run yet (it needs the GIL
            # this thread holds): write the due batch here, unless the writer is busy writing
            # (never wait for it). Keeps crash loss within flush_every lines.
            if self._write_lock.acquire(blocking=False):
                try:
                    self._drain_and_write()
                except Exception as exc:
                    self.thread_errors += 1
                    self.last_error = exc
                    logger.exception("%s: caller-side flush failed", self._name)
                finally:
                    self._write_lock.release()
            return
        if n == 1 or n % self._flush_every == 0:
            with self._cond:
                if self._first_at is None:
                    self._first_at = self._time.monotonic()
                if n >= self._flush_every:
                    self._cond.notify()

    def poll(self) -> None:
        """Make the writer re-check its flush rules now (e.g. after advancing a manual clock)."""
        with self._cond:
            self._cond.notify()

    def flush_now(self) -> None:
        """Make the writer write everything pending now, whatever the flush policy says."""
        with self._cond:
            self._wake = True
            self._cond.notify()

    def wait_written(self, count: int, timeout: float) -> bool:
        """Block until at least ``count`` lines were written; return False on timeout."""
        with self._flushed:
            return self._flushed.wait_for(lambda: self.lines_written >= count, timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Write everything pending, stop the thread and close the file (idempotent)."""
        with self._cond:
            if self._closing and not self._thread.is_alive():
                return
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.error("%s writer did not stop within %s s", self._name, timeout)
            return
        try:
            os.close(self._fd)
        except OSError as exc:
            logger.error("%s: close failed: %s", self._name, exc)
        if self._reserve_path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._reserve_path)
            self._reserve_path = None

    def _due(self) -> bool:
        # Called with self._cond held.
        n = len(self._pending)
        if n == 0:
            self._first_at = None
            return bool(self._retry) and self._wake
        if self._closing or n >= self._flush_every or self._wake:
            return True
        if self._first_at is None:
            self._first_at = self._time.monotonic()
        return self._time.monotonic() - self._first_at >= self._flush_interval_s

    def _run(self) -> None:
        while True:
            try:
                with self._cond:
                    while not self._due() and not (self._closing and not self._pending):
                        if self._first_at is not None and self._pending:
                            left = self._first_at + self._flush_interval_s - self._time.monotonic()
                            timeout = min(_POLL_S, max(left, 0.0))
                        else:
                            timeout = _POLL_S
                        self._cond.wait(timeout)
                        if self._retry:
                            self._wake = True
                    self._wake = False
                    closing = self._closing
                    n = len(self._pending)
                    if n:
                        self._first_at = None
                with self._write_lock:
                    self._drain_and_write()
                if closing and not self._pending:
                    if self._retry:
                        with self._write_lock:
                            self._write([])  # one last attempt
                    if self._retry:
                        lost = self._retry_lines()
                        self.lines_lost += lost
                        logger.error(
                            "%s: %d lines could not be written before close", self._name, lost
                        )
                    return
            except Exception as exc:
                self.thread_errors += 1
                self.last_error = exc
                logger.exception("%s writer thread error (continuing)", self._name)

    def _drain_and_write(self) -> None:
        # Called with _write_lock held, so batches reach the file in the order they left the
        # deque whichever thread writes them.
        popleft = self._pending.popleft
        batch = [popleft() for _ in range(len(self._pending))]
        self._write(batch)

    def _write(self, batch: list[bytes]) -> None:
        had_retry = bool(self._retry)
        if had_retry:
            batch = self._retry + batch
            self._retry = []
            self._retry_bytes = 0
        if not batch:
            return
        data = b"".join(batch)
        view = memoryview(data)
        written = 0
        released = False
        try:
            while written < len(data):
                try:
                    written += os.write(self._fd, view[written:])
                except OSError as exc:
                    if exc.errno == errno.ENOSPC and not released and self._release_reserve():
                        released = True
                        continue
                    raise
            if self._fsync:
                os.fsync(self._fd)
        except OSError as exc:
            rest = bytes(view[written:])
            if not self._in_error:
                logger.error("%s write failed: %s", self._name, exc.strerror or exc)
            self._in_error = True
            self.last_error = exc
            self.write_errors += 1  # counted after logging: a reader seeing it sees the log
            self._keep_for_retry(rest)
            self.bytes_written += written
            self._count_written(data[:written].count(b"\n") if written else 0)
            return
        if self._in_error:
            logger.info("%s writes succeeding again", self._name)
            self._in_error = False
        self.bytes_written += written
        self.flushes += 1
        self._count_written(data.count(b"\n") if had_retry else len(batch))

    def _keep_for_retry(self, rest: bytes) -> None:
        if len(rest) > self._max_retry_bytes:
            # Keep the newest bytes from a line boundary; count the rest as lost.
            cut = rest.find(b"\n", len(rest) - self._max_retry_bytes)
            dropped = rest[: cut + 1] if cut >= 0 else rest
            lost = dropped.count(b"\n")
            self.lines_lost += lost
            logger.error("%s: retry buffer full, %d lines lost", self._name, lost)
            rest = rest[cut + 1 :] if cut >= 0 else b""
        if rest:
            self._retry = [rest]
            self._retry_bytes = len(rest)

    def _count_written(self, lines: int) -> None:
        if lines:
            with self._flushed:
                self.lines_written += lines
                self._flushed.notify_all()
