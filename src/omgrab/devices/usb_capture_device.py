"""Published 0.1.2 import path ``omgrab.devices.usb_capture_device``: one USB camera by port.

:class:`USBCaptureDevice` ``(config, usb_port_path, label, preview_config=None)`` is omgrab
0.1.2's USB device: it wraps one :class:`omgrab.cameras.usb_camera.USBCamera` found by USB
port path, which the recording opens and closes itself (``__enter__``/``__exit__`` only guard
against recording during a preview). This package's multi-camera USB device with its own
lifecycle is :class:`omgrab.devices.usb.USBCaptureDevice` (``omgrab.devices.USBCaptureDevice``).

Preview data path: ``preview()`` opens a second camera at ``preview_config`` and a daemon
thread copies its frames into a queue of ``PREVIEW_QUEUE_SIZE`` frames read by
``get_preview_camera()``; when the queue is full the oldest frame is replaced (a preview wants
the newest). Lifecycle: the thread and the camera live exactly as long as the ``with`` block
(joined within ``PREVIEW_JOIN_TIMEOUT_S``, then the camera is closed). Error policy: a frame
that does not come in time is waited for again; any other error in the thread is counted in
``preview_errors``, logged and kept in ``last_error``, and the thread ends (the preview shows no
more frames).
"""

from __future__ import annotations

import collections.abc
import contextlib
import errno
import logging
import os
import queue
import threading
import types
from typing import Literal

from omgrab.cameras import base as camera_base
from omgrab.cameras import queue_reader_camera, usb_camera, usb_port
from omgrab.devices import capture_device
from omgrab.sensors import base as sensor_base

logger = logging.getLogger(__name__)

PREVIEW_QUEUE_SIZE = 4
PREVIEW_JOIN_TIMEOUT_S = 5.0
_READ_TIMEOUT_S = 0.5
_RETRY_PAUSE_S = 0.05


class USBCaptureDevice:
    """One USB camera identified by its USB port path (omgrab 0.1.2).

    Args:
        config: Camera rate and size.
        usb_port_path: USB port path, e.g. ``'3-2'``.
        label: Device label, e.g. ``'left_wrist'``.
        preview_config: Rate and size of ``preview()``; None: no preview.
    """

    def __init__(
        self,
        config: camera_base.CameraConfig,
        usb_port_path: str,
        label: str,
        preview_config: camera_base.CameraConfig | None = None,
    ) -> None:
        self._config = config
        self._usb_port_path = usb_port_path
        self._label = label
        self._camera = usb_camera.USBCamera(config, usb_port_path=usb_port_path)
        self._preview_config = preview_config
        self._preview_queue: queue.Queue[camera_base.Frame] | None = (
            queue.Queue(PREVIEW_QUEUE_SIZE) if preview_config is not None else None
        )
        self._preview_lock = threading.Lock()
        self._preview_active = False
        self.preview_errors = 0
        self.last_error: str | None = None

    @property
    def label(self) -> str:
        """Device label."""
        return self._label

    @property
    def connected(self) -> bool:
        """True when a video node exists on the USB port and can be opened."""
        path = usb_port.find_video_device_by_usb_port(self._usb_port_path)
        if path is None:
            return False
        try:
            fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        except OSError as exc:
            logger.debug("USB camera %s at %s not openable: %s", self._label, path, exc)
            return exc.errno == errno.EBUSY  # in use by this process's recording: present
        os.close(fd)
        return True

    @property
    def ready(self) -> bool:
        """USB cameras need no warm-up: always True (0.1.2)."""
        return True

    @property
    def device_type(self) -> None:
        """USB cameras have no device type (0.1.2)."""
        return None

    def wait_until_ready(self, timeout: float | None = None) -> bool:
        """Return True at once (0.1.2)."""
        return True

    @property
    def cameras(self) -> dict[str, camera_base.Camera]:
        """The camera as ``'rgb'`` (this package's device contract)."""
        return {"rgb": self._camera}

    @property
    def sensors(self) -> dict[str, sensor_base.Sensor]:
        """No sensors."""
        return {}

    def get_camera(self) -> usb_camera.USBCamera:
        """The recording camera (opened and closed by whoever records from it)."""
        return self._camera

    def get_preview_camera(self) -> queue_reader_camera.QueueReaderCamera:
        """A camera reading the preview queue; it has frames only inside ``preview()``.

        Raises:
            PreviewUnavailableError: No ``preview_config`` was given.
        """
        if self._preview_config is None or self._preview_queue is None:
            raise capture_device.PreviewUnavailableError(
                "Preview is not enabled (preview_config was not provided)"
            )
        return queue_reader_camera.QueueReaderCamera(self._preview_config, self._preview_queue)

    def __enter__(self) -> USBCaptureDevice:
        """Start a recording (the camera itself is opened by the capture thread).

        Raises:
            RuntimeError: A preview is running.
        """
        if self._preview_active:
            raise RuntimeError("Cannot start recording while preview is active.")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> Literal[False]:
        """End a recording; exceptions propagate."""
        return False

    @contextlib.contextmanager
    def preview(self) -> collections.abc.Iterator[USBCaptureDevice]:
        """Run the preview camera and fill the preview queue while the block runs.

        Raises:
            PreviewUnavailableError: No ``preview_config`` was given.
            RuntimeError: A preview is already running.
        """
        if self._preview_config is None or self._preview_queue is None:
            raise capture_device.PreviewUnavailableError(
                f"Preview not enabled for USB camera {self._label}"
            )
        with self._preview_lock:
            if self._preview_active:
                raise RuntimeError(f"Preview already active for USB camera {self._label}")
            self._preview_active = True
        try:
            camera = usb_camera.USBCamera(self._preview_config, usb_port_path=self._usb_port_path)
            camera.setup()
        except BaseException:
            self._preview_active = False
            raise
        stop = threading.Event()
        thread = threading.Thread(
            target=self._preview_loop,
            args=(camera, self._preview_queue, stop),
            name=f"usb-preview-{self._label}",
            daemon=True,
        )
        _drain(self._preview_queue)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(PREVIEW_JOIN_TIMEOUT_S)
            if thread.is_alive():
                logger.error("%s still running after %.1f s", thread.name, PREVIEW_JOIN_TIMEOUT_S)
            camera.close()
            _drain(self._preview_queue)
            self._preview_active = False

    def _preview_loop(
        self,
        camera: usb_camera.USBCamera,
        frames: queue.Queue[camera_base.Frame],
        stop: threading.Event,
    ) -> None:
        while not stop.is_set():
            try:
                frame = camera.get_next_frame(timeout_s=_READ_TIMEOUT_S)
            except camera_base.FrameUnavailableError:
                stop.wait(_RETRY_PAUSE_S)
                continue
            except Exception as exc:
                self.preview_errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.exception("preview of USB camera %s failed", self._label)
                return
            while True:  # keep the newest frames: replace the oldest when full
                try:
                    frames.put_nowait(frame)
                    break
                except queue.Full:
                    with contextlib.suppress(queue.Empty):
                        frames.get_nowait()


def _drain(frames: queue.Queue[camera_base.Frame]) -> None:
    while True:
        try:
            frames.get_nowait()
        except queue.Empty:
            return


__all__ = ["PREVIEW_QUEUE_SIZE", "USBCaptureDevice"]
