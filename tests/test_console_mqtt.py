"""The device on MQTT against a real Mosquitto broker with a password file.

Covers: retained status and ``online`` availability, the last will (``offline``) when the
device's connection dies without a goodbye, recording events, start/stop commands and their
results, and the broker refusing wrong credentials.
"""

from __future__ import annotations

import getpass
import json
import os
import pathlib
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest

from omgrab.app import device_app, mqtt_console, upload_service
from omgrab.upload import config as upload_config
from omgrab.upload import uploader as uploader_mod
from tests import fixtures_output, test_app

USER, PASSWORD = "rig", "pa55-word"
UPLOAD_ENV = {"AWS_ACCESS_KEY_ID": "AKIAOMGRABTEST000001", "AWS_SECRET_ACCESS_KEY": "x"}


class SecureBroker(fixtures_output.MosquittoBroker):
    """Mosquitto on a free loopback port, anonymous access off, one user in a password file."""

    def __init__(self, workdir: pathlib.Path) -> None:
        super().__init__(workdir)
        passwd = workdir / "passwd"
        subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), USER, PASSWORD], check=True)
        passwd.chmod(0o600)
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous false\n"
            f"password_file {passwd}\n"
            # As root, mosquitto drops to its own user, which cannot read the 0600 file.
            f"user {getpass.getuser()}\n"
            "persistence false\n"
            f"log_dest file {self.log}\n"
        )


@pytest.fixture
def broker(tmp_path: pathlib.Path) -> Iterator[SecureBroker]:
    if not os.path.exists(fixtures_output.MOSQUITTO):
        pytest.skip("mosquitto is not installed")
    secure = SecureBroker(tmp_path)
    secure.start()
    try:
        yield secure
    finally:
        secure.stop()


class Watcher:
    """A subscriber on ``base/#`` collecting (topic, payload, retained) messages."""

    def __init__(self, port: int, base: str, password: str = PASSWORD) -> None:
        self.messages: queue.Queue[tuple[str, str, bool]] = queue.Queue()
        self.connected = threading.Event()
        self.refused: list[str] = []
        self.history: list[tuple[str, str, bool]] = []
        self.used: set[int] = set()
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
        self.client.username_pw_set(USER, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, m: self.messages.put(
            (m.topic, m.payload.decode(), bool(m.retain))
        )
        self.base = base
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(self, client, _u, _f, reason, _p) -> None:
        if reason.is_failure:
            self.refused.append(str(reason))
            return
        client.subscribe(f"{self.base}/#", qos=1)
        self.connected.set()

    def wait_for(self, topic: str, predicate=lambda p, r: True, timeout: float = 20.0):
        """The first message on ``topic`` matching ``predicate`` not returned before."""
        deadline = time.monotonic() + timeout
        while True:
            while True:
                try:
                    self.history.append(self.messages.get_nowait())
                except queue.Empty:
                    break
            for i, (got_topic, payload, retained) in enumerate(self.history):
                if i in self.used:
                    continue
                if got_topic == f"{self.base}/{topic}" and predicate(payload, retained):
                    self.used.add(i)
                    return payload, retained
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"nothing matching on {topic} within {timeout} s: {self.history}"
            try:
                self.history.append(self.messages.get(timeout=min(remaining, 0.5)))
            except queue.Empty:
                continue

    def publish(self, topic: str, payload: str) -> None:
        self.client.publish(f"{self.base}/{topic}", payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_status_availability_events_and_commands_with_credentials(tmp_path, broker) -> None:
    config = test_app.small_config(
        tmp_path,
        perception=False,
        mqtt_host="127.0.0.1",
        mqtt_port=broker.port,
        mqtt_username=USER,
        mqtt_password=PASSWORD,
    )
    app = device_app.DeviceApp(config)
    app.start()
    base = "omgrab/test-rig"
    watcher = None
    try:
        console = app.mqtt_console
        assert console is not None and console.wait_connected(20)
        deadline = time.monotonic() + 20
        while console.published < 1:  # the status is out before anyone subscribes
            assert time.monotonic() < deadline
            threading.Event().wait(0.05)
        watcher = Watcher(broker.port, base)
        assert watcher.connected.wait(10)
        status, _ = watcher.wait_for("status")
        assert json.loads(status)["device_id"] == "test-rig"
        assert json.loads(status)["upload"] is None  # no uploader configured
        # Retained: a subscriber arriving now (the broker has both) gets them at once.
        late = Watcher(broker.port, base)
        assert late.wait_for("availability", lambda p, r: p == "online" and r)
        assert json.loads(late.wait_for("status", lambda p, r: r)[0])["device_id"] == "test-rig"
        late.close()
        # An uploader appears: its progress rides along in the status (nothing is sent here).
        upload = upload_config.UploadConfig.from_mapping(
            {
                "bucket": "rig-data",
                "endpoint_url": "http://127.0.0.1:9",
                "state_dir": str(tmp_path / "up"),
            }
        )
        app.upload = upload_service.UploadService(
            uploader_mod.Uploader(upload, tmp_path / "none", environ=UPLOAD_ENV), app.storage
        )
        watcher.publish("command", "start")
        result, _ = watcher.wait_for("command/result")
        assert json.loads(result) == {
            "command": "start",
            "ok": True,
            "state": "recording",
            "error": None,
        }
        started, _ = watcher.wait_for("events", lambda p, r: "recording_started" in p)
        rid = json.loads(started)["recording_id"]
        recording, _ = watcher.wait_for(
            "status", lambda p, r: json.loads(p)["state"] == "recording"
        )
        assert json.loads(recording)["upload"] == mqtt_console.upload_summary(app.upload.progress())
        assert json.loads(recording)["upload"]["state"] == "idle"
        watcher.publish("command", json.dumps({"command": "stop"}))
        assert json.loads(watcher.wait_for("command/result")[0])["state"] == "idle"
        stopped = json.loads(watcher.wait_for("events", lambda p, r: "stopped" in p)[0])
        assert stopped == {"event": "recording_stopped", "recording_id": rid}
        merged = json.loads(watcher.wait_for("events", lambda p, r: "merged" in p, 60)[0])
        assert merged["recording_id"] == rid and merged["file"] == f"{rid}.mkv"
        watcher.publish("command", "reboot")
        bad = json.loads(watcher.wait_for("command/result")[0])
        assert bad["ok"] is False and "unknown command" in bad["error"]
    finally:
        app.stop()
    # A clean stop says goodbye itself, retained.
    assert watcher.wait_for("availability", lambda p, r: p == "offline")
    watcher.close()


def test_wrong_password_is_refused_by_the_broker(broker) -> None:
    watcher = Watcher(broker.port, "omgrab/x", password="wrong")
    deadline = time.monotonic() + 10
    while not watcher.refused and time.monotonic() < deadline:
        threading.Event().wait(0.05)
    assert watcher.refused and not watcher.connected.is_set()
    watcher.close()


def test_last_will_marks_the_device_offline_when_it_dies(tmp_path, broker) -> None:
    # The device runs in its own process and is SIGKILLed: no goodbye, the broker sends the will.
    script = textwrap.dedent(
        f"""
        import pathlib, sys, time
        sys.path.insert(0, {str(pathlib.Path(__file__).parent.parent)!r})
        from tests import test_app
        from omgrab.app import device_app
        config = test_app.small_config(
            pathlib.Path({str(tmp_path)!r}), perception=False, mqtt_host="127.0.0.1",
            mqtt_port={broker.port}, mqtt_username={USER!r}, mqtt_password={PASSWORD!r},
        )
        config.mqtt_keepalive = 2
        app = device_app.DeviceApp(config)
        app.start()
        assert app.mqtt_console.wait_connected(20)
        print("up", flush=True)
        time.sleep(600)
        """
    )
    watcher = Watcher(broker.port, "omgrab/test-rig")
    assert watcher.connected.wait(10)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
        watcher.wait_for("availability", lambda p, r: p == "online")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        # keepalive 2 s: the broker gives up after 1.5 x keepalive and publishes the will.
        payload, _ = watcher.wait_for("availability", lambda p, r: p == "offline", timeout=20)
        assert payload == "offline"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        watcher.close()
    # Retained: a new subscriber sees the device offline.
    late = Watcher(broker.port, "omgrab/test-rig")
    assert late.wait_for("availability", lambda p, r: p == "offline" and r)
    late.close()


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="wildcards"):
        mqtt_console.MqttOptions(host="h", base_topic="omgrab/#")
    with pytest.raises(ValueError, match="username"):
        mqtt_console.MqttOptions(host="h", password="p")


def make_certificates(directory: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path, pathlib.Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 (openssl CLI)."""
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=omgrab-test-ca", "-keyout", str(ca_key), "-out", str(ca_crt))  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", str(key), "-out", str(csr))  # fmt: skip
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
            "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(crt))  # fmt: skip
    return ca_crt, crt, key


def test_status_and_commands_over_tls_with_credentials(tmp_path, broker) -> None:
    ca, crt, key = make_certificates(tmp_path)
    tls_port = fixtures_output.free_port()
    broker.stop()
    broker.conf.write_text(
        broker.conf.read_text().replace(
            f"listener {broker.port} 127.0.0.1", f"listener {tls_port} 127.0.0.1"
        )
        + f"cafile {ca}\ncertfile {crt}\nkeyfile {key}\n"
    )
    broker.port = tls_port
    broker.start()
    config = test_app.small_config(
        tmp_path / "tls",
        perception=False,
        mqtt_host="127.0.0.1",
        mqtt_port=tls_port,
        mqtt_username=USER,
        mqtt_password=PASSWORD,
        mqtt_tls=True,
        mqtt_ca_file=ca,
    )
    app = device_app.DeviceApp(config)
    app.start()
    try:
        console = app.mqtt_console
        assert console is not None and console.wait_connected(20)
        watcher = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
        watcher.username_pw_set(USER, PASSWORD)
        watcher.tls_set(ca_certs=str(ca))
        got: queue.Queue[tuple[str, str]] = queue.Queue()
        watcher.on_message = lambda _c, _u, m: got.put((m.topic, m.payload.decode()))
        watcher.on_connect = lambda c, *_: c.subscribe("omgrab/test-rig/#", qos=1)
        watcher.connect("127.0.0.1", tls_port)
        watcher.loop_start()
        deadline = time.monotonic() + 20
        seen: dict[str, str] = {}
        while "omgrab/test-rig/status" not in seen:
            topic, payload = got.get(timeout=max(0.1, deadline - time.monotonic()))
            seen[topic] = payload
        assert seen["omgrab/test-rig/availability"] == "online"
        watcher.publish("omgrab/test-rig/command", "start", qos=1).wait_for_publish(5)
        while True:
            topic, payload = got.get(timeout=max(0.1, deadline + 10 - time.monotonic()))
            if topic.endswith("command/result"):
                break
        assert json.loads(payload)["state"] == "recording"
        watcher.disconnect()
        watcher.loop_stop()
    finally:
        app.stop()
    # Without the CA the device's TLS handshake fails: no plaintext fallback.
    plain = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
    plain.username_pw_set(USER, PASSWORD)
    with pytest.raises(OSError):
        plain.tls_set()  # system CAs do not know the test CA
        plain.connect("127.0.0.1", tls_port)
