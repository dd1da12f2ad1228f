"""The device on MQTT: status and availability (retained, last will), events, commands.

Topics, under ``base`` (``omgrab/<device_id>`` by default):

==============================  =========  ====================================================
topic                           retained   payload
==============================  =========  ====================================================
``<base>/availability``         yes        ``online``; the broker publishes the last will
                                           ``offline`` when the device vanishes, and a clean
                                           stop publishes ``offline`` itself
``<base>/status``               yes        JSON: state, recording (id, elapsed, size, streams),
                                           storage (bytes, hours left, level), battery,
                                           network, upload (state, paused reason, backlog
                                           bytes/recordings, ETA, last error; null without
                                           an uploader); every ``status_period_s`` and on
                                           change
``<base>/events``               no         JSON ``{"event": "recording_started" |
                                           "recording_stopped" | "recording_merged", ...}``
``<base>/command``              —          ``start`` or ``stop`` (or JSON ``{"command": ...}``)
``<base>/command/result``       no         JSON ``{"command", "ok", "state", "error"}``
==============================  =========  ====================================================

Data path: paho's network thread (``loop_start``) receives commands and puts them on a bounded
queue (8; a command arriving when it is full is answered ``ok: false, error: busy``); the
``mqtt-console`` thread runs them (a start may wait seconds for the device, never on paho's
thread), publishes the status from the console's status snapshot and derives the events from
snapshot changes.

Lifecycle: :meth:`MqttConsole.start` connects asynchronously (paho reconnects by itself with
back-off); :meth:`MqttConsole.stop` publishes ``offline``, disconnects and joins the thread
(:class:`~omgrab.background_thread.BackgroundLoop`, at most 10 s, outcome logged).

Errors: publish failures and command failures are counted (``publish_failures``,
``command_errors``) and logged; a failed round of the thread also counts in ``command_errors``
and under ``mqtt-console`` in :mod:`~omgrab.loop_health`; the thread keeps running.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
import queue
import ssl
import threading
import time
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt

from omgrab import background_thread
from omgrab.app import dashboard
from omgrab.app.web import snapshot as snapshot_mod

if TYPE_CHECKING:
    from omgrab.app import device_app

logger = logging.getLogger(__name__)

COMMANDS = ("start", "stop")
_QUEUE = 8


class MqttOptionsError(ValueError):
    """Inconsistent MQTT options."""


@dataclasses.dataclass(frozen=True)
class MqttOptions:
    """Broker and topics.

    Attributes:
        host: Broker host.
        port: Broker port.
        base_topic: Prefix of every topic (no wildcards).
        username: User name, or None.
        password: Password, or None.
        tls: Use TLS.
        ca_file: CA bundle for the broker certificate (None: system CAs).
        client_id: MQTT client id ("" lets the broker pick).
        keepalive: Keep-alive interval; the last will fires ~1.5x after the device vanishes.
        status_period_s: Status publication period.
    """

    host: str
    port: int = 1883
    base_topic: str = "omgrab/device"
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: pathlib.Path | None = None
    client_id: str = ""
    keepalive: int = 30
    status_period_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.base_topic or any(c in self.base_topic for c in "+#"):
            raise MqttOptionsError(
                f"MQTT base topic must be non-empty without wildcards: {self.base_topic!r}"
            )
        if self.password is not None and self.username is None:
            raise MqttOptionsError("an MQTT password needs a username (--mqtt-username)")


class MqttConsole:
    """Publishes the device's status and events and takes start/stop commands.

    Args:
        app: The device application (uses ``app.console.snapshot`` when the dashboard runs,
            its own status snapshot otherwise).
        options: Broker and topics.
    """

    def __init__(self, app: device_app.DeviceApp, options: MqttOptions) -> None:
        self._app = app
        self.options = options
        base = options.base_topic
        self.topics = {
            "availability": f"{base}/availability",
            "status": f"{base}/status",
            "events": f"{base}/events",
            "command": f"{base}/command",
            "result": f"{base}/command/result",
        }
        console = getattr(app, "console", None)
        self._own_snapshot = console is None
        self._snapshot: snapshot_mod.StatusSnapshot = (
            console.snapshot if console is not None else snapshot_mod.StatusSnapshot(app)
        )
        self._commands: queue.Queue[str] = queue.Queue(_QUEUE)
        self._period = min(options.status_period_s, 0.5)
        self._loop = background_thread.BackgroundLoop(
            "mqtt-console", self._step, first_wait_s=self._period, retry_s=self._period
        )
        self._connected = threading.Event()
        self._last_recording: str | None = None
        self._merged_seen = 0
        self._last_state: str | None = None
        self._next_status = 0.0
        self.published = 0
        self.publish_failures = 0
        self.commands_run = 0
        self._command_failures = 0
        self.events: list[dict[str, Any]] = []
        self._client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=options.client_id
        )
        if options.username is not None:
            self._client.username_pw_set(options.username, options.password)
        if options.tls:
            self._client.tls_set(
                ca_certs=str(options.ca_file) if options.ca_file is not None else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        self._client.will_set(self.topics["availability"], "offline", qos=1, retain=True)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    @property
    def command_errors(self) -> int:
        """Commands that raised plus rounds of the console thread that failed."""
        return self._command_failures + self._loop.errors

    @property
    def connected(self) -> bool:
        """True while connected to the broker."""
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """Wait until connected."""
        return self._connected.wait(timeout)

    def start(self) -> None:
        """Connect (asynchronously) and start the publishing thread."""
        if self._own_snapshot:
            self._snapshot.start()
        self._merged_seen = len(self._app.completed)
        self._client.connect_async(self.options.host, self.options.port, self.options.keepalive)
        self._client.loop_start()
        self._loop.start()

    def stop(self) -> None:
        """Publish ``offline``, disconnect, join."""
        self._loop.stop(10.0)
        if self._connected.is_set():
            info = self._client.publish(self.topics["availability"], "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(2.0)
            except (RuntimeError, ValueError):
                self.publish_failures += 1
        self._client.disconnect()
        self._client.loop_stop()
        if self._own_snapshot:
            self._snapshot.stop()

    # -- paho thread ---------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            logger.error("MQTT broker refused the connection: %s", reason)
            return
        self._connected.set()
        client.subscribe(self.topics["command"], qos=1)
        client.publish(self.topics["availability"], "online", qos=1, retain=True)
        self._loop.wake()  # publish the status right away

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._connected.clear()
        if not self._loop.stopping:
            logger.warning("MQTT disconnected (%s); paho reconnects", reason)

    def _on_message(self, _client: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        text = message.payload.decode("utf-8", "replace").strip()
        if text.startswith("{"):
            try:
                text = str(json.loads(text).get("command", ""))
            except (ValueError, AttributeError):
                text = ""
        if text not in COMMANDS:
            self._result(text, False, None, f"unknown command {text!r}; use one of {COMMANDS}")
            return
        try:
            self._commands.put_nowait(text)
        except queue.Full:
            self._result(text, False, None, "busy: too many commands waiting")
            return
        self._loop.wake()

    # -- mqtt-console thread -------------------------------------------------------------

    def _step(self) -> float:
        self._run_commands()
        self._publish_changes()
        return self._period

    def _run_commands(self) -> None:
        while True:
            try:
                action = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                ok, state = dashboard.command(self._app, action)
            except Exception as exc:
                self._command_failures += 1
                logger.exception("MQTT command %s failed", action)
                self._result(action, False, None, f"{type(exc).__name__}: {exc}")
                continue
            self.commands_run += 1
            error = None if ok else (self._app.recorder.last_error or f"state is {state}")
            self._result(action, ok, state, error)
            self._snapshot.refresh()

    def _publish_changes(self) -> None:
        doc = self._snapshot.document()
        recorder = doc.get("recorder") or {}
        rid = recorder.get("recording_id")
        if rid != self._last_recording:
            if self._last_recording is not None:
                self._event({"event": "recording_stopped", "recording_id": self._last_recording})
            if rid is not None:
                self._event({"event": "recording_started", "recording_id": rid})
            self._last_recording = rid
        completed = list(self._app.completed)
        for path in completed[self._merged_seen :]:
            self._event({"event": "recording_merged", "recording_id": path.stem, "file": path.name})
        self._merged_seen = len(completed)
        state = doc.get("state")
        now = time.monotonic()
        if state != self._last_state or now >= self._next_status:
            self._last_state = state
            self._next_status = now + self.options.status_period_s
            self._publish(self.topics["status"], status_payload(doc), retain=True)

    def _event(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        del self.events[:-100]
        self._publish(self.topics["events"], event, retain=False)

    def _result(self, command: str, ok: bool, state: str | None, error: str | None) -> None:
        self._publish(
            self.topics["result"],
            {"command": command, "ok": ok, "state": state, "error": error},
            retain=False,
        )

    def _publish(self, topic: str, payload: dict[str, Any], retain: bool) -> None:
        if not self._connected.is_set():
            self.publish_failures += 1
            return
        info = self._client.publish(topic, json.dumps(payload), qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self.publish_failures += 1
            logger.warning("MQTT publish to %s failed: rc %s", topic, info.rc)
        else:
            self.published += 1


def status_payload(doc: dict[str, Any]) -> dict[str, Any]:
    """The compact status published on ``<base>/status``."""
    recorder = doc.get("recorder") or {}
    current = recorder.get("current") or {}
    storage = doc.get("storage") or {}
    network = doc.get("network") or {}
    battery = doc.get("battery")
    return {
        "device_id": doc.get("device_id"),
        "state": doc.get("state"),
        "recording": {
            "id": recorder.get("recording_id"),
            "elapsed_s": current.get("elapsed_s"),
            "size_bytes": current.get("size_bytes"),
            "streams": current.get("streams"),
        },
        "storage": {
            "available_bytes": storage.get("available_bytes"),
            "total_bytes": storage.get("total_bytes"),
            "hours_left": storage.get("hours_left"),
            "level": storage.get("level"),
        },
        "battery": battery,
        "network": network.get("status") if isinstance(network, dict) else network,
        "upload": upload_summary(doc.get("upload")),
    }


def upload_summary(upload: dict[str, Any] | None) -> dict[str, Any] | None:
    """The upload part of the MQTT status: progress and backlog (None without an uploader)."""
    if not isinstance(upload, dict):
        return None
    keys = (
        "state",
        "pause_reason",
        "pending_recordings",
        "pending_bytes",
        "uploaded_recordings",
        "bytes_sent",
        "rate_bytes_per_s",
        "eta_s",
        "errors",
        "last_error",
        "last_upload_at",
    )
    return {key: upload.get(key) for key in keys}
