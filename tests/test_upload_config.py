"""UploadConfig validation, credentials loading and the bandwidth pacer (fake clock)."""

from __future__ import annotations

import datetime
import json
import pathlib

import pytest

from omgrab.upload import config, pacing


def test_from_mapping_names_what_is_wrong(tmp_path: pathlib.Path) -> None:
    cfg = config.UploadConfig.from_mapping(
        {"bucket": "bk1", "device_id": "rig-3", "state_dir": str(tmp_path), "max_bandwidth": 10}
    )
    assert cfg.state_dir == tmp_path and cfg.max_bandwidth == 10
    started = datetime.datetime(2026, 11, 30, 23, 30, tzinfo=datetime.UTC)
    assert cfg.key_prefix(started) == "rig-3/2026-11-30"
    assert cfg.key_prefix(None) == "rig-3/undated"
    for mapping, message in (
        ({}, "upload.bucket is required"),
        ({"bucket": "bkt", "bucke": "x"}, "unknown upload setting 'bucke'"),
        ({"bucket": "bkt", "part_size": 1024}, "upload.part_size must be an integer >= 5242880"),
        ({"bucket": "bkt", "only_on_wifi": "yes"}, "upload.only_on_wifi must be true or false"),
        ({"bucket": "bkt", "endpoint_url": "minio:9000"}, "must start with http"),
        ({"bucket": "bkt", "prefix": "{host}/x"}, "may only use"),
        ({"bucket": "bkt", "max_bandwidth": 0}, "max_bandwidth must be a positive"),
        ({"bucket": "bkt", "retry_max_s": True}, "retry_max_s must be a positive"),
        ({"bucket": 3}, "upload.bucket must be a string"),
        ({"bucket": "ab"}, "3 to 63 characters"),
    ):
        with pytest.raises(config.UploadConfigError, match=message):
            config.UploadConfig.from_mapping(mapping)


def test_credentials_from_env_or_private_file(tmp_path: pathlib.Path) -> None:
    cfg = config.UploadConfig(bucket="bkt")
    creds = config.load_credentials(cfg, {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"})
    assert (creds.access_key_id, creds.secret_access_key, creds.session_token) == ("AK", "SK", None)
    assert "SK" not in repr(creds)
    with pytest.raises(config.UploadConfigError, match="no S3 credentials"):
        config.load_credentials(cfg, {})
    path = tmp_path / "s3.json"
    path.write_text(json.dumps({"access_key_id": "FK", "secret_access_key": "FS"}))
    path.chmod(0o644)
    file_cfg = config.UploadConfig(bucket="bkt", credentials_file=path)
    with pytest.raises(config.UploadConfigError, match=r"mode 0644.*chmod 600"):
        config.load_credentials(file_cfg, {})
    path.chmod(0o600)
    assert config.load_credentials(file_cfg, {}).access_key_id == "FK"
    path.write_text(json.dumps({"access_key_id": "FK"}))
    with pytest.raises(config.UploadConfigError, match="lacks 'secret_access_key'"):
        config.load_credentials(file_cfg, {})
    missing = config.UploadConfig(bucket="bkt", credentials_file=tmp_path / "none.json")
    with pytest.raises(config.UploadConfigError, match="cannot be read"):
        config.load_credentials(missing, {})


def test_pacer_keeps_the_average_under_the_rate() -> None:
    now = [100.0]
    waits: list[float] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    pacer = pacing.Pacer(1000, clock=lambda: now[0], wait=wait)
    for _ in range(5):
        pacer.take(500)
    # First send goes at once; each later one waits for the previous to drain at 1000 B/s.
    assert waits == [0.5, 0.5, 0.5, 0.5]
    # Idle time is not banked beyond the current moment: after a long pause, no burst credit.
    now[0] += 60
    assert pacer.take(2000) == 0
    assert pacer.take(10) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="rate must be > 0"):
        pacing.Pacer(0)
