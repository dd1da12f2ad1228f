"""omgrab 0.1.2's GPIO process: LEDs, buzzer and button driven from a separate process.

The published path ``omgrab.gpio.gpio_process`` with its public names (``GPIOCommand``,
``LEDPattern``, the ``PIN_*`` and timing constants, ``BUTTON_TRIGGER_FILE`` and
``GPIOControllerProcess``), backed by this package's GPIO backends.

Architecture::

    caller --GPIOControllerProcess--> command queue --> GPIO process --> GpiodController
           <------------------------ response queue <--  (read_button)   or SimulatedGPIOController

* The process owns one controller of this package: :class:`~omgrab.gpio.GpiodController` on
  ``CHIP_PATH`` with 0.1.2's wiring (green LED 17, red LED 23, buzzer 12, button 24; the third,
  network LED this package drives is put on ``PIN_NETWORK_LED``), or the software twin
  :class:`~omgrab.gpio.SimulatedGPIOController` where there is no such chip (``backend``
  ``auto``, the default) or when asked (``OMGRAB_GPIO_BACKEND=simulated``). Either way the
  remote trigger file ``BUTTON_TRIGGER_FILE`` (``OMGRAB_GPIO_TRIGGER_FILE`` overrides it)
  presses the button, as in 0.1.2, if its directory exists.
* Blinking and beeping run on the controller's own timer thread, so a busy parent never
  disturbs them; the command loop only forwards commands. Blink rates are this package's
  (``SLOW_BLINK_INTERVAL`` / ``FAST_BLINK_INTERVAL`` seconds on, then as long off).
* The process comes from the ``forkserver`` start method (never ``fork`` from a threaded
  process), like the recorder's workers.

Bounds: the command queue is unbounded (as 0.1.2's); commands are tiny and handled in
microseconds. ``read_button`` waits at most ``READ_TIMEOUT_S`` for its answer and returns False
when none comes (0.1.2), e.g. when the process died.

Lifecycle: the constructor starts the process; :meth:`GPIOControllerProcess.cleanup` sends
``SHUTDOWN`` (the process turns every output off and releases the lines), waits up to 2 s and
terminates it if it still runs. The process also ends on its own when its parent is gone.

Error policy: the parent validates every argument and raises ``ValueError``/``TypeError``
naming the bad one, so nothing malformed reaches the process. An exception while handling a
command in the process is logged, counted and reported by :meth:`GPIOControllerProcess.status`
(``errors``, ``last_error``); the loop goes on. A backend that cannot be opened in ``gpiod``
mode ends the process with the error logged; a process that is gone is logged (once, with its
exit code) by the parent's next call, and ``read_button`` then answers False.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import math
import multiprocessing
import os
import pathlib
import queue
import threading
from typing import Any

from omgrab.gpio import controller, gpiod_backend, pins, remote, simulated, timing

logger = logging.getLogger(__name__)


class GPIOCommand(enum.Enum):
    """Commands that can be sent to the GPIO process (0.1.2's seven)."""

    SET_LED_STATES = "set_led_states"
    SET_BUZZER = "set_buzzer"
    SET_BUZZER_VOLUME = "set_buzzer_volume"
    SET_BUZZER_TONE = "set_buzzer_tone"
    BUZZER_BEEP = "buzzer_beep"
    READ_BUTTON = "read_button"
    SHUTDOWN = "shutdown"


class LEDPattern(enum.Enum):
    """LED patterns as the process receives them (the values of ``LEDState``)."""

    OFF = "off"
    ON = "on"
    SLOW_BLINK = "slow_blink"
    FAST_BLINK = "fast_blink"


# 0.1.2's wiring (BCM line offsets on CHIP_PATH).
PIN_GREEN_LED = 17
PIN_RED_LED = 23
PIN_BUZZER = 12
PIN_BUTTON = 24
#: This package also drives a network LED; 0.1.2's rig has none, so it goes on a spare line.
PIN_NETWORK_LED = 27
CHIP_PATH = "/dev/gpiochip4"

#: Seconds on (then as long off) of a slow / fast blink: this package's timing rules.
SLOW_BLINK_INTERVAL = timing.BLINK_HALF_PERIOD_S[controller.LEDState.SLOW_BLINK]
FAST_BLINK_INTERVAL = timing.BLINK_HALF_PERIOD_S[controller.LEDState.FAST_BLINK]
#: How long the idle command loop waits before checking that its parent still runs.
LOOP_INTERVAL = 0.05

#: Accepted and reported, but the buzzer here is an on/off (active) buzzer: see docs/compat.md.
BUZZER_PWM_FREQ = 2000
DEFAULT_BUZZER_VOLUME = 0.1
#: Gap between the beeps of one ``buzzer_beep`` call.
BEEP_GAP_S = 0.1
#: ``set_buzzer(True)`` sounds the buzzer this long unless ``set_buzzer(False)`` comes first.
CONTINUOUS_BUZZ_S = 3600.0

#: Touch this file to press the button remotely (see :mod:`omgrab.gpio.remote`).
BUTTON_TRIGGER_FILE = pathlib.Path("/button-trigger/press")

READ_TIMEOUT_S = 1.0
BACKEND_ENV = "OMGRAB_GPIO_BACKEND"
TRIGGER_ENV = "OMGRAB_GPIO_TRIGGER_FILE"
BACKENDS = ("auto", "gpiod", "simulated")

_STATUS = "status"  # a request beyond 0.1.2's commands: the process's state, for inspection


@dataclasses.dataclass(frozen=True)
class ProcessOptions:
    """What the GPIO process opens.

    Attributes:
        backend: ``gpiod`` (real lines, fail if unavailable), ``simulated`` (the software twin)
            or ``auto`` (gpiod if ``chip_path`` exists and gpiod imports, else the twin).
        chip_path: GPIO character device of the lines.
        trigger_path: Remote-press trigger file (None: no remote presses).
    """

    backend: str = "auto"
    chip_path: str = CHIP_PATH
    trigger_path: str | None = str(BUTTON_TRIGGER_FILE)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(
                f"GPIO backend {self.backend!r} is not one of {', '.join(BACKENDS)} "
                f"(set by {BACKEND_ENV})"
            )

    @classmethod
    def from_env(cls) -> ProcessOptions:
        """Options from ``OMGRAB_GPIO_BACKEND`` and ``OMGRAB_GPIO_TRIGGER_FILE``.

        The trigger file defaults to ``BUTTON_TRIGGER_FILE``; an empty value turns remote
        presses off.
        """
        trigger = os.environ.get(TRIGGER_ENV, str(BUTTON_TRIGGER_FILE))
        return cls(
            backend=os.environ.get(BACKEND_ENV, "auto").strip().lower() or "auto",
            trigger_path=trigger or None,
        )


def _open_controller(options: ProcessOptions) -> tuple[controller.GPIOController, str]:
    """Open the controller ``options`` names; return it and the backend actually used."""
    trigger = options.trigger_path
    if trigger is not None and not os.path.isdir(os.path.dirname(trigger)):
        logger.info("no remote presses: the directory of %s does not exist", trigger)
        trigger = None
    if options.backend != "simulated":
        wiring = pins.GPIOPins(
            chip_path=options.chip_path,
            status_led=PIN_GREEN_LED,
            recording_led=PIN_RED_LED,
            network_led=PIN_NETWORK_LED,
            buzzer=PIN_BUZZER,
            button=PIN_BUTTON,
            consumer="omgrab-0.1.2",
        )
        try:
            if options.backend == "auto" and not os.path.exists(options.chip_path):
                raise gpiod_backend.GPIOUnavailableError(f"{options.chip_path} does not exist")
            real: controller.GPIOController = gpiod_backend.GpiodController(wiring)
        except gpiod_backend.GPIOUnavailableError as exc:
            if options.backend == "gpiod":
                raise
            logger.warning("GPIO hardware unavailable (%s): using the software twin", exc)
        else:
            return (remote.RemoteButton(real, trigger) if trigger else real), "gpiod"
    return simulated.SimulatedGPIOController(trigger_path=trigger), "simulated"


class _CommandHandler:
    """Applies commands to one controller (in the GPIO process); counts failures."""

    def __init__(self, ctrl: controller.GPIOController, backend: str) -> None:
        self.ctrl = ctrl
        self.backend = backend
        self.buzzer_on = False
        self.volume = DEFAULT_BUZZER_VOLUME
        self.tone = float(BUZZER_PWM_FREQ)
        self.beeps = 0
        self.commands = 0
        self.errors = 0
        self.last_error: str | None = None

    def handle(self, cmd: Any, args: Any) -> Any:
        """Apply one command; return the answer of a request (None for the others)."""
        self.commands += 1
        try:
            return self._apply(cmd, args)
        except Exception as exc:
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            logger.exception("GPIO command %r failed", cmd)
            return False if cmd is GPIOCommand.READ_BUTTON else None

    def _apply(self, cmd: Any, args: Any) -> Any:
        if cmd is GPIOCommand.SET_LED_STATES:
            red, green = (controller.LEDState(LEDPattern(v).value) for v in args)
            self.ctrl.set_led(controller.LED.RECORDING, red)
            self.ctrl.set_led(controller.LED.STATUS, green)
        elif cmd is GPIOCommand.SET_BUZZER:
            self.buzzer_on = bool(args) and self.volume > 0
            self.ctrl.buzz((CONTINUOUS_BUZZ_S,) if self.buzzer_on else ())
        elif cmd is GPIOCommand.SET_BUZZER_VOLUME:
            self.volume = min(1.0, max(0.0, float(args)))
        elif cmd is GPIOCommand.SET_BUZZER_TONE:
            self.tone = min(20000.0, max(20.0, float(args)))
        elif cmd is GPIOCommand.BUZZER_BEEP:
            duration, count = args
            pattern = timing.beep_pattern(duration, count, BEEP_GAP_S)
            self.beeps += count
            if self.volume > 0 and pattern:
                self.ctrl.buzz(pattern)
        elif cmd is GPIOCommand.READ_BUTTON:
            return bool(self.ctrl.is_button_pressed())
        elif cmd == _STATUS:
            return self.status()
        else:
            raise ValueError(f"unknown GPIO command {cmd!r}")
        return None

    def status(self) -> dict[str, Any]:
        """The process's view: backend, LED patterns, buzzer settings, counters."""
        return {
            "backend": self.backend,
            "pid": os.getpid(),
            "leds": {
                "red": self.ctrl.get_led(controller.LED.RECORDING).value,
                "green": self.ctrl.get_led(controller.LED.STATUS).value,
            },
            "buzzer_on": self.buzzer_on,
            "volume": self.volume,
            "tone": self.tone,
            "beeps": self.beeps,
            "commands": self.commands,
            "errors": self.errors,
            "last_error": self.last_error,
        }


def _parent_alive() -> bool:
    parent = multiprocessing.parent_process()
    return parent is None or parent.is_alive()


def _gpio_process_main(
    command_queue: Any, response_queue: Any, options: ProcessOptions | None = None
) -> None:
    """The GPIO process: apply commands until ``SHUTDOWN`` or until the parent is gone.

    Args:
        command_queue: ``(GPIOCommand, args)`` pairs from the parent.
        response_queue: Answers to ``READ_BUTTON`` (a bool) and status requests, in order.
        options: What to open (``ProcessOptions.from_env()`` if None).
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s omgrab-gpio %(message)s")
    ctrl, backend = _open_controller(options if options is not None else ProcessOptions.from_env())
    handler = _CommandHandler(ctrl, backend)
    logger.info("GPIO process %d running (%s backend)", os.getpid(), backend)
    try:
        while True:
            try:
                cmd, args = command_queue.get(timeout=LOOP_INTERVAL)
            except queue.Empty:
                if not _parent_alive():
                    logger.warning("GPIO process: parent gone, exiting")
                    break
                continue
            if cmd is GPIOCommand.SHUTDOWN:
                break
            answer = handler.handle(cmd, args)
            if cmd is GPIOCommand.READ_BUTTON or cmd == _STATUS:
                response_queue.put(answer)
    finally:
        ctrl.close()


def _finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r}: expected a finite number")
    return float(value)


class GPIOControllerProcess:
    """GPIO controller whose outputs and button live in a separate process (0.1.2's API).

    Args:
        options: What the process opens; from ``OMGRAB_GPIO_BACKEND`` if None (keyword
            beyond 0.1.2's no-argument constructor).

    Raises:
        ValueError: If ``OMGRAB_GPIO_BACKEND`` names no backend.
    """

    def __init__(self, options: ProcessOptions | None = None) -> None:
        self._options = options if options is not None else ProcessOptions.from_env()
        ctx = multiprocessing.get_context("forkserver")
        self._command_queue: Any = ctx.Queue()
        self._response_queue: Any = ctx.Queue()
        self._request_lock = threading.Lock()  # one request/answer pair at a time
        self._reported_dead = False
        self._process = ctx.Process(
            target=_gpio_process_main,
            args=(self._command_queue, self._response_queue, self._options),
            name="omgrab-gpio",
            daemon=True,
        )
        self._process.start()

    def set_led_states(self, red: str, green: str) -> None:
        """Set both LEDs' patterns.

        Args:
            red: Red LED pattern ('off', 'on', 'slow_blink' or 'fast_blink').
            green: Green LED pattern (same values).

        Raises:
            ValueError: If a pattern is not one of those values.
        """
        for name, value in (("red", red), ("green", green)):
            if value not in {p.value for p in LEDPattern}:
                raise ValueError(
                    f"{name} LED pattern {value!r} is not one of "
                    f"{', '.join(p.value for p in LEDPattern)}"
                )
        self._send(GPIOCommand.SET_LED_STATES, (red, green))

    def set_buzzer(self, state: bool) -> None:
        """Turn the buzzer on (until turned off) or off."""
        self._send(GPIOCommand.SET_BUZZER, state)

    def set_buzzer_volume(self, volume: float) -> None:
        """Set the volume from 0.0 (silent: beeps make no sound) to 1.0 (clamped)."""
        _finite("volume", volume)
        self._send(GPIOCommand.SET_BUZZER_VOLUME, volume)

    def set_buzzer_tone(self, freq: float) -> None:
        """Set the tone in Hz (clamped to 20-20000; recorded only, see docs/compat.md)."""
        _finite("freq", freq)
        self._send(GPIOCommand.SET_BUZZER_TONE, freq)

    def buzzer_beep(self, duration: float = 0.1, count: int = 1) -> None:
        """Beep ``count`` times for ``duration`` seconds each, without blocking.

        Raises:
            ValueError: If ``duration`` is negative or not finite, or ``count`` is not a
                non-negative integer.
        """
        timing.beep_pattern(_finite("duration", duration), count, BEEP_GAP_S)
        self._send(GPIOCommand.BUZZER_BEEP, (duration, count))

    def read_button(self) -> bool:
        """Return whether the button is pressed; False if the process does not answer in time."""
        with self._request_lock:
            self._send(GPIOCommand.READ_BUTTON, None)
            try:
                result: bool = self._response_queue.get(timeout=READ_TIMEOUT_S)
            except queue.Empty:
                self._check_alive()
                return False
            return result

    def status(self, timeout: float = 5.0) -> dict[str, Any]:
        """The process's state: backend, LED patterns, buzzer, counters (beyond 0.1.2).

        Raises:
            TimeoutError: If the process does not answer within ``timeout`` seconds.
        """
        with self._request_lock:
            self._send(_STATUS, None)
            try:
                answer: dict[str, Any] = self._response_queue.get(timeout=timeout)
            except queue.Empty:
                self._check_alive()
                raise TimeoutError(f"GPIO process gave no status within {timeout} s") from None
            return answer

    @property
    def pid(self) -> int | None:
        """The GPIO process's id."""
        return self._process.pid

    def cleanup(self) -> None:
        """Turn everything off and stop the process (terminated if it does not exit in 2 s)."""
        try:
            self._command_queue.put((GPIOCommand.SHUTDOWN, None))
            self._process.join(timeout=2.0)
        except Exception:
            logger.exception("stopping the GPIO process failed")
        if self._process.is_alive():
            logger.warning("GPIO process did not exit in 2 s: terminating it")
            self._process.terminate()
            self._process.join(timeout=2.0)

    def _send(self, cmd: Any, args: Any) -> None:
        self._check_alive()
        self._command_queue.put((cmd, args))

    def _check_alive(self) -> None:
        if not self._process.is_alive() and not self._reported_dead:
            self._reported_dead = True
            logger.error(
                "GPIO process %s exited (code %s): LEDs, buzzer and button are not driven",
                self._process.pid,
                self._process.exitcode,
            )
