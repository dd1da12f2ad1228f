"""MCAP export of a real merged recording, read back with the mcap reader."""

from __future__ import annotations

import datetime
import json
import pathlib
import re
import subprocess
import sys

import av
import numpy as np
import pytest
from foxglove_schemas_protobuf import CompressedVideo_pb2, RawImage_pb2
from mcap import reader as mcap_reader
from mcap_protobuf import decoder as protobuf_decoder

from omgrab.export import mcap_export
from omgrab.recording import manifest as manifest_mod
from omgrab.recording import merge
from tests import fixtures_recording

SKIPPED = (12, 13, 14)


@pytest.fixture(scope="module")
def merged(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A merged 2 s recording (RGB H.264, depth FFV1, IMU JSON) with a 3-frame gap."""
    root = tmp_path_factory.mktemp("export")
    written = fixtures_recording.write_recording(
        root / "spool", name="rec-export", frames=50, chunk_length_s=0.8, skip=SKIPPED
    )
    return merge.merge_recording_chunks(written.directory, root / "rec-export.mkv")


def _mkv_packets(path: pathlib.Path) -> dict[str, list[tuple[int, bytes]]]:
    out: dict[str, list[tuple[int, bytes]]] = {}
    with av.open(str(path)) as container:
        names = {s.index: s.metadata.get("STREAM_NAME") for s in container.streams}
        for packet in container.demux():
            if packet.size == 0 or packet.pts is None:
                continue
            out.setdefault(names[packet.stream.index], []).append((packet.pts, bytes(packet)))
    return out


def _read(path: pathlib.Path) -> tuple[dict[str, list[tuple[int, bytes]]], dict[str, str], set]:
    messages: dict[str, list[tuple[int, bytes]]] = {}
    with path.open("rb") as f:
        reader = mcap_reader.make_reader(f)
        schemas = {s.name for s in reader.get_summary().schemas.values()}
        for _schema, channel, message in reader.iter_messages(log_time_order=False):
            assert message.publish_time == message.log_time
            messages.setdefault(channel.topic, []).append((message.log_time, message.data))
        [metadata] = list(reader.iter_metadata())
        assert metadata.name == mcap_export.MANIFEST_METADATA_NAME
    return messages, metadata.metadata, schemas


def _nal_units_avcc(payload: bytes) -> list[bytes]:
    units, pos = [], 0
    while pos < len(payload):
        size = int.from_bytes(payload[pos : pos + 4], "big")
        units.append(payload[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return units


def test_export_matches_mkv_counts_timestamps_and_payloads(
    merged: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    out = tmp_path / "rec.mcap"
    result = mcap_export.export_mcap(merged, out)
    manifest = manifest_mod.read_manifest(manifest_mod.manifest_path_for(merged))
    start = datetime.datetime.fromisoformat(manifest.started_at.replace("Z", "+00:00"))
    start_ns = round(start.timestamp() * 1e6) * 1000
    assert result.start_ns == start_ns
    mkv = _mkv_packets(merged)
    messages, metadata, schemas = _read(out)

    assert schemas == {"foxglove.CompressedVideo", "foxglove.RawImage", "omgrab.ImuBatch"}
    assert set(messages) == {"/rgb", "/depth", "/imu"}
    assert json.loads(metadata["json"]) == manifest.to_dict()
    for name in ("rgb", "depth", "imu"):
        got = messages[f"/{name}"]
        assert len(got) == len(mkv[name]) == manifest.streams[name].frames_written == 47
        # Capture time: wall-clock start + pts (ms), the gap preserved.
        assert [t for t, _ in got] == [start_ns + pts * 1_000_000 for pts, _ in mkv[name]]
        assert result.topics[name].messages == len(got)

    for (log_time, data), (_pts, packet) in zip(messages["/rgb"], mkv["rgb"], strict=True):
        video = CompressedVideo_pb2.CompressedVideo()
        video.ParseFromString(data)
        assert video.format == "h264"
        assert video.timestamp.ToNanoseconds() == log_time
        assert video.data.startswith(b"\x00\x00\x00\x01")
        # Copied, not re-encoded: every NAL unit of the MKV packet is in the Annex-B payload.
        for unit in _nal_units_avcc(packet):
            assert unit in video.data
        nal_types = {video.data[m.end()] & 0x1F for m in re.finditer(b"\x00\x00\x01", video.data)}
        if 5 in nal_types:  # IDR: SPS and PPS in front, as Foxglove needs
            assert {7, 8} <= nal_types

    first_depth = RawImage_pb2.RawImage()
    first_depth.ParseFromString(messages["/depth"][0][1])
    assert (first_depth.encoding, first_depth.width, first_depth.height) == ("16UC1", 32, 24)
    assert first_depth.step == 64
    pixels = np.frombuffer(first_depth.data, dtype="<u2").reshape(24, 32)
    np.testing.assert_array_equal(pixels, fixtures_recording.depth_frame(0, 24, 32))
    last = RawImage_pb2.RawImage()
    last.ParseFromString(messages["/depth"][-1][1])
    np.testing.assert_array_equal(
        np.frombuffer(last.data, dtype="<u2").reshape(24, 32),
        fixtures_recording.depth_frame(49, 24, 32),
    )

    # The schemas embedded in the file are enough to decode it (as Foxglove does).
    with out.open("rb") as f:
        reader = mcap_reader.make_reader(f, decoder_factories=[protobuf_decoder.DecoderFactory()])
        decoded = {
            channel.topic: proto
            for _s, channel, _m, proto in reader.iter_decoded_messages(topics=["/rgb", "/depth"])
        }
    assert decoded["/rgb"].format == "h264" and decoded["/depth"].encoding == "16UC1"

    imu = [json.loads(data) for _, data in messages["/imu"]]
    expected = [i for i in range(50) if i not in SKIPPED]
    assert imu == [json.loads(fixtures_recording.imu_payload(i)) for i in expected]


def test_export_errors_name_the_problem_and_leave_nothing(
    merged: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    with pytest.raises(mcap_export.ExportError, match="does not exist"):
        mcap_export.export_mcap(tmp_path / "nope.mkv", tmp_path / "x.mcap")
    with pytest.raises(mcap_export.ExportError, match="compression"):
        mcap_export.export_mcap(merged, tmp_path / "x.mcap", compression="gzip")
    with pytest.raises(mcap_export.ExportError, match="overwrite"):
        mcap_export.export_mcap(merged, merged)
    garbage = tmp_path / "garbage.mkv"
    garbage.write_bytes(b"not a matroska file" * 100)
    with pytest.raises(mcap_export.ExportError, match=r"garbage\.mkv"):
        mcap_export.export_mcap(garbage, tmp_path / "g.mcap")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbage.mkv"]


def test_export_start_falls_back_to_mkv_tag_and_is_required(
    merged: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    copy = tmp_path / "copy.mkv"
    copy.write_bytes(merged.read_bytes())
    doc = json.loads(manifest_mod.manifest_path_for(merged).read_text())
    started = doc["started_at"]
    doc["started_at"] = None
    manifest_mod.manifest_path_for(copy).write_text(json.dumps(doc))
    # The manifest lost its start: the MKV's DATE_RECORDED tag places the messages.
    result = mcap_export.export_mcap(copy, tmp_path / "copy.mcap")
    expected = datetime.datetime.fromisoformat(started.replace("Z", "+00:00"))
    assert result.start_ns == round(expected.timestamp() * 1e6) * 1000
    no_start = manifest_mod.read_manifest(copy.with_suffix(".json"))
    with pytest.raises(mcap_export.ExportError, match="no wall-clock start"):
        mcap_export.recording_start_ns({}, no_start, "x")
    with pytest.raises(mcap_export.ExportError, match="not an ISO 8601 time"):
        mcap_export.recording_start_ns({"DATE_RECORDED": "yesterday"}, no_start, "x")


def _omgrab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omgrab.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_export(merged: pathlib.Path, tmp_path: pathlib.Path) -> None:
    out = tmp_path / "cli.mcap"
    done = _omgrab("export", "--format", "mcap", str(merged), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "/rgb: 47" in done.stdout
    assert out.stat().st_size > 0
    bad = _omgrab("export", "--format", "bag", str(merged), "-o", str(out))
    assert bad.returncode == 2
    assert (
        bad.stderr.strip() == "omgrab export: error: unsupported --format 'bag' (supported: mcap)"
    )
    missing = _omgrab("export", str(tmp_path / "none.mkv"), "-o", str(out))
    assert missing.returncode == 2
    assert len(missing.stderr.strip().splitlines()) == 1
    assert "Traceback" not in missing.stderr


def test_cli_names_the_missing_extra(merged: pathlib.Path, tmp_path: pathlib.Path) -> None:
    code = (
        "import sys; sys.modules['mcap'] = None; from omgrab import cli; "
        f"sys.argv = ['omgrab', 'export', {str(merged)!r}, '-o', {str(tmp_path / 'x.mcap')!r}]; "
        "cli.main()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "omgrab export: error: the 'mcap' package is missing; install it with "
        "pip install 'omgrab[export]'"
    )


def test_b_frames_are_refused_by_name(tmp_path: pathlib.Path) -> None:
    mkv = tmp_path / "bf.mkv"
    with av.open(str(mkv), "w") as out:
        out.metadata["DATE_RECORDED"] = "2026-11-22T02:40:11Z"
        stream = out.add_stream("libx264", rate=25, options={"bf": "2", "g": "25"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.metadata["STREAM_NAME"] = "rgb"
        for i in range(30):
            frame = av.VideoFrame.from_ndarray(fixtures_recording.rgb_frame(i), format="rgb24")
            out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode(None))
    with pytest.raises(mcap_export.ExportError, match="'rgb' uses B-frames"):
        mcap_export.export_mcap(mkv, tmp_path / "bf.mcap")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bf.mkv"]
