"""The real probe inside network namespaces: a veth pair, a TCP server, links cut and restored.

The probe runs in a Python agent started with ``ip netns exec`` in the client namespace, so the
real routing table, interfaces, resolver and sockets of that namespace are used. Only
namespace-local addresses (10.231.7.0/24) are involved.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from .fixtures_network import NetnsAgent, NetnsPair

pytestmark = pytest.mark.netns


def probe(agent: NetnsAgent, pair: NetnsPair, port: int, **cfg: Any) -> dict[str, Any]:
    iface = cfg.pop("iface", None)
    config = {
        "internet_check_host": pair.server_ip,
        "internet_check_port": port,
        "dns_timeout": 0.5,
        "tcp_timeout": 0.5,
        **cfg,
    }
    return agent.request(cmd="probe", cfg=config, iface=iface)


def test_online_through_the_veth_and_offline_when_the_link_is_cut(netns_pair: NetnsPair) -> None:
    port = netns_pair.start_tcp_server()
    agent = netns_pair.agent()

    result = probe(agent, netns_pair, port)
    assert result["status"] == "ONLINE", result
    assert f"local network via {netns_pair.client_if} ({netns_pair.client_ip})" in result["detail"]
    assert f"reached {netns_pair.server_ip}:{port}" in result["detail"]

    pinned = agent.request(
        cmd="probe",
        iface=netns_pair.client_if,
        cfg={
            "internet_check_host": netns_pair.server_ip,
            "internet_check_port": port,
            "tcp_timeout": 0.5,
        },
    )
    assert pinned["status"] == "ONLINE", pinned

    netns_pair.client_link(False)
    result = probe(agent, netns_pair, port)
    assert result["status"] == "OFFLINE", result
    down = agent.request(cmd="local", iface=netns_pair.client_if)
    assert not down["ok"] and "is down" in down["detail"]

    # Bringing the link back does not bring back the default route the kernel dropped.
    netns_pair.client_link(True)
    result = probe(agent, netns_pair, port)
    assert result["status"] == "OFFLINE", result
    assert "no default route" in result["detail"]

    netns_pair.set_default_route(True)
    result = probe(agent, netns_pair, port)
    assert result["status"] == "ONLINE", result


def test_peer_down_means_no_carrier_and_not_online(netns_pair: NetnsPair) -> None:
    port = netns_pair.start_tcp_server()
    agent = netns_pair.agent()
    assert probe(agent, netns_pair, port)["status"] == "ONLINE"
    netns_pair.server_link(False)
    # The kernel reports the peer's carrier loss asynchronously (slowly on a busy machine).
    deadline = time.monotonic() + 10
    while (result := probe(agent, netns_pair, port))["status"] != "OFFLINE":
        assert time.monotonic() < deadline, f"never went offline: {result}"
        time.sleep(0.1)  # waiting for the kernel to report no carrier
    assert "no interface is up" in result["detail"] or "no carrier" in result["detail"]
    netns_pair.server_link(True)
    deadline = time.monotonic() + 10
    while (result := probe(agent, netns_pair, port))["status"] != "ONLINE":
        assert time.monotonic() < deadline, f"never came back online: {result}"
        time.sleep(0.1)  # waiting for the kernel to report carrier again


def test_network_only_when_nothing_listens(netns_pair: NetnsPair) -> None:
    agent = netns_pair.agent()
    result = probe(agent, netns_pair, 9)  # nothing listens on the discard port
    assert result["status"] == "NETWORK_ONLY", result
    assert f"TCP connect to {netns_pair.server_ip}:9 failed" in result["detail"]


def test_name_resolution_through_the_namespace_hosts_file(netns_pair: NetnsPair) -> None:
    port = netns_pair.start_tcp_server()
    netns_pair.set_client_file(
        "hosts", f"127.0.0.1 localhost\n{netns_pair.server_ip} uplink.test\n"
    )
    agent = netns_pair.agent()
    result = probe(agent, netns_pair, port, internet_check_host="uplink.test")
    assert result["status"] == "ONLINE", result
    assert f"reached uplink.test:{port} ({netns_pair.server_ip})" in result["detail"]


def test_dns_timeout_against_a_silent_nameserver(netns_pair: NetnsPair) -> None:
    port = netns_pair.start_tcp_server()
    netns_pair.start_silent_dns()
    netns_pair.set_client_file("hosts", "127.0.0.1 localhost\n")
    netns_pair.set_client_file(
        "resolv.conf", f"nameserver {netns_pair.server_ip}\noptions timeout:2 attempts:1\n"
    )
    agent = netns_pair.agent()
    start = time.monotonic()
    result = probe(agent, netns_pair, port, internet_check_host="uplink.test", dns_timeout=0.3)
    elapsed = time.monotonic() - start
    assert result["status"] == "NETWORK_ONLY", result
    assert "DNS lookup of 'uplink.test' failed: timed out" in result["detail"]
    assert elapsed < 1.5, f"probe took {elapsed:.2f}s despite a 0.3 s DNS timeout"


def test_live_monitor_follows_link_changes_with_hysteresis(netns_pair: NetnsPair) -> None:
    port = netns_pair.start_tcp_server()
    agent = netns_pair.agent()
    cfg = {
        "internet_check_host": netns_pair.server_ip,
        "internet_check_port": port,
        "tcp_timeout": 0.3,
        "dns_timeout": 0.3,
        "down_after_failures": 2,
        "poll_ok_s": 0.05,
        "poll_min_s": 0.05,
        "poll_max_s": 0.1,
        "jitter_frac": 0.0,
    }
    agent.request(cmd="monitor_start", cfg=cfg)
    assert agent.next_event()["status"] == "ONLINE"

    netns_pair.client_link(False)
    event = agent.next_event()
    assert event["status"] == "OFFLINE", event
    assert "is down" in event["detail"] or "no interface is up" in event["detail"]
    snap = agent.request(cmd="snapshot")
    assert snap["status"] == "OFFLINE" and snap["probes"] >= 3  # 1 up + 2 failures at least

    netns_pair.client_link(True)
    netns_pair.set_default_route(True)
    agent.request(cmd="wake")
    assert agent.next_event()["status"] == "ONLINE"
