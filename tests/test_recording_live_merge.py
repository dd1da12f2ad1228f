"""The incremental merge: the MKV grows while recording, stop means done, crashes continue it.

Every test compares with what the full merge (``merge_recording``) gives for a copy of the same
chunks: same packets (pts, size, keyframe flag, bytes) per track, same tags. Growing files are
checked with PyAV, ffprobe and mkvmerge at each step. Chunks are "closed" by rewriting
stats.json the way the writer does when a worker closes a chunk.
"""

from __future__ import annotations

import collections
import errno
import hashlib
import json
import pathlib
import shutil
import subprocess
import threading
import time

import av
import pytest

from omgrab.recording import live_merge, manifest, merge, mkv_splice, spool_cleanup, spool_lock
from tests import recording_spool_factory as factory
from tests import tmpfs

Packets = dict[int, list[tuple[int, int, bool, bytes]]]


def track_packets(path: pathlib.Path) -> Packets:
    """Per track: (pts, size, keyframe, digest) of every packet, in file order."""
    out: Packets = collections.defaultdict(list)
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size:
                digest = hashlib.blake2b(bytes(packet), digest_size=16).digest()
                out[packet.stream_index].append(
                    (packet.pts, packet.size, packet.is_keyframe, digest)
                )
    return {k: sorted(v) for k, v in out.items()}


def ffprobe_tags(path: pathlib.Path) -> dict[str, object]:
    result = subprocess.run(
        [
            "ffprobe", "-v", "error", "-show_entries",
            "stream=index,codec_name:stream_tags:format_tags:format=duration",
            "-of", "json", str(path),
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(result.stdout)


def mkvmerge_ok(path: pathlib.Path) -> dict[str, object]:
    result = subprocess.run(["mkvmerge", "-J", str(path)], capture_output=True, text=True)
    doc = json.loads(result.stdout)
    assert doc["errors"] == [], doc["errors"]
    assert doc["container"]["recognized"] and doc["container"]["supported"]
    return doc


def ffprobe_packet_count(path: pathlib.Path) -> int:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-count_packets", "-show_entries",
         "stream=nb_read_packets", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert result.stderr.strip() == "", result.stderr
    return sum(int(x) for x in result.stdout.split())


class Closer:
    """Marks chunks closed in stats.json, as the writer's monitor thread does."""

    def __init__(self, directory: pathlib.Path) -> None:
        self.path = directory / "stats.json"
        self.stats = json.loads(self.path.read_text())
        self.set(0)

    def set(self, closed: int) -> None:
        for entry in self.stats["streams"].values():
            for index, chunk in enumerate(entry["chunks"]):
                chunk["closed"] = index < closed
        tmp = self.path.with_name(".stats.json.tmp")
        tmp.write_text(json.dumps(self.stats))
        tmp.replace(self.path)


def wait_until(predicate, what: str, timeout: float = 60.0, live=None) -> None:
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not predicate():
        if live is not None and live.error is not None:
            raise AssertionError(f"the merge failed waiting for {what}: {live.error!r}")
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        tick.wait(0.02)


def chunk_names(streams: list[str], upto: int) -> set[str]:
    return {f"{s}/{i:05d}.mkv" for s in streams for i in range(1, upto + 1)}


STREAMS = ["rgb", "depth", "imu"]


@pytest.fixture
def recorded(tmp_path: pathlib.Path):
    """A 5 s recording (1 s chunks), its full-merge reference and an empty output dir."""
    rec = factory.standard_recording(tmp_path / "spool", "r1", duration_ms=5000)
    shutil.copytree(rec.directory, tmp_path / "copy" / "r1")
    out = tmp_path / "out"
    out.mkdir()
    return rec, reference_merge(tmp_path, recovered=False), out, tmp_path / "copy" / "r1"


def reference_merge(tmp_path: pathlib.Path, recovered: bool) -> pathlib.Path:
    """The full merge of the untouched copy of the recording."""
    reference = tmp_path / f"reference-{recovered}"
    reference.mkdir()
    merge.merge_recording(tmp_path / "copy" / "r1", reference, recovered=recovered)
    return reference / "r1.mkv"


def assert_same_as_reference(result: pathlib.Path, reference: pathlib.Path) -> None:
    assert track_packets(result) == track_packets(reference)
    got, want = ffprobe_tags(result), ffprobe_tags(reference)
    assert got["streams"] == want["streams"]
    assert got["format"]["duration"] == want["format"]["duration"]
    assert got["format"]["tags"] == want["format"]["tags"]
    mkvmerge_ok(result)
    ours = manifest.read_manifest(manifest.manifest_path_for(result))
    theirs = manifest.read_manifest(manifest.manifest_path_for(reference))
    for name, stream in theirs.streams.items():
        mine = ours.streams[name]
        assert (mine.frames_written, mine.first_pts_ms, mine.last_pts_ms, mine.chunks) == (
            stream.frames_written,
            stream.first_pts_ms,
            stream.last_pts_ms,
            stream.chunks,
        )
        assert mine.bytes_written == stream.bytes_written


def test_growing_file_is_readable_at_every_step_and_ends_as_the_full_merge(recorded) -> None:
    rec, reference, out, copy = recorded
    closer = Closer(rec.directory)
    live = live_merge.LiveMerge(
        rec.directory, out, poll_interval_s=0.02, flush_interval_s=0, batch_bytes=1 << 20
    )
    live.start()
    partial = out / "r1.mkv.partial"
    previous_count = 0
    for closed in range(1, 5):
        closer.set(closed)
        expected = chunk_names(STREAMS, closed - 1)
        wait_until(lambda e=expected: e <= set(live.deleted_chunks), f"chunks {expected} deleted")
        assert live.error is None
        # deleted chunks are gone, the others are still there
        for name in chunk_names(STREAMS, 5):
            assert (rec.directory / name).exists() == (name not in live.deleted_chunks)
        # the growing file is valid Matroska and holds every packet of the deleted chunks
        count = ffprobe_packet_count(partial)
        assert count > previous_count
        previous_count = count
        doc = mkvmerge_ok(partial)
        assert [t["codec"] for t in doc["tracks"]] == [
            "AVC/H.264/MPEG-4p10",
            "V_FFV1",
            "SubStationAlpha",
        ]
        in_file = collections.Counter(
            key
            for packets in track_packets(partial).values()
            for pts, size, _, digest in packets
            for key in [(pts, size, digest)]
        )
        for name in live.deleted_chunks:
            keys, error = spool_cleanup.read_packet_keys(copy / name)
            assert error is None and keys
            assert all(in_file[key] for key in keys), f"{name} deleted but not in the file"
    result = live.finish(60)
    assert result.output_path == out / "r1.mkv" and result.cleaned_up
    assert not partial.exists() and not rec.directory.exists()
    assert sorted(p.name for p in out.iterdir()) == ["r1.json", "r1.mkv"]
    assert_same_as_reference(result.output_path, reference)
    assert live.appended_batches >= 4


def test_stop_leaves_only_what_was_written_since_the_last_look(recorded) -> None:
    rec, reference, out, _ = recorded
    closer = Closer(rec.directory)
    live = live_merge.LiveMerge(rec.directory, out, poll_interval_s=0.02, flush_interval_s=0)
    live.start()
    closer.set(4)  # chunk 5 is the one being written: it is read as it grows
    wait_until(lambda: chunk_names(STREAMS, 4) <= set(live.deleted_chunks), "catch up")
    wait_until(lambda: live.idle, "waiting for the writer")
    in_file_before_stop = {
        (pts, size) for packets in track_packets(out / "r1.mkv.partial").values()
        for pts, size, _, _ in packets
    }  # fmt: skip
    before = set(live.deleted_chunks)
    result = live.finish(60)
    # the packets of the open chunk were appended before the stop; the stop appended only
    # the last ones the merge holds back to order them (a decode-order window of 16 frames
    # per video stream, 640 ms at 25 fps), then wrote cues, tags and the manifest
    assert set(live.deleted_chunks) - before == chunk_names(STREAMS, 5) - chunk_names(STREAMS, 4)
    at_stop = [
        pts
        for packets in track_packets(result.output_path).values()
        for pts, size, _, _ in packets
        if (pts, size) not in in_file_before_stop
    ]
    assert at_stop and min(at_stop) >= 5000 - (merge._REORDER_DEPTH + 2) * 40
    assert_same_as_reference(result.output_path, reference)


def _cancel_after(live: live_merge.LiveMerge, batches: int) -> None:
    wait_until(lambda: live.appended_batches >= batches, f"{batches} batches appended")
    assert live.cancel(30)


def _clusters_region(path: pathlib.Path, state: dict[str, object]) -> bytes:
    data = path.read_bytes()
    return data[int(state["header_size"]) : int(state["size"])]


def test_recovery_continues_the_growing_file_instead_of_starting_over(recorded, tmp_path) -> None:
    rec, _, out, _ = recorded
    reference = reference_merge(tmp_path, recovered=True)
    closer = Closer(rec.directory)
    # small batches: chunks straddle appends, so the crash point is inside a chunk
    live = live_merge.LiveMerge(
        rec.directory, out, poll_interval_s=0.02, flush_interval_s=0, batch_bytes=20_000
    )
    live.start()
    closer.set(3)
    _cancel_after(live, 3)  # the process dies here: nothing is finished
    state = json.loads((rec.directory / live_merge.STATE_FILE).read_text())
    assert any(point["skip"] for point in state["resume"].values()), "resume inside a chunk"
    # the state rewritten at every append stays small: chunk entries go to a side file
    assert len((rec.directory / live_merge.STATE_FILE).read_bytes()) < 2048
    appended = _clusters_region(out / "r1.mkv.partial", state)
    deleted = set(live.deleted_chunks)
    assert deleted  # chunks already gone: only the growing file holds them now
    closer.set(5)
    result = merge.merge_recording(rec.directory, out, cleanup=True, recovered=True)
    assert result.cleaned_up and not rec.directory.exists()
    assert not (out / "r1.mkv.partial").exists()
    # the clusters appended before the crash are the start of the final file, untouched
    data = result.output_path.read_bytes()
    start = int(state["header_size"])
    assert data[start : start + len(appended)] == appended
    assert_same_as_reference(result.output_path, reference)
    assert result.manifest.recovered


def test_recovery_cuts_what_was_appended_after_the_last_state(recorded) -> None:
    rec, reference, out, _ = recorded
    closer = Closer(rec.directory)
    live = live_merge.LiveMerge(
        rec.directory, out, poll_interval_s=0.02, flush_interval_s=0, batch_bytes=20_000
    )
    live.start()
    closer.set(2)
    _cancel_after(live, 2)
    # a batch cut by the crash: bytes after the durable length the state records
    with (out / "r1.mkv.partial").open("ab") as f:
        f.write(mkv_splice.CLUSTER.to_bytes(4, "big") + b"\x88" + b"\x00" * 700)
    closer.set(5)
    result = merge.merge_recording(rec.directory, out, cleanup=True)
    assert_same_as_reference(result.output_path, reference)


def test_an_interrupted_finish_is_continued(recorded, monkeypatch, tmp_path) -> None:
    rec, _, out, _ = recorded
    reference = reference_merge(tmp_path, recovered=True)
    Closer(rec.directory).set(5)

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device (injected)")

    monkeypatch.setattr(merge, "publish", disk_full)
    live = live_merge.LiveMerge(rec.directory, out, poll_interval_s=0.02, flush_interval_s=0)
    live.start()
    with pytest.raises(live_merge.LiveMergeError, match="No space left"):
        live.finish(60)
    # the growing file already has its Cues and a Segment size: a finished-looking file
    assert (out / "r1.mkv.partial").exists() and not (out / "r1.mkv").exists()
    monkeypatch.undo()
    # a kill while the state was being written leaves its per-process temporary behind
    (rec.directory / ".live_merge.json.4242.tmp").write_text("{")
    result = merge.merge_recording(rec.directory, out, cleanup=True, recovered=True)
    assert_same_as_reference(result.output_path, reference)
    assert not rec.directory.exists()
    assert result.manifest.quarantined == []  # metadata, not data: deleted, not kept
    # the first finish's Cues were cut: one Cues element, at the end, nothing after it
    elements = level1_elements(result.output_path)
    assert [e for e, _ in elements].count(mkv_splice.CUES) == 1
    assert elements[-1][0] == mkv_splice.CUES
    assert elements[-1][1] == result.output_path.stat().st_size


def level1_elements(path: pathlib.Path) -> list[tuple[int, int]]:
    """(id, end offset) of each element of the file's Segment."""
    data = path.read_bytes()
    _, after = mkv_splice.ebml.read_id(data, 0)
    size, payload, _ = mkv_splice.ebml.read_size(data, after)
    _, after = mkv_splice.ebml.read_id(data, payload + size)
    size, seg_data, _ = mkv_splice.ebml.read_size(data, after)
    assert size != mkv_splice.ebml.UNKNOWN_SIZE and seg_data + size == len(data)
    return [
        (element_id, end)
        for element_id, _, _, end in mkv_splice.ebml.iter_children(data, seg_data, len(data))
    ]


def test_a_chunk_with_packets_the_file_does_not_hold_is_never_deleted(recorded) -> None:
    rec, _reference, out, _ = recorded
    # a chunk that does not start with a keyframe: the merge discards its first packets
    broken = rec.directory / "rgb" / "00002.mkv"
    pts = [p for p in rec.pts("rgb") if 1000 <= p < 2000]
    factory.write_chunk(broken, rec.spec("rgb"), pts, skip_packets=1)
    data = broken.read_bytes()
    closer = Closer(rec.directory)
    live = live_merge.LiveMerge(rec.directory, out, poll_interval_s=0.02, flush_interval_s=0)
    live.start()
    closer.set(4)
    wait_until(lambda: "rgb/00003.mkv" in live.deleted_chunks, "chunk 3 appended")
    assert "rgb/00002.mkv" not in live.deleted_chunks and broken.exists()
    result = live.finish(60)
    quarantined = {q.file: q for q in result.manifest.quarantined}
    assert set(quarantined) == {"rgb/00002.mkv"}
    assert "not in the merged file" in quarantined["rgb/00002.mkv"].reason
    assert (out / quarantined["rgb/00002.mkv"].quarantine_path).read_bytes() == data
    assert not rec.directory.exists()


def test_a_chunk_of_other_codec_parameters_is_kept_and_named(recorded) -> None:
    rec, _reference, out, _ = recorded
    odd = factory.rgb_spec(width=32, height=24)
    pts = rec.pts("rgb")
    third = [p for p in pts if 2000 <= p < 3000]
    factory.write_chunk(rec.directory / "rgb" / "00003.mkv", odd, third)
    closer = Closer(rec.directory)
    live = live_merge.LiveMerge(rec.directory, out, poll_interval_s=0.02, flush_interval_s=0)
    live.start()
    closer.set(1)
    wait_until(lambda: live.appended_batches >= 1, "first append")
    closer.set(5)  # the growing file has its tracks: the odd chunk cannot get one
    result = live.finish(60)
    assert [s.file for s in result.manifest.skipped_chunks] == ["rgb/00003.mkv"]
    assert "rgb/00003.mkv" in {q.file for q in result.manifest.quarantined}
    rgb = track_packets(result.output_path)[0]
    assert len(rgb) == len(pts) - len(third)


def test_a_recording_finishes_on_a_disk_that_cannot_hold_two_copies(tmp_path) -> None:
    staging = tmp_path / "staging"
    rec = factory.standard_recording(staging, "big", duration_ms=20_000)
    total = sum(p.stat().st_size for p in rec.directory.rglob("*.mkv"))
    with tmpfs.mounted_tmpfs(tmp_path, f"{int(total * 1.5) // 1024}k") as disk:
        # the full merge needs the spool and the merged file at once: it fails (keeps all)
        shutil.copytree(rec.directory, disk / "spool" / "big")
        (disk / "out").mkdir()
        with pytest.raises(OSError) as failure:
            merge.merge_recording(disk / "spool" / "big", disk / "out", cleanup=True)
        assert failure.value.errno == errno.ENOSPC
        assert sorted(p.name for p in (disk / "out").iterdir()) == []
        shutil.rmtree(disk / "spool")
        # the same recording written chunk by chunk with the incremental merge fits
        spool = disk / "spool" / "big"
        spool.mkdir(parents=True)
        for name in ("recording.json", "stats.json"):
            shutil.copyfile(rec.directory / name, spool / name)
        closer = Closer(spool)
        live = live_merge.LiveMerge(spool, disk / "out", poll_interval_s=0.02, flush_interval_s=0)
        live.start()
        peak = 0
        chunks = len(rec.chunks["rgb"])
        for index in range(1, chunks + 1):
            for stream in STREAMS:
                name = f"{stream}/{index:05d}.mkv"
                (spool / stream).mkdir(exist_ok=True)
                shutil.copyfile(rec.directory / name, spool / name)
            closer.set(index)
            wait_until(
                lambda i=index: chunk_names(STREAMS, i - 2) <= set(live.deleted_chunks),
                f"chunk {index - 2} appended",
            )
            used = shutil.disk_usage(disk).used
            peak = max(peak, used)
        (spool / "COMPLETE").touch()
        result = live.finish(60)
        assert result.cleaned_up
        final = result.output_path.stat().st_size
        chunk_bytes = total / chunks
        # peak: the merged file so far plus about two chunks per stream (plus metadata)
        assert peak <= final + 3 * chunk_bytes + 256 * 1024
        assert ffprobe_packet_count(result.output_path) == sum(
            len(p) for stream in STREAMS for p in rec.chunks[stream]
        )
        mkvmerge_ok(result.output_path)


def test_codec_parameters_that_differ_before_the_first_append_get_their_own_track(
    recorded,
) -> None:
    rec, _reference, out, _ = recorded
    odd = factory.rgb_spec(width=32, height=24)
    third = [p for p in rec.pts("rgb") if 2000 <= p < 3000]
    factory.write_chunk(rec.directory / "rgb" / "00003.mkv", odd, third)
    Closer(rec.directory).set(5)
    live = live_merge.LiveMerge(rec.directory, out, poll_interval_s=0.02, flush_interval_s=0)
    live.start()
    with pytest.raises(live_merge.LiveMergeError, match="codec parameters"):
        live.finish(60)
    assert not (rec.directory / live_merge.STATE_FILE).exists()  # nothing written yet
    # what the recording manager does then: the full merge, one track per set of parameters
    result = merge.merge_recording(rec.directory, out, cleanup=True)
    assert set(result.manifest.streams) == {"rgb", "rgb~2", "depth", "imu"}
    assert result.manifest.streams["rgb~2"].frames_written == len(third)


def test_a_finished_merge_whose_clean_up_was_cut_short_is_never_merged_again(
    recorded, monkeypatch
) -> None:
    rec, reference, out, _ = recorded
    Closer(rec.directory).set(5)

    def power_cut(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EIO, "power cut (injected) after the file was published")

    monkeypatch.setattr(spool_cleanup, "clean_up", power_cut)
    live = live_merge.LiveMerge(
        rec.directory, out, poll_interval_s=0.02, flush_interval_s=0, batch_bytes=20_000
    )
    live.start()
    with pytest.raises(live_merge.LiveMergeError, match="power cut"):
        live.finish(60)
    monkeypatch.undo()
    assert (out / "r1.mkv").exists() and (rec.directory / live_merge.STATE_FILE).exists()
    before = (out / "r1.mkv").read_bytes()
    result = merge.merge_recording(rec.directory, out, cleanup=True)
    assert result.output_path == out / "r1.mkv" and result.cleaned_up
    assert (out / "r1.mkv").read_bytes() == before  # not replaced by a merge of what was left
    assert_same_as_reference(result.output_path, reference)


@pytest.mark.parametrize("b_frames", [False, True], ids=["capture-safe", "b-frames"])
def test_the_chunk_being_written_is_appended_as_it_grows(
    tmp_path, writer_factory, b_frames
) -> None:
    from omgrab import recording
    from tests import fixtures_recording as fx

    video = fx.small_video_configs()
    if b_frames:  # libx264 defaults: B-frames reorder packets (decode order != pts order)
        video["rgb"] = recording.VideoStreamConfig(
            width=fx.SMALL_RGB[1], height=fx.SMALL_RGB[0], fps=25, codec="libx264",
            bitrate=300_000, input_pixel_format="rgb24", output_pixel_format="yuv420p",
            metadata={"type": "rgb"}, capture_safe=False,
        )  # fmt: skip
    writer = writer_factory(video, chunk_length_s=600.0)  # one chunk, never closed
    writer.start()
    out = tmp_path / "out"
    live = live_merge.LiveMerge(writer.directory, out, poll_interval_s=0.02, flush_interval_s=0)
    live.start()
    queues = {s: writer.get_encoder_queue(s) for s in ("rgb", "depth", "imu")}
    frames = 150
    for i in range(frames):
        ts = fx.timestamp_at(i * 40)
        queues["rgb"].put((fx.rgb_frame(i), ts))
        queues["depth"].put((fx.depth_frame(i), ts))
        queues["imu"].put((fx.imu_payload(i), ts))
    partial = out / f"{writer.directory.name}.mkv.partial"
    # frames not in the file yet: the merge's decode-order window (16), plus what libx264
    # keeps inside the encoder with its defaults (look-ahead and B-frames, about 50 frames)
    lag = 70 if b_frames else 20
    # the writer is still running, its chunk still open: the growing file catches up
    wait_until(
        lambda: partial.exists() and ffprobe_packet_count(partial) >= 3 * (frames - lag),
        "the open chunk appended while it is written",
        live=live,
    )
    assert (writer.directory / live_merge.STATE_FILE).read_text() != ""
    mkvmerge_ok(partial)
    writer.stop()
    result = live.finish(60)
    packets = track_packets(result.output_path)
    expected = [i * 40 for i in range(frames)]
    assert [p[0] for p in packets[0]] == expected  # rgb: every frame, pts exact
    assert [p[0] for p in packets[1]] == expected
    assert [p[0] for p in packets[2]] == expected
    assert result.cleaned_up and not writer.directory.exists()
    mkvmerge_ok(result.output_path)


def test_a_live_merge_failing_while_recording_is_reported_once_and_the_stop_finishes_it(
    rig_dir, monkeypatch
) -> None:
    from omgrab import recorder_events
    from tests import runtime_rig

    real_flush = live_merge.LiveMerge._flush
    calls = []

    def flaky_flush(self) -> None:
        calls.append(1)
        if len(calls) == 2:  # the second append hits a full card
            raise OSError(errno.ENOSPC, "No space left on device (injected)")
        real_flush(self)

    monkeypatch.setattr(live_merge.LiveMerge, "_flush", flaky_flush)
    manager, _device = runtime_rig.make_manager(rig_dir, chunk_length_s=0.3)
    events: list[recorder_events.RecorderEvent] = []
    manager.set_on_recording_error(events.append)
    assert manager.start_recording()
    recording_id = manager.active_recording_id
    wait_until(lambda: len(calls) >= 2, "two appends")
    wait_until(
        lambda: any(e.kind is recorder_events.EventKind.MERGE_FAILED for e in events),
        "the failure reported",
        timeout=30,
    )
    assert manager.is_recording  # the recording goes on
    runtime_rig.wait_for_frames(manager, 40)
    monkeypatch.setattr(live_merge.LiveMerge, "_flush", real_flush)
    manager.stop_recording()
    manager.shutdown()
    # reported once (a busy machine may add a stall report of its own: not this test's subject)
    failures = [e for e in events if e.kind is recorder_events.EventKind.MERGE_FAILED]
    assert len(failures) == 1
    assert "No space left" in failures[0].message and failures[0].recording_id == recording_id
    merged = rig_dir / "out" / f"{recording_id}.mkv"
    doc = manifest.read_manifest(manifest.manifest_path_for(merged))
    assert doc.streams["rgb"].frames_written >= 40
    assert not (rig_dir / "spool" / recording_id).exists()
    assert not list((rig_dir / "out").glob("*.partial"))
    mkvmerge_ok(merged)


@pytest.mark.parametrize(
    "state",
    [b"{", b"[]", b'{"partial": 7}', b'{"partial": "r1.mkv.partial", "size": "x"}'],
    ids=["torn", "not-an-object", "wrong-type", "bad-size"],
)
def test_a_hostile_state_file_fails_the_merge_naming_it_and_deletes_nothing(
    recorded, state: bytes
) -> None:
    rec, _reference, out, _ = recorded
    (rec.directory / live_merge.STATE_FILE).write_bytes(state)

    def files() -> list[pathlib.Path]:  # the merge's writer lock file aside
        return sorted(
            p.relative_to(rec.directory)
            for p in rec.directory.rglob("*")
            if p.name != spool_lock.LOCK_FILE
        )

    before = files()
    with pytest.raises(live_merge.LiveMergeError, match=live_merge.STATE_FILE):
        merge.merge_recording(rec.directory, out, cleanup=True, recovered=True)
    assert files() == before
    assert list(out.iterdir()) == []
