from __future__ import annotations

import datetime
import errno
import subprocess
import sys
import threading
import time

import pytest

from omgrab import clock, gpio
from omgrab.gpio import gpiod_twin as twin

LED = gpio.LED
S = gpio.LEDState
PINS = gpio.GPIOPins()


def test_lines_requested_with_gpiod_v2_settings(
    gpiod_twin: gpio.GpiodTwin, gpiod_controller: gpio.GpiodController
) -> None:
    chip = gpiod_twin.chip()
    assert chip.requested_offsets() == [17, 18, 22, 23, 27]
    assert {chip.consumer(o) for o in chip.requested_offsets()} == {"omgrab"}
    for offset in (17, 27, 22, 18):
        settings = chip.settings(offset)
        assert settings.direction is twin.Direction.OUTPUT
        assert settings.output_value is twin.Value.INACTIVE
        assert chip.physical_level(offset) is False
    button = chip.settings(23)
    assert button.direction is twin.Direction.INPUT
    assert button.bias is twin.Bias.PULL_UP
    assert button.active_low is True
    assert button.debounce_period == datetime.timedelta(milliseconds=10)
    assert isinstance(gpiod_controller, gpio.GPIOController)


def test_set_led_drives_line_immediately(
    gpiod_twin: gpio.GpiodTwin, gpiod_controller: gpio.GpiodController
) -> None:
    chip = gpiod_twin.chip()
    gpiod_controller.set_led(LED.RECORDING, S.ON)
    assert chip.physical_level(27) is True
    assert gpiod_controller.get_led(LED.RECORDING) is S.ON
    gpiod_controller.set_led(LED.RECORDING, S.OFF)
    assert chip.physical_level(27) is False
    assert chip.physical_level(17) is False


def test_blinking_driven_by_tick(
    gpiod_twin: gpio.GpiodTwin,
    gpiod_controller: gpio.GpiodController,
    gpio_clock: clock.ManualTimeSource,
) -> None:
    chip = gpiod_twin.chip()
    gpiod_controller.set_led(LED.NETWORK, S.BLINK_FAST)  # 4 Hz: 0.125 s on, 0.125 s off
    assert chip.physical_level(22) is True
    deadlines = []
    for _ in range(4):
        deadline = gpiod_controller.tick()
        assert deadline is not None
        deadlines.append(deadline - 100.0)
        gpio_clock.advance(deadline - gpio_clock.monotonic())
    gpiod_controller.tick()
    assert deadlines == pytest.approx([0.125, 0.25, 0.375, 0.5])
    history = chip.history(22)
    assert [level for _, level in history] == [False, True, False, True, False, True]
    assert [t - 100.0 for t, _ in history[1:]] == pytest.approx([0, 0.125, 0.25, 0.375, 0.5])
    # re-setting the same state keeps the phase and writes nothing
    writes = chip.writes
    gpiod_controller.set_led(LED.NETWORK, S.BLINK_FAST)
    assert chip.writes == writes


def test_buzzer_pattern_driven_by_tick(
    gpiod_twin: gpio.GpiodTwin,
    gpiod_controller: gpio.GpiodController,
    gpio_clock: clock.ManualTimeSource,
) -> None:
    chip = gpiod_twin.chip()
    gpiod_controller.buzz([0.25, 0.5, 0.25])
    assert chip.physical_level(18) is True
    assert gpiod_controller.tick() == pytest.approx(100.25)
    gpio_clock.advance(0.25)
    assert gpiod_controller.tick() == pytest.approx(100.75)
    assert chip.physical_level(18) is False
    gpio_clock.advance(0.5)
    assert gpiod_controller.tick() == pytest.approx(101.0)
    assert chip.physical_level(18) is True
    gpio_clock.advance(0.25)
    assert gpiod_controller.tick() is None
    assert chip.physical_level(18) is False
    with pytest.raises(ValueError, match="item 0"):
        gpiod_controller.buzz([-1])


def test_active_low_button_is_debounced_in_software(
    gpiod_twin: gpio.GpiodTwin,
    gpiod_controller: gpio.GpiodController,
    gpio_clock: clock.ManualTimeSource,
) -> None:
    chip = gpiod_twin.chip()
    assert gpiod_controller.is_button_pressed() is False  # pull-up: idle high
    # a bouncy press: low/high/low at 4 ms intervals, then held low
    for level in (False, True, False, True, False):
        chip.drive(23, level)
        gpiod_controller.tick()
        assert gpiod_controller.is_button_pressed() is False
        gpio_clock.advance(0.004)
    gpio_clock.advance(0.012)  # 16 ms low so far
    assert gpiod_controller.is_button_pressed() is False
    gpio_clock.advance(0.005)  # 21 ms low
    assert gpiod_controller.is_button_pressed() is True
    chip.drive(23, None)  # released: pull-up takes it high
    gpiod_controller.tick()
    gpio_clock.advance(0.021)
    assert gpiod_controller.is_button_pressed() is False


def test_active_low_outputs_and_no_pull_up(gpio_clock: clock.ManualTimeSource) -> None:
    module = gpio.GpiodTwin()
    pins = gpio.GPIOPins(leds_active_low=True, button_pull_up=False, button=4)
    with gpio.GpiodController(
        pins, gpiod_module=module, clock=gpio_clock, start_thread=False
    ) as controller:
        chip = module.chip()
        assert chip.physical_level(17) is True  # off = high on an active-low LED
        controller.set_led(LED.STATUS, S.ON)
        assert chip.physical_level(17) is False
        assert chip.settings(4).bias is twin.Bias.DISABLED
    assert chip.requested_offsets() == []


def test_missing_chip_is_a_clear_error() -> None:
    module = gpio.GpiodTwin(chip_paths=["/dev/gpiochip4"])
    with pytest.raises(gpio.GPIOUnavailableError, match=r"/dev/gpiochip0.*No such file"):
        gpio.GpiodController(gpiod_module=module, start_thread=False)


def test_second_controller_on_same_lines_fails(gpiod_twin: gpio.GpiodTwin) -> None:
    first = gpio.GpiodController(gpiod_module=gpiod_twin, start_thread=False)
    try:
        with pytest.raises(gpio.GPIOUnavailableError, match="busy"):
            gpio.GpiodController(gpiod_module=gpiod_twin, start_thread=False)
    finally:
        first.close()
    gpio.GpiodController(gpiod_module=gpiod_twin, start_thread=False).close()


def test_real_gpiod_module_without_chip() -> None:
    pytest.importorskip("gpiod")
    with pytest.raises(gpio.GPIOUnavailableError, match="/nonexistent/gpiochip9"):
        gpio.GpiodController(gpio.GPIOPins(chip_path="/nonexistent/gpiochip9"), start_thread=False)


def test_importing_gpio_does_not_import_gpiod() -> None:
    code = "import sys, omgrab.gpio; sys.exit(1 if 'gpiod' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_close_turns_off_and_releases(
    gpiod_twin: gpio.GpiodTwin, gpiod_controller: gpio.GpiodController
) -> None:
    chip = gpiod_twin.chip()
    gpiod_controller.set_led(LED.STATUS, S.ON)
    gpiod_controller.buzz([5.0])
    gpiod_controller.close()
    assert chip.requested_offsets() == []
    assert chip.history(17)[-1][1] is False
    assert chip.history(18)[-1][1] is False
    with pytest.raises(RuntimeError, match="closed"):
        gpiod_controller.set_led(LED.STATUS, S.ON)
    with pytest.raises(RuntimeError, match="closed"):
        gpiod_controller.is_button_pressed()
    assert gpiod_controller.tick() is None
    gpiod_controller.close()


def test_write_error_reaches_the_caller(
    gpiod_twin: gpio.GpiodTwin, gpiod_controller: gpio.GpiodController
) -> None:
    gpiod_twin.chip().fail_next(OSError(errno.EIO, "Input/output error"))
    with pytest.raises(OSError, match="Input/output"):
        gpiod_controller.set_led(LED.STATUS, S.ON)


def _wait(predicate: object, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.005)
    return False


def test_timer_thread_blinks_and_buzzes_in_real_time() -> None:
    module = gpio.GpiodTwin()
    chip = module.chip()
    with gpio.GpiodController(gpiod_module=module) as controller:
        assert controller.thread_alive
        controller.set_led(LED.STATUS, S.BLINK_FAST)
        controller.buzz([0.05, 0.05, 0.05])
        assert _wait(lambda: len(chip.history(17)) >= 6)
        assert _wait(lambda: len(chip.history(18)) >= 5)
        chip.drive(23, False)
        assert _wait(controller.is_button_pressed)
    status = chip.history(17)
    # 4 Hz: a flip every 0.125 s, on average over the first five flips (loaded CI tolerated)
    assert 0.1 <= (status[5][0] - status[1][0]) / 4 < 0.25, status
    buzzer = [level for _, level in chip.history(18)]
    assert buzzer[:5] == [False, True, False, True, False]
    assert not controller.thread_alive
    assert controller.error_count == 0


def test_timer_thread_errors_are_counted_reported_and_survived() -> None:
    module = gpio.GpiodTwin()
    chip = module.chip()
    reported: list[BaseException] = []
    got_error = threading.Event()

    def on_error(exc: BaseException) -> None:
        reported.append(exc)
        got_error.set()

    chip.fail_next(OSError(errno.EIO, "Input/output error"), count=2)
    with gpio.GpiodController(gpiod_module=module, on_error=on_error) as controller:
        assert got_error.wait(5.0)
        assert _wait(lambda: controller.error_count == 2)
        # still running: blinking continues after the failures
        controller.set_led(LED.NETWORK, S.BLINK_FAST)
        assert _wait(lambda: len(chip.history(22)) >= 4)
        assert isinstance(controller.last_error, OSError)
        assert controller.thread_alive
    assert len(reported) == 2


def test_settings_built_with_the_real_gpiod_types() -> None:
    gpiod = pytest.importorskip("gpiod")
    from gpiod import line_settings as real_line_settings

    captured: dict[str, object] = {}

    class NoChip(Exception):
        pass

    def request_lines(path: str, config: dict[object, object], consumer: str) -> object:
        captured.update(path=path, config=config, consumer=consumer)
        raise NoChip

    spy = type("GpiodSpy", (), {"line": gpiod.line, "LineSettings": gpiod.LineSettings})()
    spy.request_lines = request_lines  # type: ignore[attr-defined]
    with pytest.raises(NoChip):
        gpio.GpiodController(gpiod_module=spy, start_thread=False)
    config = captured["config"]
    assert isinstance(config, dict)
    assert set(config) == {(17, 27, 22), 18, 23}
    for settings in config.values():
        assert isinstance(settings, gpiod.LineSettings)
        # the library's own conversion to its C extension accepts every field
        real_line_settings._line_settings_to_ext(settings)
    assert config[23].direction is gpiod.line.Direction.INPUT
    assert config[23].bias is gpiod.line.Bias.PULL_UP
    assert config[23].debounce_period == datetime.timedelta(milliseconds=10)
    assert captured["consumer"] == "omgrab"


def test_missing_gpiod_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gpiod", None)  # makes "import gpiod" fail
    with pytest.raises(gpio.GPIOUnavailableError, match="gpiod>=2"):
        gpio.GpiodController(start_thread=False)
