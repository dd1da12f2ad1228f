"""The spool clean-up rule: nothing is deleted that the merged file does not verifiably hold."""

from __future__ import annotations

import hashlib
import os
import pathlib

import av
import pytest

from omgrab.recording import manifest, merge, recovery, spool_cleanup
from tests import recording_mkv_probe as probe
from tests import recording_spool_factory as factory


def _digests(directory: pathlib.Path) -> dict[str, str]:
    return {
        p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in directory.rglob("*.mkv")
    }


def test_bad_chunks_are_quarantined_and_named_in_the_manifest(
    spool: pathlib.Path, out_dir: pathlib.Path
) -> None:
    rec = factory.standard_recording(spool, duration_ms=4000)
    rec.chunk_path("rgb", 1).write_bytes(os.urandom(5000))  # corrupt
    rec.chunk_path("imu", 2).write_bytes(b"")  # zero-length
    foreign = factory.imu_spec()
    factory.write_chunk(rec.chunk_path("depth", 1), foreign, [1000, 1010])  # foreign kind
    data = rec.chunk_path("rgb", 3).read_bytes()
    rec.chunk_path("rgb", 3).write_bytes(data[: len(data) // 2])  # truncated (crash-like)
    (rec.directory / "rgb" / "notes.txt").write_text("operator note")  # unknown file
    # a crash left a chunk whose first packet was never written: header only, nothing to keep
    header_only = av.open(str(rec.directory / "rgb" / "00009.mkv.part"), "w", format="matroska")
    header_only.add_mux_stream("ass")
    header_only.start_encoding()
    header_only.close()
    # a .part chunk that does hold a packet the merge never saw must be kept
    factory.write_chunk(rec.directory / "depth" / "00009.mkv.part", factory.depth_spec(), [9000])
    before = _digests(rec.directory)

    result = merge.merge_recording(rec.directory, out_dir, cleanup=True)

    assert not rec.directory.exists()
    quarantine = spool_cleanup.quarantine_dir_for(result.output_path)
    kept = {q.file: q for q in result.manifest.quarantined}
    expected = {
        "rgb/00002.mkv",
        "imu/00003.mkv",
        "depth/00002.mkv",
        "rgb/notes.txt",
        "depth/00009.mkv.part",
    }
    # the truncated chunk reads to a clean end: every complete packet it holds is in the
    # output (what lies past them is an incomplete packet no reader can use), so it goes
    assert set(kept) == expected
    copied = {p for p, _ in probe.pyav_packets(result.output_path)[0]}
    assert copied >= set(rec.chunks["rgb"][3][:5])
    for rel, entry in kept.items():
        assert entry.reason
        assert (out_dir / entry.quarantine_path) == quarantine / rel
        if rel in before:
            moved = (quarantine / rel).read_bytes()
            assert hashlib.sha256(moved).hexdigest() == before[rel]
    assert "skipped by the merge" in kept["rgb/00002.mkv"].reason
    assert "not part of the merge" in kept["rgb/notes.txt"].reason
    # the manifest on disk says the same, and the merged file is valid
    on_disk = manifest.read_manifest(result.manifest_path)
    assert {q.file for q in on_disk.quarantined} == expected
    probe.mkvmerge_identify(result.output_path)


def test_a_packet_the_merge_discarded_keeps_its_chunk(
    spool: pathlib.Path, out_dir: pathlib.Path
) -> None:
    # chunk 2 starts without its keyframe: the merge discards packets up to the next one, so
    # that chunk is not fully in the output and must not be deleted
    spec = factory.rgb_spec(gop=5)
    rec = factory.make_recording(
        spool, "rec-key", [spec], {"rgb": [list(range(0, 1000, 40))]}, complete=True
    )
    factory.write_chunk(rec.chunk_path("rgb", 1), spec, list(range(1000, 2000, 40)), skip_packets=2)
    result = merge.merge_recording(rec.directory, out_dir, cleanup=True)
    [entry] = result.manifest.quarantined
    assert entry.file == "rgb/00002.mkv"
    assert "3 of 23 packets are not in the merged file" in entry.reason
    assert (out_dir / entry.quarantine_path).is_file()
    assert not rec.directory.exists()


def test_verification_compares_with_the_spool_not_with_what_was_copied(
    spool: pathlib.Path, out_dir: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a merge that silently loses a packet (and counts consistently) must not delete its chunk
    rec = factory.standard_recording(spool)
    original = merge.Merger.packets

    def lossy(self: merge.Merger, stream: merge.TrackState):  # type: ignore[no-untyped-def]
        for n, item in enumerate(original(self, stream)):
            if stream.source.name == "rgb" and n == 30:
                stream.frames -= 1
                continue
            yield item

    monkeypatch.setattr(merge.Merger, "packets", lossy)
    result = merge.merge_recording(rec.directory, out_dir, cleanup=True)
    assert [q.file for q in result.manifest.quarantined] == ["rgb/00002.mkv"]
    assert "1 of 25 packets" in result.manifest.quarantined[0].reason


def test_unmergeable_recording_keeps_its_spool_under_recovery_cleanup(
    spool: pathlib.Path, out_dir: pathlib.Path
) -> None:
    rec = factory.standard_recording(spool, complete=False)
    for path in rec.directory.rglob("*.mkv"):
        path.write_bytes(os.urandom(3000))
    good = factory.standard_recording(spool, "rec-good", complete=False)
    before = _digests(rec.directory)
    report = recovery.recover_orphans(spool, out_dir, cleanup=True)
    assert rec.directory in report.failed
    assert isinstance(report.failed[rec.directory], merge.MergeError)
    assert _digests(rec.directory) == before
    assert not good.directory.exists()
    assert [p.name for p in report.merged] == ["rec-good.mkv"]


def test_salvaged_recording_whose_chunk_grew_is_merged_again(
    spool: pathlib.Path, out_dir: pathlib.Path
) -> None:
    rec = factory.standard_recording(spool, complete=False)
    first = recovery.recover_orphans(spool, out_dir)
    assert len(first.merged) == 1
    # an orphaned worker finished its chunk after that recovery: more packets in the file
    more = rec.chunks["rgb"][1] + list(range(2000, 2400, 40))
    factory.write_chunk(rec.chunk_path("rgb", 1), rec.spec("rgb"), more)
    second = recovery.recover_orphans(spool, out_dir, cleanup=True)
    assert second.merged == first.merged
    packets = probe.pyav_packets(second.merged[0])[0]
    assert [p for p, _ in packets] == rec.chunks["rgb"][0] + more
    assert not rec.directory.exists()


def test_half_deleted_and_uncleaned_spools_are_finished_by_the_next_recovery(
    spool: pathlib.Path, out_dir: pathlib.Path
) -> None:
    kept = factory.standard_recording(spool, "rec-kept", complete=False)
    half = factory.standard_recording(spool, "rec-half", complete=False)
    report = recovery.recover_orphans(spool, out_dir, cleanup=False)
    assert len(report.merged) == 2 and kept.directory.exists()
    # a kill during the delete: some chunks gone, the rest and the metadata still there
    for path in sorted(half.directory.rglob("*.mkv"))[:3]:
        path.unlink()
    report = recovery.recover_orphans(spool, out_dir, cleanup=True)
    assert sorted(report.already_merged) == sorted([kept.directory, half.directory])
    assert report.merged == [] and report.failed == {}
    assert list(spool.iterdir()) == []
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "rec-half.json",
        "rec-half.mkv",
        "rec-kept.json",
        "rec-kept.mkv",
    ]


def test_cleanup_keeps_everything_when_the_output_cannot_be_read(
    spool: pathlib.Path, out_dir: pathlib.Path
) -> None:
    rec = factory.standard_recording(spool)
    result = merge.merge_recording(rec.directory, out_dir)
    result.output_path.write_bytes(b"\x1a\x45\xdf\xa3" + os.urandom(2000))
    before = _digests(rec.directory)
    with pytest.raises(spool_cleanup.SpoolCleanupError, match="spool is kept"):
        spool_cleanup.clean_up(rec.directory, result.output_path, result.manifest_path)
    assert _digests(rec.directory) == before
