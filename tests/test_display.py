"""omgrab.display (0.1.2's OLED screen manager) on the software twin of the SSD1306, with the
OAK-D device's preview pipeline on the live depthai fake as the preview source."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import PIL.Image
import pytest

from omgrab import devices
from omgrab.cameras import CameraConfig
from omgrab.display import ScreenManager, ScreenTwin, screen_manager, screen_writer
from tests import fake_depthai as fake
from tests import fake_depthai_live


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


class Status:
    """A device status manager's ``get_status_dict()`` (the keys the screen reads)."""

    def get_status_dict(self) -> dict[str, Any]:
        return {
            "state_machine_state": "recording",
            "recording": {"is_recording": True, "duration_seconds": 12.4},
            "battery": {"percent": 81.0},
            "storage": {"total_bytes": 100, "used_bytes": 25},
        }


def test_frame_to_screen_letterboxes_and_dithers() -> None:
    wide_white = np.full((100, 640, 3), 255, np.uint8)
    image = screen_manager.frame_to_screen(wide_white, 128, 64)
    assert image.mode == "1" and image.size == (128, 64)
    pixels = np.array(image)
    assert not pixels[:10].any() and not pixels[-10:].any()  # bars above and below
    assert pixels[30:34].all()  # the picture in the middle


def test_status_notifications_and_timeout_on_the_twin() -> None:
    twin = ScreenTwin()
    manager = ScreenManager(writer=twin, refresh_interval_s=0.05, screen_timeout_s=1.0)
    assert manager._status_lines() == ["omgrab"]
    manager.set_device_status_manager(Status())
    assert manager._status_lines() == ["RECORDING", "REC 12s", "Battery 81%", "Free 75%"]
    manager.show_notification("low", priority=0, duration_s=0.3)
    manager.show_notification("urgent", priority=5, duration_s=0.3, warning=True)
    manager.start()
    try:
        assert wait_for(lambda: twin.frames_shown >= 1 and twin.lit_fraction() > 0)
        assert manager._showing is not None
        # Nothing wakes it: the screen goes blank after the timeout.
        assert wait_for(lambda: twin.lit_fraction() == 0.0)
        manager.wake()
        assert wait_for(lambda: twin.lit_fraction() > 0)
    finally:
        manager.shutdown()
    assert twin.cleaned_up and manager.render_errors == 0


def test_notifications_are_shown_highest_priority_first() -> None:
    manager = ScreenManager(writer=ScreenTwin())
    manager.show_notification("low", priority=0)
    manager.show_notification("high", priority=9)
    first = manager._current_notification()
    assert first is not None and first.message == "high"


def test_a_failing_screen_is_counted_and_the_worker_carries_on() -> None:
    twin = ScreenTwin()
    twin.fail_writes = True
    manager = ScreenManager(writer=twin, refresh_interval_s=0.02)
    manager.start()
    try:
        assert wait_for(lambda: manager.render_errors >= 2)
        assert "Remote I/O" in (manager.last_error or "")
        twin.fail_writes = False
        assert wait_for(lambda: twin.frames_shown >= 1)
    finally:
        manager.shutdown()


def test_preview_needs_a_source_and_a_screen() -> None:
    manager = ScreenManager(writer=ScreenTwin())
    with pytest.raises(RuntimeError, match="Preview source not set"):
        manager.start_preview()
    unplugged = ScreenManager(writer=ScreenTwin(available=False))
    unplugged.set_preview_source(object(), object())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="Display hardware not available"):
        unplugged.start_preview()


def test_camera_preview_of_the_oakd_device(monkeypatch: pytest.MonkeyPatch) -> None:
    fake.reset()
    monkeypatch.setattr(
        fake.Node.Output, "createOutputQueue", fake_depthai_live.create_output_queue
    )
    device = devices.OakDCaptureDevice(
        CameraConfig(25, 64, 40),
        CameraConfig(25, 32, 20),
        preview_config=CameraConfig(15, 64, 32),
        dai_module=fake,
    )
    twin = ScreenTwin()
    manager = ScreenManager(writer=twin, refresh_interval_s=0.05)
    manager.set_preview_source(device, device.get_preview_camera())
    manager.start()
    try:
        manager.start_preview()
        assert manager.preview_active
        shown = twin.frames_shown
        # The fake's colour gradient, dithered: a good part of the screen is lit.
        assert wait_for(lambda: twin.frames_shown > shown + 3 and twin.lit_fraction() > 0.2)
        with pytest.raises(RuntimeError):
            device.__enter__()  # no recording during a preview
        manager.stop_preview()
        manager.stop_preview()  # idempotent
        assert not manager.preview_active
        with device:  # the preview pipeline is gone: recording may start
            assert device.wait_until_ready(10.0)
    finally:
        manager.shutdown()
    assert manager.render_errors == 0


class FlakyOled:
    def __init__(self) -> None:
        self.shown: list[PIL.Image.Image] = []
        self.fail = False

    def display(self, image: PIL.Image.Image) -> None:
        if self.fail:
            raise OSError(121, "Remote I/O error")
        self.shown.append(image)

    def cleanup(self) -> None:
        pass


def test_screen_writer_without_hardware_and_after_a_write_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing = screen_writer.ScreenWriter()  # no luma.oled here: unavailable, drawing is a no-op
    assert not missing.available
    missing.display(PIL.Image.new("1", (128, 64)))
    oled = FlakyOled()
    writer = screen_writer.ScreenWriter(device_factory=lambda *_: oled)
    assert writer.available and (writer.width, writer.height) == (128, 64)
    writer.display(PIL.Image.new("1", (128, 64), 1))
    assert len(oled.shown) == 1
    oled.fail = True
    writer.display(PIL.Image.new("1", (128, 64), 1))
    assert writer.errors == 1 and not writer.available
    oled.fail = False
    writer.display(PIL.Image.new("1", (128, 64), 1))  # within the retry interval: skipped
    assert len(oled.shown) == 1
    monkeypatch.setattr(screen_writer, "RETRY_INTERVAL_S", 0.0)
    writer.display(PIL.Image.new("1", (128, 64), 1))
    assert writer.available and len(oled.shown) == 2
