"""Waiting on a ``queue.Queue`` that its reader may close from another thread."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

POLL_S = 0.1


class Closed(Exception):
    """The reader was closed while waiting."""


class TimedOut(Exception):
    """Nothing arrived within the timeout."""


def get(source: queue.Queue[T], timeout_s: float | None, is_open: Callable[[], bool]) -> T:
    """Return the next item, waiting in short slices so that a close ends the wait.

    Args:
        source: The queue.
        timeout_s: Seconds to wait at most; None waits until an item arrives or a close.
        is_open: Checked between slices; False ends the wait with ``Closed``.

    Raises:
        Closed: ``is_open()`` turned False.
        TimedOut: Nothing arrived within ``timeout_s``.
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        if not is_open():
            raise Closed
        wait = POLL_S if deadline is None else min(POLL_S, deadline - time.monotonic())
        try:
            return source.get(timeout=max(wait, 0.0))
        except queue.Empty:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimedOut from None


def drain(source: queue.Queue[T]) -> int:
    """Discard every item waiting on ``source``; return how many were discarded."""
    discarded = 0
    while True:
        try:
            source.get_nowait()
        except queue.Empty:
            return discarded
        discarded += 1
