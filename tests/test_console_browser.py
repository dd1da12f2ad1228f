"""The console in the Debian chromium, driven by Playwright (no downloaded browsers).

Clicks start and stop, sees the recording in the list, downloads it (whole and with a Range
request) and checks its bytes, plays the RGB track, runs the Wi-Fi setup page against the nmcli
twin, and shows that a page from another origin can neither start a recording nor read the
status. ``OMGRAB_UPDATE_SCREENSHOTS=1`` also writes the idle, recording and recordings-list
screenshots to ``docs/``.
"""

from __future__ import annotations

import datetime
import http.server
import os
import pathlib
import shutil
import threading
from collections.abc import Iterator

import pytest

from omgrab.app import device_app, upload_service
from omgrab.runtime import wifi_connect
from omgrab.upload import config as upload_config
from omgrab.upload import uploader as uploader_mod
from tests import test_app, upload_factory

sync_api = pytest.importorskip("playwright.sync_api")
sync_api.expect.set_options(timeout=30_000)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTED = datetime.datetime(2026, 11, 22, 2, 40, 11, tzinfo=datetime.UTC)
ENV = {"AWS_ACCESS_KEY_ID": "AKIAOMGRABTEST000001", "AWS_SECRET_ACCESS_KEY": "x"}
DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium not installed")


@pytest.fixture
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=60_000)
        yield launched
        launched.close()


@pytest.fixture
def running(tmp_path, fake_nmcli):
    fake_nmcli.update(visible=[["HomeNet", 80, "WPA2"], ["Cafe", 30, ""]])
    manager = wifi_connect.WifiManager.with_nmcli(
        wifi_connect.NmcliHotspotProvider(poll_interval_s=0.1, connect_timeout_s=5)
    )
    config = test_app.small_config(tmp_path, dashboard_port=0)
    app = device_app.DeviceApp(config, wifi_manager=manager)
    app.start()
    yield app
    app.stop()


def screenshot(page, name: str, tmp_path: pathlib.Path) -> None:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("OMGRAB_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(path, DOCS / name)


def test_start_stop_list_download_play_in_chromium(running, browser, tmp_path) -> None:
    app = running
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(app.dashboard_url + "/")
    expect = sync_api.expect
    expect(page.locator("#state")).to_have_text("idle")
    expect(page.locator("#storage")).to_contain_text("GB free")
    # The live view runs in idle: the MJPEG image has real pixels.
    page.wait_for_function("document.getElementById('live-rgb').naturalWidth === 320")
    page.wait_for_function("document.getElementById('live-depth').naturalWidth === 160")
    screenshot(page, "console-idle.png", tmp_path)

    page.click("#start")
    expect(page.locator("#state")).to_have_text("recording")
    expect(page.locator("#streams tr")).to_have_count(3)
    page.wait_for_function(
        "[...document.querySelectorAll('#streams tr td:nth-child(2)')]"
        ".every((td) => parseFloat(td.textContent) > 0)"
    )
    expect(page.locator("#current")).to_contain_text("KB")
    expect(page.locator("#storage-detail")).to_contain_text("h left at")
    page.wait_for_timeout(1500)
    screenshot(page, "console-recording.png", tmp_path)

    page.click("#stop")
    expect(page.locator("#state")).to_have_text("idle")
    assert app.wait_for_recordings(1, 60)
    rid = app.completed[0].stem
    row = page.locator(f'#recordings tr[data-id="{rid}"]')
    expect(row).to_have_count(1, timeout=30_000)
    expect(row).to_contain_text("rgb, depth, imu")
    screenshot(page, "console-recordings.png", tmp_path)

    data = (app.config.recordings_dir / f"{rid}.mkv").read_bytes()
    # A download through the page's link: the same bytes as on the device.
    with page.expect_download() as info:
        row.locator("a.download").click()
    saved = tmp_path / "downloaded.mkv"
    info.value.save_as(saved)
    assert saved.read_bytes() == data
    # A Range request from the page: a resumed download gets exactly the missing bytes.
    got = page.evaluate(
        """async (url) => {
            const r = await fetch(url, { headers: { Range: "bytes=1000-1999" } });
            return { status: r.status, bytes: Array.from(new Uint8Array(await r.arrayBuffer())) };
        }""",
        f"/api/recordings/{rid}/download",
    )
    assert got["status"] == 206 and bytes(got["bytes"]) == data[1000:2000]

    # Play the RGB track: the video element decodes frames and time advances.
    row.locator("button.play").click()
    page.wait_for_function(
        "(() => { const v = document.getElementById('player');"
        " return v.readyState >= 2 && v.videoWidth === 320 && v.currentTime > 0.3; })()"
    )

    # No uploader: no Upload card. One appears (paused while "recording"): the card shows it.
    expect(page.locator("#upload-card")).to_be_hidden()
    pending = tmp_path / "pending"
    mkv, _ = upload_factory.make_recording(pending, "rec-9", 5000, STARTED)
    backlog_kb = (mkv.stat().st_size + mkv.with_suffix(".json").stat().st_size) / 1000
    config = upload_config.UploadConfig.from_mapping(
        {
            "bucket": "rig-data",
            "endpoint_url": "http://127.0.0.1:9",
            "state_dir": str(tmp_path / "upload-state"),
            "only_when_idle": True,
        }
    )
    uploader = uploader_mod.Uploader(config, pending, environ=ENV, is_recording=lambda: True)
    uploader.run_once()
    app.upload = upload_service.UploadService(uploader, app.storage)
    expect(page.locator("#upload-card")).to_be_visible()
    expect(page.locator("#upload-state")).to_have_text("paused (recording in progress)")
    expect(page.locator("#upload-backlog")).to_have_text(
        f"backlog: 1 recordings, {backlog_kb:.1f} KB"
    )
    context.close()


def test_wifi_setup_page_lists_networks_and_joins(running, browser) -> None:
    app = running
    page = browser.new_page()
    page.set_default_timeout(30_000)
    page.goto(app.dashboard_url + "/")
    expect = sync_api.expect
    expect(page.locator("#state")).to_have_text("idle")
    assert (
        page.evaluate(
            "fetch('/api/button/long', {method: 'POST', headers: {'X-Omgrab-Request': '1'}})"
            ".then((r) => r.status)"
        )
        == 200
    )
    expect(page.locator("#wifi-card")).to_be_visible()
    expect(page.locator("#wifi-ssid option")).to_have_count(2)
    page.select_option("#wifi-ssid", "HomeNet")
    page.fill("#wifi-password", "correct horse")
    page.click("#wifi-connect")
    expect(page.locator("#wifi-outcome")).to_contain_text("joined")
    expect(page.locator("#state")).to_have_text("idle")


EVIL_SCRIPT = """
window.results = {};
async function attempt(name, run) {
  try { window.results[name] = await run(); } catch (e) { window.results[name] = "blocked"; }
}
(async () => {
  const t = TARGET;
  await attempt("noCors", () => fetch(t + "/api/recording/start",
    { method: "POST", mode: "no-cors" }).then(() => "sent"));
  await attempt("withHeader", () => fetch(t + "/api/recording/start",
    { method: "POST", headers: { "X-Omgrab-Request": "1" } }).then(() => "sent"));
  await attempt("status", () => fetch(t + "/api/status").then((r) => r.text()));
  await attempt("button", () => fetch(t + "/api/button/short",
    { method: "POST", mode: "no-cors", body: "x", credentials: "include" }).then(() => "sent"));
  window.results.done = true;
})();
"""


class EvilPage(http.server.BaseHTTPRequestHandler):
    """Serves a page that tries to drive and read the console from another origin."""

    target = ""

    def do_GET(self) -> None:
        script = EVIL_SCRIPT.replace("TARGET", repr(self.target))
        body = (
            f"<!doctype html><html><body><script>{script}</script>"
            f'<form id="f" method="post" action="{self.target}/api/recording/start"></form>'
            "</body></html>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_page_from_another_origin_can_neither_start_nor_read(running, browser) -> None:
    app = running
    handler = type("Evil", (EvilPage,), {"target": app.dashboard_url})
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=evil.serve_forever, daemon=True)
    thread.start()
    try:
        page = browser.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"http://127.0.0.1:{evil.server_address[1]}/")
        page.wait_for_function("window.results && window.results.done")
        results = page.evaluate("window.results")
        # The no-cors request leaves the browser but is refused (its answer is opaque);
        # the one with the header needs a preflight the console never grants; the status
        # cannot be read.
        assert results["withHeader"] == "blocked"
        assert results["status"] == "blocked"
        # A plain form POST (a navigation, no custom header) is refused too.
        with page.expect_navigation():
            page.evaluate("document.getElementById('f').submit()")
        assert "refused" in page.content()
        assert app.state_machine.state.value == "idle"
        assert not app.recorder.is_recording
        assert app.console is not None and app.console.middleware is not None
        assert app.console.middleware.refused >= 3
    finally:
        evil.shutdown()
        evil.server_close()
