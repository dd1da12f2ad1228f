"""The real probe steps: routing-table parsing, DNS against real names, TCP on loopback.

Only loopback and reserved names are used; nothing here needs the internet.
"""

from __future__ import annotations

import pathlib
import socket
import time

import pytest

from omgrab.runtime import network_monitor as nm

from .fixtures_network import LoopbackServer

ROUTE_HEADER = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
)


def write_proc(root: pathlib.Path, route: str = "", ipv6_route: str | None = None) -> str:
    (root / "net").mkdir(parents=True)
    (root / "net" / "route").write_text(ROUTE_HEADER + route)
    if ipv6_route is not None:
        (root / "net" / "ipv6_route").write_text(ipv6_route)
    return str(root)


def fake_local(ok: bool = True) -> nm.LocalCheck:
    def check(iface: str | None) -> nm.LocalNetwork:
        if ok:
            return nm.LocalNetwork(True, f"local network via {iface or 'test0'}", "test0")
        return nm.LocalNetwork(False, "no default route", None)

    return check


# ---------------------------------------------------------------- routing tables


def test_default_route_from_ipv4_table(tmp_path: pathlib.Path) -> None:
    root = write_proc(
        tmp_path,
        "wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n"
        "wlan0\t0001A8C0\t00000000\t0001\t0\t0\t600\t00FFFFFF\t0\t0\t0\n"
        "eth1\t0000000A\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0\n",
    )
    assert nm.default_route_interfaces(root) == {"wlan0"}


def test_routes_that_are_down_rejecting_or_loopback_do_not_count(tmp_path: pathlib.Path) -> None:
    root = write_proc(
        tmp_path,
        "eth0\t00000000\t0101A8C0\t0002\t0\t0\t0\t00000000\t0\t0\t0\n"  # not RTF_UP
        "eth1\t00000000\t00000000\t0201\t0\t0\t0\t00000000\t0\t0\t0\n"  # RTF_REJECT
        "lo\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n"
        "garbage line\n",
        "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
        "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n",
    )
    assert nm.default_route_interfaces(root) == set()


def test_default_route_from_ipv6_table(tmp_path: pathlib.Path) -> None:
    root = write_proc(
        tmp_path,
        "",
        "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 "
        "00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n"
        "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
        "fd000000000000000000000000000001 00000400 00000002 00000000 00000003     usb0\n",
    )
    assert nm.default_route_interfaces(root) == {"usb0"}


def test_missing_proc_files_mean_no_route(tmp_path: pathlib.Path) -> None:
    assert nm.default_route_interfaces(str(tmp_path / "nothing")) == set()


def test_local_check_names_what_is_missing(tmp_path: pathlib.Path) -> None:
    no_routes = write_proc(tmp_path)
    result = nm.check_local_network("no-such-if0", proc_root=no_routes)
    assert not result.ok and "'no-such-if0' not found" in result.detail
    result = nm.check_local_network("lo", proc_root=no_routes)
    assert not result.ok and "'lo' has no IP address" in result.detail


def test_local_check_with_a_real_interface_but_no_route(tmp_path: pathlib.Path) -> None:
    candidates = [
        name
        for name in sorted(nm.psutil.net_if_stats())
        if nm.psutil.net_if_stats()[name].isup and nm.interface_addresses(name)
    ]
    if not candidates:
        pytest.skip("this host has no interface up with a non-loopback address")
    root = write_proc(tmp_path)
    result = nm.check_local_network(candidates[0], proc_root=root)
    assert not result.ok
    assert result.detail == f"no default route via {candidates[0]!r}"
    result = nm.check_local_network(None, proc_root=root)
    assert not result.ok and result.detail.startswith("no default route")
    routed = tmp_path / "routed"
    root = write_proc(
        routed, f"{candidates[0]}\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    )
    result = nm.check_local_network(candidates[0], proc_root=root)
    assert result.ok and result.iface == candidates[0]
    assert result.detail.startswith(f"local network via {candidates[0]} (")


# ---------------------------------------------------------------- DNS


def test_resolve_ip_literal_and_localhost() -> None:
    assert nm.resolve_host("127.0.0.1", 80, 1.0) == [(socket.AF_INET, ("127.0.0.1", 80))]
    families = {family for family, _ in nm.resolve_host("localhost", 8080, 2.0)}
    assert families <= {socket.AF_INET, socket.AF_INET6} and families


def test_resolve_unresolvable_name_fails_quickly() -> None:
    start = time.monotonic()
    with pytest.raises(OSError):
        nm.resolve_host("name.invalid", 443, 2.0)
    assert time.monotonic() - start < 2.5


def test_resolve_times_out_and_does_not_pile_up_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    # A resolver that hangs (the real one hanging needs a silent DNS server: see the netns tests).
    release = nm.threading.Event()
    calls = 0

    def hanging_getaddrinfo(*args: object, **kwargs: object) -> list[object]:
        nonlocal calls
        calls += 1
        release.wait(10)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(nm.socket, "getaddrinfo", hanging_getaddrinfo)
    try:
        with pytest.raises(TimeoutError, match=r"0\.05"):
            nm.resolve_host("hangs.test", 443, 0.05)
        with pytest.raises(TimeoutError):
            nm.resolve_host("hangs.test", 443, 0.05)
        assert calls == 1, "a second lookup was started while the first was still hanging"
    finally:
        release.set()
    with pytest.raises(socket.gaierror):
        nm.resolve_host("hangs.test", 443, 5.0)  # picks up the finished lookup's error


# ---------------------------------------------------------------- TCP


def test_tcp_connect_reaches_a_real_loopback_server(tcp_server: LoopbackServer) -> None:
    peer = nm.tcp_connect([(socket.AF_INET, (tcp_server.host, tcp_server.port))], 1.0)
    assert peer == "127.0.0.1"
    assert tcp_server.accepted.acquire(timeout=5)


def test_tcp_connect_refused(refused_port: int) -> None:
    with pytest.raises(ConnectionRefusedError):
        nm.tcp_connect([(socket.AF_INET, ("127.0.0.1", refused_port))], 1.0)


def test_tcp_connect_tries_the_next_address(tcp_server: LoopbackServer, refused_port: int) -> None:
    addrs = [
        (socket.AF_INET, ("127.0.0.1", refused_port)),
        (socket.AF_INET, (tcp_server.host, tcp_server.port)),
    ]
    assert nm.tcp_connect(addrs, 1.0) == "127.0.0.1"


def test_tcp_connect_with_nothing_to_try() -> None:
    with pytest.raises(OSError, match="no addresses"):
        nm.tcp_connect([], 1.0)


# ---------------------------------------------------------------- check_once with real DNS/TCP


def test_check_once_online_against_loopback_server(tcp_server: LoopbackServer) -> None:
    monitor = nm.NetworkMonitor(
        nm.Config(
            internet_check_host="localhost",
            internet_check_port=tcp_server.port,
            tcp_timeout=0.5,
            dns_timeout=0.5,
        ),
        local_check=fake_local(),
    )
    result = monitor.check_once()
    assert result.status is nm.Status.ONLINE, result.detail
    assert f"reached localhost:{tcp_server.port}" in result.detail
    assert tcp_server.accepted.acquire(timeout=5)
    assert monitor.snapshot.status is nm.Status.OFFLINE  # check_once applies no hysteresis


def test_check_once_network_only_when_tcp_refused(refused_port: int) -> None:
    monitor = nm.NetworkMonitor(
        nm.Config(
            internet_check_host="127.0.0.1", internet_check_port=refused_port, tcp_timeout=0.5
        ),
        local_check=fake_local(),
    )
    result = monitor.check_once()
    assert result.status is nm.Status.NETWORK_ONLY
    assert f"TCP connect to 127.0.0.1:{refused_port} failed" in result.detail
    assert "refused" in result.detail.lower()


def test_check_once_network_only_when_dns_fails() -> None:
    monitor = nm.NetworkMonitor(
        nm.Config(internet_check_host="name.invalid", dns_timeout=2.0),
        local_check=fake_local(),
    )
    result = monitor.check_once()
    assert result.status is nm.Status.NETWORK_ONLY
    assert "DNS lookup of 'name.invalid' failed" in result.detail


def test_check_once_offline_without_local_network_skips_dns_and_tcp() -> None:
    used: list[str] = []

    def resolver(host: str, port: int, timeout: float) -> list[nm.Address]:
        used.append("dns")
        return []

    monitor = nm.NetworkMonitor(nm.Config(), local_check=fake_local(ok=False), resolver=resolver)
    result = monitor.check_once()
    assert result == nm.ProbeResult(nm.Status.OFFLINE, "no default route")
    assert used == []


def test_check_once_local_check_exception_is_offline_with_reason() -> None:
    def broken(iface: str | None) -> nm.LocalNetwork:
        raise PermissionError(13, "Permission denied")

    result = nm.NetworkMonitor(nm.Config(), local_check=broken).check_once()
    assert result.status is nm.Status.OFFLINE
    assert "Permission denied" in result.detail


def test_check_once_passes_iface_and_timeouts_to_the_steps(tcp_server: LoopbackServer) -> None:
    seen: dict[str, object] = {}

    def local(iface: str | None) -> nm.LocalNetwork:
        seen["local"] = iface
        return nm.LocalNetwork(True, "local network via wlan9", iface)

    def resolver(host: str, port: int, timeout: float) -> list[nm.Address]:
        seen["dns"] = (host, port, timeout)
        return [(socket.AF_INET, (tcp_server.host, tcp_server.port))]

    def connector(addrs: list[nm.Address], timeout: float, iface: str | None) -> str:
        seen["tcp"] = (timeout, iface)
        return nm.tcp_connect(addrs, timeout)

    cfg = nm.Config(
        internet_check_host="probe.test", internet_check_port=8443, dns_timeout=0.3, tcp_timeout=0.4
    )
    monitor = nm.NetworkMonitor(
        cfg, "wlan9", local_check=local, resolver=resolver, connector=connector
    )
    assert monitor.check_once().status is nm.Status.ONLINE
    assert seen == {"local": "wlan9", "dns": ("probe.test", 8443, 0.3), "tcp": (0.4, "wlan9")}
