"""omgrab 0.1.2 runtime patterns: a keyword-only session stand-in, plain timestamp ids, and
stream configs checked at ``RecordingSession.start()`` (docs/compat.md)."""

from __future__ import annotations

import datetime
import pathlib
import re
import threading

import pytest

from omgrab import loop_health
from omgrab.runtime import recording_manager, recording_session
from tests import runtime_rig


class KeywordOnlySession:
    """A 0.1.2-style stand-in: only recording_id, start/stop/join, stopped, is_alive."""

    made: list[dict[str, object]] = []

    def __init__(self, **kwargs: object) -> None:
        KeywordOnlySession.made.append(kwargs)
        self.recording_id = str(kwargs["recording_id"])
        self.stopped = False
        self.is_alive = False

    def start(self) -> None:
        self.is_alive = True

    def stop(self) -> None:
        self.stopped = True
        self.is_alive = False

    def join(self, timeout: float | None = None) -> bool:
        return True


def test_manager_runs_a_keyword_only_session_without_the_extra_interface(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    KeywordOnlySession.made.clear()
    monkeypatch.setattr(recording_session, "RecordingSession", KeywordOnlySession)
    storage_checks: list[pathlib.Path] = []
    checked = threading.Event()

    def free_percent(path: pathlib.Path) -> float:
        storage_checks.append(path)
        if len(storage_checks) >= 4:  # one at start, then health checks that got this far
            checked.set()
        return 50.0

    errors_before = loop_health.default().errors(recording_manager.HEALTH_LOOP)
    manager, device = runtime_rig.make_manager(tmp_path, free_percent=free_percent)
    try:
        assert manager.start_recording() is True
        recording_id = manager.active_recording_id
        assert recording_id is not None
        # 0.1.2's id form: the UTC start time, no random suffix.
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z", recording_id)
        assert (tmp_path / "spool" / recording_id).is_dir()
        (kwargs,) = KeywordOnlySession.made
        assert kwargs["spool_dir"] == tmp_path / "spool"
        assert kwargs["stream_names"] == ["rgb"]
        # Health checks run through against it (it has no stalled_streams/set_stop_reason).
        assert checked.wait(10.0)
        manager.stop_recording()
        assert not manager.is_recording
        assert not device.is_open
        assert manager.snapshot().recording_id is None
    finally:
        manager.shutdown()
    assert loop_health.default().errors(recording_manager.HEALTH_LOOP) == errors_before


def test_recording_id_gets_a_suffix_only_when_its_time_is_taken(
    tmp_path: pathlib.Path,
) -> None:
    manager, _device = runtime_rig.make_manager(tmp_path)
    (tmp_path / "spool").mkdir()
    (tmp_path / "out").mkdir()
    at = datetime.datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=datetime.UTC)
    try:
        first = manager._new_recording_id(at)
        second = manager._new_recording_id(at)
        (tmp_path / "out" / "2026-01-02T03-04-05.679Z.mkv").write_bytes(b"merged earlier")
        third = manager._new_recording_id(at + datetime.timedelta(milliseconds=1))
    finally:
        manager.shutdown()
    assert first == "2026-01-02T03-04-05.678Z"
    assert re.fullmatch(r"2026-01-02T03-04-05\.678Z-[0-9a-f]{4}", second)
    assert re.fullmatch(r"2026-01-02T03-04-05\.679Z-[0-9a-f]{4}", third)
    # Each id is claimed on disk by its spool directory.
    assert {p.name for p in (tmp_path / "spool").iterdir()} == {first, second, third}


def test_session_checks_stream_configs_at_start(tmp_path: pathlib.Path) -> None:
    camera = runtime_rig.OwnedDevice().camera
    session = recording_session.RecordingSession(
        recording_id="rec-1",
        target_cameras=[camera],
        stream_names=["rgb"],
        stream_configs={},
        spool_dir=tmp_path,
    )
    assert session.recording_id == "rec-1"
    assert session.join(timeout=1.0) is True
    with pytest.raises(ValueError, match=r"no stream config for camera stream\(s\) \['rgb'\]"):
        session.start()
    assert session.is_alive is False
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_failed_start_releases_the_claimed_recording_directory(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class FailingSession(KeywordOnlySession):
        def start(self) -> None:
            raise RuntimeError("encoder refused (injected)")

    monkeypatch.setattr(recording_session, "RecordingSession", FailingSession)
    manager, _device = runtime_rig.make_manager(tmp_path)
    try:
        assert manager.start_recording() is False
        assert "encoder refused" in (manager.last_error or "")
    finally:
        manager.shutdown()
    assert list((tmp_path / "spool").iterdir()) == []


def test_manager_module_keeps_the_published_session_seam() -> None:
    assert recording_manager.recording_session is recording_session
