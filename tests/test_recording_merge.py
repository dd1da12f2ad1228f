"""Merge of spool chunks into one MKV: layout, tags, exact timing, lossless data, atomicity."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import signal
import subprocess
import sys

import numpy as np
import pytest

from omgrab.recording import manifest, merge, mkv_tags
from tests import recording_mkv_probe as probe
from tests import recording_spool_factory as factory

needs_ffprobe = pytest.mark.skipif(not probe.HAVE_FFPROBE, reason="ffprobe not installed")
needs_mkvtoolnix = pytest.mark.skipif(
    not (probe.HAVE_MKVMERGE and probe.HAVE_MKVINFO), reason="mkvtoolnix not installed"
)


# fixtures spool and out_dir: tests/fixtures_recording.py


def _sha(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _boundary_drop_recording(spool: pathlib.Path) -> factory.SpoolRecording:
    """Three 1 s chunks per stream with frames dropped right before/after each boundary and
    capture jitter, so any re-timing by chunk duration would show."""
    rgb = [p for p in range(0, 3000, 40) if p not in (920, 960, 1000, 1040, 1960, 2000)]
    rgb = [p + (7 if p % 200 == 0 else 0) for p in rgb]  # jittered capture times
    depth = [p + 3 for p in range(0, 3000, 40) if p not in (960, 1000, 2000, 2040, 2080)]
    imu = [p for p in range(1, 3000, 10) if not 990 <= p <= 1030]
    chunks = {
        "rgb": factory.split_chunks(rgb, 1000),
        "depth": factory.split_chunks(depth, 1000),
        "imu": factory.split_chunks(imu, 1000),
    }
    specs = [factory.rgb_spec(), factory.depth_spec(), factory.imu_spec()]
    return factory.make_recording(
        spool,
        "rec-drops",
        specs,
        chunks,
        dropped={"rgb": 6, "depth": 5, "imu": 5},
        out_of_order={"imu": 2},
    )


@needs_ffprobe
@needs_mkvtoolnix
def test_merged_file_layout_tags_and_readers(spool: pathlib.Path, out_dir: pathlib.Path) -> None:
    # depth first in recording.json, IMU listed before RGB: video tracks keep their
    # recording.json order, data tracks come after them
    specs = [factory.depth_spec(), factory.imu_spec(), factory.rgb_spec()]
    chunks = {
        "depth": factory.split_chunks(factory.regular_pts(2000, 40, 3), 1000),
        "imu": factory.split_chunks(factory.regular_pts(2000, 10, 1), 1000),
        "rgb": factory.split_chunks(factory.regular_pts(2000, 40), 1000),
    }
    rec = factory.make_recording(spool, "rec-layout", specs, chunks, dropped={"rgb": 4})
    result = merge.merge_recording_chunks(rec.directory, out_dir)
    assert result == out_dir / "rec-layout.mkv"

    info = probe.ffprobe(result, "-show_streams", "-show_format")
    streams = info["streams"]
    assert [s["codec_name"] for s in streams] == ["ffv1", "h264", "ass"]
    assert [s["tags"]["title"] for s in streams] == ["depth", "RGB camera", "IMU"]
    assert [s["tags"]["TYPE"] for s in streams] == ["depth", "rgb", "imu"]
    assert streams[0]["tags"]["UNITS"] == "mm"
    assert streams[0]["pix_fmt"] == "gray16le"
    assert (streams[1]["width"], streams[1]["height"]) == (64, 48)
    assert [s["tags"]["FRAMES_WRITTEN"] for s in streams] == ["50", "50", "200"]
    assert [s["tags"]["FRAMES_DROPPED"] for s in streams] == ["0", "4", "0"]
    assert streams[1]["tags"]["FIRST_PTS_MS"] == "0"
    assert streams[1]["tags"]["LAST_PTS_MS"] == "1960"
    tags = info["format"]["tags"]
    assert tags["DATE_RECORDED"] == "2026-11-22T02:40:11.123456Z"
    assert tags["RECORDING_ID"] == "rec-layout"
    assert tags["OMGRAB_VERSION"] == "0.1.0"
    assert tags["ENCODER"].startswith("omgrab ")
    assert tags["RECOVERED"] == "0"
    assert mkv_tags.RESERVED_TAG not in tags

    ident = probe.mkvmerge_identify(result)
    assert [t["type"] for t in ident["tracks"]] == ["video", "video", "subtitles"]
    assert [t["properties"]["track_name"] for t in ident["tracks"]] == [
        "depth",
        "RGB camera",
        "IMU",
    ]
    assert ident["container"]["properties"]["date_utc"] == "2026-11-22T02:40:11Z"
    text = probe.mkvinfo(result)
    assert "Cue point" in text  # seekable
    assert "Name: FRAMES_WRITTEN" in text

    # OpenCV opens it and reads the first video track frame by frame
    import cv2

    cap = cv2.VideoCapture(str(result))
    assert cap.isOpened()
    read = 0
    while True:
        ok, _ = cap.read()
        if not ok:
            break
        read += 1
    cap.release()
    assert read == 50

    # the manifest sits beside the MKV
    doc = manifest.read_manifest(out_dir / "rec-layout.json")
    assert list(doc.streams) == ["depth", "rgb", "imu"]
    assert [s.track_index for s in doc.streams.values()] == [0, 1, 2]
    assert doc.output_file == "rec-layout.mkv"
    assert doc.output_size_bytes == result.stat().st_size


@needs_ffprobe
def test_every_packet_keeps_its_capture_time_across_dropped_boundaries(
    spool: pathlib.Path, out_dir: pathlib.Path
) -> None:
    rec = _boundary_drop_recording(spool)
    result = merge.merge_recording_chunks(rec.directory, out_dir / "merged.mkv")
    by_stream = probe.ffprobe_packets(result)
    for index, name in enumerate(["rgb", "depth", "imu"]):
        got = [int(p["pts"]) for p in by_stream[index]]
        assert got == rec.pts(name), name
    # and PyAV's decoded frames carry the same times
    frames = probe.decode_frames(result, 0, "rgb24")
    assert [pts for pts, _ in frames] == rec.pts("rgb")
    doc = manifest.read_manifest(out_dir / "merged.json")
    assert doc.streams["rgb"].frames_written == len(rec.pts("rgb"))
    assert doc.streams["rgb"].frames_dropped == 6
    assert doc.streams["imu"].frames_out_of_order == 2
    assert doc.streams["depth"].first_pts_ms == rec.pts("depth")[0]
    assert doc.streams["depth"].last_pts_ms == rec.pts("depth")[-1]


def test_depth_is_lossless_after_merge(spool: pathlib.Path, out_dir: pathlib.Path) -> None:
    rec = _boundary_drop_recording(spool)
    result = merge.merge_recording_chunks(rec.directory, out_dir)
    spec = rec.spec("depth")
    frames = probe.decode_frames(result, 1, "gray16le")
    assert [pts for pts, _ in frames] == rec.pts("depth")
    for pts, array in frames:
        assert array.dtype == np.uint16
        np.testing.assert_array_equal(array, factory.depth_frame(pts, spec.width, spec.height))


def test_rgb_decodes_to_the_captured_images(spool: pathlib.Path, out_dir: pathlib.Path) -> None:
    rec = factory.standard_recording(spool)
    result = merge.merge_recording_chunks(rec.directory, out_dir)
    spec = rec.spec("rgb")
    frames = probe.decode_frames(result, 0, "rgb24")
    assert len(frames) == len(rec.pts("rgb"))
    for pts, array in frames:
        expected = factory.rgb_frame(pts, spec.width, spec.height).astype(np.int16)
        assert np.abs(array.astype(np.int16) - expected).mean() < 12


@needs_ffprobe
def test_imu_payloads_are_byte_exact(spool: pathlib.Path, out_dir: pathlib.Path) -> None:
    rec = _boundary_drop_recording(spool)
    result = merge.merge_recording_chunks(rec.directory, out_dir)
    packets = probe.pyav_packets(result)[2]
    assert packets == [(pts, factory.imu_payload(pts)) for pts in rec.pts("imu")]
    # ffprobe sees the same payloads (hash of the packet data)
    doc = probe.ffprobe(
        result,
        "-select_streams",
        "2",
        "-show_entries",
        "packet=pts,size,data_hash",
        "-show_data_hash",
        "MD5",
        "-show_packets",
    )
    assert [int(p["pts"]) for p in doc["packets"]] == rec.pts("imu")
    for p in doc["packets"]:
        payload = factory.imu_payload(int(p["pts"]))
        assert int(p["size"]) == len(payload)
        assert p["data_hash"] == "MD5:" + hashlib.md5(payload).hexdigest()


@needs_mkvtoolnix
def test_corrupt_chunk_is_skipped_and_recorded(spool: pathlib.Path, out_dir: pathlib.Path) -> None:
    rec = _boundary_drop_recording(spool)
    bad = rec.chunk_path("rgb", 1)
    bad.write_bytes(os.urandom(5000))
    empty = rec.chunk_path("imu", 2)
    empty.write_bytes(b"")
    result = merge.merge_recording_chunks(rec.directory, out_dir)
    packets = probe.pyav_packets(result)
    expected_rgb = rec.chunks["rgb"][0] + rec.chunks["rgb"][2]
    assert [pts for pts, _ in packets[0]] == expected_rgb
    assert [pts for pts, _ in packets[2]] == rec.chunks["imu"][0] + rec.chunks["imu"][1]
    probe.mkvmerge_identify(result)
    doc = manifest.read_manifest(result.with_suffix(".json"))
    skipped = {(s.stream, s.file) for s in doc.skipped_chunks}
    assert skipped == {("rgb", "rgb/00002.mkv"), ("imu", "imu/00003.mkv")}
    assert all(s.reason for s in doc.skipped_chunks)
    assert doc.streams["rgb"].frames_written == len(expected_rgb)
    assert doc.streams["rgb"].chunks == ["rgb/00001.mkv", "rgb/00003.mkv"]


def test_chunk_not_starting_with_a_keyframe_is_cut_to_its_first_keyframe(
    spool: pathlib.Path, out_dir: pathlib.Path
) -> None:
    spec = factory.rgb_spec(gop=5)
    rec = factory.make_recording(
        spool, "rec-key", [spec], {"rgb": [list(range(0, 1000, 40))]}, complete=True
    )
    # chunk 2: its encoder's first two packets (the keyframe and one P-frame) never got out
    second = list(range(1000, 2000, 40))
    factory.write_chunk(rec.chunk_path("rgb", 1), spec, second, skip_packets=2)
    result = merge.merge_recording_chunks(rec.directory, out_dir)
    # packets 2..4 of chunk 2 are P-frames without their reference: discarded up to the
    # next keyframe (every 5th frame)
    expected = list(range(0, 1000, 40)) + second[5:]
    packets = probe.pyav_packets(result)[0]
    assert [pts for pts, _ in packets] == expected
    frames = probe.decode_frames(result, 0, "rgb24")
    assert [pts for pts, _ in frames] == expected
    doc = manifest.read_manifest(result.with_suffix(".json"))
    assert doc.streams["rgb"].packets_discarded == 3
    assert doc.chunks[1].packets_discarded == 3


def test_chunk_with_other_codec_parameters_gets_its_own_track(
    spool: pathlib.Path, out_dir: pathlib.Path
) -> None:
    # a chunk of another resolution in second place must not drop the good chunks after it
    spec = factory.rgb_spec()
    chunks = factory.split_chunks(factory.regular_pts(6000, 40), 1000)
    rec = factory.make_recording(spool, "rec-size", [spec], {"rgb": chunks}, complete=True)
    bigger = factory.rgb_spec(width=96, height=64)
    factory.write_chunk(rec.chunk_path("rgb", 1), bigger, chunks[1])
    result = merge.merge_recording(rec.directory, out_dir, cleanup=True)
    packets = probe.pyav_packets(result.output_path)
    assert [p for p, _ in packets[0]] == [p for c in chunks[:1] + chunks[2:] for p in c]
    assert [p for p, _ in packets[1]] == chunks[1]
    probe.mkvmerge_identify(result.output_path)
    doc = result.manifest
    assert doc.skipped_chunks == []
    assert doc.streams["rgb~2"].config["width"] == 96
    assert doc.streams["rgb~2"].chunks == ["rgb/00002.mkv"]
    assert any("2 tracks" in note for note in doc.notes)
    # every frame is in the merged file, so the whole spool could go
    assert not rec.directory.exists()
    assert doc.quarantined == []


def test_merge_is_idempotent(spool: pathlib.Path, out_dir: pathlib.Path) -> None:
    rec = factory.standard_recording(spool)
    first = merge.merge_recording_chunks(rec.directory, out_dir)
    digest = _sha(first)
    first_doc = json.loads(first.with_suffix(".json").read_text())
    second = merge.merge_recording_chunks(rec.directory, out_dir)
    assert second == first
    assert _sha(second) == digest
    second_doc = json.loads(second.with_suffix(".json").read_text())
    for doc in (first_doc, second_doc):
        doc.pop("merged_at")
        doc.pop("merge_duration_s")
    assert first_doc == second_doc
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == sorted([first.name, first.with_suffix(".json").name])


def test_failed_merge_leaves_no_file_under_the_final_name(
    spool: pathlib.Path, out_dir: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = factory.standard_recording(spool)
    target = out_dir / "keep.mkv"

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk went away")

    monkeypatch.setattr(merge, "finalise_tags", boom)
    with pytest.raises(OSError, match="disk went away"):
        merge.merge_recording_chunks(rec.directory, target)
    assert list(out_dir.iterdir()) == []
    monkeypatch.undo()

    # an earlier good merge stays intact when a later one fails
    merge.merge_recording_chunks(rec.directory, target)
    digest = _sha(target)
    monkeypatch.setattr(merge, "finalise_tags", boom)
    with pytest.raises(OSError):
        merge.merge_recording_chunks(rec.directory, target)
    assert _sha(target) == digest
    assert sorted(p.name for p in out_dir.iterdir()) == ["keep.json", "keep.mkv"]
    assert rec.directory.is_dir()


_KILL_SCRIPT = """
import sys, threading
from omgrab.recording import merge

original = merge.Merger.packets

def packets(self, stream):
    for n, item in enumerate(original(self, stream)):
        if n == 100:
            print("MIDWAY", flush=True)
            threading.Event().wait()  # hold here until SIGKILL arrives
        yield item

merge.Merger.packets = packets
merge.merge_recording_chunks(sys.argv[1], sys.argv[2])
"""


def test_sigkill_during_merge_never_leaves_a_partial_output(
    spool: pathlib.Path, out_dir: pathlib.Path
) -> None:
    rec = factory.standard_recording(spool, "rec-kill", duration_ms=4000)
    target = out_dir / "rec-kill.mkv"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(["src", "."])}
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, str(rec.directory), str(target)],
        cwd=pathlib.Path(__file__).resolve().parent.parent,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "MIDWAY"
        temps = [p for p in out_dir.iterdir() if p.name.endswith(".tmp")]
        assert len(temps) == 1  # the merge is writing its temporary file
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert not target.exists()
    assert not target.with_suffix(".json").exists()
    # the next merge removes the dead process's temporary file and succeeds
    result = merge.merge_recording_chunks(rec.directory, target)
    assert sorted(p.name for p in out_dir.iterdir()) == ["rec-kill.json", "rec-kill.mkv"]
    assert [p for p, _ in probe.pyav_packets(result)[0]] == rec.pts("rgb")


def test_cleanup_deletes_the_spool_only_after_a_verified_merge(
    spool: pathlib.Path, out_dir: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = factory.standard_recording(spool)
    original_verify = merge.verify_output

    def failing_verify(*args: object, **kwargs: object) -> None:
        raise merge.MergeError("verification failed")

    monkeypatch.setattr(merge, "verify_output", failing_verify)
    with pytest.raises(merge.MergeError):
        merge.merge_recording_chunks(rec.directory, out_dir, cleanup=True)
    assert rec.directory.is_dir()
    assert list(out_dir.iterdir()) == []

    calls: list[bool] = []

    def counting_verify(path: pathlib.Path, streams: list, count_packets: bool) -> None:
        calls.append(count_packets)
        original_verify(path, streams, count_packets)

    monkeypatch.setattr(merge, "verify_output", counting_verify)
    result = merge.merge_recording_chunks(rec.directory, out_dir, cleanup=True)
    assert calls == [True]  # packet-level verification before deleting anything
    assert not rec.directory.exists()
    assert result.exists()
    # idempotent after clean-up: the finished merge is reported, nothing is lost
    assert merge.merge_recording_chunks(rec.directory, out_dir) == result


def test_bad_arguments_get_clear_errors(spool: pathlib.Path, out_dir: pathlib.Path) -> None:
    rec = factory.standard_recording(spool)
    with pytest.raises(ValueError, match=r"must be an existing directory or .*\.mkv"):
        merge.merge_recording_chunks(rec.directory, out_dir / "merged.mp4")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        merge.merge_recording_chunks(spool / "nope", out_dir)
    for path in rec.directory.rglob("*.mkv"):
        path.write_bytes(b"garbage")
    with pytest.raises(merge.MergeError, match="no readable chunk"):
        merge.merge_recording_chunks(rec.directory, out_dir)
    assert list(out_dir.iterdir()) == []


@pytest.mark.tmpfs
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_disk_full_during_merge_leaves_nothing_half_written(
    spool: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    import av

    rec = factory.standard_recording(spool, "rec-full", duration_ms=6000)
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(mount)], check=True)
    try:
        with pytest.raises((OSError, av.error.FFmpegError)):
            merge.merge_recording_chunks(rec.directory, mount)
        assert list(mount.iterdir()) == []  # no partial MKV, no temporary file
        assert (rec.directory / "COMPLETE").exists()
        assert len(list(rec.directory.rglob("*.mkv"))) == 18  # the spool is untouched
    finally:
        subprocess.run(["umount", str(mount)], check=True)
    # with room again the same spool merges fine
    result = merge.merge_recording_chunks(rec.directory, tmp_path / "rec-full.mkv")
    assert [p for p, _ in probe.pyav_packets(result)[0]] == rec.pts("rgb")


def test_data_items_sharing_a_millisecond_are_all_kept(
    spool: pathlib.Path, out_dir: pathlib.Path
) -> None:
    imu = [1, 1, 11, 11, 11, 21]
    rec = factory.make_recording(spool, "rec-same-ms", [factory.imu_spec()], {"imu": [imu]})
    result = merge.merge_recording_chunks(rec.directory, out_dir)
    assert probe.pyav_packets(result)[0] == [(p, factory.imu_payload(p)) for p in imu]


def test_chunks_are_ordered_by_their_packets_not_their_ids(
    spool: pathlib.Path, out_dir: pathlib.Path
) -> None:
    # ids from a user StartChunkCallback need not sort in time order
    spec = factory.rgb_spec()
    rec = factory.make_recording(spool, "rec-ids", [spec], {"rgb": []})
    plan = {"zz-first.mkv": range(0, 1000, 40), "aa-second.mkv": range(1000, 2000, 40)}
    for name, pts in plan.items():
        factory.write_chunk(rec.directory / "rgb" / name, spec, list(pts))
    result = merge.merge_recording_chunks(rec.directory, out_dir)
    assert [p for p, _ in probe.pyav_packets(result)[0]] == list(range(0, 2000, 40))
    doc = manifest.read_manifest(result.with_suffix(".json"))
    assert doc.streams["rgb"].chunks == ["rgb/zz-first.mkv", "rgb/aa-second.mkv"]
    assert doc.skipped_chunks == []
