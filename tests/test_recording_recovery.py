"""Start-up recovery of orphaned spool recordings (crashes, power loss, lost metadata)."""

from __future__ import annotations

import json
import pathlib
import random
import shutil

import pytest

from omgrab.recording import manifest, merge, recovery
from tests import recording_mkv_probe as probe
from tests import recording_spool_factory as factory

_SEGMENT = 0x18538067
_CLUSTER = 0x1F43B675
_SIMPLE_BLOCK = 0xA3
_BLOCK_GROUP = 0xA0


def _read_vint(data: bytes, pos: int, keep_marker: bool) -> tuple[int, int]:
    first = data[pos]
    length = 1
    while not first & (0x80 >> (length - 1)):
        length += 1
    value = int.from_bytes(data[pos : pos + length], "big")
    if not keep_marker:
        value &= (1 << (7 * length)) - 1
    return value, pos + length


def block_end_offsets(path: pathlib.Path) -> list[int]:
    """Byte offset just past each block (= packet) of a single-stream chunk, in file order.

    Independent of the code under test: walks the EBML tree of the complete file.
    """
    data = path.read_bytes()
    _, pos = _read_vint(data, 0, True)
    size, pos = _read_vint(data, pos, False)
    pos += size  # skip the EBML header
    seg_id, pos = _read_vint(data, pos, True)
    assert seg_id == _SEGMENT
    _, pos = _read_vint(data, pos, False)
    ends = []
    while pos < len(data):
        element, after = _read_vint(data, pos, True)
        size, payload = _read_vint(data, after, False)
        if element == _CLUSTER:
            inner = payload
            while inner < payload + size:
                child, c_after = _read_vint(data, inner, True)
                c_size, c_payload = _read_vint(data, c_after, False)
                if child in (_SIMPLE_BLOCK, _BLOCK_GROUP):
                    ends.append(c_payload + c_size)
                inner = c_payload + c_size
        pos = payload + size
    return ends


@pytest.fixture
def spool(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "spool"


@pytest.fixture
def out_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "out"


def _crash(rec: factory.SpoolRecording, *, keep_stats: bool = False) -> None:
    """What SIGKILL leaves behind: no COMPLETE, stats.json from the last rotation at best."""
    (rec.directory / "COMPLETE").unlink()
    if not keep_stats:
        (rec.directory / "stats.json").unlink()


@pytest.mark.skipif(not probe.HAVE_MKVMERGE, reason="mkvmerge not installed")
def test_truncated_last_chunks_are_salvaged(spool: pathlib.Path, out_dir: pathlib.Path) -> None:
    rec = factory.standard_recording(spool, "rec-crash", duration_ms=3000)
    _crash(rec)
    cut_pts = {}
    for name in ("rgb", "depth", "imu"):
        last = rec.chunk_path(name, 2)
        ends = block_end_offsets(last)
        # cut in the middle of the 10th-from-last block: mid-cluster, mid-packet
        cut = ends[-10] - 3
        last.write_bytes(last.read_bytes()[:cut])
        full = [e for e in ends if e <= cut]
        cut_pts[name] = rec.chunks[name][0] + rec.chunks[name][1] + rec.chunks[name][2][: len(full)]

    merged = recovery.merge_orphaned_chunks(spool, out_dir)
    assert merged == [out_dir / "rec-crash.mkv"]
    probe.mkvmerge_identify(merged[0])
    packets = probe.pyav_packets(merged[0])
    for index, name in enumerate(("rgb", "depth", "imu")):
        got = [pts for pts, _ in packets[index]]
        assert got == cut_pts[name], name  # every complete packet, exact pts, nothing partial
    imu = packets[2]
    assert all(payload == factory.imu_payload(pts) for pts, payload in imu)
    frames = probe.decode_frames(merged[0], 1, "gray16le")
    assert len(frames) == len(cut_pts["depth"])

    doc = manifest.read_manifest(out_dir / "rec-crash.json")
    assert doc.recovered is True
    assert doc.complete is False
    assert doc.stats_available is False
    assert doc.streams["rgb"].frames_written == len(cut_pts["rgb"])
    assert doc.streams["rgb"].frames_dropped is None  # unknown, not a guessed zero
    assert doc.started_at == "2026-11-22T02:40:11.123456Z"
    assert doc.stopped_at is not None and any("estimated" in n for n in doc.notes)
    last_chunks = [c for c in doc.chunks if c.file.endswith("00003.mkv")]
    assert len(last_chunks) == 3 and all(c.truncated for c in last_chunks)
    info = probe.ffprobe(merged[0], "-show_streams", "-show_format")
    assert info["format"]["tags"]["RECOVERED"] == "1"
    assert info["streams"][0]["tags"]["FRAMES_DROPPED"] == "unknown"


def test_power_loss_at_random_offsets_loses_at_most_200ms_per_stream(
    spool: pathlib.Path, out_dir: pathlib.Path
) -> None:
    """Seeded campaign: the chunk being written is cut at a random byte; recovery must give a
    valid file with every fully written packet except at most the last 0.2 s of a stream."""
    template = factory.standard_recording(spool / "template", "rec-power", duration_ms=2000)
    names = ("rgb", "depth", "imu")
    originals = {n: template.chunk_path(n, 1).read_bytes() for n in names}
    ends = {n: block_end_offsets(template.chunk_path(n, 1)) for n in names}
    rng = random.Random(20261122)
    for iteration in range(60):
        work = spool / f"run{iteration}"
        shutil.copytree(template.directory, work / "rec-power")
        rec_dir = work / "rec-power"
        (rec_dir / "COMPLETE").unlink()
        if rng.random() < 0.5:
            (rec_dir / "stats.json").unlink()
        expected: dict[str, list[int]] = {}
        for name in names:
            data = originals[name]
            cut = rng.randrange(0, len(data) + 1)
            (rec_dir / name / "00002.mkv").write_bytes(data[:cut])
            complete_blocks = sum(1 for e in ends[name] if e <= cut)
            expected[name] = template.chunks[name][0] + template.chunks[name][1][:complete_blocks]
        output = out_dir / f"run{iteration}"
        merged = recovery.merge_orphaned_chunks(work, output)
        assert merged == [output / "rec-power.mkv"], iteration
        packets = probe.pyav_packets(merged[0])
        doc = manifest.read_manifest(output / "rec-power.json")
        for index, name in enumerate(names):
            got = [pts for pts, _ in packets.get(index, [])]
            want = expected[name]
            # nothing invented, nothing re-timed: a prefix of what was written
            assert got == want[: len(got)], (iteration, name)
            lost = want[len(got) :]
            if lost:
                assert lost[-1] - lost[0] <= 200, (iteration, name, lost)
            assert doc.streams[name].frames_written == len(got)
        assert doc.recovered


def test_missing_recording_json_infers_streams_and_says_so(
    spool: pathlib.Path, out_dir: pathlib.Path
) -> None:
    rec = factory.standard_recording(spool, "rec-nojson", write_recording_json=False)
    _crash(rec)
    merged = recovery.merge_orphaned_chunks(spool, out_dir)
    assert merged == [out_dir / "rec-nojson.mkv"]
    doc = manifest.read_manifest(out_dir / "rec-nojson.json")
    assert doc.streams_inferred is True
    assert doc.started_at is None
    assert any("recording.json missing" in note for note in doc.notes)
    assert list(doc.streams) == ["depth", "rgb", "imu"]  # video first, names from directories
    assert doc.streams["rgb"].config["width"] == 64
    assert doc.streams["imu"].kind == "data"
    assert doc.streams["imu"].config["metadata"]["type"] == "imu"
    packets = probe.pyav_packets(merged[0])
    assert [p for p, _ in packets[1]] == rec.pts("rgb")
    assert [p for p, _ in packets[2]] == rec.pts("imu")
    info = probe.ffprobe(merged[0], "-show_streams")
    assert info["streams"][2]["tags"]["title"] == "IMU"
    assert info["streams"][1]["tags"]["TYPE"] == "rgb"


def test_partial_stats_json_is_treated_as_missing(
    spool: pathlib.Path, out_dir: pathlib.Path
) -> None:
    rec = factory.standard_recording(spool, "rec-stats", dropped={"rgb": 3})
    _crash(rec, keep_stats=True)
    stats = rec.directory / "stats.json"
    stats.write_bytes(stats.read_bytes()[:57])  # torn write
    recovery.merge_orphaned_chunks(spool, out_dir)
    doc = manifest.read_manifest(out_dir / "rec-stats.json")
    assert doc.stats_available is False
    assert any("stats.json unreadable" in n for n in doc.notes)
    assert doc.streams["rgb"].frames_dropped is None
    assert doc.streams["rgb"].frames_written == len(rec.pts("rgb"))


def test_which_recordings_are_orphans(spool: pathlib.Path, out_dir: pathlib.Path) -> None:
    done = factory.standard_recording(spool, "a-done")
    complete_unmerged = factory.standard_recording(spool, "b-complete-unmerged")
    crashed = factory.standard_recording(spool, "c-crashed")
    _crash(crashed)
    live = factory.standard_recording(spool, "d-live", complete=False)
    (spool / "not-a-recording").mkdir()
    (spool / "stray.txt").write_text("x")
    out_dir.mkdir()
    merge.merge_recording_chunks(done.directory, out_dir)

    orphans = recovery.find_orphaned_recordings(spool, out_dir, exclude={"d-live"})
    assert orphans == [complete_unmerged.directory, crashed.directory]
    report = recovery.recover_orphans(spool, out_dir, exclude={"d-live"})
    assert report.merged == [out_dir / "b-complete-unmerged.mkv", out_dir / "c-crashed.mkv"]
    assert report.already_merged == [done.directory]
    assert report.failed == {}
    assert manifest.read_manifest(out_dir / "b-complete-unmerged.json").complete is True
    assert not (out_dir / "d-live.mkv").exists()
    assert live.directory.is_dir()

    # a second start-up pass finds nothing to do
    assert recovery.merge_orphaned_chunks(spool, out_dir, exclude={"d-live"}) == []

    # the merged MKV of a complete recording vanished: merged again
    (out_dir / "a-done.mkv").unlink()
    assert recovery.merge_orphaned_chunks(spool, out_dir, exclude={"d-live"}) == [
        out_dir / "a-done.mkv"
    ]


def test_one_unrecoverable_recording_does_not_stop_the_others(
    spool: pathlib.Path, out_dir: pathlib.Path
) -> None:
    broken = factory.standard_recording(spool, "a-broken")
    for path in broken.directory.rglob("*.mkv"):
        path.write_bytes(b"\x1a\x45\xdf\xa3 torn")
    _crash(broken)
    good = factory.standard_recording(spool, "b-good")
    _crash(good)
    errors: list[tuple[pathlib.Path, BaseException]] = []
    merged = recovery.merge_orphaned_chunks(
        spool, out_dir, on_error=lambda d, e: errors.append((d, e))
    )
    assert merged == [out_dir / "b-good.mkv"]
    assert [d for d, _ in errors] == [broken.directory]
    assert "no readable chunk" in str(errors[0][1])
    assert broken.directory.is_dir()  # kept for a human to look at


def test_unreadable_chunks_are_skipped_and_recorded(
    spool: pathlib.Path, out_dir: pathlib.Path
) -> None:
    rec = factory.standard_recording(spool, "rec-skip", duration_ms=3000)
    _crash(rec)
    rec.chunk_path("depth", 2).write_bytes(rec.chunk_path("depth", 2).read_bytes()[:40])
    rec.chunk_path("rgb", 0).write_bytes(b"")
    merged = recovery.merge_orphaned_chunks(spool, out_dir)
    doc = manifest.read_manifest(merged[0].with_suffix(".json"))
    assert {s.file for s in doc.skipped_chunks} == {"depth/00003.mkv", "rgb/00001.mkv"}
    packets = probe.pyav_packets(merged[0])
    assert [p for p, _ in packets[0]] == rec.chunks["rgb"][1] + rec.chunks["rgb"][2]
    assert [p for p, _ in packets[1]] == rec.chunks["depth"][0] + rec.chunks["depth"][1]
    # recovery does not retry a salvaged recording whose files did not change
    assert recovery.merge_orphaned_chunks(spool, out_dir) == []


def test_cleanup_removes_spool_after_verified_recovery(
    spool: pathlib.Path, out_dir: pathlib.Path
) -> None:
    rec = factory.standard_recording(spool, "rec-clean")
    _crash(rec)
    merged = recovery.merge_orphaned_chunks(spool, out_dir, cleanup=True)
    assert merged == [out_dir / "rec-clean.mkv"]
    assert not rec.directory.exists()
    doc = json.loads((out_dir / "rec-clean.json").read_text())
    assert doc["recovered"] is True
    assert doc["streams"]["imu"]["frames_written"] == len(rec.pts("imu"))


def test_recording_without_any_chunk_is_reported_empty_not_failed(
    spool: pathlib.Path, out_dir: pathlib.Path
) -> None:
    # the writer died after recording.json, before any stream wrote a packet
    rec = factory.standard_recording(spool, "a-empty", complete=False, write_stats=False)
    for path in rec.directory.rglob("*.mkv"):
        path.unlink()
    good = factory.standard_recording(spool, "b-good")
    _crash(good)
    errors: list[pathlib.Path] = []
    report = recovery.recover_orphans(spool, out_dir, on_error=lambda d, e: errors.append(d))
    assert report.empty == [rec.directory]
    assert report.merged == [out_dir / "b-good.mkv"]
    assert report.failed == {} and errors == []
    assert rec.directory.is_dir() and not (out_dir / "a-empty.mkv").exists()
    with pytest.raises(merge.EmptyRecordingError, match="no chunk file"):
        merge.merge_recording_chunks(rec.directory, out_dir)
