"""A software twin of the ``gpiod`` (libgpiod v2) Python module and a GPIO chip.

No GPIO chip (nor gpio-sim) exists on development machines, so :class:`GpiodTwin` stands in
for the ``gpiod`` module: it offers ``request_lines``, ``LineSettings`` and the ``line`` enums
(``Direction``, ``Value``, ``Bias``, ``Edge``, ``Drive``, ``Clock``) with the same names and
semantics, and :class:`SimulatedChip` exposes the physical line levels so that a test can drive
the button line (bounces included) and read what the LED and buzzer lines were driven to.
:class:`~omgrab.gpio.gpiod_backend.GpiodController` takes it through its ``gpiod_module``
parameter and runs exactly the code it runs on hardware.

Semantics mirrored from libgpiod v2: ``active_low`` inverts between the logical ``Value`` and the
physical level; an undriven input follows its bias (pull-up high, otherwise low); outputs start
at ``output_value`` (or the request's ``output_values``); a line can be requested once; a
missing chip raises ``FileNotFoundError``; a released request raises on use.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import errno
import threading
import time
import types
from collections.abc import Callable, Iterable
from typing import Any


class Direction(enum.Enum):
    """Line direction."""

    AS_IS = 1
    INPUT = 2
    OUTPUT = 3


class Value(enum.Enum):
    """Logical line value."""

    INACTIVE = 0
    ACTIVE = 1

    def __bool__(self) -> bool:
        return self is Value.ACTIVE


class Bias(enum.Enum):
    """Internal bias."""

    AS_IS = 1
    UNKNOWN = 2
    DISABLED = 3
    PULL_UP = 4
    PULL_DOWN = 5


class Drive(enum.Enum):
    """Output drive."""

    PUSH_PULL = 1
    OPEN_DRAIN = 2
    OPEN_SOURCE = 3


class Edge(enum.Enum):
    """Edge detection."""

    NONE = 1
    RISING = 2
    FALLING = 3
    BOTH = 4


class Clock(enum.Enum):
    """Event clock."""

    MONOTONIC = 1
    REALTIME = 2
    HTE = 3


@dataclasses.dataclass
class LineSettings:
    """Line properties, field for field as ``gpiod.LineSettings``."""

    direction: Direction = Direction.AS_IS
    edge_detection: Edge = Edge.NONE
    bias: Bias = Bias.AS_IS
    drive: Drive = Drive.PUSH_PULL
    active_low: bool = False
    debounce_period: datetime.timedelta = dataclasses.field(default_factory=datetime.timedelta)
    event_clock: Clock = Clock.MONOTONIC
    output_value: Value = Value.INACTIVE


class RequestReleasedError(Exception):
    """Raised when a released line request is used (as ``gpiod.RequestReleasedError``)."""


@dataclasses.dataclass
class _Line:
    settings: LineSettings
    consumer: str
    request: SimulatedLineRequest
    physical: bool


class SimulatedChip:
    """The lines of one simulated GPIO chip.

    Args:
        path: Device path the chip answers to.
        num_lines: Number of lines (offsets ``0 .. num_lines - 1``).
        clock: Time function used to timestamp output changes (``time.monotonic``).
    """

    def __init__(
        self, path: str, num_lines: int = 54, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.path = path
        self.num_lines = num_lines
        self._clock = clock
        self._lock = threading.Lock()  # guards every field below
        self._lines: dict[int, _Line] = {}
        self._external: dict[int, bool] = {}
        self._history: dict[int, list[tuple[float, bool]]] = {}
        self._errors: list[BaseException] = []
        self.reads = 0
        self.writes = 0

    # -- test side ------------------------------------------------------------------------

    def drive(self, offset: int, high: bool | None) -> None:
        """Drive an input line from outside: True high, False low, None let it float."""
        with self._lock:
            if high is None:
                self._external.pop(offset, None)
            else:
                self._external[offset] = high

    def physical_level(self, offset: int) -> bool:
        """Return the physical level of a line (output as driven, input as seen)."""
        with self._lock:
            return self._physical(offset)

    def history(self, offset: int) -> list[tuple[float, bool]]:
        """Return every physical level written to an output as ``(time, high)``."""
        with self._lock:
            return list(self._history.get(offset, []))

    def settings(self, offset: int) -> LineSettings:
        """Return the settings a line was requested with."""
        with self._lock:
            if offset not in self._lines:
                raise KeyError(f"line {offset} of {self.path} is not requested")
            return self._lines[offset].settings

    def consumer(self, offset: int) -> str | None:
        """Return the consumer holding a line, or None if it is free."""
        with self._lock:
            line = self._lines.get(offset)
            return line.consumer if line is not None else None

    def requested_offsets(self) -> list[int]:
        """Return the offsets currently requested."""
        with self._lock:
            return sorted(self._lines)

    def fail_next(self, error: BaseException, count: int = 1) -> None:
        """Make the next ``count`` line reads or writes raise ``error``."""
        with self._lock:
            self._errors.extend([error] * count)

    # -- gpiod side -----------------------------------------------------------------------

    def _physical(self, offset: int) -> bool:
        line = self._lines.get(offset)
        if line is not None and line.settings.direction is Direction.OUTPUT:
            return line.physical
        if offset in self._external:
            return self._external[offset]
        return line is not None and line.settings.bias is Bias.PULL_UP

    def _claim(
        self,
        settings: dict[int, LineSettings],
        consumer: str,
        request: SimulatedLineRequest,
        output_values: dict[int, Value],
    ) -> None:
        with self._lock:
            for offset in settings:
                if not 0 <= offset < self.num_lines:
                    raise ValueError(f"line offset {offset} out of range for {self.path}")
                if offset in self._lines:
                    raise OSError(errno.EBUSY, "Device or resource busy", self.path)
            now = self._clock()
            for offset, line_settings in settings.items():
                value = output_values.get(offset, line_settings.output_value)
                physical = bool(value is Value.ACTIVE) != line_settings.active_low
                self._lines[offset] = _Line(line_settings, consumer, request, physical)
                if line_settings.direction is Direction.OUTPUT:
                    self._history.setdefault(offset, []).append((now, physical))

    def _release(self, request: SimulatedLineRequest) -> None:
        with self._lock:
            for offset in [o for o, line in self._lines.items() if line.request is request]:
                del self._lines[offset]

    def _take_error(self) -> None:
        if self._errors:
            raise self._errors.pop(0)

    def _get(self, request: SimulatedLineRequest, offset: int) -> Value:
        with self._lock:
            self._take_error()
            line = self._owned(request, offset)
            self.reads += 1
            logical = self._physical(offset) != line.settings.active_low
            return Value.ACTIVE if logical else Value.INACTIVE

    def _set(self, request: SimulatedLineRequest, offset: int, value: Value) -> None:
        if not isinstance(value, Value):
            raise TypeError(f"expected a gpiod.line.Value, got {value!r}")
        with self._lock:
            self._take_error()
            line = self._owned(request, offset)
            if line.settings.direction is not Direction.OUTPUT:
                raise OSError(errno.EPERM, "Operation not permitted", self.path)
            self.writes += 1
            physical = bool(value is Value.ACTIVE) != line.settings.active_low
            if physical != line.physical:
                line.physical = physical
                self._history.setdefault(offset, []).append((self._clock(), physical))

    def _owned(self, request: SimulatedLineRequest, offset: int) -> _Line:
        line = self._lines.get(offset)
        if line is None or line.request is not request:
            raise ValueError(f"line {offset} is not part of this request")
        return line


class SimulatedLineRequest:
    """A granted line request, as ``gpiod.LineRequest``."""

    def __init__(self, chip: SimulatedChip, offsets: list[int]) -> None:
        self._chip = chip
        self._offsets = offsets
        self._released = False

    @property
    def offsets(self) -> list[int]:
        """The requested offsets."""
        return list(self._offsets)

    @property
    def chip_name(self) -> str:
        """The chip's path."""
        return self._chip.path

    def get_value(self, line: int) -> Value:
        """Return the logical value of one line."""
        self._check_released()
        return self._chip._get(self, line)

    def get_values(self, lines: Iterable[int] | None = None) -> list[Value]:
        """Return the logical values of several lines (all by default)."""
        return [self.get_value(offset) for offset in (lines or self._offsets)]

    def set_value(self, line: int, value: Value) -> None:
        """Set the logical value of one output line."""
        self._check_released()
        self._chip._set(self, line, value)

    def set_values(self, values: dict[int, Value]) -> None:
        """Set the logical values of several output lines."""
        for offset, value in values.items():
            self.set_value(offset, value)

    def release(self) -> None:
        """Release the lines."""
        self._check_released()
        self._chip._release(self)
        self._released = True

    def __bool__(self) -> bool:
        return not self._released

    def __enter__(self) -> SimulatedLineRequest:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def _check_released(self) -> None:
        if self._released:
            raise RequestReleasedError("GPIO lines have been released")


class GpiodTwin:
    """Stands in for the ``gpiod`` module; holds the simulated chips by path.

    Args:
        chip_paths: Paths of the chips that exist (``/dev/gpiochip0`` by default).
        num_lines: Lines per chip.
        clock: Time function for output history timestamps.
    """

    __version__ = "2.twin"

    def __init__(
        self,
        chip_paths: Iterable[str] = ("/dev/gpiochip0",),
        num_lines: int = 54,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Module-level names of gpiod, as instance attributes.
        self.LineSettings = LineSettings
        self.RequestReleasedError = RequestReleasedError
        self.line = types.SimpleNamespace(
            Direction=Direction, Value=Value, Bias=Bias, Drive=Drive, Edge=Edge, Clock=Clock
        )
        self.chips = {path: SimulatedChip(path, num_lines, clock) for path in chip_paths}
        self.requests: list[dict[str, Any]] = []

    def chip(self, path: str = "/dev/gpiochip0") -> SimulatedChip:
        """Return the simulated chip at ``path``."""
        return self.chips[path]

    def is_gpiochip_device(self, path: str) -> bool:
        """Return True if a simulated chip answers to ``path``."""
        return path in self.chips

    def request_lines(
        self,
        path: str,
        config: dict[Any, LineSettings | None],
        consumer: str | None = None,
        event_buffer_size: int | None = None,
        output_values: dict[int, Value] | None = None,
    ) -> SimulatedLineRequest:
        """Request lines of the chip at ``path`` (as ``gpiod.request_lines``)."""
        chip = self.chips.get(path)
        if chip is None:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        settings: dict[int, LineSettings] = {}
        for key, value in config.items():
            keys = key if isinstance(key, tuple | list | frozenset) else (key,)
            for offset in keys:
                if not isinstance(offset, int):
                    raise TypeError(f"line names are not simulated; got {offset!r}")
                if value is not None and not isinstance(value, LineSettings):
                    raise TypeError(f"expected LineSettings for line {offset}, got {value!r}")
                settings[offset] = value if value is not None else LineSettings()
        request = SimulatedLineRequest(chip, sorted(settings))
        chip._claim(settings, consumer or "?", request, dict(output_values or {}))
        self.requests.append({"path": path, "consumer": consumer, "config": settings})
        return request
