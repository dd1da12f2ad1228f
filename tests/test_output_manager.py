"""OutputManager lifecycle, session directories, health and gimbal logs."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import logging
import os
import pathlib
import re
import threading

import pytest

from omgrab import clock, output
from omgrab.output import manager
from tests import fixtures_output


def test_init_creates_session_layout_and_logs_it(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="omgrab.output")
    t = clock.ManualTimeSource(wall=1_773_928_805.0)  # 2026-03-19T14:00:05Z
    m = output.OutputManager(time_source=t)
    with pytest.raises(output.WriteError, match=r"init\(output_dir\) has not been called"):
        m.log_detection(fixtures_output.detection_entry(1))
    with pytest.raises(output.WriteError, match="has not been called"):
        m.get_storage_status()
    m.init(str(tmp_path / "out"))
    try:
        session = pathlib.Path(m.session_dir or "")
        assert session.name == "2026-03-19T14-00-05.000Z"  # no colons: FAT/exFAT/SMB-safe
        assert sorted(p.name for p in session.iterdir() if not p.name.endswith(".reserve")) == [
            "detections.jsonl",
            "frames",
            "gimbal.log",
            "health.jsonl",
        ]
        assert f"Output session started: {session}/" in caplog.text
        with pytest.raises(output.WriteError, match="already initialised"):
            m.init(tmp_path)
    finally:
        m.close()
    assert not (session / "detections.jsonl.reserve").exists()


def test_two_sessions_in_the_same_millisecond_get_distinct_dirs(tmp_path: pathlib.Path) -> None:
    t = clock.ManualTimeSource()
    dirs = []
    for _ in range(3):
        with output.OutputManager(time_source=t, output_dir=tmp_path) as m:
            dirs.append(m.session_dir)
    assert len(set(dirs)) == 3
    names = sorted(os.path.basename(d or "") for d in dirs)
    stamp = "2023-11-14T22-13-20.000Z"
    assert names == [stamp, f"{stamp}_1", f"{stamp}_2"]


def test_concurrent_inits_never_share_a_directory(tmp_path: pathlib.Path) -> None:
    t = clock.ManualTimeSource()
    managers = [output.OutputManager(time_source=t) for _ in range(6)]
    threads = [threading.Thread(target=m.init, args=(tmp_path,)) for m in managers]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len({m.session_dir for m in managers}) == 6
    for m in managers:
        m.close()


def test_init_raises_ioerror_when_it_cannot_create(tmp_path: pathlib.Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    with pytest.raises(IOError, match="cannot create output session"):
        output.OutputManager().init(blocker)
    with pytest.raises(OSError):
        output.OutputManager().init(blocker / "sub")
    with pytest.raises(ValueError, match="output_dir must be a path"):
        output.OutputManager().init(42)  # type: ignore[arg-type]


def test_calls_after_close_raise_write_error(tmp_path: pathlib.Path) -> None:
    m = output.OutputManager(output_dir=tmp_path)
    m.close()
    assert m.closed
    for call in (
        lambda: m.log_detection(fixtures_output.detection_entry(1)),
        lambda: m.record_frame(None, 1, 1),
        lambda: m.log_health({}),
        lambda: m.log_gimbal_command("x"),
        lambda: m.report_to_operator([]),
        lambda: m.init(tmp_path),
    ):
        with pytest.raises(output.WriteError, match="closed"):
            call()
    # Status stays readable after close.
    assert m.get_storage_status().detections_logged == 0


class Mode(enum.Enum):
    RECORDING = "recording"


@dataclasses.dataclass
class Storage:
    total_bytes: int
    used_percent: float
    path: pathlib.Path


@dataclasses.dataclass
class Status:
    device_id: str
    state: Mode
    storage: Storage
    started: datetime.datetime
    temps: list[float | None]
    tags: frozenset[str]


def test_health_accepts_dicts_and_nested_dataclasses(tmp_path: pathlib.Path) -> None:
    t = clock.ManualTimeSource()
    with output.OutputManager(time_source=t, output_dir=tmp_path) as m:
        m.log_health({"cpu_temp_c": 51.5, "battery_pct": None})
        m.log_health(
            Status(
                device_id="rig-1",
                state=Mode.RECORDING,
                storage=Storage(100, 42.5, pathlib.Path("/data")),
                started=datetime.datetime(2026, 3, 19, 14, 0, tzinfo=datetime.UTC),
                temps=[40.0, float("nan")],
                tags=frozenset({"b", "a"}),
            )
        )
        m.log_health({"timestamp": 12.5, "uptime": datetime.timedelta(minutes=2)})
        assert m.flush(5)
        path = pathlib.Path(m.session_dir or "", manager.HEALTH_FILE)
    first, second, third = output.read_jsonl(path)
    assert first == {
        "timestamp": "2023-11-14T22:13:20.000000+00:00",
        "cpu_temp_c": 51.5,
        "battery_pct": None,
    }
    assert second["state"] == "recording"
    assert second["storage"] == {"total_bytes": 100, "used_percent": 42.5, "path": "/data"}
    assert second["started"] == "2026-03-19T14:00:00+00:00"
    assert second["temps"] == [40.0, None]
    assert second["tags"] == ["a", "b"]
    assert third == {"timestamp": 12.5, "uptime": 120.0}


def test_bad_health_entries(tmp_path: pathlib.Path) -> None:
    with output.OutputManager(output_dir=tmp_path) as m:
        with pytest.raises(output.InvalidEntryError, match="dict or a dataclass, got str"):
            m.log_health("cpu ok")
        with pytest.raises(output.InvalidEntryError, match="not JSON-serialisable"):
            m.log_health({"x": threading.Lock()})
        with pytest.raises(output.InvalidEntryError, match="max_entry_bytes"):
            m.log_health({"x": "y" * 70_000})
        m.log_health({"ok": True})
        assert m.flush(5)
        assert m.stats()["health"]["written"] == 1


def test_gimbal_log_lines_are_timestamped_and_escaped(tmp_path: pathlib.Path) -> None:
    t = clock.ManualTimeSource()
    with output.OutputManager(time_source=t, output_dir=tmp_path) as m:
        m.log_gimbal_command("PAN 12.5 TILT -3")
        t.advance(0.25)
        m.log_gimbal_command("evil\nSECOND LINE\r\\n\ttab")
        m.log_gimbal_command("")
        with pytest.raises(output.InvalidEntryError, match="must be a str, got bytes"):
            m.log_gimbal_command(b"PAN")  # type: ignore[arg-type]
        with pytest.raises(output.InvalidEntryError, match="max_entry_bytes"):
            m.log_gimbal_command("Z" * 100_000)
        assert m.flush(5)
        text = pathlib.Path(m.session_dir or "", manager.GIMBAL_FILE).read_text()
    lines = text.splitlines()
    assert lines == [
        "2023-11-14T22:13:20.000000+00:00 PAN 12.5 TILT -3",
        "2023-11-14T22:13:20.250000+00:00 evil\\nSECOND LINE\\r\\\\n\\ttab",
        "2023-11-14T22:13:20.250000+00:00 ",
    ]
    stamp = lines[1].split(" ", 1)[0]
    assert datetime.datetime.fromisoformat(stamp).tzinfo is not None
    assert re.fullmatch(r"\S+ .*", lines[0])


def test_health_and_gimbal_lines_are_written_per_call(tmp_path: pathlib.Path) -> None:
    t = clock.ManualTimeSource()  # no time passes: only the per-call rule can write them
    with output.OutputManager(time_source=t, output_dir=tmp_path) as m:
        m.log_health({"n": 1})
        m.log_gimbal_command("HOME")
        assert m._health is not None and m._gimbal is not None
        assert m._health.wait_written(1, 5)
        assert m._gimbal.wait_written(1, 5)


def test_stats_and_error_count_shape(tmp_path: pathlib.Path) -> None:
    with output.OutputManager(output_dir=tmp_path) as m:
        s = m.stats()
        for key in ("detections", "health", "gimbal", "frames", "operator", "error_count"):
            assert key in s
        assert m.error_count == 0


def test_health_accepts_the_runtime_device_status(tmp_path: pathlib.Path) -> None:
    device_status = pytest.importorskip("omgrab.runtime.device_status")
    ds = device_status
    status = ds.DeviceStatus(
        device_id="rig-7",
        software_version="0.1.0",
        uptime_seconds=12.5,
        state_machine_state="RECORDING",
        storage=ds.StorageInfo(1000, 400, 600, 40.0),
        cpu=ds.CPUInfo(None, 12.0, [10.0, 14.0]),
        memory=ds.MemoryInfo(2000, 500, 1500, 25.0),
        network=ds.NetworkInfo("online", "field-ap", -51),
        recording=ds.RecordingInfo(True, "rec-1", 3.0),
        device_healthy=True,
        device_error=None,
        battery=None,
    )
    with output.OutputManager(output_dir=tmp_path) as m:
        m.log_health(status)
        assert m.flush(5)
        (line,) = output.read_jsonl(pathlib.Path(m.session_dir or "", manager.HEALTH_FILE))
    assert line["device_id"] == "rig-7"
    assert line["storage"]["available_bytes"] == 600
    assert line["cpu"] == {
        "temperature_celsius": None,
        "usage_percent": 12.0,
        "usage_per_core": [10.0, 14.0],
    }
    assert line["battery"] is None
    assert "timestamp" in line


def test_stats_are_logged_periodically_from_log_health(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="omgrab.output")
    t = clock.ManualTimeSource()
    cfg = output.OutputConfig(stats_log_interval_s=60.0)
    with output.OutputManager(cfg, time_source=t, output_dir=tmp_path) as m:
        m.log_detection(fixtures_output.detection_entry(1))
        for _ in range(3):
            t.advance(25)
            m.log_health({"ok": True})
        stats_lines = [r.getMessage() for r in caplog.records if "Output stats" in r.getMessage()]
        assert len(stats_lines) == 1  # at 75 s, not at 25 s or 50 s
        assert "errors, 0 rejected" in stats_lines[0]


def test_output_dir_from_config(tmp_path: pathlib.Path) -> None:
    with output.OutputManager(output.OutputConfig(output_dir=str(tmp_path / "cfg"))) as m:
        m.init()
        assert pathlib.Path(m.session_dir or "").parent == tmp_path / "cfg"
    with pytest.raises(ValueError, match="needs an output_dir"):
        output.OutputManager().init()


def test_entry_size_limit_is_inclusive_for_every_log(tmp_path: pathlib.Path) -> None:
    limit = 200
    t = clock.ManualTimeSource()
    cfg = output.OutputConfig(max_entry_bytes=limit)
    with output.OutputManager(time_source=t, output_dir=tmp_path, config=cfg) as m:
        stamp = len("2023-11-14T22:13:20.000000+00:00 ")
        m.log_gimbal_command("G" * (limit - stamp - 1))  # exactly the limit with its newline
        with pytest.raises(output.InvalidEntryError, match=f"is {limit + 1} bytes"):
            m.log_gimbal_command("G" * (limit - stamp))
        health_overhead = len(b'{"timestamp":"2023-11-14T22:13:20.000000+00:00","x":""}\n')
        m.log_health({"x": "h" * (limit - health_overhead)})
        with pytest.raises(output.InvalidEntryError, match=f"health entry is {limit + 1} bytes"):
            m.log_health({"x": "h" * (limit - health_overhead + 1)})
        assert m.flush(5)
        assert m.stats()["health"]["written"] == 1
