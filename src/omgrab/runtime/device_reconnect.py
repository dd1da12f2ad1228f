"""Reopen disconnected capture devices with backoff, within a running recording.

A pulled cable or a USB reset should cost a gap, not the recording. While a recording runs, the
manager's health thread calls :func:`bridge`, which runs :func:`reconnect` for the devices it
finds disconnected and records the interruption in the session; the capture threads keep
running (their reads fail, briefly waiting between tries) and the writer keeps its chunks open.

Data path: none; this module only closes and opens devices. Each attempt, for every device
that is not back yet:

1. a device that reports ``connected`` and ``ready`` again by itself (the simulated device
   after its disconnect fault ends) is back;
2. otherwise it is closed and opened again (a real OAK-D's handle is dead after a disconnect);
   the reopen counts when the device then reports ready within ``ready_timeout_s``.

Bounds: attempts are spaced ``initial_backoff_s`` doubling up to ``max_backoff_s``; the whole
call returns within about ``timeout_s`` plus one open/ready wait. ``stop`` (set when the recording
is stopped for another reason) ends it early. Errors of ``close``/``open`` are counted, logged
and returned in the result, never raised: the caller decides (the manager stops the recording
with ``device_disconnected`` when :func:`bridge` reports devices still away). The health thread
is busy while it reconnects, so its other checks (stall, free space) pause for at most the
window plus one ready wait.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from omgrab import clock as clock_mod
from omgrab.devices import base as device_base
from omgrab.recording import stop_reason

if TYPE_CHECKING:
    from omgrab.runtime import recording_session

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class ReconnectResult:
    """Outcome of one :func:`reconnect` call.

    Attributes:
        reconnected: Every device is connected and ready again.
        attempts: Reopen attempts made (over all devices).
        errors: ``close``/``open`` failures, oldest first (``"label: Type: message"``).
        elapsed_s: Time the call took.
        stopped: ``stop`` was set before the devices came back.
    """

    reconnected: bool
    attempts: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)
    elapsed_s: float = 0.0
    stopped: bool = False


def _close_quietly(device: device_base.CaptureDevice) -> None:
    try:
        device.__exit__(None, None, None)
    except Exception:
        logger.exception("device %s: closing after a stopped reconnect failed", device.label)


def _is_back(device: device_base.CaptureDevice) -> bool:
    try:
        return bool(device.connected and device.ready)
    except Exception:
        logger.exception("device %s: health check failed during reconnect", device.label)
        return False


def reconnect(
    devices: Sequence[device_base.CaptureDevice],
    *,
    timeout_s: float,
    stop: threading.Event,
    initial_backoff_s: float = 0.1,
    max_backoff_s: float = 1.0,
    ready_timeout_s: float = 2.0,
    monotonic: Callable[[], float] = time.monotonic,
) -> ReconnectResult:
    """Bring ``devices`` back within ``timeout_s``, reopening them with exponential backoff.

    Args:
        devices: Devices found disconnected.
        timeout_s: The reconnect window; after it the devices are given up.
        stop: Ends the attempts early (the recording is being stopped).
        initial_backoff_s: Wait before the first attempt; doubles after each attempt.
        max_backoff_s: Longest wait between attempts.
        ready_timeout_s: Longest wait for a reopened device to report ready.
        monotonic: Clock (injectable for tests).

    Returns:
        What happened; ``reconnected`` False when the window passed or ``stop`` was set.

    Raises:
        ValueError: For a window or backoff that is not > 0.
    """
    for name, value in (
        ("timeout_s", timeout_s),
        ("initial_backoff_s", initial_backoff_s),
        ("max_backoff_s", max_backoff_s),
    ):
        if not value > 0:
            raise ValueError(f"reconnect {name} must be > 0, got {value!r}")
    started = monotonic()
    deadline = started + timeout_s
    result = ReconnectResult(False)
    delay = initial_backoff_s
    pending = list(devices)
    while True:
        pending = [device for device in pending if not _is_back(device)]
        if not pending:
            result.reconnected = True
            break
        remaining = deadline - monotonic()
        if remaining <= 0:
            break
        if stop.wait(min(delay, remaining)):
            result.stopped = True
            break
        delay = min(delay * 2, max_backoff_s)
        if monotonic() >= deadline:
            continue  # the window closed while waiting: no reopen past it
        for device in pending:
            if _is_back(device):
                continue
            result.attempts += 1
            try:
                device.__exit__(None, None, None)
                device.__enter__()
            except Exception as exc:
                message = f"{device.label}: {type(exc).__name__}: {exc}"
                result.errors.append(message)
                logger.info("reopening device failed (will retry): %s", message)
                continue
            if stop.is_set():
                # The recording stopped while we reopened: its stop may already have closed the
                # devices, so do not leave this one open behind it.
                _close_quietly(device)
                continue
            wait = max(0.0, min(ready_timeout_s, deadline - monotonic()))
            if device.wait_until_ready(wait):
                logger.info("device %s reopened after %d attempt(s)", device.label, result.attempts)
    result.elapsed_s = monotonic() - started
    return result


def bridge(
    session: recording_session.RecordingSession,
    devices: Sequence[device_base.CaptureDevice],
    *,
    timeout_s: float,
    stop: threading.Event,
    clock: clock_mod.DeviceClock,
) -> list[str]:
    """Reconnect the disconnected ``devices`` within ``session``; return the labels still away.

    Records the interruption in the session (``note_interruption``: the gaps it covers get the
    cause ``device_disconnected``). ``timeout_s`` 0 disables reconnecting. An empty list means
    the recording can go on: every device is back, none was away, or ``stop`` was set (the
    recording is being stopped anyway).
    """
    away = [device for device in devices if not device.connected]
    if not away:
        return []
    labels = [device.label for device in away]
    logger.warning(
        "recording %s: device(s) %s disconnected; reopening for up to %.1f s",
        session.recording_id,
        labels,
        timeout_s,
    )
    began = clock.now()
    if timeout_s <= 0:  # reconnecting disabled
        result = ReconnectResult(False)
    else:
        result = reconnect(away, timeout_s=timeout_s, stop=stop)
    detail = f"device(s) {labels}: {result.attempts} reopen attempt(s)"
    if result.errors:
        detail += f", last error {result.errors[-1]}"
    session.note_interruption(
        stop_reason.StopReason.DEVICE_DISCONNECTED.value,
        began,
        clock.now() if result.reconnected else None,
        detail,
    )
    if result.reconnected or result.stopped:
        outcome = "reconnected" if result.reconnected else "recording stopped meanwhile"
        logger.warning("recording %s: %s; %s", session.recording_id, detail, outcome)
        return []
    return [device.label for device in away if not device.connected] or labels
