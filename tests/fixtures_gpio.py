"""Shared pytest fixtures for the gpio, battery and WiFi tests (registered in tests/conftest.py)."""

from __future__ import annotations

import json
import os
import pathlib
import sys
import typing
from collections.abc import Iterator

import pytest

from omgrab import clock, gpio
from omgrab.testing import fake_gpio


@pytest.fixture
def gpio_clock() -> clock.ManualTimeSource:
    """A manual clock for button scripts, blinking and debouncing."""
    return clock.ManualTimeSource(monotonic=100.0)


@pytest.fixture
def sim_gpio(gpio_clock: clock.ManualTimeSource) -> Iterator[fake_gpio.FakeGPIOController]:
    """A simulated GPIO controller on the manual clock."""
    controller = fake_gpio.FakeGPIOController(gpio_clock)
    yield controller
    controller.close()


@pytest.fixture
def gpiod_twin(gpio_clock: clock.ManualTimeSource) -> gpio.GpiodTwin:
    """A software twin of the gpiod module with one chip at /dev/gpiochip0."""
    return gpio.GpiodTwin(clock=gpio_clock.monotonic)


@pytest.fixture
def gpiod_controller(
    gpiod_twin: gpio.GpiodTwin, gpio_clock: clock.ManualTimeSource
) -> Iterator[gpio.GpiodController]:
    """The real gpiod backend on the twin, manual clock, no timer thread (tests call tick())."""
    controller = gpio.GpiodController(gpiod_module=gpiod_twin, clock=gpio_clock, start_thread=False)
    yield controller
    controller.close()


# -- fake nmcli ---------------------------------------------------------------------------

_FAKE_NMCLI = r'''#!{python}
"""A fake nmcli: logs its argv, keeps NetworkManager state in a JSON file, answers like nmcli."""
import json, os, sys, time

root = os.environ["FAKE_NMCLI_DIR"]
state_path = os.path.join(root, "state.json")
with open(state_path) as f:
    state = json.load(f)
args = sys.argv[1:]
with open(os.path.join(root, "calls.jsonl"), "a") as f:
    f.write(json.dumps(args) + "\n")

opts = {{}}
while args and args[0].startswith("-"):
    name = args.pop(0)
    opts[name] = args.pop(0) if name in ("-f", "-g", "-w", "--wait", "--fields") else True

def save():
    with open(state_path + ".tmp", "w") as f:
        json.dump(state, f)
    os.replace(state_path + ".tmp", state_path)

def behave(key):
    time.sleep(state.get("sleep", {{}}).get(key, 0))
    code = state.get("fail", {{}}).get(key)
    if code:
        sys.stderr.write("Error: simulated failure of " + key + ".\n")
        sys.exit(code)

def value(flag):
    return args[args.index(flag) + 1] if flag in args else None

cmd = " ".join(args[:3])
if args[:2] == ["device", "status"]:
    behave("status")
    for dev, st in state["devices"].items():
        print(dev + ":" + st)
elif args[:3] == ["device", "wifi", "hotspot"]:
    behave("hotspot")
    name = value("con-name") or "Hotspot"
    state["profiles"].append(name)
    state["active"].append(name)
    state["devices"][value("ifname")] = "connected"
    save()
    print("Device '%s' successfully activated with 'uuid'." % value("ifname"))
elif args[:3] == ["connection", "show", "--active"]:
    behave("active")
    for name in state["active"]:
        print(name.replace("\\", "\\\\").replace(":", "\\:"))
elif args[:2] == ["connection", "show"]:
    behave("show")
    print(state.get("psk", ""))
elif args[:2] == ["connection", "down"]:
    behave("down")
    if args[2] not in state["active"]:
        sys.stderr.write("Error: '%s' is not an active connection.\n" % args[2])
        sys.exit(10)
    state["active"].remove(args[2])
    save()
elif args[:2] == ["connection", "delete"]:
    behave("delete")
    if args[2] not in state["profiles"]:
        sys.stderr.write("Error: unknown connection '%s'.\n" % args[2])
        sys.exit(10)
    state["profiles"].remove(args[2])
    if args[2] in state["active"]:
        state["active"].remove(args[2])
    save()
elif args[:3] == ["device", "wifi", "list"]:
    behave("list")
    for ssid, signal, security in state.get("visible", []):
        print(ssid.replace("\\", "\\\\").replace(":", "\\:") + ":" + str(signal) + ":" + security)
elif args[:3] == ["device", "wifi", "connect"]:
    behave("connect")
    ssid = args[3]
    if state["networks"].get(ssid, "<none>") != value("password"):
        sys.stderr.write("Error: Connection activation failed: Secrets were required.\n")
        sys.exit(4)
    state["active"].append(ssid)
    state["profiles"].append(ssid)
    save()
else:
    sys.stderr.write("Error: fake nmcli does not know %r\n" % (args,))
    sys.exit(2)
'''


class FakeNmcli:
    """Controls the fake ``nmcli`` placed first on PATH."""

    def __init__(self, directory: pathlib.Path) -> None:
        self.directory = directory
        self.state_path = directory / "state.json"
        self.calls_path = directory / "calls.jsonl"

    def state(self) -> dict[str, typing.Any]:
        return json.loads(self.state_path.read_text())

    def update(self, **changes: typing.Any) -> None:
        state = self.state()
        state.update(changes)
        self.state_path.write_text(json.dumps(state))

    def calls(self) -> list[list[str]]:
        if not self.calls_path.exists():
            return []
        return [json.loads(line) for line in self.calls_path.read_text().splitlines()]


@pytest.fixture
def fake_nmcli(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> FakeNmcli:
    """A fake ``nmcli`` executable first on PATH, logging argv and keeping state in JSON."""
    directory = tmp_path / "fake-nmcli"
    bin_dir = directory / "bin"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "nmcli"
    script.write_text(_FAKE_NMCLI.format(python=sys.executable))
    script.chmod(0o755)
    fake = FakeNmcli(directory)
    fake.state_path.write_text(
        json.dumps(
            {
                "devices": {"wlan0": "disconnected", "eth0": "connected"},
                "active": ["Wired connection 1"],
                "profiles": ["Wired connection 1"],
                "networks": {"HomeNet": "correct horse"},
                "fail": {},
                "sleep": {},
                "psk": "generated-psk-123",
            }
        )
    )
    monkeypatch.setenv("FAKE_NMCLI_DIR", str(directory))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return fake
