"""The fleet index: one Parquet table of every recording in a bucket, built from the manifests.

Data path: ``ListObjectsV2`` over the bucket (optionally under a prefix) finds the recording
manifests (``<...>/<recording_id>/<recording_id>.json``, as :mod:`omgrab.upload` lays them
out); each manifest not yet in the index is fetched (``GetObject``), validated with
:func:`omgrab.recording.manifest.manifest_from_dict` and becomes one row. Incremental: rows
already in the index whose manifest ETag is unchanged are kept without fetching anything again;
a manifest whose ETag changed is fetched and its row replaced.

Bounds: the index is held in memory while it is rewritten (a few hundred bytes per recording).
Lifecycle: the new index is written to a temporary file beside the old one and renamed over it
only when complete (fsync, rename, directory fsync), so a crash leaves the previous index.
Error policy: an unreadable or invalid manifest is skipped, counted (``skipped_invalid``) and
logged with its key; S3 errors (credentials, missing bucket, network) raise
:class:`FleetIndexError` naming the bucket.

Query it with DuckDB (``SELECT device_id, count(*) FROM 'fleet.parquet' GROUP BY 1``) or
``pandas.read_parquet``; see ``docs/fleet.md``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import pathlib
from typing import Any

from omgrab.recording import atomic_files
from omgrab.recording import manifest as manifest_mod

logger = logging.getLogger(__name__)

DEVICE_METADATA_KEY = "omgrab-device-id"
"""S3 user-metadata key the uploader sets on every object (``x-amz-meta-omgrab-device-id``;
the same as :data:`omgrab.upload.uploader.DEVICE_METADATA_KEY`)."""


class FleetIndexError(RuntimeError):
    """The bucket cannot be listed or read, or the existing index is unreadable."""


@dataclasses.dataclass
class IndexResult:
    """What one :func:`update_index` run did.

    Attributes:
        total_rows: Recordings in the index now.
        added: Rows added or replaced by this run.
        fetched: Manifests fetched by this run.
        skipped_invalid: Manifests that could not be read or validated.
        listed: Manifest keys listed in the bucket.
    """

    total_rows: int
    added: int
    fetched: int
    skipped_invalid: int
    listed: int


def _schema() -> Any:
    import pyarrow as pa

    stream = pa.struct(
        [
            ("name", pa.string()),
            ("kind", pa.string()),
            ("codec", pa.string()),
            ("frames_written", pa.int64()),
            ("frames_dropped", pa.int64()),
            ("first_pts_ms", pa.int64()),
            ("last_pts_ms", pa.int64()),
        ]
    )
    ts = pa.timestamp("us", tz="UTC")
    return pa.schema(
        [
            ("device_id", pa.string()),
            ("recording_id", pa.string()),
            ("started_at", ts),
            ("stopped_at", ts),
            ("duration_s", pa.float64()),
            ("stream_names", pa.list_(pa.string())),
            ("streams", pa.list_(stream)),
            ("frames_total", pa.int64()),
            ("frames_dropped", pa.int64()),
            ("gaps", pa.int64()),
            ("skipped_chunks", pa.int64()),
            ("stop_reason", pa.string()),
            ("recovered", pa.bool_()),
            ("complete", pa.bool_()),
            ("size_bytes", pa.int64()),
            ("location", pa.string()),
            ("manifest_key", pa.string()),
            ("manifest_etag", pa.string()),
            ("indexed_at", ts),
        ]
    )


def s3_client(endpoint_url: str | None, region: str = "us-east-1") -> Any:
    """A boto3 S3 client with credentials from the standard AWS environment/config chain."""
    import boto3
    from botocore import config as botocore_config

    return boto3.session.Session(region_name=region).client(
        "s3",
        endpoint_url=endpoint_url,
        config=botocore_config.Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 3, "mode": "standard"},
        ),
    )


def is_manifest_key(key: str) -> bool:
    """Whether ``key`` is laid out as a recording manifest (``.../<id>/<id>.json``)."""
    parts = key.split("/")
    return len(parts) >= 2 and parts[-1].endswith(".json") and parts[-1][:-5] == parts[-2]


def _time(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def manifest_row(
    doc: dict[str, Any], bucket: str, key: str, etag: str, device_id: str | None
) -> dict[str, Any]:
    """One index row from a parsed manifest stored at ``key``.

    Raises:
        manifest_mod.ManifestError: the manifest does not validate.
    """
    manifest = manifest_mod.manifest_from_dict(doc, f"s3://{bucket}/{key}")
    streams = [
        {
            "name": s.name,
            "kind": s.kind,
            "codec": s.codec,
            "frames_written": s.frames_written,
            "frames_dropped": s.frames_dropped,
            "first_pts_ms": s.first_pts_ms,
            "last_pts_ms": s.last_pts_ms,
        }
        for s in manifest.streams.values()
    ]
    dropped = [s.frames_dropped for s in manifest.streams.values()]
    gaps = doc.get("gaps")
    stop_reason = doc.get("stop_reason")
    mkv_key = key.rsplit("/", 1)[0] + "/" + manifest.output_file
    return {
        "device_id": device_id or key.split("/", 1)[0],
        "recording_id": manifest.recording_id,
        "started_at": _time(manifest.started_at),
        "stopped_at": _time(manifest.stopped_at),
        "duration_s": manifest.duration_s,
        "stream_names": list(manifest.streams),
        "streams": streams,
        "frames_total": sum(s.frames_written for s in manifest.streams.values()),
        "frames_dropped": None if any(d is None for d in dropped) else sum(d or 0 for d in dropped),
        "gaps": len(gaps) if isinstance(gaps, list) else gaps if isinstance(gaps, int) else None,
        "skipped_chunks": len(manifest.skipped_chunks),
        "stop_reason": stop_reason if isinstance(stop_reason, str) else None,
        "recovered": manifest.recovered,
        "complete": manifest.complete,
        "size_bytes": manifest.output_size_bytes,
        "location": f"s3://{bucket}/{mkv_key}",
        "manifest_key": key,
        "manifest_etag": etag,
        "indexed_at": datetime.datetime.now(datetime.UTC),
    }


def _list_manifests(client: Any, bucket: str, prefix: str) -> dict[str, str]:
    found: dict[str, str] = {}
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if is_manifest_key(obj["Key"]):
                found[obj["Key"]] = str(obj.get("ETag", "")).strip('"')
    return found


def update_index(
    client: Any, bucket: str, output: str | os.PathLike[str], prefix: str = ""
) -> IndexResult:
    """Create or extend the Parquet index at ``output`` with the bucket's new manifests.

    Raises:
        FleetIndexError: the bucket cannot be listed or the existing index cannot be read.
    """
    import pyarrow as pa
    from botocore import exceptions as botocore_exceptions
    from pyarrow import parquet as pq

    target = pathlib.Path(output)
    schema = _schema()
    old_rows: list[dict[str, Any]] = []
    if target.exists():
        try:
            old_rows = pq.read_table(target).to_pylist()
        except (OSError, pa.ArrowException) as exc:
            raise FleetIndexError(f"existing index {target} cannot be read: {exc}") from exc
    known = {row["manifest_key"]: row["manifest_etag"] for row in old_rows}
    try:
        listed = _list_manifests(client, bucket, prefix)
    except (botocore_exceptions.BotoCoreError, botocore_exceptions.ClientError) as exc:
        raise FleetIndexError(f"cannot list s3://{bucket}/{prefix}: {exc}") from exc
    todo = sorted(k for k, etag in listed.items() if known.get(k) != etag)
    new_rows: list[dict[str, Any]] = []
    skipped = 0
    for key in todo:
        try:
            obj = client.get_object(Bucket=bucket, Key=key)
            raw = obj["Body"].read()
        except (botocore_exceptions.BotoCoreError, botocore_exceptions.ClientError) as exc:
            raise FleetIndexError(f"cannot read s3://{bucket}/{key}: {exc}") from exc
        try:
            doc = json.loads(raw)
            row = manifest_row(
                doc,
                bucket,
                key,
                listed[key],
                (obj.get("Metadata") or {}).get(DEVICE_METADATA_KEY),
            )
        except (ValueError, manifest_mod.ManifestError) as exc:
            skipped += 1
            logger.warning("skipping s3://%s/%s: %s", bucket, key, exc)
            continue
        new_rows.append(row)
    replaced = {row["manifest_key"] for row in new_rows}
    rows = [r for r in old_rows if r["manifest_key"] not in replaced] + new_rows
    rows.sort(key=lambda r: (r["device_id"] or "", r["started_at"] or _EPOCH, r["recording_id"]))
    table = pa.Table.from_pylist(rows, schema=schema)
    tmp = atomic_files.temp_path_for(target)
    try:
        pq.write_table(table, tmp, compression="zstd")
        atomic_files.replace_durably(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return IndexResult(
        total_rows=len(rows),
        added=len(new_rows),
        fetched=len(todo),
        skipped_invalid=skipped,
        listed=len(listed),
    )


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
