"""The fixtures omgrab ships for users' tests work as documented."""

from __future__ import annotations

import threading

import av

from omgrab.gpio import controller as gpio_controller
from omgrab.runtime import network_monitor
from omgrab.testing import make_snapshot


def test_fake_gpio_runs_a_long_press_on_the_manual_clock(omgrab_clock, omgrab_gpio) -> None:
    omgrab_gpio.hold(6.0)
    omgrab_clock.source.advance(5.5)
    assert omgrab_gpio.is_button_pressed()
    omgrab_clock.source.advance(1.0)
    assert not omgrab_gpio.is_button_pressed()
    omgrab_gpio.set_led(gpio_controller.LED.STATUS, gpio_controller.LEDState.ON)
    omgrab_gpio.assert_led(gpio_controller.LED.STATUS, gpio_controller.LEDState.ON)


def test_recorder_fixture_records_the_fake_device(omgrab_recorder, omgrab_device) -> None:
    done = threading.Event()
    omgrab_recorder.set_on_recording_complete(lambda _path: done.set())
    assert omgrab_recorder.start_recording()
    camera = omgrab_device.cameras["rgb"]
    waiter = threading.Event()
    for _ in range(200):
        if omgrab_recorder.active_session.capture_stats()["rgb"].items_queued >= 5:
            break
        waiter.wait(0.02)
    omgrab_recorder.stop_recording()
    assert done.wait(30)
    with av.open(str(omgrab_recorder.last_recording_path)) as container:
        assert [s.type for s in container.streams] == ["video", "subtitle"]
        assert container.streams[0].width == camera.config.width


def test_make_snapshot_builds_monitor_snapshots() -> None:
    snap = make_snapshot(network_monitor.Status.OFFLINE, "cable pulled")
    assert snap.status is network_monitor.Status.OFFLINE and snap.detail == "cable pulled"
