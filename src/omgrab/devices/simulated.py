"""A software capture device: synthetic RGB + depth cameras and an IMU with fault injection.

``SimulatedCaptureDevice`` stands in for an OAK-D. Its streams are ``SyntheticCamera`` and
``SyntheticImu`` instances wrapped in gates that apply the device's faults (see
``omgrab.devices.faults``). Faults are applied lazily: every read, ``connected`` and ``ready``
first brings the fault state up to the device clock's current time, so scheduled faults work
the same with the real clock and with a ``ManualTimeSource`` (no timer threads).

Under a ``ManualTimeSource`` any waiting (a stalled read until its timeout, a slow frame's
delay, frame pacing) advances the manual clock instead of sleeping, so tests run instantly.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import math
import threading
import time
from collections.abc import Sequence
from typing import Generic, TypeVar

from omgrab import clock as clock_mod
from omgrab.cameras import base as camera_base
from omgrab.cameras import synthetic
from omgrab.devices import base
from omgrab.devices import faults as faults_mod
from omgrab.sensors import base as sensor_base
from omgrab.sensors import synthetic_imu

logger = logging.getLogger(__name__)

DEFAULT_RGB = camera_base.CameraConfig(25, 1280, 800)
DEFAULT_DEPTH = camera_base.CameraConfig(25, 640, 400)

FaultSpec = str | Sequence[faults_mod.Fault]


@dataclasses.dataclass(frozen=True)
class FaultEvent:
    """A fault that was applied or cleared, for tests and logs.

    Attributes:
        elapsed_s: Seconds since the device was opened (None when it was not open).
        kind: The fault kind.
        stream: Stream affected, None for device-wide faults.
        action: ``'start'`` or ``'end'``.
        value: The fault's value (delay or clock step), if any.
        timestamp: Device-clock time when it happened.
    """

    elapsed_s: float | None
    kind: faults_mod.FaultKind
    stream: str | None
    action: str
    value: float | None
    timestamp: datetime.datetime


class _Unavailable(Exception):
    """Raised by the gate; the wrappers turn it into their own error type."""


InnerT = TypeVar("InnerT", synthetic.SyntheticCamera, synthetic_imu.SyntheticImu)
ItemT = TypeVar("ItemT")


class _DeviceStream(Generic[InnerT, ItemT]):
    """What a device's camera and IMU share: name, inner generator, last item, close."""

    _device: SimulatedCaptureDevice
    _name: str
    _inner: InnerT
    _latest: ItemT | None
    _delivered: int

    def _attach(self, device: SimulatedCaptureDevice, name: str, inner: InnerT) -> None:
        self._device = device
        self._name = name
        self._inner = inner
        self._latest = None
        self._delivered = 0

    @property
    def name(self) -> str:
        """Stream name on the device (``'rgb'``, ``'depth'``, ``'imu'``)."""
        return self._name

    @property
    def inner(self) -> InnerT:
        """The synthetic stream generating the data."""
        return self._inner

    @property
    def latest(self) -> ItemT | None:
        """The last item returned, if any (the preview, the console's live IMU values)."""
        return self._latest

    def _delivered_now(self, item: ItemT) -> ItemT:
        """Remember ``item`` as the latest and count it; return it."""
        self._latest = item
        self._delivered += 1
        return item

    def _close(self) -> None:
        self._inner.close()
        self._device._wake()


class SimulatedCamera(
    _DeviceStream[synthetic.SyntheticCamera, camera_base.Frame], camera_base.Camera
):
    """A device's camera: a ``SyntheticCamera`` behind the device's fault gate.

    Like an OAK-D's, frames carry a sequence number (``last_sequence_number``) that counts
    exposure slots since open: a paced camera whose reader fell behind, or whose frames were
    lost to a stall or a disconnect, skips numbers. Numbering restarts at each open.
    """

    def __init__(
        self,
        device: SimulatedCaptureDevice,
        name: str,
        inner: synthetic.SyntheticCamera,
        *,
        pace: bool = True,
    ):
        # The wrapper paces (so faults are evaluated at each frame's due time); the inner
        # camera only renders.
        super().__init__(inner.config, clock=inner.clock, pace=pace)
        self._attach(device, name, inner)
        self._slot_origin: float | None = None
        self._slot: int | None = None
        self._sequence: int | None = None

    @property
    def last_sequence_number(self) -> int | None:
        """Sequence number of the frame most recently returned (None before the first)."""
        return self._sequence

    @property
    def frames_delivered(self) -> int:
        """Frames returned since construction."""
        return self._delivered

    def _open(self) -> None:
        self._slot_origin = None
        self._slot = None
        self._sequence = None
        self._inner.open()

    def _wait_for_slot(self, timeout_s: float | None) -> None:
        super()._wait_for_slot(timeout_s)
        next_due = self._next_due
        if next_due is None:  # reopened meanwhile: number from the next slot
            self._slot = None
            return
        due = next_due - 1.0 / self._config.fps  # the slot just taken
        if self._slot_origin is None:
            self._slot_origin = due
        self._slot = round((due - self._slot_origin) * self._config.fps)

    def _read_frame(self, timeout_s: float | None) -> camera_base.Frame:
        deadline = self._device._deadline(timeout_s)
        try:
            self._device._gate(self._name, deadline, 1.0 / self._config.fps, self)
        except _Unavailable as exc:
            raise camera_base.FrameUnavailableError(str(exc)) from None
        frame = self._delivered_now(self._inner.get_next_frame(None))
        if self._pace and self._slot is not None:
            # A frame the gate held back (stall, slowdown) keeps the slot it was due in; the
            # pacing then restarts at the current slot, skipping the numbers in between.
            if self._sequence is not None and self._slot <= self._sequence:
                self._slot = self._sequence + 1  # never repeat a number (rounding at .5)
            self._sequence = self._slot
        else:
            self._sequence = 0 if self._sequence is None else self._sequence + 1
        return frame


class SimulatedImuSensor(
    _DeviceStream[synthetic_imu.SyntheticImu, sensor_base.Item], sensor_base.Sensor
):
    """A device's IMU: a ``SyntheticImu`` behind the device's fault gate."""

    def __init__(
        self, device: SimulatedCaptureDevice, name: str, inner: synthetic_imu.SyntheticImu
    ):
        super().__init__(clock=inner.clock)
        self._attach(device, name, inner)

    @property
    def items_delivered(self) -> int:
        """Items returned since construction."""
        return self._delivered

    @property
    def nominal_period_s(self) -> float:
        """Time between items (one batch), for capture gap detection."""
        return self._inner.batch_period_s

    def _open(self) -> None:
        self._inner.open()

    def _read_item(self, timeout_s: float | None) -> sensor_base.Item:
        if not self._inner.is_open:
            raise sensor_base.SensorDataUnavailableError(f"stream {self._name!r} is closed")
        # Wait for the batch's due time first, so faults are evaluated at that time.
        deadline = self._device._deadline(timeout_s)
        start = self._inner.wait_for_next_batch(timeout_s)
        try:
            self._device._gate(self._name, deadline, self._inner.batch_period_s, self)
        except _Unavailable as exc:
            raise sensor_base.SensorDataUnavailableError(str(exc)) from None
        return self._delivered_now(self._inner.make_batch(start))


class SimulatedCaptureDevice(base.StreamDevice[camera_base.Camera, sensor_base.Sensor]):
    """A simulated OAK-D-like device: RGB + optional depth + optional IMU on one clock.

    Args:
        label: Device label.
        rgb: RGB camera rate and size.
        depth: Depth camera rate and size, or None for no depth stream.
        imu_rate_hz: IMU sample rate, or None for no IMU.
        clock: Device clock shared by all streams; the process-wide clock by default.
        faults: Faults scheduled relative to open time: a spec string (see
            ``omgrab.devices.faults``) or a sequence of ``Fault``.
        imu_batch_size: IMU readings per item.
        pace: Deliver at the real rates (False: as fast as read).
        seed: Seed for the synthetic images and IMU noise.
        ready_delay_s: Seconds after open before ``ready`` turns True (a real device boots).

    Raises:
        ValueError: For a bad fault spec or a fault naming an unknown stream.
    """

    def __init__(
        self,
        label: str = "sim-0",
        rgb: camera_base.CameraConfig = DEFAULT_RGB,
        depth: camera_base.CameraConfig | None = DEFAULT_DEPTH,
        imu_rate_hz: float | None = 100.0,
        clock: clock_mod.DeviceClock | None = None,
        faults: FaultSpec | None = None,
        *,
        imu_batch_size: int = 10,
        pace: bool = True,
        seed: int = 0,
        ready_delay_s: float = 0.0,
    ) -> None:
        super().__init__(label)  # the streams below need ``self``
        self._clock = clock if clock is not None else clock_mod.default_clock()
        self._manual = isinstance(self._clock.source, clock_mod.ManualTimeSource)
        self._ready_delay = ready_delay_s
        self._cameras["rgb"] = SimulatedCamera(
            self,
            "rgb",
            synthetic.SyntheticCamera(rgb, mode="rgb", clock=self._clock, pace=False, seed=seed),
            pace=pace,
        )
        if depth is not None:
            self._cameras["depth"] = SimulatedCamera(
                self,
                "depth",
                synthetic.SyntheticCamera(
                    depth, mode="depth", clock=self._clock, pace=False, seed=seed + 1
                ),
                pace=pace,
            )
        if imu_rate_hz is not None:
            self._sensors["imu"] = SimulatedImuSensor(
                self,
                "imu",
                synthetic_imu.SyntheticImu(
                    imu_rate_hz, imu_batch_size, clock=self._clock, pace=pace, seed=seed
                ),
            )
        self._cond = threading.Condition()
        # Guarded by _cond: everything below.
        self._faults: list[faults_mod.Fault] = []
        self._pending: list[faults_mod.Fault] = []
        self._open_mono: float | None = None
        self._disconnected_until: float | None = None
        self._stalls: dict[str, float] = {}
        self._slow: dict[str, tuple[float, float]] = {}
        self._events: list[FaultEvent] = []
        self._close_event = threading.Event()
        self._resume: tuple[float, list[faults_mod.Fault]] | None = None
        if faults is not None:
            self.schedule_faults(faults)

    # -- CaptureDevice protocol -------------------------------------------------------------

    @property
    def device_type(self) -> base.DeviceType:
        """Always ``DeviceType.SIMULATED``."""
        return base.DeviceType.SIMULATED

    @property
    def clock(self) -> clock_mod.DeviceClock:
        """The clock every stream stamps with."""
        return self._clock

    @property
    def is_open(self) -> bool:
        """True between open and close."""
        with self._cond:
            return self._open_mono is not None

    @property
    def connected(self) -> bool:
        """False while a disconnect fault is active."""
        with self._cond:
            self._poll_locked()
            return self._disconnected_until is None

    @property
    def ready(self) -> bool:
        """True when open, connected and ``ready_delay_s`` has passed since open."""
        with self._cond:
            self._poll_locked()
            if self._open_mono is None or self._disconnected_until is not None:
                return False
            return self._clock.monotonic() - self._open_mono >= self._ready_delay

    def wait_until_ready(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds (real time) until ``ready``; return ``ready``."""
        end = time.monotonic() + timeout
        while True:
            if self.ready:
                return True
            remaining = end - time.monotonic()
            if remaining <= 0:
                return False
            with self._cond:
                self._cond.wait(min(remaining, 0.01))

    def preview(self) -> camera_base.Frame | None:
        """Return a current RGB frame without taking one from the stream, or None.

        None when the device is closed, disconnected or the RGB stream is stalled. Returns the
        last frame read when it is at most two frame periods old, otherwise renders the next
        frame of the synthetic camera without consuming it.
        """
        camera = self._cameras["rgb"]
        assert isinstance(camera, SimulatedCamera)
        with self._cond:
            self._poll_locked()
            if (
                self._open_mono is None
                or self._disconnected_until is not None
                or "rgb" in self._stalls
            ):
                return None
        latest = camera.latest
        now = self._clock.now()
        if latest is not None:
            age = (now - latest[1]).total_seconds()
            if age <= 2.0 / camera.config.fps:
                return latest
        return camera.inner.render(camera.inner.frames_generated), now

    def open(self) -> None:
        """Open every stream and start the fault schedule (idempotent).

        Like real hardware, the device cannot be opened while it is disconnected. A reopen
        after a close that happened during a disconnect (a reconnect within a recording)
        resumes the fault schedule where it was; any other open restarts it.

        Raises:
            ConnectionError: While a disconnect fault is active.
        """
        with self._cond:
            if self._open_mono is not None:
                return
            self._poll_locked()
            if self._disconnected_until is not None:
                raise ConnectionError(f"device {self._label} is disconnected")
            self._close_event.clear()
            if self._resume is not None:
                self._open_mono, self._pending = self._resume
                self._resume = None
            else:
                self._open_mono = self._clock.monotonic()
                self._pending = sorted(self._faults, key=lambda f: f.at_s)
        self._open_streams()
        with self._cond:
            self._poll_locked()

    def close(self) -> None:
        """Close every stream (idempotent); pending scheduled faults are dropped.

        Closed during a disconnect, the schedule is kept for the reopen (see ``open``).
        """
        with self._cond:
            if self._open_mono is None:
                return
            self._resume = (
                (self._open_mono, list(self._pending))
                if self._disconnected_until is not None
                else None
            )
            self._open_mono = None
            self._pending = []
            self._close_event.set()
            self._cond.notify_all()
        self._close_streams()

    # -- fault injection ----------------------------------------------------------------------

    @property
    def fault_events(self) -> list[FaultEvent]:
        """Faults applied and cleared so far, in order."""
        with self._cond:
            self._poll_locked()
            return list(self._events)

    def schedule_faults(self, faults: FaultSpec) -> None:
        """Add faults scheduled relative to open time (a spec string or ``Fault`` objects).

        Faults added while the device is open whose time has passed apply at the next poll.

        Raises:
            ValueError: For a bad spec or a stream the device does not have.
        """
        parsed = faults_mod.parse_faults(faults) if isinstance(faults, str) else list(faults)
        for fault in parsed:
            self._check_stream(fault.stream)
        with self._cond:
            self._faults.extend(parsed)
            if self._open_mono is not None:
                self._pending = sorted([*self._pending, *parsed], key=lambda f: f.at_s)
                self._poll_locked()

    def inject_disconnect(self, duration_s: float | None = None) -> None:
        """Disconnect now: ``connected`` False, all reads raise; reconnect after ``duration_s``."""
        self._inject(faults_mod.Fault(faults_mod.FaultKind.DISCONNECT, duration_s=duration_s))

    def reconnect(self) -> None:
        """End a disconnect now (a later open restarts the fault schedule)."""
        with self._cond:
            self._resume = None
            if self._disconnected_until is not None:
                self._disconnected_until = None
                self._record(faults_mod.FaultKind.DISCONNECT, None, "end", None)

    def inject_stall(self, stream: str | None = None, duration_s: float | None = None) -> None:
        """Stop one stream (every stream when None) delivering; resume after ``duration_s``."""
        self._inject(
            faults_mod.Fault(faults_mod.FaultKind.STALL, stream=stream, duration_s=duration_s)
        )

    def resume(self, stream: str | None = None) -> None:
        """End a stall of one stream (every stalled stream when None)."""
        self._check_stream(stream)
        with self._cond:
            for name in [stream] if stream is not None else list(self._stalls):
                if self._stalls.pop(name, None) is not None:
                    self._record(faults_mod.FaultKind.STALL, name, "end", None)

    def inject_slow(self, stream: str, delay_s: float, duration_s: float | None = None) -> None:
        """Delay every item of ``stream`` by ``delay_s``; for ``duration_s`` or until cleared."""
        self._inject(
            faults_mod.Fault(
                faults_mod.FaultKind.SLOW, stream=stream, duration_s=duration_s, value=delay_s
            )
        )

    def clear_slow(self, stream: str | None = None) -> None:
        """End the slowdown of one stream (every slowed stream when None)."""
        self._check_stream(stream)
        with self._cond:
            for name in [stream] if stream is not None else list(self._slow):
                if self._slow.pop(name, None) is not None:
                    self._record(faults_mod.FaultKind.SLOW, name, "end", None)

    def inject_clock_step(self, seconds: float) -> None:
        """Step the wall clock by ``seconds`` (ManualTimeSource) or record the event (real)."""
        self._inject(faults_mod.Fault(faults_mod.FaultKind.CLOCK_STEP, value=seconds))

    # -- internals ----------------------------------------------------------------------------

    def _check_stream(self, stream: str | None) -> None:
        if stream is not None and stream not in self._cameras and stream not in self._sensors:
            raise ValueError(
                f"device {self._label!r} has no stream {stream!r} "
                f"(streams: {', '.join(self.stream_names)})"
            )

    def _inject(self, fault: faults_mod.Fault) -> None:
        self._check_stream(fault.stream)
        with self._cond:
            self._apply_locked(fault, self._clock.monotonic())

    def _record(
        self,
        kind: faults_mod.FaultKind,
        stream: str | None,
        action: str,
        value: float | None,
    ) -> None:
        mono = self._clock.monotonic()
        elapsed = None if self._open_mono is None else mono - self._open_mono
        event = FaultEvent(elapsed, kind, stream, action, value, self._clock.to_datetime(mono))
        self._events.append(event)
        logger.info(
            "device %s: fault %s %s%s",
            self._label,
            kind.value,
            action,
            f" on {stream}" if stream else "",
        )
        self._cond.notify_all()

    def _apply_locked(self, fault: faults_mod.Fault, start: float) -> None:
        until = math.inf if fault.duration_s is None else start + fault.duration_s
        kind = fault.kind
        if kind == faults_mod.FaultKind.DISCONNECT:
            self._disconnected_until = until
        elif kind == faults_mod.FaultKind.STALL:
            names = [fault.stream] if fault.stream is not None else self.stream_names
            for name in names:
                self._stalls[name] = until
        elif kind == faults_mod.FaultKind.SLOW:
            assert fault.stream is not None and fault.value is not None
            self._slow[fault.stream] = (fault.value, until)
        elif kind == faults_mod.FaultKind.CLOCK_STEP:
            assert fault.value is not None
            step_wall = getattr(self._clock.source, "step_wall", None)
            if callable(step_wall):  # ManualTimeSource, SteppableSystemTimeSource
                step_wall(fault.value)
            else:
                logger.warning(
                    "device %s: cannot step the real wall clock by %+.3f s; event recorded only",
                    self._label,
                    fault.value,
                )
        self._record(kind, fault.stream, "start", fault.value)

    def _poll_locked(self) -> None:
        """Apply due scheduled faults and expire finished ones (caller holds ``_cond``)."""
        now = self._clock.monotonic()
        if self._open_mono is not None:
            while self._pending and self._open_mono + self._pending[0].at_s <= now:
                fault = self._pending.pop(0)
                self._apply_locked(fault, self._open_mono + fault.at_s)
        if self._disconnected_until is not None and now >= self._disconnected_until:
            self._disconnected_until = None
            self._record(faults_mod.FaultKind.DISCONNECT, None, "end", None)
        for name, until in list(self._stalls.items()):
            if now >= until:
                del self._stalls[name]
                self._record(faults_mod.FaultKind.STALL, name, "end", None)
        for name, (_, until) in list(self._slow.items()):
            if now >= until:
                del self._slow[name]
                self._record(faults_mod.FaultKind.SLOW, name, "end", None)

    def _next_change_locked(self) -> float:
        """Seconds until the next scheduled fault starts or ends (inf when none)."""
        now = self._clock.monotonic()
        times = [*self._stalls.values(), *(until for _, until in self._slow.values())]
        if self._disconnected_until is not None:
            times.append(self._disconnected_until)
        if self._open_mono is not None and self._pending:
            times.append(self._open_mono + self._pending[0].at_s)
        return max(min(times, default=math.inf) - now, 0.0)

    def _deadline(self, timeout_s: float | None) -> float | None:
        return None if timeout_s is None else self._clock.monotonic() + timeout_s

    def _remaining(self, deadline: float | None) -> float | None:
        return None if deadline is None else max(deadline - self._clock.monotonic(), 0.0)

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _wait_locked(self, seconds: float) -> None:
        """Let ``seconds`` (inf: until a state change) pass; caller holds ``_cond``."""
        if seconds <= 0:
            return
        if self._manual and math.isfinite(seconds):
            source = self._clock.source
            assert isinstance(source, clock_mod.ManualTimeSource)
            source.advance(seconds)
        else:
            self._cond.wait(None if math.isinf(seconds) else seconds)

    def _gate(
        self,
        stream: str,
        deadline: float | None,
        period_s: float,
        owner: camera_base.Camera | sensor_base.Sensor,
    ) -> None:
        """Block while ``stream`` is disconnected or stalled, then apply any slowdown.

        A disconnected stream waits at most one period (as a real read would) and then fails;
        a stalled one waits until the deadline or until it resumes.

        Raises:
            _Unavailable: When the stream cannot deliver before the deadline, or was closed.
        """
        waited_disconnected = False
        with self._cond:
            while True:
                if not owner.is_open or self._open_mono is None:
                    raise _Unavailable(f"stream {stream!r} of {self._label} is closed")
                self._poll_locked()
                remaining = self._remaining(deadline)
                if remaining is None:
                    remaining = math.inf
                if self._disconnected_until is not None:
                    if waited_disconnected or remaining <= 0:
                        raise _Unavailable(f"device {self._label} is disconnected")
                    waited_disconnected = True
                    self._wait_locked(min(remaining, period_s, self._next_change_locked()))
                    continue
                if stream in self._stalls:
                    if remaining <= 0:
                        raise _Unavailable(f"stream {stream!r} of {self._label} is stalled")
                    self._wait_locked(min(remaining, self._next_change_locked()))
                    continue
                delay = self._slow.get(stream, (0.0, 0.0))[0]
                break
        if delay > 0:
            self._clock.sleep(delay, interrupt=self._close_event)
