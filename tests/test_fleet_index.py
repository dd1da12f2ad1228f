"""Fleet index over a bucket of a few hundred generated manifests, queried with DuckDB."""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import subprocess
import sys
from typing import Any

import duckdb
import pyarrow.parquet as pq

from omgrab.fleet import index
from tests import s3_fixtures, upload_factory

START = datetime.datetime(2026, 11, 1, 8, 0, tzinfo=datetime.UTC)
DEVICES = ("rig-1", "rig-2", "rig-3")


class CountingClient:
    """The real boto3 client, counting GetObject calls."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.gets = 0

    def get_object(self, **kw: Any) -> Any:
        self.gets += 1
        return self._client.get_object(**kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _put(client: Any, bucket: str, i: int) -> dict[str, Any]:
    device = DEVICES[i % 3]
    started = START + datetime.timedelta(hours=i)
    rec = f"rec-{i:04d}"
    manifest = upload_factory.make_manifest(
        rec,
        started,
        duration_s=30.0 + i % 7,
        size_bytes=1_000_000 + i,
        frames=100 + i,
        dropped=None if i % 50 == 0 else i % 3,
    )
    key = f"{device}/{started:%Y-%m-%d}/{rec}/{rec}.json"
    client.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(manifest.to_dict()).encode(),
        Metadata={index.DEVICE_METADATA_KEY: device},
    )
    return {"device": device, "duration": 30.0 + i % 7, "key": key}


def test_index_is_built_incrementally_and_queryable(
    s3_server: s3_fixtures.MotoServer, tmp_path: pathlib.Path
) -> None:
    client = CountingClient(s3_server.client())
    bucket = "fleet"
    client.create_bucket(Bucket=bucket)
    expected = [_put(client, bucket, i) for i in range(300)]
    # Not manifests: an MKV, a perception file, and a broken manifest.
    client.put_object(Bucket=bucket, Key="rig-1/2026-11-01/rec-0000/rec-0000.mkv", Body=b"mkv")
    client.put_object(Bucket=bucket, Key="rig-1/x/perception/s1/detections.json", Body=b"{}")
    client.put_object(Bucket=bucket, Key="rig-9/2026-11-01/bad/bad.json", Body=b"{not json")
    out = tmp_path / "fleet.parquet"

    first = index.update_index(client, bucket, out)
    assert (first.total_rows, first.added, first.skipped_invalid) == (300, 300, 1)
    assert client.gets == 301

    rows = pq.read_table(out).to_pylist()
    row = next(r for r in rows if r["recording_id"] == "rec-0007")
    assert row["device_id"] == "rig-2"
    assert row["started_at"] == START + datetime.timedelta(hours=7)
    assert row["stream_names"] == ["rgb", "depth", "imu"]
    assert row["frames_total"] == 107 + 107 + 107 // 4
    assert row["frames_dropped"] == 3 * (7 % 3)
    assert row["location"] == "s3://fleet/rig-2/2026-11-01/rec-0007/rec-0007.mkv"
    assert row["size_bytes"] == 1_000_007
    assert next(r for r in rows if r["recording_id"] == "rec-0050")["frames_dropped"] is None

    # Incremental: only new manifests are fetched.
    expected += [_put(client, bucket, i) for i in range(300, 320)]
    client.gets = 0
    second = index.update_index(client, bucket, out)
    assert (second.total_rows, second.added, second.fetched) == (320, 20, 21)
    assert client.gets == 21  # the 20 new ones + the still-broken one
    # A rewritten manifest (new ETag) replaces its row.
    changed = upload_factory.make_manifest("rec-0001", START, 99.0, 5, frames=1)
    client.put_object(
        Bucket=bucket, Key=expected[1]["key"], Body=json.dumps(changed.to_dict()).encode()
    )
    third = index.update_index(client, bucket, out)
    assert (third.total_rows, third.added) == (320, 1)

    # The documented query (docs/fleet.md): recordings and hours per device.
    got = duckdb.sql(
        f"""
        SELECT device_id, count(*) AS recordings, round(sum(duration_s) / 3600, 4) AS hours
        FROM read_parquet('{out}') GROUP BY device_id ORDER BY device_id
        """
    ).fetchall()
    want = []
    expected[1]["duration"] = 99.0
    for device in DEVICES:
        durations = [e["duration"] for e in expected if e["device"] == device]
        want.append((device, len(durations), round(sum(durations) / 3600, 4)))
    assert got == want
    [(imu_frames,)] = duckdb.sql(
        f"SELECT sum(s.frames_written) FROM read_parquet('{out}'), unnest(streams) AS t(s) "
        "WHERE s.name = 'imu'"
    ).fetchall()
    assert imu_frames == sum((100 + i) // 4 for i in range(320) if i != 1) + 1 // 4


def test_index_cli(s3_server: s3_fixtures.MotoServer, tmp_path: pathlib.Path) -> None:
    client = s3_server.client()
    client.create_bucket(Bucket="fleet-cli")
    for i in range(3):
        _put(client, "fleet-cli", i)
    out = tmp_path / "i.parquet"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": s3_fixtures.ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": s3_fixtures.SECRET_KEY,
    }
    cmd = [sys.executable, "-m", "omgrab.cli", "index", "--endpoint-url", s3_server.url]
    done = subprocess.run(
        [*cmd, "fleet-cli", "-o", str(out)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "3 recordings (3 new" in done.stdout
    missing = subprocess.run(
        [*cmd, "no-such-bucket", "-o", str(out)], env=env, capture_output=True, text=True
    )
    assert missing.returncode == 2
    assert missing.stderr.startswith("omgrab index: error: cannot list s3://no-such-bucket")
    assert len(missing.stderr.strip().splitlines()) == 1
    assert pq.read_table(out).num_rows == 3  # the index is untouched by the failed run
