"""Retry, while the application runs, the merges that failed (disk full during a merge).

A merge that fails (``ENOSPC`` while the merged MKV is written, a spool chunk that cannot be
read for a moment) keeps its spool directory: nothing is deleted that is not merged. Without a
retry it would wait for the next start-up recovery. :class:`MergeRetry` keeps a table of those
recordings and merges them again in the background, under the same rules as a normal merge
(:func:`omgrab.recording.merge.merge_recording` with ``cleanup=True``: the spool is cleaned up
only after a verified, durable merge; a failed attempt leaves nothing under the final names).

Data path: :meth:`MergeRetry.add` (the recorder's ``merge_failed`` event, or a start-up
recovery failure) puts a recording id in the table; the ``merge-retry`` thread wakes every
``RetryPolicy.poll_s`` and merges an entry when it is due: its backoff delay has passed, or the
filesystem now has room for it (free bytes >= its spool size + ``headroom_bytes``) and had not
at its last failure (space was freed). A success removes the entry and calls ``on_merged``
with the merged path; a failure doubles the delay.

Bounds: the delay runs from ``initial_delay_s`` doubling up to ``max_delay_s``; an entry whose
failures are not about space (no ``OSError`` with ``ENOSPC``/``EDQUOT``) is given up after
``max_attempts`` and stays listed (``gave_up``) with its spool kept for the next start-up
recovery. Space failures are retried for as long as the application runs, at most once per
``max_delay_s`` once backed off. The table holds only recordings not merged yet plus the
given-up ones (at most one entry per spool directory). One merge runs at a time.

Lifecycle: :meth:`MergeRetry.start` starts the thread, :meth:`MergeRetry.stop` sets the stop
event and joins it (bounded by ``timeout``; a merge in progress finishes first, and a merge
still running after the timeout is logged and left: its spool stays for recovery).

Error policy: a failed merge is logged with its error, counted (``attempts``, ``failures``)
and shown by :meth:`MergeRetry.progress` (``status.json``'s ``merge_retry``); an unexpected
error in the loop itself is logged, counted in :mod:`~omgrab.loop_health` (loop
``merge-retry``) and the loop goes on.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import pathlib
import threading
import time
from collections.abc import Callable
from typing import Any

from omgrab import loop_health, storage
from omgrab.recording import merge, spool_lock
from omgrab.runtime import recording_manager

logger = logging.getLogger(__name__)

LOOP = "merge-retry"

_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})

MergeFunction = Callable[[pathlib.Path, pathlib.Path], pathlib.Path]
"""Merges ``(recording_dir, output_dir)`` and returns the merged path (tests swap it)."""


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """When a failed merge is tried again.

    Attributes:
        initial_delay_s: Delay after the first failure.
        max_delay_s: Cap of the doubling delay.
        max_attempts: Failures not about space after which an entry is given up (its spool is
            kept for the next start-up recovery).
        poll_s: How often the thread looks at the table and the free space.
        headroom_bytes: Free space needed beyond the spool's size for an early retry.
    """

    initial_delay_s: float = 5.0
    max_delay_s: float = 120.0
    max_attempts: int = 5
    poll_s: float = 1.0
    headroom_bytes: int = 32 * 1024 * 1024

    def __post_init__(self) -> None:
        for name in ("initial_delay_s", "max_delay_s", "poll_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"RetryPolicy.{name} must be > 0, got {getattr(self, name)!r}")
        if self.max_delay_s < self.initial_delay_s:
            raise ValueError(
                f"RetryPolicy.max_delay_s ({self.max_delay_s}) must be >= initial_delay_s "
                f"({self.initial_delay_s})"
            )
        if self.max_attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts}")
        if self.headroom_bytes < 0:
            raise ValueError(f"RetryPolicy.headroom_bytes must be >= 0, got {self.headroom_bytes}")

    def delay(self, failures: int) -> float:
        """The wait after ``failures`` consecutive failures (1 = the first)."""
        return float(min(self.max_delay_s, self.initial_delay_s * 2 ** max(0, failures - 1)))


@dataclasses.dataclass
class _Entry:
    recording_id: str
    last_error: str
    failures: int = 1
    space_failure: bool = True
    next_at: float = 0.0
    room_at_failure: bool = False
    attempts: int = 0
    gave_up: bool = False


def is_space_error(exc: BaseException) -> bool:
    """True when ``exc`` (or its cause) is an ``OSError`` saying the disk or quota is full."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _SPACE_ERRNOS:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _default_merge(recording_dir: pathlib.Path, output_dir: pathlib.Path) -> pathlib.Path:
    return merge.merge_recording(
        recording_dir, output_dir, cleanup=True, lock_timeout_s=spool_lock.DEFAULT_WAIT_S
    ).output_path


class MergeRetry:
    """Merges again, in the background, the recordings whose merge failed.

    Args:
        spool_dir: The spool root holding ``<recording_id>/`` directories.
        output_dir: Where merged MKVs go.
        policy: Backoff and bounds.
        on_merged: Called with the merged path after a successful retry.
        merge_fn: The merge (default: a verified merge with spool clean-up).
        free_bytes: Free bytes on the output filesystem (default: ``statvfs``).
        monotonic: Clock for the backoff (tests pass a fake one).
        health: Where loop errors are counted.
    """

    def __init__(
        self,
        spool_dir: pathlib.Path,
        output_dir: pathlib.Path,
        *,
        policy: RetryPolicy | None = None,
        on_merged: Callable[[pathlib.Path], None] | None = None,
        merge_fn: MergeFunction | None = None,
        free_bytes: Callable[[], int] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        health: loop_health.LoopHealth | None = None,
    ) -> None:
        self._spool_dir = pathlib.Path(spool_dir)
        self._output_dir = pathlib.Path(output_dir)
        self._policy = policy if policy is not None else RetryPolicy()
        self._on_merged = on_merged
        self._merge = merge_fn if merge_fn is not None else _default_merge
        self._free_bytes = (
            free_bytes
            if free_bytes is not None
            else lambda: storage.read_statvfs(self._output_dir).available_bytes
        )
        self._monotonic = monotonic
        self._health = health if health is not None else loop_health.default()
        self._lock = threading.Lock()  # guards the table and the counters
        self._entries: dict[str, _Entry] = {}
        self._merged = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def policy(self) -> RetryPolicy:
        """The backoff and bounds in use."""
        return self._policy

    def add(self, recording_id: str, error: BaseException | str) -> None:
        """Schedule ``recording_id`` (a spool directory name) for a merge retry.

        Args:
            recording_id: The recording whose merge failed.
            error: Why it failed (an ``ENOSPC`` ``OSError`` makes it a space failure).
        """
        space = is_space_error(error) if isinstance(error, BaseException) else False
        message = _describe(error) if isinstance(error, BaseException) else str(error)
        if not space:  # a message relayed by an event names the errno
            space = any(f"[Errno {code}]" in message for code in _SPACE_ERRNOS)
        now = self._monotonic()
        room = self._has_room(recording_id)
        with self._lock:
            entry = self._entries.get(recording_id)
            if entry is None:
                entry = _Entry(recording_id, message, space_failure=space)
                self._entries[recording_id] = entry
            else:
                entry.failures += 1
                entry.last_error = message
                entry.space_failure = space
                entry.gave_up = False
            entry.next_at = now + self._policy.delay(entry.failures)
            entry.room_at_failure = room
        logger.warning(
            "merge of %s failed (%s); its spool is kept and the merge is retried in %.0f s "
            "or when space is freed",
            recording_id,
            message,
            self._policy.delay(entry.failures),
        )
        self._wake.set()

    def pending(self) -> list[str]:
        """Recording ids still waiting for a retry (given-up ones excluded)."""
        with self._lock:
            return [e.recording_id for e in self._entries.values() if not e.gave_up]

    def progress(self) -> dict[str, Any]:
        """The table for ``status.json``: pending and given-up merges, with their errors."""
        now = self._monotonic()
        with self._lock:
            entries = [
                {
                    "recording_id": e.recording_id,
                    "failures": e.failures,
                    "attempts": e.attempts,
                    "last_error": e.last_error,
                    "space_error": e.space_failure,
                    "gave_up": e.gave_up,
                    "next_retry_in_s": None if e.gave_up else round(max(0.0, e.next_at - now), 1),
                }
                for e in self._entries.values()
            ]
            merged = self._merged
        return {
            "pending": sum(1 for e in entries if not e["gave_up"]),
            "merged": merged,
            "recordings": entries,
        }

    def start(self) -> None:
        """Start the ``merge-retry`` thread."""
        if self._thread is not None:
            raise RuntimeError("MergeRetry already started")
        self._thread = threading.Thread(target=self._run, name=LOOP, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread; a merge in progress is waited for at most ``timeout`` seconds."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.error("merge retry still running %.0f s after stop; left behind", timeout)

    def run_due(self) -> int:
        """Retry every entry that is due now; return how many merged (the thread's step)."""
        merged = 0
        for recording_id in self._due():
            if self._stop.is_set():
                break
            merged += self._attempt(recording_id)
        return merged

    # -- internals ---------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_due()
            except Exception as exc:
                self._health.record_error(LOOP, exc)
                logger.exception("merge retry loop failed; going on")
            self._wake.wait(self._policy.poll_s)
            self._wake.clear()

    def _has_room(self, recording_id: str) -> bool:
        try:
            need = (
                recording_manager.directory_bytes(self._spool_dir / recording_id)
                + self._policy.headroom_bytes
            )
            return self._free_bytes() >= need
        except OSError:
            return False

    def _due(self) -> list[str]:
        now = self._monotonic()
        with self._lock:
            entries = [e for e in self._entries.values() if not e.gave_up]
        due = []
        for entry in entries:
            freed = (
                entry.space_failure
                and not entry.room_at_failure
                and self._has_room(entry.recording_id)
            )
            if now >= entry.next_at or freed:  # due, or space was freed since the failure
                due.append(entry.recording_id)
        return due

    def _attempt(self, recording_id: str) -> int:
        directory = self._spool_dir / recording_id
        if not directory.exists():  # start-up recovery or another merge finished it
            with self._lock:
                self._entries.pop(recording_id, None)
            logger.info("merge retry of %s: its spool directory is gone; dropped", recording_id)
            return 0
        with self._lock:
            entry = self._entries[recording_id]
            entry.attempts += 1
        try:
            path = self._merge(directory, self._output_dir)
        except Exception as exc:
            space = is_space_error(exc)
            room = self._has_room(recording_id)
            with self._lock:
                entry.failures += 1
                entry.last_error = _describe(exc)
                entry.space_failure = space
                entry.room_at_failure = room
                entry.next_at = self._monotonic() + self._policy.delay(entry.failures)
                if not space and entry.attempts >= self._policy.max_attempts:
                    entry.gave_up = True
            if entry.gave_up:
                logger.error(
                    "merge of %s failed %d times (%s); giving up until the next start, "
                    "its spool is kept",
                    recording_id,
                    entry.attempts,
                    entry.last_error,
                )
            else:
                logger.warning(
                    "merge retry of %s failed (%s); next try in %.0f s",
                    recording_id,
                    entry.last_error,
                    self._policy.delay(entry.failures),
                )
            return 0
        with self._lock:
            self._entries.pop(recording_id, None)
            self._merged += 1
        logger.info("merge retry of %s succeeded: %s", recording_id, path)
        if self._on_merged is not None:
            try:
                self._on_merged(path)
            except Exception as exc:
                self._health.record_error(LOOP, exc)
                logger.exception("on_merged callback failed for %s", path)
        return 1
