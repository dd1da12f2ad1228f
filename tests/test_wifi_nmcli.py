from __future__ import annotations

import threading

import pytest

from omgrab.runtime import wifi_connect
from tests import fixtures_gpio

HOTSPOT = [
    "device", "wifi", "hotspot", "ifname", "wlan0",
    "con-name", "omgrab-hotspot", "ssid", "omgrab-setup", "password", "setup-pass-1",
]  # fmt: skip
ACTIVE = ["-t", "-f", "NAME", "connection", "show", "--active"]
DOWN = ["connection", "down", "omgrab-hotspot"]
DELETE = ["connection", "delete", "omgrab-hotspot"]


class Results:
    def __init__(self) -> None:
        self.values: list[bool] = []
        self.done = threading.Event()

    def __call__(self, success: bool) -> None:
        self.values.append(success)
        self.done.set()


def _manager(**kwargs: object) -> wifi_connect.WifiManager:
    options: dict[str, object] = {
        "password": "setup-pass-1",
        "poll_interval_s": 0.2,
        "command_timeout_s": 5.0,
    }
    options.update(kwargs)
    return wifi_connect.WifiManager.with_nmcli(**options)


def _provider(manager: wifi_connect.WifiManager) -> wifi_connect.NmcliHotspotProvider:
    assert manager.provider is not None
    return manager.provider


def _without_polls(calls: list[list[str]]) -> list[list[str]]:
    return [call for call in calls if call != ACTIVE]


def test_hotspot_then_credentials_connect(fake_nmcli: fixtures_gpio.FakeNmcli) -> None:
    manager = _manager()
    results = Results()
    assert manager.start_wifi_connect(callback=results) is True
    assert fake_nmcli.calls()[:2] == [ACTIVE, HOTSPOT]  # "already running?" check first
    assert manager.is_wifi_connect_running() is True
    assert "omgrab-hotspot" in fake_nmcli.state()["active"]
    assert manager.start_wifi_connect() is False  # already running
    _provider(manager).submit_credentials("HomeNet", "correct horse")
    assert results.done.wait(10)
    assert results.values == [True]
    assert _without_polls(fake_nmcli.calls()) == [
        HOTSPOT,
        DOWN,
        DELETE,
        ["--wait", "45", "device", "wifi", "connect", "HomeNet", "password", "correct horse",
         "ifname", "wlan0"],
    ]  # fmt: skip
    state = fake_nmcli.state()
    assert "omgrab-hotspot" not in state["profiles"]
    assert "HomeNet" in state["active"]
    assert manager.is_wifi_connect_running() is False
    assert _provider(manager).last_result is True


def test_wrong_network_password_fails_without_leaking_it(
    fake_nmcli: fixtures_gpio.FakeNmcli,
) -> None:
    manager = _manager()
    results = Results()
    assert manager.start_wifi_connect(callback=results)
    _provider(manager).submit_credentials("HomeNet", "wrong-password")
    assert results.done.wait(10)
    assert results.values == [False]
    error = _provider(manager).last_error or ""
    assert "exited with status 4" in error
    assert "Secrets were required" in error
    assert "wrong-password" not in error
    assert "password ***" in error


def test_a_raising_callback_is_logged_and_the_setup_still_finishes(
    fake_nmcli: fixtures_gpio.FakeNmcli,
) -> None:
    manager = _manager()
    called = threading.Event()

    def bad_callback(success: bool) -> None:
        called.set()
        raise ValueError("ui went away")

    assert manager.start_wifi_connect(callback=bad_callback)
    assert manager.stop_wifi_connect() is True
    assert called.wait(10)
    assert _provider(manager).wait_until_done(10)
    assert "ui went away" in (_provider(manager).last_error or "")
    assert manager.is_wifi_connect_running() is False


def test_stop_cancels_and_tears_down(fake_nmcli: fixtures_gpio.FakeNmcli) -> None:
    manager = _manager()
    results = Results()
    assert manager.start_wifi_connect(callback=results)
    assert manager.stop_wifi_connect() is True
    assert results.values == [False]
    assert _without_polls(fake_nmcli.calls())[-2:] == [DOWN, DELETE]
    assert fake_nmcli.state()["profiles"] == ["Wired connection 1"]
    assert manager.is_wifi_connect_running() is False
    assert manager.stop_wifi_connect() is False


def test_hotspot_failure_exit_code(fake_nmcli: fixtures_gpio.FakeNmcli) -> None:
    fake_nmcli.update(fail={"hotspot": 4})
    manager = _manager()
    results = Results()
    assert manager.start_wifi_connect(callback=results) is False
    error = _provider(manager).last_error or ""
    assert "device wifi hotspot" in error
    assert "exited with status 4" in error
    assert "setup-pass-1" not in error
    assert fake_nmcli.calls() == [ACTIVE, HOTSPOT, DOWN, DELETE]
    assert results.values == []
    assert manager.is_wifi_connect_running() is False


def test_hotspot_command_timeout(fake_nmcli: fixtures_gpio.FakeNmcli) -> None:
    fake_nmcli.update(sleep={"hotspot": 5})
    manager = _manager(command_timeout_s=0.5)
    assert manager.start_wifi_connect() is False
    assert "timed out after" in (_provider(manager).last_error or "")


def test_not_forced_when_already_connected(fake_nmcli: fixtures_gpio.FakeNmcli) -> None:
    fake_nmcli.update(devices={"wlan0": "connected"})
    manager = _manager()
    assert manager.start_wifi_connect(force_mode=False) is False
    assert _without_polls(fake_nmcli.calls()) == [["-t", "-f", "DEVICE,STATE", "device", "status"]]
    assert manager.start_wifi_connect(force_mode=True) is True
    assert manager.stop_wifi_connect() is True


def test_not_forced_when_disconnected_starts(fake_nmcli: fixtures_gpio.FakeNmcli) -> None:
    manager = _manager()
    assert manager.start_wifi_connect(force_mode=False) is True
    assert _without_polls(fake_nmcli.calls())[1] == HOTSPOT
    assert manager.stop_wifi_connect() is True


def test_setup_timeout(fake_nmcli: fixtures_gpio.FakeNmcli) -> None:
    manager = _manager(setup_timeout_s=0.3)
    results = Results()
    assert manager.start_wifi_connect(callback=results)
    assert results.done.wait(10)
    assert results.values == [False]
    assert _without_polls(fake_nmcli.calls())[-2:] == [DOWN, DELETE]


def test_hotspot_disappearing_ends_setup(fake_nmcli: fixtures_gpio.FakeNmcli) -> None:
    manager = _manager()
    results = Results()
    assert manager.start_wifi_connect(callback=results)
    fake_nmcli.update(active=["Wired connection 1"])  # someone took the hotspot down
    assert results.done.wait(10)
    assert results.values == [False]


def test_generated_hotspot_password(fake_nmcli: fixtures_gpio.FakeNmcli) -> None:
    manager = _manager(password=None)
    assert manager.start_wifi_connect()
    calls = _without_polls(fake_nmcli.calls())
    assert "password" not in calls[0]
    assert calls[1] == [
        "-s", "-g", "802-11-wireless-security.psk", "connection", "show", "omgrab-hotspot",
    ]  # fmt: skip
    assert _provider(manager).hotspot_password == "generated-psk-123"
    manager.stop_wifi_connect()


def test_leftover_hotspot_is_running_and_can_be_stopped(
    fake_nmcli: fixtures_gpio.FakeNmcli,
) -> None:
    fake_nmcli.update(active=["omgrab-hotspot"], profiles=["omgrab-hotspot"])
    manager = _manager()
    assert manager.is_wifi_connect_running() is True
    assert manager.start_wifi_connect() is False
    assert manager.stop_wifi_connect() is True
    assert fake_nmcli.state()["profiles"] == []
    assert manager.is_wifi_connect_running() is False


def test_missing_nmcli(fake_nmcli: fixtures_gpio.FakeNmcli) -> None:
    manager = _manager(nmcli="/nonexistent/nmcli")
    assert manager.start_wifi_connect() is False
    assert "cannot run /nonexistent/nmcli" in (_provider(manager).last_error or "")


def test_submit_without_setup_and_bad_arguments(fake_nmcli: fixtures_gpio.FakeNmcli) -> None:
    provider = wifi_connect.NmcliHotspotProvider(password="setup-pass-1")
    with pytest.raises(RuntimeError, match="no WiFi setup"):
        provider.submit_credentials("HomeNet", "correct horse")
    with pytest.raises(ValueError, match="8-63"):
        provider.submit_credentials("HomeNet", "short")
    with pytest.raises(ValueError, match="8-63"):
        wifi_connect.NmcliHotspotProvider(password="1234567")
    with pytest.raises(ValueError, match="band"):
        wifi_connect.NmcliHotspotProvider(band="6ghz")
    with pytest.raises(ValueError, match="poll_interval_s"):
        wifi_connect.NmcliHotspotProvider(poll_interval_s=0)
    with pytest.raises(TypeError, match="either a provider"):
        wifi_connect.WifiManager.with_nmcli(provider, ssid="x")
    assert fake_nmcli.calls() == []
