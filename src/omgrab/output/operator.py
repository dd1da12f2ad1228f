"""Operator delivery: the YOLO output schema and pluggable sinks, each on its own thread.

``OperatorDelivery.publish`` never blocks: every sink has a ``SinkRunner`` - a thread and a
bounded queue that drops the *oldest* waiting report when full (the operator wants the latest
picture) and counts it. A sink that raises is logged and counted; a slow or dead sink only
fills its own queue.

Built-in sinks: ``CallbackSink`` (in-process callback), ``QueueSink`` (a ``queue.Queue``
consumers poll), ``omgrab.output.mqtt_sink.MqttSink`` and
``omgrab.output.ndjson_hub.NdjsonHub`` (newline-JSON stream for the web dashboard).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import itertools
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import orjson

from omgrab.output import types

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class OperatorReport:
    """One delivery to the operator: a batch of detections in the YOLO output schema.

    Attributes:
        seq: Sequence number within the session (starts at 1).
        timestamp: ISO-8601 UTC time the report was made.
        detections: One dict per detection with ``centerX``, ``centerY``, ``width``, ``height``,
            ``classNum``, ``label``, ``confidence`` (and ``trackId`` when tracked).
        frame_id: Frame the detections came from, if they all share one.
    """

    seq: int
    timestamp: str
    detections: list[dict[str, Any]]
    frame_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON object sent to the operator."""
        return {
            "seq": self.seq,
            "timestamp": self.timestamp,
            "frame_id": self.frame_id,
            "detections": self.detections,
        }

    @property
    def payload(self) -> bytes:
        """The report as compact JSON (no trailing newline)."""
        return orjson.dumps(self.to_dict())


class OperatorSink(Protocol):
    """Where operator reports go. ``deliver`` runs on the sink's own thread."""

    name: str

    def deliver(self, report: OperatorReport) -> None:
        """Deliver one report (may block; only this sink's thread waits)."""
        ...

    def close(self) -> None:
        """Release resources; called once when delivery stops."""
        ...


def to_yolo(item: types.Detection | Mapping[str, Any]) -> dict[str, Any]:
    """Convert a ``Detection`` or a detection dict to the YOLO output schema.

    A dict may already be in the YOLO schema (``centerX`` ...), or carry ``bbox``
    ``[x_min, y_min, x_max, y_max]`` with ``class_id``, ``label`` and ``confidence`` as in a
    ``DetectionLogEntry``.

    Raises:
        InvalidEntryError: The item is neither, or a field is invalid.
    """
    if isinstance(item, types.Detection):
        return item.to_yolo()
    if not isinstance(item, Mapping):
        raise types.InvalidEntryError(
            f"operator detections must be Detection or dict, got {type(item).__name__}"
        )
    try:
        if "centerX" in item:
            out = {k: item[k] for k in _YOLO_KEYS}
            cx, cy, w, h = out["centerX"], out["centerY"], out["width"], out["height"]
            types.validate_detection_fields(
                [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2],
                out["classNum"],
                out["label"],
                out["confidence"],
            )
            if item.get("trackId") is not None:
                out["trackId"] = item["trackId"]
            return out
        det = types.Detection(
            bbox=tuple(item["bbox"]),
            class_id=item["class_id"],
            label=item["label"],
            confidence=item["confidence"],
            track_id=item.get("track_id"),
        )
    except KeyError as exc:
        raise types.InvalidEntryError(f"operator detection is missing field {exc}") from None
    except (TypeError, ValueError) as exc:
        raise types.InvalidEntryError(f"invalid operator detection: {exc}") from None
    return det.to_yolo()


_YOLO_KEYS = ("centerX", "centerY", "width", "height", "classNum", "label", "confidence")


class SinkRunner:
    """Runs one sink on its own thread behind a bounded, drop-oldest queue.

    Args:
        sink: The sink.
        maxsize: Reports that may wait; the oldest is dropped (and counted) beyond it.
    """

    def __init__(self, sink: OperatorSink, maxsize: int = 256) -> None:
        self.sink = sink
        self._maxsize = maxsize
        self._items: collections.deque[OperatorReport] = collections.deque()
        self._cond = threading.Condition()  # protects _items, _closing and the counters
        self._closing = False
        self._busy = False
        self.delivered = 0
        self.dropped = 0
        self.errors = 0
        self.last_error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"omgrab-sink-{sink.name}", daemon=True
        )
        self._thread.start()

    def put(self, report: OperatorReport) -> None:
        """Queue a report; never blocks."""
        with self._cond:
            if self._closing:
                return
            if len(self._items) >= self._maxsize:
                self._items.popleft()
                self.dropped += 1
            self._items.append(report)
            self._cond.notify()

    def wait_idle(self, timeout: float) -> bool:
        """Block until the queue is empty and no delivery is running; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._items and not self._busy, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (up to ``timeout``), then close the sink."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            with self._cond:
                left = len(self._items)
                self._items.clear()
                self.dropped += left
            logger.error(
                "Operator sink %s did not finish within %s s; %d reports dropped",
                self.sink.name,
                timeout,
                left,
            )
        try:
            self.sink.close()
        except Exception:
            logger.exception("Operator sink %s failed to close", self.sink.name)

    def stats(self) -> dict[str, int]:
        """Counters: delivered, dropped, errors, queued."""
        with self._cond:
            return {
                "delivered": self.delivered,
                "dropped": self.dropped,
                "errors": self.errors,
                "queued": len(self._items),
            }

    def _run(self) -> None:
        while True:
            with self._cond:
                self._busy = False
                self._cond.notify_all()
                while not self._items and not self._closing:
                    self._cond.wait()
                if not self._items:
                    return
                report = self._items.popleft()
                self._busy = True
            try:
                self.sink.deliver(report)
            except Exception as exc:
                with self._cond:
                    self.errors += 1
                    self.last_error = exc
                    first = self.errors == 1
                if first:
                    logger.exception(
                        "Operator sink %s failed to deliver report %d", self.sink.name, report.seq
                    )
                else:
                    logger.error(
                        "Operator sink %s failed to deliver report %d: %s (%d errors)",
                        self.sink.name,
                        report.seq,
                        exc,
                        self.errors,
                    )
            else:
                with self._cond:
                    self.delivered += 1


class CallbackSink:
    """Calls ``callback(report)`` for each report (on the sink's own thread).

    Args:
        callback: Receives each ``OperatorReport``.
        name: Sink name for logs and stats.
    """

    def __init__(self, callback: Callable[[OperatorReport], None], name: str = "callback") -> None:
        self.name = name
        self._callback = callback

    def deliver(self, report: OperatorReport) -> None:
        """Call the callback."""
        self._callback(report)

    def close(self) -> None:
        """Nothing to release."""


class QueueSink:
    """Puts each report on ``self.queue`` (a bounded ``queue.Queue``; oldest dropped when full).

    Args:
        maxsize: Queue capacity.
        name: Sink name for logs and stats.
    """

    def __init__(self, maxsize: int = 256, name: str = "queue") -> None:
        self.name = name
        self.queue: queue.Queue[OperatorReport] = queue.Queue(maxsize=maxsize)
        self.dropped = 0

    def deliver(self, report: OperatorReport) -> None:
        """Enqueue, discarding the oldest report if the consumer is behind."""
        while True:
            try:
                self.queue.put_nowait(report)
                return
            except queue.Full:
                try:
                    self.queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def close(self) -> None:
        """Nothing to release."""


class OperatorDelivery:
    """Formats detections into reports and fans them out to the sinks.

    Args:
        sinks: Initial sinks.
        queue_size: Per-sink queue bound.
    """

    def __init__(self, sinks: Iterable[OperatorSink] = (), queue_size: int = 256) -> None:
        self._queue_size = queue_size
        self._lock = threading.Lock()  # protects _runners
        self._runners: list[SinkRunner] = []
        self._seq = itertools.count(1)
        self.reports = 0
        for sink in sinks:
            self.add_sink(sink)

    def add_sink(self, sink: OperatorSink, queue_size: int | None = None) -> None:
        """Start delivering to ``sink`` (``queue_size`` overrides the default bound)."""
        runner = SinkRunner(sink, queue_size if queue_size is not None else self._queue_size)
        with self._lock:
            self._runners.append(runner)

    def remove_sink(self, sink: OperatorSink, timeout: float = 5.0) -> None:
        """Stop delivering to ``sink`` and close it."""
        with self._lock:
            runners = [r for r in self._runners if r.sink is sink]
            self._runners = [r for r in self._runners if r.sink is not sink]
        for r in runners:
            r.close(timeout)

    def make_report(
        self, detections: Iterable[types.Detection | Mapping[str, Any]]
    ) -> OperatorReport:
        """Validate and format detections into the next report (does not send it)."""
        if isinstance(detections, types.Detection | Mapping | str | bytes):
            raise types.InvalidEntryError(
                "report_to_operator expects a list of detections, "
                f"got a single {type(detections).__name__}"
            )
        items = list(detections)
        formatted = [to_yolo(d) for d in items]
        frame_id = None
        try:
            frame_ids = {
                d.frame_id if isinstance(d, types.Detection) else d.get("frame_id") for d in items
            }
            if len(frame_ids) == 1:
                candidate = frame_ids.pop()
                frame_id = candidate if isinstance(candidate, int) else None
        except TypeError:  # an unhashable frame_id: leave the report's frame_id empty
            frame_id = None
        return OperatorReport(
            seq=next(self._seq),
            timestamp=datetime.datetime.now(datetime.UTC).isoformat(),
            detections=formatted,
            frame_id=frame_id,
        )

    def publish(self, report: OperatorReport) -> None:
        """Hand ``report`` to every sink's queue; never blocks."""
        with self._lock:
            runners = list(self._runners)
            self.reports += 1
        for r in runners:
            r.put(report)

    def wait_idle(self, timeout: float) -> bool:
        """Block until every sink has delivered what was queued; False on timeout."""
        with self._lock:
            runners = list(self._runners)
        return all(r.wait_idle(timeout) for r in runners)

    def stats(self) -> dict[str, dict[str, int]]:
        """Per-sink counters, keyed by sink name."""
        with self._lock:
            runners = list(self._runners)
        return {r.sink.name: r.stats() for r in runners}

    @property
    def errors(self) -> int:
        """Delivery errors over all sinks."""
        with self._lock:
            runners = list(self._runners)
        return sum(r.errors for r in runners)

    def close(self, timeout: float = 5.0) -> None:
        """Drain and close every sink."""
        with self._lock:
            runners, self._runners = self._runners, []
        for r in runners:
            r.close(timeout)
