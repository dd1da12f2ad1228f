"""Power loss and app-only kills over the real application, then restart and recovery.

Each campaign drives ``omgrab run`` (simulated device, small streams) in a subprocess and
SIGKILLs it at random moments: while recording (and so while the incremental merge appends the
chunks to the growing file), while finishing the merge after a stop, and while the next start-up
is recovering (continuing a growing file). After the final restart every recording must be a
valid MKV (ffprobe and mkvmerge accept it), no growing ``.partial`` file is left, nothing that
was readable in the spool or in a growing file at any kill may be gone (it is in a merged file,
in its quarantine folder or still in the spool), and each stream of a recording killed while
recording reaches the kill time within the loss bound.
"""

from __future__ import annotations

import json
import pathlib
import random
import time

import pytest

from tests.faults import app_process, conftest

#: Capture-to-disk loss allowed per stream when the application alone is killed: the writer's
#: flush window (0.2 s) plus the capture-to-encoder latency a 2-core machine shared with other
#: jobs adds (measured up to ~0.3 s). The merge side is held to zero loss: every packet readable
#: in the spool at any kill survives (``_check_final``).
LOSS_BOUND_S = 0.2
_SLACK_S = 0.5
#: End-to-end bound at a power cut (whole group), asserted in the long form only: the writer's
#: flush window plus everything captured but not yet encoded, which on the shared 2-core
#: machine measured 0.07-1.1 s, and 3.3 s (all streams alike) while the whole suite ran beside
#: other jobs. The writer's own bound is tested in tests/test_recording_crash.py.
POWER_CUT_BOUND_S = 1.5

pytestmark = pytest.mark.faults


def _recordings(spool: pathlib.Path) -> set[str]:
    return {p.name for p in spool.iterdir() if p.is_dir()} if spool.is_dir() else set()


def _manifest(data_dir: pathlib.Path, recording_id: str) -> dict:
    return json.loads((data_dir / "recordings" / f"{recording_id}.json").read_text())


def _losses(data_dir: pathlib.Path, kills: dict[str, float]) -> dict[str, float]:
    """Worst loss per stream over the recordings killed while recording (seconds).

    A recording killed before its first packet reached a chunk has no merged file (recovery
    reports it as empty and leaves its directory); it is counted under ``"empty"``.
    """
    worst: dict[str, float] = {}
    for recording_id, kill_wall in kills.items():
        if not (data_dir / "recordings" / f"{recording_id}.json").exists():
            assert not any((data_dir / "spool" / recording_id).glob("*/*.mkv"))
            worst["empty"] = worst.get("empty", 0) + 1
            continue
        doc = _manifest(data_dir, recording_id)
        started = time.mktime(time.strptime(doc["started_at"][:19], "%Y-%m-%dT%H:%M:%S"))
        started += float("0." + doc["started_at"][20:-1]) - time.timezone
        for name, stream in doc["streams"].items():
            last = stream["last_pts_ms"] or 0
            lost = (kill_wall - started) - last / 1000
            worst[name] = max(worst.get(name, 0.0), lost)
    return worst


def _check_final(data_dir: pathlib.Path, must_keep: dict[str, set[app_process.Packet]]) -> None:
    spool = data_dir / "spool"
    leftovers = [d for d in _recordings(spool) if any((spool / d).glob("*/*.mkv"))]
    assert leftovers == [], f"spool recordings not recovered: {leftovers}"
    merged = sorted((data_dir / "recordings").glob("*.mkv"))
    assert merged
    growing = sorted((data_dir / "recordings").glob("*.partial"))
    assert growing == [], f"growing files not finished by recovery: {growing}"
    for path in merged:
        assert path.with_suffix(".json").is_file(), f"{path} has no manifest"
        app_process.probe_valid(path)
    missing = app_process.missing_packets(data_dir, must_keep)
    assert not missing, f"packets that were in the spool are gone: {missing}"


def test_power_loss_at_random_moments(tmp_path: pathlib.Path) -> None:
    rng = random.Random(10)
    data_dir = tmp_path / "data"
    spool = data_dir / "spool"
    must_keep: dict[str, set[app_process.Packet]] = {}
    killed_recording: dict[str, float] = {}
    phases: list[str] = []
    for _ in range(conftest.iterations(10, 50)):
        before = _recordings(spool)
        app = app_process.start(data_dir)
        phase = rng.choice(["recording", "recording", "merge", "startup"])
        phases.append(phase)
        if phase == "startup":
            time.sleep(rng.uniform(0.0, 1.5))
            app.kill_group()
        else:
            app.wait_idle()
            app.press()
            # 1 s chunks: past 1 s the incremental merge is appending closed chunks
            app.wait_recording(rng.uniform(0.4, 3.0) if phase == "recording" else 1.0)
            if phase == "merge":
                app.press()
                time.sleep(rng.uniform(0.0, 0.5))
            kill_wall = app.kill_group()
            new = sorted(_recordings(spool) - before)
            if phase == "recording" and new:
                killed_recording[new[-1]] = kill_wall
        app_process.merge_snapshot(must_keep, app_process.held_packets(data_dir))
    app = app_process.start(data_dir)
    recover_s = app.wait_idle()
    rss = app_process.rss_kib(app.proc.pid)
    assert app.terminate() == 0
    _check_final(data_dir, must_keep)
    losses = _losses(data_dir, killed_recording)
    held = sum(map(len, must_keep.values()))
    print(
        f"\nFAULTS power-loss: {len(phases)} kills {phases}; start-up incl. recovery "
        f"{recover_s:.2f} s; app RSS {rss} KiB; {held} spool packets all kept; "
        f"worst loss per stream {losses}"
    )
    if not conftest.LONG:
        return  # short form: the end-to-end figure is reported, the merge side asserted
    for name, lost in losses.items():
        if name == "empty":
            continue
        assert lost <= POWER_CUT_BOUND_S, f"{name}: {lost:.3f} s lost at a kill"


def test_app_only_kill_then_immediate_restart(tmp_path: pathlib.Path) -> None:
    data_dir = tmp_path / "data"
    spool = data_dir / "spool"
    worst: dict[str, float] = {}
    starts: list[float] = []
    for n in range(conftest.iterations(2, 10)):
        before = _recordings(spool)
        app = app_process.start(data_dir)
        app.wait_idle()
        app.press()
        app.wait_recording(1.0 + 0.3 * n)
        workers = [pid for pid in app.group_pids() if pid != app.proc.pid]
        kill_wall = app.kill_app()
        [recording_id] = sorted(_recordings(spool) - before)
        # restart at once: recovery must wait for the orphaned workers, not merge under them
        again = app_process.start(data_dir)
        starts.append(again.wait_idle())
        assert again.terminate() == 0
        app_process.wait_gone(lambda ws=workers: app_process.alive(ws), 30)
        for name, lost in _losses(data_dir, {recording_id: kill_wall}).items():
            worst[name] = max(worst.get(name, 0.0), lost)
        assert not (spool / recording_id).exists()
        doc = _manifest(data_dir, recording_id)
        assert doc["recovered"] is True
        assert doc["quarantined"] == [], doc["quarantined"]
    _check_final(data_dir, {})
    print(
        f"\nFAULTS app-only kill: {len(starts)} kills; start-up incl. recovery "
        f"max {max(starts):.2f} s; worst loss per stream {worst}"
    )
    for name, lost in worst.items():
        assert lost <= LOSS_BOUND_S + _SLACK_S, f"{name}: {lost:.3f} s lost"
