"""Network connectivity monitor with hysteresis and backoff.

Simplified for SDK use: checks local network and internet reachability. No heartbeats or API
probes.

A probe (:meth:`NetworkMonitor.check_once`) runs three steps and stops at the first failure:

1. **Local network** - an interface that is up, has a non-loopback address and carries a default
   route (``/proc/net/route`` / ``/proc/net/ipv6_route`` plus ``psutil``), pinned to one
   interface when the monitor was given ``iface``. Failure means :attr:`Status.OFFLINE`.
2. **DNS** - resolving ``internet_check_host`` within ``dns_timeout``. Failure means
   :attr:`Status.NETWORK_ONLY`.
3. **TCP** - connecting to ``internet_check_host:internet_check_port`` within ``tcp_timeout``.
   Failure means :attr:`Status.NETWORK_ONLY`, success :attr:`Status.ONLINE`.

The monitor thread turns raw probe results into a stable :class:`Snapshot`: it goes down only
after ``down_after_failures`` consecutive worse probes and up after ``up_after_successes``
consecutive better ones. While the stable state is not ONLINE it polls with exponential backoff
from ``poll_min_s`` to ``poll_max_s``; when ONLINE it polls every ``poll_ok_s``. Every interval
gets +/- ``jitter_frac`` random jitter so a fleet of devices does not probe in lockstep.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import logging
import os
import random
import socket
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

import psutil

from omgrab import clock as clock_mod

logger = logging.getLogger(__name__)

_RTF_UP = 0x0001
_RTF_REJECT = 0x0200
_MAX_BACKOFF_EXPONENT = 60


class Status(enum.Enum):
    """Discrete network health states in increasing order of quality.

    The values are the lower-case names used in status JSON (as in omgrab 0.1.2). Members
    compare by quality through ``RANK``: ``Status.OFFLINE < Status.NETWORK_ONLY < Status.ONLINE``.
    """

    OFFLINE = "offline"
    NETWORK_ONLY = "network_only"
    ONLINE = "online"

    @property
    def label(self) -> str:
        """Lower-case name used in status JSON: 'offline', 'network_only' or 'online'."""
        return self.value

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Status):
            return NotImplemented
        return RANK[self] < RANK[other]

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Status):
            return NotImplemented
        return RANK[self] <= RANK[other]

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Status):
            return NotImplemented
        return RANK[self] > RANK[other]

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Status):
            return NotImplemented
        return RANK[self] >= RANK[other]


RANK: dict[Status, int] = {Status.OFFLINE: 0, Status.NETWORK_ONLY: 1, Status.ONLINE: 2}
"""Quality rank of each status (higher is better); the order ``Status`` compares by."""


@dataclasses.dataclass
class Config:
    """Configuration values controlling probes, hysteresis, and backoff.

    Attributes:
        dns_timeout: Timeout in seconds for DNS resolution probes.
        tcp_timeout: Timeout in seconds for TCP connection probes.
        internet_check_host: Hostname used for internet reachability checks.
        internet_check_port: TCP port used for internet reachability checks.
        down_after_failures: Consecutive probe failures before transitioning down.
        up_after_successes: Consecutive probe successes before transitioning up.
        poll_ok_s: Polling interval in seconds when the network is healthy.
        poll_min_s: Minimum polling interval in seconds during backoff.
        poll_max_s: Maximum polling interval in seconds during backoff.
        jitter_frac: Fraction of the polling interval added as random jitter.

    Raises:
        ValueError: If a value is out of range (the message names the field).
    """

    dns_timeout: float = 1.0
    tcp_timeout: float = 1.0
    internet_check_host: str = "dns.google"
    internet_check_port: int = 443
    down_after_failures: int = 3
    up_after_successes: int = 1
    poll_ok_s: float = 5.0
    poll_min_s: float = 1.0
    poll_max_s: float = 20.0
    jitter_frac: float = 0.1

    def __post_init__(self) -> None:
        for name in ("dns_timeout", "tcp_timeout", "poll_ok_s", "poll_min_s", "poll_max_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Config.{name} must be a positive number, got {value!r}")
        for name in ("down_after_failures", "up_after_successes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Config.{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.internet_check_host, str) or not self.internet_check_host:
            raise ValueError(
                f"Config.internet_check_host must be a non-empty string, "
                f"got {self.internet_check_host!r}"
            )
        port = self.internet_check_port
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise ValueError(f"Config.internet_check_port must be in 1..65535, got {port!r}")
        if self.poll_min_s > self.poll_max_s:
            raise ValueError(
                f"Config.poll_min_s ({self.poll_min_s}) must not exceed "
                f"Config.poll_max_s ({self.poll_max_s})"
            )
        jitter = self.jitter_frac
        if not isinstance(jitter, (int, float)) or isinstance(jitter, bool) or not 0 <= jitter < 1:
            raise ValueError(f"Config.jitter_frac must be in [0, 1), got {jitter!r}")


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """Immutable snapshot of the last stable network state.

    Attributes:
        status: Current network health level.
        detail: Human-readable description of the last probe result.
        changed_at: Monotonic timestamp when the status last changed.
    """

    status: Status
    detail: str
    changed_at: float


class ProbeResult(NamedTuple):
    """Raw result of one connectivity probe, before hysteresis.

    Attributes:
        status: Connectivity level the probe reached.
        detail: Human-readable description of what was found or what failed.
    """

    status: Status
    detail: str


class LocalNetwork(NamedTuple):
    """Result of the local-network step.

    Attributes:
        ok: True if an interface is up with a non-loopback address and a default route.
        detail: Human-readable description (the interface used, or what is missing).
        iface: The interface that satisfied the check, or None.
    """

    ok: bool
    detail: str
    iface: str | None


SockAddr = tuple[Any, ...]
Address = tuple[int, SockAddr]
"""A resolved address: ``(socket family, sockaddr)``."""

LocalCheck = Callable[[str | None], LocalNetwork]
Resolver = Callable[[str, int, float], list[Address]]
Connector = Callable[[list[Address], float, str | None], str]
OnChange = Callable[[Snapshot], None]


# --------------------------------------------------------------------------------------------
# Probe steps (module-level so they can be used and tested on their own)


def default_route_interfaces(proc_root: str = "/proc") -> set[str]:
    """Return the interfaces that carry a usable IPv4 or IPv6 default route.

    Args:
        proc_root: Root of the proc filesystem (a fake tree in tests).

    Returns:
        Interface names with an up, non-reject default route (loopback excluded).
    """
    found: set[str] = set()
    try:
        with open(os.path.join(proc_root, "net", "route"), encoding="ascii") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        lines = []
    for line in lines:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            dest = int(fields[1], 16)
            flags = int(fields[3], 16)
            mask = int(fields[7], 16)
        except ValueError:
            continue
        usable = flags & _RTF_UP and not flags & _RTF_REJECT
        if dest == 0 and mask == 0 and usable and fields[0] != "lo":
            found.add(fields[0])
    try:
        with open(os.path.join(proc_root, "net", "ipv6_route"), encoding="ascii") as f:
            lines6 = f.read().splitlines()
    except OSError:
        lines6 = []
    for line in lines6:
        fields = line.split()
        if len(fields) < 10:
            continue
        try:
            dest6 = int(fields[0], 16)
            plen = int(fields[1], 16)
            flags = int(fields[8], 16)
        except ValueError:
            continue
        usable = flags & _RTF_UP and not flags & _RTF_REJECT
        if dest6 == 0 and plen == 0 and usable and fields[9] != "lo":
            found.add(fields[9])
    return found


def _usable_address(family: int, address: str) -> bool:
    if family not in (socket.AF_INET, socket.AF_INET6):
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_unspecified or ip.is_link_local)


def interface_addresses(iface: str) -> list[str]:
    """Return the non-loopback, non-link-local IP addresses of ``iface`` (may be empty)."""
    addrs = psutil.net_if_addrs().get(iface, [])
    return [a.address for a in addrs if _usable_address(a.family, a.address)]


def check_local_network(iface: str | None = None, *, proc_root: str = "/proc") -> LocalNetwork:
    """Check for a usable local network connection.

    Args:
        iface: Only consider this interface when given.
        proc_root: Root of the proc filesystem used for the routing tables.

    Returns:
        Whether an interface is up, has a non-loopback address and carries a default route,
        with a detail naming the interface or what is missing.
    """
    stats = psutil.net_if_stats()
    routes = default_route_interfaces(proc_root)
    if iface is not None:
        if iface not in stats:
            return LocalNetwork(False, f"interface {iface!r} not found", None)
        if not stats[iface].isup:
            return LocalNetwork(False, f"interface {iface!r} is down (or has no carrier)", None)
        addrs = interface_addresses(iface)
        if not addrs:
            return LocalNetwork(False, f"interface {iface!r} has no IP address", None)
        if iface not in routes:
            return LocalNetwork(False, f"no default route via {iface!r}", None)
        return LocalNetwork(True, f"local network via {iface} ({addrs[0]})", iface)
    with_address = [
        name
        for name, st in sorted(stats.items())
        if st.isup and name != "lo" and interface_addresses(name)
    ]
    if not with_address:
        return LocalNetwork(False, "no interface is up with a non-loopback IP address", None)
    for name in with_address:
        if name in routes:
            return LocalNetwork(
                True, f"local network via {name} ({interface_addresses(name)[0]})", name
            )
    return LocalNetwork(False, f"no default route (interfaces up: {', '.join(with_address)})", None)


class _Lookup:
    """One getaddrinfo call on a daemon thread, so a hung resolver cannot block the caller."""

    def __init__(self, host: str, port: int) -> None:
        self.done = threading.Event()
        self.result: list[Address] = []
        self.error: OSError | None = None
        self._host = host
        self._port = port
        self._thread = threading.Thread(target=self._run, name=f"dns-lookup-{host}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            infos = socket.getaddrinfo(
                self._host, self._port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
            self.result = [(int(info[0]), tuple(info[4])) for info in infos]
        except OSError as exc:
            self.error = exc
        except Exception as exc:  # e.g. UnicodeError for an invalid name
            self.error = OSError(f"{type(exc).__name__}: {exc}")
        finally:
            self.done.set()


_lookups_lock = threading.Lock()
_lookups: dict[tuple[str, int], _Lookup] = {}


def resolve_host(host: str, port: int, timeout: float) -> list[Address]:
    """Resolve ``host`` for a TCP connection to ``port`` within ``timeout`` seconds.

    The lookup runs on a daemon thread; if it outlives the timeout, later calls for the same
    host wait on that lookup instead of starting another, so a hung resolver never piles up
    threads.

    Args:
        host: Host name or IP literal.
        port: TCP port.
        timeout: Seconds to wait for the answer.

    Returns:
        Resolved ``(family, sockaddr)`` pairs (never empty).

    Raises:
        TimeoutError: If the lookup did not finish within ``timeout``.
        OSError: If resolution failed (``socket.gaierror`` for an unknown name).
    """
    key = (host, port)
    with _lookups_lock:
        lookup = _lookups.get(key)
        if lookup is None or lookup.done.is_set():
            lookup = _Lookup(host, port)
            _lookups[key] = lookup
    if not lookup.done.wait(timeout):
        raise TimeoutError(f"no answer within {timeout:g} s")
    with _lookups_lock:
        if _lookups.get(key) is lookup:
            del _lookups[key]
    if lookup.error is not None:
        err = lookup.error
        if isinstance(err, socket.gaierror):
            raise socket.gaierror(err.errno, err.strerror)
        raise OSError(err.errno, err.strerror or str(err))
    if not lookup.result:
        raise OSError(f"no addresses for {host!r}")
    return list(lookup.result)


def tcp_connect(addresses: list[Address], timeout: float, iface: str | None = None) -> str:
    """Open (and close) a TCP connection to the first address that accepts one.

    Args:
        addresses: ``(family, sockaddr)`` pairs as returned by :func:`resolve_host`.
        timeout: Total time budget in seconds across all addresses.
        iface: Bind the socket to this interface (``SO_BINDTODEVICE``) when given and allowed.

    Returns:
        The IP address that accepted the connection.

    Raises:
        OSError: If no address accepted a connection (the last error; ``TimeoutError`` when the
            budget ran out).
    """
    if not addresses:
        raise OSError("no addresses to connect to")
    mono = clock_mod.SystemTimeSource()
    deadline = mono.monotonic() + timeout
    last_error: OSError = OSError("no address tried")
    for family, sockaddr in addresses:
        remaining = deadline - mono.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"timed out after {timeout:g} s")
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if iface is not None and hasattr(socket, "SO_BINDTODEVICE"):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
                except OSError as exc:
                    logger.debug("cannot bind probe socket to %s: %s", iface, exc)
            sock.settimeout(remaining)
            sock.connect(sockaddr)
            return str(sockaddr[0])
        except OSError as exc:
            last_error = exc
        finally:
            sock.close()
    raise last_error


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"timed out ({exc})" if str(exc) else "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


# --------------------------------------------------------------------------------------------
# The monitor


class NetworkMonitor:
    """Stateful network monitor with hysteresis and backoff.

    Args:
        cfg: Configuration for network monitoring.
        iface: Optional network interface to monitor.
        clock: Time source for ``changed_at`` (the system's monotonic clock by default).
        probe: Replaces the whole :meth:`check_once` probe (tests, custom probes).
        local_check: Replaces the local-network step; called with ``iface``.
        resolver: Replaces DNS resolution; called with ``(host, port, timeout)``.
        connector: Replaces the TCP step; called with ``(addresses, timeout, iface)``.
        rng: Random source for poll jitter.
    """

    def __init__(
        self,
        cfg: Config,
        iface: str | None = None,
        *,
        clock: clock_mod.TimeSource | None = None,
        probe: Callable[[], ProbeResult] | None = None,
        local_check: LocalCheck | None = None,
        resolver: Resolver | None = None,
        connector: Connector | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not isinstance(cfg, Config):
            raise TypeError(f"cfg must be a network_monitor.Config, got {type(cfg).__name__}")
        if iface is not None and (not isinstance(iface, str) or not iface):
            raise ValueError(f"iface must be a non-empty interface name or None, got {iface!r}")
        self._cfg = cfg
        self._iface = iface
        self._clock: clock_mod.TimeSource = (
            clock if clock is not None else clock_mod.SystemTimeSource()
        )
        self._probe = probe
        self._local_check: LocalCheck = (
            local_check if local_check is not None else check_local_network
        )
        self._resolver: Resolver = resolver if resolver is not None else resolve_host
        self._connector: Connector = connector if connector is not None else tcp_connect
        self._rng = rng if rng is not None else random.Random()

        self._lock = threading.Lock()  # guards the state below
        self._snapshot = Snapshot(Status.OFFLINE, "not checked yet", self._clock.monotonic())
        self._worse_streak = 0
        self._better_streak = 0
        self._backoff_attempt = 0
        self._next_poll_s: float | None = None
        self._last_probe: ProbeResult | None = None
        self._probe_count = 0
        self._probe_errors = 0
        self._callback_errors = 0
        self._loop_errors = 0
        self._last_error: BaseException | None = None

        self._callbacks: list[OnChange] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- public state

    @property
    def config(self) -> Config:
        """The configuration in use."""
        return self._cfg

    @property
    def iface(self) -> str | None:
        """The interface the monitor is pinned to, or None."""
        return self._iface

    @property
    def snapshot(self) -> Snapshot:
        """Return the current stable snapshot."""
        with self._lock:
            return self._snapshot

    @property
    def last_probe(self) -> ProbeResult | None:
        """The most recent raw probe result (before hysteresis), or None before the first."""
        with self._lock:
            return self._last_probe

    @property
    def next_poll_s(self) -> float | None:
        """The interval chosen after the most recent poll, or None before the first."""
        with self._lock:
            return self._next_poll_s

    @property
    def probe_count(self) -> int:
        """Number of probes run."""
        with self._lock:
            return self._probe_count

    @property
    def probe_errors(self) -> int:
        """Number of probes that raised instead of returning a result (counted as OFFLINE)."""
        with self._lock:
            return self._probe_errors

    @property
    def callback_errors(self) -> int:
        """Number of exceptions raised by on-change callbacks."""
        with self._lock:
            return self._callback_errors

    @property
    def loop_errors(self) -> int:
        """Number of unexpected errors caught in the monitor loop."""
        with self._lock:
            return self._loop_errors

    @property
    def last_error(self) -> BaseException | None:
        """The most recent probe, callback or loop error, or None."""
        with self._lock:
            return self._last_error

    @property
    def running(self) -> bool:
        """True while the monitor thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    # ---------------------------------------------------------------- control

    def wake(self) -> None:
        """Wake the monitor loop early.

        The next probe runs immediately and the backoff starts again from ``poll_min_s``.
        """
        with self._lock:
            self._backoff_attempt = 0
        self._wake.set()

    def register_on_change_callback(self, on_network_change: OnChange) -> None:
        """Register a callback to be called on stable network state changes.

        Callbacks run on the monitor thread; an exception in one is logged and counted and
        never stops the monitor or the other callbacks.

        Note: Callbacks must be registered before the monitor is started.

        Args:
            on_network_change: Callback function to register.

        Raises:
            RuntimeError: If the monitor has already started.
            TypeError: If the callback is not callable.
        """
        if self._thread is not None:
            raise RuntimeError(
                "Cannot register callbacks after NetworkMonitor.start(): register them before"
            )
        if not callable(on_network_change):
            raise TypeError(f"on_network_change must be callable, got {on_network_change!r}")
        self._callbacks.append(on_network_change)

    def start(self) -> None:
        """Start the monitor thread.

        Raises:
            RuntimeError: If the monitor was already started.
        """
        if self._thread is not None:
            raise RuntimeError("NetworkMonitor already started (it cannot be restarted)")
        self._thread = threading.Thread(target=self._run, name="network-monitor", daemon=True)
        self._thread.start()

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop the monitor thread.

        Args:
            timeout: Seconds to wait for the thread; by default a little longer than one probe
                can take.
        """
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return
        if timeout is None:
            timeout = self._cfg.dns_timeout + self._cfg.tcp_timeout + 5.0
        thread.join(timeout)
        if thread.is_alive():
            logger.warning("network monitor thread did not stop within %.1f s", timeout)

    # ---------------------------------------------------------------- probing

    def check_once(self) -> ProbeResult:
        """Run a connectivity check: local network, then internet reachability.

        Returns:
            The raw probe result (status reached and a human-readable detail); no hysteresis is
            applied and the stable snapshot is not changed.
        """
        if self._probe is not None:
            return self._probe()
        cfg = self._cfg
        try:
            local = self._local_check(self._iface)
        except Exception as exc:
            return ProbeResult(Status.OFFLINE, f"local network check failed: {_describe(exc)}")
        if not local.ok:
            return ProbeResult(Status.OFFLINE, local.detail)
        target = f"{cfg.internet_check_host}:{cfg.internet_check_port}"
        try:
            addresses = self._resolver(
                cfg.internet_check_host, cfg.internet_check_port, cfg.dns_timeout
            )
        except Exception as exc:
            return ProbeResult(
                Status.NETWORK_ONLY,
                f"{local.detail}; DNS lookup of {cfg.internet_check_host!r} failed: "
                f"{_describe(exc)}",
            )
        try:
            peer = self._connector(addresses, cfg.tcp_timeout, self._iface)
        except Exception as exc:
            return ProbeResult(
                Status.NETWORK_ONLY,
                f"{local.detail}; TCP connect to {target} failed: {_describe(exc)}",
            )
        return ProbeResult(Status.ONLINE, f"{local.detail}; reached {target} ({peer})")

    def poll(self) -> float:
        """Run one probe, apply hysteresis, fire callbacks and choose the next interval.

        The monitor thread calls this in a loop; tests may call it directly (with an injected
        probe, clock and rng) to step the state machine without a thread or any sleeping.

        Returns:
            Seconds to wait before the next poll.
        """
        try:
            result = self.check_once()
            if not isinstance(result, tuple) or not isinstance(result[0], Status):
                raise TypeError(f"probe returned {result!r}, expected ProbeResult(status, detail)")
            result = ProbeResult(result[0], str(result[1]))
        except Exception as exc:
            logger.exception("network probe raised")
            with self._lock:
                self._probe_errors += 1
                self._last_error = exc
            result = ProbeResult(Status.OFFLINE, f"probe error: {_describe(exc)}")
        changed = self._apply(result)
        if changed is not None:
            self._fire(changed)
        return self._choose_interval()

    def _apply(self, result: ProbeResult) -> Snapshot | None:
        cfg = self._cfg
        with self._lock:
            self._probe_count += 1
            self._last_probe = result
            stable = self._snapshot
            if result.status == stable.status:
                self._worse_streak = 0
                self._better_streak = 0
                if result.detail != stable.detail:
                    self._snapshot = dataclasses.replace(stable, detail=result.detail)
                return None
            if result.status < stable.status:
                self._better_streak = 0
                self._worse_streak += 1
                if self._worse_streak < cfg.down_after_failures:
                    return None
            else:
                self._worse_streak = 0
                self._better_streak += 1
                if self._better_streak < cfg.up_after_successes:
                    return None
            self._worse_streak = 0
            self._better_streak = 0
            self._backoff_attempt = 0
            self._snapshot = Snapshot(result.status, result.detail, self._clock.monotonic())
            new = self._snapshot
        logger.info("network %s -> %s: %s", stable.status.label, new.status.label, new.detail)
        return new

    def _choose_interval(self) -> float:
        cfg = self._cfg
        with self._lock:
            pending = self._worse_streak > 0 or self._better_streak > 0
            if pending:
                base = cfg.poll_min_s
            elif self._snapshot.status is Status.ONLINE:
                base = cfg.poll_ok_s
            else:
                exponent = min(self._backoff_attempt, _MAX_BACKOFF_EXPONENT)
                base = min(cfg.poll_max_s, cfg.poll_min_s * 2.0**exponent)
                self._backoff_attempt += 1
            jitter = self._rng.uniform(-cfg.jitter_frac, cfg.jitter_frac) if cfg.jitter_frac else 0
            interval = base * (1.0 + jitter)
            self._next_poll_s = interval
            return interval

    def _fire(self, snap: Snapshot) -> None:
        for callback in list(self._callbacks):
            try:
                callback(snap)
            except Exception as exc:
                logger.exception("network on-change callback %r raised", callback)
                with self._lock:
                    self._callback_errors += 1
                    self._last_error = exc

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                interval = self.poll()
            except Exception as exc:  # a bug in the loop itself: count, log, keep going
                logger.exception("network monitor loop error")
                with self._lock:
                    self._loop_errors += 1
                    self._last_error = exc
                interval = self._cfg.poll_min_s
            if self._stop.is_set():
                break
            self._wake.wait(interval)
            self._wake.clear()
