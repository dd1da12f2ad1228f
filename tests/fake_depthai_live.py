"""Makes ``tests.fake_depthai`` produce frames in real time, for scripts run against it.

``install()`` patches the fake (in the calling process only) so every host output queue made
by a started pipeline delivers messages at its stream's rate, like a real OAK-D: a colour
``ImgFrame`` (BGR, the requested size), a uint16 depth ``ImgFrame`` (the StereoDepth output
size) or an ``IMUData`` batch, stamped with ``time.monotonic()`` seconds as depthai 3 stamps
them. A queue read less often than the stream's rate keeps only its newest ``maxSize``
messages (non-blocking depthai queues drop the oldest). Nothing is produced before
``Pipeline.start()``. Used by ``tests/test_compat_quickstart.py``'s OAK-D launcher, which
puts the fake in ``sys.modules['depthai']``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tests import fake_depthai as fake

_PALETTE = 8  # distinct frames cycled through (cheap to produce, not all identical)


class LiveQueue(fake.MessageQueue):
    """A host queue producing one message per period once its pipeline runs."""

    def __init__(
        self,
        pipeline: fake.Pipeline,
        maxSize: int,
        blocking: bool,
        fps: float,
        make: Callable[[float, int], Any],
    ) -> None:
        super().__init__(maxSize, blocking)
        self._pipeline = pipeline
        self._period = 1.0 / fps
        self._make = make
        self._next: float | None = None
        self._index = 0

    def tryGet(self) -> Any:
        if not self._pipeline.isRunning():
            return None
        now = time.monotonic()
        if self._next is None:
            self._next = now
        if now < self._next:
            return None
        behind = int((now - self._next) / self._period)
        if behind >= self.max_size:  # the oldest were dropped on the device side
            self._next += (behind - self.max_size + 1) * self._period
            self._index += behind - self.max_size + 1
        message = self._make(self._next, self._index)
        self._next += self._period
        self._index += 1
        return message


def _colour_maker(width: int, height: int) -> Callable[[float, int], Any]:
    x = np.arange(width, dtype=np.uint16)[None, :]
    y = np.arange(height, dtype=np.uint16)[:, None]
    frames = []
    for i in range(_PALETTE):
        bgr = np.empty((height, width, 3), np.uint8)
        bgr[..., 0] = (x + 16 * i) % 256
        bgr[..., 1] = (y + 8 * i) % 256
        bgr[..., 2] = (x + y) % 256
        frames.append(bgr)
    return lambda seconds, index: fake.ImgFrame(frames[index % _PALETTE], seconds)


def _depth_maker(width: int, height: int) -> Callable[[float, int], Any]:
    x = np.arange(width, dtype=np.uint32)[None, :]
    y = np.arange(height, dtype=np.uint32)[:, None]
    frames = [((x * 97 + y * 31 + i * 500) % 6000).astype(np.uint16) for i in range(_PALETTE)]
    return lambda seconds, index: fake.ImgFrame(frames[index % _PALETTE], seconds)


def _imu_maker() -> Callable[[float, int], Any]:
    def make(seconds: float, index: int) -> Any:
        accel = fake.IMUReportAccelerometer(0.01 * (index % 10), -9.81, 0.2, seconds)
        gyro = fake.IMUReportGyroscope(0.0, 0.001, -0.01, seconds)
        return fake.IMUData([fake.IMUPacket(accel, gyro)])

    return make


def _find(pipeline: fake.Pipeline, kind: type) -> Any:
    return next(node for node in pipeline.nodes if isinstance(node, kind))


def _queue_for(output: fake.Node.Output, maxSize: int, blocking: bool) -> fake.MessageQueue:
    node = output.node
    pipeline = node.pipeline
    if isinstance(node, fake._Camera):
        (_name, (size,), options) = next(c for c in node.calls if c[0] == "requestOutput")
        return LiveQueue(pipeline, maxSize, blocking, options["fps"], _colour_maker(*size))
    if isinstance(node, fake._StereoDepth):
        (_name, (width, height), _options) = next(c for c in node.calls if c[0] == "setOutputSize")
        fps = node.left_in.node.calls[0][2]["fps"]
        return LiveQueue(pipeline, maxSize, blocking, fps, _depth_maker(width, height))
    if isinstance(node, fake._IMU):
        (_name, (_sensors, rate), _options) = next(
            c for c in node.calls if c[0] == "enableIMUSensor"
        )
        return LiveQueue(pipeline, maxSize, blocking, float(rate) / 10, _imu_maker())
    raise AssertionError(f"no live stream for {output.name}")


def create_output_queue(
    self: fake.Node.Output, maxSize: int = 16, blocking: bool = False
) -> fake.MessageQueue:
    """``Node.Output.createOutputQueue`` of the live fake (a :class:`LiveQueue`)."""
    self.queue = _queue_for(self, maxSize, blocking)
    return self.queue


def install() -> None:
    """Patch ``tests.fake_depthai`` for good (a script's process; tests use monkeypatch)."""
    fake.Node.Output.createOutputQueue = create_output_queue  # type: ignore[method-assign]
    fake.reset()
