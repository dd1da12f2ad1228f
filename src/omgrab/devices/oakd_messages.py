"""Host-side conversion of depthai messages into omgrab frames and IMU items.

Kept apart from the pipeline code so it can be tested with small stand-ins for depthai's
``ImgFrame`` and ``IMUData`` without the library or a device.

Timestamps: depthai 3 stamps messages with ``getTimestamp()``, a ``timedelta`` on the host's
``std::chrono::steady_clock`` (already synchronised from the device clock), which on Linux is
``CLOCK_MONOTONIC``, the same clock as ``time.monotonic()``. Those seconds are mapped through
``DeviceClock.to_datetime``, so OAK-D streams share the one clock with every other stream.
"""

from __future__ import annotations

import datetime
from typing import Any

import cv2
import numpy as np
import orjson

from omgrab import clock as clock_mod
from omgrab.cameras import base as camera_base
from omgrab.sensors import base as sensor_base


def message_time(message: Any, clock: clock_mod.DeviceClock) -> datetime.datetime:
    """Return a depthai message's host-synced timestamp as a device-clock datetime."""
    delta = message.getTimestamp()
    if not isinstance(delta, datetime.timedelta):
        raise TypeError(f"expected getTimestamp() to return a timedelta, got {type(delta)}")
    return clock.to_datetime(delta.total_seconds())


def rgb_frame(message: Any, clock: clock_mod.DeviceClock) -> camera_base.Frame:
    """Convert a colour ``ImgFrame`` (``getCvFrame()`` gives BGR) to an RGB frame.

    Raises:
        ValueError: When the frame is not ``HxWx3`` uint8.
    """
    bgr = np.asarray(message.getCvFrame())
    if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 colour frame, got {bgr.shape} {bgr.dtype}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), message_time(message, clock)


def depth_frame(message: Any, clock: clock_mod.DeviceClock) -> camera_base.Frame:
    """Convert a depth ``ImgFrame`` (``getFrame()`` gives uint16 millimetres) to a frame.

    Raises:
        ValueError: When the frame is not ``HxW`` uint16.
    """
    depth = np.asarray(message.getFrame())
    if depth.ndim != 2 or depth.dtype != np.uint16:
        raise ValueError(f"expected an HxW uint16 depth frame, got {depth.shape} {depth.dtype}")
    return np.ascontiguousarray(depth), message_time(message, clock)


def _vector(report: Any) -> list[float]:
    return [round(float(report.x), 5), round(float(report.y), 5), round(float(report.z), 5)]


def imu_item(
    message: Any, clock: clock_mod.DeviceClock, seq: int, rate_hz: float
) -> sensor_base.Item | None:
    """Convert an ``IMUData`` message (a batch of packets) to an IMU item.

    The payload has the schema of ``omgrab.sensors.synthetic_imu``: ``t0`` is the time of the
    first packet's accelerometer report and each reading's ``dt_ms`` its offset from it.

    Args:
        message: ``IMUData`` with ``packets``, each with ``acceleroMeter`` and ``gyroscope``
            reports (``x``, ``y``, ``z`` and ``getTimestamp()``).
        clock: The device clock.
        seq: Batch number to store in the item.
        rate_hz: Nominal rate to store in the item.

    Returns:
        ``(payload, timestamp)``, or None when the message holds no packets.
    """
    packets = list(message.packets)
    if not packets:
        return None
    t0 = packets[0].acceleroMeter.getTimestamp().total_seconds()
    readings = []
    for packet in packets:
        accel = packet.acceleroMeter
        gyro = packet.gyroscope
        dt_ms = (accel.getTimestamp().total_seconds() - t0) * 1000.0
        readings.append({"dt_ms": round(dt_ms, 3), "accel": _vector(accel), "gyro": _vector(gyro)})
    timestamp = clock.to_datetime(t0)
    payload = {"seq": seq, "t0": timestamp.isoformat(), "rate_hz": rate_hz, "readings": readings}
    return orjson.dumps(payload), timestamp
