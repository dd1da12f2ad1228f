"""Bad spool input through ``omgrab recover --cleanup``: salvage all, delete only what merged."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from tests import recording_spool_factory as factory
from tests.faults import app_process

pytestmark = pytest.mark.faults


def test_recover_cli_with_corrupt_truncated_foreign_mismatched_chunks_and_hostile_json(
    tmp_path: pathlib.Path,
) -> None:
    spool, out = tmp_path / "spool", tmp_path / "out"
    bad = factory.standard_recording(spool, "rec-bad", duration_ms=6000, complete=False)
    bad.chunk_path("rgb", 1).write_bytes(os.urandom(4000))  # corrupt
    factory.write_chunk(
        bad.chunk_path("rgb", 2), factory.rgb_spec(width=96, height=64), bad.chunks["rgb"][2]
    )  # mismatched: its own track
    data = bad.chunk_path("depth", 3).read_bytes()
    bad.chunk_path("depth", 3).write_bytes(data[: len(data) // 3])  # truncated
    bad.chunk_path("imu", 4).write_bytes(b"")  # zero-length
    factory.write_chunk(bad.chunk_path("depth", 4), factory.imu_spec(), [4000, 4010])  # foreign
    hostile = factory.standard_recording(spool, "rec-hostile", complete=False)
    doc = json.loads((hostile.directory / "recording.json").read_text())
    doc["recording_id"] = "../../etc/escaped"
    doc["streams"]["rgb"]["config"]["fps"] = 1e300
    (hostile.directory / "recording.json").write_text(json.dumps(doc))
    (hostile.directory / "stats.json").write_text('{"streams": [], "stopped_at": {"x": 1}}')
    before = app_process.spool_packets(spool)

    result = subprocess.run(
        [sys.executable, "-m", "omgrab.cli", "recover", str(spool), str(out), "--cleanup"],
        capture_output=True,
        text=True,
        cwd=app_process.REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.glob("*.mkv")) == ["rec-bad.mkv", "rec-hostile.mkv"]
    assert not (tmp_path / "etc").exists()
    for path in out.glob("*.mkv"):
        app_process.probe_valid(path)
    assert [p for p in spool.iterdir() if not p.name.startswith(".")] == []  # .omgrab.lock stays
    manifest = json.loads((out / "rec-bad.json").read_text())
    kept = {q["file"] for q in manifest["quarantined"]}
    assert kept == {"rgb/00002.mkv", "imu/00005.mkv", "depth/00005.mkv"}
    assert "rgb~2" in manifest["streams"]
    for recording_id, held in before.items():
        assert held <= app_process.kept_packets_in(out, recording_id), recording_id
