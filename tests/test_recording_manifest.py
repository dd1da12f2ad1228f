"""Manifest model, schema checks, atomic writes, and where its numbers come from."""

from __future__ import annotations

import json
import os
import pathlib

import pytest

from omgrab.recording import manifest, merge, mkv_tags
from tests import recording_mkv_probe as probe
from tests import recording_spool_factory as factory


def _sample() -> manifest.Manifest:
    return manifest.Manifest(
        recording_id="rec-1",
        started_at="2026-11-22T02:40:11.123456Z",
        stopped_at="2026-11-22T02:41:11.123456Z",
        duration_s=60.0,
        devices=[{"label": "oak0", "device_type": "oakd"}],
        streams={
            "rgb": manifest.StreamEntry(
                name="rgb",
                kind="video",
                track_index=0,
                codec="h264",
                config={"width": 1280, "height": 800, "fps": 25, "metadata": {"type": "rgb"}},
                frames_written=1500,
                frames_dropped=2,
                frames_out_of_order=1,
                first_pts_ms=0,
                last_pts_ms=59960,
                bytes_written=123,
                chunks=["rgb/00001.mkv"],
            )
        },
        chunks=[manifest.ChunkEntry("rgb", "rgb/00001.mkv", 1000, 1500, 0, 0, 59960)],
        skipped_chunks=[manifest.SkippedChunk("rgb", "rgb/00002.mkv", "cannot be opened")],
        software_version="0.1.0",
        merge_software_version="0.1.0",
        recovered=False,
        complete=True,
        streams_inferred=False,
        stats_available=True,
        notes=[],
        merged_at="2026-11-22T02:42:00.000000Z",
        merge_duration_s=0.5,
        output_file="rec-1.mkv",
        output_size_bytes=1000,
    )


def test_round_trip(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "rec-1.json"
    original = _sample()
    assert manifest.write_manifest(original, path) == path
    assert manifest.read_manifest(path) == original
    doc = json.loads(path.read_text())
    assert next(iter(doc)) == "schema_version"
    assert doc["schema_version"] == manifest.SCHEMA_VERSION
    assert [p.name for p in tmp_path.iterdir()] == ["rec-1.json"]  # no temp file left


def test_schema_version_is_checked(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "m.json"
    doc = _sample().to_dict()
    doc["schema_version"] = 99
    path.write_text(json.dumps(doc))
    with pytest.raises(manifest.ManifestError, match="unsupported manifest schema_version 99"):
        manifest.read_manifest(path)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("recording_id"), "missing field 'recording_id'"),
        (lambda d: d.update(recovered="yes"), "'recovered' has wrong type str"),
        (lambda d: d.update(output_size_bytes=True), "'output_size_bytes' must not be a boolean"),
        (lambda d: d["streams"]["rgb"].pop("frames_written"), r"streams\['rgb'\].*frames_written"),
        (lambda d: d["streams"].update(rgb=[]), r"streams\['rgb'\]: expected an object"),
        (lambda d: d["chunks"][0].pop("file"), r"chunks\[0\]: missing field 'file'"),
        (lambda d: d["skipped_chunks"].append(3), r"skipped_chunks\[1\]: expected an object"),
    ],
)
def test_malformed_manifests_name_the_problem(
    tmp_path: pathlib.Path, mutate: object, message: str
) -> None:
    doc = _sample().to_dict()
    mutate(doc)  # type: ignore[operator]
    path = tmp_path / "m.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(manifest.ManifestError, match=message):
        manifest.read_manifest(path)


def test_unreadable_manifests(tmp_path: pathlib.Path) -> None:
    with pytest.raises(manifest.ManifestError, match="does not exist"):
        manifest.read_manifest(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(manifest.ManifestError, match="not valid JSON"):
        manifest.read_manifest(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(manifest.ManifestError, match="top level must be a JSON object"):
        manifest.read_manifest(tmp_path / "list.json")


def test_failed_write_keeps_the_previous_manifest(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "rec-1.json"
    manifest.write_manifest(_sample(), path)
    before = path.read_bytes()
    changed = _sample()
    changed.recovered = True

    def failing_replace(src: object, dst: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="power cut"):
        manifest.write_manifest(changed, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["rec-1.json"]


def test_merge_counts_frames_from_packets_and_takes_drops_from_stats(
    tmp_path: pathlib.Path,
) -> None:
    rec = factory.standard_recording(
        tmp_path / "spool", "rec-count", dropped={"rgb": 3, "imu": 1}, out_of_order={"imu": 4}
    )
    stats_path = rec.directory / "stats.json"
    stats = json.loads(stats_path.read_text())
    stats["streams"]["rgb"]["frames_written"] = 9999  # the writer's claim is not trusted
    stats_path.write_text(json.dumps(stats))
    out = tmp_path / "out"
    out.mkdir()
    result = merge.merge_recording_chunks(rec.directory, out)
    doc = manifest.read_manifest(manifest.manifest_path_for(result))
    rgb = doc.streams["rgb"]
    assert rgb.frames_written == len(rec.pts("rgb")) == 50
    assert rgb.frames_dropped == 3
    assert doc.streams["imu"].frames_out_of_order == 4
    assert rgb.bytes_written == sum(len(p) for _, p in probe.pyav_packets(result)[0])
    assert doc.devices == [{"label": "sim0", "device_type": "sim"}]
    assert doc.software_version == "0.1.0"
    assert doc.started_at == "2026-11-22T02:40:11.123456Z"
    assert doc.stopped_at == "2026-11-22T02:40:16.123456Z"
    assert doc.duration_s == pytest.approx(2.003)  # depth's last frame 1963 ms + 40 ms
    assert doc.complete and not doc.recovered
    assert [c.file for c in doc.chunks][:2] == ["rgb/00001.mkv", "rgb/00002.mkv"]
    assert doc.chunks[0].size_bytes == rec.chunk_path("rgb", 0).stat().st_size
    assert not any(c.truncated for c in doc.chunks)  # every chunk was finalised
    # the same numbers as MKV tags
    tags = {t.track_uid: t for t in mkv_tags.read_tags(result)}
    per_track = [t for uid, t in tags.items() if uid is not None]
    assert [t.get("FRAMES_WRITTEN") for t in per_track] == ["50", "50", "200"]
    assert [t.get("FRAMES_DROPPED") for t in per_track] == ["3", "0", "1"]
    assert [t.get("FRAMES_OUT_OF_ORDER") for t in per_track] == ["0", "0", "4"]


def test_tag_rewrite_refuses_what_does_not_fit(tmp_path: pathlib.Path) -> None:
    rec = factory.standard_recording(tmp_path / "spool", "rec-tags")
    out = tmp_path / "out"
    out.mkdir()
    result = merge.merge_recording_chunks(rec.directory, out)
    before = result.read_bytes()

    def too_long(tags: list[mkv_tags.Tag]) -> None:
        tags[0].simple_tags.append(mkv_tags.SimpleTag("HUGE", "x" * 5000))

    with pytest.raises(mkv_tags.MkvTagsError, match="more bytes"):
        mkv_tags.rewrite_tags(result, too_long)
    assert result.read_bytes() == before

    def small(tags: list[mkv_tags.Tag]) -> None:
        tags[0].simple_tags.append(mkv_tags.SimpleTag("NOTE", "checked"))

    mkv_tags.rewrite_tags(result, small)
    assert len(result.read_bytes()) == len(before)
    assert mkv_tags.read_tags(result)[0].get("NOTE") == "checked"
    assert [p for p, _ in probe.pyav_packets(result)[0]] == rec.pts("rgb")
    (tmp_path / "x.mkv").write_bytes(b"not matroska")
    with pytest.raises(mkv_tags.MkvTagsError, match="not a Matroska file"):
        mkv_tags.read_tags(tmp_path / "x.mkv")


def test_a_0_1_2_manifest_is_written_atomically_as_0_1_2_did(tmp_path: pathlib.Path) -> None:
    v1 = manifest.RecordingManifest(
        schema_version=1,
        recording_id="rec-v1",
        started_at="2026-11-22T02:40:11+00:00",
        stopped_at=None,
        duration_s=1.5,
        devices=[manifest.DeviceInfo("sim-0", "simulated")],
        streams={"rgb": {"fps": 25}},
        sensor_streams={},
        output_file="rec-v1.mkv",
    )
    written = manifest.write_manifest(v1, tmp_path)
    assert written == tmp_path / "rec-v1.json"
    assert written.read_text() == json.dumps(v1.to_dict(), indent=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec-v1.json"]  # no temporary left
