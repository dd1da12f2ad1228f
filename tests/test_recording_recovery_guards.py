"""Recovery against live writers, hostile ids and metadata, name clashes and a full disk."""

from __future__ import annotations

import errno
import json
import pathlib
import subprocess
import sys
import threading
import time

import pytest

from omgrab.recording import manifest, merge, recovery, spool_lock
from tests import recording_mkv_probe as probe
from tests import recording_spool_factory as factory
from tests import tmpfs

_WRITER = """
import sys, time
from omgrab.recording import spool_lock
from tests import recording_spool_factory as factory
directory, chunk, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
spool_lock.hold_shared(directory)
print("locked", flush=True)
time.sleep(delay)
if chunk:
    factory.write_chunk(__import__("pathlib").Path(chunk), factory.rgb_spec(),
                        list(range(1000, 2400, 40)))
"""


def _writer(directory: pathlib.Path, chunk: str, delay: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(directory), chunk, str(delay)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=pathlib.Path(__file__).resolve().parents[1],
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_recovery_waits_for_a_live_writer_before_merging(
    spool: pathlib.Path, out_dir: pathlib.Path
) -> None:
    rec = factory.standard_recording(spool, complete=False)
    # an orphaned encoder worker still finishing its chunk for 0.5 s
    proc = _writer(rec.directory, str(rec.chunk_path("rgb", 1)), 0.5)
    try:
        report = recovery.recover_orphans(spool, out_dir, cleanup=True, lock_timeout_s=30)
    finally:
        proc.wait(timeout=30)
    assert report.failed == {}
    [merged] = report.merged
    rgb = [p for p, _ in probe.pyav_packets(merged)[0]]
    assert rgb == rec.chunks["rgb"][0] + list(range(1000, 2400, 40))
    assert not rec.directory.exists()


def test_recovery_gives_up_on_a_writer_after_the_bound_and_keeps_the_spool(
    spool: pathlib.Path, out_dir: pathlib.Path
) -> None:
    rec = factory.standard_recording(spool, complete=False)
    proc = _writer(rec.directory, "", 60)
    try:
        started = time.monotonic()
        report = recovery.recover_orphans(spool, out_dir, cleanup=True, lock_timeout_s=0.3)
        waited = time.monotonic() - started
        assert isinstance(report.failed[rec.directory], spool_lock.WritersActiveError)
        assert waited < 10
        assert list(out_dir.iterdir()) == []
        assert len(list(rec.directory.rglob("*.mkv"))) == 6
    finally:
        proc.kill()
        proc.wait(timeout=30)
    # the kernel dropped the dead writer's lock: the next pass recovers it
    report = recovery.recover_orphans(spool, out_dir, cleanup=True)
    assert len(report.merged) == 1 and not rec.directory.exists()


def test_two_recoveries_at_once_merge_once(spool: pathlib.Path, out_dir: pathlib.Path) -> None:
    rec = factory.standard_recording(spool, complete=False)
    barrier = threading.Barrier(2)
    reports: list[recovery.RecoveryReport] = []

    def run() -> None:
        barrier.wait()
        reports.append(recovery.recover_orphans(spool, out_dir, cleanup=True))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(r.failed == {} for r in reports)
    assert sorted(len(r.merged) for r in reports) == [0, 1]
    assert sorted(len(r.already_merged) for r in reports) == [0, 1]
    merged = next(r.merged[0] for r in reports if r.merged)
    assert [p for p, _ in probe.pyav_packets(merged)[0]] == rec.pts("rgb")
    assert not rec.directory.exists()


def _set_recording_json(rec: factory.SpoolRecording, edit: object) -> None:
    path = rec.directory / "recording.json"
    doc = json.loads(path.read_text())
    edit(doc)  # type: ignore[operator]
    path.write_text(json.dumps(doc))


def test_recording_id_from_disk_never_escapes_the_output_directory(
    spool: pathlib.Path, out_dir: pathlib.Path
) -> None:
    rec = factory.standard_recording(spool, "rec-escape")
    _set_recording_json(rec, lambda d: d.update(recording_id="../escaped"))
    result = merge.merge_recording(rec.directory, out_dir)
    assert result.output_path == out_dir / "rec-escape.mkv"
    assert not (out_dir.parent / "escaped.mkv").exists()
    assert any("not a safe file name" in n for n in result.manifest.notes)


def test_two_spools_with_the_same_id_never_overwrite_each_other(
    spool: pathlib.Path, out_dir: pathlib.Path
) -> None:
    first = factory.standard_recording(spool, "dir-a", duration_ms=1000, complete=False)
    second = factory.standard_recording(spool, "dir-b", duration_ms=2000, complete=False)
    for rec in (first, second):
        _set_recording_json(rec, lambda d: d.update(recording_id="same-id"))
    report = recovery.recover_orphans(spool, out_dir, cleanup=True)
    assert sorted(p.name for p in report.merged) == ["same-id-2.mkv", "same-id.mkv"]
    counts = sorted(len(probe.pyav_packets(p)[0]) for p in report.merged)
    assert counts == [len(first.pts("rgb")), len(second.pts("rgb"))]
    assert list(spool.iterdir()) == []
    # a second pass finds both finished (by spool directory), nothing merged again
    assert recovery.recover_orphans(spool, out_dir).merged == []


def test_an_explicit_output_of_another_recording_is_not_overwritten(
    spool: pathlib.Path, out_dir: pathlib.Path
) -> None:
    a = factory.standard_recording(spool, "rec-a")
    b = factory.standard_recording(spool, "rec-b")
    target = out_dir / "take.mkv"
    merge.merge_recording(a.directory, target)
    before = target.read_bytes()
    with pytest.raises(FileExistsError, match="holds another recording"):
        merge.merge_recording(b.directory, target, cleanup=True)
    assert target.read_bytes() == before
    assert b.directory.is_dir()
    (out_dir / "user.mkv").write_bytes(b"not ours")
    with pytest.raises(FileExistsError):
        merge.merge_recording(b.directory, out_dir / "user.mkv")
    assert (out_dir / "user.mkv").read_bytes() == b"not ours"


def test_hostile_metadata_fails_only_its_recording(
    spool: pathlib.Path, out_dir: pathlib.Path
) -> None:
    edits = {
        "fps-huge": lambda d: d["streams"]["rgb"]["config"].update(fps=1e300),
        "fps-string": lambda d: d["streams"]["rgb"]["config"].update(fps="fast"),
        "streams-list": lambda d: d.update(streams=[1, 2]),
        "id-number": lambda d: d.update(recording_id=12345),
        "stream-escape": lambda d: d["streams"].update({"../x": {"kind": "video"}}),
        "no-keys": lambda d: d.clear(),
        "time-garbage": lambda d: d.update(started_at="9999-99-99"),
    }
    recs = {}
    for name, edit in edits.items():
        recs[name] = factory.standard_recording(spool, name, complete=False)
        _set_recording_json(recs[name], edit)
    huge = factory.standard_recording(spool, "stats-huge", complete=False)
    (huge.directory / "stats.json").write_text(
        '{"streams": {"rgb": {"frames_dropped": 1e999, "frames_out_of_order": '
        + str(10**40)
        + '}}, "stopped_at": 5}'
    )
    report = recovery.recover_orphans(spool, out_dir, cleanup=True)
    assert report.failed == {}
    assert sorted(p.stem for p in report.merged) == sorted([*edits, "stats-huge"])
    doc = manifest.read_manifest(out_dir / "stats-huge.json")
    assert doc.streams["rgb"].frames_dropped is None
    assert doc.streams["rgb"].frames_out_of_order is None
    for path in report.merged:
        probe.mkvmerge_identify(path)


def test_unsafe_directory_name_fails_only_that_recording(
    spool: pathlib.Path, out_dir: pathlib.Path
) -> None:
    bad = factory.standard_recording(spool, "bad name;rm", complete=False)
    good = factory.standard_recording(spool, "good", complete=False)
    _set_recording_json(bad, lambda d: d.update(recording_id="../../x"))
    report = recovery.recover_orphans(spool, out_dir, cleanup=True)
    assert "not a safe file name" in str(report.failed[bad.directory])
    assert bad.directory.is_dir()
    assert [p.name for p in report.merged] == ["good.mkv"]
    assert not good.directory.exists()


def test_disk_full_while_writing_the_manifest_leaves_no_mkv(
    spool: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = factory.standard_recording(spool)
    with tmpfs.mounted_tmpfs(tmp_path, "2m") as out:
        real = manifest.manifest_bytes
        # a manifest too big for what is left after the MKV: a real ENOSPC from the kernel
        monkeypatch.setattr(manifest, "manifest_bytes", lambda doc: real(doc) + b" " * (4 << 20))
        with pytest.raises(OSError) as caught:
            merge.merge_recording(rec.directory, out, cleanup=True)
        assert caught.value.errno == errno.ENOSPC
        assert caught.value.filename == str(out / f"{rec.recording_id}.json")
        assert list(out.iterdir()) == []
        assert len(list(rec.directory.rglob("*.mkv"))) == 6
        monkeypatch.undo()
        result = merge.merge_recording(rec.directory, out, cleanup=True)
        assert result.cleaned_up


def test_disk_full_while_muxing_names_the_file_and_leaves_nothing(
    spool: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    rec = factory.standard_recording(spool, duration_ms=8000)
    with tmpfs.mounted_tmpfs(tmp_path, "64k") as out:
        with pytest.raises(OSError) as caught:
            merge.merge_recording(rec.directory, out, cleanup=True)
        assert caught.value.errno == errno.ENOSPC
        assert rec.recording_id in str(caught.value)
        assert list(out.iterdir()) == []
        assert len(list(rec.directory.rglob("*.mkv"))) == 24
