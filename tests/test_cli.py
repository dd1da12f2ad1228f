"""The ``omgrab`` command as a user runs it: a real process, real files."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import av


def omgrab(*args: str, cwd: pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omgrab.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_demo_with_faults_records_merges_and_inspects(tmp_path: pathlib.Path) -> None:
    data = tmp_path / "data"
    done = omgrab(
        "demo",
        "--small",
        "--seconds",
        "4",
        "--chunk-length",
        "1",
        "--data-dir",
        str(data),
        "--faults",
        "stall:depth@2+0.6;slow:rgb@2.8+0.4=0.06",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "perception output" in done.stdout
    [merged] = sorted((data / "recordings").glob("*.mkv"))
    with av.open(str(merged)) as container:
        pts: dict[str, list[int]] = {}
        for packet in container.demux():
            if packet.size and packet.pts is not None:
                title = packet.stream.metadata.get("title", "?")
                pts.setdefault(title, []).append(packet.pts)
    assert set(pts) == {"rgb", "depth", "imu"}
    for name, values in pts.items():
        assert values == sorted(values), f"{name} pts go backwards"
    gaps = [b - a for a, b in zip(pts["depth"], pts["depth"][1:], strict=False)]
    assert max(gaps) >= 400  # the stall left a hole in depth; nothing was shifted into it
    assert len(pts["rgb"]) > len(pts["depth"])
    inspected = omgrab("inspect", "--json", str(merged), cwd=tmp_path)
    assert inspected.returncode == 0
    summary = json.loads(inspected.stdout)
    assert summary["recording_id"] == merged.stem
    depth = next(t for t in summary["tracks"] if t["name"] == "depth")
    assert depth["gaps"] >= 1 and depth["longest_gap_ms"] == max(gaps)  # the stall, measured
    rgb = next(t for t in summary["tracks"] if t["name"] == "rgb")
    assert rgb["frames"] == len(pts["rgb"])


def test_bad_fault_spec_is_rejected_naming_the_token(tmp_path: pathlib.Path) -> None:
    done = omgrab("demo", "--small", "--faults", "explode@1", cwd=tmp_path)
    assert done.returncode == 2
    assert "explode" in done.stderr
    assert not (tmp_path / "demo-output").exists()


def test_recover_and_inspect_report_plainly(tmp_path: pathlib.Path) -> None:
    (tmp_path / "spool").mkdir()
    done = omgrab("recover", str(tmp_path / "spool"), str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0 and "nothing to recover" in done.stdout
    missing = omgrab("inspect", str(tmp_path / "nope.mkv"), cwd=tmp_path)
    assert missing.returncode == 2 and "nope.mkv does not exist" in missing.stderr
