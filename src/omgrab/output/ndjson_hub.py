r"""A bounded broadcast hub streaming operator reports as newline-delimited JSON.

The hub is an operator sink: every delivered report becomes one line (compact JSON + ``\\n``)
pushed to each subscriber. Subscribers are asyncio consumers (the web dashboard): each has a
bounded queue that drops its *oldest* line when the client reads too slowly, so a slow browser
never holds up delivery or other clients. ``stream()`` is an async generator a Starlette
``StreamingResponse`` can serve with media type ``application/x-ndjson``::

    hub = NdjsonHub()
    manager.add_operator_sink(hub)
    app = Starlette(routes=[Route("/detections", hub.endpoint)])
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

from omgrab.output import operator

logger = logging.getLogger(__name__)

MEDIA_TYPE = "application/x-ndjson"


class Subscription:
    """One consumer's bounded queue of lines, fed from any thread.

    Args:
        loop: The event loop the consumer awaits on.
        maxsize: Lines buffered; the oldest is dropped beyond it.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0
        self.closed = False

    def push(self, line: bytes | None) -> bool:
        """Schedule ``line`` (None ends the stream); False if the consumer's loop is gone."""
        try:
            self._loop.call_soon_threadsafe(self._put, line)
        except RuntimeError:  # loop closed
            self.closed = True
            return False
        return True

    def _put(self, line: bytes | None) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(line)

    async def get(self) -> bytes | None:
        """Wait for the next line (None when the hub closed)."""
        return await self._queue.get()


class NdjsonHub:
    """Broadcasts operator reports to any number of streaming HTTP clients.

    Args:
        max_subscribers: Concurrent streams allowed; more raise ``RuntimeError``.
        queue_size: Lines buffered per subscriber.
        name: Sink name for logs and stats.
    """

    media_type = MEDIA_TYPE

    def __init__(
        self, max_subscribers: int = 16, queue_size: int = 64, name: str = "ndjson"
    ) -> None:
        self.name = name
        self._max = max_subscribers
        self._queue_size = queue_size
        self._lock = threading.Lock()  # protects _subs and _closed
        self._subs: list[Subscription] = []
        self._closed = False
        self.lines_published = 0

    @property
    def subscriber_count(self) -> int:
        """Streams currently open."""
        with self._lock:
            return len(self._subs)

    @property
    def dropped(self) -> int:
        """Lines dropped for slow subscribers (current subscribers only)."""
        with self._lock:
            return sum(s.dropped for s in self._subs)

    def subscribe(self) -> Subscription:
        """Register a subscriber on the running event loop (call from a coroutine)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._closed:
                raise RuntimeError("NdjsonHub is closed")
            if len(self._subs) >= self._max:
                raise RuntimeError(f"NdjsonHub already has {self._max} subscribers")
            sub = Subscription(loop, self._queue_size)
            self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Remove a subscriber (unknown ones are ignored)."""
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def publish_line(self, line: bytes) -> None:
        """Send one already-terminated line to every subscriber (thread-safe, non-blocking)."""
        with self._lock:
            subs = list(self._subs)
            self.lines_published += 1
        for sub in subs:
            if not sub.push(line):
                self.unsubscribe(sub)

    def deliver(self, report: operator.OperatorReport) -> None:
        """Operator-sink entry point: broadcast the report as one NDJSON line."""
        self.publish_line(report.payload + b"\n")

    async def stream(self) -> AsyncIterator[bytes]:
        """Yield NDJSON lines as they are published until the hub closes or the client leaves."""
        sub = self.subscribe()
        try:
            while True:
                line = await sub.get()
                if line is None:
                    return
                yield line
        finally:
            self.unsubscribe(sub)

    async def endpoint(self, request: Any) -> Any:
        """A Starlette endpoint streaming the reports as ``application/x-ndjson``."""
        from starlette import responses  # imported lazily: only the web app needs starlette

        return responses.StreamingResponse(self.stream(), media_type=MEDIA_TYPE)

    def close(self) -> None:
        """End every open stream."""
        with self._lock:
            self._closed = True
            subs, self._subs = self._subs, []
        for sub in subs:
            sub.push(None)
