"""Upload to a real S3 endpoint on loopback (moto server), through faults we inject."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from omgrab.recording import merge
from omgrab.upload import config as config_mod
from omgrab.upload import multipart, units, uploader
from tests import fixtures_recording, s3_fixtures, upload_factory

MiB = 1024 * 1024
PART = 5 * MiB
STARTED = datetime.datetime(2026, 11, 22, 2, 40, 11, tzinfo=datetime.UTC)
ENV = {"AWS_ACCESS_KEY_ID": s3_fixtures.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": s3_fixtures.SECRET_KEY}


def _bucket(server: s3_fixtures.MotoServer, name: str) -> str:
    server.client().create_bucket(Bucket=name)
    return name


def _mapping(bucket: str, url: str, tmp: pathlib.Path, **kw: Any) -> dict[str, Any]:
    """The ``[upload]`` settings every test starts from (``kw`` adds or overrides)."""
    return {
        "bucket": bucket,
        "endpoint_url": url,
        "device_id": "rig-7",
        "part_size": PART,
        "state_dir": str(tmp / "state"),
        **kw,
    }


def _config(bucket: str, url: str, tmp: pathlib.Path, **kw: Any) -> config_mod.UploadConfig:
    return config_mod.UploadConfig.from_mapping(_mapping(bucket, url, tmp, **kw))


def _bucket_and_recording(
    server: s3_fixtures.MotoServer, tmp: pathlib.Path, name: str, size: int
) -> tuple[str, pathlib.Path, str]:
    """A new bucket ``name`` and a recording ``rec-<name>`` of ``size`` bytes: bucket, MKV, sha."""
    mkv, sha = upload_factory.make_recording(tmp / "rec", f"rec-{name}", size, STARTED)
    return _bucket(server, name), mkv, sha


@contextlib.contextmanager
def _through_proxy(
    server: s3_fixtures.MotoServer, bucket: str, tmp: pathlib.Path, mkv: pathlib.Path, **kw: Any
) -> Iterator[tuple[s3_fixtures.TcpProxy, uploader.Uploader]]:
    """An uploader of ``mkv``'s folder that reaches ``server`` through a fault-injecting proxy."""
    proxy = s3_fixtures.TcpProxy(server.port)
    try:
        cfg = _config(bucket, proxy.url, tmp, **kw)
        yield proxy, uploader.Uploader(cfg, mkv.parent, environ=ENV)
    finally:
        proxy.close()


def _download(server: s3_fixtures.MotoServer, bucket: str, key: str) -> bytes:
    return bytes(server.client().get_object(Bucket=bucket, Key=key)["Body"].read())


def _key(recording_id: str, name: str) -> str:
    return f"rig-7/2026-11-22/{recording_id}/{name}"


def _remote_sha(server: s3_fixtures.MotoServer, bucket: str, mkv: pathlib.Path) -> str:
    """SHA-256 of the uploaded copy of ``mkv`` (a recording of :data:`STARTED`'s day)."""
    return upload_factory.sha256_of(_download(server, bucket, _key(mkv.stem, mkv.name)))


def test_real_recording_uploads_byte_identical_with_device_metadata(
    s3_server: s3_fixtures.MotoServer, tmp_path: pathlib.Path
) -> None:
    bucket = _bucket(s3_server, "real-rec")
    written = fixtures_recording.write_recording(tmp_path / "spool", name="rec-up", frames=30)
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    mkv = merge.merge_recording_chunks(written.directory, recordings / "rec-up.mkv")
    up = uploader.Uploader(_config(bucket, s3_server.url, tmp_path), recordings, environ=ENV)
    snap = up.run_once()
    assert snap["last_error"] is None
    assert (snap["uploaded_recordings"], snap["pending_recordings"]) == (1, 0)
    assert snap["pending_bytes"] == 0 and snap["state"] == "idle"
    for local in (mkv, mkv.with_suffix(".json")):
        key = f"rig-7/2026-11-22/rec-up/{local.name}"
        assert _download(s3_server, bucket, key) == local.read_bytes()
        head = s3_server.client().head_object(Bucket=bucket, Key=key)
        assert head["Metadata"] == {"omgrab-device-id": "rig-7"}
    state = up.store.load("recording", "rec-up")
    assert state.uploaded and all(f.done for f in state.files.values())
    # A second pass sends nothing.
    again = up.run_once()
    assert again["parts_sent"] == snap["parts_sent"]


def test_network_cut_mid_upload_resumes_without_resending_parts(
    s3_server: s3_fixtures.MotoServer, tmp_path: pathlib.Path
) -> None:
    bucket, mkv, sha = _bucket_and_recording(s3_server, tmp_path, "cut", 50 * MiB)
    with _through_proxy(s3_server, bucket, tmp_path, mkv) as (proxy, up):
        cut = proxy.cut_after_bytes(22 * MiB)
        first = up.run_once()
        assert cut.is_set()
        assert first["errors"] == 1 and first["last_error"]
        assert first["state"] == "error" and first["pending_recordings"] == 1
        assert not up.store.load("recording", mkv.stem).uploaded
        sent_before_cut = first["parts_sent"]
        assert 3 <= sent_before_cut <= 4
        # Network still down: the pass fails again, nothing is lost.
        assert up.run_once()["errors"] == 2
        proxy.restore()
        done = up.run_once()
    assert done["last_error"] is not None  # the last error stays visible...
    assert done["uploaded_recordings"] == 1 and done["pending_recordings"] == 0
    # ...but nothing acknowledged was sent twice: 10 parts + the 1 manifest PUT in total,
    # at most one part (the one in flight when the network went) again.
    assert done["parts_skipped"] >= sent_before_cut
    assert done["parts_sent"] <= 10 + 1 + 1
    assert _remote_sha(s3_server, bucket, mkv) == sha


def test_server_restart_loses_the_upload_and_it_starts_over(tmp_path: pathlib.Path) -> None:
    server = s3_fixtures.MotoServer()
    server.start()
    try:
        bucket = _bucket(server, "restart")
        mkv, sha = upload_factory.make_recording(tmp_path / "rec", "rec-rs", 12 * MiB, STARTED)
        allowed = {"parts": 2}  # the pass gate, then the first part

        def on_wifi() -> bool:
            allowed["parts"] -= 1
            return allowed["parts"] >= 0

        cfg = _config(bucket, server.url, tmp_path, only_on_wifi=True)
        up = uploader.Uploader(cfg, mkv.parent, on_wifi=on_wifi, environ=ENV)
        paused = up.run_once()
        assert (paused["state"], paused["pause_reason"]) == ("paused", "not on Wi-Fi")
        assert paused["parts_sent"] == 1
        server.stop()
        down = up.run_once()  # server down: counted, not fatal
        allowed["parts"] = 100
        down = up.run_once()
        assert down["errors"] >= 1 and down["pending_recordings"] == 1
        server.start()  # moto keeps nothing: bucket and multipart upload are gone
        _bucket(server, "restart")
        done = up.run_once()
        assert done["uploaded_recordings"] == 1, done
        assert _remote_sha(server, bucket, mkv) == sha
    finally:
        server.stop()


def _state_parts(state_file: pathlib.Path) -> int:
    try:
        doc = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return 0
    return sum(1 for f in doc["files"].values() if f["upload_id"] for _ in f["part_md5"])


def test_sigkill_mid_upload_then_restart_sends_only_missing_parts(
    s3_server: s3_fixtures.MotoServer, tmp_path: pathlib.Path
) -> None:
    bucket, mkv, sha = _bucket_and_recording(s3_server, tmp_path, "kill", 50 * MiB)
    cfg = tmp_path / "upload.json"
    cfg.write_text(json.dumps(_mapping(bucket, s3_server.url, tmp_path, max_bandwidth=10 * MiB)))
    cmd = [sys.executable, "-m", "omgrab.cli", "upload", str(mkv.parent), "--config", str(cfg)]
    env = {**os.environ, **ENV}
    proc = subprocess.Popen([*cmd, "--json"], env=env, stdout=subprocess.PIPE, text=True)
    state_file = tmp_path / "state" / "recording-rec-kill.json"
    deadline = time.monotonic() + 120
    while _state_parts(state_file) < 4 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    doc = json.loads(state_file.read_text())
    upload_id = doc["files"]["rec-kill.mkv"]["upload_id"]
    held = s3_fixtures.make_client(s3_server.url).list_parts(
        Bucket=bucket, Key=_key("rec-kill", "rec-kill.mkv"), UploadId=upload_id
    )["Parts"]
    assert 3 <= len(held) < 10
    done = subprocess.run([*cmd, "--json"], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["uploaded_recordings"] == 1
    assert result["parts_skipped"] == len(held)
    assert result["parts_sent"] == 10 - len(held) + 1  # missing parts + the manifest
    assert _remote_sha(s3_server, bucket, mkv) == sha


def test_wrong_credentials_fail_loudly_and_keep_everything(tmp_path: pathlib.Path) -> None:
    server = s3_fixtures.MotoServer(env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"})
    server.start()
    try:
        import boto3

        iam = boto3.client(
            "iam",
            endpoint_url=server.url,
            region_name="us-east-1",
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
        )
        iam.create_user(UserName="rig")
        key = iam.create_access_key(UserName="rig")["AccessKey"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName="rig", PolicyName="s3", PolicyDocument=json.dumps(policy))
        good = s3_fixtures.make_client(server.url, key["AccessKeyId"], key["SecretAccessKey"])
        good.create_bucket(Bucket="authed")
        mkv, _sha = upload_factory.make_recording(tmp_path / "rec", "rec-auth", 1 * MiB, STARTED)
        cfg = _config("authed", server.url, tmp_path)
        for env, code in (
            (
                {"AWS_ACCESS_KEY_ID": "AKIANOSUCHKEY0000000", "AWS_SECRET_ACCESS_KEY": "x"},
                "InvalidAccessKeyId",
            ),
            (
                {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": "wrong"},
                "SignatureDoesNotMatch",
            ),
        ):
            snap = uploader.Uploader(cfg, mkv.parent, environ=env).run_once()
            assert snap["errors"] == 1
            assert "S3 refused the credentials" in snap["last_error"]
            # The first request is a HEAD (no error body); the PUT names the code.
            assert code in snap["last_error"] or "(403)" in snap["last_error"]
            assert snap["pending_recordings"] == 1 and snap["uploaded_recordings"] == 0
            assert mkv.exists() and mkv.with_suffix(".json").exists()
        creds = tmp_path / "creds.json"
        creds.write_text(
            json.dumps(
                {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}
            )
        )
        creds.chmod(0o600)
        cfg = _config("authed", server.url, tmp_path, credentials_file=str(creds))
        snap = uploader.Uploader(cfg, mkv.parent, environ={}).run_once()
        assert snap["uploaded_recordings"] == 1, snap
    finally:
        server.stop()


def test_full_bucket_quota_is_retried_and_nothing_is_lost(
    s3_server: s3_fixtures.MotoServer, tmp_path: pathlib.Path
) -> None:
    # moto enforces no quota, so the proxy answers as Ceph RGW / MinIO do for a full bucket.
    bucket, mkv, sha = _bucket_and_recording(s3_server, tmp_path, "quota", 11 * MiB)
    with _through_proxy(s3_server, bucket, tmp_path, mkv, delete_after_upload=True) as pair:
        proxy, up = pair
        proxy.answer_errors(s3_fixtures.s3_error(403, "QuotaExceeded", "bucket quota exceeded"))
        full = up.run_once()
        assert full["errors"] == 1 and "QuotaExceeded" in full["last_error"]
        assert mkv.exists() and full["pending_recordings"] == 1
        proxy.restore()
        done = up.run_once()
    assert done["uploaded_recordings"] == 1
    assert _remote_sha(s3_server, bucket, mkv) == sha
    assert not mkv.exists()  # delete_after_upload, after verification


def test_part_damaged_in_transit_is_rejected_by_its_checksum_and_resent(
    s3_server: s3_fixtures.MotoServer, tmp_path: pathlib.Path
) -> None:
    bucket, mkv, sha = _bucket_and_recording(s3_server, tmp_path, "damaged", 11 * MiB)
    with _through_proxy(s3_server, bucket, tmp_path, mkv) as (proxy, up):
        proxy.corrupt_next_body = True
        first = up.run_once()
        assert not proxy.corrupt_next_body  # a byte was flipped on the wire
        # AWS/MinIO refuse the part (BadDigest, Content-MD5); moto stores it, and the ETag
        # check (the server's MD5 of what it received) catches it.
        assert first["errors"] == 1
        assert "BadDigest" in first["last_error"] or "is not its MD5" in first["last_error"]
        assert not up.store.load("recording", mkv.stem).uploaded
        done = up.run_once()
    assert done["uploaded_recordings"] == 1
    assert _remote_sha(s3_server, bucket, mkv) == sha


def test_delete_only_what_verifies_remotely_and_retention_order(
    s3_server: s3_fixtures.MotoServer, tmp_path: pathlib.Path
) -> None:
    bucket = _bucket(s3_server, "retention")
    rec = tmp_path / "rec"
    old, _ = upload_factory.make_recording(rec, "rec-old", 6 * MiB, STARTED, seed=1)
    new, _ = upload_factory.make_recording(
        rec, "rec-new", 1000, STARTED + datetime.timedelta(hours=1), seed=2
    )
    up = uploader.Uploader(_config(bucket, s3_server.url, tmp_path), rec, environ=ENV)
    assert up.retention_candidates() == []
    assert up.run_once()["uploaded_recordings"] == 2
    assert up.retention_candidates() == [old, new]
    client = s3_server.client()
    # The remote copy of rec-old no longer matches: it must not be deleted.
    client.put_object(Bucket=bucket, Key=_key("rec-old", old.name), Body=b"tampered")
    assert not up.delete_if_uploaded(old)
    assert old.exists() and old.with_suffix(".json").exists()
    client.delete_object(Bucket=bucket, Key=_key("rec-new", new.with_suffix(".json").name))
    assert not up.delete_if_uploaded(new)
    assert new.exists()
    # A recording never uploaded is not deleted.
    unuploaded, _ = upload_factory.make_recording(tmp_path / "other", "rec-x", 100, STARTED)
    assert not up.delete_if_uploaded(unuploaded)
    # A local file that changed after its upload is not deleted either.
    touched, _ = upload_factory.make_recording(
        rec, "rec-touched", 100, STARTED + datetime.timedelta(hours=2), seed=3
    )
    assert up.run_once()["uploaded_recordings"] == 3
    with touched.open("ab") as f:
        f.write(b"late bytes")
    assert not up.delete_if_uploaded(touched)
    assert touched.exists()
    client.put_object(Bucket=bucket, Key=_key("rec-old", old.name), Body=old.read_bytes())
    # Single PUT vs multipart ETag differ; re-upload the way the uploader did.
    state = up.store.load("recording", "rec-old")
    fs = state.files[old.name]
    fs.done, fs.upload_id = False, None
    multipart.upload_file(client, bucket, fs, save=lambda _s: None)
    assert up.delete_if_uploaded(old)
    assert not old.exists() and not old.with_suffix(".json").exists()
    assert up.retention_candidates() == [new, touched]


def test_gates_pause_and_progress_reports_backlog(
    s3_server: s3_fixtures.MotoServer, tmp_path: pathlib.Path
) -> None:
    bucket = _bucket(s3_server, "gates")
    rec = tmp_path / "rec"
    for i in range(3):
        upload_factory.make_recording(
            rec, f"rec-{i}", 2 * MiB, STARTED + datetime.timedelta(minutes=i), seed=i
        )
    recording = {"on": True}
    cfg = _config(bucket, s3_server.url, tmp_path, only_when_idle=True)
    up = uploader.Uploader(cfg, rec, is_recording=lambda: recording["on"], environ=ENV)
    snap = up.run_once()
    assert (snap["state"], snap["pause_reason"]) == ("paused", "recording in progress")
    assert snap["pending_recordings"] == 3 and snap["parts_sent"] == 0
    manifests = sum(p.stat().st_size for p in rec.glob("*.json"))
    assert snap["pending_bytes"] == 3 * 2 * MiB + manifests
    recording["on"] = False
    snap = up.run_once()
    assert snap["uploaded_recordings"] == 3 and snap["pending_bytes"] == 0
    assert snap["rate_bytes_per_s"] > 0 and snap["eta_s"] == 0
    with pytest.raises(config_mod.UploadConfigError, match="is_recording"):
        uploader.Uploader(cfg, rec, environ=ENV)


def test_bandwidth_limit_holds_over_a_real_upload(
    s3_server: s3_fixtures.MotoServer, tmp_path: pathlib.Path
) -> None:
    bucket = _bucket(s3_server, "paced")
    mkv, _ = upload_factory.make_recording(tmp_path / "rec", "rec-bw", 20 * MiB, STARTED)
    rate = 8 * MiB
    cfg = _config(bucket, s3_server.url, tmp_path, max_bandwidth=rate)
    began = time.monotonic()
    snap = uploader.Uploader(cfg, mkv.parent, environ=ENV).run_once()
    elapsed = time.monotonic() - began
    assert snap["uploaded_recordings"] == 1
    # Every byte after the first part waited for its share of the limit.
    assert elapsed >= (20 * MiB - PART) / rate


def test_perception_sessions_upload_except_the_active_one(
    s3_server: s3_fixtures.MotoServer, tmp_path: pathlib.Path
) -> None:
    bucket = _bucket(s3_server, "perception")
    base = tmp_path / "perception"
    for name in ("2026-11-22_02-00-00", "2026-11-22_03-00-00"):
        (base / name / "frames").mkdir(parents=True)
        (base / name / "detections.ndjson").write_text('{"id": 1}\n')
        (base / name / "frames" / "000001.jpg").write_bytes(os.urandom(5000))
    (tmp_path / "rec").mkdir()
    up = uploader.Uploader(
        _config(bucket, s3_server.url, tmp_path), tmp_path / "rec", base, environ=ENV
    )
    snap = up.run_once()
    assert snap["pending_perception_sessions"] == 0 and snap["last_error"] is None
    keys = sorted(
        o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket).get("Contents", [])
    )
    prefix = keys[0].rsplit("/perception/", 1)[0]
    assert keys == [
        f"{prefix}/perception/2026-11-22_02-00-00/detections.ndjson",
        f"{prefix}/perception/2026-11-22_02-00-00/frames/000001.jpg",
    ]


@pytest.mark.skipif(os.environ.get("OMGRAB_FAULTS") != "1", reason="1 GB upload: make faults")
def test_one_gigabyte_recording_uploads_byte_identical(
    s3_server: s3_fixtures.MotoServer, tmp_path: pathlib.Path
) -> None:
    bucket = _bucket(s3_server, "large")
    mkv, sha = upload_factory.make_recording(tmp_path / "rec", "rec-1g", 1024 * MiB, STARTED)
    cfg = _config(bucket, s3_server.url, tmp_path, part_size=64 * MiB)
    snap = uploader.Uploader(cfg, mkv.parent, environ=ENV).run_once()
    assert snap["uploaded_recordings"] == 1, snap
    body = s3_server.client().get_object(Bucket=bucket, Key=_key("rec-1g", mkv.name))["Body"]
    digest = __import__("hashlib").sha256()
    for block in iter(lambda: body.read(8 * MiB), b""):
        digest.update(block)
    assert digest.hexdigest() == sha


def test_units_ignore_incomplete_recordings(tmp_path: pathlib.Path) -> None:
    (tmp_path / "only.mkv").write_bytes(b"x")  # merge still running: no manifest yet
    (tmp_path / "orphan.json").write_text("{}")  # no MKV
    assert units.find_recordings(tmp_path) == []


def test_background_thread_retries_until_the_server_is_back(tmp_path: pathlib.Path) -> None:
    server = s3_fixtures.MotoServer()
    mkv, sha = upload_factory.make_recording(tmp_path / "rec", "rec-bg", 1000, STARTED)
    cfg = _config(
        "bg-retry",
        server.url,
        tmp_path,
        retry_initial_s=0.05,
        retry_max_s=0.2,
        poll_interval_s=0.05,
    )
    up = uploader.Uploader(cfg, mkv.parent, environ=ENV)
    up.start()
    try:
        deadline = time.monotonic() + 60
        while up.progress()["errors"] < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert up.progress()["errors"] >= 2  # server not started yet: counted, thread alive
        server.start()
        _bucket(server, "bg-retry")
        while up.progress()["uploaded_recordings"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert up.progress()["uploaded_recordings"] == 1
        assert _remote_sha(server, "bg-retry", mkv) == sha
    finally:
        up.stop()
        server.stop()
    assert up.progress()["state"] == "stopped"


def test_cli_upload_user_mistakes_exit_2(tmp_path: pathlib.Path) -> None:
    cmd = [sys.executable, "-m", "omgrab.cli", "upload"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    (tmp_path / "rec").mkdir()
    for args, message in (
        ([str(tmp_path / "rec"), "--bucket", "bkt"], "no S3 credentials"),
        ([str(tmp_path / "none"), "--bucket", "bkt"], "does not exist"),
        ([str(tmp_path / "rec")], "upload.bucket is required"),
    ):
        done = subprocess.run([*cmd, *args], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("omgrab upload: error: ") and message in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
