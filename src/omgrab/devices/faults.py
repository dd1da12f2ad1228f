"""Fault descriptions for the simulated capture device, and a spec-string parser for the CLI.

Grammar (whitespace around tokens is ignored; an empty spec means no faults)::

    spec   := fault ( ";" fault )*
    fault  := kind [ ":" stream ] [ "@" at ] [ "+" duration ] [ "=" value ]
    kind   := "disconnect" | "stall" | "slow" | "clock_step"

``at`` is seconds since the device was opened (default 0: at open), ``duration`` seconds
until the fault clears by itself (default: never), ``value`` a number whose meaning depends on
the kind. All numbers are decimal seconds.

============  ========  ==========  =========================================================
kind          stream    value       effect
============  ========  ==========  =========================================================
disconnect    not used  not used    ``connected`` becomes False and every stream's reads
                                    raise; with ``+duration`` the device comes back.
stall         optional  not used    that stream (every stream when omitted) stops delivering;
                                    the others continue; ``+duration`` resumes it.
slow          required  required    each item of that stream is delayed by ``value`` seconds
                                    (> 0); ``+duration`` ends the slowdown.
clock_step    not used  required    steps the wall clock by ``value`` seconds (either sign) on
                                    a ``ManualTimeSource``; only recorded on a real clock.
============  ========  ==========  =========================================================

Examples: ``"disconnect@5"``, ``"stall:depth@2+3"``, ``"slow:rgb@1+2=0.2"``,
``"clock_step@3=-3600"``, or all of them joined with ``;``.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re

_STREAM_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


class FaultKind(enum.Enum):
    """What goes wrong."""

    DISCONNECT = "disconnect"
    STALL = "stall"
    SLOW = "slow"
    CLOCK_STEP = "clock_step"


@dataclasses.dataclass(frozen=True)
class Fault:
    """One scheduled fault.

    Attributes:
        kind: What goes wrong.
        at_s: Seconds after the device is opened.
        stream: Stream affected (``stall``: None means every stream; ``slow``: required).
        duration_s: Seconds until the fault clears by itself; None: it persists.
        value: ``slow``: delay per item in seconds; ``clock_step``: wall-clock step in seconds.
    """

    kind: FaultKind
    at_s: float = 0.0
    stream: str | None = None
    duration_s: float | None = None
    value: float | None = None

    def __post_init__(self) -> None:
        where = f"fault {self.kind.value!r}"
        if not math.isfinite(self.at_s) or self.at_s < 0:
            raise ValueError(f"{where}: start time must be >= 0 s, got {self.at_s!r}")
        if self.duration_s is not None and not (
            math.isfinite(self.duration_s) and self.duration_s > 0
        ):
            raise ValueError(f"{where}: duration must be > 0 s, got {self.duration_s!r}")
        if self.stream is not None and not _STREAM_RE.match(self.stream):
            raise ValueError(
                f"{where}: stream name {self.stream!r} must be letters, digits, '_', '-' or '.'"
            )
        if self.kind in (FaultKind.DISCONNECT, FaultKind.CLOCK_STEP) and self.stream is not None:
            raise ValueError(f"{where} applies to the whole device, not stream {self.stream!r}")
        if self.kind in (FaultKind.DISCONNECT, FaultKind.STALL) and self.value is not None:
            raise ValueError(f"{where} takes no '=value', got {self.value!r}")
        if self.kind == FaultKind.SLOW:
            if self.stream is None:
                raise ValueError(f"{where} needs a stream, e.g. 'slow:rgb@1=0.2'")
            if self.value is None or not (math.isfinite(self.value) and self.value > 0):
                raise ValueError(f"{where} needs a delay '=seconds' > 0, got {self.value!r}")
        if self.kind == FaultKind.CLOCK_STEP:
            if self.value is None or not math.isfinite(self.value):
                raise ValueError(f"{where} needs a step '=seconds', got {self.value!r}")
            if self.duration_s is not None:
                raise ValueError(f"{where} is instantaneous and takes no '+duration'")

    @property
    def spec(self) -> str:
        """The fault in the spec grammar; ``parse_fault(fault.spec) == fault``."""
        text = self.kind.value
        if self.stream is not None:
            text += f":{self.stream}"
        text += f"@{self.at_s!r}"
        if self.duration_s is not None:
            text += f"+{self.duration_s!r}"
        if self.value is not None:
            text += f"={self.value!r}"
        return text


def format_faults(faults: list[Fault]) -> str:
    """Return a spec string that ``parse_faults`` turns back into ``faults``."""
    return ";".join(fault.spec for fault in faults)


_FAULT_RE = re.compile(
    r"""^(?P<kind>[A-Za-z_]+)
        (?::(?P<stream>[^@+=]*))?
        (?:@(?P<at>[^+=]*))?
        (?:\+(?P<duration>[^=]*))?
        (?:=(?P<value>.*))?$""",
    re.VERBOSE,
)


def _number(token: str, part: str, text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"bad fault {token!r}: {part} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"bad fault {token!r}: {part} {text!r} is not finite")
    return value


def parse_fault(token: str) -> Fault:
    """Parse one fault such as ``'stall:depth@2+3'``.

    Raises:
        ValueError: Naming the token and what is wrong with it.
    """
    text = token.strip()
    match = _FAULT_RE.match(text)
    if match is None:
        raise ValueError(f"bad fault {token!r}: expected kind[:stream][@at][+duration][=value]")
    try:
        kind = FaultKind(match["kind"].lower())
    except ValueError:
        known = ", ".join(k.value for k in FaultKind)
        raise ValueError(
            f"bad fault {token!r}: unknown kind {match['kind']!r} (known: {known})"
        ) from None
    stream = match["stream"]
    if stream is not None:
        stream = stream.strip()
        if not stream:
            raise ValueError(f"bad fault {token!r}: empty stream name after ':'")
    at_s = 0.0 if match["at"] is None else _number(token, "start time", match["at"])
    duration = None if match["duration"] is None else _number(token, "duration", match["duration"])
    value = None if match["value"] is None else _number(token, "value", match["value"])
    try:
        return Fault(kind, at_s=at_s, stream=stream, duration_s=duration, value=value)
    except ValueError as exc:
        raise ValueError(f"bad fault {token!r}: {exc}") from None


def parse_faults(spec: str) -> list[Fault]:
    """Parse a ``;``-separated fault spec (see the module docstring for the grammar).

    Args:
        spec: E.g. ``"disconnect@5;stall:depth@2+3;slow:rgb@1+2=0.2;clock_step@3=-3600"``.

    Returns:
        The faults in the order given.

    Raises:
        ValueError: Naming the first bad token.
    """
    faults = []
    for token in spec.split(";"):
        if token.strip():
            faults.append(parse_fault(token))
    return faults
