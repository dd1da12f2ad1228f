"""An operator sink publishing reports to an MQTT broker (paho-mqtt 2.x)."""

from __future__ import annotations

import logging
import threading
from typing import Any

import paho.mqtt.client as mqtt

from omgrab.output import operator

logger = logging.getLogger(__name__)


class MqttSink:
    """Publishes each ``OperatorReport`` as compact JSON to ``topic``.

    The paho network loop runs in its own thread (``loop_start``) and reconnects by itself
    after a broker outage (back-off between ``reconnect_min_s`` and ``reconnect_max_s``).
    While disconnected, QoS 0 reports are dropped and counted in ``publish_failures``; QoS 1
    and 2 reports are queued by paho (at most ``max_queued`` of them) and sent on reconnect.

    Args:
        host: Broker host name or address.
        port: Broker port.
        topic: Topic to publish on.
        qos: MQTT QoS (0, 1 or 2).
        retain: Publish with the retain flag (late subscribers get the latest report).
        client_id: MQTT client id ("" lets the broker pick one).
        keepalive: Keep-alive interval in seconds.
        username: Optional user name.
        password: Optional password.
        tls: Connect with TLS (server certificate verified).
        ca_file: CA bundle to verify the broker with; the system's when None.
        max_queued: Outgoing messages paho may hold while disconnected (QoS > 0).
        reconnect_min_s: First reconnect delay (whole seconds).
        reconnect_max_s: Longest reconnect delay (whole seconds).
        name: Sink name for logs and stats.
    """

    def __init__(
        self,
        host: str,
        port: int = 1883,
        topic: str = "omgrab/detections",
        *,
        qos: int = 1,
        retain: bool = False,
        client_id: str = "",
        keepalive: int = 30,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        ca_file: str | None = None,
        max_queued: int = 1000,
        reconnect_min_s: int = 1,
        reconnect_max_s: int = 30,
        name: str = "mqtt",
    ) -> None:
        if qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, got {qos!r}")
        if not topic or any(c in topic for c in "+#"):
            raise ValueError(f"topic must be non-empty without wildcards, got {topic!r}")
        self.name = name
        self._topic = topic
        self._qos = qos
        self._retain = retain
        self._connected = threading.Event()
        self.connects = 0
        self.disconnects = 0
        self.published = 0
        self.publish_failures = 0
        self.queued_offline = 0
        self._client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
        )
        if username is not None:
            self._client.username_pw_set(username, password)
        if tls:
            self._client.tls_set(ca_certs=ca_file)
        self._client.reconnect_delay_set(min_delay=reconnect_min_s, max_delay=reconnect_max_s)
        self._client.max_queued_messages_set(max_queued)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.connect_async(host, port, keepalive)
        self._client.loop_start()

    @property
    def connected(self) -> bool:
        """True while the broker connection is up."""
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected; False on timeout."""
        return self._connected.wait(timeout)

    def _on_connect(
        self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if getattr(reason_code, "is_failure", False):
            logger.error("MQTT connection refused: %s", reason_code)
            return
        self.connects += 1
        self._connected.set()
        logger.info("MQTT connected to broker (topic %s)", self._topic)

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        self.disconnects += 1
        if was:
            logger.warning("MQTT disconnected (%s); reconnecting", reason_code)

    def deliver(self, report: operator.OperatorReport) -> None:
        """Publish one report (non-blocking; paho sends it from its network thread)."""
        info = self._client.publish(self._topic, report.payload, qos=self._qos, retain=self._retain)
        if info.rc == mqtt.MQTT_ERR_NO_CONN and self._qos > 0:
            # paho keeps QoS 1/2 messages and sends them once reconnected.
            self.queued_offline += 1
            return
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self.publish_failures += 1
            logger.warning(
                "MQTT publish of report %d failed: %s", report.seq, mqtt.error_string(info.rc)
            )
            return
        self.published += 1

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        try:
            self._client.disconnect()
        finally:
            self._client.loop_stop()
