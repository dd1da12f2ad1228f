"""Empty spool recordings (killed before the first packet): removed only when they hold nothing."""

from __future__ import annotations

import json
import logging
import os
import pathlib
from collections.abc import Callable

import av
import pytest

from omgrab.recording import empty_spool, recovery, spool_lock
from tests import recording_spool_factory as factory


def _header_only_part(path: pathlib.Path) -> None:
    """A writer's fresh ``.part`` chunk: a Matroska header, no packet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    container = av.open(str(path), "w", format="matroska")
    container.add_mux_stream("ass")
    container.start_encoding()
    container.close()


def _empty_recording(spool: pathlib.Path, name: str = "a-empty") -> pathlib.Path:
    """What ``omgrab run`` leaves when killed before its first packet reached a chunk."""
    rec = factory.standard_recording(spool, name, complete=False)
    for path in rec.directory.rglob("*.mkv"):
        path.unlink()
    (rec.directory / "stats.json").write_text(
        json.dumps({"streams": {"rgb": {"frames_written": 0, "chunks": []}}})
    )
    spool_lock.lock_path(rec.directory).touch()
    _header_only_part(rec.directory / "rgb" / "00001.mkv.part")
    (rec.directory / "depth").mkdir(exist_ok=True)
    return rec.directory


def test_an_empty_recording_is_removed_by_a_cleanup_pass_and_says_why(
    spool: pathlib.Path, out_dir: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = _empty_recording(spool)
    good = factory.standard_recording(spool, "b-good")
    # without clean-up nothing is removed (the merge's default keeps the spool)
    kept = recovery.recover_orphans(spool, out_dir)
    assert kept.empty == [directory] and kept.removed_empty == {}
    assert directory.is_dir()
    with caplog.at_level(logging.WARNING, logger="omgrab.recording.recovery"):
        report = recovery.recover_orphans(spool, out_dir, cleanup=True)
    assert report.empty == [directory]
    assert list(report.removed_empty) == [directory]
    why = report.removed_empty[directory]
    assert "no chunk and no packet" in why and "recording.json" in why and ".part" in why
    assert f"removed the empty recording {directory}" in caplog.text
    assert not directory.exists()
    assert not good.directory.exists() and (out_dir / "b-good.mkv").exists()
    # the next start does not see it again
    again = recovery.recover_orphans(spool, out_dir, cleanup=True)
    assert again.empty == [] and again.merged == [] and again.failed == {}


def _foreign_file(d: pathlib.Path) -> None:
    (d / "notes.txt").write_text("operator notes")


def _part_with_packets(d: pathlib.Path) -> None:
    factory.write_chunk(d / "rgb" / "00002.mkv.part", factory.rgb_spec(), [0, 40, 80])


def _stats_counting_items(d: pathlib.Path) -> None:
    (d / "stats.json").write_text(json.dumps({"streams": {"rgb": {"frames_written": 3}}}))


def _broken_stats(d: pathlib.Path) -> None:
    (d / "stats.json").write_text("{not json")


def _nested_directory(d: pathlib.Path) -> None:
    (d / "rgb" / "sub").mkdir()


def _symlink(d: pathlib.Path) -> None:
    os.symlink("/etc/hostname", d / "link")


def _file_in_stream_dir(d: pathlib.Path) -> None:
    (d / "depth" / "frame.raw").write_bytes(b"\1" * 10)


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (_foreign_file, "notes.txt is not recording metadata"),
        (_part_with_packets, "rgb/00002.mkv.part may hold packets"),
        (_stats_counting_items, "stats.json counts 3 written items"),
        (_broken_stats, "stats.json cannot be read"),
        (_nested_directory, "rgb/sub is not a plain file"),
        (_symlink, "link is a symlink"),
        (_file_in_stream_dir, "depth/frame.raw is not an unfinished chunk"),
    ],
)
def test_a_recording_holding_anything_else_is_kept(
    spool: pathlib.Path,
    out_dir: pathlib.Path,
    spoil: Callable[[pathlib.Path], None],
    reason: str,
) -> None:
    directory = _empty_recording(spool)
    spoil(directory)
    before = sorted(p.relative_to(directory) for p in directory.rglob("*"))
    assert empty_spool.keep_reason(directory) is not None
    assert reason in (empty_spool.keep_reason(directory) or "")
    report = recovery.recover_orphans(spool, out_dir, cleanup=True)
    assert report.empty == [directory] and report.removed_empty == {}
    assert sorted(p.relative_to(directory) for p in directory.rglob("*")) == before


def test_a_zero_length_chunk_is_not_an_empty_recording(
    spool: pathlib.Path, out_dir: pathlib.Path
) -> None:
    directory = _empty_recording(spool)
    (directory / "rgb" / "00001.mkv").touch()
    report = recovery.recover_orphans(spool, out_dir, cleanup=True)
    assert report.removed_empty == {}
    assert (directory / "rgb" / "00001.mkv").exists()
