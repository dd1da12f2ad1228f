"""Upload throughput vs the raw loopback rate of the same S3 server, CPU per GB, export MB/s.

Starts moto's S3 server on loopback (as the tests do), then in the same run:

- raw: the same file sent by a bare boto3 multipart upload (same part size, no Content-MD5,
  no state file, no verification): the rate the server and the loopback can take;
- omgrab: ``Uploader.run_once`` on the same file (MD5 per part, state file, read-ahead,
  HeadObject verification); ratio = omgrab / raw (target >= 0.8); CPU of this process per GB.
  Whichever upload goes second in a round meets a server holding more data and is slower, so
  the order alternates and ``paired_ratios`` combines a raw-first round with an omgrab-first one;
- export: ``omgrab export`` of a merged recording recorded by ``omgrab demo`` vs a plain file
  copy of the same MKV and vs decoding the FFV1 depth track alone (the floor of the export).

Prints one JSON object. Usage: ``.venv/bin/python benchmarks/transfer.py [--mb 256]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import av
from tests import s3_fixtures, upload_factory

from omgrab.export import mcap_export
from omgrab.upload import config as config_mod
from omgrab.upload import uploader

MiB = 1024 * 1024


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def raw_upload(client: object, bucket: str, path: pathlib.Path, part: int) -> float:
    began = time.monotonic()
    created = client.create_multipart_upload(Bucket=bucket, Key="raw/" + path.name)  # type: ignore[attr-defined]
    parts = []
    with path.open("rb") as f:
        number = 1
        while data := f.read(part):
            r = client.upload_part(  # type: ignore[attr-defined]
                Bucket=bucket,
                Key="raw/" + path.name,
                UploadId=created["UploadId"],
                PartNumber=number,
                Body=data,
            )
            parts.append({"PartNumber": number, "ETag": r["ETag"]})
            number += 1
    client.complete_multipart_upload(  # type: ignore[attr-defined]
        Bucket=bucket,
        Key="raw/" + path.name,
        UploadId=created["UploadId"],
        MultipartUpload={"Parts": parts},
    )
    return time.monotonic() - began


def bench_upload(
    work: pathlib.Path, size_mb: int, part_mb: int, rounds: int, state_root: pathlib.Path | None
) -> dict[str, object]:
    server = s3_fixtures.MotoServer()
    server.start()
    try:
        client = server.client()
        started = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
        results = []
        for i in range(rounds):
            bucket = f"bench-{i}"
            client.create_bucket(Bucket=bucket)
            rec = work / f"rec{i}"
            mkv, _ = upload_factory.make_recording(rec, f"rec-{i}", size_mb * MiB, started, seed=i)
            # Alternate the order so neither side always meets the fuller server.
            raw_s = raw_upload(client, bucket, mkv, part_mb * MiB) if i % 2 == 0 else 0.0
            cfg = config_mod.UploadConfig(
                bucket=bucket,
                endpoint_url=server.url,
                part_size=part_mb * MiB,
                state_dir=(state_root or work) / f"state{i}",
            )
            env = {
                "AWS_ACCESS_KEY_ID": s3_fixtures.ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": s3_fixtures.SECRET_KEY,
            }
            up = uploader.Uploader(cfg, rec, environ=env)
            cpu0, t0 = _cpu(), time.monotonic()
            snap = up.run_once()
            up_s, cpu_s = time.monotonic() - t0, _cpu() - cpu0
            assert snap["uploaded_recordings"] == 1, snap
            if i % 2 == 1:
                raw_s = raw_upload(client, bucket, mkv, part_mb * MiB)
            size = mkv.stat().st_size
            results.append(
                {
                    "order": "raw first" if i % 2 == 0 else "omgrab first",
                    "raw_MBps": round(size / 1e6 / raw_s, 1),
                    "omgrab_MBps": round(size / 1e6 / up_s, 1),
                    "ratio": round(raw_s / up_s, 3),
                    "cpu_s_per_GB": round(cpu_s / (size / 1e9), 2),
                }
            )
            shutil.rmtree(rec)
            for obj in client.list_objects_v2(Bucket=bucket).get("Contents", []):
                client.delete_object(Bucket=bucket, Key=obj["Key"])
        return {
            "file_MB": round(size_mb * MiB / 1e6, 1),
            "part_MiB": part_mb,
            "rounds": results,
            "median_ratio": sorted(r["ratio"] for r in results)[len(results) // 2],
            # Each raw-first round with the next omgrab-first one: the order bias cancels.
            "paired_ratios": [
                round((results[k]["ratio"] * results[k + 1]["ratio"]) ** 0.5, 3)
                for k in range(0, len(results) - 1, 2)
            ],
        }
    finally:
        server.stop()


def bench_export(work: pathlib.Path, seconds: float) -> dict[str, object]:
    data = work / "demo"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "omgrab.cli",
            "demo",
            "--seconds",
            str(seconds),
            "--data-dir",
            str(data),
        ],
        check=True,
        capture_output=True,
    )
    [mkv] = sorted((data / "recordings").glob("*.mkv"))
    size = mkv.stat().st_size
    copy_s = []
    for _ in range(3):
        t0 = time.monotonic()
        shutil.copyfile(mkv, work / "copy.mkv")
        copy_s.append(time.monotonic() - t0)
    # The floor of any raw-pixel depth export: decoding the FFV1 track alone.
    t0 = time.monotonic()
    with av.open(str(mkv)) as container:
        depth = next(s for s in container.streams if s.codec_context.name == "ffv1")
        depth.codec_context.thread_type = "AUTO"
        frames = sum(1 for _ in container.decode(depth))
    decode_s = time.monotonic() - t0
    out: dict[str, object] = {
        "mkv_MB": round(size / 1e6, 1),
        "copy_MBps": round(size / 1e6 / min(copy_s), 1),
        "depth_decode_only_MBps": round(size / 1e6 / decode_s, 1),
        "depth_frames": frames,
    }
    for compression in ("zstd", "lz4", "none"):
        result = mcap_export.export_mcap(mkv, work / f"out-{compression}.mcap", compression)
        out[f"export_{compression}_MBps"] = round(result.input_mb_per_s, 1)
        out[f"export_{compression}_out_MB"] = round(result.output_bytes / 1e6, 1)
        out["messages"] = {k: t.messages for k, t in result.topics.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=256, help="Upload file size in MiB.")
    parser.add_argument("--part-mb", type=int, default=16, help="Part size in MiB.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--export-seconds", type=float, default=10.0)
    parser.add_argument(
        "--state-dir",
        type=pathlib.Path,
        default=None,
        help="Where the uploader keeps its state (default: beside the recordings).",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="omgrab-bench-") as tmp:
        work = pathlib.Path(tmp)
        result = {
            "load_average": os.getloadavg(),
            "upload": bench_upload(work, args.mb, args.part_mb, args.rounds, args.state_dir),
            "export": bench_export(work, args.export_seconds),
        }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
