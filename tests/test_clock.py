import datetime
import threading
import time

from omgrab import clock


def test_timestamps_survive_a_backwards_wall_clock_step() -> None:
    source = clock.ManualTimeSource()
    device_clock = clock.DeviceClock(source)
    before = device_clock.now()
    source.advance(0.5)
    source.step_wall(-3600.0)
    after = device_clock.now()
    assert after - before == datetime.timedelta(seconds=0.5)
    assert after.tzinfo is datetime.UTC


def test_anchor_picks_up_the_corrected_wall_clock() -> None:
    source = clock.ManualTimeSource(wall=1_000.0)
    device_clock = clock.DeviceClock(source)
    source.step_wall(500.0)
    anchored = device_clock.anchor()
    assert anchored.timestamp() == 1_500.0
    source.advance(2.0)
    assert device_clock.now().timestamp() == 1_502.0


def test_sleep_advances_a_manual_clock_and_waits_on_a_real_one() -> None:
    source = clock.ManualTimeSource(monotonic=10.0)
    manual = clock.DeviceClock(source)
    started = time.monotonic()
    manual.sleep(3600.0)  # an hour passes at once
    assert source.monotonic() == 10.0 + 3600.0
    assert time.monotonic() - started < 60.0
    real = clock.DeviceClock()
    started = time.monotonic()
    real.sleep(0.05)
    assert time.monotonic() - started >= 0.05
    interrupt = threading.Event()
    interrupt.set()  # already set: the sleep ends at once instead of after an hour
    started = time.monotonic()
    real.sleep(3600.0, interrupt=interrupt)
    assert time.monotonic() - started < 60.0


def test_steppable_system_source_steps_wall_only_and_the_clock_reports_it() -> None:
    source = clock.SteppableSystemTimeSource()
    device_clock = clock.DeviceClock(source)
    assert abs(device_clock.wall_step_s()) < 0.5
    before = device_clock.now()
    source.step_wall(-300)
    assert source.offset_s == -300
    assert abs(device_clock.wall_step_s() + 300) < 0.5
    # timestamps keep the monotonic time line until the next anchor
    assert device_clock.now() >= before
    anchored = device_clock.anchor()
    assert abs((anchored - before).total_seconds() + 300) < 5
    assert abs(device_clock.wall_step_s()) < 0.5
