"""Fault spec parsing and every fault of the simulated capture device."""

from __future__ import annotations

import itertools
import logging
import threading

import hypothesis
import pytest
from hypothesis import strategies as st

from omgrab import cameras, devices, sensors
from omgrab.devices import faults

SMALL = cameras.CameraConfig(25, 160, 120)
Kind = devices.FaultKind


def _device(clock, spec=None, **kwargs) -> devices.SimulatedCaptureDevice:
    return devices.SimulatedCaptureDevice(
        rgb=SMALL, depth=SMALL, imu_rate_hz=100.0, clock=clock, faults=spec, **kwargs
    )


# -- parser ----------------------------------------------------------------------------------


def test_parse_full_example() -> None:
    parsed = devices.parse_faults(
        "disconnect@5; stall:depth@2+3 ;slow:rgb@1+2=0.2;clock_step@3=-3600"
    )
    assert parsed == [
        devices.Fault(Kind.DISCONNECT, at_s=5.0),
        devices.Fault(Kind.STALL, at_s=2.0, stream="depth", duration_s=3.0),
        devices.Fault(Kind.SLOW, at_s=1.0, stream="rgb", duration_s=2.0, value=0.2),
        devices.Fault(Kind.CLOCK_STEP, at_s=3.0, value=-3600.0),
    ]


def test_parse_defaults_and_empty() -> None:
    assert devices.parse_faults("") == []
    assert devices.parse_faults(" ; ") == []
    assert devices.parse_faults("stall") == [devices.Fault(Kind.STALL)]
    assert devices.parse_faults("disconnect+1.5") == [
        devices.Fault(Kind.DISCONNECT, duration_s=1.5)
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("explode@1", r"bad fault 'explode@1': unknown kind 'explode'"),
        ("stall:depth@x", r"bad fault 'stall:depth@x': start time 'x' is not a number"),
        ("stall:depth@1+soon", r"duration 'soon' is not a number"),
        ("slow:rgb@1", r"bad fault 'slow:rgb@1'.*needs a delay"),
        ("slow@1=0.2", r"needs a stream"),
        ("slow:rgb@1=-0.2", r"needs a delay"),
        ("disconnect:rgb@1", r"whole device"),
        ("clock_step@1", r"needs a step"),
        ("clock_step@1+2=3", r"takes no '\+duration'"),
        ("stall@-1", r"start time must be >= 0"),
        ("stall@1+0", r"duration must be > 0"),
        ("stall=3", r"takes no '=value'"),
        ("stall:@1", r"empty stream name"),
        ("disconnect@inf", r"not finite"),
        ("disconnect@1;stall:depth@nope", r"'stall:depth@nope'"),
    ],
)
def test_parse_errors_name_the_bad_token(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        devices.parse_faults(spec)


def test_unknown_stream_is_rejected_by_the_device(manual_clock) -> None:
    with pytest.raises(ValueError, match=r"no stream 'thermal' \(streams: rgb, depth, imu\)"):
        _device(manual_clock, "stall:thermal@1")
    device = _device(manual_clock)
    with pytest.raises(ValueError, match="thermal"):
        device.inject_stall("thermal")
    with pytest.raises(ValueError, match="thermal"):
        device.inject_slow("thermal", 0.1)


def test_faults_module_documents_grammar() -> None:
    assert faults.__doc__ is not None and "clock_step" in faults.__doc__


# -- disconnect ------------------------------------------------------------------------------


def test_scheduled_disconnect_and_reconnect(manual_clock) -> None:
    source = manual_clock.source
    device = _device(manual_clock, "disconnect@0.19+0.5")
    rgb = device.cameras["rgb"]
    with device:
        opened = source.monotonic()
        assert device.connected and device.ready
        delivered = 0
        with pytest.raises(cameras.FrameUnavailableError, match="disconnected"):
            while True:
                rgb.get_next_frame(timeout_s=1.0)
                delivered += 1
        # Frames at 0, 0.04, ... 0.16 s; the one due at 0.2 s finds the device gone.
        assert delivered == 5
        assert not device.connected and not device.ready
        with pytest.raises(cameras.FrameUnavailableError, match="disconnected"):
            device.cameras["depth"].get_next_frame(timeout_s=1.0)
        with pytest.raises(sensors.SensorDataUnavailableError, match="disconnected"):
            device.sensors["imu"].get_next_item(timeout_s=1.0)
        assert device.preview() is None
        # A disconnected read fails within about one period instead of waiting out its 1 s
        # timeout (three reads at 1 s each would take us past 3 s).
        assert source.monotonic() - opened < 0.6
        source.advance(0.69 - (source.monotonic() - opened))
        assert device.connected and device.ready
        image, _ = rgb.get_next_frame(timeout_s=1.0)
        assert cameras.read_frame_counter(image) == 5  # nothing was generated while away
    events = [(e.kind, e.action, e.elapsed_s) for e in device.fault_events]
    assert events == [
        (Kind.DISCONNECT, "start", pytest.approx(0.2)),  # seen at the read due at 0.2 s
        (Kind.DISCONNECT, "end", pytest.approx(0.69)),
    ]


def test_immediate_disconnect_and_reconnect(manual_clock) -> None:
    device = _device(manual_clock)
    with device:
        device.inject_disconnect()
        assert not device.connected
        assert not device.wait_until_ready(0.0)
        for camera in device.cameras.values():
            with pytest.raises(cameras.FrameUnavailableError):
                camera.get_next_frame(timeout_s=0.5)
        device.reconnect()
        assert device.connected and device.ready
        device.cameras["rgb"].get_next_frame(timeout_s=0.5)


def test_disconnect_with_real_clock_fails_fast_even_without_timeout() -> None:
    device = devices.SimulatedCaptureDevice(rgb=SMALL, depth=None, imu_rate_hz=None)
    with device:
        device.inject_disconnect()
        with pytest.raises(cameras.FrameUnavailableError, match="disconnected"):
            device.cameras["rgb"].get_next_frame(timeout_s=None)


# -- stall -----------------------------------------------------------------------------------


def test_stall_one_stream_others_continue_then_resume(manual_clock) -> None:
    source = manual_clock.source
    device = _device(manual_clock, "stall:depth@0.1+0.3")
    rgb, depth = device.cameras["rgb"], device.cameras["depth"]
    with device:
        opened = source.monotonic()
        depth.get_next_frame(timeout_s=0.05)
        source.advance(0.1)
        with pytest.raises(cameras.FrameUnavailableError, match=r"'depth'.*stalled"):
            depth.get_next_frame(timeout_s=0.05)
        assert device.connected  # a stall is not a disconnect
        for _ in range(3):
            rgb.get_next_frame(timeout_s=0.05)
        device.sensors["imu"].get_next_item(timeout_s=0.2)
        # A patient reader waits for the scheduled resume and gets the next frame.
        image, _timestamp = depth.get_next_frame(timeout_s=1.0)
        assert source.monotonic() - opened == pytest.approx(0.4)
        assert cameras.read_frame_counter(image) == 1
    kinds = [(e.kind, e.stream, e.action) for e in device.fault_events]
    assert kinds == [(Kind.STALL, "depth", "start"), (Kind.STALL, "depth", "end")]


def test_stall_all_streams_and_manual_resume(manual_clock) -> None:
    device = _device(manual_clock)
    with device:
        device.inject_stall()
        for camera in device.cameras.values():
            with pytest.raises(cameras.FrameUnavailableError, match="stalled"):
                camera.get_next_frame(timeout_s=0.1)
        with pytest.raises(sensors.SensorDataUnavailableError, match="stalled"):
            device.sensors["imu"].get_next_item(timeout_s=0.1)
        assert device.preview() is None
        device.resume("rgb")
        device.cameras["rgb"].get_next_frame(timeout_s=0.1)
        with pytest.raises(cameras.FrameUnavailableError, match="stalled"):
            device.cameras["depth"].get_next_frame(timeout_s=0.1)
        device.resume()
        device.cameras["depth"].get_next_frame(timeout_s=0.1)


def test_resume_wakes_a_blocked_reader_real_clock() -> None:
    device = devices.SimulatedCaptureDevice(rgb=SMALL, depth=SMALL, imu_rate_hz=None)
    results: list[object] = []
    started = threading.Event()

    def reader() -> None:
        started.set()
        results.append(device.cameras["depth"].get_next_frame(timeout_s=None))

    with device:
        device.inject_stall("depth")
        thread = threading.Thread(target=reader)
        thread.start()
        started.wait(1.0)
        thread.join(0.1)
        assert thread.is_alive()  # blocked by the stall
        device.resume("depth")
        thread.join(2.0)
        assert not thread.is_alive()
    assert len(results) == 1


def test_close_wakes_a_stalled_reader_real_clock() -> None:
    device = devices.SimulatedCaptureDevice(rgb=SMALL, depth=None, imu_rate_hz=None)
    errors: list[BaseException] = []
    device.open()
    device.inject_stall("rgb")

    def reader() -> None:
        try:
            device.cameras["rgb"].get_next_frame(timeout_s=None)
        except cameras.FrameUnavailableError as exc:
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    thread.join(0.1)
    device.close()
    thread.join(2.0)
    assert not thread.is_alive()
    assert errors and "closed" in str(errors[0])


# -- slow ------------------------------------------------------------------------------------


def test_slow_stream_delays_each_frame(manual_clock) -> None:
    source = manual_clock.source
    device = _device(manual_clock, "slow:rgb@0+1=0.2")
    rgb = device.cameras["rgb"]
    with device:
        stamps = [rgb.get_next_frame(timeout_s=1.0)[1] for _ in range(4)]
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(stamps)]
        assert gaps == pytest.approx([0.2] * 3)
        source.advance(1.0)  # the slowdown ends 1 s after open
        stamps = [rgb.get_next_frame(timeout_s=1.0)[1] for _ in range(4)]
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(stamps)]
        assert gaps == pytest.approx([0.04] * 3)
        # Other streams are not slowed.
        before = source.monotonic()
        device.cameras["depth"].get_next_frame(timeout_s=1.0)
        assert source.monotonic() - before < 0.05


def test_inject_slow_and_clear(manual_clock) -> None:
    source = manual_clock.source
    device = _device(manual_clock)
    with device:
        device.inject_slow("imu", 0.5)
        before = source.monotonic()
        device.sensors["imu"].get_next_item(timeout_s=2.0)
        assert source.monotonic() - before >= 0.5
        device.clear_slow()
        device.sensors["imu"].get_next_item(timeout_s=2.0)  # overdue after the delay
        before = source.monotonic()
        device.sensors["imu"].get_next_item(timeout_s=2.0)
        assert source.monotonic() - before == pytest.approx(0.1)  # normal rate again


# -- clock step ------------------------------------------------------------------------------


def test_scheduled_clock_step_steps_manual_wall_and_timestamps_stay_monotonic(
    manual_clock,
) -> None:
    source = manual_clock.source
    device = _device(manual_clock, "clock_step@0.1=-3600")
    rgb = device.cameras["rgb"]
    with device:
        wall_before = source.wall()
        stamps = [rgb.get_next_frame(timeout_s=1.0)[1] for _ in range(10)]
        assert source.wall() - source.monotonic() == pytest.approx(wall_before - 1000.0 - 3600.0)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(stamps)]
    assert gaps == pytest.approx([0.04] * 9)
    (event,) = device.fault_events
    assert event.kind == Kind.CLOCK_STEP and event.value == -3600.0
    assert event.elapsed_s == pytest.approx(0.12)  # applied at the first read after 0.1 s


def test_clock_step_on_real_clock_is_recorded_only(caplog) -> None:
    device = devices.SimulatedCaptureDevice(rgb=SMALL, depth=None, imu_rate_hz=None)
    with device, caplog.at_level(logging.WARNING):
        device.inject_clock_step(30.0)
        device.cameras["rgb"].get_next_frame(timeout_s=1.0)
    assert [e.kind for e in device.fault_events] == [Kind.CLOCK_STEP]
    assert "cannot step the real wall clock" in caplog.text


def test_scheduled_faults_are_relative_to_open_time(manual_clock) -> None:
    source = manual_clock.source
    device = _device(manual_clock, "disconnect@1")
    source.advance(5.0)  # time passing before open does not count
    with device:
        assert device.connected
        source.advance(0.9)
        assert device.connected
        source.advance(0.1)
        assert not device.connected
    # Re-opening restarts the schedule (and the device is still disconnected until reconnect).
    device.reconnect()
    with device:
        assert device.connected
        source.advance(1.0)
        assert not device.connected


def test_schedule_faults_while_open(manual_clock) -> None:
    source = manual_clock.source
    device = _device(manual_clock)
    with device:
        source.advance(2.0)
        device.schedule_faults([devices.Fault(Kind.STALL, at_s=2.5, stream="rgb")])
        device.cameras["rgb"].get_next_frame(timeout_s=0.1)
        source.advance(0.5)
        with pytest.raises(cameras.FrameUnavailableError, match="stalled"):
            device.cameras["rgb"].get_next_frame(timeout_s=0.1)


_kinds = st.sampled_from(list(Kind))
_times = st.floats(min_value=0, max_value=1e6, allow_nan=False)
_durations = st.none() | st.floats(min_value=1e-3, max_value=1e6)
_streams = st.sampled_from(["rgb", "depth", "imu", "cam_2", "left.ir"])


@st.composite
def _fault(draw: st.DrawFn) -> devices.Fault:
    kind = draw(_kinds)
    at_s = draw(_times)
    if kind == Kind.DISCONNECT:
        return devices.Fault(kind, at_s=at_s, duration_s=draw(_durations))
    if kind == Kind.STALL:
        stream = draw(st.none() | _streams)
        return devices.Fault(kind, at_s=at_s, stream=stream, duration_s=draw(_durations))
    if kind == Kind.SLOW:
        value = draw(st.floats(min_value=1e-3, max_value=60))
        return devices.Fault(
            kind, at_s=at_s, stream=draw(_streams), duration_s=draw(_durations), value=value
        )
    value = draw(st.floats(min_value=-1e7, max_value=1e7))
    return devices.Fault(kind, at_s=at_s, value=value)


@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(st.lists(_fault(), max_size=6))
def test_spec_roundtrip(fault_list: list[devices.Fault]) -> None:
    assert devices.parse_faults(devices.format_faults(fault_list)) == fault_list


def test_stream_names_must_be_simple() -> None:
    with pytest.raises(ValueError, match="stream name 'a b'"):
        devices.Fault(Kind.STALL, stream="a b")
