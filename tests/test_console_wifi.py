"""Wi-Fi setup from the console with the nmcli twin: list networks, submit, see the outcome."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from omgrab.app import device_app
from omgrab.app.web import security
from omgrab.runtime import wifi_connect
from tests import test_app

CSRF = {security.CSRF_HEADER: "1"}
VISIBLE = [
    ["HomeNet", 72, "WPA2"],
    ["Lab:North", 40, "WPA1 WPA2"],
    ["HomeNet", 30, "WPA2"],  # a second access point of the same network
    ["", 55, "WPA2"],  # hidden
    ["omgrab-setup", 99, "WPA2"],  # the device's own hotspot
    ["Cafe", 20, ""],
]


@pytest.fixture
def wifi_app(tmp_path, fake_nmcli):
    fake_nmcli.update(visible=VISIBLE)
    provider = wifi_connect.NmcliHotspotProvider(poll_interval_s=0.1, connect_timeout_s=5)
    manager = wifi_connect.WifiManager.with_nmcli(provider)
    app = device_app.DeviceApp(
        test_app.small_config(tmp_path, dashboard_port=0, perception=False),
        wifi_manager=manager,
    )
    app.start()
    yield app, fake_nmcli
    app.stop()


def wait_for_wifi(client: httpx.Client, outcome: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        wifi = client.get("/api/status").json()["wifi"]
        if wifi["outcome"] == outcome:
            return wifi
        assert time.monotonic() < deadline, wifi
        threading.Event().wait(0.1)


def test_networks_are_listed_strongest_first_without_hidden_or_the_hotspot(wifi_app) -> None:
    app, _nmcli = wifi_app
    with httpx.Client(base_url=app.dashboard_url, timeout=20, headers=CSRF) as client:
        networks = client.get("/api/wifi/networks").json()
    assert networks == [
        {"ssid": "HomeNet", "signal": 72, "security": "WPA2"},
        {"ssid": "Lab:North", "signal": 40, "security": "WPA1 WPA2"},
        {"ssid": "Cafe", "signal": 20, "security": "open"},
    ]


@pytest.mark.parametrize(
    ("password", "outcome"), [("correct horse", "joined"), ("wrong-pass", "failed")]
)
def test_long_press_setup_then_credentials_from_the_console(wifi_app, password, outcome) -> None:
    app, nmcli = wifi_app
    with httpx.Client(base_url=app.dashboard_url, timeout=20, headers=CSRF) as client:
        before = client.post("/api/wifi/connect", json={"ssid": "HomeNet", "password": password})
        assert before.status_code == 409 and "no WiFi setup" in before.json()["error"]
        assert client.post("/api/button/long").json()["state"] == "wifi_setup"
        wifi = wait_for_wifi(client, "waiting")
        assert wifi["setup_active"] is True and wifi["hotspot_ssid"] == "omgrab-setup"
        bad = client.post("/api/wifi/connect", json={"ssid": "HomeNet", "password": "short"})
        assert bad.status_code == 400 and "8-63" in bad.json()["error"]
        malformed = client.post("/api/wifi/connect", content=b"{nope")
        assert malformed.status_code == 400
        sent = client.post("/api/wifi/connect", json={"ssid": "HomeNet", "password": password})
        assert sent.json() == {"submitted": "HomeNet"}
        wifi = wait_for_wifi(client, outcome)
        if outcome == "failed":
            assert "Secrets were required" in wifi["last_error"]
        deadline = time.monotonic() + 10
        while client.get("/api/status").json()["state"] != "idle":
            assert time.monotonic() < deadline
            threading.Event().wait(0.1)
    connects = [c for c in nmcli.calls() if c[2:5] == ["device", "wifi", "connect"]]
    expected = ["--wait", "5", "device", "wifi", "connect", "HomeNet"]
    assert connects == [[*expected, "password", password, "ifname", "wlan0"]]
    assert ("HomeNet" in nmcli.state()["active"]) == (outcome == "joined")
