"""omgrab 0.1.2's README quick start runs unchanged as a user's script against this package.

The script is taken at test time from the published wheel (``pip download omgrab==0.1.2``),
never committed here, and run in a subprocess, twice: with the simulated device standing in for
the OAK-D (the launcher replaces ``omgrab.devices.OakDCaptureDevice``), and with the real
``OakDCaptureDevice`` on the depthai fake (``tests/fake_depthai_live.py`` in
``sys.modules['depthai']``, producing 25 fps in real time). The file's text is not touched.
The recording directory it leaves is merged with the published call
``merge_recording_chunks(output_dir, out)`` and checked with ffprobe and mkvmerge.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from tests import compat_published

FRAMES = 250  # the quick start's 25 fps * 10 s
#: Also demand that no frame was dropped (needs CPU to spare: x264 1280x800 in real time);
#: otherwise every frame must be written or counted as dropped, which holds however busy the
#: machine is.
STRICT = os.environ.get("OMGRAB_COMPAT_STRICT") == "1"

_LAUNCH_SIMULATED = """
import runpy, sys
from omgrab import devices

def simulated_oakd(rgb_config, depth_config, *args, **kwargs):
    # IMU off: the quick start records RGB and depth only.
    return devices.SimulatedCaptureDevice(rgb=rgb_config, depth=depth_config, imu_rate_hz=None)

devices.OakDCaptureDevice = simulated_oakd
runpy.run_path(sys.argv[1], run_name="__main__")
"""

_LAUNCH_OAKD_FAKE = """
import runpy, sys
sys.path.insert(0, sys.argv[2])  # the repository, for tests.fake_depthai
from tests import fake_depthai, fake_depthai_live

import cv2

cv2.setNumThreads(1)  # no OpenCV thread pool to oversubscribe a busy machine's CPUs
fake_depthai_live.install()
sys.modules["depthai"] = fake_depthai  # the device imports depthai when constructed
runpy.run_path(sys.argv[1], run_name="__main__")
"""
REPO = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def quick_start(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The published README's quick-start code, unchanged."""
    try:
        wheel = compat_published.download_wheel(tmp_path_factory.mktemp("wheel"))
    except (subprocess.CalledProcessError, SystemExit) as exc:  # pragma: no cover - offline
        pytest.skip(f"cannot download {compat_published.PUBLISHED}: {exc}")
    return compat_published.readme_python_blocks(wheel)["Quick start"]


def _frame_counts(path: pathlib.Path) -> dict[str, int]:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_packets",
            "-show_entries",
            "stream=index,codec_name,nb_read_packets:stream_tags",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    streams = json.loads(out)["streams"]
    return {
        s["tags"].get("type", s["tags"].get("TYPE")): int(s["nb_read_packets"]) for s in streams
    }


def _run_quick_start(quick_start: str, tmp_path: pathlib.Path, launcher_code: str) -> None:
    script = tmp_path / "quick_start.py"
    script.write_text(quick_start)
    launcher = tmp_path / "launch.py"
    launcher.write_text(launcher_code)
    proc = subprocess.run(
        [sys.executable, str(launcher), str(script), str(REPO)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def _check_recording(tmp_path: pathlib.Path, allowed_drops: set[str]) -> dict[str, int]:
    """Check the recording the quick start left; return the frames written per stream."""
    recording_dir = tmp_path / "my_recording"
    # The writer wrote into its output_directory itself (per-stream chunk layout inside).
    assert (recording_dir / "recording.json").exists()
    assert (recording_dir / "COMPLETE").exists()
    stats = json.loads((recording_dir / "stats.json").read_text())["streams"]
    # Every frame the script handed over is accounted for: written, or dropped and counted
    # (a real-time capture drops when the CPU cannot encode 25 fps; the writer never blocks).
    for name, stream in stats.items():
        assert stream["frames_written"] + stream["frames_dropped"] == FRAMES, (name, stream)
        assert stream["frames_invalid"] == stream["frames_out_of_order"] == 0, (name, stream)
        reasons = {reason for reason, count in stream["drops"].items() if count}
        assert reasons <= allowed_drops, (name, stream["drops"])
    written = {name: stream["frames_written"] for name, stream in stats.items()}
    if STRICT:
        # With CPU to spare, nothing is dropped at all.
        assert written == {"rgb": FRAMES, "depth": FRAMES}, stats

    from omgrab.recording import merge_recording_chunks  # the published import path

    out = tmp_path / "x.mkv"
    merge_recording_chunks(recording_dir, out)
    assert _frame_counts(out) == written
    identify = subprocess.run(
        ["mkvmerge", "-J", str(out)], capture_output=True, text=True, check=False
    )
    assert identify.returncode == 0, identify.stdout
    info = json.loads(identify.stdout)
    assert info["container"]["recognized"] and info["container"]["supported"]
    assert [t["properties"]["codec_id"] for t in info["tracks"]] == ["V_MPEG4/ISO/AVC", "V_FFV1"]
    return written


@pytest.mark.timeout(240)
def test_quick_start_with_the_simulated_device(quick_start: str, tmp_path: pathlib.Path) -> None:
    _run_quick_start(quick_start, tmp_path, _LAUNCH_SIMULATED)
    _check_recording(tmp_path, {"ring_full", "backlog_cap"})


@pytest.mark.timeout(240)
def test_quick_start_with_the_oakd_device_on_the_depthai_fake(
    quick_start: str, tmp_path: pathlib.Path
) -> None:
    _run_quick_start(quick_start, tmp_path, _LAUNCH_OAKD_FAKE)
    # The OAK-D pushes frames from `with device:` on; any captured before `with writer:`
    # started precede the writer's origin (omgrab.recording.ChunkedWriter: its start time) and
    # are dropped and counted as before_origin (docs/compat.md, "Writer origin").
    _check_recording(tmp_path, {"ring_full", "backlog_cap", "before_origin"})
