"""The encoder queue a ``ChunkedWriter`` hands out before ``start()`` (omgrab 0.1.2 usage).

The published quick start takes ``writer.get_encoder_queue(name)`` first and enters
``with writer:`` afterwards, then keeps putting into that same queue object. This module's
:class:`PendingQueue` makes that work with this package's shared-memory stream queues, which
only exist once the writer's worker processes run.

Data path: before ``start()`` a ``put`` lands in a plain bounded ``queue.Queue`` (at most the
stream's slot count; a full queue raises ``queue.Full`` as in 0.1.2). ``start()`` calls
:meth:`PendingQueue.attach`, which moves those items, in order, into the stream's
:class:`~omgrab.recording.stream_queue.StreamQueue`; every later ``put`` is forwarded to it, so
drops, invalid items and counters are the writer's (``ChunkedWriter.stats``).

Bounds: at most ``maxsize`` items are held before ``start()``. Lifecycle: owned by the writer,
no thread or file of its own. Error policy: after ``attach`` the stream queue's own policy
applies (it never raises ``queue.Full``; it drops and counts); reading is refused with
``TypeError`` once attached (the worker process consumes the items).
"""

from __future__ import annotations

import datetime
import queue
import threading
from typing import Any

from omgrab.recording import stream_queue


class PendingQueue(queue.Queue):
    """A stream's encoder queue that works before and after ``ChunkedWriter.start()``.

    Args:
        name: Stream name.
        maxsize: How many items it holds before ``start()``.
    """

    def __init__(self, name: str, maxsize: int) -> None:
        super().__init__(maxsize=maxsize)
        self.name = name
        self._attach_lock = threading.Lock()
        self._target: stream_queue.StreamQueue | None = None

    @property
    def target(self) -> stream_queue.StreamQueue | None:
        """The stream queue items are forwarded to, once the writer started."""
        return self._target

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Hand one ``(data, timestamp)`` item to the writer.

        Raises:
            queue.Full: Before ``start()`` only, when ``maxsize`` items already wait.
        """
        with self._attach_lock:
            target = self._target
            if target is None:
                super().put(item, block=False)
                return
        target.put(item, block, timeout)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Take back an item put before ``start()``; refused once the writer runs.

        Raises:
            TypeError: The writer started (its worker process consumes the items).
        """
        if self._target is not None:
            raise TypeError(f"the encoder queue of stream {self.name!r} is write-only")
        return super().get(block, timeout)

    def qsize(self) -> int:
        """Return the number of items waiting (in the writer's ring once started)."""
        target = self._target
        return super().qsize() if target is None else target.qsize()

    def empty(self) -> bool:
        """Return True when no item waits."""
        return self.qsize() == 0

    def full(self) -> bool:
        """Return True when no further item fits without waiting."""
        target = self._target
        return super().full() if target is None else target.full()

    def earliest_timestamp(self) -> datetime.datetime | None:
        """Return the earliest tz-aware timestamp among the items held before ``start()``."""
        with self.mutex:
            stamps = [
                item[1]
                for item in self.queue
                if isinstance(item, tuple)
                and len(item) == 2
                and isinstance(item[1], datetime.datetime)
                and item[1].tzinfo is not None
            ]
        return min(stamps) if stamps else None

    def attach(self, target: stream_queue.StreamQueue) -> None:
        """Move the items held so far into ``target`` (in order) and forward from now on."""
        with self._attach_lock:
            while True:
                try:
                    item = super().get(block=False)
                except queue.Empty:
                    break
                target.put(item)
            self._target = target

    def __getattr__(self, attr: str) -> Any:
        # Counters such as frames_put / frames_dropped live on the stream queue.
        target = self.__dict__.get("_target")
        if target is None or attr.startswith("_"):
            raise AttributeError(attr)
        return getattr(target, attr)
