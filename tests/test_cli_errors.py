"""Every subcommand as a user runs it: the good path, and each mistake as one line + exit 2."""

from __future__ import annotations

import json
import pathlib
import shutil
import socket
import subprocess
import sys
import tomllib

import av
import pytest

import omgrab
from omgrab.recording import spool_lock
from tests import cli_process, fixtures_recording, tmpfs
from tests import recording_spool_factory as spool_factory

omgrab_cmd = cli_process.omgrab
assert_user_error = cli_process.assert_user_error


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A data directory with one merged recording made by ``omgrab record``."""
    data = tmp_path_factory.mktemp("recorded") / "data"
    done = omgrab_cmd(
        "record",
        "--duration",
        "1.5",
        "--small",
        "--chunk-length",
        "1",
        "--data-dir",
        str(data),
        cwd=data.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # A simulated rig has no battery configured: no warning about a missing I2C bus.
    assert "i2c" not in done.stderr.lower() and "battery" not in done.stderr.lower()
    # The live display showed every stream with its counters and the free disk space.
    for needle in ("frames", "dropped", "backlog", "disk free", "rgb", "depth", "imu"):
        assert needle in done.stdout, needle
    return data


def test_version_matches_pyproject_and_sorts_after_the_published_0_1_2(
    tmp_path: pathlib.Path,
) -> None:
    pyproject = tomllib.loads(
        (pathlib.Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    )
    assert pyproject["project"]["version"] == omgrab.__version__
    assert tuple(int(x) for x in omgrab.__version__.split(".")) > (0, 1, 2)
    for args in (("--version",),):
        done = omgrab_cmd(*args, cwd=tmp_path)
        assert done.returncode == 0
        assert done.stdout.strip() == f"omgrab {omgrab.__version__}"
    as_module = subprocess.run(
        [sys.executable, "-m", "omgrab", "--help"],
        capture_output=True,
        text=True,
        env=cli_process.env(),
        timeout=60,
    )
    assert as_module.returncode == 0 and "record" in as_module.stdout


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("demo", "--seconds", "0"), ("--seconds", "> 0")),
        (("demo", "--seconds", "abc"), ("--seconds",)),
        (("record", "--duration", "-1"), ("--duration", "> 0")),
        (("record",), ("--duration",)),
        (("run", "--dashboard-port", "99999"), ("--dashboard-port", "99999")),
        (("run", "--chunk-length", "0"), ("--chunk-length",)),
        (("merge", "/nonexistent", "out.mkv"), ("/nonexistent", "does not exist")),
        (("recover", "/nonexistent", "out"), ("/nonexistent", "does not exist")),
        (("inspect", "nope.mkv"), ("nope.mkv",)),
        (("status", "--data-dir", "nowhere"), ("nowhere/status.json",)),
        (("no-such-command",), ("no-such-command",)),
    ],
)
def test_each_mistake_is_one_line_and_exit_2(
    tmp_path: pathlib.Path, args: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    done = omgrab_cmd(*args, cwd=tmp_path)
    assert_user_error(done, *needles)
    # Nothing was created by a refused command.
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_dashboard_port_in_use(tmp_path: pathlib.Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = omgrab_cmd(
            "run", "--data-dir", str(tmp_path / "d"), "--dashboard-port", str(port), cwd=tmp_path
        )
    assert_user_error(done, f"127.0.0.1:{port}", "in use")


def test_read_only_data_dir(tmp_path: pathlib.Path) -> None:
    with tmpfs.mounted_tmpfs(tmp_path, "1m") as mount:
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        for args in (
            ("demo", "--seconds", "1", "--data-dir", str(mount / "d")),
            ("record", "--duration", "1", "--data-dir", str(mount / "d")),
            ("run", "--dashboard-port", "0", "--data-dir", str(mount / "d")),
        ):
            assert_user_error(omgrab_cmd(*args, cwd=tmp_path), str(mount / "d"), "Read-only")


def test_inspect_summary_manifest_tags_json_and_corrupt_manifest(
    recorded: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    [merged] = sorted((recorded / "recordings").glob("*.mkv"))
    done = omgrab_cmd("inspect", str(merged), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for needle in ("from manifest", "rgb", "depth", "imu", "gaps", "dropped", "stop reason"):
        assert needle in done.stdout, needle
    with_manifest = json.loads(omgrab_cmd("inspect", "--json", str(merged), cwd=tmp_path).stdout)
    # Without the manifest, the MKV's own tags give the same tracks and counts.
    alone = tmp_path / merged.name
    shutil.copy(merged, alone)
    from_tags = json.loads(omgrab_cmd("inspect", "--json", str(alone), cwd=tmp_path).stdout)
    assert from_tags["source"] == "mkv tags"
    assert from_tags["recording_id"] == with_manifest["recording_id"] == merged.stem
    assert [t["name"] for t in from_tags["tracks"]] == ["rgb", "depth", "imu"]
    for a, b in zip(from_tags["tracks"], with_manifest["tracks"], strict=True):
        assert a["frames"] == b["frames"] > 0
        assert a["dropped"] == b["dropped"] == 0
    alone.with_suffix(".json").write_text("{not json")
    assert_user_error(omgrab_cmd("inspect", str(alone), cwd=tmp_path), "unreadable")
    alone.with_suffix(".json").write_text("[]")
    assert_user_error(omgrab_cmd("inspect", str(alone), cwd=tmp_path), "not an omgrab manifest")
    garbage = tmp_path / "garbage.mkv"
    garbage.write_bytes(b"\x00" * 100)
    assert_user_error(omgrab_cmd("inspect", str(garbage), cwd=tmp_path), "garbage.mkv")


def test_status_shows_the_final_status_file(recorded: pathlib.Path, tmp_path: pathlib.Path) -> None:
    done = omgrab_cmd("status", "--data-dir", str(recorded), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "state stopped" in done.stdout
    assert "battery none" in done.stdout
    raw = json.loads(
        omgrab_cmd("status", "--json", "--data-dir", str(recorded), cwd=tmp_path).stdout
    )
    assert raw["state_machine_state"] == "stopped" and raw["updated_at"]


def test_record_output_session_names_have_no_colons(recorded: pathlib.Path) -> None:
    sessions = list((recorded / "output").iterdir())
    assert sessions and all(":" not in s.name for s in sessions)


def test_merge_refuses_to_overwrite_and_to_write_into_a_missing_dir(
    tmp_path: pathlib.Path, short_recording: fixtures_recording.WrittenRecording
) -> None:
    recording = short_recording.directory
    out = tmp_path / "out"
    assert_user_error(
        omgrab_cmd("merge", str(recording), str(out / "x.mkv"), cwd=tmp_path),
        str(out),
        "does not exist",
    )
    assert_user_error(
        omgrab_cmd("merge", str(recording), str(out), cwd=tmp_path), "neither", str(out)
    )
    assert not out.exists()
    out.mkdir()
    done = omgrab_cmd("merge", str(recording), str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [merged] = out.glob("*.mkv")
    before = merged.stat().st_mtime_ns
    again = omgrab_cmd("merge", str(recording), str(out), cwd=tmp_path)
    assert_user_error(again, str(merged), "--force")
    assert merged.stat().st_mtime_ns == before
    forced = omgrab_cmd("merge", "--force", str(recording), str(out), cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert merged.stat().st_mtime_ns != before


def test_recover_good_path_and_empty_spool(tmp_path: pathlib.Path) -> None:
    (tmp_path / "spool").mkdir()
    done = omgrab_cmd("recover", str(tmp_path / "spool"), str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0 and "nothing to recover" in done.stdout


def test_recover_says_which_recording_failed_and_exits_1(tmp_path: pathlib.Path) -> None:
    spool, out = tmp_path / "spool", tmp_path / "out"
    spool_factory.standard_recording(spool, "rec-good", complete=False)
    busy = spool_factory.standard_recording(spool, "rec-busy", complete=False)
    fd = spool_lock.hold_shared(busy.directory)  # a writer that never lets go
    try:
        done = omgrab_cmd("recover", str(spool), str(out), "--cleanup", cwd=tmp_path)
    finally:
        spool_lock.release(fd)
    assert done.returncode == 1, done.stderr
    [line] = [ln for ln in done.stderr.splitlines() if ln.startswith("omgrab:")]
    assert "rec-busy" in line and "spool is kept" in line and "Traceback" not in done.stderr
    assert "recovered" in done.stdout and (out / "rec-good.mkv").is_file()
    assert not (out / "rec-busy.mkv").exists() and any((busy.directory / "rgb").iterdir())


def test_record_with_a_config_file_records_what_it_says(tmp_path: pathlib.Path) -> None:
    (tmp_path / "rig.toml").write_text(
        '[rig]\ndata_dir = "cfg"\n[recording]\nchunk_length_s = 1\n[device]\nimu_rate_hz = 0\n'
        "[device.rgb]\nwidth = 320\nheight = 200\n[device.depth]\nenabled = false\n"
    )
    done = omgrab_cmd("record", "--duration", "1", "--config", "rig.toml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [merged] = (tmp_path / "cfg" / "recordings").glob("*.mkv")
    summary = json.loads(omgrab_cmd("inspect", "--json", str(merged), cwd=tmp_path).stdout)
    assert [t["name"] for t in summary["tracks"]] == ["rgb"]
    (tmp_path / "bad.toml").write_text("[device.rgb]\nwidth = 321\n")
    assert_user_error(
        omgrab_cmd("record", "--duration", "1", "--config", "bad.toml", cwd=tmp_path),
        "device.rgb.width = 321",
    )


def test_merge_from_a_read_only_spool_needs_no_lock(
    tmp_path: pathlib.Path, short_recording: fixtures_recording.WrittenRecording
) -> None:
    with tmpfs.mounted_tmpfs(tmp_path, "16m") as mount:
        copy = mount / "spool" / short_recording.directory.name
        shutil.copytree(short_recording.directory, copy)
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        (tmp_path / "out").mkdir()
        done = omgrab_cmd("merge", str(copy), str(tmp_path / "out"), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert len(list((tmp_path / "out").glob("*.mkv"))) == 1


def test_record_a_video_file_device_in_real_time(tmp_path: pathlib.Path) -> None:
    video = tmp_path / "footage.mkv"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25",
            "-t",
            "1",
            "-c:v",
            "mjpeg",
            str(video),
        ],
        check=True,
        timeout=120,
    )
    (tmp_path / "rig.toml").write_text(
        f'[rig]\ndata_dir = "vf"\n[device]\ntype = "video_file"\nsource = "{video}"\n'
        "imu_rate_hz = 0\n[device.rgb]\nwidth = 160\nheight = 120\n"
    )
    done = omgrab_cmd("record", "--duration", "2", "--config", "rig.toml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [merged] = (tmp_path / "vf" / "recordings").glob("*.mkv")
    summary = json.loads(omgrab_cmd("inspect", "--json", str(merged), cwd=tmp_path).stdout)
    [rgb] = summary["tracks"]
    # The 1 s file loops and is paced at 25 fps: about 2 s of frames. On a quiet machine there
    # is no gap at the wrap; on a busy one a rewind can come late, and then the gap is counted
    # (frames missed) in the manifest, which inspect reports.
    assert rgb["name"] == "rgb" and rgb["frames"] >= 35
    doc = json.loads(merged.with_suffix(".json").read_text())
    gaps = doc["streams"]["rgb"]["capture_gaps"]["gap_list"]
    assert len(gaps) == rgb["gaps"] <= 2
    assert all(g["frames_missed"] >= 1 for g in gaps), gaps
    with av.open(str(merged)) as container:
        assert container.streams.video[0].codec_context.width == 160
