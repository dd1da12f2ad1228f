"""``ScreenManager``: what the device's small OLED shows (omgrab 0.1.2's ``omgrab.display``).

Data path: a worker thread renders one 1-bit image per tick and hands it to the writer
(:class:`~omgrab.display.screen_writer.ScreenWriter`, or its twin). Per tick, first match wins:

1. camera preview (``start_preview()``): the newest frame of the preview camera, letterboxed
   to the screen and dithered (Floyd-Steinberg, Pillow); ticks every ``PREVIEW_INTERVAL_S``;
2. the highest-priority pending notification (``show_notification()``, any thread), shown
   for its ``duration_s``;
3. device status from the device status manager's ``get_status_dict()`` (workflow state,
   recording time, battery, free storage);
4. blank, once nothing woke the screen (``wake()``) for ``screen_timeout_s``.

Bounds: notifications wait in a deque of at most ``MAX_NOTIFICATIONS`` (the oldest is
dropped); a preview tick drains the camera to its newest frame. Lifecycle: ``start()`` starts
the worker; ``shutdown()`` stops a preview, stops the worker (joined within
``JOIN_TIMEOUT_S``), shows "Shutting down" and releases the display. Error policy: an error
while rendering or drawing is counted in ``render_errors``, logged and kept in ``last_error``;
the worker carries on at the next tick. ``start_preview()`` raises ``RuntimeError`` when no
source is set or no display is present, and whatever the device's ``preview()`` raises.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import threading
import time
from typing import Any

import numpy as np
import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont
import PIL.ImageOps

from omgrab.cameras import base as camera_base
from omgrab.display import screen_writer

logger = logging.getLogger(__name__)

PREVIEW_INTERVAL_S = 0.1
MAX_NOTIFICATIONS = 16
JOIN_TIMEOUT_S = 3.0


@dataclasses.dataclass
class Notification:
    """A message shown on the screen for a while.

    Attributes:
        message: Text; a newline splits it over two lines.
        duration_s: Seconds on screen.
        priority: Higher first.
        warning: Drawn with a warning mark.
        created_at: ``time.monotonic()`` when made.
    """

    message: str
    duration_s: float = 3.0
    priority: int = 0
    warning: bool = False
    created_at: float = dataclasses.field(default_factory=time.monotonic)


def frame_to_screen(frame: np.ndarray, width: int, height: int) -> PIL.Image.Image:
    """Letterbox an RGB frame onto a ``width`` x ``height`` screen and dither it to 1 bit."""
    gray = PIL.ImageOps.equalize(PIL.Image.fromarray(np.ascontiguousarray(frame)).convert("L"))
    fitted = PIL.ImageOps.pad(gray, (width, height), color=0)
    return fitted.convert("1")  # Pillow dithers (Floyd-Steinberg) when going to mode "1"


class ScreenManager:
    """Renders status, notifications and a camera preview on a small 1-bit screen.

    Args:
        writer: The screen (``ScreenWriter`` or ``ScreenTwin``); a ``ScreenWriter()`` on I2C
            bus 1 when None.
        refresh_interval_s: Seconds between status refreshes.
        screen_timeout_s: Seconds without ``wake()`` after which the screen goes blank.
    """

    def __init__(
        self,
        writer: Any = None,
        refresh_interval_s: float = 1.0,
        screen_timeout_s: float = 60.0,
    ) -> None:
        if refresh_interval_s <= 0 or screen_timeout_s <= 0:
            raise ValueError("refresh_interval_s and screen_timeout_s must be > 0")
        self._writer = writer if writer is not None else screen_writer.ScreenWriter()
        self._refresh_s = refresh_interval_s
        self._timeout_s = screen_timeout_s
        self._font = PIL.ImageFont.load_default()
        self._lock = threading.Lock()
        self._notifications: collections.deque[Notification] = collections.deque(
            maxlen=MAX_NOTIFICATIONS
        )
        self._showing: Notification | None = None
        self._status_source: Any = None
        self._capture_device: Any = None
        self._preview_camera: camera_base.Camera | None = None
        self._preview_active = False
        self._preview_stack: contextlib.ExitStack | None = None
        self._last_activity = time.monotonic()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self.render_errors = 0
        self.last_error: str | None = None
        self.frames_rendered = 0

    # -- configuration ---------------------------------------------------------------------

    def set_preview_source(self, capture_device: Any, preview_camera: camera_base.Camera) -> None:
        """Set the device whose ``preview()`` runs the preview and the camera to read."""
        self._capture_device = capture_device
        self._preview_camera = preview_camera

    def set_device_status_manager(self, device_status_manager: Any) -> None:
        """Set where the status screen reads from (``get_status_dict()``)."""
        self._status_source = device_status_manager

    @property
    def display_available(self) -> bool:
        """Whether a screen is present."""
        return bool(self._writer.available)

    @property
    def preview_active(self) -> bool:
        """Whether the camera preview is on."""
        return self._preview_active

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker (idempotent)."""
        if self._worker is not None:
            return
        self._stop.clear()
        self._worker = threading.Thread(target=self._run, name="screen-manager", daemon=True)
        self._worker.start()

    def shutdown(self) -> None:
        """Stop any preview and the worker, show "Shutting down", release the screen."""
        if self._preview_active:
            self.stop_preview()
        self._stop.set()
        self._wake.set()
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.join(JOIN_TIMEOUT_S)
            if worker.is_alive():
                logger.error("screen manager worker still running after %.1f s", JOIN_TIMEOUT_S)
        try:
            self._writer.display(self._text_screen(["Shutting", "down..."]))
        except Exception as exc:
            logger.debug("could not show the shutdown screen: %s", exc)
        self._writer.cleanup()

    # -- preview, wake, notifications ------------------------------------------------------

    def start_preview(self) -> None:
        """Enter the device's ``preview()`` and show the preview camera's frames.

        Raises:
            RuntimeError: No preview source set, or no screen present.
        """
        if self._capture_device is None or self._preview_camera is None:
            raise RuntimeError("Preview source not set (call set_preview_source first)")
        if not self._writer.available:
            raise RuntimeError("Display hardware not available")
        stack = contextlib.ExitStack()
        stack.enter_context(self._capture_device.preview())
        self._preview_stack = stack
        self._preview_active = True
        self.wake()

    def stop_preview(self) -> None:
        """Leave the device's preview and return to the status screen (idempotent)."""
        self._preview_active = False
        stack, self._preview_stack = self._preview_stack, None
        if stack is not None:
            stack.close()
        self.wake()

    def wake(self) -> None:
        """Turn the screen on (or keep it on) and redraw now; callable from any thread."""
        self._last_activity = time.monotonic()
        self._wake.set()

    def show_notification(
        self, message: str, duration_s: float = 3.0, priority: int = 0, warning: bool = False
    ) -> None:
        """Queue ``message`` for ``duration_s`` seconds (highest ``priority`` first)."""
        with self._lock:
            self._notifications.append(Notification(message, duration_s, priority, warning))
        self.wake()

    # -- rendering -------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._writer.display(self._render())
                self.frames_rendered += 1
            except Exception as exc:
                self.render_errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.exception("screen manager: rendering failed")
            interval = PREVIEW_INTERVAL_S if self._preview_active else self._refresh_s
            self._wake.wait(interval)
            self._wake.clear()

    def _render(self) -> PIL.Image.Image:
        if self._preview_active:
            return self._render_preview_frame()
        notification = self._current_notification()
        if notification is not None:
            lines = notification.message.split("\n")
            return self._text_screen(
                ["(!) " + lines[0], *lines[1:]] if notification.warning else lines
            )
        if time.monotonic() - self._last_activity > self._timeout_s:
            return self._blank()
        return self._text_screen(self._status_lines())

    def _current_notification(self) -> Notification | None:
        now = time.monotonic()
        with self._lock:
            showing = self._showing
            if showing is not None and now - showing.created_at < showing.duration_s:
                return showing
            self._showing = None
            if not self._notifications:
                return None
            chosen = max(self._notifications, key=lambda n: n.priority)
            self._notifications.remove(chosen)
            chosen.created_at = now  # its time on screen starts now
            self._showing = chosen
            return chosen

    def _render_preview_frame(self) -> PIL.Image.Image:
        """The newest frame of the preview camera as a screen image (blank when none)."""
        camera = self._preview_camera
        if camera is None:
            return self._blank()
        latest = None
        try:
            latest = camera.get_next_frame(timeout_s=PREVIEW_INTERVAL_S)
            while True:  # drain to the newest frame waiting
                latest = camera.get_next_frame(timeout_s=0)
        except camera_base.FrameUnavailableError:
            pass
        if latest is None:
            return self._blank()
        return frame_to_screen(latest[0], self._writer.width, self._writer.height)

    def _status_lines(self) -> list[str]:
        source = self._status_source
        if source is None:
            return ["omgrab"]
        status = source.get_status_dict()
        lines = [str(status.get("state_machine_state", "unknown")).upper()]
        recording = status.get("recording") or {}
        if recording.get("is_recording"):
            lines.append(f"REC {recording.get('duration_seconds') or 0:.0f}s")
        battery = status.get("battery") or {}
        if battery.get("percent") is not None:
            lines.append(f"Battery {battery['percent']:.0f}%")
        storage = status.get("storage") or {}
        if storage.get("total_bytes"):
            free = 100.0 * (1 - storage.get("used_bytes", 0) / storage["total_bytes"])
            lines.append(f"Free {free:.0f}%")
        return lines

    def _blank(self) -> PIL.Image.Image:
        return PIL.Image.new("1", (self._writer.width, self._writer.height), 0)

    def _text_screen(self, lines: list[str]) -> PIL.Image.Image:
        image = self._blank()
        draw = PIL.ImageDraw.Draw(image)
        line_h = max(1, self._writer.height // max(4, len(lines)))
        for i, line in enumerate(lines):
            draw.text((2, 1 + i * line_h), line, fill=1, font=self._font)
        return image
