"""The console's API over real HTTP against a running device app with a real recording."""

from __future__ import annotations

import datetime
import json
import pathlib
import subprocess
import threading
import time
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from prometheus_client import parser

from omgrab.app import device_app, mqtt_console, upload_service
from omgrab.app.web import security
from omgrab.upload import config as upload_config
from omgrab.upload import uploader as uploader_mod
from tests import s3_fixtures, test_app, upload_factory

CSRF = {security.CSRF_HEADER: "1"}


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console")
    app = device_app.DeviceApp(test_app.small_config(tmp, dashboard_port=0))
    app.start()
    url = app.dashboard_url
    assert url is not None
    with httpx.Client(base_url=url, timeout=30, headers=CSRF) as client:
        started = client.post("/api/recording/start")
        assert started.json() == {"action": "start", "ok": True, "state": "recording"}
        wait_for(
            lambda: (
                (client.get("/api/status").json()["recorder"]["current"] or {}).get("elapsed_s", 0)
                >= 1.5
            )
        )
        status = client.get("/api/status").json()
        assert client.post("/api/recording/stop").json()["state"] == "idle"
        assert app.wait_for_recordings(1, 60)
        yield app, client, status
    app.stop()


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        threading.Event().wait(0.1)


def test_status_shows_storage_bytes_hours_left_and_the_current_recording(console) -> None:
    _app, _client, status = console
    storage = status["storage"]
    assert storage["available_bytes"] > 0 and storage["total_bytes"] >= storage["available_bytes"]
    assert storage["level"] == "ok"
    # hours left = available bytes / measured write rate
    assert storage["write_rate_bps"] > 0
    expected = storage["available_bytes"] / storage["write_rate_bps"] / 3600
    assert storage["hours_left"] == pytest.approx(expected, rel=0.05)
    current = status["recorder"]["current"]
    assert current["elapsed_s"] >= 1.5 and current["size_bytes"] > 0
    assert set(current["streams"]) == {"rgb", "depth", "imu"}
    rgb = current["streams"]["rgb"]
    assert rgb["fps"] > 5 and rgb["dropped"] == 0 and rgb["gaps"] == 0
    assert status["imu"]["accel"] and len(status["imu"]["gyro"]) == 3


def test_list_shows_the_recording_with_its_counts_and_sorts_and_filters(console) -> None:
    app, client, _ = console
    rid = app.completed[0].stem
    rows = client.get("/api/recordings").json()
    assert [r["recording_id"] for r in rows] == [rid]
    row = rows[0]
    manifest = json.loads((app.config.recordings_dir / f"{rid}.json").read_text())
    assert row["duration_s"] == manifest["duration_s"] > 1.0
    assert row["size_bytes"] == (app.config.recordings_dir / f"{rid}.mkv").stat().st_size
    assert row["streams"] == ["rgb", "depth", "imu"]
    assert row["frames"]["rgb"] == manifest["streams"]["rgb"]["frames_written"] > 20
    assert row["dropped"] == 0 and row["recovered"] is False and row["complete"] is True
    assert client.get("/api/recordings", params={"q": "nomatch"}).json() == []
    assert client.get("/api/recordings", params={"recovered": "true"}).json() == []
    assert len(client.get("/api/recordings", params={"sort": "size_bytes"}).json()) == 1
    bad = client.get("/api/recordings", params={"sort": "bogus"})
    assert bad.status_code == 400 and "unknown sort field" in bad.json()["error"]
    details = client.get(f"/api/recordings/{rid}").json()
    assert details == manifest


def test_download_supports_range_and_resumes_to_the_exact_bytes(console) -> None:
    app, client, _ = console
    rid = app.completed[0].stem
    data = (app.config.recordings_dir / f"{rid}.mkv").read_bytes()
    url = f"/api/recordings/{rid}/download"
    head = client.get(url, headers={"Range": "bytes=0-999"})
    assert head.status_code == 206
    assert head.headers["content-range"] == f"bytes 0-999/{len(data)}"
    assert head.content == data[:1000]
    rest = client.get(url, headers={"Range": "bytes=1000-"})
    assert rest.status_code == 206 and head.content + rest.content == data
    full = client.get(url)
    assert full.status_code == 200 and full.headers["accept-ranges"] == "bytes"
    assert full.content == data


@pytest.mark.parametrize(
    "path",
    [
        "/api/recordings/..%2F..%2Fetc%2Fpasswd/download",
        "/api/recordings/%2e%2e/download",
        "/api/recordings/.hidden/download",
        "/api/recordings/..%5C..%5Cx/download",
        "/api/recordings/nonexistent/download",
        "/api/recordings/..%2Fstatus",
    ],
)
def test_no_request_path_reaches_outside_the_recordings_directory(console, path) -> None:
    _app, client, _ = console
    response = client.get(path)
    assert response.status_code in (400, 404), response.text


def test_rgb_track_plays_as_fragmented_mp4_without_reencoding(console, tmp_path) -> None:
    app, client, _ = console
    rid = app.completed[0].stem
    mp4 = client.get(f"/api/recordings/{rid}/rgb.mp4")
    assert mp4.status_code == 200 and mp4.headers["content-type"] == "video/mp4"
    out = tmp_path / "rgb.mp4"
    out.write_bytes(mp4.content)
    assert b"moof" in mp4.content[:200_000]  # fragmented
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_packets", "-show_streams", "-of", "json", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    (stream,) = json.loads(probe.stdout)["streams"]
    manifest = json.loads((app.config.recordings_dir / f"{rid}.json").read_text())
    assert stream["codec_name"] == "h264" and (stream["width"], stream["height"]) == (320, 200)
    # Every RGB packet copied: same count as the merged track.
    assert int(stream["nb_read_packets"]) == manifest["streams"]["rgb"]["frames_written"]


def test_metrics_scrape_parses_with_the_prometheus_text_parser(console) -> None:
    _app, client, _ = console
    scrape = client.get("/metrics")
    assert scrape.status_code == 200 and scrape.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in parser.text_string_to_metric_families(scrape.text)}
    for name in (
        "omgrab_frames_written",
        "omgrab_frames_dropped",
        "omgrab_frames_missed",
        "omgrab_capture_gaps",
        "omgrab_encoder_backlog",
        "omgrab_disk_free_bytes",
        "omgrab_state",
        "omgrab_recording",
        "omgrab_detections_logged",
        "omgrab_write_errors",
    ):
        assert name in families, name
    state = {s.labels["omgrab_state"]: s.value for s in families["omgrab_state"].samples}
    assert state["idle"] == 1 and state["recording"] == 0
    assert families["omgrab_disk_free_bytes"].samples[0].value > 0
    assert families["omgrab_detections_logged"].samples[0].value > 0


def test_metrics_show_per_stream_counters_while_recording(console) -> None:
    _app, _client, status = console
    from omgrab.app.web import metrics

    collector = metrics.ConsoleCollector(lambda: status)
    written = {
        s.labels["stream"]: s.value
        for family in collector.collect()
        if family.name == "omgrab_frames_written"
        for s in family.samples
    }
    streams = status["recorder"]["current"]["streams"]
    assert written == {name: float(v["frames_written"]) for name, v in streams.items()}


def test_events_stream_pushes_status_documents(console) -> None:
    _app, client, _ = console
    seqs = []
    with client.stream("GET", "/api/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data: "):
                seqs.append(json.loads(line[6:])["seq"])
            if len(seqs) == 3:
                break
    assert seqs == sorted(seqs) and len(set(seqs)) == 3


def mjpeg_frames(client: httpx.Client, path: str, seconds: float) -> list[bytes]:
    frames: list[bytes] = []
    buffer = b""
    with client.stream("GET", path) as stream:
        assert stream.headers["content-type"].startswith("multipart/x-mixed-replace")
        start = time.monotonic()
        for chunk in stream.iter_bytes():
            buffer += chunk
            while True:
                soi = buffer.find(b"\xff\xd8")
                eoi = buffer.find(b"\xff\xd9", soi + 2)
                if soi < 0 or eoi < 0:
                    break
                frames.append(buffer[soi : eoi + 2])
                buffer = buffer[eoi + 2 :]
            if time.monotonic() - start >= seconds:
                break
    return frames


@pytest.mark.parametrize("gesture", [None, "double"])
def test_live_view_runs_at_5_fps_in_idle_and_camera_preview(console, gesture) -> None:
    app, client, _ = console
    if gesture is not None:
        assert client.post(f"/api/button/{gesture}").json()["state"] == "camera_preview"
    try:
        start = time.monotonic()
        frames = mjpeg_frames(client, "/api/live/rgb.mjpg", 3.0)
        elapsed = time.monotonic() - start
        # The first frame waits for the device to open; count the rate after it.
        assert len(frames) >= 5 * (elapsed - 1.0), (len(frames), elapsed)
        image = cv2.imdecode(np.frombuffer(frames[-1], np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (200, 320, 3)
        depth = mjpeg_frames(client, "/api/live/depth.mjpg", 1.0)
        colour = cv2.imdecode(np.frombuffer(depth[-1], np.uint8), cv2.IMREAD_COLOR)
        # A colour map: channels differ (a grey image has b == g == r everywhere).
        assert colour.shape == (100, 160, 3)
        assert np.abs(colour[..., 0].astype(int) - colour[..., 2].astype(int)).mean() > 10
        assert client.get("/api/preview.jpg").content[:2] == b"\xff\xd8"
    finally:
        if gesture is not None:
            client.post("/api/button/short")
    assert app.state_machine.state.value == "idle"


def test_delete_needs_confirmation_then_removes_the_pair(console) -> None:
    app, client, _ = console
    # A copy of the real recording under a second id, so the other tests keep theirs.
    rid = app.completed[0].stem
    root: pathlib.Path = app.config.recordings_dir
    copy = "copy-" + rid
    (root / f"{copy}.mkv").write_bytes((root / f"{rid}.mkv").read_bytes())
    manifest = json.loads((root / f"{rid}.json").read_text())
    (root / f"{copy}.json").write_text(json.dumps({**manifest, "recording_id": copy}))
    refused = client.delete(f"/api/recordings/{copy}")
    assert refused.status_code == 400 and "confirm" in refused.json()["error"]
    wrong = client.delete(f"/api/recordings/{copy}", params={"confirm": rid})
    assert wrong.status_code == 400
    no_csrf = httpx.delete(f"{app.dashboard_url}/api/recordings/{copy}?confirm={copy}")
    assert no_csrf.status_code == 403
    assert (root / f"{copy}.mkv").exists()
    done = client.delete(f"/api/recordings/{copy}", params={"confirm": copy})
    assert done.json() == {"deleted": copy}
    assert not (root / f"{copy}.mkv").exists() and not (root / f"{copy}.json").exists()
    assert (root / f"{rid}.mkv").exists()
    assert client.delete(f"/api/recordings/{copy}", params={"confirm": copy}).status_code == 404


def test_a_client_leaving_mid_playback_frees_the_remux_thread(console) -> None:
    app, client, _ = console
    rid = app.completed[0].stem
    root: pathlib.Path = app.config.recordings_dir
    assert app.console is not None
    routes = app.console.recordings
    routes.fragment_queue = 1  # the remux thread fills the queue and waits for the client
    try:
        for _ in range(8):  # more than the default executor's threads (6 on 2 cores)
            with client.stream("GET", f"/api/recordings/{rid}/rgb.mp4") as stream:
                next(stream.iter_raw(64))
    finally:
        routes.fragment_queue = 8
    deadline = time.monotonic() + 10
    while any(t.name.startswith("remux-") for t in threading.enumerate()):
        assert time.monotonic() < deadline, "a remux thread outlived its client"
        threading.Event().wait(0.05)
    # The worker threads are free: a button press (run in one) still answers.
    assert client.post("/api/button/double").json()["state"] == "camera_preview"
    assert client.post("/api/button/short").json()["state"] == "idle"
    assert (root / f"{rid}.mkv").exists()


def test_summary_counts_gaps_drops_and_stop_reason_from_the_manifest(tmp_path) -> None:
    from omgrab.app.web import recordings

    mkv = tmp_path / "r.mkv"
    mkv.write_bytes(b"x" * 10)
    manifest = {
        "recording_id": "r",
        "stop_reason": "device_disconnected",
        "recovered": True,
        "streams": {
            "rgb": {"frames_written": 90, "frames_dropped": 2, "capture_gaps": {"gaps": 3}},
            "imu": {"frames_written": 10, "frames_dropped": None, "capture_gaps": None},
        },
    }
    row = recordings.summarize(manifest, mkv)
    assert (row.dropped, row.gaps, row.stop_reason, row.recovered) == (
        2,
        3,
        "device_disconnected",
        True,
    )
    assert row.frames == {"rgb": 90, "imu": 10} and row.size_bytes == 10


def _upload_families(client: httpx.Client) -> dict[str, Any]:
    scrape = client.get("/metrics")
    assert scrape.status_code == 200
    families = parser.text_string_to_metric_families(scrape.text)
    return {f.name: f for f in families if f.name.startswith("omgrab_upload")}


def test_without_an_uploader_the_upload_section_and_metrics_are_absent(console) -> None:
    app, client, _ = console
    assert app.upload is None
    doc = client.get("/api/status").json()
    assert doc["upload"] is None
    assert _upload_families(client) == {}
    assert mqtt_console.status_payload(doc)["upload"] is None


def test_upload_progress_and_backlog_reach_status_metrics_and_mqtt(
    console, s3_server: s3_fixtures.MotoServer, tmp_path: pathlib.Path
) -> None:
    app, client, _ = console
    s3_server.client().create_bucket(Bucket="console")
    recordings = tmp_path / "recordings"
    started = datetime.datetime(2026, 11, 22, 2, 40, 11, tzinfo=datetime.UTC)
    made = [
        upload_factory.make_recording(recordings, f"rec-{i}", 40_000 + i, started, seed=i)[0]
        for i in range(2)
    ]
    backlog = sum(p.stat().st_size + p.with_suffix(".json").stat().st_size for p in made)
    env = {
        "AWS_ACCESS_KEY_ID": s3_fixtures.ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": s3_fixtures.SECRET_KEY,
    }

    def make_config(bucket: str) -> upload_config.UploadConfig:
        return upload_config.UploadConfig.from_mapping(
            {
                "bucket": bucket,
                "endpoint_url": s3_server.url,
                "device_id": "rig-7",
                "state_dir": str(tmp_path / f"state-{bucket}"),
                "only_when_idle": True,
            }
        )

    busy = threading.Event()
    busy.set()
    up = uploader_mod.Uploader(
        make_config("console"), recordings, environ=env, is_recording=busy.is_set
    )
    try:
        # Paused by the "not while recording" gate: the backlog is known, nothing sent.
        app.upload = upload_service.UploadService(up, app.storage)
        up.run_once()
        app.console.snapshot.refresh()
        doc = client.get("/api/status").json()["upload"]
        assert doc["state"] == "paused" and doc["pause_reason"] == "recording in progress"
        assert (doc["pending_recordings"], doc["pending_bytes"]) == (2, backlog)
        families = _upload_families(client)
        assert families["omgrab_upload_pending_bytes"].samples[0].value == backlog
        assert families["omgrab_upload_pending_recordings"].samples[0].value == 2
        assert families["omgrab_upload_uploaded_bytes"].samples[0].value == 0
        assert "omgrab_upload_eta_seconds" not in families  # no rate measured yet
        paused = families["omgrab_upload_paused"].samples
        assert [(s.labels["reason"], s.value) for s in paused] == [("recording in progress", 1)]
        states = {
            s.labels["omgrab_upload_state"]: s.value
            for s in families["omgrab_upload_state"].samples
        }
        assert states["paused"] == 1 and states["uploading"] == 0
        mqtt_status = mqtt_console.status_payload(client.get("/api/status").json())["upload"]
        assert mqtt_status["state"] == "paused" and mqtt_status["pending_bytes"] == backlog

        # The gate opens: everything is sent; the backlog is empty, the bytes are counted.
        busy.clear()
        up.run_once()
        app.console.snapshot.refresh()
        families = _upload_families(client)
        assert families["omgrab_upload_pending_bytes"].samples[0].value == 0
        assert families["omgrab_upload_pending_recordings"].samples[0].value == 0
        assert families["omgrab_upload_uploaded_recordings"].samples[0].value == 2
        (sent,) = families["omgrab_upload_uploaded_bytes"].samples
        assert sent.name == "omgrab_upload_uploaded_bytes_total" and sent.value == backlog
        assert families["omgrab_upload_eta_seconds"].samples[0].value == 0
        assert families["omgrab_upload_paused"].samples == []
        assert families["omgrab_upload_errors"].samples[0].value == 0

        # A bucket that does not exist: the error is counted and shown everywhere.
        app.upload = upload_service.UploadService(
            uploader_mod.Uploader(
                make_config("no-such-bucket"), recordings, environ=env, is_recording=busy.is_set
            ),
            app.storage,
        )
        app.upload.uploader.run_once()
        app.console.snapshot.refresh()
        doc = client.get("/api/status").json()
        assert doc["upload"]["state"] == "error" and doc["upload"]["errors"] == 1
        assert "NoSuchBucket" in doc["upload"]["last_error"]
        assert (
            mqtt_console.status_payload(doc)["upload"]["last_error"] == doc["upload"]["last_error"]
        )
        families = _upload_families(client)
        (errors,) = families["omgrab_upload_errors"].samples
        assert errors.name == "omgrab_upload_errors_total" and errors.value == 1
    finally:
        app.upload = None
        app.console.snapshot.refresh()
