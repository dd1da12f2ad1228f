"""Data (IMU) tracks are valid ``S_TEXT/ASS`` Matroska: the codec private header is there, every
validator reads the file, and each block still holds exactly the bytes put."""

from __future__ import annotations

import pathlib
import subprocess

import pytest

from omgrab.recording import data_track, merge
from tests import fixtures_recording as fx
from tests import recording_mkv_probe as probe
from tests import recording_spool_factory as factory

pytestmark = pytest.mark.skipif(
    not (probe.HAVE_FFPROBE and probe.HAVE_MKVINFO), reason="ffprobe/mkvtoolnix not installed"
)


def _codec_private(path: pathlib.Path, track: int) -> bytes:
    with fx.av.open(str(path)) as container:
        return bytes(container.streams[track].codec_context.extradata or b"")


def _check_validators(path: pathlib.Path, track: int, tmp_path: pathlib.Path) -> None:
    """mkvinfo, mkvextract, ffprobe, ffmpeg (stream copy) all read the data track."""
    probe.mkvinfo(path)  # fails on a non-zero exit
    out = tmp_path / f"{path.stem}-{track}.ass"
    extract = subprocess.run(
        ["mkvextract", str(path), "tracks", f"{track}:{out}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # 1 = warnings only (the blocks are items, not ASS events); 2 would be an error such as
    # 'missing the "codec private" element'.
    assert extract.returncode in (0, 1), extract.stdout + extract.stderr
    assert "Error" not in extract.stdout + extract.stderr
    assert out.read_bytes().startswith(b"\xef\xbb\xbf[Script Info]") or out.read_bytes().startswith(
        b"[Script Info]"
    )
    ffprobe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_packets", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ffprobe.returncode == 0 and ffprobe.stderr == "", ffprobe.stderr
    copy = tmp_path / f"{path.stem}-{track}-copy.mkv"
    ffmpeg = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-nostdin",
            "-i",
            str(path),
            "-map",
            f"0:{track}",
            "-c",
            "copy",
            str(copy),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ffmpeg.returncode == 0 and ffmpeg.stderr == "", ffmpeg.stderr


def test_written_chunks_and_merged_file_carry_the_ass_header(tmp_path: pathlib.Path) -> None:
    rec = fx.write_recording(tmp_path / "spool", frames=30, chunk_length_s=1.0)
    for chunk in fx.chunk_files(rec.directory, "imu"):
        assert _codec_private(chunk, 0) == data_track.ASS_HEADER
        _check_validators(chunk, 0, tmp_path)
    merged = merge.merge_recording_chunks(rec.directory, tmp_path)
    assert _codec_private(merged, 2) == data_track.ASS_HEADER
    _check_validators(merged, 2, tmp_path)
    packets = probe.pyav_packets(merged)[2]
    assert packets == [(i * 40, fx.imu_payload(i)) for i in range(30)]


def test_old_chunks_without_the_header_merge_into_a_valid_track(tmp_path: pathlib.Path) -> None:
    """Chunks as the published SDK and omgrab < 0.2 wrote them (no codec private)."""
    imu = list(range(1, 2000, 10))
    rec = factory.make_recording(
        tmp_path / "spool",
        "rec-old",
        [factory.rgb_spec(), factory.imu_spec()],
        {
            "rgb": factory.split_chunks(list(range(0, 2000, 40)), 1000),
            "imu": factory.split_chunks(imu, 1000),
        },
    )
    old_chunk = sorted((rec.directory / "imu").glob("*.mkv"))[0]
    assert _codec_private(old_chunk, 0) == b""
    merged = merge.merge_recording_chunks(rec.directory, tmp_path)
    assert _codec_private(merged, 1) == data_track.ASS_HEADER
    _check_validators(merged, 1, tmp_path)
    assert probe.pyav_packets(merged)[1] == [(p, factory.imu_payload(p)) for p in imu]
