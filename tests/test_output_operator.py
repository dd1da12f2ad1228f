"""Operator delivery: YOLO schema, in-process sinks, MQTT (real Mosquitto), NDJSON stream."""

from __future__ import annotations

import asyncio
import json
import pathlib
import queue
import threading
import time

import httpx
import paho.mqtt.client as mqtt
import pytest
import uvicorn
from starlette import applications, routing

from omgrab import output
from tests import fixtures_output

DETS = [
    output.Detection((10, 20, 30, 60), 0, "person", 0.9, track_id=4, frame_id=77),
    output.Detection((0, 0, 100, 50), 2, "car", 0.5, frame_id=77),
]

EXPECTED = [
    {
        "centerX": 20.0,
        "centerY": 40.0,
        "width": 20,
        "height": 40,
        "classNum": 0,
        "label": "person",
        "confidence": 0.9,
        "trackId": 4,
    },
    {
        "centerX": 50.0,
        "centerY": 25.0,
        "width": 100,
        "height": 50,
        "classNum": 2,
        "label": "car",
        "confidence": 0.5,
    },
]


def test_reports_use_the_yolo_schema(tmp_path: pathlib.Path) -> None:
    sink = output.QueueSink()
    with output.OutputManager(sinks=[sink], output_dir=tmp_path) as m:
        m.report_to_operator(DETS)
        m.report_to_operator([fixtures_output.detection_entry(5)])  # log-entry dicts work too
        m.report_to_operator([])
        assert m.flush(5)
    r1, r2, r3 = (sink.queue.get_nowait() for _ in range(3))
    assert r1.detections == EXPECTED
    assert r1.frame_id == 77 and r1.seq == 1
    assert json.loads(r1.payload)["detections"] == EXPECTED
    assert r2.detections[0]["centerX"] == 60.0 and r2.detections[0]["classNum"] == 3
    assert r2.frame_id == 5
    assert r3.detections == [] and r3.seq == 3


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (DETS[0], "expects a list of detections"),
        ([42], "must be Detection or dict, got int"),
        ([{"label": "x"}], "missing field"),
        ([{**fixtures_output.detection_entry(1), "confidence": float("nan")}], "confidence"),
        (
            [
                {
                    "centerX": 1,
                    "centerY": 1,
                    "width": 2,
                    "height": 2,
                    "classNum": 1,
                    "label": "a",
                    "confidence": 7,
                }
            ],
            "confidence",
        ),
    ],
)
def test_bad_operator_input(tmp_path: pathlib.Path, bad: object, message: str) -> None:
    with output.OutputManager(output_dir=tmp_path) as m, pytest.raises(ValueError, match=message):
        m.report_to_operator(bad)  # type: ignore[arg-type]


def test_detection_validates_its_fields() -> None:
    with pytest.raises(ValueError, match="confidence"):
        output.Detection((0, 0, 1, 1), 1, "a", float("inf"))
    with pytest.raises(ValueError, match="x_min <= x_max"):
        output.Detection((5, 0, 1, 1), 1, "a", 0.5)


def test_callback_sink_receives_reports_in_order(tmp_path: pathlib.Path) -> None:
    got: list[int] = []
    done = threading.Event()

    def cb(report: output.OperatorReport) -> None:
        got.append(report.seq)
        if report.seq == 20:
            done.set()

    with output.OutputManager(output_dir=tmp_path) as m:
        m.add_operator_sink(output.CallbackSink(cb))
        for _ in range(20):
            m.report_to_operator(DETS)
        assert done.wait(5)
    assert got == list(range(1, 21))


def test_slow_or_failing_sinks_never_stall_the_caller(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()
    fast = output.QueueSink(maxsize=1000)

    def stuck(report: output.OperatorReport) -> None:
        release.wait(30)

    def broken(report: output.OperatorReport) -> None:
        raise RuntimeError("sink exploded")

    with output.OutputManager(output_dir=tmp_path) as m:
        m.add_operator_sink(output.CallbackSink(stuck, name="stuck"), queue_size=10)
        m.add_operator_sink(output.CallbackSink(broken, name="broken"))
        m.add_operator_sink(fast, queue_size=1000)
        start = time.perf_counter()
        for i in range(200):
            m.report_to_operator(DETS)
            m.log_detection(fixtures_output.detection_entry(i))
        elapsed = time.perf_counter() - start
        assert elapsed < 2.0
        assert m._operator.wait_idle(0.1) is False  # the stuck sink is still busy
        wait_deadline = time.monotonic() + 5
        while fast.queue.qsize() < 200 and time.monotonic() < wait_deadline:
            time.sleep(0.01)
        assert fast.queue.qsize() == 200  # the healthy sink got everything
        stats = m.stats()["operator"]
        assert stats["stuck"]["dropped"] >= 200 - 10 - 1
        assert stats["broken"]["errors"] == 200
        assert m.error_count == 200
        assert "sink exploded" in caplog.text
        release.set()
        assert m.flush(10)
        assert m.get_storage_status().detections_logged == 200


class Subscriber:
    """A real paho client subscribed to a topic, collecting payloads."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages: queue.Queue[bytes] = queue.Queue()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.client.on_message = lambda c, u, msg: self.messages.put(msg.payload)
        self.client.reconnect_delay_set(1, 2)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_mqtt_sink_publishes_to_a_real_broker(
    tmp_path: pathlib.Path, mosquitto_broker: fixtures_output.MosquittoBroker
) -> None:
    sub = Subscriber(mosquitto_broker.port, "rig/detections")
    sink = output.MqttSink("127.0.0.1", mosquitto_broker.port, "rig/detections", qos=1)
    try:
        assert sub.subscribed.wait(10)
        assert sink.wait_connected(10)
        with output.OutputManager(sinks=[sink], output_dir=tmp_path) as m:
            m.report_to_operator(DETS)
            payload = json.loads(sub.messages.get(timeout=10))
            assert payload["detections"] == EXPECTED
            assert payload["frame_id"] == 77
            assert m.stats()["operator"]["mqtt"]["delivered"] == 1
        assert sink.published == 1
    finally:
        sub.close()


def test_mqtt_sink_reconnects_after_a_broker_restart(
    tmp_path: pathlib.Path, mosquitto_broker: fixtures_output.MosquittoBroker
) -> None:
    sink = output.MqttSink(
        "127.0.0.1", mosquitto_broker.port, "rig/d", qos=0, reconnect_min_s=1, reconnect_max_s=1
    )
    with output.OutputManager(sinks=[sink], output_dir=tmp_path) as m:
        assert sink.wait_connected(10)
        mosquitto_broker.stop()
        deadline = time.monotonic() + 10
        while sink.connected and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not sink.connected
        start = time.perf_counter()
        m.report_to_operator(DETS)  # broker down: QoS 0 is dropped and counted, never blocks
        assert time.perf_counter() - start < 0.1
        assert m._operator.wait_idle(5)
        assert sink.publish_failures == 1
        mosquitto_broker.start()
        sub = Subscriber(mosquitto_broker.port, "rig/d")
        try:
            assert sub.subscribed.wait(10)
            assert sink.wait_connected(15)
            m.report_to_operator(DETS)
            assert json.loads(sub.messages.get(timeout=10))["seq"] == 2
        finally:
            sub.close()
    assert sink.connects >= 2


def test_mqtt_sink_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="qos"):
        output.MqttSink("127.0.0.1", 1, qos=3)
    with pytest.raises(ValueError, match="wildcards"):
        output.MqttSink("127.0.0.1", 1, topic="a/#")


def test_ndjson_stream_over_a_real_http_server(tmp_path: pathlib.Path) -> None:
    hub = output.NdjsonHub(queue_size=1000)
    app = applications.Starlette(routes=[routing.Route("/detections", hub.endpoint)])
    port = fixtures_output.free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with output.OutputManager(sinks=[hub], output_dir=tmp_path) as m:
            received: list[dict] = []
            with (
                httpx.Client(timeout=10) as client,
                client.stream("GET", f"http://127.0.0.1:{port}/detections") as resp,
            ):
                assert resp.status_code == 200
                assert resp.headers["content-type"].startswith("application/x-ndjson")
                deadline = time.monotonic() + 10
                while hub.subscriber_count == 0:
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
                for _ in range(3):
                    m.report_to_operator(DETS)
                for line in resp.iter_lines():
                    received.append(json.loads(line))
                    if len(received) == 3:
                        break
            assert [r["seq"] for r in received] == [1, 2, 3]
            assert received[0]["detections"] == EXPECTED
    finally:
        server.should_exit = True
        thread.join(10)


def test_ndjson_hub_drops_oldest_for_slow_readers_and_ends_on_close() -> None:
    async def scenario() -> tuple[list[bytes], int]:
        hub = output.NdjsonHub(queue_size=3)
        gen = hub.stream()
        first = asyncio.ensure_future(gen.__anext__())
        await asyncio.sleep(0)  # let the generator subscribe
        assert hub.subscriber_count == 1
        for i in range(10):
            hub.publish_line(b'{"n":%d}\n' % i)
        await asyncio.sleep(0)
        lines = [await first]
        dropped = hub.dropped
        hub.close()
        async for line in gen:
            lines.append(line)
        return lines, dropped

    lines, dropped = asyncio.run(scenario())
    assert lines == [b'{"n":7}\n', b'{"n":8}\n', b'{"n":9}\n']
    assert dropped == 7
