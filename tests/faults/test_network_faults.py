"""Network faults under the running app: ``omgrab run`` inside a network namespace.

The app runs in the client namespace of ``netns_pair`` (see ``tests/fixtures_network.py``) with
its internet probe pointed at a TCP server in the server namespace, and records throughout.
Faults: the link goes down and comes back; TCP is blackholed (the server's answers to the
client are routed to a blackhole, so connects time out); DNS fails (the probe's name leaves the
namespace's hosts file and its nameserver never answers). Promised: ``status.json``'s network
state follows each fault (offline, then online again) while the recording never stops, and the
merged recording covers the whole time it recorded. Long (~1-2 min: the app's real probe
intervals), so it runs only in the long form (``make faults``).
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from tests import cli_process
from tests.faults import conftest
from tests.fixtures_network import NetnsPair

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(not conftest.LONG, reason="long form only (OMGRAB_FAULTS=1)"),
]


_IN_NS = ("ip", "netns", "exec")
#: The probe's host name: in the client's hosts file, and unknown to its (silent) nameserver.
PROBE_NAME = "probe.omgrab.test"


def _status(data: pathlib.Path) -> dict:
    return cli_process.read_status(data) or {}


def _network(data: pathlib.Path) -> str | None:
    return _status(data).get("network", {}).get("status")


def _blackhole(pair: NetnsPair, add: bool) -> None:
    """Route the server's packets to the client into a blackhole (SYN-ACKs vanish)."""
    verb = "add" if add else "del"
    route = ["route", verb, "blackhole", f"{pair.client_ip}/32"]
    subprocess.run(["ip", "-n", pair.server_ns, *route], check=True, timeout=10)


def _hosts(pair: NetnsPair, with_probe: bool) -> None:
    """The client's hosts file, naming the probe host or not (then only the silent DNS is left)."""
    text = "127.0.0.1 localhost\n"
    if with_probe:
        text += f"{pair.server_ip} {PROBE_NAME}\n"
    pair.set_client_file("hosts", text)


def _link_up(pair: NetnsPair) -> None:
    pair.client_link(True)
    pair.set_default_route(True)


def _faults(pair: NetnsPair) -> list[tuple[str, Callable[[], None], Callable[[], None]]]:
    return [
        ("link down", lambda: pair.client_link(False), lambda: _link_up(pair)),
        ("tcp blackholed", lambda: _blackhole(pair, True), lambda: _blackhole(pair, False)),
        ("dns failing", lambda: _hosts(pair, False), lambda: _hosts(pair, True)),
    ]


def test_status_follows_link_and_tcp_faults_while_recording_goes_on(
    tmp_path: pathlib.Path, netns_pair: NetnsPair
) -> None:
    port = netns_pair.start_tcp_server()
    netns_pair.start_silent_dns()
    netns_pair.set_client_file(
        "resolv.conf", f"nameserver {netns_pair.server_ip}\noptions timeout:1\n"
    )
    _hosts(netns_pair, True)
    data, trigger = tmp_path / "data", tmp_path / "press"
    config = tmp_path / "rig.toml"
    config.write_text(
        f'[rig]\ndata_dir = "{data}"\n'
        "[recording]\nchunk_length_s = 1\n"
        '[device.rgb]\nwidth = 320\nheight = 200\npreset = "ultrafast"\nbitrate = 500000\n'
        "[device.depth]\nwidth = 160\nheight = 100\n"
        f'[network]\nprobe_host = "{PROBE_NAME}"\nprobe_port = {port}\n'
        "[dashboard]\nenabled = false\n"
        f'[gpio]\ntrigger_file = "{trigger}"\n'
    )
    app = subprocess.Popen(
        [
            *_IN_NS,
            netns_pair.client_ns,
            sys.executable,
            "-m",
            "omgrab",
            "run",
            "--config",
            str(config),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_process.env(),
    )
    samples: list[bool] = []
    stop_sampling = threading.Event()

    def sample() -> None:
        while not stop_sampling.wait(0.2):
            samples.append(bool(_status(data).get("recording", {}).get("is_recording")))

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        cli_process.wait_for(lambda: _network(data) == "online", 90, "online at start")
        cli_process.press(trigger)
        cli_process.wait_for(
            lambda: _status(data).get("recording", {}).get("is_recording"), 60, "recording"
        )
        started = time.monotonic()
        sampler.start()
        timeline = []
        for fault, cut, heal in _faults(netns_pair):
            t0 = time.monotonic()
            cut()
            cli_process.wait_for(lambda: _network(data) != "online", 90, f"{fault}: offline")
            t1 = time.monotonic()
            heal()
            cli_process.wait_for(lambda: _network(data) == "online", 90, f"{fault}: online")
            timeline.append((fault, round(t1 - t0, 1), round(time.monotonic() - t1, 1)))
        recorded_for = time.monotonic() - started
        stop_sampling.set()
        sampler.join(5)
        assert samples and all(samples), "the recording stopped during a network fault"
        app.terminate()
        assert app.wait(120) == 0, app.stderr.read() if app.stderr else ""
    finally:
        stop_sampling.set()
        if app.poll() is None:
            app.kill()
            app.wait(30)
    [merged] = sorted((data / "recordings").glob("*.mkv"))
    summary = json.loads(cli_process.omgrab("inspect", "--json", str(merged), cwd=tmp_path).stdout)
    assert summary["duration_s"] >= recorded_for, (summary["duration_s"], recorded_for)
    print(f"FAULTS network {timeline} (fault, s to offline, s to online); {recorded_for:.0f} s")
